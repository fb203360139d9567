/**
 * The figures of `bench/nemesis.bench.ts`, computed from what it recorded: the longest stretch
 * without an acknowledged write in each fault's window, and p50 / max per kind of fault. Pure
 * functions over times in ms since the run started.
 *
 * @example
 * ```ts
 * longestGapMs([10, 20, 200, 210], 0, 300); // 180 (from the ack at 20 to the one at 200)
 * summarize([{ kind: 'kill', role: 'leader', gapMs: 180, fedMs: 200, catchUpMs: 240 }]);
 * ```
 * @module
 */

/** What a fault does to its target. */
export type FaultKind = 'kill' | 'stop';
/** The target's role when the fault was applied. */
export type TargetRole = 'leader' | 'follower';

/** One applied fault and what it caused. */
export type FaultRecord = {
  index: number;
  kind: FaultKind;
  role: TargetRole;
  target: string;
  /** When the signal (SIGKILL or SIGSTOP) was sent. */
  atMs: number;
  /** How long the target was down (kill: exit to respawn) or frozen (stop: SIGSTOP to SIGCONT). */
  outageMs: number;
  /** End of the fault's window: the next fault, or the end of the writes. */
  windowEndMs: number;
  /** Longest stretch in [atMs, windowEndMs] without an acknowledged write. */
  gapMs: number;
  acked: number;
  failed: number;
  /** Kill only: respawn to its ready line. */
  readyMs: number | null;
  /**
   * Kill only: respawn until its commit index reached `targetIndex`, i.e. the leader had fed it
   * that far (null: not within the limit). The rest of `catchUpMs` is applying.
   */
  fedMs: number | null;
  /** Kill only: respawn until its applied index reached `targetIndex` (null: not within the limit). */
  catchUpMs: number | null;
  /** Kill only: the leader's commit index at the respawn. */
  targetIndex: number | null;
};

/**
 * The longest stretch in [fromMs, toMs] holding no time of `sortedAckMs` (ascending): the gaps
 * between consecutive acknowledgements, and from `fromMs` to the first and the last to `toMs`.
 */
export function longestGapMs(sortedAckMs: readonly number[], fromMs: number, toMs: number): number {
  let previous = fromMs;
  let longest = 0;
  for (let i = firstAtOrAfter(sortedAckMs, fromMs); i < sortedAckMs.length; i++) {
    const at = sortedAckMs[i]!;
    if (at > toMs) break;
    longest = Math.max(longest, at - previous);
    previous = at;
  }
  return Math.max(longest, toMs - previous);
}

/** How many of `sortedMs` (ascending) lie in [fromMs, toMs). */
export function countBetween(sortedMs: readonly number[], fromMs: number, toMs: number): number {
  return firstAtOrAfter(sortedMs, toMs) - firstAtOrAfter(sortedMs, fromMs);
}

/** Index of the first of `sorted` (ascending) at or after `value` (binary search). */
function firstAtOrAfter(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The `fraction` quantile of `values` (nearest rank), or null when there are none. */
export function quantile(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? sorted[0]!;
}

/** One summary row: a kind of fault on a role, p50 and max of its figures. */
export type SummaryRow = {
  kind: FaultKind;
  role: TargetRole;
  faults: number;
  gapMsP50: number | null;
  gapMsMax: number | null;
  fedMsP50: number | null;
  fedMsMax: number | null;
  catchUpMsP50: number | null;
  catchUpMsMax: number | null;
};

/**
 * p50 and max of the gap (and, for kills, of the feed and the catch-up) per kind and role, in the order kill
 * leader, kill follower, stop leader, stop follower. A catch-up that never came counts as missing
 * here; the per-fault table shows it.
 */
export function summarize(
  faults: readonly Pick<FaultRecord, 'kind' | 'role' | 'gapMs' | 'fedMs' | 'catchUpMs'>[],
): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const kind of ['kill', 'stop'] as const) {
    for (const role of ['leader', 'follower'] as const) {
      const group = faults.filter((f) => f.kind === kind && f.role === role);
      const gaps = group.map((f) => f.gapMs);
      const feds = group.flatMap((f) => f.fedMs === null ? [] : [f.fedMs]);
      const catchUps = group.flatMap((f) => f.catchUpMs === null ? [] : [f.catchUpMs]);
      rows.push({
        kind,
        role,
        faults: group.length,
        gapMsP50: quantile(gaps, 0.5),
        gapMsMax: gaps.length === 0 ? null : Math.max(...gaps),
        fedMsP50: quantile(feds, 0.5),
        fedMsMax: feds.length === 0 ? null : Math.max(...feds),
        catchUpMsP50: quantile(catchUps, 0.5),
        catchUpMsMax: catchUps.length === 0 ? null : Math.max(...catchUps),
      });
    }
  }
  return rows;
}
