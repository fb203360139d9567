// Child of full-disk.test.ts: sets a file-size limit of argv[3] bytes on itself, then writes to an
// LmdbStorage at argv[2] (every write through lmdb's write thread: `syncCommitBytesMax` 0, where
// lmdb leaves a rejection of its own unobserved) until one fails, prints why, gives late
// rejections time to surface, then exits 0. The limit is set only once the runtime is up, as
// `edgeraft torture` does: a limit from exec also caught the runtime's own cache files (Deno's
// code cache grew past 2 MB on a fresh machine and SIGXFSZ ended the child before it started).
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

process.on('SIGXFSZ', () => {}); // the limit makes the write fail (EFBIG) instead of killing us
execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${process.argv[3]}:`]);
const storage = await LmdbStorage.open({ path: process.argv[2]!, syncCommitBytesMax: 0 });
const data = new Uint8Array(1000).fill(7);
try {
  for (let round = 0; round < 10_000; round++) {
    const first = storage.lastIndex() + 1;
    const entries = Array.from({ length: 10 }, (_, i) => ({
      type: 'command' as const,
      index: first + i,
      term: 1,
      timeMs: 0,
      data,
    }));
    await storage.write({ entries });
  }
  console.log('never failed');
} catch (error) {
  console.log(`failed: ${(error as Error).name}: ${(error as Error).message}`);
}
await new Promise((resolve) => setTimeout(resolve, 500));
process.exit(0);
