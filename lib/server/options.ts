/**
 * The options of a `RaftServer`: every limit named with its unit, validated once at start.
 *
 * @module
 */
import * as v from 'valibot';
import { ListenAddressSchema } from '../base/address.ts';
import { parseOptions } from '../base/validate.ts';
import { MemberIdSchema, MembersSchema } from '../base/messages.ts';
import type { StateMachine } from '../state/state-machine.ts';
import type { CommandCodec } from '../state/codec.ts';

/** Where the server reports what an operator should see. */
export type ServerLogger = {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
};

const int = (min: number, max: number) =>
  v.pipe(v.number(), v.safeInteger(), v.minValue(min), v.maxValue(max));

const ServerOptionsSchema = v.strictObject({
  /** This member's id. */
  id: MemberIdSchema,
  /** The cluster's name: peers and clients of another cluster are refused. */
  cluster: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  /** Directory of this member's LMDB environment (created if missing). */
  dataDir: v.pipe(v.string(), v.minLength(1)),
  /** Peer listen address (`host:port`, port 0 picks one). */
  peerAddress: ListenAddressSchema,
  /** Client listen address (`host:port`, port 0 picks one). */
  clientAddress: ListenAddressSchema,
  /**
   * The founding configuration, used only when the data directory is new: every founding member
   * bootstraps with the same list. Omit it to join an existing cluster (the leader adds you).
   */
  members: v.optional(MembersSchema),
  stateMachine: v.custom<StateMachine<unknown, unknown, unknown, unknown>>(
    (x) =>
      typeof x === 'object' && x !== null && typeof (x as { apply?: unknown }).apply === 'function',
    'Expected a state machine (an object with apply, query, snapshot and restore)',
  ),
  codec: v.optional(
    v.custom<CommandCodec<unknown>>(
      (x) => typeof x === 'object' && x !== null,
      'Expected a command codec',
    ),
  ),
  /** Milliseconds per core tick. Election timeout is `electionTicks × tickMs` to twice that. */
  tickMs: v.optional(int(1, 60_000), 10),
  electionTicks: v.optional(int(3, 1_000_000), 15),
  heartbeatTicks: v.optional(int(1, 1_000_000), 3),
  /** A proposal not applied within this time rejects with `TimeoutError` (outcome unknown). */
  proposalTimeoutMs: v.optional(int(1, 3_600_000), 10_000),
  /** Take a snapshot once this many entries were applied since the last one. */
  snapshotEntriesThreshold: v.optional(int(1, 2 ** 40), 100_000),
  /** Take a snapshot once the stored log holds this many bytes. */
  snapshotLogBytesThreshold: v.optional(int(1024, 2 ** 50), 256 * 1024 * 1024),
  /** Entries kept below a snapshot when compacting, so slightly lagging members catch up from the log. */
  compactionTrailingEntries: v.optional(int(0, 2 ** 40), 5_000),
  /** Bytes of snapshot data per InstallSnapshot chunk. */
  snapshotChunkBytes: v.optional(int(1024, 1024 * 1024), 1024 * 1024),
  /** Bytes of entries per AppendEntries message. */
  messageBytesMax: v.optional(int(1024, 64 * 1024 * 1024), 1024 * 1024),
  /**
   * Ready batches whose storage writes may be under way at once (they complete in order). More
   * than one lets the next batch's appends leave while the previous batch is still syncing.
   */
  writeBatchesInFlightMax: v.optional(int(1, 64), 4),
  /** AppendEntries messages in flight per follower. */
  inflightMessagesMax: v.optional(int(1, 65_536), 256),
  /** Largest frame on the peer and client ports, in bytes. */
  frameBytesMax: v.optional(int(64 * 1024, 256 * 1024 * 1024), 8 * 1024 * 1024),
  /**
   * Most client connections at once. When full, a newcomer sheds the connection that has been idle
   * longest with no request in flight (it gets a `closing` notice, so its client resends what it
   * had not yet had read); only when every connection has a request in flight is the newcomer
   * refused. Idle connections therefore never lock real clients out.
   */
  clientConnectionsMax: v.optional(int(1, 1_000_000), 1024),
  /** Once a client frame has started, the rest must arrive within this time (slow-drip senders). */
  clientFrameDeadlineMs: v.optional(int(1, 3_600_000), 10_000),
  /**
   * A new client connection must complete its first request within this time, or it is closed:
   * the client port's handshake deadline (the peer port's `handshakeDeadlineMs`). At most
   * `clientIdleDeadlineMs`.
   */
  clientFirstRequestDeadlineMs: v.optional(int(1, 3_600_000), 5_000),
  /**
   * A client connection with no request in flight that has not completed a request for this long
   * is closed with a `closing` notice (a `RaftClient` reconnects when it next needs to, and
   * resends safely whatever the server had not read). Idle means since its last request arrived
   * or its last answer left, whichever is later.
   */
  clientIdleDeadlineMs: v.optional(int(1, 24 * 3_600_000), 60_000),
  /** Client requests being served at once per connection; more are refused with PROPOSAL_DROPPED. */
  clientRequestsPerConnectionMax: v.optional(int(1, 1_000_000), 4096),
  /** Longest time `stop()` waits for in-flight proposals to settle. */
  stopGraceMs: v.optional(int(0, 600_000), 3_000),
  /**
   * Log lines of one kind (the same text up to its numbers) written per `logIntervalMs`; more are
   * counted and reported in one summary line when the interval ends (the client port's lines
   * today). A flood of bad connections then costs a few lines, not thousands.
   */
  logLinesPerKindMax: v.optional(int(1, 1_000_000), 10),
  /** The interval of `logLinesPerKindMax`, counted from the first line of a kind. */
  logIntervalMs: v.optional(int(1, 3_600_000), 10_000),
  /** Events kept for `eventsSince()`. */
  eventsRetainedMax: v.optional(int(16, 1_000_000), 1024),
  logger: v.optional(
    v.custom<ServerLogger>(
      (x) => typeof x === 'object' && x !== null && typeof (x as ServerLogger).warn === 'function',
      'Expected a logger with info, warn, debug',
    ),
  ),
});

/** What callers pass to `RaftServer.start`. */
export type RaftServerOptionsInput = v.InferInput<typeof ServerOptionsSchema>;
/** The options after validation and defaults. */
export type RaftServerOptions = v.InferOutput<typeof ServerOptionsSchema>;

/**
 * Validate once: a wrong type or unknown option is a `TypeError`, a value out of range a
 * `RangeError`; both name the option.
 */
export function parseServerOptions(input: unknown): RaftServerOptions {
  const o = parseOptions(ServerOptionsSchema, input, 'RaftServer.start');
  if (o.heartbeatTicks >= o.electionTicks) {
    throw new RangeError(
      `Invalid server option heartbeatTicks: ${o.heartbeatTicks} must be below electionTicks ${o.electionTicks}`,
    );
  }
  if (o.clientFirstRequestDeadlineMs > o.clientIdleDeadlineMs) {
    throw new RangeError(
      `Invalid server option clientFirstRequestDeadlineMs: ${o.clientFirstRequestDeadlineMs} must not exceed clientIdleDeadlineMs ${o.clientIdleDeadlineMs}`,
    );
  }
  if (o.messageBytesMax + 64 * 1024 > o.frameBytesMax) {
    throw new RangeError(
      `Invalid server option frameBytesMax: ${o.frameBytesMax} must exceed messageBytesMax ${o.messageBytesMax} by 64 KiB`,
    );
  }
  if (o.snapshotChunkBytes + 64 * 1024 > o.frameBytesMax) {
    throw new RangeError(
      `Invalid server option frameBytesMax: ${o.frameBytesMax} must exceed snapshotChunkBytes ${o.snapshotChunkBytes} by 64 KiB`,
    );
  }
  return o;
}
