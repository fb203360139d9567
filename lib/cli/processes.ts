/**
 * Local clusters of `serve` child processes: start them on free loopback ports, wait for each
 * to report ready, kill one, restart it, and stop them all. Only processes this code started are
 * ever signalled, by their own pid.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import process from 'node:process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cliScript, type Runtime, spawnTs } from '../runtime.ts';
import type { MemberSpec } from './args.ts';

/** One `serve` child. */
export type ServeProcess = {
  spec: MemberSpec;
  child: ChildProcess;
  dataDir: string;
  stderrTail: string[];
};

/**
 * Ports `freePort` picks from: below the ephemeral range of Linux (32768-60999), macOS and Windows
 * (49152-65535), so that an outgoing connection's source port never takes a member's port while
 * that member restarts (the OS's own pick, port 0, comes from the ephemeral range).
 */
const localPortRange = { first: 20_000, last: 32_767 } as const;

/** Ports `freePort` returned in this process. */
const handedOut = new Set<number>();

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(null);
      else reject(error);
    });
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A free TCP port on 127.0.0.1, outside the ephemeral range (it is released before use: another
 * process may still take it, rarely).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const span = localPortRange.last - localPortRange.first + 1;
    const port = localPortRange.first + Math.floor(Math.random() * span);
    // Never the same port twice in one process: a cluster's members pick theirs one after the
    // other, each released before the next pick, so a repeat would give two members one port.
    if (handedOut.has(port)) continue;
    const bound = await tryListen(port);
    if (bound !== null) {
      handedOut.add(bound);
      return bound;
    }
  }
  const any = await tryListen(0);
  if (any === null) throw new Error('No free TCP port on 127.0.0.1');
  return any;
}

/** Member specs for `size` members on free loopback ports, ids `n1`, `n2`, ... */
export async function localMembers(size: number): Promise<MemberSpec[]> {
  const specs: MemberSpec[] = [];
  for (let i = 1; i <= size; i++) {
    specs.push({
      id: `n${i}`,
      address: `127.0.0.1:${await freePort()}`,
      clientAddress: `127.0.0.1:${await freePort()}`,
    });
  }
  return specs;
}

/** How to run a local cluster. */
export type LocalClusterOptions = {
  members: MemberSpec[];
  dataRoot: string;
  cluster: string;
  runtime?: Runtime;
  /** Extra `serve` flags, e.g. `['--snapshot-entries', '1000']`. */
  serveArgs?: string[];
  /**
   * Members started after the founding ones with `serve --join` (the founding members' client
   * addresses), as passive or reserve members.
   */
  joiners?: Array<MemberSpec & { as: 'passive' | 'reserve' }>;
  /** Extra `serve` flags of one member (after `serveArgs`). */
  memberArgs?: (id: string) => string[];
  /** Extra environment variables of one member (testing hooks, e.g. `EDGERAFT_CLOCK_FILE`). */
  memberEnv?: (id: string) => Record<string, string>;
  /** Pass each child's stderr through to ours. */
  inheritStderr?: boolean;
  /** A folder where each member's stderr (its log) is appended to `ID.log`, restarts included. */
  logDir?: string;
  /**
   * Called when a member that had reported ready exits, unless this cluster ended it (`kill`,
   * `stopAll`): with its exit code, or the signal that ended it.
   */
  onMemberExit?: (exit: MemberExit) => void;
  readyTimeoutMs?: number;
};

/** How a member of a local cluster ended. */
export type MemberExit = {
  id: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Its last lines on stderr, oldest first (at most `stderrTailLinesMax`). */
  stderrTail: string[];
};

/** Lines of a member's stderr kept for its exit report. */
export const stderrTailLinesMax = 50;

/** "exit code 1" or "signal SIGKILL". */
export function describeExit(exit: Pick<MemberExit, 'code' | 'signal'>): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * A local cluster of `serve` children.
 *
 * @example
 * ```ts
 * const cluster = await LocalCluster.start({ members: await localMembers(3), dataRoot: dir, cluster: 'demo' });
 * await cluster.kill('n1');
 * await cluster.stopAll();
 * ```
 */
export class LocalCluster {
  readonly options: LocalClusterOptions;
  readonly processes = new Map<string, ServeProcess>();
  /** Children this cluster is ending itself: their exits are not reported. */
  readonly #ending = new Set<ChildProcess>();

  private constructor(options: LocalClusterOptions) {
    this.options = options;
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = new LocalCluster(options);
    try {
      await Promise.all(options.members.map((m) => cluster.startMember(m.id)));
      for (const j of options.joiners ?? []) await cluster.startMember(j.id);
    } catch (error) {
      await cluster.stopAll();
      throw error;
    }
    return cluster;
  }

  /** Start (or restart) member `id` and wait until it reports ready. */
  startMember(id: string): Promise<ServeProcess> {
    const joiner = this.options.joiners?.find((m) => m.id === id);
    const spec = this.options.members.find((m) => m.id === id) ?? joiner;
    if (spec === undefined) throw new RangeError(`No member ${id} in this cluster`);
    // Absolute: the child runs in the package's folder, not in the caller's working directory.
    const dataDir = resolve(this.options.dataRoot, id);
    const membersFlag = this.options.members.map((m) => `${m.id}=${m.address}/${m.clientAddress}`)
      .join(',');
    const placement = joiner === undefined ? ['--members', membersFlag] : [
      '--join',
      this.options.members.map((m) => m.clientAddress).join(','),
      '--join-as',
      joiner.as,
      '--peer-address',
      joiner.address,
      '--client-address',
      joiner.clientAddress,
    ];
    const args = [
      'serve',
      '--id',
      id,
      '--cluster',
      this.options.cluster,
      '--data',
      dataDir,
      ...placement,
      ...(this.options.serveArgs ?? []),
      ...(this.options.memberArgs?.(id) ?? []),
    ];
    const env = this.options.memberEnv?.(id);
    // A member outlives no cluster process: if this one dies (even by SIGKILL), its children stop.
    const child = spawnTs(cliScript, args, {
      exitWithParent: true,
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
      ...(this.options.runtime === undefined ? {} : { runtime: this.options.runtime }),
    });
    const proc: ServeProcess = { spec, child, dataDir, stderrTail: [] };
    this.processes.set(id, proc);
    if (this.options.logDir !== undefined) {
      mkdirSync(this.options.logDir, { recursive: true });
      const file = createWriteStream(join(this.options.logDir, `${id}.log`), { flags: 'a' });
      file.on('error', () => {}); // a log that cannot be written must not end the cluster
      child.stderr!.pipe(file);
    }
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (this.options.inheritStderr === true) process.stderr.write(text);
      proc.stderrTail.push(...text.split('\n').filter((l) => l !== ''));
      if (proc.stderrTail.length > stderrTailLinesMax) {
        proc.stderrTail.splice(0, proc.stderrTail.length - stderrTailLinesMax);
      }
    });
    return new Promise((resolve, reject) => {
      let buffered = '';
      const timeoutMs = this.options.readyTimeoutMs ?? 30_000;
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `Member ${id} not ready in ${timeoutMs} ms: ${proc.stderrTail.slice(-5).join(' | ')}`,
            ),
          ),
        timeoutMs,
      );
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        if (buffered.includes('"ready":true')) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.stdout!.resume();
          child.once('exit', (code, signal) => {
            if (this.#ending.has(child)) return;
            this.options.onMemberExit?.({
              id,
              pid: child.pid,
              code,
              signal,
              stderrTail: [...proc.stderrTail],
            });
          });
          resolve(proc);
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `Member ${id} exited before ready (code ${code}, signal ${signal}): ${
              proc.stderrTail.slice(-5).join(' | ')
            }`,
          ),
        );
      });
    });
  }

  /** SIGKILL member `id` (a process this cluster started) and wait for it to exit. */
  async kill(id: string): Promise<void> {
    const proc = this.processes.get(id);
    if (proc === undefined) return;
    this.#ending.add(proc.child);
    await signalAndWait(proc.child, 'SIGKILL', 10_000);
    this.processes.delete(id);
  }

  /** SIGTERM every member (graceful stop), SIGKILL any still running after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.processes.values()].map(async (p) => {
      this.#ending.add(p.child);
      const stopped = await signalAndWait(p.child, 'SIGTERM', graceMs);
      if (!stopped) await signalAndWait(p.child, 'SIGKILL', 5_000);
    }));
    this.processes.clear();
  }

  clientAddresses(): string[] {
    return this.options.members.map((m) => m.clientAddress);
  }
}

/** Send `signal` to `child` and wait for it to exit; false if it had not exited by `timeoutMs`. */
export function signalAndWait(
  child: ChildProcess,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
    // process.kill, not child.kill: under Deno a ChildProcess delivers only its first signal, so
    // a SIGKILL after a SIGTERM would never arrive.
    try {
      process.kill(child.pid!, signal);
    } catch {
      // Exited meanwhile.
    }
  });
}
