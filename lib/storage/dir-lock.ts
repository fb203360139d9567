/**
 * One process per data directory. `acquireDirLock(dir)` takes `DIR/edgeraft.lock` or throws
 * `DataDirectoryInUseError` naming the directory and the holder: two processes running as one
 * member could each vote once in the same term, and both would append to one log.
 *
 * Node has no `flock`, so the lock is a file, made with `node:fs` alone (the same on Node, Bun and
 * Deno). It is born complete: its record is written to a private temporary file that is then
 * hard-linked to `edgeraft.lock`, which fails if the name exists, so no reader ever sees a half-
 * written lock (where the file system has no hard links, `open(path, 'wx')` and a write instead).
 * The record names the holder: pid, host name, boot id and the process's start time (Linux: field
 * 22 of `/proc/<pid>/stat`), when it took the lock, its command line and a random nonce.
 *
 * A lock is live while its holder runs: same host, same boot, `process.kill(pid, 0)` succeeds and,
 * where `/proc` tells, the process under that pid started when the holder did (a reused pid is not
 * the holder). A stale lock (SIGKILL, power loss) is taken over. Removing it must not race another
 * taker that already replaced it with a live lock, so a stale lock is removed only under a guard
 * file whose name is derived from that very lock file (inode, time, bytes): only one taker gets
 * the guard, re-reads the lock, and removes it only if it is still the stale one. A guard left by
 * a taker that died is itself stale and is removed the same way, under a guard of its own, up to
 * `takeoverDepthMax` deep. A lock naming another host is refused: whether its holder runs cannot
 * be told from here. An unreadable lock (empty, garbage) is stale once `unreadableLockGraceMs`
 * old, since only a writer without hard links is ever caught between create and write.
 *
 * In one process a registry keyed by the directory's real path refuses a second acquire too.
 *
 * Limits: on systems without `/proc` (macOS) a reused pid looks alive, so the lock is refused
 * until removed by hand (the safe side); processes in different pid namespaces (containers) that
 * share one data directory must also have different host names.
 *
 * @example
 * ```ts
 * const lock = acquireDirLock('/var/lib/edgeraft/a'); // throws DataDirectoryInUseError if held
 * try { runMember(); } finally { lock.release(); }
 * ```
 * @module
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  linkSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import * as v from 'valibot';
import { type DataDirectoryHolder, DataDirectoryInUseError, StorageError } from '../base/errors.ts';

/** The lock file's name inside the data directory. */
export const lockFileName = 'edgeraft.lock';
/**
 * An unreadable lock file younger than this may belong to a writer between create and write (only
 * where there are no hard links: a linked lock is complete from birth); an older one is stale.
 */
export const unreadableLockGraceMs = 1000;
/** Longest an acquire waits on a takeover under way elsewhere or a young unreadable lock. */
export const acquireWaitMsMax = 3000;
/** An acquire gives up on a chain of this many guards, each left by a taker that died in turn. */
export const takeoverDepthMax = 4;
/** Pause between two looks at a contended lock. */
const retryPauseMs = 5;
/** Lock files are a few hundred bytes; anything longer is garbage. */
const lockBytesMax = 4096;
/** The holder's command line is kept to this many characters. */
const commandCharsMax = 300;

/**
 * The lock file's record. Only pid and host are required, and unknown fields are ignored: a lock
 * written by another version must still read as live, never as garbage to take over.
 */
const LockRecordSchema = v.object({
  pid: v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
  hostname: v.string(),
  /** Linux's `/proc/sys/kernel/random/boot_id`: a pid from another boot is never the holder. */
  bootId: v.optional(v.nullable(v.string()), null),
  /** Field 22 of `/proc/<pid>/stat` (clock ticks after boot), `null` where there is no `/proc`. */
  processStart: v.optional(v.nullable(v.number()), null),
  startedAt: v.optional(v.string(), 'an unknown time'),
  command: v.optional(v.string(), 'unknown command'),
  nonce: v.optional(v.string(), ''),
});
type LockRecord = v.InferOutput<typeof LockRecordSchema>;

/** A held data-directory lock. */
export interface DirLock {
  /** The directory as given, made absolute. */
  readonly directory: string;
  /** The lock file. */
  readonly lockPath: string;
  /** What the lock file says about this process. */
  readonly holder: DataDirectoryHolder;
  /** Remove the lock file if it is still this lock's; idempotent. */
  release(): void;
}

/** One look at a lock or guard file: enough to tell later whether it is still the same file. */
type Seen = { bytes: Buffer; ino: number; mtimeMs: number; record: LockRecord | null };

type Verdict = 'live' | 'stale' | 'foreign' | 'young';

/** Locks this process holds, by the directory's real path. */
const heldInProcess = new Map<string, HeldLock>();

class HeldLock implements DirLock {
  readonly directory: string;
  readonly lockPath: string;
  readonly holder: DataDirectoryHolder;
  readonly #realDir: string;
  readonly #bytes: Buffer;
  readonly #ino: number;
  #released = false;

  constructor(directory: string, realDir: string, record: LockRecord, bytes: Buffer, ino: number) {
    this.directory = directory;
    this.lockPath = join(realDir, lockFileName);
    this.holder = holderOf(record);
    this.#realDir = realDir;
    this.#bytes = bytes;
    this.#ino = ino;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    heldInProcess.delete(this.#realDir);
    // Nobody removes a live holder's lock, so it cannot change between this look and the unlink.
    const now = look(this.lockPath);
    if (now !== null && now.ino === this.#ino && now.bytes.equals(this.#bytes)) {
      unlinkQuietly(this.lockPath);
    }
  }
}

/**
 * Take the lock of the existing directory `dir`, or throw `DataDirectoryInUseError` (held by a
 * running process, by this one, or by a process on another host) naming the directory and the
 * holder. A stale lock is taken over. Other file-system failures are a `StorageError`.
 *
 * @example
 * ```ts
 * const lock = acquireDirLock(dir);
 * acquireDirLock(dir); // throws DataDirectoryInUseError: ...is in use: held by this process...
 * lock.release();
 * ```
 */
export function acquireDirLock(dir: string): DirLock {
  const directory = resolve(dir);
  try {
    return acquire(directory);
  } catch (error) {
    if (error instanceof DataDirectoryInUseError) throw error;
    throw new StorageError(
      `Cannot lock data directory ${directory}: ${(error as Error)?.message ?? String(error)}`,
      { cause: error },
    );
  }
}

function acquire(directory: string): DirLock {
  const realDir = realpathSync(directory);
  const mine = heldInProcess.get(realDir);
  if (mine !== undefined) {
    const alias = mine.directory === directory ? '' : `, opened as ${mine.directory}`;
    throw new DataDirectoryInUseError(
      directory,
      `held by this process (pid ${process.pid}) since ${mine.holder.startedAt}${alias}`,
      mine.holder,
    );
  }
  const lockPath = join(realDir, lockFileName);
  const record = ownRecord();
  const bytes = Buffer.from(JSON.stringify(record), 'utf8');
  const deadlineMs = Date.now() + acquireWaitMsMax;
  let wait = 'lock files that came and went';
  for (;;) {
    const ino = createExclusive(lockPath, bytes);
    if (ino !== null) {
      const lock = new HeldLock(directory, realDir, record, bytes, ino);
      heldInProcess.set(realDir, lock);
      return lock;
    }
    const seen = look(lockPath);
    let busy = false;
    if (seen !== null) {
      const verdict = judge(seen);
      if (verdict === 'live' || verdict === 'foreign') throw inUse(directory, lockPath, seen);
      if (verdict === 'young') {
        busy = true;
        wait = `an unreadable lock file younger than ${unreadableLockGraceMs} ms`;
      } else if (!removeStale(directory, lockPath, seen, bytes, 0)) {
        busy = true;
        wait = 'a takeover under way';
      }
    }
    if (Date.now() > deadlineMs) {
      throw new DataDirectoryInUseError(
        directory,
        `still contended after ${acquireWaitMsMax} ms (${wait}): once no process uses it, remove ${lockPath}*`,
        null,
      );
    }
    if (busy) pause(retryPauseMs);
  }
}

/**
 * Remove the stale `path`, last seen as `seen`, if it is still that file: under a guard named
 * after it, so that of all takers that saw it only one removes it, and none removes the live lock
 * another taker put in its place. False if another live taker holds the guard (wait and look
 * again); true when the caller should look again now.
 */
function removeStale(
  directory: string,
  path: string,
  seen: Seen,
  bytes: Buffer,
  depth: number,
): boolean {
  const guardPath = guardPathFor(path, seen);
  if (createExclusive(guardPath, bytes) === null) {
    const guard = look(guardPath);
    if (guard === null) return true;
    const verdict = judge(guard);
    if (verdict === 'foreign') throw inUse(directory, guardPath, guard);
    if (verdict !== 'stale') return false;
    if (depth + 1 >= takeoverDepthMax) {
      throw new DataDirectoryInUseError(
        directory,
        `${takeoverDepthMax} takers in a row died taking over its stale lock: once no process uses it, remove ${
          join(directory, lockFileName)
        }*`,
        null,
      );
    }
    return removeStale(directory, guardPath, guard, bytes, depth + 1);
  }
  try {
    const now = look(path);
    if (now !== null && sameFile(now, seen)) unlinkQuietly(path);
  } finally {
    unlinkQuietly(guardPath);
  }
  return true;
}

/**
 * The guard that serializes the removal of the stale file `path` seen as `seen`: its name comes
 * from that file's inode, modification time and bytes, so a new file at `path` has another guard.
 * Exported for tests that plant a guard left by a taker that died.
 *
 * @example
 * ```ts
 * guardPathFor('/d/edgeraft.lock', { bytes, ino, mtimeMs }); // '/d/edgeraft.lock.takeover-3f1c...'
 * ```
 */
export function guardPathFor(
  path: string,
  seen: { bytes: Uint8Array; ino: number; mtimeMs: number },
): string {
  const key = createHash('sha256').update(`${seen.ino}:${seen.mtimeMs}:`).update(seen.bytes)
    .digest('hex').slice(0, 16);
  return `${path}.takeover-${key}`;
}

/** Is the lock or guard `seen` held by a running process on this host? */
function judge(seen: Seen): Verdict {
  const r = seen.record;
  if (r === null) return Date.now() - seen.mtimeMs < unreadableLockGraceMs ? 'young' : 'stale';
  if (r.hostname !== hostname()) return 'foreign';
  const boot = bootId();
  if (r.bootId !== null && boot !== null && r.bootId !== boot) return 'stale';
  if (!pidAlive(r.pid)) return 'stale';
  if (r.processStart !== null) {
    const start = processStartOf(r.pid);
    if (start !== null && start !== r.processStart) return 'stale';
  }
  return 'live';
}

function inUse(directory: string, path: string, seen: Seen): DataDirectoryInUseError {
  const r = seen.record;
  if (r === null) {
    return new DataDirectoryInUseError(directory, `unreadable lock file ${path}`, null);
  }
  const who = r.pid === process.pid && r.hostname === hostname()
    ? `this process (pid ${r.pid})`
    : `pid ${r.pid} on host ${r.hostname}`;
  const held = `held by ${who} since ${r.startedAt} (${r.command})`;
  if (r.hostname === hostname()) return new DataDirectoryInUseError(directory, held, holderOf(r));
  return new DataDirectoryInUseError(
    directory,
    `${held}; that is not this host (${hostname()}), so whether it still runs cannot be told from here: once it has stopped, remove ${path}`,
    holderOf(r),
  );
}

function holderOf(r: LockRecord): DataDirectoryHolder {
  return { pid: r.pid, hostname: r.hostname, startedAt: r.startedAt, command: r.command };
}

function ownRecord(): LockRecord {
  return {
    pid: process.pid,
    hostname: hostname(),
    bootId: bootId(),
    processStart: processStartOf(process.pid),
    startedAt: new Date().toISOString(),
    command: process.argv.join(' ').slice(0, commandCharsMax),
    nonce: randomBytes(8).toString('hex'),
  };
}

/**
 * Create `path` holding `bytes`, complete from its first instant; its inode number, or `null` if
 * the name exists. No fsync: after a power loss no holder survives, and a torn file is unreadable,
 * hence stale once old.
 */
function createExclusive(path: string, bytes: Buffer): number | null {
  const tempPath = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  const fd = openSync(tempPath, 'wx');
  let ino: number;
  try {
    writeAll(fd, bytes);
    ino = fstatSync(fd).ino;
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tempPath, path);
    return ino;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return null;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
      throw error;
    }
    return createInPlace(path, bytes);
  } finally {
    unlinkQuietly(tempPath);
  }
}

/** Without hard links: exclusive create, then write (a reader may see it empty for an instant). */
function createInPlace(path: string, bytes: Buffer): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw error;
  }
  try {
    writeAll(fd, bytes);
    return fstatSync(fd).ino;
  } finally {
    closeSync(fd);
  }
}

/** Read the lock or guard at `path`; `null` if there is none. */
function look(path: string): Seen | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    const buffer = Buffer.alloc(lockBytesMax + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0 || length + n === buffer.length) {
        length += n;
        break;
      }
      length += n;
    }
    const bytes = buffer.subarray(0, length);
    return { bytes, ino: stat.ino, mtimeMs: stat.mtimeMs, record: parseRecord(bytes) };
  } finally {
    closeSync(fd);
  }
}

function parseRecord(bytes: Buffer): LockRecord | null {
  if (bytes.length === 0 || bytes.length > lockBytesMax) return null;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const parsed = v.safeParse(LockRecordSchema, json);
  return parsed.success ? parsed.output : null;
}

function sameFile(a: Seen, b: Seen): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.bytes.equals(b.bytes);
}

/** Does a process with this pid exist? EPERM (another user's) counts as yes, as does doubt. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks after boot. */
function processStartOf(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2, the command name, is in parentheses and may hold spaces and ')': field 3 on follow
  // the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[22 - 3]);
  return Number.isSafeInteger(start) ? start : null;
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Sleep `ms` synchronously: acquire is synchronous, and its waits are short and rare. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
