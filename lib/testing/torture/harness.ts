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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftClient } from '../../client/client.ts';
import { seededRandom } from '../../core/random.ts';
import { currentRuntime, type Runtime } from '../../runtime.ts';
import { checkLinearizability } from '../linearizability/check.ts';
import { appendModel } from '../session-model.ts';
import { type FaultKind, type FaultRecord, type Members, Nemesis } from './nemesis.ts';
import { startLocalTarget, type TortureTarget } from './target.ts';
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
  /** A folder for the local members' logs (`n1.log`, ...), kept after the run. */
  memberLogDir?: string;
  /**
   * The cluster to torture, when not a local one the harness starts (`members`, `runtime` and
   * `plantedFaults` are then unused): see `TortureTarget`. It is closed at the end.
   */
  target?: TortureTarget;
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

/** Run one torture; see the module comment. The cluster is stopped and its data removed. */
export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  const o = {
    checkBudgetMs: 60_000,
    // Runs shorter than 30 s get shorter holds, gaps and settling, so that faults still happen.
    holdMsMin: 1_500 * shortRunScale(options.durationMs),
    holdMsMax: 5_000 * shortRunScale(options.durationMs),
    gapMsMin: 1_000 * shortRunScale(options.durationMs),
    gapMsMax: 3_000 * shortRunScale(options.durationMs),
    settleMs: 4_000 * shortRunScale(options.durationMs),
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

  let target: TortureTarget | null = null;
  const statusClients = new Map<string, RaftClient>();
  let monitorTimer: ReturnType<typeof setInterval> | null = null;
  try {
    target = o.target ?? await startLocalTarget({
      members: o.members,
      root,
      ...(options.runtime === undefined ? {} : { runtime: options.runtime }),
      plantedFaults: o.plantedFaults ?? [],
      ...(o.memberLogDir === undefined ? {} : { logDir: o.memberLogDir }),
      nowMs: () => nowMs(),
      log,
    });
    const t = target;
    for (const k of o.kinds) {
      if (!t.kinds.includes(k)) notes.push(`${k}: this target cannot make it, so it is skipped`);
    }
    notes.push(...t.notes);
    const kinds = o.kinds.filter((k) => t.kinds.includes(k));
    const specs = t.members;
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
      if (!t.control.isRunning(id) || paused.has(id)) return null;
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
    log(`${t.description}; leader ${current}`);

    const members: Members = {
      ids: specs.map((m) => m.id),
      leader: () => current,
      kill: (id) => t.control.kill(id),
      restart: (id) => t.control.restart(id),
      pause: (id) => {
        paused.add(id);
        t.control.pause(id);
      },
      resume: (id) => {
        paused.delete(id);
        t.control.resume(id);
      },
      setClock: (id, skew) => t.control.setClock(id, skew),
      setSyncDelay: (id, ms) => t.control.setSyncDelay(id, ms),
      limitFileSize: (id, on) => t.control.limitFileSize(id, on),
      answers: async (id) => {
        if (!t.control.isRunning(id)) return false;
        for (let i = 0; i < 5; i++) {
          if ((await statusOf(id)) !== null) return true;
          await sleep(200);
        }
        return false;
      },
    };
    const network = t.network;

    const workload = new Workload({
      servers: specs.map((m) => m.clientAddress),
      clients: o.clients,
      keysPerGeneration: 3,
      keyLifetimeMs: 5_000,
      appendsPerKeyMax: 200,
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
    notes.push(...target.exits());
    if (nemesis.faults.length === 0) notes.push('no fault was injected: the run was too short');
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
    await target?.close();
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

/** 1 for runs of 30 s or more, down to 1/3 for shorter ones. */
function shortRunScale(durationMs: number): number {
  return Math.max(1 / 3, Math.min(1, durationMs / 30_000));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
