// A machine on disk SIGKILLed at random moments while it installs a snapshot (megabytes of records
// staged in many transactions, then one switch) restarts every time on exactly its old state or
// exactly the new one (records, sessions and applied index alike), never a mix, and a later
// install completes.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '../../lib/base/messages.ts';
import { seededRandom } from '../../lib/core/random.ts';
import type { StateSnapshotMeta } from '../../lib/state/executor.ts';
import { kvCommand } from '../../lib/state/kv.ts';
import { spawnTs } from '../support/child.ts';
import { collect } from './entries.ts';
import { type DiskMember, EntryMaker, openDiskMember, tempDir } from './disk-support.ts';

const childScript = fileURLToPath(
  new URL('./disk-install-child.ts', (import.meta as unknown as { url: string }).url),
);
/** Installs killed at random moments before one of the same snapshot is let finish. */
const killsPerInstall = 4;

/** A digest of everything the store holds: applied index, sessions and every record. */
function digest(m: DiskMember): string {
  const view = m.storage.openMachineStore().view();
  try {
    let hash = 2166136261;
    let records = 0;
    for (const { key, value } of view.pairs()) {
      for (const b of key) hash = Math.imul(hash ^ b, 16777619) >>> 0;
      for (const b of value) hash = Math.imul(hash ^ b, 16777619) >>> 0;
      records++;
    }
    return `${view.applied.index}/${JSON.stringify(view.sessions).length}/${records}/${hash}`;
  } finally {
    view.close();
  }
}

/** Kill the child `delayMs` after it opened (or let it finish); resolves with whether it installed. */
function install(dir: string, snapshot: string, delayMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(childScript, [dir, snapshot]);
    let out = '';
    let stderr = '';
    let timer: ReturnType<typeof setTimeout> | undefined;
    child.stdout!.on('data', (chunk: Uint8Array) => {
      out += new TextDecoder().decode(chunk);
      if (timer === undefined && out.includes('open ')) {
        timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), delayMs);
      }
    });
    child.stderr!.on('data', (chunk: Uint8Array) => (stderr += new TextDecoder().decode(chunk)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && out.includes('installed')) resolve(true);
      else if (signal === 'SIGKILL') resolve(out.includes('installed'));
      else reject(new Error(`Install child exited with code ${code}, signal ${signal}: ${stderr}`));
    });
  });
}

test('an install SIGKILLed at random moments leaves the old state or the new, never a mix', async () => {
  const source = tempDir('disk-install-src');
  const target = tempDir('disk-install-dst');
  const random = seededRandom(11);
  try {
    // Three snapshots of a machine of ~3 MB, each a different state at a higher index.
    const a = await openDiskMember(source.path);
    const e = new EntryMaker();
    const snapshots: { file: string; meta: StateSnapshotMeta; digest: string }[] = [];
    await a.executor.applyEntries([e.register()]);
    let sequence = 0;
    for (let round = 0; round < 3; round++) {
      const entries: Entry[] = [];
      for (let i = 0; i < 12_000; i++) {
        const key = `key${(i * 7 + round) % 15_000}`;
        entries.push(
          i % 13 === round
            ? e.command(1, ++sequence, kvCommand.delete(key))
            : e.command(1, ++sequence, kvCommand.put(key, `${round}`.repeat(180))),
        );
      }
      await a.executor.applyEntries(entries);
      const snap = a.executor.takeSnapshot();
      const bytes = await collect(snap.chunks);
      const file = `${source.path}/snapshot-${round}`;
      writeFileSync(`${file}.bin`, Buffer.concat(bytes));
      writeFileSync(`${file}.json`, JSON.stringify(snap.meta));
      snapshots.push({ file, meta: snap.meta, digest: digest(a) });
    }
    await a.close();
    // The target starts with a small state of its own.
    let b = await openDiskMember(target.path);
    await b.executor.applyEntries([new EntryMaker().plain(kvCommand.put('own', 'x'))]);
    const states = [digest(b), ...snapshots.map((s) => s.digest)];
    await b.close();

    // Each snapshot: up to `killsPerInstall` attempts killed at random moments, then one let finish.
    let at = 0; // the state the target holds: 0 its own, n snapshot n - 1
    let interrupted = 0;
    // Kill moments are drawn from [0, spanMs); an install that completes before its kill halves
    // the span (down to 5 ms), so that a fast machine still has its installs interrupted.
    let spanMs = 500;
    for (let kill = 0; at < snapshots.length; kill++) {
      const last = kill % (killsPerInstall + 1) === killsPerInstall;
      const done = await install(
        target.path,
        snapshots[at]!.file,
        last ? 60_000 : Math.floor(random() * spanMs),
      );
      if (done && !last) spanMs = Math.max(5, Math.floor(spanMs / 2));
      b = await openDiskMember(target.path);
      const now = digest(b);
      await b.close();
      if (now === states[at + 1]) {
        at++;
        kill = -1; // the next snapshot's attempts
      } else {
        assert.is(now, states[at], `kill ${kill}: neither the old state nor the new one`);
        assert.not.ok(done, `kill ${kill}: said installed but holds the old state`);
        assert.not.ok(last, 'an install let finish did not complete');
        interrupted++;
      }
    }
    console.log(`${interrupted} installs interrupted, ${snapshots.length} completed`);
    assert.ok(interrupted >= 3, 'kills landed inside installs');
  } finally {
    source.remove();
    target.remove();
  }
});

test.run();
