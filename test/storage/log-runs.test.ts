// Proves the LMDB log's layout in runs (several entries per LMDB value, lib/storage/lmdb.ts): runs
// keep to their limits, truncations and compactions that cut a run keep the right part of it, a
// log stored one entry per key (the layout before runs) reads and grows the same, and random
// sequences of appends, overwrites, truncations, snapshots and compactions, with reopens between,
// read back exactly as the in-memory storage does. On real LMDB files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { entryBytes } from '../../lib/base/messages.ts';
import { decodeRun, encodeEntry } from '../../lib/storage/codec.ts';
import { LmdbStorage, logRunBytesMax, logRunEntriesMax } from '../../lib/storage/lmdb.ts';
import { MemoryStorage } from '../../lib/storage/memory.ts';
import type { Storage, WriteBatch } from '../../lib/storage/storage.ts';
import { command, commands, membersA, plain } from './contract.ts';
import { generator } from '../support/random.ts';

const test = suite('lmdb log runs');
const root = mkdtempSync(join(tmpdir(), 'edgeraft-log-runs-'));
let count = 0;
const freshPath = () => join(root, `db-${count++}`);
test.after(() => rmSync(root, { recursive: true, force: true }));

const mapSizeBytes = 256 * 1024 ** 2;

/** The stored runs, read with raw lmdb (no project code but the decoder): [first index, count]. */
async function rawRuns(path: string): Promise<[number, number][]> {
  const env = open({ path, maxDbs: 8, encoding: 'binary', keyEncoding: 'ordered-binary' });
  const db = env.openDB<Uint8Array, number>({
    name: 'entries',
    encoding: 'binary',
    keyEncoding: 'ordered-binary',
  });
  const out: [number, number][] = [];
  for (const { key, value } of db.getRange({})) out.push([key, decodeRun(value, key).length]);
  await env.close();
  return out;
}

/** Sum of `entryBytes` over the whole stored log, read back through `entries`. */
function storedBytes(s: Storage): number {
  let bytes = 0;
  for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity)) bytes += entryBytes(e);
  return bytes;
}

test('one write is stored as runs within logRunEntriesMax and logRunBytesMax', async () => {
  const path = freshPath();
  let s = await LmdbStorage.open({ path, mapSizeBytes });
  // 2,500 small entries: cut by the entry count. Then 40 entries of 10,000 bytes: by the bytes.
  // Then one entry bigger than logRunBytesMax: a run of its own.
  await s.write({ entries: commands(1, 2_500, 1, 10) });
  await s.write({ entries: commands(2_501, 2_540, 1, 10_000) });
  await s.write({ entries: [command(2_541, 1, logRunBytesMax + 1)] });
  await s.close();
  const runs = await rawRuns(path);
  const perRun = Math.floor(logRunBytesMax / entryBytes(command(1, 1, 10_000)));
  assert.equal(runs.slice(0, 3), [[1, logRunEntriesMax], [1_025, logRunEntriesMax], [
    2_049,
    2_500 - 2 * logRunEntriesMax,
  ]]);
  assert.equal(runs[3], [2_501, perRun]);
  assert.equal(runs[runs.length - 1], [2_541, 1]);
  let next = 1;
  for (const [first, n] of runs) {
    assert.is(first, next, 'runs are consecutive');
    next = first + n;
  }
  assert.is(next, 2_542);
  s = await LmdbStorage.open({ path, mapSizeBytes });
  const expected = [
    ...commands(1, 2_500, 1, 10),
    ...commands(2_501, 2_540, 1, 10_000),
    command(2_541, 1, logRunBytesMax + 1),
  ];
  assert.equal(plain(s.entries(1, 2_542, Infinity)), plain(expected));
  // Reads that start and end inside runs.
  assert.equal(plain(s.entries(1_000, 1_030, Infinity)), plain(expected.slice(999, 1_029)));
  assert.equal(plain(s.entries(2_530, 2_542, Infinity)), plain(expected.slice(2_529)));
  assert.is(s.logBytes(), storedBytes(s));
  await s.close();
});

test('a truncation keeps the prefix of the run it cuts; a compaction its suffix', async () => {
  const path = freshPath();
  let s = await LmdbStorage.open({ path, mapSizeBytes });
  await s.write({ entries: commands(1, 100, 1) });
  // A conflicting entry at 50 truncates 50..100 inside the one run.
  await s.write({ entries: [command(50, 2)], hardState: { term: 2, vote: null, commitIndex: 0 } });
  assert.equal(await rawRunsOpen(s, path), [[1, 49], [50, 1]]);
  s = await LmdbStorage.open({ path, mapSizeBytes });
  assert.is(s.lastIndex(), 50);
  assert.equal(plain(s.entries(1, 51, Infinity)), plain([...commands(1, 49, 1), command(50, 2)]));
  // A snapshot at 40 keeps the log; compacting to 30 cuts the first run.
  await s.write({ snapshot: { index: 40, term: 1, timeMs: 0, members: membersA } });
  await s.write({ entries: commands(51, 60, 2) });
  await s.compact(30);
  assert.is(s.firstIndex(), 31);
  assert.is(s.term(30), 1);
  assert.equal(await rawRunsOpen(s, path), [[31, 19], [50, 1], [51, 10]]);
  s = await LmdbStorage.open({ path, mapSizeBytes });
  assert.is(s.firstIndex(), 31);
  assert.is(s.term(30), 1);
  assert.is(s.term(45), 1);
  assert.is(s.term(55), 2);
  assert.equal(
    plain(s.entries(31, 61, Infinity)),
    plain([...commands(31, 49, 1), command(50, 2), ...commands(51, 60, 2)]),
  );
  // An explicit truncation inside the last run, then one exactly at a run's start.
  await s.write({ truncateFromIndex: 55 });
  await s.write({ truncateFromIndex: 50 });
  assert.equal(await rawRunsOpen(s, path), [[31, 19]]);
  s = await LmdbStorage.open({ path, mapSizeBytes });
  assert.is(s.lastIndex(), 49);
  assert.is(s.logBytes(), storedBytes(s));
  await s.close();
});

/** Close `s` and list its runs. */
async function rawRunsOpen(s: LmdbStorage, path: string): Promise<[number, number][]> {
  await s.close();
  return rawRuns(path);
}

test('a log stored one entry per key (the layout before runs) reads and grows the same', async () => {
  const path = freshPath();
  // What LmdbStorage wrote before runs: each entry under its own index; no meta yet (a log that
  // never compacted and never recorded its byte count has none).
  const env = open({ path, maxDbs: 16, encoding: 'binary', keyEncoding: 'ordered-binary' });
  const db = env.openDB<Uint8Array, number>({
    name: 'entries',
    encoding: 'binary',
    keyEncoding: 'ordered-binary',
  });
  const old = commands(1, 20, 1);
  await env.transaction(() => {
    for (const e of old) db.put(e.index, encodeEntry(e));
  });
  await env.close();
  let s = await LmdbStorage.open({ path, mapSizeBytes });
  assert.is(s.lastIndex(), 20);
  assert.is(s.term(7), 1);
  assert.equal(plain(s.entries(1, 21, Infinity)), plain(old));
  await s.write({ entries: commands(15, 40, 2) });
  await s.write({ snapshot: { index: 30, term: 2, timeMs: 0, members: membersA } });
  await s.compact(10);
  assert.equal(await rawRunsOpen(s, path), [
    [11, 1],
    [12, 1],
    [13, 1],
    [14, 1],
    [15, 26],
  ]);
  s = await LmdbStorage.open({ path, mapSizeBytes });
  assert.equal(
    plain(s.entries(11, 41, Infinity)),
    plain([...commands(11, 14, 1), ...commands(15, 40, 2)]),
  );
  await s.close();
});

const seeds = [1, 2, 3, 4];
const stepsPerSeed = 120;

for (const seed of seeds) {
  test(`random appends, truncations, snapshots and compactions read as in memory (seed ${seed})`, async () => {
    const random = generator(seed);
    const path = freshPath();
    // Small writes on the calling thread and big ones on lmdb's write thread both happen here.
    let lmdb = await LmdbStorage.open({ path, mapSizeBytes });
    const memory = new MemoryStorage();
    let term = 1;
    const sizes = [1, 1, 2, 5, 40, 300, logRunEntriesMax + 7];
    for (let step = 0; step < stepsPerSeed; step++) {
      const first = memory.firstIndex();
      const last = memory.lastIndex();
      const what = random(10);
      let batch: WriteBatch | null = null;
      let compactTo = 0;
      if (what < 6 || last < first) {
        // Append, at the end mostly, else over a stored suffix.
        const from = random(3) > 0 || last < first ? last + 1 : first + random(last - first + 1);
        if (random(5) === 0) term++;
        const n = sizes[random(sizes.length)]!;
        const bytes = random(20) === 0 && n <= 40 ? 20_000 : random(200);
        batch = { entries: commands(from, from + n - 1, term, bytes) };
      } else if (what === 6) {
        batch = { truncateFromIndex: first + random(last - first + 1) };
      } else if (what < 9) {
        // A snapshot inside the log keeps it; a compaction up to somewhere at or below it.
        const at = first + random(last - first + 1);
        batch = { snapshot: { index: at, term: memory.term(at)!, timeMs: 0, members: membersA } };
        compactTo = first + random(at - first + 1);
      } else {
        // An installed snapshot past the end discards the log.
        batch = {
          snapshot: { index: last + 1 + random(50), term, timeMs: 0, members: membersA },
        };
      }
      await memory.write(batch);
      await lmdb.write(batch);
      if (compactTo > 0) {
        await memory.compact(compactTo);
        await lmdb.compact(compactTo);
      }
      if (random(15) === 0) {
        await lmdb.close();
        lmdb = await LmdbStorage.open({ path, mapSizeBytes });
      }
      const where = `seed ${seed}, step ${step}`;
      assert.is(lmdb.firstIndex(), memory.firstIndex(), `firstIndex, ${where}`);
      assert.is(lmdb.lastIndex(), memory.lastIndex(), `lastIndex, ${where}`);
      assert.is(lmdb.logBytes(), memory.logBytes(), `logBytes, ${where}`);
      const f = memory.firstIndex();
      const l = memory.lastIndex();
      assert.equal(
        plain(lmdb.entries(f, l + 1, Infinity)),
        plain(memory.entries(f, l + 1, Infinity)),
        `entries, ${where}`,
      );
      for (let k = 0; k < 5 && l >= f; k++) {
        const from = f + random(l - f + 1);
        const to = from + 1 + random(l - from + 1);
        const bytesMax = random(3) === 0 ? 1 : 1 + random(30_000);
        assert.equal(
          plain(lmdb.entries(from, to, bytesMax)),
          plain(memory.entries(from, to, bytesMax)),
          `entries(${from}, ${to}, ${bytesMax}), ${where}`,
        );
        assert.is(lmdb.term(from), memory.term(from), `term(${from}), ${where}`);
      }
      assert.is(lmdb.term(f - 1), memory.term(f - 1), `term at the compaction point, ${where}`);
    }
    assert.is(lmdb.logBytes(), storedBytes(lmdb));
    await lmdb.close();
    // Every stored run within its limits.
    for (const [, n] of await rawRuns(path)) assert.ok(n >= 1 && n <= logRunEntriesMax);
  });
}

test.run();
