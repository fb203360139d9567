// A full disk fails the write that hits it, with a StorageError, and nothing else: the process
// goes on (lmdb 3 also rejects a promise of its own that nobody observes, which ended the process
// with an unhandled rejection; `observeLmdbCommitFailures` in lib/storage/commit.ts swallows
// exactly those). A child that puts itself under `prlimit --fsize` (util-linux) writes until a write fails; without
// prlimit the test says so and checks nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tsCommand } from '../support/child.ts';

const childScript = fileURLToPath(
  new URL('./full-disk-child.ts', (import.meta as unknown as { url: string }).url),
);
const havePrlimit = spawnSync('prlimit', ['--version']).status === 0;

test('a full disk fails the write with a StorageError and does not end the process', () => {
  if (!havePrlimit) return console.log('  prlimit not found: full-disk check skipped');
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-full-disk-'));
  try {
    const { command, args } = tsCommand(childScript, [join(dir, 'db'), '2000000']);
    const run = spawnSync(command, args, {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(run.stdout, /^failed: StorageError: /m, `${run.stdout}\n${run.stderr}`);
    assert.is(run.status, 0, `the process ended otherwise:\n${run.stderr.slice(-1500)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
