/**
 * `RaftClient`: connects to any of a list of servers' client addresses (a member that is not the
 * leader forwards commands to it; the client follows NOT_LEADER hints and tries the next server on
 * NO_LEADER or a lost connection), pipelines many requests over one connection, and retries what
 * is safe to retry.
 *
 * Sessions (the default, `session: true`): the client registers a session before its first
 * command, numbers its commands, keeps the session alive (a keep-alive every third of the granted
 * timeout, acknowledging the answers and events it has) and sends a command again under the same
 * sequence number after any failure but a final one (APPLICATION_ERROR, UNKNOWN_SESSION,
 * RESULT_EVICTED), with backoff, on another member when its member fails: the cluster applies it
 * once and answers a retry with the original output. A command past `requestTimeoutMs` rejects
 * with TIMEOUT (outcome unknown: it may still be applied, once) and is still sent in the
 * background, since the session's later commands wait for it. A session that expired (the client
 * could reach no member for longer than its timeout, or was paused) fails its commands with
 * UNKNOWN_SESSION; `openSession()` opens a new one. `onEvent` delivers what the state machine
 * publishes to the session (each event once, in order, before the answer of the command that
 * published it). Sequential queries name the highest index the client has seen, so the member
 * answers only once it has applied that far: the client reads its own writes and never goes back
 * in time, whichever member it asks. `close()` unregisters.
 *
 * Without a session (`session: false`) a command is retried only after a refusal that certainly
 * did not propose it; one whose connection broke after it was sent rejects with TIMEOUT (outcome
 * unknown).
 *
 * A server that stops answering without closing (a paused process: its kernel keeps the
 * connection, and even accepts new ones) is found by a keep-alive (`KeepAlive`): while requests
 * are outstanding and the connection is silent for `keepAliveIntervalMs`, the client pings; no
 * answer within `keepAliveTimeoutMs` closes the connection as lost, and the client moves on to the
 * next server within about an election timeout instead of each request's deadline. Connecting has
 * its own deadline, `connectTimeoutMs`. A connection the server closes for idleness ends with a
 * `closing` notice, after which nothing it carried was read: its unanswered requests, commands
 * too, are sent again (to the same server, which is alive).
 *
 * @example
 * ```ts
 * const client = await RaftClient.connect({ servers: ['127.0.0.1:8001', '127.0.0.1:8002'] });
 * await client.command({ op: 'put', key: 'k', value: 'v' });
 * const value = await client.query({ op: 'get', key: 'k' });
 * await client.close();
 * ```
 * @module
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import * as v from 'valibot';
import { DialAddressSchema, parseAddress } from '../base/address.ts';
import { EdgeraftError } from '../base/errors.ts';
import type { Member } from '../base/messages.ts';
import {
  type BooleanOption,
  intInRange as int,
  type IntOption,
  parseOptions,
} from '../base/validate.ts';
import { cborCodec, type CommandCodec } from '../state/codec.ts';
import type { KvCommand, KvOutput, KvQuery, KvQueryOutput } from '../state/kv.ts';
import { MessageCodec } from '../transport/codec.ts';
import { FramedConnection } from '../transport/connection.ts';
import { controlBytesReserved, type TransportLogger } from '../transport/options.ts';
import {
  type ClientErrorCode,
  type ClientRequest,
  type ClientResponse,
  ClientResponseSchema,
  type ClosingNotice,
  type Consistency,
  type ErrorResponse,
  type EventMessage,
  retryableCodes,
  type SnapshotInfoOutput,
  SnapshotInfoOutputSchema,
  type SnapshotReadOutput,
  SnapshotReadOutputSchema,
} from '../base/client-protocol.ts';
import { KeepAlive } from './keep-alive.ts';
import { checkPeerCertificate, loadTls, type TlsMaterial } from '../transport/tls.ts';

/** A request failed. `retryable` says whether sending it again is safe. */
export class ClientError extends EdgeraftError {
  declare readonly code: ClientErrorCode;
  readonly leaderId: string | null;
  constructor(code: ClientErrorCode, message: string, leaderId: string | null = null) {
    super(code, message, retryableCodes.has(code));
    this.leaderId = leaderId;
  }
}

type ClientOptionsEntries = {
  /** Client addresses (`host:port`) of some or all members. */
  servers: v.SchemaWithPipe<
    readonly [
      v.ArraySchema<typeof DialAddressSchema, undefined>,
      v.MinLengthAction<string[], 1, undefined>,
      v.MaxLengthAction<string[], 1024, undefined>,
    ]
  >;
  /**
   * How long one request may take, retries included. No attempt starts after it; then the request
   * rejects with the last refusal (retryable) if every attempt was refused, or with TIMEOUT
   * (outcome unknown). A retry still in flight at the deadline is awaited a little longer
   * (`refusedAttemptGraceMsMax`), since its answer tells the two apart.
   */
  requestTimeoutMs: IntOption;
  /**
   * How long to wait before trying again after NO_LEADER or a failed connection; each further
   * attempt of the same request waits twice as long, up to `retryDelayMsMax`.
   */
  retryDelayMs: IntOption;
  /** The longest wait between two attempts of one request. */
  retryDelayMsMax: IntOption;
  /**
   * Move to the leader when a member answers that it forwarded a request there (one hop less for
   * every later request). Off: stay with the member reached, which forwards.
   */
  preferLeader: BooleanOption;
  /**
   * Send commands in an exactly-once session (see the module comment). Off: a command whose answer
   * is lost has an unknown outcome and is never sent again.
   */
  session: BooleanOption;
  /**
   * The session timeout to ask for: a session not kept alive for this long (log time, counted
   * only while there is a leader) expires. The server bounds it (`sessionTimeoutMsMin`/`Max`).
   * Keep-alives go every third of the granted timeout.
   */
  sessionTimeoutMs: IntOption;
  /**
   * A session command's answer whose session events have not all arrived (they come from the
   * member the session is attached to, which may lag after a move) waits at most this long for
   * them before it is delivered anyway.
   */
  eventWaitMsMax: IntOption;
  /** Largest response frame accepted, in bytes. */
  frameBytesMax: IntOption;
  /** Requests in flight at once; more wait in the client. */
  inflightRequestsMax: IntOption;
  /**
   * While requests are outstanding and nothing has arrived on the connection for this long, send
   * a `ping` (the server's client port answers it at once, without Raft). 0 turns keep-alive off
   * (only needed against servers that predate the ping: they close the connection on it).
   * With `keepAliveTimeoutMs`, a paused or cut-off server is given up within their sum of the
   * last byte heard: the defaults, 100 + 300 ms, are about one election timeout of the server
   * defaults (10 ms ticks × 15–30 = 150–300 ms), so the client leaves a paused leader about when
   * the cluster replaces it. Keep both above the network's round trip plus the server's longest
   * event-loop stall: a false alarm turns the commands in flight into TIMEOUTs (outcome unknown).
   */
  keepAliveIntervalMs: IntOption;
  /**
   * How long an unanswered ping (nothing at all heard since) is awaited. Past it the connection is
   * dead: it is closed, commands sent on it reject with TIMEOUT (outcome unknown, never resent),
   * queries and requests not yet sent go to the next server.
   */
  keepAliveTimeoutMs: IntOption;
  /**
   * A connection attempt that has not completed within this time fails and the next server is
   * tried. A connect takes one round trip; 1 s is above any terrestrial round trip and equal to
   * the kernel's first SYN retransmission timeout, so a connect still pending has lost its SYN
   * or its server's accept queue is full: better to try another server than wait out the
   * kernel's minutes of retries.
   */
  connectTimeoutMs: IntOption;
  /**
   * Fail fast when no server is there: once every server has refused the connection (nothing
   * listens: ECONNREFUSED; or its host is unknown or unreachable) since the client last connected
   * anywhere, every request not yet sent fails at once with NO_LEADER, naming each address and
   * why, instead of being retried until its deadline (it was never sent: retryable). Commands in a
   * session are left to their deadline (their sequence must not be given up). Off by default: a
   * long-lived client rides out a cluster that is restarting; the command line turns it on.
   */
  failFastUnreachable: BooleanOption;
  /**
   * TLS to the servers' client ports: PEM paths of the CA that signed their certificates, and
   * this client's certificate and key (for ports with `clientAuth: 'cert'`). The server's
   * certificate must be signed by `ca` and valid; its name is not checked (any certificate the
   * cluster's CA signed is trusted). Omitted: plain TCP.
   */
  tls: v.OptionalSchema<
    v.StrictObjectSchema<{
      readonly ca: v.SchemaWithPipe<
        readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]
      >;
      readonly cert: v.OptionalSchema<
        v.SchemaWithPipe<
          readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]
        >,
        undefined
      >;
      readonly key: v.OptionalSchema<
        v.SchemaWithPipe<
          readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]
        >,
        undefined
      >;
    }, undefined>,
    undefined
  >;
  /** A bearer token, sent first on every connection (for ports with `clientAuth: 'token'`). */
  token: v.OptionalSchema<
    v.SchemaWithPipe<
      readonly [
        v.StringSchema<undefined>,
        v.MinLengthAction<string, 1, undefined>,
        v.MaxLengthAction<string, 4096, undefined>,
      ]
    >,
    undefined
  >;
  codec: v.OptionalSchema<
    v.CustomSchema<CommandCodec<unknown>, v.ErrorMessage<v.CustomIssue> | undefined>,
    undefined
  >;
  logger: v.OptionalSchema<
    v.CustomSchema<TransportLogger, v.ErrorMessage<v.CustomIssue> | undefined>,
    undefined
  >;
};

const ClientOptionsSchema: v.StrictObjectSchema<ClientOptionsEntries, undefined> = v.strictObject({
  servers: v.pipe(v.array(DialAddressSchema), v.minLength(1), v.maxLength(1024)),
  requestTimeoutMs: v.optional(int(1, 3_600_000), 10_000),
  retryDelayMs: v.optional(int(1, 60_000), 50),
  retryDelayMsMax: v.optional(int(1, 600_000), 1_000),
  preferLeader: v.optional(v.boolean(), true),
  session: v.optional(v.boolean(), true),
  sessionTimeoutMs: v.optional(int(100, 86_400_000), 30_000),
  eventWaitMsMax: v.optional(int(0, 600_000), 1_000),
  frameBytesMax: v.optional(int(1024, 256 * 1024 * 1024), 8 * 1024 * 1024),
  inflightRequestsMax: v.optional(int(1, 1_000_000), 4096),
  keepAliveIntervalMs: v.optional(int(0, 60_000), 100),
  keepAliveTimeoutMs: v.optional(int(1, 600_000), 300),
  connectTimeoutMs: v.optional(int(1, 600_000), 1_000),
  failFastUnreachable: v.optional(v.boolean(), false),
  tls: v.optional(v.strictObject({
    ca: v.pipe(v.string(), v.minLength(1)),
    cert: v.optional(v.pipe(v.string(), v.minLength(1))),
    key: v.optional(v.pipe(v.string(), v.minLength(1))),
  })),
  token: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(4096))),
  codec: v.optional(
    v.custom<CommandCodec<unknown>>(
      (x) => typeof x === 'object' && x !== null,
      'Expected a command codec',
    ),
  ),
  logger: v.optional(
    v.custom<TransportLogger>((x) => typeof x === 'object' && x !== null, 'Expected a logger'),
  ),
});
export type RaftClientOptions = v.InferInput<typeof ClientOptionsSchema>;

type Outstanding = {
  request: ClientRequest;
  deadlineMs: number;
  resolve: (r: { index: number; output: unknown }) => void;
  reject: (e: unknown) => void;
  sent: boolean;
  /** The connection the request was last sent on (its answer can only come back there). */
  connection: FramedConnection<ClientResponse> | null;
  /** The last retryable refusal: the request was not carried out there. */
  refusal: ErrorResponse | null;
  /** Resolved or rejected: never send it again. */
  settled: boolean;
  /** The deadline passed while an attempt was in flight after refusals: await its answer once. */
  inGrace: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  /** A command in the session: sent again under its sequence until it has a final answer. */
  inSession: boolean;
  /** Its caller already got TIMEOUT; it is still sent, for the session's later commands. */
  orphan: boolean;
  /** Attempts that failed so far (the backoff doubles with each). */
  attempts: number;
  /** It was sent at least once (then its outcome may be anything but "never sent"). */
  everSent: boolean;
};

/**
 * Connection errors that say nobody can be reached at an address (as opposed to a slow or lost
 * connection), with how `failFastUnreachable` names them.
 */
const unreachableErrors: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** A session event as `onEvent` delivers it. */
export type ClientEvent = {
  /** Numbers the session's events from 1; a gap means events were dropped by the server. */
  eventIndex: number;
  /** The log index of the command whose application published it. */
  index: number;
  name: string;
  payload: unknown;
};

/** `output` checked against `schema`; a mismatch is INTERNAL_ERROR naming the request. */
function validAnswer<S extends v.GenericSchema>(
  schema: S,
  output: unknown,
  request: string,
): v.InferOutput<S> {
  const result = v.safeParse(schema, output);
  if (result.success) return result.output;
  throw new ClientError(
    'INTERNAL_ERROR',
    `Malformed answer to ${request}: ${result.issues[0].message}`,
  );
}

/** Codes after which a session command is not sent again: its outcome is final. */
const finalSessionCodes: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  'APPLICATION_ERROR',
  'UNKNOWN_SESSION',
  'RESULT_EVICTED',
  'UNAUTHENTICATED',
]);

/**
 * After refusals, an attempt still unanswered at the deadline is awaited this much longer (at most
 * `requestTimeoutMs`): its answer tells "refused" (retryable) from "outcome unknown" (TIMEOUT).
 */
export const refusedAttemptGraceMsMax = 1_000;
/** ...and at least this much, however short `requestTimeoutMs` is. */
export const refusedAttemptGraceMsMin = 100;

/**
 * For this long after the keep-alive gave up on a server, the client neither follows leader hints
 * naming it nor moves to it in turn. Its followers keep naming it as leader until they elect
 * another (an election timeout or two: 150–600 ms with the server defaults); following them back
 * would strand the next commands on the same paused process and make their outcome unknown too.
 * Were the server wrongly given up on, the cost is refusals retried for this long, not failures.
 */
export const suspectMs = 1_000;

/**
 * See the module comment. Create with `RaftClient.connect`. The type parameters are the state
 * machine's command, output, query and query-output types (`KvClient` for the key-value machine),
 * so that `command` and `query` are checked and return typed results; they default to `unknown`.
 * The client does not validate the outputs it receives against them: they are what the server's
 * state machine returned, decoded.
 */
export class RaftClient<
  Command = unknown,
  Output = unknown,
  Query = unknown,
  QueryOutput = unknown,
> {
  readonly #o: v.InferOutput<typeof ClientOptionsSchema>;
  readonly #codec: CommandCodec<unknown>;
  readonly #wire = new MessageCodec(ClientResponseSchema, { nestingDepthMax: 64 });
  /** Requests sent and not yet answered, by id; change only through `#track` and `#untrack`. */
  readonly #outstanding = new Map<number, Outstanding>();
  /** How many of `#outstanding` each connection carries (absent: none). */
  readonly #sentOn = new Map<FramedConnection<ClientResponse>, number>();
  /** The keep-alive state and server address of every open connection (current and draining). */
  readonly #liveness = new Map<
    FramedConnection<ClientResponse>,
    { keepAlive: KeepAlive; address: string }
  >();
  /**
   * Servers whose last connection attempt found nobody there (see `unreachableErrors`), with the
   * reason, since the client last connected anywhere (then it is cleared).
   */
  readonly #unreachable = new Map<string, string>();
  /** Servers the keep-alive gave up on, until when they are passed over (see `suspectMs`). */
  readonly #suspectUntilMs = new Map<string, number>();
  /** Runs while requests are outstanding and keep-alive is on. */
  #keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  /** The keep-alive timer's period in ms, and when it last ran (0: not since it started). */
  #keepAliveTickMs = 0;
  #keepAliveTickedMs = 0;
  #queue: Outstanding[] = [];
  #servers: string[];
  #serverIndex = 0;
  #connection: FramedConnection<ClientResponse> | null = null;
  /**
   * Connections left for another server that still owe answers: closing them at once would turn
   * every pipelined command on them into an unknown outcome, though most are being refused
   * (NOT_LEADER) and are safe to retry. Each closes when its last answer arrives or expires.
   */
  readonly #draining = new Set<FramedConnection<ClientResponse>>();
  #connecting: Promise<void> | null = null;
  #nextId = 1;
  #closed = false;
  #leaderId: string | null = null;
  // ---- The session (see the module comment) ----
  /** The session id (0: none yet). */
  #sessionId = 0;
  #sessionTimeoutMs = 0;
  /** Registration in progress. */
  #opening: Promise<void> | null = null;
  /** Set once the session is gone (expired): commands fail with it until `openSession()`. */
  #sessionLost: ClientError | null = null;
  #nextSequence = 1;
  /** Every command up to this sequence has its final answer here. */
  #commandAck = 0;
  /** Sequences above `#commandAck` with their final answer. */
  readonly #answered = new Set<number>();
  /** The highest event index delivered to `onEvent` listeners. */
  #eventAck = 0;
  /** The connection the session's latest request went on: its member sends the events. */
  #eventConnection: FramedConnection<ClientResponse> | null = null;
  readonly #eventListeners = new Set<(event: ClientEvent) => void>();
  /** Answers waiting for their session events: (event index needed, deliver). */
  #heldAnswers: Array<
    { eventIndex: number; deliver: () => void; timer: ReturnType<typeof setTimeout> }
  > = [];
  #keepAliveSessionTimer: ReturnType<typeof setInterval> | null = null;
  #keepAliveInFlight = false;
  /** The highest log index answered to this client: sequential reads wait for it. */
  #minIndex = 0;
  /** The TLS files read at `connect` (null: plain TCP). */
  readonly #tls: TlsMaterial | null;

  private constructor(o: v.InferOutput<typeof ClientOptionsSchema>) {
    this.#o = o;
    this.#tls = o.tls === undefined
      ? null
      : loadTls(o.tls, { ca: 'tls.ca', cert: 'tls.cert', key: 'tls.key' });
    this.#codec = (o.codec ?? cborCodec<unknown>()) as CommandCodec<unknown>;
    this.#servers = [...o.servers];
  }

  /** Validate options (TypeError/RangeError naming the option) and connect to some server. */
  static async connect<C = unknown, O = unknown, Q = unknown, QO = unknown>(
    options: RaftClientOptions,
  ): Promise<RaftClient<C, O, Q, QO>> {
    const client = new RaftClient<C, O, Q, QO>(
      parseOptions(ClientOptionsSchema, options, 'RaftClient.connect'),
    );
    await client.#ensureConnected().catch(() => {}); // requests retry on their own
    return client;
  }

  /** The leader this client last heard of. */
  get leaderId(): string | null {
    return this.#leaderId;
  }

  /** The current session's id (0 before the first command, or with `session: false`). */
  get sessionId(): number {
    return this.#sessionId;
  }

  /**
   * Send a command through the log; resolves with the state machine's output. Rejects with a
   * `ClientError`: APPLICATION_ERROR (applied, and the machine refused it), UNKNOWN_SESSION (the
   * session expired: see `openSession`), TIMEOUT (outcome unknown), or a refusal.
   */
  async command(command: Command): Promise<Output> {
    return (await this.commandWithIndex(command)).output;
  }

  /** Like `command`, with the log index the command was applied at. */
  async commandWithIndex(command: Command): Promise<{ index: number; output: Output }> {
    const data = this.#codec.encode(command);
    if (!this.#o.session) {
      return this.#noteIndex(
        await this.#request({ type: 'command', id: 0, session: 0, sequence: 0, data }, false),
      ) as { index: number; output: Output };
    }
    await this.#ensureSession();
    const sequence = this.#nextSequence++;
    const session = this.#sessionId;
    try {
      return this.#noteIndex(
        await this.#request({ type: 'command', id: 0, session, sequence, data }, true),
      ) as { index: number; output: Output };
    } catch (error) {
      if (error instanceof ClientError && error.code === 'UNKNOWN_SESSION') {
        this.#loseSession(session, error);
      }
      throw error;
    }
  }

  /**
   * A read that never goes through the log, at the given consistency (default linearizable). A
   * `sequential` read is answered by the member the client is connected to once it has applied
   * every command and read this client has seen answered.
   */
  async query(query: Query, consistency: Consistency = 'linearizable'): Promise<QueryOutput> {
    const data = cborCodec<unknown>().encode(query);
    return this.#noteIndex(
      await this.#request({
        type: 'query',
        id: 0,
        session: 0,
        sequence: 0,
        consistency,
        minIndex: this.#minIndex,
        data,
      }, false),
    ).output as QueryOutput;
  }

  /**
   * Add a member to the cluster (PASSIVE by default, or RESERVE); resolves with the new members
   * once the change is committed. Any member takes it. Refusals: CONFIG_CHANGE_IN_PROGRESS
   * (retried until the deadline: nothing was proposed), CONFIG_CHANGE_INVALID.
   */
  async join(member: {
    id: string;
    type?: 'PASSIVE' | 'RESERVE' | 'INACTIVE';
    address: string;
    clientAddress?: string;
  }): Promise<Member[]> {
    return await this.#reconfigure('join', member.id, {
      memberType: member.type ?? 'PASSIVE',
      address: member.address,
      ...(member.clientAddress === undefined ? {} : { clientAddress: member.clientAddress }),
    });
  }

  /** Remove member `id`; resolves with the new members once committed. */
  async leave(id: string): Promise<Member[]> {
    return await this.#reconfigure('leave', id, {});
  }

  /** Member `id` one type up; to ACTIVE only once caught up (NOT_CAUGHT_UP is retried). */
  async promote(id: string): Promise<Member[]> {
    return await this.#reconfigure('promote', id, {});
  }

  /** Member `id` one type down. */
  async demote(id: string): Promise<Member[]> {
    return await this.#reconfigure('demote', id, {});
  }

  /** The leader's view of the members: types, roles, who feeds whom, each passive's lag. */
  async members(): Promise<unknown> {
    return (await this.#request({ type: 'members', id: 0, session: 0, sequence: 0 }, false))
      .output;
  }

  /**
   * Make the leader hand leadership to ACTIVE member `id` (any member takes the request and
   * forwards it). Resolves once `id` leads, with the new leader and its term. Rejects with a
   * `ClientError`: TRANSFER_INVALID (`id` is not a member, or not ACTIVE), TIMEOUT (not done
   * within the server's two election timeouts, or the request deadline); NO_LEADER and
   * LEADERSHIP_TRANSFER (another transfer under way) are retried until the deadline.
   *
   * @example
   * ```ts
   * const { leaderId, term } = await client.transferLeader('b');
   * ```
   */
  async transferLeader(id: string): Promise<{ leaderId: string; term: number }> {
    const { output } = await this.#request(
      { type: 'transferLeader', id: 0, session: 0, sequence: 0, member: id },
      false,
    );
    const answer = output as { leaderId?: unknown; term?: unknown } | null;
    if (typeof answer?.leaderId !== 'string' || typeof answer.term !== 'number') {
      throw new ClientError(
        'INTERNAL_ERROR',
        'The server answered a leadership transfer without the new leader',
      );
    }
    return { leaderId: answer.leaderId, term: answer.term };
  }

  async #reconfigure(
    op: 'join' | 'leave' | 'promote' | 'demote',
    member: string,
    extra: {
      memberType?: 'PASSIVE' | 'RESERVE' | 'INACTIVE';
      address?: string;
      clientAddress?: string;
    },
  ): Promise<Member[]> {
    const { output } = await this.#request(
      { type: 'reconfigure', id: 0, session: 0, sequence: 0, op, member, ...extra },
      false,
    );
    return (output as { members: Member[] }).members;
  }

  /** The status of the server this client is connected to. */
  async status(): Promise<unknown> {
    return (await this.#request({ type: 'status', id: 0, session: 0, sequence: 0 }, false)).output;
  }

  /**
   * The current snapshot of the member this client is connected to (asked of it, not forwarded):
   * its metadata and size, or null when it holds none. With `take`, the member first snapshots
   * its state machine and answers once that is stored. The answer is validated.
   *
   * @example
   * ```ts
   * const info = await client.snapshotInfo(true); // { meta: { index, term, timeMs, members }, totalBytes }
   * ```
   */
  async snapshotInfo(take: boolean): Promise<SnapshotInfoOutput> {
    const { output } = await this.#request(
      { type: 'snapshot', id: 0, session: 0, sequence: 0, take },
      false,
    );
    return validAnswer(SnapshotInfoOutputSchema, output, 'snapshot');
  }

  /**
   * Bytes `offsetBytes` to at most `offsetBytes + bytesMax` (at most `snapshotReadBytesMax`) of
   * the connected member's snapshot at `index`/`term`. Rejects with SNAPSHOT_CHANGED once the
   * member holds another snapshot. The answer is validated.
   *
   * @example
   * ```ts
   * const part = await client.snapshotRead(120, 3, 0, 65_536); // { data, done, totalBytes, ... }
   * ```
   */
  async snapshotRead(
    index: number,
    term: number,
    offsetBytes: number,
    bytesMax: number,
  ): Promise<SnapshotReadOutput> {
    const { output } = await this.#request(
      { type: 'snapshotRead', id: 0, session: 0, sequence: 0, index, term, offsetBytes, bytesMax },
      false,
    );
    const part = validAnswer(SnapshotReadOutputSchema, output, 'snapshotRead');
    if (
      part.index !== index || part.term !== term || part.offsetBytes !== offsetBytes ||
      part.data.byteLength > bytesMax || offsetBytes + part.data.byteLength > part.totalBytes
    ) {
      throw new ClientError('INTERNAL_ERROR', 'The server answered another snapshot range');
    }
    return part;
  }

  /**
   * Listen to the events the state machine publishes to this client's session (the key-value
   * machine's `watch`, say), each once, in order. Returns an unsubscribe function.
   */
  onEvent(listener: (event: ClientEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /**
   * Open the session now (otherwise the first command does), or a new one after the old one
   * expired: the commands of the old one still unanswered have failed with UNKNOWN_SESSION.
   * Resolves with the session id.
   */
  async openSession(): Promise<number> {
    if (this.#sessionLost !== null) {
      this.#sessionLost = null;
      this.#sessionId = 0;
    }
    await this.#ensureSession();
    return this.#sessionId;
  }

  /**
   * Unregister the session (waiting at most `requestTimeoutMs`, at most 1 s), fail every
   * outstanding request with SHUTDOWN and close the connections.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    const session = this.#sessionId;
    if (session !== 0 && this.#sessionLost === null && this.#opening === null) {
      this.#stopSessionKeepAlive();
      const unregister = this.#request(
        { type: 'unregister', id: 0, session, sequence: 0 },
        false,
        Math.min(this.#o.requestTimeoutMs, 1_000),
      );
      await unregister.catch(() => {}); // it expires in any case
    }
    this.#closed = true;
    this.#stopSessionKeepAlive();
    const error = new ClientError('SHUTDOWN', 'Client closed');
    for (const o of [...this.#outstanding.values(), ...this.#queue]) o.reject(error);
    this.#outstanding.clear();
    this.#sentOn.clear();
    this.#queue = [];
    for (const held of this.#heldAnswers) clearTimeout(held.timer);
    this.#heldAnswers = [];
    this.#stopKeepAlive();
    this.#connection?.close(null, 'info');
    this.#connection = null;
    for (const c of this.#draining) c.close(null, 'info');
    this.#draining.clear();
  }

  // ---- The session ----------------------------------------------------------------------------

  #noteIndex<T extends { index: number }>(answer: T): T {
    if (answer.index > this.#minIndex) this.#minIndex = answer.index;
    return answer;
  }

  /** Register a session unless there is one; rejects with the session's loss if it expired. */
  #ensureSession(): Promise<void> {
    if (this.#sessionLost !== null) return Promise.reject(this.#sessionLost);
    if (this.#sessionId !== 0) return Promise.resolve();
    if (this.#opening !== null) return this.#opening;
    const opening = (async () => {
      // A registration whose answer is lost leaves a session nobody uses: it expires. So one of
      // unknown outcome (its leader was lost on the way, or it timed out) is simply sent again,
      // until the request deadline; refusals are retried inside `#request` already.
      const deadlineMs = Date.now() + this.#o.requestTimeoutMs;
      let output: unknown;
      for (;;) {
        try {
          ({ output } = await this.#request({
            type: 'register',
            id: 0,
            session: 0,
            sequence: 0,
            timeoutMs: this.#o.sessionTimeoutMs,
          }, false));
          break;
        } catch (error) {
          // Unknown outcome: its leader was lost, or it was not applied in time (a leader cut off
          // from its followers still takes proposals until it steps down).
          const unknown = error instanceof ClientError &&
            (error.code === 'OUTCOME_UNKNOWN' || error.code === 'TIMEOUT');
          if (!unknown || this.#closed || Date.now() >= deadlineMs) throw error;
          await new Promise((r) => setTimeout(r, this.#o.retryDelayMs));
        }
      }
      const granted = output as { session?: unknown; timeoutMs?: unknown };
      if (typeof granted?.session !== 'number' || typeof granted.timeoutMs !== 'number') {
        throw new ClientError(
          'INTERNAL_ERROR',
          'The server answered a registration without a session',
        );
      }
      this.#sessionId = granted.session;
      this.#sessionTimeoutMs = granted.timeoutMs;
      this.#nextSequence = 1;
      this.#commandAck = 0;
      this.#answered.clear();
      this.#eventAck = 0;
      this.#eventConnection = null;
      this.#startSessionKeepAlive();
    })();
    this.#opening = opening;
    const done = () => {
      if (this.#opening === opening) this.#opening = null;
    };
    opening.then(done, done);
    return opening;
  }

  /** A command's final answer arrived: advance the acknowledgment the keep-alives carry. */
  #noteAnswered(sequence: number): void {
    if (sequence <= this.#commandAck) return;
    this.#answered.add(sequence);
    while (this.#answered.delete(this.#commandAck + 1)) this.#commandAck++;
  }

  /** The session expired: fail its outstanding commands with UNKNOWN_SESSION. */
  #loseSession(session: number, error: ClientError): void {
    if (session !== this.#sessionId || this.#sessionLost !== null) return;
    this.#sessionLost = error;
    this.#stopSessionKeepAlive();
    for (const o of [...this.#outstanding.values(), ...this.#queue]) {
      if (o.inSession) o.reject(error);
    }
    for (const [id, o] of [...this.#outstanding]) if (o.inSession) this.#untrack(id);
    this.#queue = this.#queue.filter((o) => !o.inSession);
  }

  #startSessionKeepAlive(): void {
    this.#stopSessionKeepAlive();
    const periodMs = Math.max(10, Math.floor(this.#sessionTimeoutMs / 3));
    this.#keepAliveSessionTimer = setInterval(() => this.#sendKeepAlive(), periodMs);
    // An idle client must not keep its process alive: the session then simply expires.
    this.#keepAliveSessionTimer.unref();
  }

  #stopSessionKeepAlive(): void {
    if (this.#keepAliveSessionTimer !== null) clearInterval(this.#keepAliveSessionTimer);
    this.#keepAliveSessionTimer = null;
  }

  /** One keep-alive at a time; it also attaches the session's events to the current connection. */
  #sendKeepAlive(attach = false): void {
    const session = this.#sessionId;
    if (session === 0 || this.#sessionLost !== null || this.#closed) return;
    if (this.#keepAliveInFlight && !attach) return;
    this.#keepAliveInFlight = true;
    this.#request(
      {
        type: 'keepAlive',
        id: 0,
        session,
        sequence: 0,
        commandAck: this.#commandAck,
        eventAck: this.#eventAck,
      },
      false,
      Math.max(1, Math.floor(this.#sessionTimeoutMs / 3)),
    ).then(
      () => {},
      (error) => {
        if (error instanceof ClientError && error.code === 'UNKNOWN_SESSION') {
          this.#loseSession(session, error);
        }
      },
    ).finally(() => (this.#keepAliveInFlight = false));
  }

  /** An event frame: delivered if it comes from the session's member and is new. */
  #onEventMessage(e: EventMessage, c: FramedConnection<ClientResponse>): void {
    if (e.session !== this.#sessionId || c !== this.#eventConnection) return;
    if (e.eventIndex <= this.#eventAck) return; // sent again after a move: delivered already
    this.#eventAck = e.eventIndex;
    const event: ClientEvent = {
      eventIndex: e.eventIndex,
      index: e.index,
      name: e.name,
      payload: e.payload,
    };
    for (const listener of [...this.#eventListeners]) {
      try {
        listener(event);
      } catch (error) {
        (this.#o.logger ?? quietLogger).warn(
          `An event listener threw: ${(error as Error).message}`,
        );
      }
    }
    this.#releaseHeld();
  }

  /** Deliver the held answers whose events have all been delivered. */
  #releaseHeld(): void {
    if (this.#heldAnswers.length === 0) return;
    const ready = this.#heldAnswers.filter((h) => h.eventIndex <= this.#eventAck);
    if (ready.length === 0) return;
    this.#heldAnswers = this.#heldAnswers.filter((h) => h.eventIndex > this.#eventAck);
    for (const h of ready) {
      clearTimeout(h.timer);
      h.deliver();
    }
  }

  // ---- Internals --------------------------------------------------------------------------

  #request(
    request: ClientRequest,
    inSession: boolean,
    timeoutMs = this.#o.requestTimeoutMs,
  ): Promise<{ index: number; output: unknown }> {
    if (this.#closed) return Promise.reject(new ClientError('SHUTDOWN', 'Client closed'));
    return new Promise((resolve, reject) => {
      const o: Outstanding = {
        request,
        deadlineMs: Date.now() + timeoutMs,
        resolve,
        reject,
        sent: false,
        connection: null,
        refusal: null,
        settled: false,
        inGrace: false,
        timer: null,
        inSession,
        orphan: false,
        attempts: 0,
        everSent: false,
      };
      o.timer = setTimeout(() => this.#expire(o), timeoutMs);
      const stop = () => {
        o.settled = true;
        if (o.timer !== null) clearTimeout(o.timer);
      };
      const answered = () => {
        if (o.inSession && o.request.type === 'command') this.#noteAnswered(o.request.sequence);
      };
      // An orphan's caller already has its TIMEOUT: its final answer only advances the session.
      o.resolve = (r) => (stop(), answered(), o.orphan || resolve(r));
      o.reject = (e) => {
        stop();
        if (e instanceof ClientError && finalSessionCodes.has(e.code)) answered();
        if (!o.orphan) reject(e);
      };
      this.#queue.push(o);
      this.#flush();
    });
  }

  #expire(o: Outstanding): void {
    if (o.settled || o.orphan) return;
    if (o.inSession) {
      // Its caller learns that the outcome is unknown; the command itself goes on being sent
      // (later commands of the session wait for its sequence) and is applied at most once.
      o.reject(
        new ClientError(
          'TIMEOUT',
          `Command not answered within ${this.#o.requestTimeoutMs} ms: outcome unknown (it is still sent in its session and applied at most once)${this.#unreachableNote()}`,
          this.#leaderId,
        ),
      );
      o.settled = false;
      o.orphan = true;
      return;
    }
    const inFlight = this.#outstanding.get(o.request.id) === o;
    if (inFlight && o.refusal !== null && !o.inGrace) {
      // Refused so far, and a retry is out: its answer decides between "refused" and "unknown".
      // No new attempt starts after the deadline (`#onError` checks it).
      o.inGrace = true;
      o.timer = setTimeout(
        () => this.#expire(o),
        Math.min(
          Math.max(this.#o.requestTimeoutMs, refusedAttemptGraceMsMin),
          refusedAttemptGraceMsMax,
        ),
      );
      return;
    }
    if (inFlight) this.#untrack(o.request.id);
    this.#queue = this.#queue.filter((x) => x !== o);
    this.#closeIfDrained(o.connection);
    const r = o.refusal;
    if (!inFlight && r !== null) {
      // Every attempt so far was refused before it was carried out: the outcome is known (not
      // done), so report the refusal, which is retryable, rather than an unknown outcome.
      o.reject(
        new ClientError(
          r.code,
          `${r.message} (still refused after ${this.#o.requestTimeoutMs} ms)`,
          r.leaderId,
        ),
      );
      return;
    }
    o.reject(
      new ClientError(
        'TIMEOUT',
        `Request not answered within ${this.#o.requestTimeoutMs} ms${this.#unreachableNote()}`,
        this.#leaderId,
      ),
    );
  }

  /**
   * When every server found nobody there since the last successful connect, why, for a timeout's
   * message (`: no server reachable (A connection refused, ...)`); else nothing.
   */
  #unreachableNote(): string {
    if (!this.#servers.every((a) => this.#unreachable.has(a))) return '';
    const why = this.#servers.map((a) => `${a} ${this.#unreachable.get(a)}`).join(', ');
    return `: no server reachable (${why})`;
  }

  #flush(): void {
    if (this.#closed) return; // a retry timer may fire after close(): never reconnect then
    const c = this.#connection;
    if (c === null || c.closed) {
      void this.#ensureConnected().then(
        () => this.#flush(),
        () => {
          this.#failIfUnreachable();
          setTimeout(() => this.#flush(), this.#o.retryDelayMs);
        },
      );
      return;
    }
    while (this.#queue.length > 0 && this.#outstanding.size < this.#o.inflightRequestsMax) {
      const o = this.#queue.shift()!;
      if (o.settled) continue;
      o.request = { ...o.request, id: this.#nextId++ };
      o.sent = true;
      o.everSent = true;
      o.connection = c;
      // The member that receives a session's request sends it the session's events from then on.
      if (o.request.session !== 0 && o.request.session === this.#sessionId) {
        this.#eventConnection = c;
      }
      this.#track(o);
      if (!c.send(o.request, 'control')) {
        this.#untrack(o.request.id);
        o.sent = false;
        o.connection = null;
        this.#queue.unshift(o);
        break;
      }
    }
  }

  #ensureConnected(): Promise<void> {
    if (this.#connection !== null && !this.#connection.closed) return Promise.resolve();
    if (this.#connecting !== null) return this.#connecting;
    this.#connecting = new Promise<void>((resolve, reject) => {
      const address = this.#servers[this.#serverIndex % this.#servers.length]!;
      const { host, port } = parseAddress(address);
      const material = this.#tls;
      const socket = material === null ? net.connect({ host, port }) : tls.connect({
        host,
        port,
        secureContext: material.context,
        rejectUnauthorized: true,
        // Any certificate the cluster's CA signed is trusted (see the option); checked below.
        checkServerIdentity: () => undefined,
      });
      let settled = false;
      const fail = (reason: string, nobodyThere: string | undefined = undefined) => {
        if (settled) return;
        settled = true;
        if (nobodyThere === undefined) this.#unreachable.delete(address);
        else this.#unreachable.set(address, nobodyThere);
        clearTimeout(deadline);
        socket.destroy();
        this.#connecting = null;
        this.#nextServer();
        reject(new ClientError('NO_LEADER', `Cannot connect to ${address}: ${reason}`));
      };
      const deadline = setTimeout(
        () => fail(`Connect deadline exceeded: not connected in ${this.#o.connectTimeoutMs} ms`),
        this.#o.connectTimeoutMs,
      );
      const onError = (error: Error & { code?: string }) =>
        fail(
          error.code ?? error.message,
          error.code === undefined ? undefined : unreachableErrors[error.code],
        );
      socket.once('error', onError);
      socket.once(material === null ? 'connect' : 'secureConnect', () => {
        if (settled) return;
        if (material !== null) {
          const check = checkPeerCertificate(socket as tls.TLSSocket, material, null);
          if (!check.ok) return fail(`server certificate refused: ${check.reason}`);
        }
        settled = true;
        clearTimeout(deadline);
        socket.off('error', onError);
        this.#unreachable.clear();
        if (this.#closed) {
          // close() ran while we were connecting: nothing may keep this socket (or the process) alive.
          socket.destroy();
          this.#connecting = null;
          reject(new ClientError('SHUTDOWN', 'Client closed'));
          return;
        }
        const connection = new FramedConnection<ClientResponse>(socket, this.#wire, {
          frameBytesMax: this.#o.frameBytesMax,
          inflightBytesMax: this.#o.frameBytesMax * 4 + controlBytesReserved,
          frameDeadlineMs: 30_000,
          logger: this.#o.logger ?? quietLogger,
          label: `server ${address}`,
          onMessage: (response, c) => this.#onResponse(response, c),
          onClose: (reason, c) => this.#onClose(c, reason),
        });
        const liveness = new KeepAlive(
          this.#o.keepAliveIntervalMs,
          this.#o.keepAliveTimeoutMs,
          Date.now(),
        );
        this.#liveness.set(connection, { keepAlive: liveness, address });
        // Any byte counts as a sign of life, also part of a large answer still arriving.
        socket.on('data', () => liveness.heard(Date.now()));
        // The token goes first: the port reads nothing of ours before it (its answer, to id 0, is
        // ignored; a wrong token makes every request on the connection fail UNAUTHENTICATED).
        if (this.#o.token !== undefined) {
          connection.send(
            { type: 'auth', id: 0, session: 0, sequence: 0, token: this.#o.token },
            'control',
          );
        }
        this.#connection = connection;
        this.#connecting = null;
        resolve();
        // A new member for the session: it sends the events not yet acknowledged, and then the
        // new ones, once a request of the session reaches it.
        if (this.#sessionId !== 0 && this.#sessionLost === null) this.#sendKeepAlive(true);
      });
    });
    return this.#connecting;
  }

  /**
   * With `failFastUnreachable`, once every server found nobody there: fail the requests never
   * sent (outside a session) at once, naming each address and why.
   */
  #failIfUnreachable(): void {
    if (!this.#o.failFastUnreachable || this.#closed) return;
    if (!this.#servers.every((a) => this.#unreachable.has(a))) return;
    const why = this.#servers.map((a) => `${a} ${this.#unreachable.get(a)}`).join(', ');
    const failing = this.#queue.filter((o) => !o.inSession && !o.everSent && !o.settled);
    if (failing.length === 0) return;
    this.#queue = this.#queue.filter((o) => !failing.includes(o));
    for (const o of failing) {
      o.reject(new ClientError('NO_LEADER', `No server reachable: ${why}`));
    }
  }

  #onResponse(response: ClientResponse, c: FramedConnection<ClientResponse>): void {
    if (response.type === 'closing') return this.#onClosing(c, response);
    if (response.type === 'event') return this.#onEventMessage(response, c);
    const o = this.#outstanding.get(response.id);
    // Unknown ids are answers to pings (and to requests that expired): the bytes were the point.
    if (o === undefined || o.connection !== c) return;
    this.#untrack(response.id);
    if (response.type === 'ok') {
      const answer = { index: response.index, output: response.output };
      if (response.leaderId !== undefined) this.#leaderId = response.leaderId;
      if (
        response.leaderAddress !== undefined && this.#o.preferLeader && c === this.#connection &&
        !this.#suspected(response.leaderAddress)
      ) this.#moveTo(response.leaderAddress);
      const eventIndex = response.eventIndex ?? 0;
      if (o.inSession && eventIndex > this.#eventAck && this.#o.eventWaitMsMax > 0) {
        // Events its command published have not all been delivered yet (they come from the
        // session's member): the answer waits for them, a bounded time.
        const held = {
          eventIndex,
          deliver: () => o.resolve(answer),
          timer: setTimeout(() => {
            this.#heldAnswers = this.#heldAnswers.filter((h) => h !== held);
            held.deliver();
          }, this.#o.eventWaitMsMax),
        };
        this.#heldAnswers.push(held);
      } else o.resolve(answer);
    } else this.#onError(o, response);
    this.#closeIfDrained(c);
  }

  /** Close `c` if it was left for another server and owes no more answers. */
  #closeIfDrained(c: FramedConnection<ClientResponse> | null): void {
    if (c === null || !this.#draining.has(c)) return;
    if (this.#sentOn.has(c)) return;
    this.#draining.delete(c);
    c.close(null, 'info');
  }

  #onError(o: Outstanding, e: ErrorResponse): void {
    if (e.leaderId !== null) this.#leaderId = e.leaderId;
    // A session command is sent again after anything but a final answer, whatever its deadline:
    // the session applies it once. Anything else only after a refusal, until its deadline.
    const retry = !this.#closed &&
      (o.inSession
        ? !finalSessionCodes.has(e.code)
        : retryableCodes.has(e.code) && Date.now() < o.deadlineMs);
    if (!retry) {
      const error = new ClientError(e.code, e.message, e.leaderId);
      o.reject(error);
      if (o.inSession && e.code === 'UNKNOWN_SESSION') this.#loseSession(o.request.session, error);
      return;
    }
    // Only an answer on the current connection moves the client: refusals still arriving on a
    // connection it already left would otherwise move it again, away from the leader it found.
    const current = o.connection !== null && o.connection === this.#connection;
    // A hint naming a server the keep-alive just gave up on is stale (the member giving it has not
    // yet noticed that its leader stopped): following it would strand more commands there.
    const hint = e.code === 'NOT_LEADER' && e.leaderAddress !== null &&
        !this.#suspected(e.leaderAddress)
      ? e.leaderAddress
      : null;
    if (current && hint !== null) {
      this.#moveTo(hint);
    } else if (
      current && (e.code === 'NO_LEADER' || e.code === 'NOT_LEADER' || e.code === 'SHUTDOWN')
    ) this.#moveTo(null);
    o.sent = false;
    if (retryableCodes.has(e.code)) o.refusal = e;
    o.attempts++;
    setTimeout(() => {
      if (this.#closed || o.settled) return;
      this.#queue.push(o);
      this.#flush();
    }, hint !== null ? 0 : this.#backoffMs(o));
  }

  /** The wait before `o`'s next attempt: doubling from `retryDelayMs`, up to `retryDelayMsMax`. */
  #backoffMs(o: Outstanding): number {
    const exponent = Math.min(o.attempts - 1, 20);
    return Math.min(this.#o.retryDelayMs * 2 ** Math.max(0, exponent), this.#o.retryDelayMsMax);
  }

  /** Switch to `address` (a leader hint), or to the next server. */
  #moveTo(address: string | null): void {
    const current = this.#servers[this.#serverIndex % this.#servers.length];
    if (address !== null) {
      if (address === current) return;
      if (!this.#servers.includes(address)) this.#servers.push(address);
      this.#serverIndex = this.#servers.indexOf(address);
    } else {
      this.#nextServer();
    }
    const c = this.#connection;
    this.#connection = null;
    if (c === null) return;
    this.#draining.add(c);
    this.#closeIfDrained(c);
  }

  #onClose(c: FramedConnection<ClientResponse>, reason: string | null): void {
    this.#draining.delete(c);
    this.#liveness.delete(c);
    if (this.#connection === c) {
      this.#connection = null;
      this.#nextServer();
    }
    // What was sent on this connection has an unknown outcome: commands without a session fail;
    // session commands (applied at most once), reads and session requests are sent again, first.
    const why = reason === null ? '' : ` (${reason})`;
    const again: Outstanding[] = [];
    for (const [id, o] of [...this.#outstanding]) {
      if (o.connection !== c) continue;
      this.#untrack(id);
      o.connection = null;
      if (o.request.type === 'command' && !o.inSession) {
        o.reject(
          new ClientError(
            'TIMEOUT',
            `Connection to ${c.label} lost after the command was sent${why}: outcome unknown`,
            this.#leaderId,
          ),
        );
      } else {
        o.sent = false;
        again.push(o);
      }
    }
    this.#queue.unshift(...again);
    if (!this.#closed && this.#queue.length > 0) {
      setTimeout(() => this.#flush(), this.#o.retryDelayMs);
    }
  }

  /**
   * The server closed `c` for idleness (see `ClosingNotice`): it had no request of ours in flight
   * and read nothing after the notice, so every request still unanswered on `c` was never read,
   * hence never proposed. Send those again, commands too, in the order they were sent, to the same
   * server: it is alive and may well be the leader.
   */
  #onClosing(c: FramedConnection<ClientResponse>, notice: ClosingNotice): void {
    if (this.#connection === c) this.#connection = null;
    const unread: Outstanding[] = [];
    for (const [id, o] of [...this.#outstanding]) {
      if (o.connection !== c) continue;
      this.#untrack(id);
      o.connection = null;
      o.sent = false;
      unread.push(o);
    }
    (this.#o.logger ?? quietLogger).info(
      `${c.label} closed the connection: ${notice.reason}; ${unread.length} unread requests sent again`,
    );
    this.#queue.unshift(...unread);
    c.close(null, 'info');
    if (!this.#closed && this.#queue.length > 0) setTimeout(() => this.#flush(), 0);
  }

  // ---- Outstanding requests and keep-alive ----------------------------------------------------

  /** Record `o` as sent on `o.connection`. */
  #track(o: Outstanding): void {
    const c = o.connection!;
    this.#outstanding.set(o.request.id, o);
    const count = this.#sentOn.get(c) ?? 0;
    this.#sentOn.set(c, count + 1);
    if (count > 0) return;
    this.#liveness.get(c)?.keepAlive.started(Date.now());
    if (this.#keepAliveTimer === null && this.#o.keepAliveIntervalMs > 0) {
      // A quarter of the shorter period: a dead server is noticed at most that much late.
      const tickMs = Math.max(
        5,
        Math.floor(Math.min(this.#o.keepAliveIntervalMs, this.#o.keepAliveTimeoutMs) / 4),
      );
      this.#keepAliveTickMs = tickMs;
      this.#keepAliveTickedMs = 0;
      this.#keepAliveTimer = setInterval(() => this.#checkLiveness(), tickMs);
      this.#keepAliveTimer.unref();
    }
  }

  /** Forget request `id` as outstanding (no-op if it is not); returns it. */
  #untrack(id: number): Outstanding | undefined {
    const o = this.#outstanding.get(id);
    if (o === undefined) return undefined;
    this.#outstanding.delete(id);
    const c = o.connection;
    if (c !== null) {
      const count = (this.#sentOn.get(c) ?? 1) - 1;
      if (count > 0) this.#sentOn.set(c, count);
      else this.#sentOn.delete(c);
    }
    return o;
  }

  /**
   * One tick of the keep-alive timer. A tick that comes more than twice its period after the one
   * before found this process itself busy (a blocked event loop, a starved CPU): what arrived
   * meanwhile may not have been read yet (Node and Deno run timers before they read sockets), so
   * such a tick pings but gives up on no server; the next one, on time, decides. Without this, a
   * busy client at 256 commands in flight closed its live connection to a busy leader, and every
   * command in flight ended with an unknown outcome.
   */
  #checkLiveness(): void {
    if (this.#outstanding.size === 0 || this.#closed) return this.#stopKeepAlive();
    const nowMs = Date.now();
    const late = this.#keepAliveTickedMs > 0 &&
      nowMs - this.#keepAliveTickedMs > 2 * this.#keepAliveTickMs;
    this.#keepAliveTickedMs = nowMs;
    for (const [c, { keepAlive, address }] of [...this.#liveness]) {
      if (c.closed) continue;
      switch (keepAlive.check(nowMs, this.#sentOn.has(c))) {
        case 'ping':
          c.send({ type: 'ping', id: this.#nextId++, session: 0, sequence: 0 }, 'control');
          break;
        case 'dead':
          if (late) break;
          this.#suspectUntilMs.set(address, nowMs + suspectMs);
          c.close(
            `Keep-alive timeout: nothing heard in ${
              nowMs - keepAlive.pingSentMs
            } ms since a ping, limit ${this.#o.keepAliveTimeoutMs} ms`,
            'info',
          );
          break;
        case 'none':
          break;
      }
    }
  }

  /** Whether the keep-alive gave up on `address` less than `suspectMs` ago. */
  #suspected(address: string): boolean {
    const untilMs = this.#suspectUntilMs.get(address);
    if (untilMs === undefined) return false;
    if (Date.now() < untilMs) return true;
    this.#suspectUntilMs.delete(address);
    return false;
  }

  /** Move to the next server in the list, passing over suspected ones unless all are. */
  #nextServer(): void {
    const from = this.#serverIndex;
    for (let i = 1; i <= this.#servers.length; i++) {
      this.#serverIndex = from + i;
      if (!this.#suspected(this.#servers[this.#serverIndex % this.#servers.length]!)) return;
    }
    this.#serverIndex = from + 1;
  }

  #stopKeepAlive(): void {
    if (this.#keepAliveTimer !== null) clearInterval(this.#keepAliveTimer);
    this.#keepAliveTimer = null;
  }
}

const quietLogger: TransportLogger = { warn: () => {}, info: () => {}, debug: () => {} };

/** A client of the built-in key-value machine (`KvStateMachine`, `LmdbKvStateMachine`). */
export type KvClient = RaftClient<KvCommand, KvOutput, KvQuery, KvQueryOutput>;
