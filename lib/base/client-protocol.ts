/**
 * The client protocol: the same framing as the peer protocol (4-byte big-endian length, one CBOR
 * message), on the server's client port. Every request carries an `id` the response echoes, a
 * `session` and a `sequence`.
 *
 * Sessions (exactly-once commands): a client registers a session (`register`; the session id is
 * the index of its log entry), numbers its commands 1, 2, 3... within it, and sends each again
 * under the same sequence until it has an answer: the leader logs each sequence once and the
 * state machine applies it once, a retry getting the kept output. `keepAlive` keeps the session
 * from expiring and acknowledges the outputs and events the client has; `unregister` ends it.
 * `session` 0 means no session: such a command is applied once per time it is logged, so one
 * whose answer is lost has an unknown outcome.
 *
 * Any member takes any request: one that is not the leader forwards commands, session requests
 * and strong reads to the leader and relays the answer (NO_LEADER when it knows none).
 *
 * A command goes through the log and is answered with the state machine's output for its index.
 * A query never goes through the log; `consistency` says how current its read must be:
 * - `linearizable`: the leader confirms leadership with a majority (read index), then answers
 *   once applied up to the commit index at receipt;
 * - `lease`: the leader answers within its lease (no round trip; relies on bounded clock drift);
 * - `sequential`: the member answers from its own state once it has applied at least `minIndex`
 *   (the client passes the highest index it has seen answered, so it reads its own writes and
 *   never goes back in time, whichever member it asks).
 *
 * Session events: what the state machine publishes to a session (`context.publish`) reaches the
 * client in `event` frames from the member it is connected to (the one that last received a
 * request of that session), as that member applies the command that published it: before that
 * command's answer. After a reconnect the member sends the session's unacknowledged events
 * again; the client delivers each `eventIndex` once and acknowledges in keep-alives.
 *
 * Two messages keep connections honest without touching Raft. A `ping` is answered at once with
 * `ok` (output null): a client with requests outstanding that hears nothing pings, and a server
 * that does not answer the ping is dead to it (a paused process's kernel keeps the TCP
 * connection open, so no error ever arrives). A `closing` notice is the server's last frame when
 * it closes an idle connection (idle deadline, or shed at the connection limit): it is sent only
 * with no request of that connection in flight and every answer already written, and nothing is
 * read after it, so every request still unanswered when it arrives was never read, hence never
 * proposed, and is safe to send again.
 *
 * @module
 */
import * as v from 'valibot';
import {
  BytesSchema,
  memberAddressLengthMax,
  MemberIdSchema,
  MemberTypeSchema,
  NaturalSchema,
  type SnapshotMeta,
  SnapshotMetaSchema,
} from './messages.ts';
import { MembershipOpSchema } from './member-requests.ts';

/** The consistency levels of a query. */
export const ConsistencySchema: v.PicklistSchema<
  ['linearizable', 'lease', 'sequential'],
  undefined
> = v.picklist(['linearizable', 'lease', 'sequential']);
export type Consistency = v.InferOutput<typeof ConsistencySchema>;

const requestHead = {
  /** Chosen by the client, echoed in the response. */
  id: NaturalSchema,
  /** Client session id (0: none). */
  session: NaturalSchema,
  /** Sequence number of this request within the session. */
  sequence: NaturalSchema,
};

/** A command for the state machine, as the codec encoded it. */
export const CommandRequestSchema = v.strictObject({
  type: v.literal('command'),
  ...requestHead,
  data: BytesSchema,
});
/** A read-only query, CBOR-encoded by the client. */
export const QueryRequestSchema = v.strictObject({
  type: v.literal('query'),
  ...requestHead,
  consistency: ConsistencySchema,
  /** For `sequential`: answer only once applied at least up to this index. */
  minIndex: v.optional(NaturalSchema, 0),
  data: BytesSchema,
});
/** Open a session; answered with `{ session, timeoutMs }` (the timeout the server granted). */
export const RegisterRequestSchema = v.strictObject({
  type: v.literal('register'),
  ...requestHead,
  /** The session timeout the client asks for; the server bounds it. */
  timeoutMs: NaturalSchema,
});
/**
 * Keep `session` alive; `commandAck`: every command up to this sequence has its answer at the
 * client (their kept outputs may go); `eventAck`: every event up to this index was delivered.
 */
export const KeepAliveRequestSchema = v.strictObject({
  type: v.literal('keepAlive'),
  ...requestHead,
  commandAck: NaturalSchema,
  eventAck: NaturalSchema,
});
/** End `session`. */
export const UnregisterRequestSchema = v.strictObject({
  type: v.literal('unregister'),
  ...requestHead,
});
/** Ask a member for its status. */
export const StatusRequestSchema = v.strictObject({ type: v.literal('status'), ...requestHead });
/** Are you there? Answered at once with `ok`, output null, by the client port itself. */
export const PingRequestSchema = v.strictObject({ type: v.literal('ping'), ...requestHead });

/** Longest bearer token accepted, in characters. */
export const tokenLengthMax = 4096;
/**
 * A bearer token, the first frame of a connection to a port with `clientAuth: 'token'` (a
 * `RaftClient` with a `token` sends it first on every connection). Answered `ok` (output null) when
 * it matches, else UNAUTHENTICATED; until a matching one arrives every request on the connection
 * is answered UNAUTHENTICATED and nothing is read or written. A port without token auth answers
 * it `ok`.
 */
export const AuthRequestSchema = v.strictObject({
  type: v.literal('auth'),
  ...requestHead,
  token: v.pipe(v.string(), v.maxLength(tokenLengthMax)),
});

/**
 * A configuration change (`join`, `leave`, `promote`, `demote` of `member`), carried out by the
 * leader and answered once committed with `{ members }`. Plain (not in a session): a retryable
 * refusal (CONFIG_CHANGE_IN_PROGRESS, NOT_CAUGHT_UP, NOT_LEADER) was certainly not proposed.
 */
export const ReconfigureRequestSchema = v.strictObject({
  type: v.literal('reconfigure'),
  ...requestHead,
  op: MembershipOpSchema,
  member: MemberIdSchema,
  /** For `join`: the type it joins as (PASSIVE by default, or RESERVE; never ACTIVE). */
  memberType: v.optional(MemberTypeSchema),
  /** For `join`: its peer and client addresses. */
  address: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
  clientAddress: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
});
/** The leader's view of the members (types, who feeds whom, each passive member's lag). */
export const MembersRequestSchema = v.strictObject({ type: v.literal('members'), ...requestHead });

/**
 * Make the leader hand leadership to `member` (an ACTIVE member): the leader catches it up and
 * tells it to campaign at once. Answered once `member` leads, with `{ leaderId, term }`; or with
 * TRANSFER_INVALID (not a member, not ACTIVE) or TIMEOUT (not done within two election timeouts:
 * the old leader goes on leading, or another member won). Plain (not in a session): sending it
 * again is harmless, a transfer to the leader itself is answered at once.
 */
export const TransferLeaderRequestSchema = v.strictObject({
  type: v.literal('transferLeader'),
  ...requestHead,
  member: MemberIdSchema,
});

/**
 * Largest byte range one `snapshotRead` returns, in bytes: 1 MiB, well inside the default 8 MiB
 * frame of both ends (a client with a smaller `frameBytesMax` asks for less).
 */
export const snapshotReadBytesMax = 1024 * 1024;

/**
 * The member's current snapshot (`snapshot save`, etcdctl's `snapshot save`), answered by the
 * member's client port itself, about the member itself (no forwarding). With `take`, the member
 * first snapshots its state machine (covering every entry it applied) and answers once that
 * snapshot is stored. Answered with `SnapshotInfoOutputSchema`: the metadata and size, or null when
 * the member holds no snapshot.
 */
export const SnapshotRequestSchema = v.strictObject({
  type: v.literal('snapshot'),
  ...requestHead,
  take: v.boolean(),
});
/**
 * Bytes `offsetBytes` to at most `offsetBytes + bytesMax` of the member's current snapshot, which
 * must be the one at `index` and `term` (else SNAPSHOT_CHANGED: it was replaced meanwhile).
 * Answered with `SnapshotReadOutputSchema`.
 */
export const SnapshotReadRequestSchema = v.strictObject({
  type: v.literal('snapshotRead'),
  ...requestHead,
  index: NaturalSchema,
  term: NaturalSchema,
  offsetBytes: NaturalSchema,
  bytesMax: v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(snapshotReadBytesMax)),
});
/** The output of a `snapshot` request: the snapshot's metadata and size in bytes, or null. */
export type SnapshotInfoOutput = { meta: SnapshotMeta; totalBytes: number } | null;
/** The schema of `SnapshotInfoOutput`, which a client checks every answer against. */
export const SnapshotInfoOutputSchema: v.GenericSchema<unknown, SnapshotInfoOutput> = v.nullable(
  v.strictObject({ meta: SnapshotMetaSchema, totalBytes: NaturalSchema }),
);
/** The output of a `snapshotRead`: the bytes from `offsetBytes`, and whether they reach the end. */
export type SnapshotReadOutput = {
  index: number;
  term: number;
  totalBytes: number;
  offsetBytes: number;
  data: Uint8Array;
  done: boolean;
};
/** The schema of `SnapshotReadOutput` (at most `snapshotReadBytesMax` bytes of data). */
export const SnapshotReadOutputSchema: v.GenericSchema<unknown, SnapshotReadOutput> = v
  .strictObject({
    index: NaturalSchema,
    term: NaturalSchema,
    totalBytes: NaturalSchema,
    offsetBytes: NaturalSchema,
    data: v.pipe(BytesSchema, v.check((d) => d.byteLength <= snapshotReadBytesMax)),
    done: v.boolean(),
  });

/** Everything a client may send. */
export const ClientRequestSchema = v.variant('type', [
  ReconfigureRequestSchema,
  MembersRequestSchema,
  TransferLeaderRequestSchema,
  CommandRequestSchema,
  QueryRequestSchema,
  RegisterRequestSchema,
  KeepAliveRequestSchema,
  UnregisterRequestSchema,
  StatusRequestSchema,
  PingRequestSchema,
  SnapshotRequestSchema,
  SnapshotReadRequestSchema,
  AuthRequestSchema,
]);
export type ClientRequest = v.InferOutput<typeof ClientRequestSchema>;

/**
 * Every error code a client can receive, whether it is retryable, and why. Retryable means the
 * request was certainly not carried out (see `lib/base/errors.ts`): sending it again, anywhere,
 * cannot apply it twice.
 */
export const clientErrorCodes = {
  /** The member knows no leader. Retryable: refused before anything was proposed. */
  NO_LEADER: true,
  /** The member is not the leader (the answer names it). Retryable: refused before anything was proposed. */
  NOT_LEADER: true,
  /** The client's session expired or never existed. Not retryable under that session. */
  UNKNOWN_SESSION: false,
  /** A session's command was refused before it was applied (out of sequence, too far ahead). Retryable with the same sequence: it was not applied. */
  COMMAND_ERROR: true,
  /** A session's command was applied once, but its output is no longer kept (the client acknowledged it, or more than `sessionResultsMax` were unacknowledged). Not retryable: it was applied. */
  RESULT_EVICTED: false,
  /** The state machine applied the command and refused it. Not retryable: it was applied, once. */
  APPLICATION_ERROR: false,
  /** The query failed (the state machine threw, or too many reads wait). Not retryable as a rule; a query changes nothing, so a client may still ask again. */
  QUERY_ERROR: false,
  /** Something unexpected failed on the member. Not retryable: its outcome is unknown. */
  INTERNAL_ERROR: false,
  /** The leader dropped the request (uncommitted bytes or pending reads at their limit, or its entry lost to another leader's). Retryable: certainly not carried out. */
  PROPOSAL_DROPPED: true,
  /** A leadership transfer is under way. Retryable: refused before anything was proposed. */
  LEADERSHIP_TRANSFER: true,
  /** Another configuration change is not yet committed. Retryable: refused before it was proposed. */
  CONFIG_CHANGE_IN_PROGRESS: true,
  /** A configuration change that must never be made. Not retryable: it would be refused again. */
  CONFIG_CHANGE_INVALID: false,
  /** A PASSIVE member to promote has not caught up yet. Retryable: refused before it was proposed. */
  NOT_CAUGHT_UP: true,
  /** A leadership transfer to a member that is not in the configuration, or not ACTIVE. Not retryable: it would be refused again. */
  TRANSFER_INVALID: false,
  /** The request was not answered in time. Not retryable: its outcome is unknown. */
  TIMEOUT: false,
  /** The command was proposed, then the member stopped, failed or lost its log to a snapshot. Not retryable: it may still be applied. */
  OUTCOME_UNKNOWN: false,
  /** The member is stopping and refused the request. Retryable: refused before anything was proposed. */
  SHUTDOWN: true,
  /** The client port requires authentication (a client certificate signed by the cluster's CA, or a bearer token) and this connection has none, or a wrong one. Not retryable: nothing was read or written; fix the credentials. */
  UNAUTHENTICATED: false,
  /** A `snapshotRead` named a snapshot the member no longer holds (a newer one replaced it). Not retryable as it is: start again from the new snapshot. */
  SNAPSHOT_CHANGED: false,
} as const satisfies Record<string, boolean>;

/** The error codes a client can receive; see `clientErrorCodes`. */
export type ClientErrorCode = keyof typeof clientErrorCodes;

/** The error codes a client can receive, as a schema. */
export const ClientErrorCodeSchema: v.PicklistSchema<ClientErrorCode[], undefined> = v.picklist(
  Object.keys(clientErrorCodes) as ClientErrorCode[],
);

/** Codes after which sending the same request again is safe and may succeed. */
export const retryableCodes: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>(
  (Object.keys(clientErrorCodes) as ClientErrorCode[]).filter((c) => clientErrorCodes[c]),
);

/** A successful answer: the output (any CBOR value) and, for commands, the log index. */
export const OkResponseSchema = v.strictObject({
  type: v.literal('ok'),
  id: NaturalSchema,
  /** The command's log index; for a query, the index the read covers. */
  index: NaturalSchema,
  output: v.unknown(),
  /** A session command answered from the kept output of its first application. */
  duplicate: v.optional(v.boolean()),
  /**
   * For a session command: the index of the last event published to the session as applied by
   * the answering member, at least every event its command (and those before) published.
   */
  eventIndex: v.optional(NaturalSchema),
  /**
   * Set when the member forwarded the request to the leader: the leader's client address, which a
   * client that prefers to talk to the leader moves to.
   */
  leaderAddress: v.optional(v.pipe(v.string(), v.maxLength(256))),
  /** With `leaderAddress`: the leader's id. */
  leaderId: v.optional(MemberIdSchema),
});
/** A failed answer. For NOT_LEADER, the leader's id and client address when known. */
export const ErrorResponseSchema = v.strictObject({
  type: v.literal('error'),
  id: NaturalSchema,
  code: ClientErrorCodeSchema,
  message: v.pipe(v.string(), v.maxLength(4096)),
  leaderId: v.nullable(MemberIdSchema),
  leaderAddress: v.nullable(v.pipe(v.string(), v.maxLength(256))),
});
/**
 * The server's last frame on a connection it closes for idleness (see the module comment): every
 * request still unanswered on it was never read and may be sent again.
 */
export const ClosingNoticeSchema = v.strictObject({
  type: v.literal('closing'),
  reason: v.pipe(v.string(), v.maxLength(1024)),
});
/**
 * An event the state machine published to `session` while applying the command at `index`;
 * `eventIndex` numbers the session's events from 1 without gaps (a gap: events dropped past the
 * server's `sessionEventsMax` unacknowledged).
 */
export const EventMessageSchema = v.strictObject({
  type: v.literal('event'),
  session: NaturalSchema,
  eventIndex: NaturalSchema,
  index: NaturalSchema,
  name: v.pipe(v.string(), v.maxLength(1024)),
  payload: v.unknown(),
});
/** Everything a server may send a client. */
export const ClientResponseSchema = v.variant('type', [
  OkResponseSchema,
  ErrorResponseSchema,
  ClosingNoticeSchema,
  EventMessageSchema,
]);
export type ClientResponse = v.InferOutput<typeof ClientResponseSchema>;
export type OkResponse = v.InferOutput<typeof OkResponseSchema>;
export type ErrorResponse = v.InferOutput<typeof ErrorResponseSchema>;
export type ClosingNotice = v.InferOutput<typeof ClosingNoticeSchema>;
export type EventMessage = v.InferOutput<typeof EventMessageSchema>;
/** An answer to one request (everything but the closing notice). */
export type Answer = OkResponse | ErrorResponse;
