/**
 * The options of a `RaftServer`: its identity and addresses, and every limit named with its unit,
 * validated once at start. The core's and the driver's tunables are composed in
 * (`DriverOptionsSchema`), so each has one name, one range and one default everywhere.
 *
 * @module
 */
import * as v from 'valibot';
import { DialAddressSchema, ListenAddressSchema } from '../base/address.ts';
import { MemberIdSchema, MembersSchema } from '../base/messages.ts';
import { intInRange as int, type IntOption, parseOptions } from '../base/validate.ts';
import { checkDriverOptions, type DriverOptions, DriverOptionsSchema } from '../member/options.ts';
import type { MemberLogger } from '../member/ports.ts';
import { logFormats, logLevels } from './log.ts';
import type { CommandCodec } from '../state/codec.ts';
import type { AnyStateMachine } from '../state/disk-state-machine.ts';
import { controlBytesReserved } from '../transport/options.ts';
import { TlsFilesSchema } from '../transport/tls.ts';

/** Where the server reports what an operator should see. */
export type ServerLogger = MemberLogger;

/** Bytes a frame may carry beyond its payload limit (message envelope, snapshot chunk header). */
export const frameEnvelopeBytes = 64 * 1024;

type ServerOptionsEntries =
  & {
    /** This member's id. */
    id: typeof MemberIdSchema;
    /** The cluster's name: peers and clients of another cluster are refused. */
    cluster: v.SchemaWithPipe<
      readonly [
        v.StringSchema<undefined>,
        v.MinLengthAction<string, 1, undefined>,
        v.MaxLengthAction<string, 128, undefined>,
      ]
    >;
    /** Directory of this member's LMDB environment (created if missing). */
    dataDir: v.SchemaWithPipe<
      readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]
    >;
    /** Peer listen address (`host:port`, port 0 picks one). */
    peerAddress: typeof ListenAddressSchema;
    /** Client listen address (`host:port`, port 0 picks one). */
    clientAddress: typeof ListenAddressSchema;
    /**
     * The founding configuration, used only when the data directory is new: every founding member
     * bootstraps with the same list. Omit it to join an existing cluster (the leader adds you).
     */
    members: v.OptionalSchema<typeof MembersSchema, undefined>;
    /**
     * Client addresses of existing members: a member whose data directory holds no configuration
     * asks one of them to add it (as `joinAs`), retrying until the change is committed, and learns
     * its peers from the answer. Ignored once the member is in a configuration. Not with `members`.
     */
    join: v.OptionalSchema<
      v.SchemaWithPipe<
        readonly [
          v.ArraySchema<typeof DialAddressSchema, undefined>,
          v.MinLengthAction<string[], 1, undefined>,
          v.MaxLengthAction<string[], 64, undefined>,
        ]
      >,
      undefined
    >;
    /** The type a joining member asks for: PASSIVE (fed by followers) or RESERVE. */
    joinAs: v.OptionalSchema<v.PicklistSchema<['PASSIVE', 'RESERVE'], undefined>, 'PASSIVE'>;
    /** In memory (`StateMachine`) or on disk in the data directory (`DiskStateMachine`). */
    stateMachine: v.CustomSchema<
      AnyStateMachine<unknown, unknown, unknown, unknown>,
      v.ErrorMessage<v.CustomIssue> | undefined
    >;
    codec: v.OptionalSchema<
      v.CustomSchema<CommandCodec<unknown>, v.ErrorMessage<v.CustomIssue> | undefined>,
      undefined
    >;
  }
  & typeof DriverOptionsSchema.entries
  & {
    /** Largest frame on the peer and client ports, in bytes. */
    frameBytesMax: IntOption;
    /**
     * Bytes queued or socket-buffered towards one peer before sends are dropped (Raft retries):
     * bounds the memory a slow or paused follower can cost the leader.
     */
    peerInflightBytesMax: IntOption;
    /**
     * Most client connections at once. When full, a newcomer sheds the connection that has been idle
     * longest with no request in flight (it gets a `closing` notice, so its client resends what it
     * had not yet had read); only when every connection has a request in flight is the newcomer
     * refused. Idle connections therefore never lock real clients out.
     */
    clientConnectionsMax: IntOption;
    /** Once a client frame has started, the rest must arrive within this time (slow-drip senders). */
    clientFrameDeadlineMs: IntOption;
    /**
     * A new client connection must complete its first request within this time, or it is closed:
     * the client port's handshake deadline (the peer port's `handshakeDeadlineMs`). At most
     * `clientIdleDeadlineMs`.
     */
    clientFirstRequestDeadlineMs: IntOption;
    /**
     * A client connection with no request in flight that has not completed a request for this long
     * is closed with a `closing` notice (a `RaftClient` reconnects when it next needs to, and
     * resends safely whatever the server had not read). Idle means since its last request arrived
     * or its last answer left, whichever is later.
     */
    clientIdleDeadlineMs: IntOption;
    /** Client requests being served at once per connection; more are refused with PROPOSAL_DROPPED. */
    clientRequestsPerConnectionMax: IntOption;
    /**
     * Log lines of one kind (the same text up to its numbers) written per `logIntervalMs`; more are
     * counted and reported in one summary line when the interval ends (the client port's lines
     * today). A flood of bad connections then costs a few lines, not thousands.
     */
    logLinesPerKindMax: IntOption;
    /** The interval of `logLinesPerKindMax`, counted from the first line of a kind. */
    logIntervalMs: IntOption;
    /**
     * A logger of your own: `info`, `warn`, `debug` (and optionally `error`), each called with the
     * message and its structured fields (`member`, `component`, ...). Default: lines on stderr in
     * `logFormat`.
     */
    logger: v.OptionalSchema<
      v.CustomSchema<ServerLogger, v.ErrorMessage<v.CustomIssue> | undefined>,
      undefined
    >;
    /** Lines below this level are dropped before any logger sees them (the custom one too). */
    logLevel: v.OptionalSchema<v.PicklistSchema<typeof logLevels, undefined>, 'info'>;
    /** The built-in logger's format: `text` (one line for people) or `json` (one object a line). */
    logFormat: v.OptionalSchema<v.PicklistSchema<typeof logFormats, undefined>, 'text'>;
    /**
     * Where to serve `/metrics`, `/health` and `/ready` over plain HTTP (`host:port`, port 0 picks
     * one: see `server.metricsAddress`). Omitted: no HTTP port (`server.metricsText()` still works).
     */
    metricsAddress: v.OptionalSchema<typeof ListenAddressSchema, undefined>;
    /** HTTP connections open at once on the metrics port; more are closed on arrival. */
    metricsConnectionsMax: IntOption;
    /**
     * Mutual TLS on the peer port: PEM paths of the cluster's CA, this member's certificate (naming
     * its id in a subjectAltName `DNS:` entry) and key. Omitted: plain TCP (loopback, tests). A
     * member refuses to mix: plaintext on its TLS port, or TLS on its plaintext port.
     */
    peerTls: v.OptionalSchema<typeof TlsFilesSchema, undefined>;
    /**
     * TLS on the client port: the CA (which signs client certificates, for `clientAuth: 'cert'`),
     * the certificate and key the port presents. Omitted: plain TCP.
     */
    clientTls: v.OptionalSchema<typeof TlsFilesSchema, undefined>;
    /**
     * Who may use the client port: anyone (`none`); clients with a certificate signed by the
     * `clientTls` CA (`cert`, needs `clientTls`); clients that send `clientToken` (`token`).
     * An unauthenticated client is answered UNAUTHENTICATED and can neither read nor write.
     */
    clientAuth: v.OptionalSchema<v.PicklistSchema<['none', 'cert', 'token'], undefined>, 'none'>;
    /** With `clientAuth: 'token'`: the bearer token, at least 16 characters. */
    clientToken: v.OptionalSchema<
      v.SchemaWithPipe<
        readonly [
          v.StringSchema<undefined>,
          v.MinLengthAction<string, 16, undefined>,
          v.MaxLengthAction<string, 4096, undefined>,
        ]
      >,
      undefined
    >;
    /** How often the TLS files' modification times are checked for rotation, in ms (0: never). */
    tlsReloadMs: IntOption;
    /** An HTTP connection is closed this many milliseconds after it was accepted, answered or not. */
    metricsRequestDeadlineMs: IntOption;
  };

const ServerOptionsSchema: v.StrictObjectSchema<ServerOptionsEntries, undefined> = v
  .strictObject({
    id: MemberIdSchema,
    cluster: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
    dataDir: v.pipe(v.string(), v.minLength(1)),
    peerAddress: ListenAddressSchema,
    clientAddress: ListenAddressSchema,
    members: v.optional(MembersSchema),
    join: v.optional(v.pipe(v.array(DialAddressSchema), v.minLength(1), v.maxLength(64))),
    joinAs: v.optional(v.picklist(['PASSIVE', 'RESERVE']), 'PASSIVE'),
    stateMachine: v.custom<AnyStateMachine<unknown, unknown, unknown, unknown>>(
      (x) =>
        typeof x === 'object' && x !== null &&
        typeof (x as { apply?: unknown }).apply === 'function' &&
        ((x as { onDisk?: unknown }).onDisk !== true ||
          typeof (x as { open?: unknown }).open === 'function'),
      'Expected a state machine (apply, query, snapshot and restore; or onDisk: true, open, apply and query)',
    ),
    codec: v.optional(
      v.custom<CommandCodec<unknown>>(
        (x) => typeof x === 'object' && x !== null,
        'Expected a command codec',
      ),
    ),
    ...DriverOptionsSchema.entries,
    frameBytesMax: v.optional(int(64 * 1024, 256 * 1024 * 1024), 8 * 1024 * 1024),
    peerInflightBytesMax: v.optional(int(64 * 1024, 2 ** 40), 64 * 1024 * 1024),
    clientConnectionsMax: v.optional(int(1, 1_000_000), 1024),
    clientFrameDeadlineMs: v.optional(int(1, 3_600_000), 10_000),
    clientFirstRequestDeadlineMs: v.optional(int(1, 3_600_000), 5_000),
    clientIdleDeadlineMs: v.optional(int(1, 24 * 3_600_000), 60_000),
    clientRequestsPerConnectionMax: v.optional(int(1, 1_000_000), 4096),
    logLinesPerKindMax: v.optional(int(1, 1_000_000), 10),
    logIntervalMs: v.optional(int(1, 3_600_000), 10_000),
    logger: v.optional(
      v.custom<ServerLogger>(
        (x) =>
          typeof x === 'object' && x !== null &&
          ['info', 'warn', 'debug'].every((k) =>
            typeof (x as Record<string, unknown>)[k] === 'function'
          ),
        'Expected a logger with info, warn, debug',
      ),
    ),
    logLevel: v.optional(v.picklist(logLevels), 'info'),
    logFormat: v.optional(v.picklist(logFormats), 'text'),
    metricsAddress: v.optional(ListenAddressSchema),
    metricsConnectionsMax: v.optional(int(1, 100_000), 64),
    peerTls: v.optional(TlsFilesSchema),
    clientTls: v.optional(TlsFilesSchema),
    clientAuth: v.optional(v.picklist(['none', 'cert', 'token']), 'none'),
    clientToken: v.optional(v.pipe(v.string(), v.minLength(16), v.maxLength(4096))),
    tlsReloadMs: v.optional(int(0, 3_600_000), 1_000),
    metricsRequestDeadlineMs: v.optional(int(100, 3_600_000), 10_000),
  });

/** What callers pass to `RaftServer.start`. */
export type RaftServerOptionsInput = v.InferInput<typeof ServerOptionsSchema>;
/** The options after validation and defaults. */
export type RaftServerOptions = v.InferOutput<typeof ServerOptionsSchema>;

/** The driver's share of the server's options. */
export function driverOptionsOf(o: RaftServerOptions): DriverOptions {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(DriverOptionsSchema.entries)) {
    out[key] = (o as Record<string, unknown>)[key];
  }
  return out as DriverOptions;
}

/**
 * Validate once: a wrong type or unknown option is a `TypeError`, a value out of range a
 * `RangeError`; both name the option.
 */
export function parseServerOptions(input: unknown): RaftServerOptions {
  const where = 'RaftServer.start';
  const o = parseOptions(ServerOptionsSchema, input, where);
  checkDriverOptions(driverOptionsOf(o), where);
  if (o.join !== undefined && o.members !== undefined) {
    throw new TypeError(
      `Invalid option join for ${where}: give either members (a new cluster) or join (an existing one), not both`,
    );
  }
  if (o.messageBytesMax + frameEnvelopeBytes > o.frameBytesMax) {
    throw new RangeError(
      `Invalid option frameBytesMax for ${where}: ${o.frameBytesMax} must exceed messageBytesMax ${o.messageBytesMax} by ${frameEnvelopeBytes}`,
    );
  }
  if (o.clientFirstRequestDeadlineMs > o.clientIdleDeadlineMs) {
    throw new RangeError(
      `Invalid option clientFirstRequestDeadlineMs for ${where}: ${o.clientFirstRequestDeadlineMs} must not exceed clientIdleDeadlineMs ${o.clientIdleDeadlineMs}`,
    );
  }
  if (o.snapshotChunkBytes + frameEnvelopeBytes > o.frameBytesMax) {
    throw new RangeError(
      `Invalid option frameBytesMax for ${where}: ${o.frameBytesMax} must exceed snapshotChunkBytes ${o.snapshotChunkBytes} by ${frameEnvelopeBytes}`,
    );
  }
  if (o.clientAuth === 'cert' && o.clientTls === undefined) {
    throw new TypeError(
      `Invalid option clientAuth for ${where}: 'cert' needs clientTls (the CA that signs client certificates)`,
    );
  }
  if ((o.clientAuth === 'token') !== (o.clientToken !== undefined)) {
    throw new TypeError(
      `Invalid option clientToken for ${where}: give it exactly when clientAuth is 'token'`,
    );
  }
  if (o.peerInflightBytesMax < o.frameBytesMax + controlBytesReserved) {
    throw new RangeError(
      `Invalid option peerInflightBytesMax for ${where}: ${o.peerInflightBytesMax} must be at least frameBytesMax + ${controlBytesReserved}`,
    );
  }
  return o;
}

/** `RaftServer.ready`'s default limit, in milliseconds. */
export const readyTimeoutMsDefault = 10_000;

/** Options of `RaftServer.ready`, validated at each call. */
export const ReadyOptionsSchema: v.StrictObjectSchema<{
  /** Longest wait for a leader that can take writes, in milliseconds. */
  readonly timeoutMs: IntOption;
}, undefined> = v.strictObject({
  timeoutMs: v.optional(int(1, 24 * 3_600_000), readyTimeoutMsDefault),
});
