/**
 * What the torture harness tortures: a `TortureTarget`. `startLocalTarget` makes the usual one, a
 * local cluster of `serve` processes behind fault proxies with the testing hooks set; a user's own
 * cluster is tortured through an adapter of their own that returns a `TortureTarget` (`edgeraft
 * torture --adapter FILE`): its client addresses, how to make each fault it can make, and the
 * kinds it can make (faults it cannot make are skipped and said so in the report).
 *
 * @example
 * ```ts
 * // my-adapter.ts, for `edgeraft torture --adapter my-adapter.ts --faults partition`
 * // (import type { TortureTarget } from 'edgeraft/testing'):
 * export default async function (): Promise<TortureTarget> {
 *   return { members, control, network, kinds: ['partition'], notes: [], description: 'staging', exits: () => [], close: async () => {} };
 * }
 * ```
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { LocalCluster, localMembers } from '../../cli/processes.ts';
import { freePort } from '../../cli/processes.ts';
import { currentRuntime, type Runtime } from '../../runtime.ts';
import { type FaultKind, faultKinds } from './nemesis.ts';
import { type Network, ProxyNetwork } from './network.ts';

/** How to make each fault on one member. A target that cannot make a kind leaves it out of `kinds`. */
export interface MemberControl {
  /** Whether the member's process runs (a paused one runs). */
  isRunning(id: string): boolean;
  kill(id: string): Promise<void>;
  restart(id: string): Promise<void>;
  pause(id: string): void;
  resume(id: string): void;
  setClock(id: string, skew: { offsetMs: number; rate: number }): void;
  setSyncDelay(id: string, ms: number): void;
  /** Limit the member's file size (on) or lift the limit; resolves to what was done, in words. */
  limitFileSize(id: string, on: boolean): Promise<string>;
}

/** See the module comment. */
export interface TortureTarget {
  members: readonly { id: string; clientAddress: string }[];
  control: MemberControl;
  network: Network;
  kinds: readonly FaultKind[];
  /** Said in the report: how faults are made here, and what cannot be. */
  notes: string[];
  /** One line: what this target is. */
  description: string;
  /** Members that ended by themselves so far, with why (for the report). */
  exits(): string[];
  close(): Promise<void>;
}

/** Environment variables the local members get (the testing hooks). */
export const hookVariables = {
  clock: 'EDGERAFT_CLOCK_FILE',
  syncDelay: 'EDGERAFT_SYNC_DELAY_FILE',
  ignoreSigxfsz: 'EDGERAFT_IGNORE_SIGXFSZ',
  unsafe: 'EDGERAFT_UNSAFE_FAULTS',
} as const;

/** How to start the local target. */
export type LocalTargetOptions = {
  members: number;
  /** A folder of the harness's own: data and hook files go under it. */
  root: string;
  runtime?: Runtime;
  plantedFaults: string[];
  /** Where each member's log is appended (`ID.log`); none kept when absent. */
  logDir?: string;
  nowMs: () => number;
  log: (line: string) => void;
};

/**
 * A local cluster of `serve` processes: each member's peer address in the configuration is its
 * proxy's, and it listens behind it (`--peer-listen`); its clock, sync delay and SIGXFSZ hooks
 * are set. Every kind of fault can be made (disk-full only with `prlimit`).
 */
export async function startLocalTarget(o: LocalTargetOptions): Promise<TortureTarget> {
  const specs = await localMembers(o.members);
  const listenAt = new Map<string, string>();
  for (const m of specs) listenAt.set(m.id, `127.0.0.1:${await freePort()}`);
  const hookDir = join(o.root, 'hooks');
  mkdirSync(hookDir, { recursive: true });
  const hookFile = (id: string, what: string) => join(hookDir, `${id}.${what}`);
  const notes: string[] = [];
  const canLimitFiles = hasPrlimit();
  if (!canLimitFiles) notes.push('disk-full: prlimit not found, so this target cannot make it');
  const network = await ProxyNetwork.start(
    specs.map((m) => ({ id: m.id, listen: m.address, target: listenAt.get(m.id)! })),
  );
  const exits: string[] = [];
  let cluster: LocalCluster;
  try {
    cluster = await LocalCluster.start({
      members: specs,
      dataRoot: join(o.root, 'data'),
      cluster: 'torture',
      ...(o.runtime === undefined ? {} : { runtime: o.runtime }),
      ...(o.logDir === undefined ? {} : { logDir: o.logDir }),
      memberArgs: (id) => ['--peer-listen', listenAt.get(id)!],
      memberEnv: (id) => ({
        [hookVariables.clock]: hookFile(id, 'clock.json'),
        [hookVariables.syncDelay]: hookFile(id, 'sync-delay'),
        [hookVariables.ignoreSigxfsz]: '1',
        ...(o.plantedFaults.length === 0
          ? {}
          : { [hookVariables.unsafe]: o.plantedFaults.join(',') }),
      }),
      onMemberExit: (exit) => {
        exits.push(
          `${(o.nowMs() / 1000).toFixed(2)} s: ${exit.id} exited by itself (${
            exit.signal ?? `code ${exit.code}`
          }): ${exit.stderrTail.filter((l) => /error|fail/i.test(l)).slice(-3).join(' | ')}`,
        );
        o.log(`member ${exit.id} exited by itself: ${exit.signal ?? `code ${exit.code}`}`);
      },
    });
  } catch (error) {
    await network.close();
    throw error;
  }
  const c = cluster;
  const exited = (id: string) => {
    const child = c.processes.get(id)?.child;
    return child === undefined || child.exitCode !== null || child.signalCode !== null;
  };
  const control: MemberControl = {
    isRunning: (id) => !exited(id),
    kill: (id) => c.kill(id),
    restart: async (id) => {
      await c.startMember(id);
    },
    pause: (id) => {
      const pid = c.processes.get(id)?.child.pid;
      if (pid !== undefined && !exited(id)) process.kill(pid, 'SIGSTOP');
    },
    resume: (id) => {
      const pid = c.processes.get(id)?.child.pid;
      if (pid !== undefined && !exited(id)) process.kill(pid, 'SIGCONT');
    },
    setClock: (id, skew) => writeFileSync(hookFile(id, 'clock.json'), JSON.stringify(skew)),
    setSyncDelay: (id, ms) => writeFileSync(hookFile(id, 'sync-delay'), String(ms)),
    limitFileSize: (id, on) => {
      const proc = c.processes.get(id);
      if (proc === undefined || exited(id)) return Promise.resolve(`${id} had exited`);
      const pid = String(proc.child.pid!);
      if (!on) {
        execFileSync('prlimit', ['--pid', pid, '--fsize=unlimited:'], { stdio: 'ignore' });
        return Promise.resolve('limit lifted');
      }
      const bytes = largestFileBytes(proc.dataDir);
      execFileSync('prlimit', ['--pid', pid, `--fsize=${bytes}:`], { stdio: 'ignore' });
      return Promise.resolve(
        `${id}'s file size limited to ${bytes} bytes (prlimit --fsize, its LMDB file's size): writes that grow it fail`,
      );
    },
  };
  return {
    members: specs,
    control,
    network,
    kinds: faultKinds.filter((k) => k !== 'disk-full' || canLimitFiles),
    notes,
    description: `local cluster of ${o.members} under ${o.runtime ?? currentRuntime()}`,
    exits: () => [...exits],
    close: async () => {
      // A paused member would never take its SIGTERM: continue any first (ours, by pid).
      for (const p of c.processes.values()) {
        try {
          process.kill(p.child.pid!, 'SIGCONT');
        } catch {
          // Exited.
        }
      }
      await c.stopAll(5_000);
      await network.close();
    },
  };
}

function hasPrlimit(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Size of the largest file under `dir` (the LMDB data file). */
function largestFileBytes(dir: string): number {
  let largest = 0;
  for (const name of readdirSync(dir)) {
    try {
      const s = statSync(join(dir, name));
      if (s.isFile()) largest = Math.max(largest, s.size);
    } catch {
      // Gone meanwhile.
    }
  }
  return largest;
}
