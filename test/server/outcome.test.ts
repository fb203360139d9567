// A proposal handed to the core has an unknown outcome until it is applied: stopping the leader
// (or a storage failure) ends it with OUTCOME_UNKNOWN, never with a retryable refusal, so a client
// that retries only what is retryable never applies a command twice. Real LMDB, real TCP.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OutcomeUnknownError, ShutdownError } from '../../lib/base/errors.ts';
import { RaftClient } from '../../lib/client/client.ts';
import {
  cleanUp,
  forget,
  type KvServer,
  leaderOf,
  startCluster,
  stopCluster,
} from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('outcomes of proposals');
test.after(cleanUp);

/** What a careful client does: retry only what was certainly not carried out. */
async function proposeRetryingRefusals(
  servers: () => KvServer[],
  command: unknown,
  deadlineMs: number,
): Promise<{ ok: boolean; code: string | null }> {
  for (;;) {
    const leader = servers().find((s) => s.role === 'leader');
    try {
      if (leader === undefined) throw Object.assign(new Error('no leader'), { retryable: true });
      await leader.propose(command);
      return { ok: true, code: null };
    } catch (error) {
      const e = error as { retryable?: boolean; code?: string };
      if (e.retryable !== true || Date.now() > deadlineMs) {
        return { ok: false, code: e.code ?? null };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

// Bug 1: stop() while a proposal is replicated but not yet answered. On the landed code the
// proposal ended with a retryable ShutdownError, the retry went to the new leader, and the append
// was applied twice ("x" became "xx").
test('a proposal in flight at stop() ends with an unknown outcome and is never applied twice', async () => {
  const nodes = await startCluster(3, { stopGraceMs: 0 });
  try {
    const leader = await leaderOf(nodes);
    const key = `once-${Date.now()}`;
    const index = leader.status().lastIndex + 1;
    const first = leader.propose({ op: 'append', key, value: 'x' });
    // As soon as a follower holds the entry (so the next leader will commit it), stop the leader.
    await waitFor(
      'a follower holding the entry',
      () => {
        const followers = nodes.map((n) => n.server).filter((s) => s !== null && s !== leader);
        return followers.some((s) => s!.status().lastIndex >= index) ? true : undefined;
      },
      5_000,
      0,
    );
    const stopped = leader.stop();
    const outcome = await first.then(() => 'applied', (e: unknown) => e);
    await stopped;
    const node = nodes.find((n) => n.server === leader)!;
    forget(leader);
    node.server = null;
    if (outcome !== 'applied') {
      assert.instance(outcome, OutcomeUnknownError, String(outcome));
      assert.is(
        (outcome as OutcomeUnknownError).retryable,
        false,
        'an unknown outcome is not retryable',
      );
      assert.is((outcome as OutcomeUnknownError).code, 'OUTCOME_UNKNOWN');
      // The careful client stops here; a careless one would retry. Show what a retry would see.
      const retried = await proposeRetryingRefusals(
        () => nodes.map((n) => n.server).filter((s) => s !== null) as KvServer[],
        { op: 'get', key },
        Date.now() + 10_000,
      );
      assert.ok(retried.ok, 'the remaining members serve');
    }
    const newLeader = await leaderOf(nodes);
    await newLeader.barrier();
    const value = (await newLeader.query({ op: 'get', key })) as { value: string | null };
    assert.ok(value.value === null || value.value === 'x', `applied once at most: ${value.value}`);
  } finally {
    await stopCluster(nodes);
  }
});

// Refused before proposing: a stopping member refuses new proposals with a retryable ShutdownError
// (nothing was appended), while those already appended end with OUTCOME_UNKNOWN.
test('a stopped member refuses new proposals with a retryable ShutdownError', async () => {
  const nodes = await startCluster(1, { stopGraceMs: 0 });
  const leader = await leaderOf(nodes);
  await leader.propose({ op: 'put', key: 'a', value: '1' });
  const inFlight = Array.from(
    { length: 50 },
    (_, i) =>
      leader.propose({ op: 'put', key: `b${i}`, value: '2' }).then(() => null, (e: unknown) => e),
  );
  await leader.stop();
  forget(leader);
  nodes[0]!.server = null;
  for (const r of await Promise.all(inFlight)) {
    if (r === null) continue;
    assert.instance(r, OutcomeUnknownError, String(r));
  }
  try {
    await leader.propose({ op: 'put', key: 'c', value: '3' });
    assert.unreachable('a stopped member accepted a proposal');
  } catch (error) {
    assert.instance(error, ShutdownError);
    assert.is((error as ShutdownError).retryable, true, 'refused before proposing: retryable');
  }
});

// Over the client port, an unknown outcome reaches RaftClient as OUTCOME_UNKNOWN (not retryable),
// and the client does not resend the command.
test('RaftClient reports OUTCOME_UNKNOWN and does not resend the command', async () => {
  const nodes = await startCluster(3, { stopGraceMs: 0 });
  const leader = await leaderOf(nodes);
  const client = await RaftClient.connect({
    servers: [leader.clientAddress],
    requestTimeoutMs: 5_000,
  });
  try {
    const key = `client-once-${Date.now()}`;
    const results = Array.from(
      { length: 40 },
      (_, i) => client.command({ op: 'append', key, value: `${i};` }).then(() => 'ok', (e) => e),
    );
    await new Promise((r) => setTimeout(r, 1));
    await leader.stop();
    const node = nodes.find((n) => n.server === leader)!;
    forget(leader);
    node.server = null;
    const settled = await Promise.all(results);
    const codes = new Set(settled.map((r) => (r === 'ok' ? 'ok' : (r as { code: string }).code)));
    for (const code of codes) {
      assert.ok(['ok', 'OUTCOME_UNKNOWN', 'TIMEOUT'].includes(code), `unexpected ${code}`);
    }
    const newLeader = await leaderOf(nodes);
    await newLeader.barrier();
    const value = ((await newLeader.query({ op: 'get', key })) as { value: string | null }).value ??
      '';
    const tokens = value.split(';').filter((t) => t !== '');
    assert.equal(tokens.length, new Set(tokens).size, `no append applied twice: ${value}`);
  } finally {
    await client.close();
    await stopCluster(nodes);
  }
});

test.run();
