/**
 * Lock-test child: `lock-holder-child.ts lock|storage DIR [go]`, driven by lines on stdin. With
 * `go` it prints `ready` and opens only on the line `go`, so that children started one after
 * another open at the same instant (their start-up times differ by far more than an acquire
 * takes). It takes DIR's lock with `acquireDirLock` (`lock`) or opens `LmdbStorage` on it
 * (`storage`, appending one entry), prints `held PID`, and keeps it until the line `release`
 * (then releases and exits 0), the end of stdin (exits 0, the lock left behind) or SIGKILL.
 * Refused with `DataDirectoryInUseError` it prints the message on stderr and exits 3; any other
 * failure exits 1.
 *
 * Lines rather than SIGTERM: a Deno child of a Deno parent dies of SIGTERM before its handler runs.
 *
 * @module
 */
import process from 'node:process';
import { DataDirectoryInUseError } from '../../lib/base/errors.ts';
import { acquireDirLock } from '../../lib/storage/dir-lock.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

const [mode, dir, go] = process.argv.slice(2);
if ((mode !== 'lock' && mode !== 'storage') || dir === undefined) {
  throw new Error('usage: lock-holder-child.ts lock|storage DIR [go]');
}

const waiting = new Map<string, () => void>();
/** Resolves at the line `text` on stdin. */
function line(text: string): Promise<void> {
  return new Promise((resolve) => waiting.set(text, resolve));
}
let input = '';
process.stdin.on('data', (chunk: Uint8Array) => {
  input += new TextDecoder().decode(chunk);
  for (let end = input.indexOf('\n'); end >= 0; end = input.indexOf('\n')) {
    waiting.get(input.slice(0, end))?.();
    input = input.slice(end + 1);
  }
});
// The parent is gone (or, under Deno, is killing this child and closed stdin first): exit at once
// and leave the lock as a crash would.
process.stdin.on('end', () => process.exit(0));

if (go === 'go') {
  const started = line('go');
  process.stdout.write('ready\n');
  await started;
}
const released = line('release');
let release: () => Promise<void>;
try {
  if (mode === 'lock') {
    const lock = acquireDirLock(dir);
    release = () => Promise.resolve(lock.release());
  } else {
    const storage = await LmdbStorage.open({ path: dir, mapSizeBytes: 16 * 1024 ** 2 });
    const index = storage.lastIndex() + 1;
    await storage.write({ entries: [{ type: 'noop', index, term: 1, timeMs: 0 }] });
    release = () => storage.close();
  }
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(error instanceof DataDirectoryInUseError ? 3 : 1);
}
process.stdout.write(`held ${process.pid}\n`);
await released;
await release();
process.exit(0);
