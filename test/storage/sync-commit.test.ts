// Proves that an LmdbStorage write is on disk when it resolves, on both commit paths (small writes
// synchronously on the calling thread, and lmdb's write thread with `syncCommitBytesMax: 0`),
// under the runtime the suite runs in: a child does one write under `strace`, and between the
// moment it starts and the moment it is acknowledged the trace must show the data file synced
// (`fdatasync`/`fsync`) and then the meta page written through a descriptor opened `O_DSYNC`
// (LMDB's durable commit point); and that each path is taken where it should be (the thread that
// syncs: the main thread for a small write, another after a slow synchronous commit). Needs `strace` (Debian: `apt-get install strace`); without it the
// test says so and checks nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import process from 'node:process';
import { LmdbStorage, syncCommitSlowMs } from '../../lib/storage/lmdb.ts';
import { syncDelayFileVariable } from '../../lib/storage/test-hooks.ts';
import { tsCommand } from '../support/child.ts';

const childScript = fileURLToPath(
  new URL('./sync-child.ts', (import.meta as unknown as { url: string }).url),
);
const haveStrace = spawnSync('strace', ['-V']).status === 0;

type Traced = { window: string[]; dsyncFds: Set<string>; mainPid: string };

/**
 * The trace lines of the child's write, from its start marker to its acknowledgement; with
 * `syncDelayMs`, every synchronous commit of the child takes that much longer (the slow-disk hook).
 */
function traceWrite(syncCommitBytesMax: number, syncDelayMs = 0): Traced {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-sync-commit-'));
  try {
    const out = join(dir, 'trace');
    const { command, args } = tsCommand(childScript, [join(dir, 'db'), String(syncCommitBytesMax)]);
    const delayFile = join(dir, 'sync-delay');
    writeFileSync(delayFile, String(syncDelayMs));
    const run = spawnSync('strace', [
      '-f',
      '-qq',
      '-o',
      out,
      '-e',
      'trace=openat,fdatasync,fsync,pwrite64,pwritev,write',
      command,
      ...args,
    ], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, [syncDelayFileVariable]: delayFile },
    });
    assert.is(run.status, 0, `child failed: ${run.stderr}`);
    const lines = readFileSync(out, 'utf8').split('\n');
    const dsyncFds = new Set<string>();
    for (const line of lines) {
      const m = /openat\(.*data\.mdb", [^)]*O_DSYNC[^)]*\) = (\d+)/.exec(line);
      if (m !== null) dsyncFds.add(m[1]!);
    }
    const begin = lines.findIndex((l) => l.includes('MARK-begin'));
    const end = lines.findIndex((l) => l.includes('MARK-acknowledged'));
    assert.ok(begin !== -1 && end > begin, 'both markers are in the trace');
    return { window: lines.slice(begin + 1, end), dsyncFds, mainPid: lines[0]!.split(' ')[0]! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The write was synced before it resolved; returns the thread (its id) that synced it. */
function assertDurable(traced: Traced): string {
  const { window, dsyncFds } = traced;
  assert.ok(dsyncFds.size > 0, 'LMDB opened its data file O_DSYNC for the meta page');
  const synced = window.findIndex((l) => /\b(fdatasync|fsync)\(/.test(l));
  assert.ok(
    synced !== -1,
    `no sync between the write and its acknowledgement:\n${window.join('\n')}`,
  );
  const meta = window.slice(synced + 1).some((l) => {
    const m = /\bpwrite64\((\d+),/.exec(l);
    return m !== null && dsyncFds.has(m[1]!);
  });
  assert.ok(meta, `no O_DSYNC meta write after the sync:\n${window.join('\n')}`);
  return window[synced]!.split(' ')[0]!;
}

test('a small write is synced before it resolves, on the calling thread', () => {
  if (!haveStrace) return console.log('  strace not found: sync-commit checks skipped');
  const traced = traceWrite(256 * 1024);
  assert.is(assertDurable(traced), traced.mainPid, 'synced by the main thread');
});

test('a write is synced before it resolves, on lmdb write thread', () => {
  if (!haveStrace) return console.log('  strace not found: sync-commit checks skipped');
  const traced = traceWrite(0);
  assert.is.not(assertDurable(traced), traced.mainPid, 'synced by another thread');
});

// The child's first write, synchronous, is slow (the hook holds it 40 ms): the next one goes
// through the write thread, so that a slow disk does not block the member's loop on every sync.
test('after a slow synchronous commit, writes go through the write thread', () => {
  if (!haveStrace) return console.log('  strace not found: sync-commit checks skipped');
  const traced = traceWrite(256 * 1024, syncCommitSlowMs * 2);
  assert.is.not(assertDurable(traced), traced.mainPid, 'synced by another thread');
});

test('syncCommitBytesMax is validated by name', async () => {
  for (const bad of [-1, 1.5, 64 * 1024 ** 2 + 1]) {
    try {
      await LmdbStorage.open({ path: join(tmpdir(), 'never-opened'), syncCommitBytesMax: bad });
      assert.unreachable(`accepted ${bad}`);
    } catch (error) {
      assert.instance(error, RangeError);
      assert.match((error as Error).message, 'syncCommitBytesMax');
    }
  }
});

test.run();
