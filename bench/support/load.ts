/**
 * The closed-loop load every cluster bench applies, whatever system is under it (edgeraft, etcd,
 * the ceiling): `inflight` workers, each sending its next command as soon as its previous one is
 * answered, for a fixed time. A system is plugged in as a `LoadTarget`; the loop, the latency
 * record and the quantiles are the same for all, so their figures compare.
 *
 * @example
 * ```ts
 * const part = await keepInflight(target, 'plain', 16, 3000, { at: 0 });
 * const figures = summarize([part]);
 * ```
 * @module
 */

/**
 * A system the bench client drives. `command` resolves once the command is committed (the system
 * answered success) and rejects on any failure; `slot` is the in-flight worker sending it (0 ..
 * inflight - 1: a target with one connection per outstanding request uses it to pick one), `seq`
 * the command's sequence number (which key it writes).
 */
export type LoadTarget = {
  /** Modes measured in turn at each setting, e.g. `['on', 'off']` (sessions); at least one. */
  readonly modes: readonly string[];
  /** Throws until the system accepts writes (a leader is known and one command committed). */
  ready(): Promise<void>;
  command(mode: string, slot: number, seq: number): Promise<void>;
  /** The leader's name as in the client's `--watch` flag, if the target knows it. */
  leader(): string | null;
  close(): Promise<void>;
};

/** What one span of load produced: latencies of the successful commands only. */
export type LoadPart = {
  latenciesMs: number[];
  errors: number;
  firstError: string | null;
  elapsedMs: number;
};

/**
 * Wall-clock times (`performance.timeOrigin + performance.now()`, ms, comparable across processes
 * of one machine) of each successful command's send and answer, for `cluster-trace.ts`.
 */
export type CommandTimes = { sentMs: number[]; answeredMs: number[] };

/** Keep `inflight` commands of `mode` outstanding for `durationMs`. */
export async function keepInflight(
  target: LoadTarget,
  mode: string,
  inflight: number,
  durationMs: number,
  next: { at: number },
  times?: CommandTimes,
): Promise<LoadPart> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const end = started + durationMs;
  const worker = async (slot: number) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await target.command(mode, slot, next.at++);
        const t1 = performance.now();
        latenciesMs.push(t1 - t0);
        if (times !== undefined) {
          times.sentMs.push(performance.timeOrigin + t0);
          times.answeredMs.push(performance.timeOrigin + t1);
        }
      } catch (error) {
        errors++;
        firstError ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, (_, slot) => worker(slot)));
  return { latenciesMs, errors, firstError, elapsedMs: performance.now() - started };
}

/** The `fraction` quantile of ascending `sorted`, nearest rank. */
export function quantile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, rank)]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Throughput and latency quantiles of several parts of one setting taken together. */
export function summarize(parts: readonly LoadPart[]): {
  commands: number;
  commandsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
} {
  const sorted = Float64Array.from(parts.flatMap((p) => p.latenciesMs)).sort();
  const elapsedMs = parts.reduce((sum, p) => sum + p.elapsedMs, 0);
  return {
    commands: sorted.length,
    commandsPerSec: Math.round(sorted.length / (elapsedMs / 1000)),
    p50Ms: round3(quantile(sorted, 0.5)),
    p99Ms: round3(quantile(sorted, 0.99)),
    p999Ms: round3(quantile(sorted, 0.999)),
    maxMs: round3(sorted.length === 0 ? NaN : sorted[sorted.length - 1]!),
    errors: parts.reduce((sum, p) => sum + p.errors, 0),
    firstError: parts.find((p) => p.firstError !== null)?.firstError ?? null,
    elapsedMs,
  };
}
