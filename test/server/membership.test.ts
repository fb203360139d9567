// Membership on real members (TCP on 127.0.0.1, LMDB files): a new member joins as PASSIVE
// through any member, catches up by snapshot, is fed by a follower (the leader sends it no
// entries), is promoted once caught up and then votes; a leader that removes itself steps down
// and the rest go on; unsafe and invalid changes are refused with their codes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { freePort } from '../../lib/cli/processes.ts';
import { RaftClient } from '../../lib/client/client.ts';
import type { EdgeraftError } from '../../lib/base/errors.ts';
import {
  cleanUp,
  type KvServer,
  leaderOf,
  type Node,
  root,
  startCluster,
  startNode,
  stopCluster,
} from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('membership');
test.after(cleanUp);

/** A member that is not in any configuration yet: it starts empty and waits to be added. */
async function newMember(id: string): Promise<Node> {
  return {
    member: {
      id,
      type: 'PASSIVE',
      address: `127.0.0.1:${await freePort()}`,
      clientAddress: `127.0.0.1:${await freePort()}`,
    },
    dataDir: join(root, `${id}-${Date.now()}`),
    server: null,
  };
}

/** Start `node` with `join`: it asks the members at `servers` to add it. */
async function startJoiner(
  node: Node,
  servers: string[],
  extra: Record<string, unknown>,
): Promise<KvServer> {
  return await startNode(node, [], { ...extra, members: undefined, join: servers });
}

async function code(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return (e as EdgeraftError).code;
  }
  return 'ok';
}

test('join as PASSIVE, catch up by snapshot from a follower, promote, then the leader leaves', async () => {
  const extra = { snapshotEntriesThreshold: 40, compactionTrailingEntries: 0 };
  const nodes = await startCluster(3, extra);
  const servers = () => nodes.filter((n) => n.server !== null).map((n) => n.member.clientAddress!);
  const client = await RaftClient.connect({ servers: servers(), requestTimeoutMs: 10_000 });
  let joiner: Node | null = null;
  try {
    for (let i = 0; i < 120; i++) {
      await client.command({ op: 'put', key: `k${i % 10}`, value: `${i}` });
    }
    const leader = await leaderOf(nodes);
    joiner = await newMember('joiner');
    // It asks a follower, not the leader: the follower forwards the change.
    const follower = nodes.find((n) => n.server !== leader)!;
    const d = await startJoiner(joiner, [follower.member.clientAddress!], extra);
    assert.is(d.role, 'follower');
    await d.joined;
    const members = await leader.members().then((v) => v.members);
    assert.equal(members.find((m) => m.id === joiner!.member.id)?.type, 'PASSIVE');
    assert.is(
      await code(() => client.join({ id: 'x', type: 'PASSIVE', address: '127.0.0.1:1' })),
      'ok',
    );
    await client.leave('x');
    // It catches up: by snapshot (the log was compacted past its start), then by entries.
    const target = leader.status().commitIndex;
    await waitFor(
      'the joiner to catch up',
      () => d.status().lastAppliedIndex >= target || undefined,
      20_000,
    );
    assert.ok(d.status().snapshotsInstalled >= 1, 'caught up by snapshot');
    assert.equal(await d.query({ op: 'get', key: 'k9' }, 'sequential'), { value: '119' });
    // More writes: a follower feeds it, the leader sends it no entries.
    const before = d.status().entriesReceivedFrom[leader.id] ?? 0;
    for (let i = 0; i < 30; i++) await client.command({ op: 'put', key: 'late', value: `${i}` });
    const last = leader.status().commitIndex;
    await waitFor(
      'the joiner to apply the new writes',
      () => d.status().lastAppliedIndex >= last || undefined,
      10_000,
    );
    const fed = d.status().entriesReceivedFrom;
    assert.is((fed[leader.id] ?? 0) - before, 0, `the leader sent entries: ${JSON.stringify(fed)}`);
    assert.ok(
      Object.keys(fed).some((id) => id !== leader.id && nodes.some((n) => n.member.id === id)),
      `fed by a follower: ${JSON.stringify(fed)}`,
    );
    // Promoted once caught up: it is ACTIVE and counted.
    const promoted = await client.promote(joiner.member.id);
    assert.equal(promoted.find((m) => m.id === joiner!.member.id)?.type, 'ACTIVE');
    await waitFor(
      'the joiner to see itself ACTIVE',
      () => d.status().membership.selfType === 'ACTIVE' || undefined,
      10_000,
    );
    // The leader removes itself: it steps down once that commits; the others elect a leader.
    const remaining = await client.leave(leader.id);
    assert.not.ok(remaining.some((m) => m.id === leader.id));
    await waitFor(
      'the old leader to step down',
      () => leader.role !== 'leader' || undefined,
      10_000,
    );
    const others = [...nodes.filter((n) => n.server !== leader).map((n) => n.server!), d];
    const next = await waitFor(
      'a new leader',
      () => others.find((s) => s.role === 'leader'),
      10_000,
    );
    assert.ok(next !== leader);
    await client.command({ op: 'put', key: 'after', value: 'x' });
    assert.equal(await client.query({ op: 'get', key: 'after' }), { value: 'x' });
    // The removed member campaigns no more, and no one's term is raised by it.
    const term = next.status().term;
    await new Promise((r) => setTimeout(r, 500));
    assert.is(next.status().term, term, 'a term was raised after the removal');
    assert.is(next.role, 'leader');
  } finally {
    await client.close();
    if (joiner?.server) await joiner.server.stop();
    await stopCluster(nodes);
  }
});

test('invalid and concurrent changes are refused with their codes', async () => {
  const nodes = await startCluster(3, { activeMembersMin: 2 });
  const client = await RaftClient.connect({
    servers: nodes.map((n) => n.member.clientAddress!),
    requestTimeoutMs: 2_000,
  });
  try {
    const leader = await leaderOf(nodes);
    // A new leader refuses changes until it has committed an entry of its term: wait for that.
    await leader.ready({ timeoutMs: 10_000 });
    // One change at a time: a second one while the first is uncommitted is refused, retryably.
    const [first, second] = await Promise.all([
      code(() => leader.join({ id: 'c1', address: '127.0.0.1:1' })),
      code(() => leader.join({ id: 'c2', address: '127.0.0.1:2' })),
    ]);
    assert.equal([first, second], ['ok', 'CONFIG_CHANGE_IN_PROGRESS']);
    await client.leave('c1');
    assert.is(await code(() => client.promote('nobody')), 'CONFIG_CHANGE_INVALID');
    assert.is(
      await code(() =>
        client.join({ id: 'y', type: 'ACTIVE' as 'PASSIVE', address: '127.0.0.1:1' })
      ),
      'CONFIG_CHANGE_INVALID',
    );
    // A PASSIVE member that never ran cannot be promoted: NOT_CAUGHT_UP (retried, then reported).
    await client.join({ id: 'z', address: '127.0.0.1:1' });
    assert.is(await code(() => client.promote('z')), 'NOT_CAUGHT_UP');
    await client.leave('z');
    // Demoting ACTIVE members below activeMembersMin (2 here) is refused.
    const ids = nodes.map((n) => n.member.id);
    await client.demote(ids[0]!); // 2 ACTIVE left
    assert.is(await code(() => client.demote(ids[1]!)), 'CONFIG_CHANGE_INVALID');
  } finally {
    await client.close();
    await stopCluster(nodes);
  }
});

test.run();
