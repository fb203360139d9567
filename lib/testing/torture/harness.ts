/**
 * `runTorture`: the fault-injection harness behind `edgeraft torture`. It starts a cluster of real
 * `serve` processes (each behind a fault proxy on its peer port, each with the clock and disk
 * testing hooks set), runs the session clients (`workload.ts`) and the nemesis (`nemesis.ts`),
 * heals everything, lets the cluster settle, reads every key's final value, and then checks:
 * the history with the linearizability checker (within a time budget; out of budget the verdict
 * is `unknown`), and the final values against the acknowledged appends (none lost, none applied
 * twice, none from nowhere). `report.ts` turns the result into report.json, timeline.svg and
 * report.html. Only processes it started are ever signalled, by their own pid.
 *
 * @example
 * ```ts
 * const result = await runTorture({ durationMs: 30_000, members: 3, clients: 4, kinds: ['kill', 'partition'], seed: 1 });
 * console.log(result.verdict);
 * ```
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { RaftClient } from '../../client/client.ts';
import { seededRandom } from '../../core/random.ts';
import { LocalCluster, localMembers } from '../../cli/processes.ts';
import type { MemberSpec } from '../../cli/args.ts';
import { freePort } from '../../cli/processes.ts';
import { currentRuntime, type Runtime } from '../../runtime.ts';
import { checkLinearizability } from '../linearizability/check.ts';
import { appendModel } from '../session-model.ts';
import { type FaultKind, type FaultRecord, type Members, Nemesis } from './nemesis.ts';
import { ProxyNetwork } from './network.ts';
import { readFinal, type TortureOperation, Workload } from './workload.ts';

/** How a torture run goes. */
export type TortureOptions = {
  durationMs: number;
  members: number;
  clients: number;
  kinds: readonly FaultKind[];
  seed: number;
  runtime?: Runtime;
  /** Milliseconds the linearizability check may take. Default 60 000. */
  checkBudgetMs?: number;
  /** Each fault's hold time, and the gap between faults. Defaults: 1.5-5 s, 1-3 s. */
  holdMsMin?: number;
  holdMsMax?: number;
  gapMsMin?: number;
  gapMsMax?: number;
  /** Quiet time after the last heal before the workload stops. Default 4 000. */
  settleMs?: number;
  /**
   * Deliberate bugs for the members (`EDGERAFT_UNSAFE_FAULTS`, e.g. `resolveWithNextIndex`): to
   * show that the harness catches a broken member. Never in real use.
   */
  plantedFaults?: string[];
  log?: (line: string) => void;
};

/** A leader as the harness saw it: from `atMs` on (the run clock). */
export type LeaderSample = { atMs: number; leader: string | null; term: number };

/** Per-key evidence from the final values. */
export type WriteCheck = {
  keys: number;
  acknowledgedAppends: number;
  /** Tokens of acknowledged appends missing from their key's final value. */
  lost: string[];
  /** Tokens found more than once. */
  duplicated: string[];
  /** Tokens in a final value that no append of that key carried. */
  phantom: string[];
  /** Appends of unknown outcome that took effect (found once in the final value). */
  unknownApplied: number;
  /** Keys whose final value could not be read. */
  unreadable: string[];
};

/** Everything a run found. */
export type TortureResult = {
  verdict: 'ok' | 'failed' | 'unknown';
  /** Why, in one line. */
  summary: string;
  options: {
    durationMs: number;
    members: number;
    clients: number;
    kinds: FaultKind[];
    seed: number;
    runtime: Runtime;
    plantedFaults: string[];
  };
  startedAt: string;
  elapsedMs: number;
  history: TortureOperation[];
  faults: FaultRecord[];
  leaders: LeaderSample[];
  linearizability: {
    verdict: string;
    elapsedMs: number;
    operations: number;
    reason: string | null;
    explanation: string | null;
  };
  writes: WriteCheck;
  /** Notes on how faults were made (and which could not be). */
  notes: string[];
};

/** Environment variables the members get (the testing hooks). */
const hookVariables = {
  clock: 'EDGERAFT_CLOCK_FILE',
  syncDelay: 'EDGERAFT_SYNC_DELAY_FILE',
  ignoreSigxfsz: 'EDGERAFT_IGNORE_SIGXFSZ',
  unsafe: 'EDGERAFT_UNSAFE_FAULTS',
} as const;

/** Run one torture; see the module comment. The cluster is stopped and its data removed. */
export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  const o = {
    checkBudgetMs: 60_000,
    holdMsMin: 1_500,
    holdMsMax: 5_000,
    gapMsMin: 1_000,
    gapMsMax: 3_000,
    settleMs: 4_000,
    ...options,
  };
  const log = o.log ?? (() => {});
  const runtime = o.runtime ?? currentRuntime();
  const random = seededRandom(o.seed);
  const notes: string[] = [];
  const root = mkdtempSync(join(tmpdir(), 'edgeraft-torture-'));
  const startedAt = new Date().toISOString();
  let t0 = performance.now();
  const nowMs = () => Math.round((performance.now() - t0) * 10) / 10;

  // Each member: the address in the configuration (its proxy) and the one it listens at.
  const plain = await localMembers(o.members);
  const specs: MemberSpec[] = plain;
  const listenAt = new Map<string, string>();
  for (const m of plain) listenAt.set(m.id, `127.0.0.1:${await freePort()}`);
  const hookDir = join(root, 'hooks');
  mkdirSync(hookDir, { recursive: true });
  const hookFile = (id: string, what: string) => join(hookDir, `${id}.${what}`);
  const canLimitFiles = hasPrlimit();
  if (o.kinds.includes('disk-full') && !canLimitFiles) {
    notes.push('disk-full: prlimit not found, so the fault is skipped');
  }
  const kinds = o.kinds.filter((k) => k !== 'disk-full' || canLimitFiles);

  const network = await ProxyNetwork.start(
    specs.map((m) => ({ id: m.id, listen: m.address, target: listenAt.get(m.id)! })),
  );
  const unexpectedExits: string[] = [];
  let cluster: LocalCluster | null = null;
  const statusClients = new Map<string, RaftClient>();
  let monitorTimer: ReturnType<typeof setInterval> | null = null;
  try {
    cluster = await LocalCluster.start({
      members: specs,
      dataRoot: join(root, 'data'),
      cluster: 'torture',
      ...(options.runtime === undefined ? {} : { runtime: options.runtime }),
      memberArgs: (id) => ['--peer-listen', listenAt.get(id)!],
      memberEnv: (id) => ({
        [hookVariables.clock]: hookFile(id, 'clock.json'),
        [hookVariables.syncDelay]: hookFile(id, 'sync-delay'),
        [hookVariables.ignoreSigxfsz]: '1',
        ...(o.plantedFaults === undefined || o.plantedFaults.length === 0
          ? {}
          : { [hookVariables.unsafe]: o.plantedFaults.join(',') }),
      }),
      onMemberExit: (exit) => {
        unexpectedExits.push(
          `${nowMs() / 1000} s: ${exit.id} exited by itself (${
            exit.signal ?? `code ${exit.code}`
          }): ${exit.stderrTail.filter((l) => /error|fail/i.test(l)).slice(-3).join(' | ')}`,
        );
        log(`member ${exit.id} exited by itself: ${exit.signal ?? `code ${exit.code}`}`);
      },
    });
    const c = cluster;
    for (const m of specs) {
      statusClients.set(
        m.id,
        await RaftClient.connect({
          servers: [m.clientAddress],
          session: false,
          requestTimeoutMs: 400,
          connectTimeoutMs: 200,
        }),
      );
    }
    const paused = new Set<string>();
    const statusOf = async (id: string) => {
      if (!c.processes.has(id) || paused.has(id)) return null;
      try {
        return await statusClients.get(id)!.status() as { role: string; term: number };
      } catch {
        return null;
      }
    };

    // The leader monitor: the member that says it leads in the highest term.
    const leaders: LeaderSample[] = [];
    let current: string | null = null;
    let polling = false;
    const poll = async () => {
      if (polling) return;
      polling = true;
      try {
        const all = await Promise.all(
          specs.map(async (m) => ({ id: m.id, s: await statusOf(m.id) })),
        );
        let best: { id: string; term: number } | null = null;
        for (const { id, s } of all) {
          if (s?.role === 'leader' && (best === null || s.term > best.term)) {
            best = { id, term: s.term };
          }
        }
        const leader = best?.id ?? null;
        if (leaders.length === 0 || leader !== current) {
          leaders.push({ atMs: nowMs(), leader, term: best?.term ?? 0 });
          current = leader;
        }
      } finally {
        polling = false;
      }
    };
    monitorTimer = setInterval(() => void poll(), 100);
    const waitForLeader = async (timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs;
      while (current === null && performance.now() < deadline) await sleep(50);
      return current !== null;
    };
    if (!(await waitForLeader(30_000))) throw new Error('No leader within 30 s of the start');
    // Time 0 of the run (and of every recorded time) is when the workload starts.
    t0 = performance.now();
    leaders.splice(0, leaders.length, {
      atMs: 0,
      leader: current,
      term: leaders.at(-1)?.term ?? 0,
    });
    log(`cluster of ${o.members} under ${runtime}; leader ${current}`);

    const members: Members = {
      ids: specs.map((m) => m.id),
      leader: () => current,
      kill: (id) => c.kill(id),
      restart: async (id) => {
        await c.startMember(id);
      },
      pause: (id) => {
        const pid = c.processes.get(id)?.child.pid;
        if (pid === undefined) return;
        paused.add(id);
        process.kill(pid, 'SIGSTOP');
      },
      resume: (id) => {
        const pid = c.processes.get(id)?.child.pid;
        paused.delete(id);
        if (pid !== undefined) process.kill(pid, 'SIGCONT');
      },
      setClock: (id, skew) => writeFileSync(hookFile(id, 'clock.json'), JSON.stringify(skew)),
      setSyncDelay: (id, ms) => writeFileSync(hookFile(id, 'sync-delay'), String(ms)),
      limitFileSize: (id, on) => {
        const proc = c.processes.get(id);
        if (proc === undefined) return Promise.resolve(`${id} is not running`);
        const pid = proc.child.pid!;
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
          return Promise.resolve(`${id} had exited`);
        }
        if (!on) {
          execFileSync('prlimit', ['--pid', String(pid), '--fsize=unlimited:'], {
            stdio: 'ignore',
          });
          return Promise.resolve('limit lifted');
        }
        const bytes = largestFileBytes(proc.dataDir);
        execFileSync('prlimit', ['--pid', String(pid), `--fsize=${bytes}:`], { stdio: 'ignore' });
        return Promise.resolve(
          `${id}'s file size limited to ${bytes} bytes (prlimit --fsize, its LMDB file's size): writes that grow it fail`,
        );
      },
      answers: async (id) => {
        const child = c.processes.get(id)?.child;
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
          return false;
        }
        for (let i = 0; i < 5; i++) {
          if ((await statusOf(id)) !== null) return true;
          await sleep(200);
        }
        return false;
      },
    };

    const workload = new Workload({
      servers: specs.map((m) => m.clientAddress),
      clients: o.clients,
      keysPerGeneration: 3,
      keyLifetimeMs: 5_000,
      readFraction: 0.4,
      requestTimeoutMs: 2_000,
      nowMs,
      random: seededRandom(o.seed ^ 0x5eed),
    });
    await workload.start();
    const lastStartMs = Math.max(0, o.durationMs - o.settleMs - o.holdMsMax);
    const nemesis = new Nemesis({
      kinds,
      members,
      network,
      nowMs,
      random,
      lastStartMs,
      holdMsMin: o.holdMsMin,
      holdMsMax: o.holdMsMax,
      gapMsMin: o.gapMsMin,
      gapMsMax: o.gapMsMax,
      log,
    });
    await nemesis.run();
    // Everything is healed; the cluster settles under the workload, then the clients stop.
    await sleep(Math.max(o.settleMs, o.durationMs - nowMs()));
    await workload.stop();
    log(`workload stopped: ${workload.history.length} operations`);

    // Final values: linearizable reads, retried for up to 30 s.
    await waitForLeader(30_000);
    const reader = await RaftClient.connect({
      servers: specs.map((m) => m.clientAddress),
      session: false,
      requestTimeoutMs: 5_000,
    });
    const finals = new Map<string, string | null>();
    const unreadable: string[] = [];
    const readDeadline = performance.now() + 30_000;
    try {
      for (const key of workload.keys()) {
        try {
          finals.set(
            key,
            await readFinal(reader as never, key, () => performance.now() > readDeadline),
          );
        } catch {
          unreadable.push(key);
        }
      }
    } finally {
      await reader.close();
    }
    clearInterval(monitorTimer);
    monitorTimer = null;

    const history = workload.history;
    const writes = checkWrites(history, finals, unreadable);
    log('checking linearizability');
    const lin = checkLinearizability(appendModel(), history, { timeBudgetMs: o.checkBudgetMs });
    for (const exit of unexpectedExits) notes.push(exit);
    const writeProblems = writes.lost.length + writes.duplicated.length + writes.phantom.length;
    const verdict = lin.verdict === 'not linearizable' || writeProblems > 0
      ? 'failed'
      : lin.verdict === 'unknown' || writes.unreadable.length > 0
      ? 'unknown'
      : 'ok';
    const summary = verdict === 'ok'
      ? `linearizable, no acknowledged write lost, none applied twice (${history.length} operations, ${nemesis.faults.length} faults)`
      : [
        lin.verdict === 'linearizable' ? null : `linearizability: ${lin.verdict}`,
        writes.lost.length > 0 ? `${writes.lost.length} acknowledged appends lost` : null,
        writes.duplicated.length > 0 ? `${writes.duplicated.length} appends applied twice` : null,
        writes.phantom.length > 0 ? `${writes.phantom.length} appends from nowhere` : null,
        writes.unreadable.length > 0 ? `${writes.unreadable.length} keys unreadable` : null,
      ].filter((s) => s !== null).join('; ');
    return {
      verdict,
      summary,
      options: {
        durationMs: o.durationMs,
        members: o.members,
        clients: o.clients,
        kinds: [...o.kinds],
        seed: o.seed,
        runtime,
        plantedFaults: o.plantedFaults ?? [],
      },
      startedAt,
      elapsedMs: nowMs(),
      history,
      faults: nemesis.faults,
      leaders,
      linearizability: {
        verdict: lin.verdict,
        elapsedMs: Math.round(lin.elapsedMs),
        operations: lin.operationCount,
        reason: lin.reason,
        explanation: lin.failure?.explanation ?? null,
      },
      writes,
      notes,
    };
  } finally {
    if (monitorTimer !== null) clearInterval(monitorTimer);
    for (const client of statusClients.values()) await client.close().catch(() => {});
    if (cluster !== null) {
      // A paused member would never take its SIGTERM: continue any first (ours, by pid).
      for (const p of cluster.processes.values()) {
        try {
          process.kill(p.child.pid!, 'SIGCONT');
        } catch {
          // Exited.
        }
      }
      await cluster.stopAll(5_000);
    }
    await network.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Compare the final values with what the appends were told. */
export function checkWrites(
  history: readonly TortureOperation[],
  finals: ReadonlyMap<string, string | null>,
  unreadable: string[],
): WriteCheck {
  const byKey = new Map<string, TortureOperation[]>();
  for (const op of history) {
    if (op.input.f !== 'append') continue;
    const list = byKey.get(op.input.key) ?? [];
    list.push(op);
    byKey.set(op.input.key, list);
  }
  const check: WriteCheck = {
    keys: finals.size,
    acknowledgedAppends: 0,
    lost: [],
    duplicated: [],
    phantom: [],
    unknownApplied: 0,
    unreadable,
  };
  for (const [key, ops] of byKey) {
    if (!finals.has(key)) continue;
    const tokens = (finals.get(key) ?? '').split(';').filter((t) => t !== '');
    const counts = new Map<string, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    const carried = new Set<string>();
    for (const op of ops) {
      const token = (op.input as { value: string }).value.slice(0, -1);
      carried.add(token);
      const n = counts.get(token) ?? 0;
      if (op.outcome === 'ok') {
        check.acknowledgedAppends++;
        if (n === 0) check.lost.push(`${key}: ${token}`);
      } else if (op.outcome === 'unknown' && n === 1) check.unknownApplied++;
      if (n > 1) check.duplicated.push(`${key}: ${token} ×${n}`);
    }
    for (const t of counts.keys()) if (!carried.has(t)) check.phantom.push(`${key}: ${t}`);
  }
  return check;
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
