/**
 * The storage contract: one suite of tests every `Storage` implementation must pass, run by
 * memory.test.ts and lmdb.test.ts. Helpers for building entries are exported for other tests.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AssertionError, CompactedError } from '../../lib/base/errors.ts';
import { type Entry, entryBytes, type Member, type SnapshotMeta } from '../../lib/base/messages.ts';
import type { Storage } from '../../lib/storage/storage.ts';

/** How the contract makes storages. `reopen` closes one and opens its files again (durable ones). */
export type StorageHarness = {
  create(): Promise<Storage>;
  reopen?(storage: Storage): Promise<Storage>;
  cleanup(): Promise<void>;
};

/** Deterministic command data for `index`: `bytes` bytes derived from the index. */
export function dataFor(index: number, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (index * 31 + i * 7) & 0xff;
  return data;
}

/** A command entry whose data is `dataFor(index, bytes)`. */
export function command(index: number, term: number, bytes = 16): Entry {
  return {
    type: 'command',
    index,
    term,
    timeMs: 1_700_000_000_000 + (index % 1000),
    data: dataFor(index, bytes),
  };
}

/** Consecutive command entries `[from, to]` of `term`. */
export function commands(from: number, to: number, term: number, bytes = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(command(i, term, bytes));
  return out;
}

export const membersA: Member[] = [{ id: 'a', type: 'ACTIVE', address: '127.0.0.1:7001' }];
export const membersAB: Member[] = [...membersA, {
  id: 'b',
  type: 'PASSIVE',
  address: '127.0.0.1:7002',
}];

function config(index: number, term: number, members: Member[]): Entry {
  return { type: 'config', index, term, timeMs: index, members };
}

/** Entries with their data as plain arrays, so that Buffer and Uint8Array compare equal. */
export function plain(entries: Entry[]): unknown[] {
  return entries.map((e) => (e.type === 'command' ? { ...e, data: Array.from(e.data) } : { ...e }));
}

/** Await `promise` and check that it rejects with an instance of `type` matching `pattern`. */
export async function rejects(
  promise: Promise<unknown>,
  type: new (...args: never[]) => Error,
  pattern: RegExp,
): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, type);
    assert.match((error as Error).message, pattern);
    return error as Error;
  }
  throw new Error(`Expected a rejection with ${type.name} matching ${pattern}`);
}

function snapshotMeta(index: number, term: number, members: Member[] = membersA): SnapshotMeta {
  return { index, term, timeMs: index, members };
}

/** Register the contract's tests for one implementation and run them. */
export function storageContract(name: string, harness: StorageHarness): void {
  const test = suite(`storage contract: ${name}`);
  test.after(() => harness.cleanup());

  // A new storage is an empty log at index 0 with the zero hard state.
  test('a new storage is empty', async () => {
    const s = await harness.create();
    assert.is(s.firstIndex(), 1);
    assert.is(s.lastIndex(), 0);
    assert.is(s.term(0), 0);
    assert.is(s.term(1), undefined);
    assert.equal(s.hardState(), { term: 0, vote: null, commitIndex: 0 });
    assert.equal(s.configurations(), []);
    assert.is(s.snapshotMeta(), null);
    assert.equal(s.entries(1, 10, 1000), []);
    assert.is(s.logBytes(), 0);
    await s.close();
  });

  // Appended entries read back intact, in order, with their terms.
  test('append and read back', async () => {
    const s = await harness.create();
    const written = [...commands(1, 3, 1, 40), {
      type: 'noop' as const,
      index: 4,
      term: 2,
      timeMs: 9,
    }];
    await s.write({ entries: written });
    assert.is(s.lastIndex(), 4);
    assert.equal(plain(s.entries(1, 5, Infinity)), plain(written));
    assert.equal([s.term(1), s.term(3), s.term(4), s.term(5)], [1, 1, 2, undefined]);
    assert.is(s.logBytes(), written.reduce((sum, e) => sum + entryBytes(e), 0));
    await s.write({ entries: commands(5, 6, 2) });
    assert.equal(plain(s.entries(4, 7, Infinity)), plain([written[3]!, ...commands(5, 6, 2)]));
    await s.close();
  });

  // Writing at an index inside the log replaces the conflicting suffix.
  test('overwriting a suffix truncates it', async () => {
    const s = await harness.create();
    await s.write({ entries: commands(1, 5, 1) });
    await s.write({ entries: commands(3, 4, 2) });
    assert.is(s.lastIndex(), 4);
    assert.equal([s.term(2), s.term(3), s.term(4), s.term(5)], [1, 2, 2, undefined]);
    assert.equal(
      plain(s.entries(1, 10, Infinity)),
      plain([...commands(1, 2, 1), ...commands(3, 4, 2)]),
    );
    assert.is(s.logBytes(), 4 * entryBytes(command(1, 1)));
    await s.close();
  });

  // A batch that leaves a gap, repeats an index or holds an invalid entry is refused whole.
  test('a malformed batch is refused and changes nothing', async () => {
    const s = await harness.create();
    await s.write({ entries: commands(1, 2, 1) });
    await rejects(s.write({ entries: commands(4, 4, 1) }), AssertionError, /gap/);
    await rejects(
      s.write({ entries: [command(3, 1), command(5, 1)] }),
      AssertionError,
      /consecutive/,
    );
    const bad = {
      type: 'command',
      index: 3,
      term: -1,
      timeMs: 0,
      data: new Uint8Array(1),
    } as unknown as Entry;
    await rejects(
      s.write({ entries: [bad], hardState: { term: 5, vote: null, commitIndex: 0 } }),
      AssertionError,
      /Invalid entry/,
    );
    assert.is(s.lastIndex(), 2);
    assert.is(s.hardState().term, 0);
    await s.close();
  });

  // Reads stop before passing the byte limit, but always return at least one entry.
  test('entries are bounded by bytes', async () => {
    const s = await harness.create();
    await s.write({ entries: commands(1, 10, 1, 100) });
    const one = entryBytes(command(1, 1, 100));
    assert.is(s.entries(1, 11, one * 3).length, 3);
    assert.is(s.entries(1, 11, one * 3 - 1).length, 2);
    assert.is(s.entries(1, 11, 1).length, 1);
    assert.is(s.entries(4, 100, Infinity).length, 7);
    assert.equal(s.entries(11, 20, Infinity), []);
    assert.equal(s.entries(5, 5, Infinity), []);
    await s.close();
  });

  // The term, vote and commit index are stored and replaced as a whole.
  test('hard state', async () => {
    const s = await harness.create();
    await s.write({ hardState: { term: 3, vote: 'b', commitIndex: 0 } });
    assert.equal(s.hardState(), { term: 3, vote: 'b', commitIndex: 0 });
    await s.write({
      entries: commands(1, 1, 3),
      hardState: { term: 4, vote: null, commitIndex: 1 },
    });
    assert.equal(s.hardState(), { term: 4, vote: null, commitIndex: 1 });
    await s.close();
  });

  // Compaction drops a prefix up to the snapshot and keeps the compaction point's term.
  test('compaction up to a snapshot', async () => {
    const s = await harness.create();
    await s.write({ entries: [...commands(1, 5, 1), ...commands(6, 10, 2)] });
    await s.write({ snapshot: snapshotMeta(7, 2) });
    assert.is(s.firstIndex(), 1, 'a snapshot that matches the log keeps it');
    assert.equal(s.snapshotMeta(), snapshotMeta(7, 2));
    await rejects(s.compact(8), AssertionError, /snapshot index/);
    const before = s.logBytes();
    await s.compact(6);
    assert.is(s.firstIndex(), 7);
    assert.is(s.lastIndex(), 10);
    assert.is(s.term(6), 2);
    assert.is(s.term(5), undefined);
    assert.is(s.logBytes(), before - 6 * entryBytes(command(1, 1)));
    assert.throws(() => s.entries(6, 8, Infinity), (e: unknown) => e instanceof CompactedError);
    assert.equal(plain(s.entries(7, 11, Infinity)), plain(commands(7, 10, 2)));
    await s.compact(3); // already compacted: nothing to do
    assert.is(s.firstIndex(), 7);
    await s.compact(7);
    assert.is(s.term(7), 2);
    await rejects(s.write({ entries: commands(7, 7, 3) }), AssertionError, /compaction point/);
    await s.write({ entries: commands(9, 12, 3) });
    assert.equal([s.term(8), s.term(9), s.lastIndex()], [2, 3, 12]);
    await s.close();
  });

  // Configurations: the one in effect at the compaction point, then every later one, kept right
  // across truncation and compaction.
  test('configurations across truncation and compaction', async () => {
    const s = await harness.create();
    await s.write({
      entries: [
        config(1, 1, membersA),
        command(2, 1),
        config(3, 1, membersAB),
        command(4, 1),
        config(5, 1, membersA),
      ],
    });
    assert.equal(s.configurations().map((c) => c.index), [1, 3, 5]);
    await s.write({ entries: commands(5, 6, 2) });
    assert.equal(s.configurations().map((c) => c.index), [1, 3]);
    await s.write({ snapshot: snapshotMeta(4, 1, membersAB) });
    await s.compact(2);
    assert.equal(s.configurations(), [{ index: 1, term: 1, members: membersA }, {
      index: 3,
      term: 1,
      members: membersAB,
    }]);
    await s.compact(4);
    assert.equal(s.configurations(), [{ index: 3, term: 1, members: membersAB }]);
    await s.write({ entries: [config(7, 2, membersA)] });
    assert.equal(s.configurations().map((c) => c.index), [3, 7]);
    await s.close();
  });

  // A snapshot that does not match the log (installed from a leader) discards the whole log.
  test('installing a snapshot discards the log', async () => {
    const s = await harness.create();
    await s.write({ entries: [config(1, 1, membersA), ...commands(2, 5, 1)] });
    await s.write({
      snapshot: snapshotMeta(8, 3, membersAB),
      entries: commands(9, 10, 3),
      hardState: { term: 3, vote: null, commitIndex: 8 },
    });
    assert.is(s.firstIndex(), 9);
    assert.is(s.lastIndex(), 10);
    assert.is(s.term(8), 3);
    assert.is(s.term(5), undefined);
    assert.equal(s.configurations(), [{ index: 8, term: 3, members: membersAB }]);
    assert.equal(s.snapshotMeta(), snapshotMeta(8, 3, membersAB));
    assert.is(s.logBytes(), 2 * entryBytes(command(9, 3)));
    // A snapshot inside the log with another term also discards it, even when shorter.
    await s.write({ snapshot: snapshotMeta(9, 4) });
    assert.equal([s.firstIndex(), s.lastIndex(), s.term(9)], [10, 9, 4]);
    await s.close();
  });

  // Indexes above 2^32 are exact keys: nothing wraps onto small indexes.
  test('indexes above 2^32', async () => {
    const s = await harness.create();
    await s.write({ entries: commands(1, 7, 1) });
    const high = 2 ** 32 + 5;
    await s.write({ snapshot: snapshotMeta(high - 1, 2) });
    await s.write({ entries: commands(high, high + 2, 2) });
    assert.equal([s.firstIndex(), s.lastIndex()], [high, high + 2]);
    assert.equal(plain(s.entries(high, high + 3, Infinity)), plain(commands(high, high + 2, 2)));
    assert.equal([s.term(high - 1), s.term(high + 1), s.term(5)], [2, 2, undefined]);
    const top = Number.MAX_SAFE_INTEGER - 1;
    await s.write({ snapshot: snapshotMeta(top - 1, 3) });
    await s.write({ entries: commands(top, top, 3) });
    assert.equal(plain(s.entries(top, top + 1, Infinity)), plain([command(top, 3)]));
    await s.close();
  });

  if (harness.reopen !== undefined) {
    const reopen = harness.reopen;
    // Reopening restores the log's ends and terms, hard state, configurations and snapshot.
    test('reopen restores everything', async () => {
      let s = await harness.create();
      await s.write({
        entries: [
          config(1, 1, membersA),
          ...commands(2, 6, 1),
          config(7, 2, membersAB),
          ...commands(8, 9, 2),
        ],
      });
      await s.write({
        snapshot: snapshotMeta(4, 1),
        hardState: { term: 2, vote: 'a', commitIndex: 8 },
      });
      await s.compact(3);
      await s.write({ entries: commands(9, 12, 3) });
      const expected = {
        first: s.firstIndex(),
        last: s.lastIndex(),
        terms: [3, 4, 8, 9, 12].map((i) => s.term(i)),
        hardState: s.hardState(),
        configurations: s.configurations(),
        snapshot: s.snapshotMeta(),
        logBytes: s.logBytes(),
        entries: plain(s.entries(4, 13, Infinity)),
      };
      s = await reopen(s);
      assert.equal(
        {
          first: s.firstIndex(),
          last: s.lastIndex(),
          terms: [3, 4, 8, 9, 12].map((i) => s.term(i)),
          hardState: s.hardState(),
          configurations: s.configurations(),
          snapshot: s.snapshotMeta(),
          logBytes: s.logBytes(),
          entries: plain(s.entries(4, 13, Infinity)),
        },
        expected,
      );
      assert.equal(expected.terms, [1, 1, 2, 3, 3]);
      await s.close();
    });
  }

  test.run();
}
