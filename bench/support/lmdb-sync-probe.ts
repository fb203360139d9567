/**
 * Investigation probe (not a bench row producer): the latency of one durable LMDB commit on this
 * disk, three ways: `transactionSync` in a tight loop, one `put` then `await db.flushed`, and the
 * project's `LmdbStorage.write` of one 100-byte entry. Prints mean and p50/p99 in ms on stderr.
 *
 * Usage: `tsx bench/support/lmdb-sync-probe.ts [--count 2000]`
 *
 * @example
 * ```sh
 * node_modules/.bin/tsx bench/support/lmdb-sync-probe.ts --count 1000
 * ```
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { open } from 'lmdb';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { currentRuntime } from '../../lib/runtime.ts';

const at = process.argv.indexOf('--count');
const count = at === -1 ? 2000 : Number(process.argv[at + 1]);
const dir = mkdtempSync(join(tmpdir(), 'edgeraft-lmdb-probe-'));

function report(name: string, samplesMs: number[]): void {
  const s = Float64Array.from(samplesMs).sort();
  const q = (f: number) => s[Math.min(s.length - 1, Math.ceil(f * s.length) - 1)]!;
  const mean = samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length;
  process.stderr.write(
    `${currentRuntime()} ${name}: mean ${mean.toFixed(3)} ms, p50 ${q(0.5).toFixed(3)}, p99 ${
      q(0.99).toFixed(3)
    } (${count} commits)\n`,
  );
}

try {
  const root = open({ path: join(dir, 'raw'), maxDbs: 2, noSync: false, overlappingSync: true });
  const db = root.openDB({ name: 'e', encoding: 'binary', keyEncoding: 'ordered-binary' });
  const value = new Uint8Array(130).fill(7);
  let samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    root.transactionSync(() => db.putSync(i, value));
    samples.push(performance.now() - t0);
  }
  report('transactionSync(putSync) [overlapping sync]', samples);
  samples = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    db.put(count + i, value);
    await root.flushed;
    samples.push(performance.now() - t0);
  }
  report('put + await flushed', samples);
  samples = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await db.put(2 * count + i, value);
    samples.push(performance.now() - t0);
  }
  report('await put (may precede sync)', samples);
  await root.close();

  const strict = open({
    path: join(dir, 'strict'),
    maxDbs: 2,
    noSync: false,
    overlappingSync: false,
  });
  const sdb = strict.openDB({ name: 'e', encoding: 'binary', keyEncoding: 'ordered-binary' });
  samples = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await sdb.put(i, value);
    samples.push(performance.now() - t0);
  }
  report('await put [overlappingSync false]', samples);
  await strict.close();

  const storage = await LmdbStorage.open({ path: join(dir, 'ours') });
  samples = [];
  const data = new Uint8Array(100).fill(7);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const index = storage.lastIndex() + 1;
    await storage.write({ entries: [{ type: 'command', index, term: 1, timeMs: 0, data }] });
    samples.push(performance.now() - t0);
  }
  report('LmdbStorage.write 1 entry', samples);
  // What the server does per command today: the entry, then a write of the new commit index.
  samples = [];
  const pairs: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const index = storage.lastIndex() + 1;
    await storage.write({
      entries: [{ type: 'command', index, term: 1, timeMs: 0, data }],
      hardState: { term: 1, vote: 'n1', commitIndex: index - 1 },
    });
    const t1 = performance.now();
    await storage.write({ hardState: { term: 1, vote: 'n1', commitIndex: index } });
    samples.push(t1 - t0);
    pairs.push(performance.now() - t0);
  }
  report('LmdbStorage.write entry+hardState (of a pair)', samples);
  report('LmdbStorage.write pair: entry, then commit-only hardState', pairs);
  // The same write after an idle gap (as between a client's commands at 1 in flight).
  samples = [];
  for (let i = 0; i < Math.min(count, 300); i++) {
    await new Promise((r) => setTimeout(r, 1));
    const t0 = performance.now();
    const index = storage.lastIndex() + 1;
    await storage.write({ entries: [{ type: 'command', index, term: 1, timeMs: 0, data }] });
    samples.push(performance.now() - t0);
  }
  report('LmdbStorage.write 1 entry after a 1 ms idle gap', samples);
  await storage.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
