/**
 * Storage-failure child: run with a small file-size limit (`ulimit -f`, SIGXFSZ ignored) so that
 * LMDB's writes fail with a real I/O error. It appends 1-KiB entries until a write rejects, then
 * tries once more, and prints one JSON line: what each failure was and the last index it kept.
 */
import process from 'node:process';
import { StorageError } from '../../lib/base/errors.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { commands } from './contract.ts';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: failure-child.ts PATH');
const storage = await LmdbStorage.open({ path, mapSizeBytes: 64 * 1024 ** 2 });
const describe = (e: unknown) => ({
  storageError: e instanceof StorageError,
  message: String((e as Error).message),
});
let first: unknown = null;
let acked = 0;
for (let round = 0; round < 10_000 && first === null; round++) {
  const from = storage.lastIndex() + 1;
  try {
    await storage.write({ entries: commands(from, from + 49, 1, 1024) });
    acked = storage.lastIndex();
  } catch (error) {
    first = error;
  }
}
let second: unknown = null;
try {
  await storage.write({
    entries: commands(storage.lastIndex() + 1, storage.lastIndex() + 1, 1, 10),
  });
} catch (error) {
  second = error;
}
process.stdout.write(
  JSON.stringify({
    first: first && describe(first),
    second: second && describe(second),
    acked,
    lastIndex: storage.lastIndex(),
  }) + '\n',
);
process.exit(0);
