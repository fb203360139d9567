// The member driver ends every proposal exactly once, with the right kind of ending: an index
// reused after a truncation ends the older proposal (it can never be applied), a snapshot that
// replaces the log ends those it covers with an unknown outcome, and a storage failure ends those
// in flight with an unknown outcome and keeps the failure's own kind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AssertionError,
  OutcomeUnknownError,
  ProposalDroppedError,
  ShutdownError,
  StorageError,
} from '../../lib/base/errors.ts';

import { cborCodec } from '../../lib/state/codec.ts';
import { MemoryStorage } from '../../lib/storage/memory.ts';
import type { WriteBatch } from '../../lib/storage/storage.ts';
import { ScriptedCluster } from '../../lib/testing/scripted-cluster.ts';
import { startLoneDriver } from './lone-driver.ts';
import { wrappedStorage } from './wrapped-storage.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

/** How a proposal ended: 'applied', or the error it rejected with. */
function ending(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => 'applied', (e: unknown) => e);
}

// The landed server kept pending proposals in a map by index: a new proposal at an index that a
// truncation had freed replaced the old one, which then never settled. Now the older one ends
// with a (retryable) ProposalDroppedError: its entry was truncated, it can never be applied.
test('a proposal whose index is reused after a truncation ends, and nothing stays pending', async () => {
  const c = await ScriptedCluster.start(['a', 'b', 'c']);
  await c.campaign('a');
  await c.stabilize();
  await c.propose('a', 'w0');
  await c.stabilize();
  c.isolate('a');
  // Three proposals a appends while cut off: they can never commit.
  const x = ending(c.driver('a').propose(bytes('X')));
  const z = ending(c.driver('a').propose(bytes('Z')));
  const w = ending(c.driver('a').propose(bytes('W')));
  await c.process();
  c.drop();
  await c.expireLeases(['b', 'c']);
  await c.campaign('b');
  await c.stabilize();
  assert.is(c.raft('b').role, 'leader');
  // b's own entry at X's index; a learns of it and truncates X, Z and W.
  c.heal();
  await c.tick(2, ['b']); // b's heartbeats bring a to b's term
  await c.stabilize();
  assert.is(c.raft('a').role, 'follower');
  // b goes away; a leads again: its no-op takes Z's index, a new proposal W's.
  c.crash('b');
  await c.expireLeases(['a', 'c']);
  await c.campaign('a');
  await c.stabilize();
  assert.is(c.raft('a').role, 'leader');
  const y = c.driver('a').propose(bytes('Y'));
  assert.instance(await w, ProposalDroppedError, 'the proposal at the reused index ends at once');
  await c.stabilize();
  await c.tick(2);
  await c.stabilize();
  await y;
  for (const [name, p] of [['X', x], ['Z', z], ['W', w]] as const) {
    const e = await p;
    assert.instance(e, ProposalDroppedError, `${name}: ${String(e)}`);
    assert.is((e as ProposalDroppedError).retryable, true, `${name} was certainly not applied`);
  }
  assert.is(c.driver('a').status().pendingProposals, 0, 'nothing left pending');
});

// The landed server let proposals covered by an installed snapshot wait until they timed out. Now
// they end at once, with an unknown outcome (the snapshot does not say which entries it holds).
test('proposals covered by an installed snapshot end at once with an unknown outcome', async () => {
  const c = await ScriptedCluster.start(['a', 'b', 'c'], {
    snapshotEntriesThreshold: 5,
    compactionTrailingEntries: 0,
  });
  await c.campaign('a');
  await c.stabilize();
  c.isolate('a');
  const stranded = ending(c.driver('a').propose(bytes('stranded')));
  await c.process();
  c.drop();
  await c.expireLeases(['b', 'c']);
  await c.campaign('b');
  await c.stabilize();
  for (let i = 0; i < 20; i++) await c.propose('b', `b${i}`);
  await c.stabilize();
  await c.tick(1, ['b', 'c']);
  await c.stabilize();
  assert.ok(c.storage('b').firstIndex() > 3, 'b compacted its log');
  c.heal();
  for (let i = 0; i < 10 && c.driver('a').status().snapshotsInstalled === 0; i++) {
    await c.tick(1);
    await c.stabilize();
  }
  assert.is(c.driver('a').status().snapshotsInstalled, 1, "a installed b's snapshot");
  const e = await stranded;
  assert.instance(e, OutcomeUnknownError, String(e));
  assert.is((e as OutcomeUnknownError).retryable, false);
});

/** One member over memory storage whose writes start failing when `failing.now` is set. */
async function loneDriver(failWith: () => Error) {
  const memory = new MemoryStorage();
  const failing = { now: false };
  const storage = wrappedStorage(memory, {
    write: (batch: WriteBatch) => failing.now ? Promise.reject(failWith()) : memory.write(batch),
  });
  const driver = await startLoneDriver(storage);
  return { driver, failing };
}

// A storage failure stops the member: proposals in flight end with OUTCOME_UNKNOWN (they may be
// committed elsewhere), new ones are refused (retryable: never proposed), and the failure keeps
// its kind: a StorageError stays one, a broken invariant is not relabelled a storage failure.
test('a storage failure ends proposals in flight with an unknown outcome and keeps its kind', async () => {
  for (const make of [() => new StorageError('disk full'), () => new AssertionError('a bug')]) {
    const { driver, failing } = await loneDriver(make);
    const codec = cborCodec<unknown>();
    await driver.propose(codec.encode({ op: 'put', key: 'k', value: 'v' }));
    failing.now = true;
    const inFlight = await Promise.all(
      Array.from(
        { length: 5 },
        (_, i) => ending(driver.propose(codec.encode({ op: 'put', key: `k${i}`, value: 'v' }))),
      ),
    );
    for (const e of inFlight) assert.instance(e, OutcomeUnknownError, String(e));
    assert.ok(driver.stopped, 'the member stopped');
    assert.instance(
      driver.failure,
      make().constructor as typeof Error,
      'the failure keeps its kind',
    );
    const refused = await ending(driver.propose(codec.encode({ op: 'get', key: 'k' })));
    assert.instance(refused, ShutdownError);
    assert.is((refused as ShutdownError).retryable, true);
    assert.match((refused as Error).message, /the member failed/);
    await driver.stop();
  }
});

test.run();
