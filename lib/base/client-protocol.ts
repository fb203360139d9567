/**
 * The client protocol: the same framing as the peer protocol (4-byte big-endian length, one CBOR
 * message), on the server's client port. Every request carries an `id` the response echoes, a
 * `session` and a `sequence`: today `session` 0 means "no session"; exactly-once sessions slot in
 * by giving them meaning, without changing the messages.
 *
 * A command goes through the log and is answered with the state machine's output for its index.
 * A query never goes through the log; `consistency` says how current its read must be:
 * - `linearizable`: the leader confirms leadership with a majority (read index), then answers
 *   once applied up to the commit index at receipt;
 * - `lease`: the leader answers within its lease (no round trip; relies on bounded clock drift);
 * - `sequential`: any member answers from its own state (monotonic per connection).
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
import { BytesSchema, MemberIdSchema, NaturalSchema } from './messages.ts';

/** The consistency levels of a query. */
export const ConsistencySchema = v.picklist(['linearizable', 'lease', 'sequential']);
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
  data: BytesSchema,
});
/** Ask a member for its status. */
export const StatusRequestSchema = v.strictObject({ type: v.literal('status'), ...requestHead });
/** Are you there? Answered at once with `ok`, output null, by the client port itself. */
export const PingRequestSchema = v.strictObject({ type: v.literal('ping'), ...requestHead });

/** Everything a client may send. */
export const ClientRequestSchema = v.variant('type', [
  CommandRequestSchema,
  QueryRequestSchema,
  StatusRequestSchema,
  PingRequestSchema,
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
  /** The request was not answered in time. Not retryable: its outcome is unknown. */
  TIMEOUT: false,
  /** The command was proposed, then the member stopped, failed or lost its log to a snapshot. Not retryable: it may still be applied. */
  OUTCOME_UNKNOWN: false,
  /** The member is stopping and refused the request. Retryable: refused before anything was proposed. */
  SHUTDOWN: true,
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
  index: NaturalSchema,
  output: v.unknown(),
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
/** Everything a server may send a client. */
export const ClientResponseSchema = v.variant('type', [
  OkResponseSchema,
  ErrorResponseSchema,
  ClosingNoticeSchema,
]);
export type ClientResponse = v.InferOutput<typeof ClientResponseSchema>;
export type OkResponse = v.InferOutput<typeof OkResponseSchema>;
export type ErrorResponse = v.InferOutput<typeof ErrorResponseSchema>;
export type ClosingNotice = v.InferOutput<typeof ClosingNoticeSchema>;
/** An answer to one request (everything but the closing notice). */
export type Answer = OkResponse | ErrorResponse;
