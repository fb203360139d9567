/**
 * Install-crash child: opens the machine on disk at argv[2] (an LMDB key-value machine through the
 * executor), prints `open <appliedIndex>`, then installs the snapshot whose metadata is in
 * argv[3].json and whose bytes are argv[3].bin, streamed in 16 KiB chunks, prints `installed`
 * and exits. The parent SIGKILLs it at random moments of the install.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { openDiskMember } from './disk-support.ts';

const [path, snapshot] = process.argv.slice(2);
if (path === undefined || snapshot === undefined) {
  throw new Error('usage: disk-install-child.ts DATA_DIR SNAPSHOT');
}
const meta = JSON.parse(readFileSync(`${snapshot}.json`, 'utf8'));
const bytes = readFileSync(`${snapshot}.bin`);
const member = await openDiskMember(path);
process.stdout.write(`open ${member.openedAt}\n`);
await member.executor.restore(
  meta,
  (async function* () {
    for (let at = 0; at < bytes.byteLength; at += 16_384) {
      yield new Uint8Array(bytes.subarray(at, at + 16_384));
    }
  })(),
);
process.stdout.write('installed\n');
await member.close();
process.exit(0);
