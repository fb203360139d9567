// Proves that an LMDB storage killed with SIGKILL at random moments keeps every acknowledged entry
// intact and contiguous, under the runtime the suite runs in.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { spawnTs } from '../support/child.ts';
import { dataFor } from './contract.ts';

const killsMin = 12;
const childScript = fileURLToPath(
  new URL('./crash-child.ts', (import.meta as unknown as { url: string }).url),
);

/** Run the child until it has acknowledged something, then SIGKILL it after a random delay. */
function runAndKill(path: string, delayMsMax: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(childScript, [path]);
    let acked = 0;
    let buffered = '';
    let stderr = '';
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    child.stdout!.on('data', (chunk: Uint8Array) => {
      buffered += new TextDecoder().decode(chunk);
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) acked = Math.max(acked, Number(line));
      if (acked > 0 && killTimer === undefined) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), Math.random() * delayMsMax);
      }
    });
    child.stderr!.on('data', (chunk: Uint8Array) => (stderr += new TextDecoder().decode(chunk)));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`Crash child exited with code ${code}, signal ${signal}: ${stderr}`));
    });
  });
}

test(`every acknowledged entry survives ${killsMin} SIGKILLs`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-crash-'));
  try {
    let ackedMax = 0;
    let firstMin = 1;
    for (let kill = 0; kill < killsMin; kill++) {
      const acked = await runAndKill(dir, 150);
      assert.ok(acked > ackedMax, `run ${kill} acknowledged ${acked} after ${ackedMax}`);
      ackedMax = acked;
      const storage = await LmdbStorage.open({ path: dir, mapSizeBytes: 256 * 1024 ** 2 });
      try {
        // Every acknowledged entry is there; anything past it is a whole batch that committed.
        assert.ok(
          storage.lastIndex() >= acked,
          `last index ${storage.lastIndex()} below acknowledged ${acked}`,
        );
        // The child compacts now and then: the log starts at most where it did after the last
        // run's kill, never below it, and the compaction point keeps its term.
        const first = storage.firstIndex();
        assert.ok(first >= firstMin, `first index ${first} below an earlier ${firstMin}`);
        assert.ok(first - 1 <= acked, `compacted to ${first - 1} past acknowledged ${acked}`);
        assert.ok(
          storage.term(first - 1) !== undefined,
          `term at the compaction point ${first - 1}`,
        );
        firstMin = first;
        const entries = storage.entries(first, storage.lastIndex() + 1, Infinity);
        assert.is(entries.length, storage.lastIndex() - first + 1);
        for (const [i, entry] of entries.entries()) {
          assert.is(entry.index, first + i);
          assert.is(entry.type, 'command');
          const expected = dataFor(entry.index, 64 + (entry.index % 200));
          if (entry.type === 'command') {
            assert.equal(
              Array.from(entry.data),
              Array.from(expected),
              `data of entry ${entry.index}`,
            );
          }
        }
        assert.ok(storage.hardState().term >= 1);
      } finally {
        await storage.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
