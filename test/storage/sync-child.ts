// Child of sync-commit.test.ts: opens an LmdbStorage at argv[2] with `syncCommitBytesMax` argv[3],
// then, between marker lines on stderr (written synchronously, so strace sees them in order),
// does one small durable write and prints `acknowledged` once it resolved.
import { writeSync } from 'node:fs';
import process from 'node:process';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

const storage = await LmdbStorage.open({
  path: process.argv[2]!,
  syncCommitBytesMax: Number(process.argv[3]),
});
await storage.write({
  entries: [{ type: 'noop', index: 1, term: 1, timeMs: 0 }],
  hardState: { term: 1, vote: null, commitIndex: 0 },
});
await new Promise((resolve) => setTimeout(resolve, 50));
writeSync(2, 'MARK-begin\n');
await storage.write({
  entries: [{ type: 'command', index: 2, term: 1, timeMs: 0, data: new Uint8Array(100) }],
});
writeSync(2, 'MARK-acknowledged\n');
await storage.close();
