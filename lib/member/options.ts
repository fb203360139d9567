/**
 * The member driver's options: the core's tunables (one schema, `RaftTunablesSchema`) plus the
 * driver's own limits and timings, every one named with its unit and validated once. `RaftServer`
 * composes this schema with the transport's and the client port's, so an option has one name,
 * one range and one default everywhere.
 *
 * @module
 */
import * as v from 'valibot';
import { checkRaftTunables, RaftTunablesSchema } from '../core/options.ts';
import { intInRange as int, type IntOption, parseOptions } from '../base/validate.ts';

/** Deliberate driver bugs, for proving that the simulator catches them. Never set them in production. */
export type DriverUnsafeFaults = {
  /** Send the messages that must wait for durability (votes, acknowledgements) at once. */
  sendBeforePersist?: boolean;
  /** Resolve each proposal with the output of the entry after its own. */
  resolveWithNextIndex?: boolean;
  /** Answer a read-index or lease read as soon as it is confirmed, before its index is applied. */
  readBeforeApplied?: boolean;
  /** Give a restarted member (not a fresh one) no vote embargo (breaks leader leases). */
  noRestartEmbargo?: boolean;
};

/** The names of every driver fault, for command lines and mutation tables. */
export const driverUnsafeFaultNames = [
  'sendBeforePersist',
  'resolveWithNextIndex',
  'readBeforeApplied',
  'noRestartEmbargo',
] as const satisfies ReadonlyArray<keyof DriverUnsafeFaults>;

/** The driver's own limits and timings (beyond the core's tunables). */
type DriverTunablesEntries = {
  /** Milliseconds per core tick. Election timeout is `electionTicks × tickMs` to twice that. */
  tickMs: IntOption;
  /** A proposal not applied within this time rejects with `TimeoutError` (outcome unknown). */
  proposalTimeoutMs: IntOption;
  /** Take a snapshot once this many entries were applied since the last one. */
  snapshotEntriesThreshold: IntOption;
  /** Take a snapshot once the stored log holds this many bytes. */
  snapshotLogBytesThreshold: IntOption;
  /** Entries kept below a snapshot when compacting, so slightly lagging members catch up from the log. */
  compactionTrailingEntries: IntOption;
  /** Bytes of snapshot data per InstallSnapshot chunk. */
  snapshotChunkBytes: IntOption;
  /** A snapshot chunk unanswered this long abandons the transfer (the core probes again). */
  snapshotChunkTimeoutMs: IntOption;
  /** Largest snapshot a member accepts from a leader, in bytes (staged on disk as it arrives). */
  snapshotReceiveBytesMax: IntOption;
  /**
   * Ready batches whose storage writes may be under way at once (they complete in order). More
   * than one lets the next batch's appends leave while the previous batch is still syncing.
   */
  writeBatchesInFlightMax: IntOption;
  /** Longest time `stop()` waits for in-flight proposals to settle. */
  stopGraceMs: IntOption;
  /** Events kept for `eventsSince()`. */
  eventsRetainedMax: IntOption;
  /** Shortest session timeout the leader grants, in ms (a client asking less gets this). */
  sessionTimeoutMsMin: IntOption;
  /** Longest session timeout the leader grants, in ms (a client asking more gets this). */
  sessionTimeoutMsMax: IntOption;
  /**
   * How far ahead of a session's next expected sequence a command may arrive and wait for its
   * predecessors; further ahead it is refused with a retryable COMMAND_ERROR. Size it to the
   * commands a client keeps in flight.
   */
  sessionCommandsAheadMax: IntOption;
  /**
   * Results kept per session for retries, until the client acknowledges them (every member must
   * use the same: it shapes the replicated state).
   */
  sessionResultsMax: IntOption;
  /** Unacknowledged events kept per session (every member must use the same). */
  sessionEventsMax: IntOption;
  /** A request forwarded to the leader and not answered this long fails with TIMEOUT. */
  forwardTimeoutMs: IntOption;
  /**
   * Entries a snapshot's compaction keeps beyond `compactionTrailingEntries` for members behind
   * it: the log is compacted only down to the leader's global index (the lowest index every live
   * ACTIVE and PASSIVE member stores), unless that is more than this many entries below the
   * snapshot, in which case the member that lags gets a snapshot instead. 0: the global index
   * does not hold compaction back.
   */
  compactionLagEntriesMax: IntOption;
  /**
   * ACTIVE members the leader's balancer keeps (0: no balancer). When an ACTIVE member has been
   * silent for `balancerFailureElectionTimeouts`, the most caught-up PASSIVE member is promoted,
   * then the failed one demoted (see `lib/member/balancer.ts`).
   */
  balancerActiveMembers: IntOption;
  /** PASSIVE members the balancer keeps, promoting RESERVE members when some failed. */
  balancerPassiveMembers: IntOption;
  /** Election timeouts (`electionTicks`) of silence after which the balancer counts a member failed. */
  balancerFailureElectionTimeouts: IntOption;
  /** Most entries applied before yielding to the event loop. */
  applyBatchEntriesMax: IntOption;
  /** Longest apply batch in milliseconds before yielding to the event loop. */
  applyBatchMsMax: v.OptionalSchema<
    v.SchemaWithPipe<
      readonly [
        v.NumberSchema<undefined>,
        v.MinValueAction<number, 0.01, undefined>,
        v.MaxValueAction<number, 60_000, undefined>,
      ]
    >,
    number
  >;
};

export const DriverTunablesSchema: v.ObjectSchema<DriverTunablesEntries, undefined> = v.object({
  tickMs: v.optional(int(1, 60_000), 10),
  proposalTimeoutMs: v.optional(int(1, 3_600_000), 10_000),
  snapshotEntriesThreshold: v.optional(int(1, 2 ** 40), 100_000),
  snapshotLogBytesThreshold: v.optional(int(1024, 2 ** 50), 256 * 1024 * 1024),
  compactionTrailingEntries: v.optional(int(0, 2 ** 40), 5_000),
  snapshotChunkBytes: v.optional(int(1, 1024 * 1024), 1024 * 1024),
  snapshotChunkTimeoutMs: v.optional(int(1, 3_600_000), 10_000),
  snapshotReceiveBytesMax: v.optional(int(1, 2 ** 50), 64 * 1024 ** 3),
  writeBatchesInFlightMax: v.optional(int(1, 64), 4),
  stopGraceMs: v.optional(int(0, 600_000), 3_000),
  eventsRetainedMax: v.optional(int(16, 1_000_000), 1024),
  sessionTimeoutMsMin: v.optional(int(100, 3_600_000), 1_000),
  sessionTimeoutMsMax: v.optional(int(100, 24 * 3_600_000), 300_000),
  sessionCommandsAheadMax: v.optional(int(1, 1_000_000), 16_384),
  sessionResultsMax: v.optional(int(1, 10_000_000), 65_536),
  sessionEventsMax: v.optional(int(1, 10_000_000), 65_536),
  forwardTimeoutMs: v.optional(int(1, 3_600_000), 10_000),
  compactionLagEntriesMax: v.optional(int(0, 2 ** 40), 10_000),
  balancerActiveMembers: v.optional(int(0, 1024), 0),
  balancerPassiveMembers: v.optional(int(0, 1024), 0),
  balancerFailureElectionTimeouts: v.optional(int(1, 1_000_000), 3),
  applyBatchEntriesMax: v.optional(int(1, 1_048_576), 1024),
  applyBatchMsMax: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(60_000)), 5),
});

/** Every option of the driver: the core's tunables and its own. */
export const DriverOptionsSchema: v.ObjectSchema<
  typeof RaftTunablesSchema.entries & DriverTunablesEntries,
  undefined
> = v.object({
  ...RaftTunablesSchema.entries,
  ...DriverTunablesSchema.entries,
});

/** The driver's options after defaults. */
export type DriverOptions = v.InferOutput<typeof DriverOptionsSchema>;
/** What callers pass. */
export type DriverOptionsInput = v.InferInput<typeof DriverOptionsSchema>;

/**
 * Check relationships between driver options (each alone was validated by its schema). Throws
 * `RangeError` naming the option; `where` says whose option it is.
 */
export function checkDriverOptions(o: DriverOptions, where: string): void {
  checkRaftTunables(o, where);
  if (o.sessionTimeoutMsMin > o.sessionTimeoutMsMax) {
    throw new RangeError(
      `Invalid option sessionTimeoutMsMin for ${where}: ${o.sessionTimeoutMsMin} exceeds sessionTimeoutMsMax ${o.sessionTimeoutMsMax}`,
    );
  }
}

/**
 * Validate driver options once: a wrong type or unknown option is a `TypeError`, a value out of
 * range a `RangeError`; both name the option.
 *
 * @example
 * ```ts
 * parseDriverOptions({ tickMs: 5 }).electionTicks; // 15
 * ```
 */
export function parseDriverOptions(input: unknown, where = 'MemberDriver'): DriverOptions {
  const o = parseOptions(v.strictObject(DriverOptionsSchema.entries), input, where);
  checkDriverOptions(o, where);
  return o;
}
