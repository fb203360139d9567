/**
 * The line `bench/support/cluster-client.ts` prints per in-flight setting and
 * `bench/cluster.bench.ts` reads: `RESULT <json>` on stdout.
 *
 * @example
 * ```ts
 * const result = parseClusterResult('RESULT {"inflight":1,...}');
 * ```
 * @module
 */

/** The prefix of a result line on stdout. */
export const resultPrefix = 'RESULT ';

/** One in-flight setting's figures (latencies of successful commands, in ms). */
export type ClusterClientResult = {
  inflight: number;
  /** Every command in an exactly-once session (else plain commands). */
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
};

/** Parse a result line, or return `null` for any other line. */
export function parseClusterResult(line: string): ClusterClientResult | null {
  if (!line.startsWith(resultPrefix)) return null;
  const value = JSON.parse(line.slice(resultPrefix.length)) as ClusterClientResult;
  if (typeof value.inflight !== 'number' || typeof value.commandsPerSec !== 'number') return null;
  return value;
}
