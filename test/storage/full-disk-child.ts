// Child of full-disk.test.ts: under a file-size limit, writes to an LmdbStorage at argv[2] (every
// write through lmdb's write thread: `syncCommitBytesMax` 0, where lmdb leaves a rejection of its
// own unobserved) until one fails, prints why, gives late rejections time to surface, then exits 0.
import process from 'node:process';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

process.on('SIGXFSZ', () => {}); // the limit makes the write fail (EFBIG) instead of killing us
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
