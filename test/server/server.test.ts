// Proves the in-process API of `RaftServer` over real LMDB files and real TCP on 127.0.0.1:
// outputs for each proposal's own index, typed errors, option errors naming the option, a
// numbered event stream, barrier, leadership transfer, graceful stop, and snapshots installed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { NotLeaderError, ShutdownError } from '../../lib/base/errors.ts';
import type { ServerEvent } from '../../lib/member/events.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import {
  cleanUp,
  forget,
  leaderOf,
  members,
  quiet,
  startCluster,
  startNode,
  stopCluster,
  stopNode,
} from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('server in process');
test.after(cleanUp);

const baseOptions = async () => {
  const [node] = await members(1);
  return {
    id: node!.member.id,
    cluster: 'c',
    dataDir: node!.dataDir,
    peerAddress: '127.0.0.1:0',
    clientAddress: '127.0.0.1:0',
    stateMachine: new KvStateMachine(),
    logger: quiet,
  };
};

// Each bad option is refused at start with a TypeError or RangeError that names it.
test('options are validated at start, naming the option', async () => {
  const base = await baseOptions();
  const cases: [Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    [{ ...base, id: undefined }, TypeError, /option id\b/],
    [{ ...base, tickMs: 0 }, RangeError, /option tickMs\b/],
    [{ ...base, tickMs: '10' }, TypeError, /option tickMs\b/],
    [{ ...base, peerAddress: 'localhost' }, RangeError, /option peerAddress\b/],
    [{ ...base, snapshotChunkBytes: 2 * 1024 * 1024 }, RangeError, /option snapshotChunkBytes\b/],
    [{ ...base, heartbeatTicks: 20, electionTicks: 10 }, RangeError, /option heartbeatTicks\b/],
    [{ ...base, stateMachine: {} }, TypeError, /option stateMachine\b/],
    [{ ...base, electionTick: 10 }, TypeError, /option electionTick\b/],
  ];
  for (const [options, kind, pattern] of cases) {
    try {
      await RaftServer.start(options as never);
      assert.unreachable(`accepted ${JSON.stringify(Object.keys(options))}`);
    } catch (error) {
      assert.instance(error, kind, String(error));
      assert.match((error as Error).message, pattern);
    }
  }
});

// Concurrent proposals each resolve with the output computed at their own log index.
test('propose resolves with the output of its own index, under concurrency', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    const count = 300;
    const results = await Promise.all(
      Array.from(
        { length: count },
        (_, i) => leader.proposeWithIndex({ op: 'append', key: 'chain', value: `<${i}>` }),
      ),
    );
    // Every append's output is the value after *its* command: sorted by index, each output is the
    // previous output plus that command's own suffix.
    const byIndex = results.map((r, i) => ({
      i,
      index: r.index,
      value: (r.output as { value: string }).value,
    }))
      .sort((a, b) => a.index - b.index);
    assert.is(new Set(byIndex.map((r) => r.index)).size, count, 'distinct indexes');
    let previous = '';
    for (const r of byIndex) {
      assert.is(r.value, `${previous}<${r.i}>`, `output at index ${r.index}`);
      previous = r.value;
    }
    assert.equal(await leader.query({ op: 'get', key: 'chain' }), { value: previous });
    assert.equal(await leader.propose({ op: 'put', key: 'x', value: '1' }), { previous: null });
    assert.equal(await leader.propose({ op: 'put', key: 'x', value: '2' }), { previous: '1' });
  } finally {
    await stopCluster(nodes);
  }
});

// A follower refuses proposals, reads and barriers with NotLeaderError naming the leader;
// barrier on the leader covers every earlier write; transfer hands leadership over.
test('NotLeaderError with the leader hint; barrier; transferLeadership', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    const follower = nodes.map((n) => n.server!).find((s) => s !== leader)!;
    for (
      const attempt of [
        () => follower.propose({ op: 'put', key: 'a', value: 'b' }),
        () => follower.query({ op: 'get', key: 'a' }),
        () => follower.barrier(),
      ]
    ) {
      try {
        await attempt();
        assert.unreachable('a follower served a leader operation');
      } catch (error) {
        assert.instance(error, NotLeaderError);
        assert.is((error as NotLeaderError).leaderId, leader.id);
      }
    }
    // Proposals made before the barrier (not yet committed) are applied when it resolves.
    const writes = Array.from(
      { length: 50 },
      (_, i) => leader.proposeWithIndex({ op: 'put', key: `b${i}`, value: 'v' }),
    );
    const barrierIndex = await leader.barrier();
    const applied = leader.status().lastAppliedIndex;
    const last = Math.max(...(await Promise.all(writes)).map((w) => w.index));
    assert.ok(barrierIndex >= last, `barrier index ${barrierIndex} covers ${last}`);
    assert.ok(applied >= last, `applied ${applied} when the barrier resolved`);

    const events: ServerEvent[] = [];
    const off = leader.onEvent((e) => events.push(e));
    await leader.transferLeadership(follower.id);
    off();
    assert.is(follower.role, 'leader');
    await waitFor(
      'the old leader to follow',
      () => (leader.status().leaderId === follower.id ? true : undefined),
      5_000,
    );
    assert.ok(
      events.some((e) => e.type === 'role' && e.role === 'follower'),
      'the old leader reported its step down',
    );
    // The new leader serves writes; the old one now redirects to it.
    assert.equal(await follower.propose({ op: 'put', key: 'after', value: 'transfer' }), {
      previous: null,
    });
    try {
      await leader.propose({ op: 'put', key: 'x', value: 'y' });
      assert.unreachable('the old leader accepted a proposal');
    } catch (error) {
      assert.instance(error, NotLeaderError);
      assert.is((error as NotLeaderError).leaderId, follower.id);
    }
  } finally {
    await stopCluster(nodes);
  }
});

// Events are numbered 1, 2, 3, ... without gaps and report role, term and leader changes.
test('the event stream is numbered from 1 without gaps and reports every transition', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    for (const node of nodes) {
      // Events leave with the next batch of work, a moment after status() shows the change.
      const events = await waitFor(`${node.member.id}'s leader event`, () => {
        const all = node.server!.eventsSince(0);
        return all.some((e) => e.type === 'leader' && e.leaderId === leader.id) ? all : undefined;
      }, 2_000);
      assert.equal(events.map((e) => e.seq), events.map((_, i) => i + 1), `${node.member.id} seq`);
      assert.ok(
        events.some((e) => e.type === 'term' && e.term >= 1),
        `${node.member.id} term event`,
      );
    }
    const own = leader.eventsSince(0);
    assert.ok(
      own.some((e) => e.type === 'role' && e.role === 'leader'),
      'the leader reported becoming leader',
    );
    // A live listener sees the continuation of the same numbering.
    const seen: ServerEvent[] = [];
    const lastSeq = own[own.length - 1]!.seq;
    leader.onEvent((e) => seen.push(e));
    await stopNode(nodes.find((n) => n.server === leader)!);
    assert.ok(seen.length >= 1);
    assert.equal(seen.map((e) => e.seq), seen.map((_, i) => lastSeq + 1 + i));
    assert.is(seen[seen.length - 1]!.type, 'stopped');
  } finally {
    await stopCluster(nodes);
  }
});

// stop() settles every in-flight proposal, refuses new ones, closes the files (a restart reads
// them back), and a second stop() is harmless.
test('graceful stop settles in-flight proposals; a second stop is harmless; restart recovers', async () => {
  const nodes = await startCluster(1);
  const node = nodes[0]!;
  try {
    const server = await leaderOf(nodes);
    const acked = await server.proposeWithIndex({ op: 'put', key: 'kept', value: 'yes' });
    const inflight = Array.from(
      { length: 200 },
      (_, i) => server.propose({ op: 'put', key: `f${i}`, value: 'v' }),
    );
    const stopping = server.stop();
    const settled = await Promise.allSettled(inflight);
    await stopping;
    for (const s of settled) {
      if (s.status === 'rejected') assert.instance(s.reason, ShutdownError, String(s.reason));
    }
    await server.stop();
    assert.ok(server.status().stopped);
    try {
      await server.propose({ op: 'put', key: 'late', value: 'v' });
      assert.unreachable('a stopped member accepted a proposal');
    } catch (error) {
      assert.instance(error, ShutdownError);
    }
    forget(server);
    const again = await startNode(node, nodes);
    await leaderOf(nodes);
    assert.equal(await again.query({ op: 'get', key: 'kept' }), { value: 'yes' });
    assert.ok(again.status().lastIndex >= acked.index);
    const applied = settled.filter((s) => s.status === 'fulfilled').length;
    assert.equal(
      await again.query({ op: 'size' }),
      { size: 1 + applied },
      'exactly the acknowledged writes',
    );
  } finally {
    await stopCluster(nodes);
  }
});

// A restart with other founding members than the storage holds keeps the stored configuration,
// and says so (never silently): the warning names both.
test('founding members that differ from the stored configuration are ignored with a warning', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'edgeraft-members-'));
  const warnings: string[] = [];
  const logger = {
    info: () => {},
    debug: () => {},
    warn: (message: string) => void warnings.push(message),
  };
  const one = [{
    id: 'a',
    type: 'ACTIVE' as const,
    address: '127.0.0.1:1',
    clientAddress: '127.0.0.1:2',
  }];
  const options = {
    id: 'a',
    cluster: 'members-test',
    dataDir,
    peerAddress: '127.0.0.1:0',
    clientAddress: '127.0.0.1:0',
    stateMachine: new KvStateMachine(),
    logger,
  };
  try {
    const first = await RaftServer.start({ ...options, members: one });
    await first.ready();
    await first.stop();
    assert.equal(warnings.filter((w) => w.includes('ignored')), [], 'warned at the first start');
    const two = [...one, { id: 'b', type: 'ACTIVE' as const, address: '127.0.0.1:3' }];
    const again = await RaftServer.start({
      ...options,
      stateMachine: new KvStateMachine(),
      members: two,
    });
    await again.stop();
    const warned = warnings.filter((w) => w.includes('ignored'));
    assert.is(warned.length, 1, `warnings: ${JSON.stringify(warnings)}`);
    assert.match(warned[0]!, /a=ACTIVE,b=ACTIVE/);
    assert.match(warned[0]!, /configuration at index 1 \(a=ACTIVE\)/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// A member far behind says how it catches up: the leader logs that it is catching up (more than
// catchUpLagEntriesMin entries behind), its progress while that lasts, and when it caught up.
test('the leader reports a member catching up from far behind, and when it caught up', async () => {
  const lines: string[] = [];
  const logger = {
    info: (message: string) => void lines.push(message),
    warn: () => {},
    debug: () => {},
  };
  const nodes = await startCluster(3, { logger, snapshotEntriesThreshold: 100_000 });
  try {
    const leader = await leaderOf(nodes);
    const lagging = nodes.find((n) => n.server !== leader)!;
    await stopNode(lagging);
    for (let round = 0; round < 12; round++) {
      await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) => leader.propose({ op: 'put', key: `c${i}`, value: 'v' }),
        ),
      );
    }
    const server = await startNode(lagging, nodes, { logger, snapshotEntriesThreshold: 100_000 });
    const id = lagging.member.id;
    await waitFor(
      'the leader to report it caught up',
      () => lines.some((l) => l.startsWith(`${id} caught up: `)) || undefined,
      10_000,
    );
    assert.ok(
      lines.some((l) => new RegExp(`^${id} is catching up: \\d+ entries behind$`).test(l)),
      JSON.stringify(lines.filter((l) => l.includes('catch') || l.includes('caught'))),
    );
    // The leader counts it caught up once its log matches; it applies once it learns the commit
    // index, with the next append or heartbeat.
    await waitFor(
      'the member to apply what it caught up on',
      () => server.status().lastAppliedIndex > 1_000 || undefined,
      5_000,
    );
  } finally {
    await stopCluster(nodes);
  }
});

// A member that was down while the others compacted their logs receives the snapshot in many
// small chunks, installs it, reports it, and then replicates normally.
test('a lagging member installs a multi-chunk snapshot and resumes replication', async () => {
  const options = {
    snapshotEntriesThreshold: 100,
    compactionTrailingEntries: 10,
    snapshotChunkBytes: 1024,
  };
  const nodes = await startCluster(3, options);
  try {
    const leader = await leaderOf(nodes);
    const lagging = nodes.find((n) => n.server !== leader)!;
    await stopNode(lagging);
    const value = 'x'.repeat(200);
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) => leader.propose({ op: 'put', key: `r${round}-${i}`, value }),
        ),
      );
    }
    await waitFor(
      'a compacted leader log',
      () => (leader.status().firstIndex > 100 ? true : undefined),
      5_000,
    );
    const events: ServerEvent[] = [];
    const server = await startNode(lagging, nodes, options);
    server.onEvent((e) => events.push(e));
    const target = leader.status().commitIndex;
    await waitFor(
      'the lagging member to catch up',
      () => (server.status().lastAppliedIndex >= target ? true : undefined),
      10_000,
    );
    const installed = server.eventsSince(0).filter((e) => e.type === 'snapshotInstalled');
    assert.ok(installed.length >= 1, 'a snapshotInstalled event');
    assert.ok(server.status().snapshotIndex >= 100);
    assert.equal(await server.query({ op: 'size' }, 'sequential'), { size: 300 });
    assert.equal(await server.query({ op: 'get', key: 'r0-0' }, 'sequential'), { value });
    await leader.propose({ op: 'put', key: 'after', value: 'snapshot' });
    await waitFor('replication after the install', async () => {
      const r = (await server.query({ op: 'get', key: 'after' }, 'sequential')) as {
        value: string | null;
      };
      return r.value === 'snapshot' ? true : undefined;
    }, 5_000);
    assert.ok(
      leader.eventsSince(0).some((e) => e.type === 'snapshotTaken'),
      'the leader reported its snapshot',
    );
  } finally {
    await stopCluster(nodes);
  }
});

test.run();
