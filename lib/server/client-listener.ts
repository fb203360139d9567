/**
 * The server's client port: framed, validated client requests (see `lib/base/client-protocol.ts`),
 * answered on the same connection. A non-leader answers commands and leader reads with
 * NOT_LEADER and the leader's id and client address, or NO_LEADER when it knows none; both are
 * retryable. A `ping` is answered at once, without touching Raft. A bad frame closes that one
 * connection with a logged reason.
 *
 * No connection can hold the port: a frame must complete within `frameDeadlineMs` of its first
 * byte; a connection must complete its first request within `firstRequestDeadlineMs` and, once it
 * has no request in flight, is closed after `idleDeadlineMs` without one; and when
 * `connectionsMax` is reached a newcomer sheds the longest-idle connection with no request in
 * flight, so only a port full of connections that are all being served refuses anyone. A
 * connection closed for idleness gets a `closing` notice first, and only once every answer it was
 * owed has been handed to the socket: a client may then safely resend whatever is unanswered,
 * since nothing is read after the notice. Repeated log lines of one kind are rate-limited
 * (`LogLimiter`), so a flood of idlers costs a few lines.
 *
 * @example
 * ```ts
 * const listener = await ClientListener.start({
 *   address: '127.0.0.1:0', frameBytesMax: 1 << 23, connectionsMax: 1024,
 *   requestsPerConnectionMax: 4096, frameDeadlineMs: 10_000, firstRequestDeadlineMs: 5_000,
 *   idleDeadlineMs: 60_000, logLimits: { linesPerKindMax: 10, intervalMs: 10_000 },
 *   logger: console,
 * });
 * listener.serve(server);
 * await listener.close();
 * ```
 * @module
 */
import { listenRetrying } from '../transport/listen.ts';
import * as net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { clearInterval, setInterval } from 'node:timers';
import {
  type Answer,
  type ClientErrorCode,
  clientErrorCodes,
  type ClientRequest,
  ClientRequestSchema,
  type ClosingNotice,
  type EventMessage,
} from '../base/client-protocol.ts';
import type { MemberReply, MemberRequest } from '../base/member-requests.ts';
import type { SessionEvent } from '../state/sessions.ts';
import { EdgeraftError, NotLeaderError } from '../base/errors.ts';
import { MessageCodec } from '../transport/codec.ts';
import { FramedConnection } from '../transport/connection.ts';
import { LogLimiter, type LogLimits } from '../transport/log-limiter.ts';
import { controlBytesReserved } from '../transport/options.ts';
import { formatAddress, parseAddress } from '../base/address.ts';
import type { ServerLogger } from './options.ts';
import type { SnapshotSource } from './snapshot-reads.ts';
import {
  acceptTls,
  checkPeerCertificate,
  looksLikeTls,
  type TlsReloader,
} from '../transport/tls.ts';

/** What the listener needs from its server. */
export type ClientHandler = {
  /** A client's request at this member (see `lib/base/member-requests.ts`); never rejects. */
  handle(request: MemberRequest): Promise<MemberReply>;
  status(): unknown;
  leaderHint(): { leaderId: string | null; leaderAddress: string | null };
  /** Events published to sessions, as this member applies them; returns an unsubscribe. */
  onSessionEvent(listener: (session: number, event: SessionEvent) => void): () => void;
  /** A session's unacknowledged events, oldest first. */
  sessionEvents(session: number): readonly SessionEvent[];
  /** The index of the last event published to a session as applied here. */
  sessionEventIndex(session: number): number;
  /** This member's snapshot for `snapshot save` (absent: `snapshot` requests are refused). */
  snapshots?: SnapshotSource;
};

/** The listener's settings; the server passes its validated `client*` and `log*` options. */
export type ListenerOptions = {
  address: string;
  frameBytesMax: number;
  connectionsMax: number;
  requestsPerConnectionMax: number;
  frameDeadlineMs: number;
  firstRequestDeadlineMs: number;
  idleDeadlineMs: number;
  logLimits: LogLimits;
  logger: ServerLogger;
  /** TLS on the client port (null: plain TCP; TLS clients are then refused, and vice versa). */
  tls?: TlsReloader | null;
  /**
   * Who may read and write: anyone (`none`), clients presenting a certificate signed by the
   * `tls` CA (`cert`), or clients whose first frame is an `auth` with the token (`token`).
   */
  auth?: ClientAuth;
  /** With `auth: 'token'`: the SHA-256 digest of the token. */
  tokenDigest?: Uint8Array | null;
};

/** How the client port authenticates clients. */
export type ClientAuth = 'none' | 'cert' | 'token';

/** The SHA-256 digest of a bearer token: what the port keeps and compares. */
export function tokenDigest(token: string): Uint8Array {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** One accepted connection and what the deadlines and the shedding need to know of it. */
type Client = {
  connection: FramedConnection<ClientRequest>;
  socket: net.Socket;
  /** Requests received and not yet answered. Invariant: 0 <= inflightRequests. */
  inflightRequests: number;
  /** Requests received in full so far; while 0, `firstRequestDeadlineMs` applies. */
  requestsReceived: number;
  /** When it last did something: accepted, a request arrived, or its last answer was queued. */
  activeSinceMs: number;
  /** The listener is closing it for idleness: its close line is info, not a warning. */
  idleClose: boolean;
  /** Sessions whose events go to this connection (it sent their latest request here). */
  sessions: Set<number>;
  /** Null once authenticated (or with no authentication); else why every request is refused. */
  unauthenticated: string | null;
};

/** See the module comment. */
export class ClientListener {
  readonly #o: ListenerOptions;
  readonly #server: net.Server;
  readonly #codec: MessageCodec<typeof ClientRequestSchema>;
  readonly #limiter: LogLimiter;
  readonly #log: ServerLogger;
  /**
   * Every open connection, least recently active first (`#touch` moves one to the end), so the
   * connection to shed is the first with no request in flight.
   */
  readonly #clients = new Map<FramedConnection<ClientRequest>, Client>();
  /**
   * Accepted sockets of a TLS port whose handshake is not done yet, with when each was accepted,
   * oldest first: they count in `connectionsMax` (else a flood of handshakes that never finish
   * would hold descriptors without bound) and may be shed like idle connections.
   */
  readonly #handshaking = new Map<net.Socket, number>();
  readonly #sweep: ReturnType<typeof setInterval>;
  /** Bytes of answers queued or in the socket per connection; a larger backlog closes it. */
  readonly #inflightBytesMax: number;
  #handler: ClientHandler | null = null;
  #unsubscribe: (() => void) | null = null;
  /** Where each session's events go: the connection that last carried one of its requests. */
  readonly #sessionClients = new Map<number, Client>();
  #address = '';
  /** Connections shed at the limit, and newcomers refused because every connection was busy. */
  shedCount = 0;
  refusedCount = 0;

  private constructor(o: ListenerOptions) {
    this.#o = o;
    this.#inflightBytesMax = o.frameBytesMax * 4 + controlBytesReserved;
    this.#limiter = new LogLimiter(o.logger, o.logLimits);
    this.#log = this.#limiter.logger();
    this.#codec = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });
    this.#server = net.createServer((socket) => this.#accept(socket));
    // One timer checks every deadline, instead of one timer per connection or per frame; a
    // deadline is enforced at most a quarter of itself late.
    const deadlineMsMin = Math.min(o.frameDeadlineMs, o.firstRequestDeadlineMs, o.idleDeadlineMs);
    const sweepMs = Math.max(10, Math.min(1_000, Math.floor(deadlineMsMin / 4)));
    this.#sweep = setInterval(() => this.#checkDeadlines(), sweepMs);
    this.#sweep.unref();
  }

  static async start(o: ListenerOptions): Promise<ClientListener> {
    const listener = new ClientListener(o);
    const { host, port } = parseAddress(o.address, { portZero: true });
    await listenRetrying(listener.#server, port, host, (m) => listener.#log.warn(m));
    // Once listening, an error (out of file descriptors under a connection flood: `accept
    // EMFILE`) is logged, rate-limited, and must not end the process.
    listener.#server.on('error', (error) => listener.#log.warn(`Listener error: ${error.message}`));
    const bound = listener.#server.address() as net.AddressInfo;
    listener.#address = formatAddress(host, bound.port);
    return listener;
  }

  get address(): string {
    return this.#address;
  }

  /** Open connections, TLS handshakes under way included. */
  get connectionCount(): number {
    return this.#clients.size + this.#handshaking.size;
  }

  serve(handler: ClientHandler): void {
    this.#handler = handler;
    this.#unsubscribe = handler.onSessionEvent((session, event) => {
      const client = this.#sessionClients.get(session);
      if (client !== undefined) this.#sendEvent(client, session, event);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const c of [...this.#clients.keys()]) c.close(null, 'info');
    for (const socket of [...this.#handshaking.keys()]) socket.destroy();
    this.#handshaking.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#limiter.flush();
  }

  #accept(raw: net.Socket): void {
    const label = `client ${raw.remoteAddress}:${raw.remotePort}`;
    const material = this.#o.tls ?? null;
    // A plaintext port: the connection is a client at once (a TLS handshake on it is refused by
    // `checkFirstChunk`, before frame parsing would misread it).
    if (material === null) return this.#start(raw, label, null);
    raw.on('error', () => {});
    if (!this.#admit(raw, label)) return;
    this.#handshaking.set(raw, Date.now());
    const refuse = (reason: string) => {
      if (!this.#handshaking.delete(raw)) return; // shed at the limit already, and logged
      this.refusedCount += 1;
      this.#log.warn(`Refusing ${label}: ${reason}`);
    };
    // Until its TLS handshake completes the connection is no client yet: the first-request
    // deadline applies to the handshake, through a timer of its own.
    const deadline = setTimeout(() => {
      refuse(
        `First request deadline exceeded: no TLS handshake in ${this.#o.firstRequestDeadlineMs} ms`,
      );
      raw.destroy();
    }, this.#o.firstRequestDeadlineMs);
    deadline.unref();
    raw.once('close', () => {
      clearTimeout(deadline);
      this.#handshaking.delete(raw);
    });
    acceptTls(raw, () => material.current, (secure) => {
      clearTimeout(deadline);
      this.#handshaking.delete(raw);
      let unauthenticated: string | null = null;
      if (this.#o.auth === 'cert') {
        const check = checkPeerCertificate(secure, material.current, null);
        if (!check.ok) unauthenticated = `client certificate refused: ${check.reason}`;
      }
      this.#start(secure, label, unauthenticated);
    }, (reason) => {
      clearTimeout(deadline);
      refuse(reason);
    });
  }

  #start(socket: net.Socket, label: string, certRefusal: string | null): void {
    if (certRefusal !== null) this.#log.warn(`Unauthenticated ${label}: ${certRefusal}`);
    if (!this.#admit(socket, label)) return;
    const log = this.#log;
    // Filled in right below: the connection's logger needs the record, the record the connection.
    let client: Client | null = null;
    const connection = new FramedConnection<ClientRequest>(socket, this.#codec, {
      frameBytesMax: this.#o.frameBytesMax,
      inflightBytesMax: this.#inflightBytesMax,
      frameDeadlineMs: this.#o.frameDeadlineMs,
      logger: {
        warn: (m) => (client?.idleClose === true ? log.info(m) : log.warn(m)),
        info: (m) => log.info(m),
        debug: (m) => log.debug(m),
      },
      label,
      checkFirstChunk: (chunk) =>
        (this.#o.tls ?? null) === null && looksLikeTls(chunk)
          ? 'TLS handshake on a plaintext port: this member does not use TLS on its client port'
          : null,
      onMessage: (request, c) => this.#onRequest(request, c),
      onClose: (_reason, c) => {
        const gone = this.#clients.get(c);
        this.#clients.delete(c);
        if (gone === undefined) return;
        for (const session of gone.sessions) {
          if (this.#sessionClients.get(session) === gone) this.#sessionClients.delete(session);
        }
      },
    });
    client = {
      connection,
      socket,
      inflightRequests: 0,
      requestsReceived: 0,
      activeSinceMs: Date.now(),
      idleClose: false,
      sessions: new Set(),
      unauthenticated: this.#o.auth === 'token'
        ? 'not authenticated: this port requires a bearer token (RaftClient option token, --token-file)'
        : certRefusal,
    };
    if (!connection.closed) this.#clients.set(connection, client);
  }

  /**
   * Make room for `socket` at `connectionsMax` (TLS handshakes under way count): shed one idle
   * connection, or refuse it (destroyed, logged) when every connection is busy.
   */
  #admit(socket: net.Socket, label: string): boolean {
    if (this.#clients.size + this.#handshaking.size < this.#o.connectionsMax) return true;
    if (this.#shedOne()) return true;
    this.refusedCount += 1;
    this.#log.warn(
      `Refusing ${label}: all ${this.#clients.size} connections have requests in flight, limit ${this.#o.connectionsMax}`,
    );
    socket.destroy();
    return false;
  }

  /**
   * Shed the longest-idle connection with no request in flight, or a TLS handshake that started
   * earlier than it went idle; false if every connection is busy and none is handshaking.
   */
  #shedOne(): boolean {
    const nowMs = Date.now();
    const oldestHandshake = this.#handshaking.entries().next();
    for (const client of this.#clients.values()) {
      if (client.inflightRequests > 0) continue;
      if (!oldestHandshake.done && oldestHandshake.value[1] < client.activeSinceMs) break;
      this.shedCount += 1;
      this.#closeIdle(
        client,
        `Shed at the connection limit: idle ${
          nowMs - client.activeSinceMs
        } ms, the longest of ${this.#clients.size} connections, limit ${this.#o.connectionsMax}`,
        'warn',
      );
      return true;
    }
    if (oldestHandshake.done) return false;
    const [socket, sinceMs] = oldestHandshake.value;
    this.#handshaking.delete(socket);
    this.shedCount += 1;
    this.#log.warn(
      `Shed ${socket.remoteAddress}:${socket.remotePort} at the connection limit: TLS handshake unfinished after ${
        nowMs - sinceMs
      } ms, the oldest of ${this.#handshaking.size + 1}, limit ${this.#o.connectionsMax}`,
    );
    socket.destroy();
    return true;
  }

  /**
   * Close a connection with no request in flight. With every answer handed to the socket, the
   * `closing` notice goes last and nothing more is read, so its client knows that whatever it
   * sent since was never read. Answers still queued (a client that does not read) would be lost
   * behind the notice and the client would wrongly resend: then close without a notice, and the
   * client treats what it sent as of unknown outcome.
   */
  #closeIdle(client: Client, reason: string, level: 'warn' | 'info'): void {
    const c = client.connection;
    client.idleClose = level === 'info';
    const queuedBytes = c.inflightBytes - client.socket.writableLength;
    if (client.inflightRequests === 0 && queuedBytes === 0) {
      const notice: ClosingNotice = { type: 'closing', reason: reason.slice(0, 1024) };
      c.refuse(notice, reason);
    } else c.close(`${reason} (${queuedBytes} bytes of answers unsent)`, level);
  }

  #checkDeadlines(): void {
    const nowMs = Date.now();
    // Deleting the entry being visited (a close) is safe while iterating a Map.
    for (const client of this.#clients.values()) {
      client.connection.checkDeadline(nowMs);
      if (client.connection.closed || client.inflightRequests > 0) continue;
      const idleMs = nowMs - client.activeSinceMs;
      if (client.requestsReceived === 0 && idleMs > this.#o.firstRequestDeadlineMs) {
        this.#closeIdle(
          client,
          `First request deadline exceeded: no request in ${idleMs} ms, limit ${this.#o.firstRequestDeadlineMs} ms`,
          'warn',
        );
      } else if (idleMs > this.#o.idleDeadlineMs) {
        this.#closeIdle(
          client,
          `Idle deadline exceeded: no request in ${idleMs} ms, limit ${this.#o.idleDeadlineMs} ms`,
          'info',
        );
      }
    }
  }

  /** Mark `client` active now: it moves to the end of the shedding order. */
  #touch(client: Client): void {
    if (client.connection.closed) return;
    client.activeSinceMs = Date.now();
    this.#clients.delete(client.connection);
    this.#clients.set(client.connection, client);
  }

  #onRequest(request: ClientRequest, c: FramedConnection<ClientRequest>): void {
    const client = this.#clients.get(c);
    if (client === undefined) return;
    client.requestsReceived += 1;
    this.#touch(client);
    if (request.type === 'auth') {
      if (this.#o.auth !== 'token') {
        this.#reply(c, { type: 'ok', id: request.id, index: 0, output: null });
        return;
      }
      // Compare digests (equal lengths) in constant time: the token's bytes leak no timing.
      const expected = this.#o.tokenDigest!;
      if (timingSafeEqual(tokenDigest(request.token), expected)) {
        client.unauthenticated = null;
        this.#reply(c, { type: 'ok', id: request.id, index: 0, output: null });
        return;
      }
      client.unauthenticated = 'wrong bearer token';
      this.#log.warn(`Refusing ${c.label}: wrong bearer token`);
      return this.#refuseUnauthenticated(c, request.id, client.unauthenticated);
    }
    if (client.unauthenticated !== null) {
      return this.#refuseUnauthenticated(c, request.id, client.unauthenticated);
    }
    if (request.type === 'ping') {
      this.#reply(c, { type: 'ok', id: request.id, index: 0, output: null });
      return;
    }
    const handler = this.#handler;
    if (handler === null) return;
    if (client.inflightRequests >= this.#o.requestsPerConnectionMax) {
      this.#reply(
        c,
        errorResponse(
          request.id,
          'PROPOSAL_DROPPED',
          `Too many requests in flight: ${client.inflightRequests}, limit ${this.#o.requestsPerConnectionMax}`,
          handler,
        ),
      );
      return;
    }
    client.inflightRequests += 1;
    const done = (response: Answer) => {
      client.inflightRequests -= 1;
      // Queue the answer first: an idle deadline must never close a connection ahead of it.
      this.#reply(c, response);
      if (client.inflightRequests === 0) this.#touch(client);
    };
    if (request.type === 'status') {
      done({ type: 'ok', id: request.id, index: 0, output: handler.status() });
      return;
    }
    if (request.type === 'snapshot' || request.type === 'snapshotRead') {
      this.#snapshotRequest(request, handler).then(done);
      return;
    }
    if (request.session !== 0 && request.type !== 'register') this.#attach(client, request.session);
    handler.handle(memberRequestOf(request)).then(
      (reply) => {
        if (reply.ok && request.type === 'unregister') this.#detach(request.session);
        const answer = answerOf(request.id, reply, handler);
        if (answer.type === 'ok' && request.type === 'command' && request.session !== 0) {
          // The client holds this answer until it has delivered the events up to here (they may
          // reach it on another connection, after a move): an event published by a command
          // reaches the application before its answer.
          answer.eventIndex = handler.sessionEventIndex(request.session);
        }
        done(answer);
      },
      (error) => done(responseFor(request.id, error, handler)),
    );
  }

  /** Answer request `id` UNAUTHENTICATED: nothing of it is read or carried out. */
  #refuseUnauthenticated(c: FramedConnection<ClientRequest>, id: number, why: string): void {
    this.#reply(c, {
      type: 'error',
      id,
      code: 'UNAUTHENTICATED',
      message: `Unauthenticated: ${why}`,
      leaderId: null,
      leaderAddress: null,
    });
  }

  /** A `snapshot` or `snapshotRead` request, answered here about this member (never rejects). */
  async #snapshotRequest(
    request: Extract<ClientRequest, { type: 'snapshot' | 'snapshotRead' }>,
    handler: ClientHandler,
  ): Promise<Answer> {
    const source = handler.snapshots;
    if (source === undefined) {
      return errorResponse(
        request.id,
        'INTERNAL_ERROR',
        'This member serves no snapshots',
        handler,
      );
    }
    try {
      const output = request.type === 'snapshot'
        ? await source.info(request.take)
        : source.read(request.index, request.term, request.offsetBytes, request.bytesMax);
      return { type: 'ok', id: request.id, index: 0, output };
    } catch (error) {
      return responseFor(request.id, error, handler);
    }
  }

  /**
   * Send `session`'s events to `client` from now on. When they went elsewhere (or nowhere) until
   * now, send it the session's unacknowledged events first: the client delivers each once.
   */
  #attach(client: Client, session: number): void {
    if (this.#sessionClients.get(session) === client) return;
    this.#sessionClients.get(session)?.sessions.delete(session);
    this.#sessionClients.set(session, client);
    client.sessions.add(session);
    for (const event of this.#handler?.sessionEvents(session) ?? []) {
      this.#sendEvent(client, session, event);
    }
  }

  #detach(session: number): void {
    this.#sessionClients.get(session)?.sessions.delete(session);
    this.#sessionClients.delete(session);
  }

  #sendEvent(client: Client, session: number, event: SessionEvent): void {
    const c = client.connection;
    if (c.closed) return;
    const message: EventMessage = {
      type: 'event',
      session,
      eventIndex: event.eventIndex,
      index: event.index,
      name: event.name,
      payload: event.payload,
    };
    if (!c.send(message, 'control')) {
      c.close(
        `Events not read: ${c.inflightBytes} bytes in flight, limit ${this.#inflightBytesMax}`,
      );
    }
  }

  /**
   * Queue an answer. One that does not fit (a client that does not read its answers) closes the
   * connection at once, without a notice: a dropped answer followed by a later `closing` notice
   * would tell the client that a request carried out was never read, and it would resend it.
   */
  #reply(c: FramedConnection<ClientRequest>, response: Answer | EventMessage): void {
    if (c.closed || c.send(response, 'control')) return;
    c.close(
      `Answers not read: ${c.inflightBytes} bytes in flight, limit ${this.#inflightBytesMax}`,
    );
  }
}

/** The member's view of a client request (status and ping are answered by the port itself). */
function memberRequestOf(
  request: Exclude<
    ClientRequest,
    | { type: 'ping' }
    | { type: 'status' }
    | { type: 'snapshot' }
    | { type: 'snapshotRead' }
    | { type: 'auth' }
  >,
): MemberRequest {
  switch (request.type) {
    case 'command':
      return {
        kind: 'command',
        session: request.session,
        sequence: request.sequence,
        data: request.data,
      };
    case 'query':
      return {
        kind: 'query',
        consistency: request.consistency,
        minIndex: request.minIndex,
        data: request.data,
      };
    case 'register':
      return { kind: 'register', timeoutMs: request.timeoutMs };
    case 'keepAlive':
      return {
        kind: 'keepAlive',
        session: request.session,
        commandAck: request.commandAck,
        eventAck: request.eventAck,
      };
    case 'unregister':
      return { kind: 'unregister', session: request.session };
    case 'reconfigure': {
      const r: MemberRequest = { kind: 'reconfigure', op: request.op, id: request.member };
      if (request.memberType !== undefined) r.type = request.memberType;
      if (request.address !== undefined) r.address = request.address;
      if (request.clientAddress !== undefined) r.clientAddress = request.clientAddress;
      return r;
    }
    case 'members':
      return { kind: 'members' };
    case 'transferLeader':
      return { kind: 'transferLeader', id: request.member };
  }
}

/** A member's reply on the wire; an unknown error code is INTERNAL_ERROR. */
function answerOf(id: number, reply: MemberReply, handler: ClientHandler): Answer {
  if (reply.ok) {
    const answer: Answer = { type: 'ok', id, index: reply.index, output: reply.output };
    if (reply.duplicate === true) answer.duplicate = true;
    if (reply.forwardedTo !== undefined) {
      const hint = handler.leaderHint();
      if (hint.leaderId === reply.forwardedTo && hint.leaderAddress !== null) {
        answer.leaderAddress = hint.leaderAddress;
        answer.leaderId = hint.leaderId;
      }
    }
    return answer;
  }
  const code = (reply.code in clientErrorCodes ? reply.code : 'INTERNAL_ERROR') as ClientErrorCode;
  return errorResponse(id, code, reply.message, handler);
}

function errorResponse(
  id: number,
  code: ClientErrorCode,
  message: string,
  handler: ClientHandler,
): Answer {
  const hint = handler.leaderHint();
  return {
    type: 'error',
    id,
    code,
    message: message.slice(0, 4096),
    leaderId: hint.leaderId,
    leaderAddress: hint.leaderAddress,
  };
}

/** Map an error to the wire: typed library errors keep their code, anything else is INTERNAL_ERROR. */
function responseFor(id: number, error: unknown, handler: ClientHandler): Answer {
  if (error instanceof NotLeaderError) {
    return errorResponse(
      id,
      error.leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      error.message,
      handler,
    );
  }
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof EdgeraftError || typeof code === 'string') {
    const known: Record<string, ClientErrorCode> = {
      PROPOSAL_DROPPED: 'PROPOSAL_DROPPED',
      LEADERSHIP_TRANSFER: 'LEADERSHIP_TRANSFER',
      TIMEOUT: 'TIMEOUT',
      SHUTDOWN: 'SHUTDOWN',
      APPLICATION_ERROR: 'APPLICATION_ERROR',
      QUERY_ERROR: 'QUERY_ERROR',
      CONFIG_CHANGE_IN_PROGRESS: 'CONFIG_CHANGE_IN_PROGRESS',
      CONFIG_CHANGE_INVALID: 'CONFIG_CHANGE_INVALID',
      COMMAND_ERROR: 'COMMAND_ERROR',
      UNKNOWN_SESSION: 'UNKNOWN_SESSION',
      OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
      SNAPSHOT_CHANGED: 'SNAPSHOT_CHANGED',
    };
    const mapped = known[String(code)];
    if (mapped !== undefined) return errorResponse(id, mapped, message, handler);
  }
  return errorResponse(id, 'INTERNAL_ERROR', message, handler);
}
