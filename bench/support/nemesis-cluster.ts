/**
 * The members of `bench/nemesis.bench.ts`: `lib/cli.ts serve` child processes of any checkout
 * (`repo`), started on loopback under a chosen runtime, that can be SIGKILLed and restarted,
 * SIGSTOPped and SIGCONTed, and asked for their status over their own client port. Every signal
 * goes to a process this module started, by its own pid; `stopAll` ends every one of them (also
 * stopped ones) and is safe to call twice, from a signal handler too.
 *
 * @example
 * ```ts
 * const cluster = new NemesisCluster({ repo, runtime: 'bun', dataRoot, members });
 * await cluster.startAll();
 * await cluster.kill('n1');
 * await cluster.restart('n1');
 * await cluster.stopAll();
 * ```
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import process from 'node:process';
import type { Buffer } from 'node:buffer';
import { RaftClient } from '../../lib/client/client.ts';
import type { MemberSpec } from '../../lib/cli/args.ts';
import { type Runtime, tsCommand } from '../../lib/runtime.ts';

/** Longest wait for a member to print its ready line, in ms. */
export const readyTimeoutMsMax = 30_000;
/** Longest wait for one status answer, in ms: a stopped or dead member must not stall polling. */
export const statusTimeoutMs = 500;
/** A graceful stop (SIGTERM) gets this long before SIGKILL, in ms. */
export const stopGraceMs = 5_000;
/** Lines of each member's stderr kept for error messages. */
const stderrLinesMax = 50;

/**
 * Send `signal` to `child` by its pid. Not `child.kill`: under Deno it delivers one signal per
 * child and then silently none (a SIGCONT after a SIGSTOP would never arrive). False when the
 * process is gone.
 */
function signal(child: ChildProcess, name: NodeJS.Signals): boolean {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
  try {
    process.kill(child.pid, name);
    return true;
  } catch {
    return false; // exited meanwhile
  }
}

/** Send `name` to `child` and wait for it to exit; false if it had not exited by `timeoutMs`. */
function signalAndWait(
  child: ChildProcess,
  name: NodeJS.Signals,
  timeoutMs: number,
): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
    if (!signal(child, name) && (child.exitCode !== null || child.signalCode !== null)) {
      clearTimeout(timer);
      resolve(true);
    }
  });
}

/** What a member reports through `status()` that the nemesis reads. */
export type MemberStatus = {
  id: string;
  role: string;
  term: number;
  commitIndex: number;
  lastAppliedIndex: number;
};

/** How to start the members. */
export type NemesisClusterOptions = {
  /** The checkout whose `lib/cli.ts` runs (its `node_modules` must be installed or linked). */
  repo: string;
  runtime: Runtime;
  /** One data folder per member is made under it. */
  dataRoot: string;
  members: MemberSpec[];
  cluster?: string;
};

type Member = {
  spec: MemberSpec;
  child: ChildProcess | null;
  stopped: boolean;
  stderrTail: string[];
  status: RaftClient | null;
};

/** See the module comment. */
export class NemesisCluster {
  readonly #o: NemesisClusterOptions;
  readonly #members = new Map<string, Member>();
  #stopping: Promise<void> | null = null;

  /** Nothing starts yet (`startAll`): a signal handler can hold the cluster before any child. */
  constructor(o: NemesisClusterOptions) {
    this.#o = o;
    for (const spec of o.members) {
      this.#members.set(spec.id, {
        spec,
        child: null,
        stopped: false,
        stderrTail: [],
        status: null,
      });
    }
  }

  /** Start every member and wait until each is ready; on failure every started one is ended. */
  async startAll(): Promise<void> {
    try {
      await Promise.all(this.ids.map((id) => this.restart(id)));
    } catch (error) {
      await this.stopAll();
      throw error;
    }
  }

  /** Member ids, in the order given. */
  get ids(): string[] {
    return [...this.#members.keys()];
  }

  /** Client addresses of every member. */
  clientAddresses(): string[] {
    return this.#o.members.map((m) => m.clientAddress);
  }

  /** Pids of the members now running (stopped ones included). */
  pids(): number[] {
    const pids: number[] = [];
    for (const m of this.#members.values()) if (m.child?.pid !== undefined) pids.push(m.child.pid);
    return pids;
  }

  /** True when member `id` runs and is not stopped. */
  live(id: string): boolean {
    const m = this.#member(id);
    return m.child !== null && !m.stopped;
  }

  /** (Re)start member `id` on its addresses and data folder; resolves once it printed ready. */
  restart(id: string): Promise<void> {
    const m = this.#member(id);
    if (this.#stopping !== null) throw new Error(`Cluster stopping: member ${id} not started`);
    if (m.child !== null) throw new Error(`Member ${id} is running: kill it first`);
    const membersFlag = this.#o.members.map((s) => `${s.id}=${s.address}/${s.clientAddress}`)
      .join(',');
    const { command, args } = tsCommand(join(this.#o.repo, 'lib', 'cli.ts'), [
      'serve',
      '--id',
      id,
      '--cluster',
      this.#o.cluster ?? 'nemesis',
      '--data',
      join(this.#o.dataRoot, id),
      '--members',
      membersFlag,
    ], this.#o.runtime);
    const child = spawn(command, args, { cwd: this.#o.repo, stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    m.stopped = false;
    child.stderr!.on('data', (chunk: Buffer) => {
      m.stderrTail.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      if (m.stderrTail.length > stderrLinesMax) {
        m.stderrTail.splice(0, m.stderrTail.length - stderrLinesMax);
      }
    });
    child.once('exit', () => {
      if (m.child === child) m.child = null;
    });
    return new Promise((resolve, reject) => {
      let buffered = '';
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`Member ${id} ${why}: ${m.stderrTail.slice(-5).join(' | ')}`));
      };
      const timer = setTimeout(
        () => fail(`not ready in ${readyTimeoutMsMax} ms`),
        readyTimeoutMsMax,
      );
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        if (!buffered.includes('"ready":true')) return;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null, signal: string | null) =>
        fail(`exited before ready (code ${code}, signal ${signal})`);
      child.stdout!.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /** SIGKILL member `id` and wait for it to exit. */
  async kill(id: string): Promise<void> {
    const m = this.#member(id);
    if (m.child === null) return;
    await signalAndWait(m.child, 'SIGKILL', stopGraceMs);
    m.child = null;
    m.stopped = false;
    await this.#dropStatus(m);
  }

  /** SIGSTOP member `id`: it stays, frozen, until `resume`. */
  pause(id: string): void {
    const m = this.#member(id);
    if (m.child === null || m.stopped) return;
    signal(m.child, 'SIGSTOP');
    m.stopped = true;
  }

  /** SIGCONT member `id` after `pause`. */
  resume(id: string): void {
    const m = this.#member(id);
    if (m.child === null || !m.stopped) return;
    signal(m.child, 'SIGCONT');
    m.stopped = false;
  }

  /** Member `id`'s status through its own client port, or `null` (down, stopped, slow). */
  async status(id: string): Promise<MemberStatus | null> {
    const m = this.#member(id);
    if (m.child === null || m.stopped) return null;
    m.status ??= await RaftClient.connect({
      servers: [m.spec.clientAddress],
      requestTimeoutMs: statusTimeoutMs,
      retryDelayMs: 10,
    });
    try {
      return (await m.status.status()) as MemberStatus;
    } catch {
      return null;
    }
  }

  /** The live member that says it leads in the highest term, or `null`. */
  async leader(): Promise<MemberStatus | null> {
    const all = await Promise.all(this.ids.map((id) => this.status(id)));
    let best: MemberStatus | null = null;
    for (const s of all) {
      if (s !== null && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
    }
    return best;
  }

  /**
   * End every member: stopped ones are continued, all get SIGTERM, and SIGKILL after
   * `stopGraceMs`. Idempotent: a second call waits for the first.
   */
  stopAll(): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.all([...this.#members.values()].map(async (m) => {
        await this.#dropStatus(m);
        const child = m.child;
        if (child === null) return;
        if (m.stopped) signal(child, 'SIGCONT');
        m.stopped = false;
        if (!(await signalAndWait(child, 'SIGTERM', stopGraceMs))) {
          await signalAndWait(child, 'SIGKILL', stopGraceMs);
        }
        m.child = null;
      }));
    })();
    return this.#stopping;
  }

  /** The last lines member `id` wrote on stderr. */
  stderrTail(id: string): string[] {
    return [...this.#member(id).stderrTail];
  }

  async #dropStatus(m: Member): Promise<void> {
    const client = m.status;
    m.status = null;
    await client?.close();
  }

  #member(id: string): Member {
    const m = this.#members.get(id);
    if (m === undefined) throw new RangeError(`No member ${id} in this cluster`);
    return m;
  }
}
