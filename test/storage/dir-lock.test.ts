// Proves one process per data directory, under the runtime running the suite: a second opener is
// refused (in one process, in racing child processes, through LmdbStorage, RaftServer and the
// command line) with an error naming the directory and the holder; a lock left by a SIGKILLed
// process, a reused pid, another boot, a dead taker's guard or a crash mid-write is taken over
// (by exactly one of several racing takers); a lock from another host is refused with the fix.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataDirectoryInUseError } from '../../lib/base/errors.ts';
import { freePort, signalAndWait } from '../../lib/cli/processes.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import {
  acquireDirLock,
  acquireWaitMsMax,
  guardPathFor,
  lockFileName,
  takeoverDepthMax,
  unreadableLockGraceMs,
} from '../../lib/storage/dir-lock.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { spawnTs } from '../support/child.ts';
import { cleanUp, leaderOf, members, quiet, startNode, stopNode } from '../server/in-process.ts';
import { rejects } from './contract.ts';

const root = mkdtempSync(join(tmpdir(), 'edgeraft-dir-lock-'));
let count = 0;
/** `text` as a literal inside a regular expression. */
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A fresh, existing directory. */
function freshDir(): string {
  const dir = join(root, `d-${count++}`);
  mkdirSync(dir);
  return dir;
}
const childScript = fileURLToPath(
  new URL('./lock-holder-child.ts', (import.meta as unknown as { url: string }).url),
);
/** Children this file started and has not yet seen exit: ended by their own pid on the way out. */
const started = new Set<ChildProcess>();
const childTimeoutMs = 60_000;

test.after(async () => {
  for (const child of started) child.kill('SIGKILL');
  await cleanUp();
  rmSync(root, { recursive: true, force: true });
});

type Outcome = { held: true; pid: number } | { held: false; code: number | null; stderr: string };
type Child = { child: ChildProcess; ready: Promise<void>; outcome: Promise<Outcome> };

/** Start `lock-holder-child.ts`; with `go`, it opens only once sent the line `go`. */
function startChild(mode: 'lock' | 'storage', dir: string, go: boolean): Child {
  const child = spawnTs(childScript, [mode, dir, ...(go ? ['go'] : [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  started.add(child);
  let stdout = '';
  let stderr = '';
  let onReady = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const outcome = new Promise<Outcome>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Lock child gave no outcome in ${childTimeoutMs} ms: ${stderr}`));
    }, childTimeoutMs);
    child.stdout!.on('data', (chunk: Uint8Array) => {
      stdout += new TextDecoder().decode(chunk);
      if (stdout.includes('ready\n')) onReady();
      const held = /held (\d+)\n/.exec(stdout);
      if (held !== null) {
        clearTimeout(timer);
        resolve({ held: true, pid: Number(held[1]) });
      }
    });
    child.stderr!.on('data', (chunk: Uint8Array) => (stderr += new TextDecoder().decode(chunk)));
    child.once('exit', (code) => {
      started.delete(child);
      clearTimeout(timer);
      resolve({ held: false, code, stderr });
    });
  });
  return { child, ready, outcome };
}

/** Tell a holding child to release and wait for it to exit; its exit code. */
function releaseChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.stdin!.write('release\n');
  });
}

/** SIGKILL `child` (one this file started) by its pid and wait for it to exit. */
function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * Start `n` children on `dir`, let them open at one instant, and check that exactly one holds it
 * and every other was refused with the message naming the directory and the winner. Returns the
 * winner, still holding.
 */
async function race(mode: 'lock' | 'storage', dir: string, n: number): Promise<ChildProcess> {
  const children = Array.from({ length: n }, () => startChild(mode, dir, true));
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin!.write('go\n');
  const outcomes = await Promise.all(children.map((c) => c.outcome));
  const winners = outcomes.flatMap((o, i) => (o.held ? [{ pid: o.pid, child: children[i]! }] : []));
  assert.is(winners.length, 1, `exactly one of ${n} holds ${dir}: ${JSON.stringify(outcomes)}`);
  const winner = winners[0]!;
  for (const o of outcomes) {
    if (o.held) continue;
    assert.is(o.code, 3, `a refused child exits 3: ${o.stderr}`);
    assert.ok(
      o.stderr.includes(`Data directory ${dir} is in use: held by pid ${winner.pid} on host `),
      `the refusal names ${dir} and pid ${winner.pid}: ${o.stderr}`,
    );
  }
  return winner.child.child;
}

/** The lock record this process would write, as found in a lock file it took (then released). */
function ownRecord(): Record<string, unknown> {
  const dir = freshDir();
  const lock = acquireDirLock(dir);
  const record = JSON.parse(readFileSync(lock.lockPath, 'utf8')) as Record<string, unknown>;
  lock.release();
  return record;
}

/** The pid of a process that has just exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('true', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid!));
  });
}

/** The files left in `dir` besides LMDB's. */
function lockFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(lockFileName)).sort();
}

/** Write `record` as the lock (or guard) file at `path`; its look, for `guardPathFor`. */
function plant(path: string, record: unknown) {
  const bytes = new TextEncoder().encode(JSON.stringify(record));
  writeFileSync(path, bytes);
  const { ino, mtimeMs } = statSync(path);
  return { bytes, ino, mtimeMs };
}

// A second acquire in one process is refused, also through a symlink to the same folder, naming
// the directory and this process; after release the folder can be taken again.
test('a second acquire in one process is refused until release', () => {
  const dir = freshDir();
  const lock = acquireDirLock(dir);
  assert.equal(lockFiles(dir), [lockFileName]);
  assert.is(lock.holder.pid, process.pid);
  const error = (() => {
    try {
      acquireDirLock(dir);
    } catch (e) {
      return e;
    }
  })();
  assert.instance(error, DataDirectoryInUseError);
  const inUse = error as DataDirectoryInUseError;
  assert.is(inUse.code, 'DATA_DIR_IN_USE');
  assert.is(inUse.retryable, false);
  assert.is(inUse.directory, dir);
  assert.is(inUse.holder?.pid, process.pid);
  assert.match(
    inUse.message,
    `Data directory ${dir} is in use: held by this process (pid ${process.pid}) since `,
  );
  const alias = join(root, `alias-${count++}`);
  symlinkSync(dir, alias);
  assert.throws(() => acquireDirLock(alias), (e: Error) => e.message.includes(`opened as ${dir}`));
  lock.release();
  lock.release();
  assert.equal(lockFiles(dir), []);
  acquireDirLock(alias).release();
});

// Two LmdbStorage.open on one folder in one process: the second is refused and the first keeps
// working; after close the folder opens again.
test('a second LmdbStorage.open in one process is refused until close', async () => {
  const dir = freshDir();
  const first = await LmdbStorage.open({ path: dir });
  await rejects(
    LmdbStorage.open({ path: dir }).then(async (s) => (await s.close(), s)),
    DataDirectoryInUseError,
    new RegExp(
      `^Data directory ${escaped(dir)} is in use: held by this process \\(pid ${process.pid}\\)`,
    ),
  );
  await first.write({ entries: [{ type: 'noop', index: 1, term: 1, timeMs: 0 }] });
  await first.close();
  assert.equal(lockFiles(dir), []);
  const second = await LmdbStorage.open({ path: dir });
  assert.is(second.lastIndex(), 1);
  await second.close();
});

// A data folder whose name has a dot is a folder (lmdb alone would take it for a file name).
test('a dotted data folder opens, locked like any other', async () => {
  const dir = join(root, `node.a-${count++}`);
  const storage = await LmdbStorage.open({ path: dir });
  assert.ok(statSync(dir).isDirectory());
  assert.equal(lockFiles(dir), [lockFileName]);
  await storage.close();
});

// Two child processes released at one instant on one folder: exactly one holds it, the other
// exits with the error naming the winner; five rounds, by lock and by LmdbStorage.
test('of two processes opening one folder at once, exactly one holds it', async () => {
  for (let round = 0; round < 5; round++) {
    const dir = freshDir();
    const winner = await race(round % 2 === 0 ? 'lock' : 'storage', dir, 2);
    assert.is(await releaseChild(winner), 0, 'the holder releases when told');
    assert.equal(lockFiles(dir), [], 'a released lock leaves no file');
  }
});

// A holder SIGKILLed leaves its lock behind; a new open in this process takes it over and finds
// what the killed holder wrote.
test('the lock of a SIGKILLed holder is taken over', async () => {
  const dir = freshDir();
  const holder = startChild('storage', dir, false);
  const outcome = await holder.outcome;
  assert.ok(outcome.held, JSON.stringify(outcome));
  await killChild(holder.child);
  assert.equal(lockFiles(dir), [lockFileName], 'SIGKILL leaves the lock file');
  const storage = await LmdbStorage.open({ path: dir });
  assert.is(storage.lastIndex(), 1);
  const record = JSON.parse(readFileSync(join(dir, lockFileName), 'utf8'));
  assert.is(record.pid, process.pid);
  await storage.close();
});

// After a SIGKILL, eight processes racing for the stale lock: exactly one takes it over, the
// others are refused naming it, and no guard or temporary file is left; three rounds. (With three
// racers, a takeover that unlinks without a guard slipped through; with eight it is caught.)
test('of eight processes taking over one stale lock at once, exactly one wins', async () => {
  for (let round = 0; round < 3; round++) {
    const dir = freshDir();
    const holder = startChild('lock', dir, false);
    assert.ok((await holder.outcome).held);
    await killChild(holder.child);
    const winner = await race(round % 2 === 0 ? 'lock' : 'storage', dir, 8);
    assert.equal(lockFiles(dir), [lockFileName]);
    await releaseChild(winner);
  }
});

// A live pid whose process started at another time is a reused pid: the lock is stale. So is a
// lock from another boot. The same record unchanged is live and refused, as is a record of
// another version that has only pid and host.
test('a reused pid or another boot does not hold the lock', () => {
  const record = ownRecord();
  const dir = freshDir();
  const lockPath = join(dir, lockFileName);
  if (record['processStart'] !== null) {
    plant(lockPath, { ...record, processStart: (record['processStart'] as number) + 1 });
    acquireDirLock(dir).release();
  } else {
    console.log('  (no /proc here: the reused-pid case is not checked)');
  }
  if (record['bootId'] !== null) {
    plant(lockPath, { ...record, bootId: 'another-boot' });
    acquireDirLock(dir).release();
  }
  // Control: the very record of this running process (not in the registry) is live.
  plant(lockPath, record);
  assert.throws(
    () => acquireDirLock(dir),
    (e: Error) =>
      e instanceof DataDirectoryInUseError &&
      e.message.includes(`this process (pid ${process.pid})`),
  );
  assert.ok(existsSync(lockPath), 'a refused acquire leaves the holder its lock');
  // A record of another version, with only pid and host (and a field unknown here), is live too.
  plant(lockPath, { pid: process.pid, hostname: record['hostname'], format: 9 });
  assert.throws(
    () => acquireDirLock(dir),
    (e: Error) => e instanceof DataDirectoryInUseError && e.message.includes('an unknown time'),
  );
});

// A lock naming another host is refused, saying why and which file to remove; once removed as
// told, the folder is taken.
test('a lock from another host is refused with the way to clear it', () => {
  const dir = freshDir();
  const lockPath = join(dir, lockFileName);
  plant(lockPath, { ...ownRecord(), hostname: 'elsewhere', pid: 4242 });
  assert.throws(
    () => acquireDirLock(dir),
    (e: Error) =>
      e instanceof DataDirectoryInUseError && e.holder?.hostname === 'elsewhere' &&
      e.message.startsWith(`Data directory ${dir} is in use: held by pid 4242 on host elsewhere`) &&
      e.message.includes('cannot be told from here') &&
      e.message.endsWith(`remove ${lockPath}`),
  );
  rmSync(lockPath);
  acquireDirLock(dir).release();
});

// An unreadable lock (empty: a crash between create and write; garbage) is stale once older than
// the grace; a young one is waited on, then taken over, never refused for good.
test('an empty or garbage lock file is taken over, a young one after the grace', () => {
  const dir = freshDir();
  const lockPath = join(dir, lockFileName);
  const old = new Date(Date.now() - 60_000);
  for (const bytes of ['', '{"pid":', '{"pid":"x","hostname":1}', 'x'.repeat(10_000)]) {
    writeFileSync(lockPath, bytes);
    utimesSync(lockPath, old, old);
    const lock = acquireDirLock(dir);
    assert.is(JSON.parse(readFileSync(lockPath, 'utf8')).pid, process.pid);
    lock.release();
  }
  writeFileSync(lockPath, '');
  const startMs = Date.now();
  acquireDirLock(dir).release();
  const waitedMs = Date.now() - startMs;
  assert.ok(waitedMs >= unreadableLockGraceMs - 100, `waited ${waitedMs} ms for a young lock`);
  assert.ok(waitedMs < acquireWaitMsMax, `took it over in ${waitedMs} ms`);
});

// Takers that died holding their guards (a chain of one to three) do not block the takeover; a
// chain of takeoverDepthMax is refused, saying which files to remove.
test('guards left by takers that died are cleared, up to a limit', async () => {
  for (const depth of [1, 3, takeoverDepthMax]) {
    const dir = freshDir();
    const lockPath = join(dir, lockFileName);
    const dead = { ...ownRecord(), pid: await deadPid() };
    let seen = plant(lockPath, dead);
    let path = lockPath;
    for (let level = 0; level < depth; level++) {
      path = guardPathFor(path, seen);
      seen = plant(path, { ...dead, nonce: `guard-${level}` });
    }
    if (depth === takeoverDepthMax) {
      assert.throws(
        () => acquireDirLock(dir),
        (e: Error) =>
          e instanceof DataDirectoryInUseError &&
          e.message.endsWith(
            `died taking over its stale lock: once no process uses it, remove ${lockPath}*`,
          ),
      );
      continue;
    }
    const lock = acquireDirLock(dir);
    assert.equal(lockFiles(dir), [lockFileName], `depth ${depth}: only the new lock is left`);
    lock.release();
  }
});

// A guard held by a live process is a takeover under way: acquire waits and then refuses rather
// than removing the stale lock under it.
test('a live guard is respected', async () => {
  const dir = freshDir();
  const lockPath = join(dir, lockFileName);
  const record = ownRecord();
  const seen = plant(lockPath, { ...record, pid: await deadPid() });
  plant(guardPathFor(lockPath, seen), record);
  assert.throws(
    () => acquireDirLock(dir),
    (e: Error) =>
      e instanceof DataDirectoryInUseError &&
      e.message.includes(`still contended after ${acquireWaitMsMax} ms (a takeover under way)`),
  );
  assert.ok(existsSync(lockPath), 'the stale lock stays for the live taker to remove');
});

// Release removes the lock file only while it is still this lock's.
test('release leaves a lock file that is not its own', () => {
  const dir = freshDir();
  const lock = acquireDirLock(dir);
  const other = { ...ownRecord(), pid: 4242, hostname: 'elsewhere' };
  plant(lock.lockPath, other);
  lock.release();
  assert.is(JSON.parse(readFileSync(lock.lockPath, 'utf8')).hostname, 'elsewhere');
});

// RaftServer.start twice on one data folder in one process: the second rejects with the error
// (on port 0, so nothing but the lock can refuse it); the first keeps serving; after its stop the
// folder starts again.
test('RaftServer.start twice on one data folder: the second is refused', async () => {
  const nodes = await members(1);
  const node = nodes[0]!;
  const first = await startNode(node, nodes);
  const second = RaftServer.start({
    id: node.member.id,
    cluster: 'server-test',
    dataDir: node.dataDir,
    peerAddress: '127.0.0.1:0',
    clientAddress: '127.0.0.1:0',
    members: nodes.map((n) => n.member),
    stateMachine: new KvStateMachine(),
    logger: quiet,
  });
  await rejects(
    // Should it start after all, stop it, so that a failing run still ends.
    second.then(async (s) => (await s.stop(), s)),
    DataDirectoryInUseError,
    new RegExp(`^Data directory ${escaped(node.dataDir)} is in use: held by this process`),
  );
  assert.is(await leaderOf(nodes), first, 'the first server still serves');
  const result = await first.proposeWithIndex({ op: 'put', key: 'k', value: 'v' });
  assert.ok(result.index >= 1);
  await stopNode(node);
  await startNode(node, nodes);
  await stopNode(node);
});

type ServeRun = {
  child: ChildProcess;
  outcome: Promise<{ readyPid: number } | { code: number | null; stderr: string }>;
};

/** Start `lib/cli.ts serve` as member a on `dir`, on its own free ports. */
async function serve(dir: string): Promise<ServeRun> {
  const members = `a=127.0.0.1:${await freePort()}/127.0.0.1:${await freePort()}`;
  const child = spawnTs('lib/cli.ts', ['serve', '--id', 'a', '--data', dir, '--members', members]);
  started.add(child);
  let stdout = '';
  let stderr = '';
  const outcome = new Promise<{ readyPid: number } | { code: number | null; stderr: string }>(
    (resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`serve gave no outcome in ${childTimeoutMs} ms: ${stderr}`));
      }, childTimeoutMs);
      child.stdout!.on('data', (chunk: Uint8Array) => {
        stdout += new TextDecoder().decode(chunk);
        const line = stdout.split('\n').find((l) => l.includes('"ready":true'));
        if (line !== undefined) {
          clearTimeout(timer);
          resolve({ readyPid: (JSON.parse(line) as { pid: number }).pid });
        }
      });
      child.stderr!.on('data', (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
      child.once('exit', (code) => {
        started.delete(child);
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    },
  );
  return { child, outcome };
}

// Two `serve --id a --data DIR` started at once: one prints the ready line, the other exits
// non-zero with the error naming the folder and the ready one's pid; two rounds.
test('two serve processes on one data folder: one is ready, the other refused', async () => {
  for (let round = 0; round < 2; round++) {
    const dir = join(root, `serve-${count++}`);
    const runs = await Promise.all([serve(dir), serve(dir)]);
    const outcomes = await Promise.all(runs.map((r) => r.outcome));
    const ready = outcomes.flatMap((o, i) => ('readyPid' in o ? [{ ...o, run: runs[i]! }] : []));
    assert.is(ready.length, 1, `exactly one serve is ready: ${JSON.stringify(outcomes)}`);
    const winner = ready[0]!;
    assert.is(winner.readyPid, winner.run.child.pid);
    const loser = outcomes.find((o) => !('readyPid' in o)) as { code: number; stderr: string };
    assert.is(loser.code, 1, loser.stderr);
    assert.ok(
      loser.stderr.includes(
        `edgeraft serve: Data directory ${dir} is in use: held by pid ${winner.readyPid} on host `,
      ),
      loser.stderr,
    );
    if (!(await signalAndWait(winner.run.child, 'SIGTERM', 10_000))) {
      await killChild(winner.run.child);
    }
  }
});

test.run();
