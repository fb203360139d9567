/**
 * Append throughput of `LmdbStorage`, in this runtime: durable writes of command entries with
 * 100-byte and 1-KiB data in batches of 1, 64 and 1,024, each write awaited before the next, next
 * to the ceiling measured in the same run: raw `lmdb` puts of values of the same encoded size in
 * one event turn, then `await db.flushed`, with no project code. A fresh temporary folder per case.
 *
 * Made to be trusted on a noisy machine, where the disk's sync latency drifts by more than the
 * difference measured: each case interleaves `rounds` pairs of rounds of `roundMs` (raw, ours, raw,
 * ours, ...), and the ratio reported is the median of the per-pair ratios (ours / raw of the
 * same pair, seconds apart, so a drift slower than a pair cancels out), with their spread
 * (`ratioMin`, `ratioMax`). `entriesPerSec` and `ceilingEntriesPerSec` are the medians of each
 * side's rounds. Prints ROW lines (see bench/support/rows.ts).
 *
 * Usage: `tsx bench/append.bench.ts [--round-ms 400] [--rounds 5]`; `npm run bench:append` runs it
 * under Node, Bun and Deno.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { open } from 'lmdb';
import type { Entry } from '../lib/base/messages.ts';
import { encodeEntry } from '../lib/storage/codec.ts';
import { LmdbStorage } from '../lib/storage/lmdb.ts';
import { currentRuntime } from '../test/support/child.ts';
import { printRow, progress } from './support/rows.ts';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const roundMs = flag('--round-ms', 400);
const rounds = flag('--rounds', 5);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`Flag --rounds: ${rounds}`);
const entryDataBytesList = [100, 1024];
const batchList = [1, 64, 1024];
const mapSizeBytes = 4 * 1024 ** 3;
const runtime = currentRuntime();

/** The median of `values` (the mean of the middle two for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function entriesFor(first: number, count: number, data: Uint8Array): Entry[] {
  const out: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = { type: 'command', index: first + i, term: 1, timeMs: 1_700_000_000_000, data };
  }
  return out;
}

/** Entries per second of our storage over one round. */
async function oursRound(storage: LmdbStorage, data: Uint8Array, batch: number): Promise<number> {
  const started = performance.now();
  let written = 0;
  while (performance.now() - started < roundMs) {
    await storage.write({ entries: entriesFor(storage.lastIndex() + 1, batch, data) });
    written += batch;
  }
  return written / ((performance.now() - started) / 1000);
}

type RawDb = ReturnType<ReturnType<typeof open>['openDB']>;
/** Entries per second of raw lmdb puts of `value` over one round. */
async function rawRound(
  root: ReturnType<typeof open>,
  db: RawDb,
  value: Uint8Array,
  batch: number,
  next: { index: number },
): Promise<number> {
  const started = performance.now();
  let written = 0;
  while (performance.now() - started < roundMs) {
    for (let i = 0; i < batch; i++) db.put(next.index++, value);
    await root.flushed;
    written += batch;
  }
  return written / ((performance.now() - started) / 1000);
}

for (const dataBytes of entryDataBytesList) {
  for (const batch of batchList) {
    progress(`${runtime}: append ${dataBytes} B x ${batch}`);
    const dir = mkdtempSync(join(tmpdir(), 'edgeraft-bench-append-'));
    const data = new Uint8Array(dataBytes).fill(7);
    const valueBytes = encodeEntry(entriesFor(1, 1, data)[0]!).byteLength;
    const storage = await LmdbStorage.open({ path: join(dir, 'ours'), mapSizeBytes });
    const root = open({
      path: join(dir, 'raw'),
      mapSize: mapSizeBytes,
      maxDbs: 2,
      noSync: false,
      overlappingSync: true,
      cache: false,
    });
    const db = root.openDB({ name: 'entries', encoding: 'binary', keyEncoding: 'ordered-binary' });
    const value = new Uint8Array(valueBytes).fill(7);
    const next = { index: 1 };
    const oursRounds: number[] = [];
    const rawRounds: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const raw = await rawRound(root, db, value, batch, next);
      const ours = await oursRound(storage, data, batch);
      rawRounds.push(raw);
      oursRounds.push(ours);
      ratios.push(ours / raw);
    }
    const ours = median(oursRounds);
    const ceiling = median(rawRounds);
    await storage.close();
    await root.close();
    rmSync(dir, { recursive: true, force: true });
    printRow({
      bench: 'append',
      runtime,
      entryBytes: String(dataBytes),
      batch: String(batch),
      entriesPerSec: Math.round(ours),
      mbPerSec: Number(((ours * dataBytes) / 1e6).toFixed(2)),
      ceilingEntriesPerSec: Math.round(ceiling),
      ratio: Number(median(ratios).toFixed(3)),
      ratioMin: Number(Math.min(...ratios).toFixed(3)),
      ratioMax: Number(Math.max(...ratios).toFixed(3)),
      pairs: rounds,
    });
  }
}
