/**
 * `RaftServer`: one running member. It is the member driver (`lib/member/driver.ts`, the same
 * loop the simulator runs) wired to the LMDB storage, the TCP peer transport, real timers and the
 * client port, and little else: options, start-up and shut-down order, addresses.
 *
 * @example
 * ```ts
 * const server = await RaftServer.start({
 *   id: 'a', cluster: 'demo', dataDir: '/tmp/a', peerAddress: '127.0.0.1:7001', clientAddress: '127.0.0.1:8001',
 *   members: [{ id: 'a', type: 'ACTIVE', address: '127.0.0.1:7001', clientAddress: '127.0.0.1:8001' }],
 *   stateMachine: new KvStateMachine(),
 * });
 * const output = await server.propose({ op: 'put', key: 'k', value: 'v' });
 * await server.stop();
 * ```
 * @module
 */
import { mkdirSync } from 'node:fs';
import { parseAddress } from '../base/address.ts';
import type { Role } from '../core/raft.ts';
import {
  MemberDriver,
  type MemberRecovery,
  type MemberStatus,
  type ReadConsistency,
} from '../member/driver.ts';
import type { ServerEvent } from '../member/events.ts';
import type { MemberReply, MemberRequest, ReconfigureRequest } from '../base/member-requests.ts';
import { type ClientErrorCode, clientErrorCodes } from '../base/client-protocol.ts';
import { EdgeraftError, type ErrorCode } from '../base/errors.ts';
import type { Member } from '../base/messages.ts';
import type { MembersView } from '../member/reconfigure.ts';
import type { SessionEvent } from '../state/sessions.ts';
import { cborCodec, type CommandCodec } from '../state/codec.ts';
import type { AnyStateMachine } from '../state/disk-state-machine.ts';
import { LmdbStorage } from '../storage/lmdb.ts';
import { LogLimiter } from '../transport/log-limiter.ts';
import { TcpTransport } from '../transport/tcp.ts';
import type { TransportCounters } from '../transport/transport.ts';
import { ClientListener, tokenDigest } from './client-listener.ts';
import { TlsReloader } from '../transport/tls.ts';
import { type SnapshotSource, storageSnapshotSource } from './snapshot-reads.ts';
import { joinCluster } from './join.ts';
import { realClock } from './clock.ts';
import { unsafeFaultsFromEnvironment } from './unsafe-faults.ts';
import { OpsHttpServer, type ProbeResult } from './http.ts';
import { streamLogger, withFields } from './log.ts';
import { ServerMetrics } from './metrics.ts';
import type { StallCounts } from './stall-watch.ts';
import {
  driverOptionsOf,
  parseServerOptions,
  type RaftServerOptions,
  type RaftServerOptionsInput,
  ReadyOptionsSchema,
  type ServerLogger,
} from './options.ts';
import { parseOptions } from '../base/validate.ts';

/** What `status()` reports: the driver's view plus the bound addresses. */
export type ServerStatus = MemberStatus & {
  peerAddress: string;
  clientAddress: string;
  /** The peer transport's counters since start (messages sent, dropped, received) and bytes sent per member. */
  transport: TransportCounters & { sentBytesByPeer: Record<string, number> };
  /** Event-loop stalls of 100 ms or more since start (see `stall-watch.ts`). */
  eventLoop: StallCounts;
};

/** Wait between two attempts of `snapshot save` to take a snapshot, in milliseconds. */
const snapshotTakeRetryDelayMs = 20;

/** See the module comment. Create with `RaftServer.start`. */
export class RaftServer<
  Command = unknown,
  Output = unknown,
  Query = unknown,
  QueryOutput = unknown,
> {
  readonly id: string;
  /**
   * This member's snapshot as `snapshot save` reads it through the client port: its metadata and
   * size (after taking a new one, if asked), and its bytes by range (see `snapshot-reads.ts`).
   */
  readonly snapshots: SnapshotSource;
  readonly #o: RaftServerOptions;
  readonly #codec: CommandCodec<Command>;
  readonly #storage: LmdbStorage;
  readonly #driver: MemberDriver<Command, Output, Query, QueryOutput>;
  readonly #transport: TcpTransport;
  readonly #clients: ClientListener;
  readonly #log: ServerLogger;
  #closing: Promise<void> | null = null;
  #joining: Promise<void> = Promise.resolve();
  /** The metrics, always kept; the HTTP port that serves them, when `metricsAddress` is set. */
  #metrics: ServerMetrics | null = null;
  #ops: OpsHttpServer | null = null;
  #flushLogs: () => void = () => {};
  #stopRequested = false;
  /** The TLS material of the peer and client ports (absent: plain TCP). */
  #tls: TlsReloader[] = [];

  private constructor(
    o: RaftServerOptions,
    codec: CommandCodec<Command>,
    storage: LmdbStorage,
    driver: MemberDriver<Command, Output, Query, QueryOutput>,
    transport: TcpTransport,
    clients: ClientListener,
    log: ServerLogger,
  ) {
    this.id = o.id;
    this.#o = o;
    this.#codec = codec;
    this.#storage = storage;
    this.#driver = driver;
    this.#transport = transport;
    this.#clients = clients;
    this.#log = log;
    this.snapshots = storageSnapshotSource({
      storage,
      takeSnapshot: () => driver.takeSnapshot(),
      appliedIndex: () => driver.status().lastAppliedIndex,
      retryDelayMs: snapshotTakeRetryDelayMs,
    });
  }

  /**
   * Validate `options` (TypeError/RangeError naming the option), open the data directory, recover
   * the state machine from the latest snapshot, and start serving peers and clients.
   */
  static async start<C = unknown, O = unknown, Q = unknown, QO = unknown>(
    options: RaftServerOptionsInput & { stateMachine: AnyStateMachine<C, O, Q, QO> },
  ): Promise<RaftServer<C, O, Q, QO>> {
    const o = parseServerOptions(options);
    // Every line has the member id and its component; repeated ones are rate-limited by kind, one
    // limiter per component (the client port keeps its own), whose summaries carry the fields too.
    const base = o.logger ?? streamLogger({ member: o.id, level: o.logLevel, format: o.logFormat });
    const limiters: LogLimiter[] = [];
    const logOf = (component: string, limited = true) => {
      const tagged = withFields(base, { member: o.id, component }, o.logLevel);
      if (!limited) return tagged;
      const limiter = new LogLimiter(tagged, {
        linesPerKindMax: o.logLinesPerKindMax,
        intervalMs: o.logIntervalMs,
      });
      limiters.push(limiter);
      return limiter.logger();
    };
    const flushLogs = () => {
      for (const l of limiters) l.flush();
    };
    const log = logOf('server');
    const codec = (o.codec ?? cborCodec<C>()) as CommandCodec<C>;
    const peer = parseAddress(o.peerAddress, { portZero: true });
    const stallLog = logOf('member');
    const metrics = new ServerMetrics(o.id, (stallMs) =>
      stallLog.warn(
        `event loop blocked for ${stallMs} ms: no heartbeats sent, no client answered meanwhile`,
        { stallMs },
      ));
    // The probes answer 503 "starting" until the member is serving; bound first, so that a bad
    // metrics port is refused before anything is created on disk.
    let serving: RaftServer<C, O, Q, QO> | null = null;
    const starting: ProbeResult = { ok: false, reason: 'starting' };
    const ops = o.metricsAddress === undefined ? null : await OpsHttpServer.start({
      address: o.metricsAddress,
      connectionsMax: o.metricsConnectionsMax,
      requestDeadlineMs: o.metricsRequestDeadlineMs,
      logger: logOf('http'),
      routes: {
        metrics: () => serving?.metricsText() ?? null,
        health: () => serving === null ? starting : serving.#health(),
        ready: () => serving === null ? starting : serving.#ready(),
      },
    });
    let storage: LmdbStorage;
    try {
      mkdirSync(o.dataDir, { recursive: true });
      storage = await LmdbStorage.open({ path: o.dataDir });
    } catch (error) {
      await ops?.close();
      throw error;
    }
    let transport: TcpTransport | null = null;
    let clients: ClientListener | null = null;
    let driver: MemberDriver<C, O, Q, QO> | null = null;
    const reloaders: TlsReloader[] = [];
    try {
      const tlsLog = logOf('tls');
      const peerTls = o.peerTls === undefined ? null : new TlsReloader(
        o.peerTls,
        { ca: 'peerTls.ca', cert: 'peerTls.cert', key: 'peerTls.key' },
        tlsLog,
        o.tlsReloadMs,
      );
      if (peerTls !== null) reloaders.push(peerTls);
      const clientTls = o.clientTls === undefined ? null : new TlsReloader(
        o.clientTls,
        { ca: 'clientTls.ca', cert: 'clientTls.cert', key: 'clientTls.key' },
        tlsLog,
        o.tlsReloadMs,
      );
      if (clientTls !== null) reloaders.push(clientTls);
      transport = await TcpTransport.start({
        ...(peerTls === null ? {} : { tls: peerTls }),
        cluster: o.cluster,
        member: o.id,
        host: peer.host,
        port: peer.port,
        frameBytesMax: o.frameBytesMax,
        inflightBytesMax: o.peerInflightBytesMax,
        // A member that comes back is dialled again within an election timeout.
        reconnectDelayMsMax: Math.min(o.tickMs * o.electionTicks, 3_600_000),
        // A heartbeat unanswered for a few election timeouts (at least a second): redial.
        answerDeadlineMs: Math.min(Math.max(1_000, 4 * o.tickMs * o.electionTicks), 3_600_000),
        logger: logOf('transport'),
      });
      transport.onRoundTrip((member, ms) => metrics.observeRoundTrip(member, ms));
      const planted = unsafeFaultsFromEnvironment(); // a testing hook, unset in real use
      driver = await MemberDriver.open<C, O, Q, QO>({
        id: o.id,
        storage,
        transport,
        clock: realClock,
        random: Math.random,
        stateMachine: o.stateMachine as AnyStateMachine<C, O, Q, QO>,
        codec,
        options: driverOptionsOf(o),
        logger: logOf('member'),
        meter: metrics.meter,
        ...(o.members === undefined ? {} : { members: o.members }),
        ...(planted === undefined ? {} : { unsafeFaults: planted }),
      });
      const d = driver;
      transport.onMessage((m) => d.receive(m));
      clients = await ClientListener.start({
        address: o.clientAddress,
        frameBytesMax: o.frameBytesMax,
        connectionsMax: o.clientConnectionsMax,
        requestsPerConnectionMax: o.clientRequestsPerConnectionMax,
        frameDeadlineMs: o.clientFrameDeadlineMs,
        firstRequestDeadlineMs: o.clientFirstRequestDeadlineMs,
        idleDeadlineMs: o.clientIdleDeadlineMs,
        logLimits: { linesPerKindMax: o.logLinesPerKindMax, intervalMs: o.logIntervalMs },
        logger: logOf('client', false),
        tls: clientTls,
        auth: o.clientAuth,
        tokenDigest: o.clientToken === undefined ? null : tokenDigest(o.clientToken),
      });
      const server = new RaftServer<C, O, Q, QO>(o, codec, storage, d, transport, clients, log);
      server.#metrics = metrics;
      server.#ops = ops;
      server.#flushLogs = flushLogs;
      server.#tls = reloaders;
      clients.serve(server as unknown as RaftServer);
      d.onEvent((e) => metrics.onEvent(e));
      d.onEvent((e) => {
        // A failed member (storage error, bug) stops serving at once: its ports close.
        if (e.type === 'failed') void server.#close();
      });
      d.start();
      metrics.stalls.start();
      serving = server;
      log.info(
        `serving: peer ${transport.address}, client ${clients.address}${
          ops === null ? '' : `, metrics ${ops.address}`
        }`,
        {
          peerAddress: transport.address,
          clientAddress: clients.address,
          ...(ops === null ? {} : { metricsAddress: ops.address }),
        },
      );
      if (o.join !== undefined && !d.configured) {
        server.#joining = joinCluster({
          servers: o.join,
          id: o.id,
          type: o.joinAs,
          address: transport.address,
          clientAddress: clients.address,
          ...(o.clientTls === undefined ? {} : { tls: o.clientTls }),
          ...(o.clientToken === undefined ? {} : { token: o.clientToken }),
          stopped: () => server.#closing !== null,
          log,
        }).then((members) => {
          if (members !== null) d.learnPeers(members);
        });
        server.#joining.catch(() => {}); // logged; `joined` reports it
      }
      return server;
    } catch (error) {
      await driver?.stop().catch(() => {});
      await clients?.close().catch(() => {});
      await transport?.close().catch(() => {});
      await ops?.close().catch(() => {});
      for (const r of reloaders) r.close();
      await storage.close();
      flushLogs();
      throw error;
    }
  }

  /**
   * Settles once a member started with `join` was added to the cluster (at once for any other):
   * rejects when the change was refused for good.
   */
  get joined(): Promise<void> {
    return this.#joining;
  }

  /** The bound metrics address (`host:port`), or null without `metricsAddress`. */
  get metricsAddress(): string | null {
    return this.#ops?.address ?? null;
  }

  /**
   * Every metric in the Prometheus text exposition format, as `GET /metrics` answers it (to
   * serve from an HTTP server of your own). See the README's "Metrics, health and logs".
   */
  metricsText(): string {
    const traffic = this.#transport.peerTraffic();
    return this.#metrics!.render({
      status: this.#driver.status(),
      failed: this.#driver.failure !== null,
      peers: traffic,
      clientConnections: this.#clients.connectionCount,
      clientConnectionsShed: this.#clients.shedCount,
      clientConnectionsRefused: this.#clients.refusedCount,
    });
  }

  /** `/health`: running, not failed, and a leader known (a member stopping gracefully still is). */
  #health(): ProbeResult {
    const d = this.#driver;
    if (d.failure !== null) return { ok: false, reason: `failed: ${d.failure.message}` };
    if (d.stopped) return { ok: false, reason: 'stopped' };
    if (d.leaderHint().leaderId === null) return { ok: false, reason: 'no leader' };
    return { ok: true };
  }

  /**
   * `/ready`: started (storage open, ports bound), not stopping, and a leader known, so that
   * requests sent here are served (a follower forwards them to the leader). A member that is
   * stopping is not ready at once, so that a load balancer stops sending it work.
   */
  #ready(): ProbeResult {
    if (this.#stopRequested && this.#driver.failure === null) {
      return { ok: false, reason: 'stopping' };
    }
    return this.#health();
  }

  /**
   * Re-read the TLS files of the peer and client ports now (certificate rotation without a
   * restart; `serve` calls it on SIGHUP, and the files are also polled every `tlsReloadMs`). New
   * connections use the new certificates. False when some file could not be read (logged; the
   * previous certificates stay) or there is no TLS.
   */
  reloadTls(): boolean {
    let ok = this.#tls.length > 0;
    for (const r of this.#tls) ok = r.reload() && ok;
    return ok;
  }

  /** The bound peer address (`host:port`). */
  get peerAddress(): string {
    return this.#transport.address;
  }

  /** The bound client address (`host:port`). */
  get clientAddress(): string {
    return this.#clients.address;
  }

  get role(): Role {
    return this.#driver.role;
  }

  /**
   * Resolves once this member knows a leader that can take writes (a leader exists and has
   * committed an entry of its term), with that leader's id and term; from then on `propose` on
   * the leader and `query` anywhere succeed unless leadership moves again. Rejects with
   * `TimeoutError` naming the limit if that does not happen within `timeoutMs` (10 s by default),
   * and `ShutdownError` if the member stops first. A fresh cluster needs a majority of its
   * members started, and each refuses votes for two election timeouts after its first start.
   *
   * @example
   * ```ts
   * const { leaderId } = await server.ready({ timeoutMs: 5_000 });
   * if (leaderId === server.status().id) await server.propose(command);
   * ```
   */
  ready(options: { timeoutMs?: number } = {}): Promise<{ leaderId: string; term: number }> {
    const { timeoutMs } = parseOptions(ReadyOptionsSchema, options, 'RaftServer.ready');
    return this.#driver.ready(timeoutMs);
  }

  /**
   * Propose a command. Resolves with the state machine's output for the command's own log index,
   * or rejects: `NotLeaderError` (with the leader hint), `ProposalDroppedError`,
   * `LeadershipTransferError`, `ShutdownError` (refused: certainly not applied, retryable);
   * `ApplicationError` (the machine threw); `TimeoutError`, `OutcomeUnknownError` (outcome
   * unknown: not retryable without a session).
   */
  async propose(command: Command): Promise<Output> {
    return (await this.proposeWithIndex(command)).output;
  }

  /** Like `propose`, also returning the log index the command was applied at. */
  proposeWithIndex(command: Command): Promise<{ index: number; output: Output }> {
    return this.#driver.propose(this.#codec.encode(command));
  }

  /** Propose an already-encoded command. */
  proposeBytes(data: Uint8Array): Promise<{ index: number; output: Output }> {
    return this.#driver.propose(data);
  }

  /**
   * A client's request as the client port hands it over (see `lib/base/member-requests.ts`): a
   * command in a session (exactly once) or not, a session's registration, keep-alive or
   * unregistration, or a query at a consistency level. Any member takes it: one that is not the
   * leader forwards it to the leader and relays the answer. Never rejects; a failure is a reply
   * with its error code.
   */
  handle(request: MemberRequest): Promise<MemberReply> {
    return this.#driver.handle(request);
  }

  /**
   * Add a member (as PASSIVE by default, or RESERVE: a member becomes ACTIVE only by `promote`,
   * once it caught up). Any member takes it and hands it to the leader; resolves with the new
   * members once the change is committed. A retried join of a member already there resolves at
   * once. Rejects with an `EdgeraftError`: CONFIG_CHANGE_IN_PROGRESS, NOT_LEADER/NO_LEADER
   * (retryable: nothing was proposed), CONFIG_CHANGE_INVALID (not retryable).
   */
  join(member: {
    id: string;
    type?: 'PASSIVE' | 'RESERVE' | 'INACTIVE';
    address: string;
    clientAddress?: string;
  }): Promise<Member[]> {
    return this.#reconfigure({
      kind: 'reconfigure',
      op: 'join',
      id: member.id,
      type: member.type ?? 'PASSIVE',
      address: member.address,
      ...(member.clientAddress === undefined ? {} : { clientAddress: member.clientAddress }),
    });
  }

  /** Remove member `id` (see `join` for the answer and errors). A leader that leaves steps down. */
  leave(id: string): Promise<Member[]> {
    return this.#reconfigure({ kind: 'reconfigure', op: 'leave', id });
  }

  /**
   * Member `id` one type up (INACTIVE → RESERVE → PASSIVE → ACTIVE). To ACTIVE only once caught
   * up: else NOT_CAUGHT_UP (retryable).
   */
  promote(id: string): Promise<Member[]> {
    return this.#reconfigure({ kind: 'reconfigure', op: 'promote', id });
  }

  /** Member `id` one type down. Never below `activeMembersMin` ACTIVE members. */
  demote(id: string): Promise<Member[]> {
    return this.#reconfigure({ kind: 'reconfigure', op: 'demote', id });
  }

  /** The leader's view of the members: types, who feeds whom, each passive member's lag. */
  async members(): Promise<MembersView> {
    const reply = await this.#driver.members();
    if (!reply.ok) throw errorOfReply(reply);
    return reply.output as MembersView;
  }

  async #reconfigure(request: ReconfigureRequest): Promise<Member[]> {
    const reply = await this.#driver.handle(request);
    if (!reply.ok) throw errorOfReply(reply);
    return (reply.output as { members: Member[] }).members;
  }

  /**
   * Listen to the events state machines publish to client sessions, as this member applies them.
   * Returns an unsubscribe function.
   */
  onSessionEvent(listener: (session: number, event: SessionEvent) => void): () => void {
    return this.#driver.onSessionEvent(listener);
  }

  /** The unacknowledged events of `session`, oldest first. */
  sessionEvents(session: number): readonly SessionEvent[] {
    return this.#driver.sessionEvents(session);
  }

  /** The index of the last event published to `session` as applied here (0: none). */
  sessionEventIndex(session: number): number {
    return this.#driver.sessionEventIndex(session);
  }

  /**
   * A read at the given consistency: resolves once this member's state machine is current enough,
   * with `query`'s answer. `linearizable` confirms leadership with a majority first; `lease` uses
   * the leader's lease; `sequential` answers from local state at once.
   */
  query(query: Query, consistency: ReadConsistency = 'linearizable'): Promise<QueryOutput> {
    return this.#driver.query(query, consistency);
  }

  /**
   * Resolves, with an index, once every entry in the leader's log at the call (including
   * proposals not yet committed) is applied here. Rejects with `NotLeaderError` on a follower and
   * `TimeoutError` if that is not done within `proposalTimeoutMs` (leadership lost meanwhile).
   */
  barrier(): Promise<number> {
    return this.#driver.barrier();
  }

  /** Hand leadership to `to` (resolves when it is leader, rejects after two election timeouts). */
  transferLeadership(to: string): Promise<void> {
    return this.#driver.transferLeadership(to);
  }

  /** Snapshot the state machine now and compact the log below it (keeping the trailing entries). */
  takeSnapshot(): Promise<number> {
    return this.#driver.takeSnapshot();
  }

  /** Role, term, leader, commit index, last applied, members and replication progress. */
  status(): ServerStatus {
    return {
      ...this.#driver.status(),
      peerAddress: this.peerAddress,
      clientAddress: this.clientAddress,
      transport: {
        ...this.#transport.counters,
        sentBytesByPeer: this.#transport.sentBytesByPeer(),
      },
      eventLoop: this.#metrics?.stalls.snapshot() ?? { stalls: 0, longestMs: 0, totalMs: 0 },
    };
  }

  /**
   * Where this member started from: for a state machine on disk, the applied index it held
   * (`machineAppliedIndex`) and so how little of the log it applies again (see `MemberRecovery`).
   */
  get recovery(): MemberRecovery {
    return this.#driver.recovery;
  }

  /** The member that this one believes leads, with its client address when known. */
  leaderHint(): { leaderId: string | null; leaderAddress: string | null } {
    return this.#driver.leaderHint();
  }

  /**
   * Listen to events (role, term and leader changes, snapshots taken and installed, failure,
   * stop), each with a sequence number, in order; none is dropped. Returns an unsubscribe function.
   */
  onEvent(listener: (event: ServerEvent) => void): () => void {
    return this.#driver.onEvent(listener);
  }

  /** The retained events after sequence number `seq` (for catching up after a gap). */
  eventsSince(seq: number): ServerEvent[] {
    return this.#driver.eventsSince(seq);
  }

  /**
   * Stop gracefully: refuse new proposals, let in-flight ones settle (up to `stopGraceMs`), end
   * the rest with an unknown outcome, then close the ports and the files. Idempotent.
   */
  async stop(): Promise<void> {
    this.#stopRequested = true;
    await this.#driver.stop();
    await this.#close();
    // A failed member kept its metrics port open (it says why it failed) until now.
    await this.#ops?.close();
    this.#flushLogs();
  }

  /** Close the ports, then the files (after the driver's writes ended). Idempotent. */
  #close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = (async () => {
        this.#metrics?.stalls.stop();
        await this.#driver.stop();
        await this.#clients.close();
        await this.#transport.close();
        for (const r of this.#tls) r.close();
        // After a failure the metrics port stays open, so that /health and /metrics say so,
        // until `stop()`.
        if (this.#stopRequested) await this.#ops?.close();
        await this.#storage.close();
        if (this.#driver.failure !== null) this.#log.warn('closed after the failure');
        this.#flushLogs();
      })();
    }
    return this.#closing;
  }
}

/** The error a member's refusal stands for. */
function errorOfReply(reply: Extract<MemberReply, { ok: false }>): EdgeraftError {
  const code = reply.code as ErrorCode;
  return new EdgeraftError(code, reply.message, clientErrorCodes[code as ClientErrorCode] ?? false);
}
