/**
 * The driver's measuring port: durations of the work an operator watches (a durable storage
 * write, applying a batch of committed entries), reported as they end. `RaftServer` wires it to
 * its histograms (`lib/server/metrics.ts`); the simulator passes none, and then nothing is timed.
 * Reporting must cost no allocation: two numbers per call.
 *
 * @example
 * ```ts
 * const meter: DriverMeter = {
 *   nowMs: () => performance.now(),
 *   storageWritten: (durationMs) => writes.observe(durationMs / 1000),
 *   applied: (durationMs, entryCount) => applies.observe(durationMs / 1000),
 * };
 * ```
 * @module
 */

/** See the module comment. Each call is synchronous and must not throw. */
export type DriverMeter = {
  /** A monotonic clock in milliseconds with sub-millisecond resolution, for durations only. */
  nowMs(): number;
  /** A ready's storage write (entries, hard state, snapshot) became durable after `durationMs`. */
  storageWritten(durationMs: number): void;
  /** `entryCount` committed entries were applied to the state machine in `durationMs`. */
  applied(durationMs: number, entryCount: number): void;
};
