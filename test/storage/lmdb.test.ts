// Proves the LMDB storage's own promises: exact keys above 2^32 on disk, damaged or missing
// entries reported by index, options refused by name, a real I/O failure that stops all writes,
// and snapshot data that is chunked, resumable by offset and survives reopen.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ShutdownError, StorageError } from '../../lib/base/errors.ts';
import type { SnapshotMeta } from '../../lib/base/messages.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { storeSnapshot } from '../../lib/storage/storage.ts';
import { tsCommand } from '../support/child.ts';
import { commands, membersA, plain, rejects } from './contract.ts';

const test = suite('lmdb storage');
const root = mkdtempSync(join(tmpdir(), 'edgeraft-lmdb-'));
let count = 0;
const freshPath = () => join(root, `db-${count++}`);
test.after(() => rmSync(root, { recursive: true, force: true }));

/** Open the environment with raw lmdb, no project code, to inspect or damage it. */
function rawEntries(path: string) {
  const env = open({ path, maxDbs: 8, encoding: 'binary', keyEncoding: 'ordered-binary' });
  return {
    env,
    entries: env.openDB<Uint8Array, number>({
      name: 'entries',
      encoding: 'binary',
      keyEncoding: 'ordered-binary',
    }),
  };
}

test('keys above 2^32 are stored exactly and in order', async () => {
  const path = freshPath();
  const s = await LmdbStorage.open({ path });
  await s.write({ entries: commands(1, 7, 1) });
  const high = 2 ** 32 + 5;
  await s.write({ snapshot: { index: high - 1, term: 1, timeMs: 0, members: membersA } });
  // One write per entry: each its own run, under its own key.
  for (const e of commands(high, high + 2, 1)) await s.write({ entries: [e] });
  await s.close();
  const raw = rawEntries(path);
  assert.equal([...raw.entries.getKeys({})], [high, high + 1, high + 2]);
  await raw.env.close();
});

test('a corrupted or missing entry is a StorageError naming its index', async () => {
  const path = freshPath();
  let s = await LmdbStorage.open({ path });
  // One write per entry, so that each is a run of its own, under its own key.
  for (const e of commands(1, 10, 1)) await s.write({ entries: [e] });
  await s.close();
  const raw = rawEntries(path);
  await raw.entries.put(4, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  await raw.entries.remove(7);
  await raw.env.close();
  s = await LmdbStorage.open({ path });
  assert.equal(plain(s.entries(1, 4, Infinity)), plain(commands(1, 3, 1)));
  assert.throws(
    () => s.entries(1, 11, Infinity),
    (e: unknown) => e instanceof StorageError && /index 4/.test(e.message),
  );
  assert.throws(
    () => s.term(4),
    (e: unknown) => e instanceof StorageError && /index 4/.test(e.message),
  );
  assert.throws(
    () => s.entries(5, 11, Infinity),
    (e: unknown) => e instanceof StorageError && /Missing entry at index 7/.test(e.message),
  );
  await s.close();
  // The last entry is read when opening: damage there fails the open.
  const raw2 = rawEntries(path);
  await raw2.entries.put(10, new Uint8Array([0x85, 0x01]));
  await raw2.env.close();
  await rejects(LmdbStorage.open({ path }), StorageError, /index 10/);
});

test('bad options are refused by name', async () => {
  await rejects(LmdbStorage.open({ path: 42 } as never), TypeError, /option path/);
  await rejects(
    LmdbStorage.open({ path: freshPath(), mapSizeBytes: 10 }),
    RangeError,
    /option mapSizeBytes/,
  );
  await rejects(
    LmdbStorage.open({ path: freshPath(), snapshotChunkBytesMax: 0 }),
    RangeError,
    /option snapshotChunkBytesMax/,
  );
  await rejects(LmdbStorage.open({ path: freshPath(), mapsize: 1 } as never), TypeError, /mapsize/);
});

test('a closed storage refuses writes', async () => {
  const s = await LmdbStorage.open({ path: freshPath() });
  await s.close();
  await s.close();
  await rejects(s.write({ entries: commands(1, 1, 1) }), ShutdownError, /closed/);
});

test('an I/O failure rejects the write and every later one', async () => {
  const path = freshPath();
  const script = fileURLToPath(
    new URL('./failure-child.ts', (import.meta as unknown as { url: string }).url),
  );
  const { command, args } = tsCommand(script, [path]);
  // 4 MiB file-size limit; SIGXFSZ ignored so that the write fails with an error instead.
  const child = spawn('bash', [
    '-c',
    `trap '' XFSZ; ulimit -f 4096; exec "$@"`,
    'bash',
    command,
    ...args,
  ], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Uint8Array) => (out += new TextDecoder().decode(c)));
  child.stderr.on('data', (c: Uint8Array) => (err += new TextDecoder().decode(c)));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.is(code, 0, err);
  const result = JSON.parse(out.trim().split('\n').pop()!);
  assert.equal(result.first?.storageError, true, out);
  assert.match(result.first.message, /^Storage failed: /);
  assert.equal(result.second?.storageError, true, out);
  assert.is(result.lastIndex, result.acked, 'the failed write did not show in the log');
  assert.ok(result.acked > 0);
  // What was acknowledged before the failure is on disk.
  const s = await LmdbStorage.open({ path });
  assert.ok(s.lastIndex() >= result.acked);
  assert.is(s.entries(1, result.acked + 1, Infinity).length, result.acked);
  await s.close();
});

/** Snapshot metadata at `index`/`term` for a one-member configuration. */
function snapMeta(index: number, term: number): SnapshotMeta {
  return { index, term, timeMs: 0, members: [{ id: 'a', type: 'ACTIVE' }] };
}

async function* chunksOf(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

test('snapshot data: re-chunked, read back, resumable by offset, newest kept across reopen', async () => {
  const path = freshPath();
  let s = await LmdbStorage.open({ path, snapshotChunkBytesMax: 1000 });
  assert.is(s.snapshots.info(), null);
  assert.is(s.snapshots.chunkAt(0), null);
  const bytes = new Uint8Array(4567).map((_, i) => (i * 13) & 0xff);
  const info = await storeSnapshot(s, snapMeta(50, 3), chunksOf(bytes, 333));
  assert.equal([info.index, info.term, info.bytes, info.chunks, info.chunkBytes], [
    50,
    3,
    4567,
    5,
    1000,
  ]);
  const read: number[] = [];
  for await (const chunk of s.snapshots.read()) read.push(...chunk);
  assert.equal(read, Array.from(bytes));
  const part = s.snapshots.chunkAt(2500)!;
  assert.equal([part.offsetBytes, part.data.byteLength, part.done], [2500, 500, false]);
  assert.equal(Array.from(part.data), Array.from(bytes.subarray(2500, 3000)));
  assert.equal(s.snapshots.chunkAt(4000)!.done, true);
  assert.equal(s.snapshots.chunkAt(4567)!.data.byteLength, 0);
  assert.throws(() => s.snapshots.chunkAt(4568), RangeError);
  // A failing source leaves the previous snapshot current.
  async function* failing(): AsyncIterable<Uint8Array> {
    yield new Uint8Array(2500);
    throw new Error('source broke');
  }
  await rejects(storeSnapshot(s, snapMeta(60, 3), failing()), Error, /source broke/);
  assert.is(s.snapshots.info()!.index, 50);
  // A newer snapshot replaces it; only its chunks remain after reopen.
  await storeSnapshot(s, snapMeta(70, 4), [new Uint8Array(1500).fill(9)]);
  await s.close();
  s = await LmdbStorage.open({ path, snapshotChunkBytesMax: 1000 });
  assert.equal([s.snapshots.info()!.index, s.snapshots.info()!.bytes], [70, 1500]);
  const after: number[] = [];
  for await (const chunk of s.snapshots.read()) after.push(...chunk);
  assert.equal(after, new Array(1500).fill(9));
  await s.close();
  const env = open({ path, maxDbs: 8 });
  const chunks = env.openDB<Uint8Array, number[]>({
    name: 'snapshots',
    encoding: 'binary',
    keyEncoding: 'ordered-binary',
  });
  assert.equal([...chunks.getKeys({})].map((k) => k[0]), [70, 70]);
  await env.close();
});

test('an incomplete snapshot write is discarded on reopen', async () => {
  const path = freshPath();
  let s = await LmdbStorage.open({ path, snapshotChunkBytesMax: 100 });
  await storeSnapshot(s, snapMeta(5, 1), [new Uint8Array(250)]);
  await s.close();
  // Chunks of a write that never recorded itself, as a crash mid-write leaves them.
  const env = open({ path, maxDbs: 8 });
  const chunks = env.openDB<Uint8Array, number[]>({
    name: 'snapshots',
    encoding: 'binary',
    keyEncoding: 'ordered-binary',
  });
  await chunks.put([9, 99, 0], new Uint8Array(100));
  await chunks.put([9, 99, 1], new Uint8Array(100));
  await env.close();
  s = await LmdbStorage.open({ path, snapshotChunkBytesMax: 100 });
  assert.equal([s.snapshots.info()!.index, s.snapshots.info()!.chunks], [5, 3]);
  const next = await storeSnapshot(s, snapMeta(9, 1), [new Uint8Array(10)]);
  assert.ok(next.writeId > 99, 'write ids never reuse a stale one');
  await s.close();
  const env2 = open({ path, maxDbs: 8 });
  const chunks2 = env2.openDB<Uint8Array, number[]>({
    name: 'snapshots',
    encoding: 'binary',
    keyEncoding: 'ordered-binary',
  });
  assert.equal([...chunks2.getKeys({})], [[9, next.writeId, 0]]);
  await env2.close();
});

test.run();
