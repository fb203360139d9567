/**
 * Transport options: every limit is named, documented and validated once, at construction, with
 * valibot. A value of the wrong type is a `TypeError`, one out of range a `RangeError`; both name
 * the option.
 *
 * @example
 * ```ts
 * import { parseTransportOptions } from './options.ts';
 * const options = parseTransportOptions({ cluster: 'c1', member: 'a', frameBytesMax: 1 << 20 });
 * options.inflightBytesMax; // 16777216 (the default)
 * ```
 * @module
 */
import process from 'node:process';
import * as v from 'valibot';
import { parseOptions } from '../base/validate.ts';
import { MemberIdSchema } from '../base/messages.ts';
import { assert } from '../base/errors.ts';
import { frameLengthMax } from './frame.ts';
import type { Logger } from '../base/logger.ts';
import { TlsFilesSchema, TlsReloader } from './tls.ts';

/** Where the transports write why they closed a connection (see `lib/base/logger.ts`). */
export type TransportLogger = Logger;

/** The default logger: one line per warning or info on stderr, debug dropped. */
export const stderrLogger: TransportLogger = {
  warn: (message) => void process.stderr.write(`edgeraft transport: ${message}\n`),
  info: (message) => void process.stderr.write(`edgeraft transport: ${message}\n`),
  debug: () => {},
};

/** Control frames (heartbeats, votes) may use this many bytes beyond what bulk frames may. */
export const controlBytesReserved = 64 * 1024;

/** Default `reconnectDelayMsMin`, in ms (lowered to `reconnectDelayMsMax` when that is lower). */
export const reconnectDelayMsMinDefault = 50;
/**
 * Default `reconnectDelayMsMax`, in ms: one election timeout with `RaftServer`'s defaults
 * (`tickMs` 10 × `electionTicks` 15).
 */
export const reconnectDelayMsMaxDefault = 150;

/**
 * After a peer refuses our handshake (another cluster or protocol version), the next dial to it
 * waits between half this and this, in ms, whatever `reconnectDelayMsMax` says: the peer is up and
 * answering, so an election-timeout redial would only fill both logs with the same refusal. A
 * refused peer that is fixed and restarted dials us itself and is then redialled at once.
 */
export const refusedRedialDelayMs = 5_000;
assert(
  refusedRedialDelayMs / 2 >= reconnectDelayMsMaxDefault,
  'a refusal backs off longer than a peer that is down',
);

/** An integer in [min, max]: the type of `count`'s schemas. */
type CountSchema = v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, number, undefined>,
    v.MaxValueAction<number, number, undefined>,
  ]
>;
/** An optional count whose default is filled in. */
type CountWithDefault = v.OptionalSchema<CountSchema, number>;

const count = (min: number, max: number): CountSchema =>
  v.pipe(v.number(), v.safeInteger(), v.minValue(min), v.maxValue(max));

const LoggerSchema: v.CustomSchema<TransportLogger, v.ErrorMessage<v.CustomIssue> | undefined> = v
  .custom<TransportLogger>(
    (value) =>
      typeof value === 'object' && value !== null &&
      ['warn', 'info', 'debug'].every((k) =>
        typeof (value as Record<string, unknown>)[k] === 'function'
      ),
    'Expected an object with warn, info and debug functions',
  );

/** The options of `TcpTransport` (and the limits `MemoryTransport` shares). */
export const TransportOptionsSchema: v.StrictObjectSchema<{
  /** Cluster name, sent in the handshake: a peer naming another cluster is refused. */
  readonly cluster: v.SchemaWithPipe<
    readonly [
      v.StringSchema<undefined>,
      v.MinLengthAction<string, 1, undefined>,
      v.MaxLengthAction<string, 128, undefined>,
    ]
  >;
  /** This member's id, sent in the handshake. */
  readonly member: typeof MemberIdSchema;
  /** Interface to listen on. Default 127.0.0.1. */
  readonly host: v.OptionalSchema<
    v.SchemaWithPipe<readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]>,
    string
  >;
  /** TCP port to listen on; 0 picks a free one (see `TcpTransport.port`). */
  readonly port: CountWithDefault;
  /** Largest frame body accepted or sent. Size it above the largest AppendEntries batch. */
  readonly frameBytesMax: CountWithDefault;
  /** Once a frame has started, the rest must arrive within this time (slow-drip senders). */
  readonly frameDeadlineMs: CountWithDefault;
  /** An inbound connection must complete the handshake within this time. */
  readonly handshakeDeadlineMs: CountWithDefault;
  /** Most inbound connections held by the listener at once; more are refused. */
  readonly connectionsMax: CountWithDefault;
  /**
   * Most bytes queued or buffered in the socket per peer. Bulk sends (appends, snapshots) beyond
   * `inflightBytesMax - controlBytesReserved` are dropped, control sends beyond it too.
   */
  readonly inflightBytesMax: CountWithDefault;
  /** Deepest CBOR nesting accepted in a message (entries sit at depth 3). */
  readonly nestingDepthMax: CountWithDefault;
  /**
   * First reconnect delay to a peer whose connection failed or closed; doubles per failed
   * attempt, with full jitter, up to `reconnectDelayMsMax`. Default 50, or `reconnectDelayMsMax`
   * when that is lower.
   */
  readonly reconnectDelayMsMin: v.OptionalSchema<CountSchema, undefined>;
  /**
   * Longest reconnect delay to a peer that is down. Size it at about one election timeout
   * (`tickMs × electionTicks`; `RaftServer` passes its own): a member that comes back is then
   * fed again within an election timeout however long it was down, and a leader redials each
   * peer that is down at most this often, a connection attempt that costs little. Much longer
   * caps leave a restarted follower unfed for seconds, and the cluster without fault tolerance
   * meanwhile. (A peer that dials us is redialled at once anyway; see `TcpTransport`.)
   */
  readonly reconnectDelayMsMax: CountWithDefault;
  /**
   * A leader's heartbeat on an outbound connection must be answered within this many ms, and a
   * connect attempt (with TLS, its handshake too) must complete within three times as long; else
   * that connection is closed and redialled. A network can drop
   * a connection without a word (a blackholed route, a host gone): TCP then retransmits on its
   * own backoff, which after a long cut leaves a healed peer unfed for seconds to minutes. 0: never.
   */
  readonly answerDeadlineMs: CountWithDefault;
  /** Where closed connections are reported. Default: stderr. */
  readonly logger: v.OptionalSchema<typeof LoggerSchema, TransportLogger>;
  /**
   * Mutual TLS on the peer port (see `tls.ts`): the CA, this member's certificate (naming its id
   * in a subjectAltName `DNS:` entry) and key, or a `TlsReloader` of them. Omitted: plain TCP. A
   * member refuses to mix: plaintext on its TLS port, or TLS on its plaintext port, is closed with
   * a logged reason.
   */
  readonly tls: v.OptionalSchema<
    v.UnionSchema<
      [typeof TlsFilesSchema, v.InstanceSchema<typeof TlsReloader, undefined>],
      undefined
    >,
    undefined
  >;
  /** With `tls` as files: how often their modification times are checked for rotation (0: never). */
  readonly tlsReloadMs: CountWithDefault;
}, undefined> = v.strictObject({
  cluster: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  member: MemberIdSchema,
  host: v.optional(v.pipe(v.string(), v.minLength(1)), '127.0.0.1'),
  port: v.optional(count(0, 65_535), 0),
  frameBytesMax: v.optional(count(64, frameLengthMax), 4 * 1024 * 1024),
  frameDeadlineMs: v.optional(count(1, 3_600_000), 10_000),
  handshakeDeadlineMs: v.optional(count(1, 3_600_000), 5_000),
  connectionsMax: v.optional(count(1, 1_000_000), 1024),
  inflightBytesMax: v.optional(count(1024, 2 ** 40), 16 * 1024 * 1024),
  nestingDepthMax: v.optional(count(4, 1024), 16),
  reconnectDelayMsMin: v.optional(count(1, 3_600_000)),
  reconnectDelayMsMax: v.optional(count(1, 3_600_000), reconnectDelayMsMaxDefault),
  answerDeadlineMs: v.optional(count(0, 3_600_000), 1_000),
  logger: v.optional(LoggerSchema, stderrLogger),
  tls: v.optional(v.union([TlsFilesSchema, v.instance(TlsReloader)])),
  tlsReloadMs: v.optional(count(0, 3_600_000), 1_000),
});
/** What callers pass. */
export type TransportOptionsInput = v.InferInput<typeof TransportOptionsSchema>;
/** The options after defaults. */
export type TransportOptions =
  & Omit<v.InferOutput<typeof TransportOptionsSchema>, 'reconnectDelayMsMin'>
  & { reconnectDelayMsMin: number };

/**
 * Validate options and apply defaults. Throws `TypeError` (wrong type, unknown option) or
 * `RangeError` (out of range, or limits that contradict each other), naming the option.
 *
 * @example
 * ```ts
 * parseTransportOptions({ cluster: 'c', member: 'a', frameBytesMax: 0 }); // RangeError: frameBytesMax ...
 * ```
 */
export function parseTransportOptions(input: unknown): TransportOptions {
  const parsed = parseOptions(TransportOptionsSchema, input, 'TcpTransport');
  const options: TransportOptions = {
    ...parsed,
    reconnectDelayMsMin: parsed.reconnectDelayMsMin ??
      Math.min(reconnectDelayMsMinDefault, parsed.reconnectDelayMsMax),
  };
  if (options.frameBytesMax + controlBytesReserved > options.inflightBytesMax) {
    throw new RangeError(
      `Invalid transport option inflightBytesMax: ${options.inflightBytesMax} must be at least ` +
        `frameBytesMax + ${controlBytesReserved} (${options.frameBytesMax + controlBytesReserved})`,
    );
  }
  if (options.reconnectDelayMsMin > options.reconnectDelayMsMax) {
    throw new RangeError(
      `Invalid transport option reconnectDelayMsMin: ${options.reconnectDelayMsMin} exceeds ` +
        `reconnectDelayMsMax ${options.reconnectDelayMsMax}`,
    );
  }
  assert(options.frameBytesMax <= frameLengthMax, 'frameBytesMax fits the length prefix');
  return options;
}
