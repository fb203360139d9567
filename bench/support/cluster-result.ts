/**
 * The line `bench/support/cluster-client.ts` prints per in-flight setting and mode, and the
 * cluster benches read: `RESULT <json>` on stdout.
 *
 * @example
 * ```ts
 * const result = parseClusterResult('RESULT {"inflight":1,...}');
 * ```
 * @module
 */

/** The prefix of a result line on stdout. */
export const resultPrefix = 'RESULT ';

/** The systems the bench client can drive. */
export type TargetName = 'edgeraft' | 'etcd' | 'ceiling';

/** One in-flight setting's figures (latencies of successful commands, in ms). */
export type ClusterClientResult = {
  target: TargetName;
  inflight: number;
  /** The target's mode: for edgeraft `on` (sessions) or `off`; `-` for the others. */
  mode: string;
  /** Every command in an exactly-once session (edgeraft's mode `on`). */
  sessions: boolean;
  commandBytes: number;
  commands: number;
  commandsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  firstError: string | null;
  /** Time the setting's spans of this mode took together, in ms. */
  elapsedMs: number;
  /** The leader's name as in `--watch` (edgeraft: its member id), if known. */
  leader: string | null;
  /** Per watched process (and `client`): CPU µs used per committed command in those spans. */
  cpuUsPerCommand: Record<string, number>;
  /** Per watched process (and `client`): CPU time over wall time in those spans (1 = one core). */
  cpuShare: Record<string, number>;
  /** Per watched process (and `client`): peak resident memory so far, in KiB. */
  peakRssKb: Record<string, number>;
};

/** Parse a result line, or return `null` for any other line. */
export function parseClusterResult(line: string): ClusterClientResult | null {
  if (!line.startsWith(resultPrefix)) return null;
  const value = JSON.parse(line.slice(resultPrefix.length)) as ClusterClientResult;
  if (typeof value.inflight !== 'number' || typeof value.commandsPerSec !== 'number') return null;
  return value;
}
