// The small pieces around the step machine, each on its own: majority arithmetic, the in-flight
// window, per-member progress, and the core's view of the log (stable storage plus unstable tail).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AssertionError, CompactedError } from '../../lib/base/errors.ts';
import { Inflights } from '../../lib/core/inflights.ts';
import type { Entry } from '../../lib/base/messages.ts';
import { Progress } from '../../lib/core/progress.ts';
import { committedIndex, majority, tallyVotes } from '../../lib/core/quorum.ts';
import { RaftLog } from '../../lib/core/raft-log.ts';
import { MemoryStorage } from '../../lib/storage/memory.ts';

/** A command entry whose data (and so its size: 24 + bytes) is `bytes` long. */
const cmd = (index: number, term: number, bytes = 8): Entry => ({
  type: 'command',
  index,
  term,
  timeMs: 0,
  data: new Uint8Array(bytes).fill(index & 0xff),
});
const run = (from: number, to: number, term: number, bytes = 8): Entry[] => {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(cmd(i, term, bytes));
  return out;
};
const indexes = (entries: readonly Entry[]) => entries.map((e) => e.index);
const terms = (log: RaftLog) => {
  const out: Array<number | undefined> = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
};

/** A storage that already holds `entries`, with `commitIndex` durable. */
function storageWith(entries: Entry[], commitIndex = 0, term = 0): MemoryStorage {
  const storage = new MemoryStorage();
  void storage.write({ entries, hardState: { term, vote: null, commitIndex } });
  return storage;
}

// ---- quorum --------------------------------------------------------------------------------

// The commit index is the value a majority has reached, for odd and even voter counts.
test('quorum: majority and committedIndex', () => {
  assert.equal([1, 2, 3, 4, 5, 6].map(majority), [1, 2, 2, 3, 3, 4]);
  assert.is(committedIndex([]), 0);
  assert.is(committedIndex([7]), 7);
  assert.is(committedIndex([5, 3, 9]), 5);
  assert.is(committedIndex([9, 3, 5]), 5, 'order does not matter');
  assert.is(committedIndex([10, 10, 1, 1]), 1, 'four voters need three');
  assert.is(committedIndex([10, 10, 10, 1]), 10);
  assert.is(committedIndex([2, 8, 4, 6, 0]), 4);
  const input = [3, 1, 2];
  committedIndex(input);
  assert.equal(input, [3, 1, 2], 'the input is not sorted in place');
});

// A vote is won at a majority of grants, lost once a majority is out of reach; non-voters do not count.
test('quorum: tallyVotes', () => {
  const voters = ['a', 'b', 'c', 'd', 'e'];
  const votes = (entries: Array<[string, boolean]>) => new Map(entries);
  assert.is(tallyVotes(voters, votes([])), 'pending');
  assert.is(tallyVotes(voters, votes([['a', true], ['b', true]])), 'pending');
  assert.is(tallyVotes(voters, votes([['a', true], ['b', true], ['c', true]])), 'won');
  assert.is(tallyVotes(voters, votes([['a', false], ['b', false]])), 'pending');
  assert.is(tallyVotes(voters, votes([['a', false], ['b', false], ['c', false]])), 'lost');
  assert.is(
    tallyVotes(voters, votes([['a', true], ['x', true], ['y', true], ['z', true]])),
    'pending',
    'votes from non-voters do not count',
  );
  assert.is(tallyVotes(['a'], votes([['a', true]])), 'won');
  assert.is(tallyVotes(['a', 'b'], votes([['a', true]])), 'pending', 'two voters need both');
  assert.is(tallyVotes(['a', 'b'], votes([['a', true], ['b', false]])), 'lost');
});

// ---- inflights -----------------------------------------------------------------------------

// The window is full at its message count, frees in order, and refuses to grow past full.
test('inflights: bounded by message count; freeTo frees in order', () => {
  const w = new Inflights(3, 1 << 20);
  w.add(5, 10);
  w.add(8, 10);
  assert.not.ok(w.full());
  w.add(9, 10);
  assert.ok(w.full());
  assert.is(w.count, 3);
  assert.throws(() => w.add(10, 1), (e: unknown) => e instanceof AssertionError);
  w.freeTo(4);
  assert.is(w.count, 3, 'nothing at or below 4');
  w.freeTo(7);
  assert.is(w.count, 2, 'the message ending at 5 is freed; the one ending at 8 is not');
  assert.is(w.bytes, 20);
  assert.not.ok(w.full());
  w.freeTo(100);
  assert.is(w.count, 0);
  assert.is(w.bytes, 0);
});

// The byte bound fills the window too (a message may overshoot it, then nothing more goes).
test('inflights: bounded by bytes', () => {
  const w = new Inflights(100, 1000);
  w.add(1, 600);
  assert.not.ok(w.full());
  w.add(2, 600);
  assert.ok(w.full(), '1200 bytes in flight, limit 1000');
  assert.is(w.bytes, 1200);
  w.freeTo(1);
  assert.is(w.bytes, 600);
  assert.not.ok(w.full());
});

// Indexes must increase; freeFirst frees exactly the oldest; reset forgets all.
test('inflights: increasing indexes, freeFirst, reset, long runs', () => {
  const w = new Inflights(4, 1 << 20);
  w.add(3, 1);
  assert.throws(() => w.add(3, 1), (e: unknown) => e instanceof AssertionError);
  assert.throws(() => w.add(2, 1), (e: unknown) => e instanceof AssertionError);
  w.add(6, 2);
  w.freeFirst();
  assert.is(w.count, 1);
  assert.is(w.bytes, 2);
  w.freeFirst();
  w.freeFirst(); // on an empty window: nothing happens
  assert.is(w.count, 0);
  w.add(7, 5);
  w.reset();
  assert.is(w.count, 0);
  assert.is(w.bytes, 0);
  w.add(1, 1); // after a reset any index may start again
  // Many add/free rounds (past the internal compaction point) keep count and bytes exact.
  const v = new Inflights(8, 1 << 20);
  let next = 1;
  let freedTo = 0;
  for (let round = 0; round < 500; round++) {
    while (!v.full()) v.add(next++, 3);
    freedTo += 5;
    v.freeTo(freedTo);
    const expected = next - 1 - freedTo;
    assert.is(v.count, Math.max(0, expected));
    assert.is(v.bytes, 3 * Math.max(0, expected));
  }
});

// ---- progress ------------------------------------------------------------------------------

// A member starts in probe: one message at a time, paused until answered.
test('progress: probe sends one at a time; update moves match and next', () => {
  const p = new Progress(11, 4, 1 << 20);
  assert.is(p.state, 'probe');
  assert.is(p.matchIndex, 0);
  assert.is(p.nextIndex, 11);
  assert.not.ok(p.paused());
  p.probeSent = true;
  assert.ok(p.paused());
  assert.ok(p.update(7), 'news');
  assert.is(p.matchIndex, 7);
  assert.is(p.nextIndex, 11, 'next does not go back');
  assert.not.ok(p.probeSent, 'an acknowledgement unpauses a probe');
  assert.not.ok(p.update(7), 'a repeated acknowledgement is no news');
  assert.not.ok(p.update(5), 'an older acknowledgement is no news');
  assert.is(p.matchIndex, 7, 'match never goes back');
  p.update(20);
  assert.is(p.nextIndex, 21, 'next stays past match');
});

// Replicate streams up to the window; probe resumes after the match; snapshot pauses everything.
test('progress: replicate, probe and snapshot transitions', () => {
  const p = new Progress(11, 2, 1 << 20);
  p.update(10);
  p.becomeReplicate();
  assert.is(p.state, 'replicate');
  assert.is(p.nextIndex, 11);
  p.inflights.add(12, 100);
  p.nextIndex = 13;
  assert.not.ok(p.paused());
  p.inflights.add(14, 100);
  p.nextIndex = 15;
  assert.ok(p.paused(), 'the window is full');
  p.becomeProbe();
  assert.is(p.state, 'probe');
  assert.is(p.nextIndex, 11, 'probe resumes right after the match');
  assert.is(p.inflights.count, 0, 'in-flight messages are forgotten');
  assert.not.ok(p.paused());
  p.becomeSnapshot(50, 0);
  assert.is(p.state, 'snapshot');
  assert.is(p.pendingSnapshotIndex, 50);
  assert.ok(p.paused(), 'nothing is sent while a snapshot is out');
  p.becomeProbe();
  assert.is(p.nextIndex, 51, 'after a snapshot, resume right after it');
  assert.is(p.pendingSnapshotIndex, 0);
  p.becomeSnapshot(50, 0);
  p.update(60);
  p.becomeProbe();
  assert.is(p.nextIndex, 61, 'or after the match when that is further');
});

// ---- raft-log ------------------------------------------------------------------------------

// A new log is empty; appends go to the unstable tail and are handed out for persisting once.
test('raft-log: append, persist, stableTo', () => {
  const storage = new MemoryStorage();
  const log = new RaftLog(storage, 0);
  assert.is(log.firstIndex(), 1);
  assert.is(log.lastIndex(), 0);
  assert.is(log.term(0), 0);
  assert.is(log.lastTerm(), 0);
  assert.is(log.term(1), undefined);
  log.append(run(1, 3, 1));
  assert.is(log.lastIndex(), 3);
  assert.is(log.persistedIndex(), 0);
  assert.ok(log.hasEntriesToPersist());
  const toPersist = log.takeEntriesToPersist();
  assert.equal(indexes(toPersist), [1, 2, 3]);
  assert.not.ok(log.hasEntriesToPersist(), 'handed out once');
  log.append(run(4, 5, 1));
  assert.equal(indexes(log.takeEntriesToPersist()), [4, 5], 'only the new ones');
  void storage.write({ entries: toPersist });
  log.stableTo(3, 1);
  assert.is(log.persistedIndex(), 3);
  assert.is(log.lastIndex(), 5);
  assert.equal(terms(log), [1, 1, 1, 1, 1]);
});

// A conflicting suffix replaces the unstable tail, and re-hands it out for persisting.
test('raft-log: truncating the unstable tail and stored entries', () => {
  const storage = storageWith(run(1, 4, 1));
  const log = new RaftLog(storage, 0);
  log.append(run(5, 8, 1));
  log.takeEntriesToPersist();
  // Replace within the unstable tail.
  log.append(run(7, 9, 2));
  assert.equal(terms(log), [1, 1, 1, 1, 1, 1, 2, 2, 2]);
  assert.equal(
    indexes(log.takeEntriesToPersist()),
    [7, 8, 9],
    'the replaced part is persisted again',
  );
  // Replace stored entries too: the tail restarts at the first new index.
  log.append(run(3, 3, 3));
  assert.is(log.lastIndex(), 3);
  assert.equal(terms(log), [1, 1, 3]);
  assert.equal(indexes(log.takeEntriesToPersist()), [3]);
  assert.is(log.persistedIndex(), 2, 'storage entries past 2 no longer count as ours');
});

// An acknowledgement for an entry that was replaced while being written does not mark the new one stable.
test('raft-log: stableTo ignores a replaced entry and old indexes', () => {
  const storage = new MemoryStorage();
  const log = new RaftLog(storage, 0);
  log.append(run(1, 3, 1));
  const first = log.takeEntriesToPersist();
  log.append(run(2, 3, 2)); // replaced while the first write was in flight
  void storage.write({ entries: first });
  log.stableTo(3, 1);
  assert.is(log.persistedIndex(), 0, 'entry 3 of term 1 is no longer in the log');
  assert.equal(terms(log), [1, 2, 2]);
  const second = log.takeEntriesToPersist();
  assert.equal(indexes(second), [2, 3]);
  void storage.write({ entries: second });
  log.stableTo(3, 2);
  assert.is(log.persistedIndex(), 3);
  log.stableTo(1, 1); // below the unstable tail: nothing to do
  log.stableTo(9, 2); // past the end: nothing to do
  assert.is(log.persistedIndex(), 3);
  assert.not.ok(log.hasEntriesToPersist());
});

// Committed entries are never rewritten, appends never leave gaps, the commit index never goes back.
test('raft-log: committed entries are immutable; no gaps; commit only rises', () => {
  const log = new RaftLog(storageWith(run(1, 5, 1), 3, 1), 0);
  assert.is(log.committedIndex, 3, 'the durable commit index is restored');
  const isAssertion = (e: unknown) => e instanceof AssertionError;
  assert.throws(() => log.append(run(3, 4, 2)), isAssertion);
  assert.throws(() => log.append(run(7, 8, 1)), isAssertion);
  assert.throws(() => log.commitTo(6), isAssertion);
  log.append([]); // nothing to do
  assert.ok(log.commitTo(5));
  assert.not.ok(log.commitTo(4), 'never lowered');
  assert.is(log.committedIndex, 5);
  log.append(run(6, 6, 2));
  assert.is(log.lastIndex(), 6);
  assert.throws(() => new RaftLog(storageWith(run(1, 2, 1), 5, 1), 0), isAssertion);
  // What the state machine applied was committed: it raises a stale durable commit index...
  assert.is(new RaftLog(storageWith(run(1, 2, 1), 1, 1), 2).committedIndex, 2);
  // ...but never past the end of the log.
  assert.throws(() => new RaftLog(storageWith(run(1, 2, 1), 1, 1), 3), isAssertion);
});

// Reads span storage and the unstable tail, bounded by bytes but never empty.
test('raft-log: entries across storage and tail, byte bounds, compaction', async () => {
  const storage = storageWith(run(1, 4, 1, 76)); // 100 bytes each
  const log = new RaftLog(storage, 0);
  log.append(run(5, 8, 2, 76));
  assert.equal(indexes(log.entries(1, 9, 10_000)), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(indexes(log.entries(3, 7, 10_000)), [3, 4, 5, 6]);
  assert.equal(indexes(log.entries(3, 99, 300)), [3, 4, 5]);
  assert.equal(indexes(log.entries(2, 9, 1)), [2], 'at least one entry');
  assert.equal(indexes(log.entries(6, 9, 1)), [6], 'at least one from the tail');
  assert.equal(log.entries(9, 12, 10_000), [], 'past the end');
  assert.equal(log.entries(4, 4, 10_000), [], 'an empty range');
  await storage.write({
    snapshot: { index: 2, term: 1, timeMs: 0, members: [{ id: 'a', type: 'ACTIVE' }] },
  });
  await storage.compact(2);
  assert.is(log.firstIndex(), 3);
  assert.is(log.term(2), 1, 'the compaction point keeps its term');
  assert.is(log.term(1), undefined);
  assert.throws(() => log.entries(1, 5, 10_000), (e: unknown) => e instanceof CompactedError);
});

// The up-to-date rule of elections: last term first, then last index.
test('raft-log: isUpToDate, findConflict, matchTerm', () => {
  const log = new RaftLog(storageWith([...run(1, 2, 1), ...run(3, 4, 3)]), 0);
  assert.ok(log.isUpToDate(4, 3), 'equal');
  assert.ok(log.isUpToDate(9, 3), 'longer, same term');
  assert.not.ok(log.isUpToDate(3, 3), 'shorter, same term');
  assert.ok(log.isUpToDate(1, 4), 'higher last term wins even when shorter');
  assert.not.ok(log.isUpToDate(99, 2), 'lower last term loses even when longer');
  assert.ok(log.matchTerm(0, 0));
  assert.ok(log.matchTerm(3, 3));
  assert.not.ok(log.matchTerm(3, 1));
  assert.is(log.findConflict(run(2, 4, 1).map((e) => ({ ...e, term: e.index <= 2 ? 1 : 3 }))), 0);
  assert.is(log.findConflict([cmd(3, 3), cmd(4, 2)]), 4);
  assert.is(log.findConflict([cmd(4, 3), cmd(5, 3)]), 5, 'an entry past the end is a conflict');
  assert.is(log.findConflict([]), 0);
});

// Only committed and durable entries are applied, each once, in bounded batches.
test('raft-log: entries to apply are committed, durable, bounded and handed out once', () => {
  const storage = new MemoryStorage();
  const log = new RaftLog(storage, 0);
  log.append(run(1, 6, 1, 76));
  log.commitTo(6);
  assert.not.ok(log.hasEntriesToApply(), 'nothing durable yet');
  const batch = log.takeEntriesToPersist();
  void storage.write({ entries: batch.slice(0, 4) });
  log.stableTo(4, 1);
  assert.is(log.applyableIndex(), 4);
  assert.equal(indexes(log.takeEntriesToApply(250)), [1, 2]);
  assert.equal(indexes(log.takeEntriesToApply(1)), [3]);
  assert.equal(indexes(log.takeEntriesToApply(10_000)), [4]);
  assert.equal(log.takeEntriesToApply(10_000), []);
  assert.is(log.appliedIndex, 4);
  void storage.write({ entries: batch.slice(4) });
  log.stableTo(6, 1);
  assert.equal(indexes(log.takeEntriesToApply(10_000)), [5, 6]);
});

// A snapshot from the leader replaces the whole log until it is installed.
test('raft-log: restore a snapshot', () => {
  const storage = storageWith(run(1, 3, 1), 2, 1);
  const log = new RaftLog(storage, 0);
  const meta = { index: 10, term: 4, timeMs: 0, members: [{ id: 'a', type: 'ACTIVE' as const }] };
  assert.throws(
    () => log.restore({ ...meta, index: 2 }),
    (e: unknown) => e instanceof AssertionError,
  );
  log.restore(meta);
  assert.is(log.firstIndex(), 11);
  assert.is(log.lastIndex(), 10);
  assert.is(log.term(10), 4);
  assert.is(log.term(3), undefined, 'the old entries are gone');
  assert.is(log.committedIndex, 10);
  assert.is(log.appliedIndex, 10);
  assert.is(log.persistedIndex(), 0, 'nothing of the new log is durable yet');
  assert.ok(log.hasSnapshotToPersist());
  assert.equal(log.takeSnapshotToPersist(), meta);
  assert.is(log.takeSnapshotToPersist(), null, 'handed out once');
  log.append(run(11, 12, 4));
  void storage.write({ snapshot: meta });
  log.stableSnapshotTo(meta);
  assert.is(log.firstIndex(), 11);
  assert.is(log.persistedIndex(), 10);
  assert.is(log.lastIndex(), 12);
});

test.run();
