/**
 * `RaftServer`: one running member. It drives the pure core with a timer, persists through the
 * LMDB storage, talks to peers through the TCP transport, applies committed entries to the user's
 * state machine, serves clients on its client port, and takes and ships snapshots.
 *
 * The loop (`#pump`) carries out each `Ready` in the core's order: messages that may leave now are
 * sent first — so the leader's own disk write runs in parallel with replication — then the
 * batch's writes are made durable, then the messages that depend on them (votes,
 * acknowledgements) leave, and only then is the core told (`advance`). A follower therefore
 * acknowledges only what is on disk. A storage failure stops the member: it never acknowledges
 * what it could not write.
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
import process from 'node:process';
import { clearInterval, clearTimeout, setImmediate, setInterval, setTimeout } from 'node:timers';
import { NotLeaderError, ShutdownError, StorageError, TimeoutError } from '../base/errors.ts';
import type { Configuration, Member, RaftMessage, SnapshotMeta } from '../base/messages.ts';
import { Raft, type RaftStatus, type Ready, type Role } from '../core/raft.ts';
import { cborCodec, type CommandCodec } from '../state/codec.ts';
import { type ApplyResult, StateMachineExecutor } from '../state/executor.ts';
import type { StateMachine } from '../state/state-machine.ts';
import { LmdbStorage } from '../storage/lmdb.ts';
import type { WriteBatch } from '../storage/storage.ts';
import { parseAddress } from '../base/address.ts';
import { TcpTransport } from '../transport/tcp.ts';
import { ClientListener } from './client-listener.ts';
import { EventLog, type ServerEvent } from './events.ts';
import {
  parseServerOptions,
  type RaftServerOptions,
  type RaftServerOptionsInput,
  type ServerLogger,
} from './options.ts';
import { SnapshotTransfers } from './snapshot-transfer.ts';

/** The default logger: one line per message on stderr, prefixed with the member id. */
function stderrLogger(id: string): ServerLogger {
  const line = (level: string, message: string) =>
    void process.stderr.write(`edgeraft ${id} ${level}: ${message}\n`);
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), debug: () => {} };
}

type PendingProposal = {
  term: number;
  deadlineMs: number;
  resolve: (result: { index: number; output: unknown }) => void;
  reject: (error: unknown) => void;
};

type PendingRead = { resolve: (index: number) => void; reject: (error: unknown) => void };

/** What `status()` reports: the core's view plus the server's. */
export type ServerStatus = RaftStatus & {
  lastAppliedIndex: number;
  snapshotIndex: number;
  /** Snapshots this member took of its own state machine since it started. */
  snapshotsTaken: number;
  /** Snapshots this member received from a leader and installed since it started. */
  snapshotsInstalled: number;
  peerAddress: string;
  clientAddress: string;
  pendingProposals: number;
  stopped: boolean;
};

/** See the module comment. Create with `RaftServer.start`. */
export class RaftServer {
  readonly id: string;
  readonly #o: RaftServerOptions;
  readonly #log: ServerLogger;
  readonly #codec: CommandCodec<unknown>;
  readonly #storage: LmdbStorage;
  readonly #raft: Raft;
  readonly #executor: StateMachineExecutor<unknown, unknown, unknown, unknown>;
  readonly #transport: TcpTransport;
  readonly #clients: ClientListener;
  readonly #events: EventLog;
  readonly #snapshots: SnapshotTransfers;
  readonly #pending = new Map<number, PendingProposal>();
  readonly #reads = new Map<number, PendingRead>();
  #readCounter = 0;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #sweeper: ReturnType<typeof setInterval> | null = null;
  #pumping = false;
  #pumpScheduled = false;
  /** Storage writes, chained so that they run (and become durable) one after another, in order. */
  #writeChain: Promise<void> = Promise.resolve();
  #writesInFlight = 0;
  #applyChain: Promise<unknown> = Promise.resolve();
  #handedToExecutor = 0;
  #snapshotIndex = 0;
  #snapshotting = false;
  #snapshotsTaken = 0;
  #snapshotsInstalled = 0;
  #configIndex = -1;
  #stopping = false;
  #stopped = false;
  #failure: Error | null = null;
  #lastRole: Role = 'follower';
  #lastTerm = 0;
  #lastLeader: string | null = null;

  private constructor(
    o: RaftServerOptions,
    storage: LmdbStorage,
    raft: Raft,
    executor: StateMachineExecutor<unknown, unknown, unknown, unknown>,
    transport: TcpTransport,
    clients: ClientListener,
    log: ServerLogger,
    codec: CommandCodec<unknown>,
  ) {
    this.id = o.id;
    this.#o = o;
    this.#storage = storage;
    this.#raft = raft;
    this.#executor = executor;
    this.#transport = transport;
    this.#clients = clients;
    this.#log = log;
    this.#codec = codec;
    this.#events = new EventLog(o.eventsRetainedMax);
    this.#snapshots = new SnapshotTransfers({
      id: o.id,
      storage,
      chunkBytes: o.snapshotChunkBytes,
      send: (m) => this.#transport.send(m),
      currentTerm: () => this.#raft.term,
      leaderId: () => this.#raft.leaderId,
      reportFailed: (to) => {
        this.#raft.reportSnapshotFailed(to);
        this.#schedulePump();
      },
      install: (meta, chunks) => this.#installSnapshot(meta, chunks),
      log,
    });
    this.#lastTerm = raft.term;
  }

  /**
   * Validate `options` (TypeError/RangeError naming the option), open the data directory, recover
   * the state machine from the latest snapshot, and start serving peers and clients.
   */
  static async start(options: RaftServerOptionsInput): Promise<RaftServer> {
    const o = parseServerOptions(options);
    const log = o.logger ?? stderrLogger(o.id);
    const codec = (o.codec ?? cborCodec<unknown>()) as CommandCodec<unknown>;
    mkdirSync(o.dataDir, { recursive: true });
    const storage = await LmdbStorage.open({ path: o.dataDir });
    let onApplied: (result: ApplyResult<unknown>) => void = () => {};
    const executor = new StateMachineExecutor(
      o.stateMachine as StateMachine<unknown, unknown, unknown, unknown>,
      {
        codec,
        onApplied: (result) => onApplied(result),
      },
    );
    try {
      // Rebuild the state machine from the newest snapshot data. The data is written before its
      // metadata, so after a crash between the two the data is the newer one (and the only one
      // kept); its log time then comes from its entry, which compaction has not reached.
      const snapshot = storage.snapshotMeta();
      const data = storage.snapshots.info();
      let appliedIndex = 0;
      if (snapshot !== null && (data === null || data.index < snapshot.index)) {
        throw new StorageError(
          `Snapshot data missing: metadata at index ${snapshot.index}, data at ${
            data?.index ?? 'none'
          }`,
        );
      }
      if (data !== null) {
        const timeMs = snapshot !== null && snapshot.index === data.index
          ? snapshot.timeMs
          : storage.entries(data.index, data.index + 1, Infinity)[0]?.timeMs ?? snapshot?.timeMs ??
            0;
        await executor.restore(
          { index: data.index, term: data.term, timeMs },
          storage.snapshots.read(),
        );
        appliedIndex = data.index;
      }
      const fresh = storage.lastIndex() === 0 && storage.hardState().term === 0;
      const raft = new Raft(storage, {
        id: o.id,
        random: Math.random,
        electionTicks: o.electionTicks,
        heartbeatTicks: o.heartbeatTicks,
        messageBytesMax: o.messageBytesMax,
        inflightMessagesMax: o.inflightMessagesMax,
        appliedIndex,
        // An empty data directory may be a wiped one: its member forgot whom it voted for.
        voteEmbargoTicks: fresh ? 2 * o.electionTicks : 0,
      });
      // Log time 0: every founding member writes the very same entry 1.
      if (fresh && o.members !== undefined) raft.bootstrap(o.members, 0);
      const peer = parseAddress(o.peerAddress, { portZero: true });
      const transport = await TcpTransport.start({
        cluster: o.cluster,
        member: o.id,
        host: peer.host,
        port: peer.port,
        frameBytesMax: o.frameBytesMax,
        inflightBytesMax: Math.max(64 * 1024 * 1024, o.frameBytesMax * 2),
        logger: log,
      });
      const clients = await ClientListener.start({
        address: o.clientAddress,
        frameBytesMax: o.frameBytesMax,
        connectionsMax: o.clientConnectionsMax,
        requestsPerConnectionMax: o.clientRequestsPerConnectionMax,
        frameDeadlineMs: o.clientFrameDeadlineMs,
        firstRequestDeadlineMs: o.clientFirstRequestDeadlineMs,
        idleDeadlineMs: o.clientIdleDeadlineMs,
        logLimits: { linesPerKindMax: o.logLinesPerKindMax, intervalMs: o.logIntervalMs },
        logger: log,
      });
      const server = new RaftServer(o, storage, raft, executor, transport, clients, log, codec);
      onApplied = (result) => server.#onApplied(result);
      server.#snapshotIndex = appliedIndex;
      server.#handedToExecutor = appliedIndex;
      server.#run();
      return server;
    } catch (error) {
      executor.close();
      await storage.close();
      throw error;
    }
  }

  #run(): void {
    this.#transport.onMessage((m) => this.#onPeerMessage(m));
    this.#clients.serve(this);
    this.#syncPeers();
    this.#ticker = setInterval(() => {
      if (this.#stopped) return;
      this.#raft.tick(Date.now());
      this.#schedulePump();
    }, this.#o.tickMs);
    this.#sweeper = setInterval(() => this.#sweepTimeouts(), 100);
    this.#sweeper.unref();
    this.#log.info(
      `started: peer ${this.peerAddress}, client ${this.clientAddress}, term ${this.#raft.term}, last index ${this.#raft.lastIndex}`,
    );
    this.#schedulePump();
  }

  /** The bound peer address (`host:port`). */
  get peerAddress(): string {
    return this.#transport.address;
  }

  /** The bound client address (`host:port`). */
  get clientAddress(): string {
    return this.#clients.address;
  }

  // ---- In-process API ---------------------------------------------------------------------

  /**
   * Propose a command. Resolves with the state machine's output for the command's own log index,
   * or rejects: `NotLeaderError` (with the leader hint), `ProposalDroppedError`,
   * `LeadershipTransferError`, `ApplicationError` (the machine threw), `TimeoutError` (outcome
   * unknown), `ShutdownError`.
   */
  async propose(command: unknown): Promise<unknown> {
    return (await this.proposeWithIndex(command)).output;
  }

  /** Like `propose`, also returning the log index the command was applied at. */
  proposeWithIndex(command: unknown): Promise<{ index: number; output: unknown }> {
    return this.proposeBytes(this.#codec.encode(command));
  }

  /** Propose an already-encoded command. */
  proposeBytes(data: Uint8Array): Promise<{ index: number; output: unknown }> {
    if (this.#stopping || this.#stopped) {
      return Promise.reject(this.#failure ?? new ShutdownError());
    }
    let index: number;
    let term: number;
    try {
      ({ index, term } = this.#raft.propose(data, Date.now()));
    } catch (error) {
      return Promise.reject(error);
    }
    this.#schedulePump();
    return new Promise((resolve, reject) => {
      this.#pending.set(index, {
        term,
        deadlineMs: Date.now() + this.#o.proposalTimeoutMs,
        resolve,
        reject,
      });
    });
  }

  /**
   * A read at the given consistency: resolves once this member's state machine is current enough,
   * with `query`'s answer. `linearizable` confirms leadership with a majority first; `lease` uses
   * the leader's lease; `sequential` answers from local state at once.
   */
  async query(
    query: unknown,
    consistency: 'linearizable' | 'lease' | 'sequential' = 'linearizable',
  ): Promise<unknown> {
    if (consistency !== 'sequential') {
      const index = await this.#readIndex(consistency === 'lease');
      await this.#executor.waitForApplied(index);
    }
    return this.#executor.query(query);
  }

  /**
   * Resolves, with an index, once every entry in the leader's log at the call (including
   * proposals not yet committed) is applied here. Rejects with `NotLeaderError` on a follower and
   * `TimeoutError` if that is not done within `proposalTimeoutMs` (leadership lost meanwhile).
   */
  async barrier(): Promise<number> {
    // The read index alone covers only what was committed at the call; proposals this leader
    // already accepted are "preceding operations" too.
    const lastIndex = this.#raft.lastIndex;
    const index = Math.max(await this.#readIndex(false), lastIndex);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `barrier at index ${index} not applied within ${this.#o.proposalTimeoutMs} ms`,
            ),
          ),
        this.#o.proposalTimeoutMs,
      );
    });
    try {
      await Promise.race([this.#executor.waitForApplied(index), timeout]);
    } finally {
      clearTimeout(timer);
    }
    return index;
  }

  /** Hand leadership to `to` (resolves when it is leader, rejects after an election timeout). */
  async transferLeadership(to: string): Promise<void> {
    this.#raft.transferLeadership(to);
    this.#schedulePump();
    const deadline = Date.now() + this.#o.tickMs * this.#o.electionTicks * 2;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.#o.tickMs));
      if (this.#raft.leaderId === to) return;
    }
    throw new TimeoutError(`leadership transfer to ${to}`);
  }

  /** Role, term, leader, commit index, last applied, members and replication progress. */
  status(): ServerStatus {
    return {
      ...this.#raft.status(),
      lastAppliedIndex: this.#executor.lastAppliedIndex,
      snapshotIndex: this.#snapshotIndex,
      snapshotsTaken: this.#snapshotsTaken,
      snapshotsInstalled: this.#snapshotsInstalled,
      peerAddress: this.peerAddress,
      clientAddress: this.clientAddress,
      pendingProposals: this.#pending.size,
      stopped: this.#stopped,
    };
  }

  /** The member that this one believes leads, with its client address when known. */
  leaderHint(): { leaderId: string | null; leaderAddress: string | null } {
    const leaderId = this.#raft.leaderId;
    const member = this.#raft.configuration()?.members.find((m) => m.id === leaderId);
    return { leaderId, leaderAddress: member?.clientAddress ?? null };
  }

  get role(): Role {
    return this.#raft.role;
  }

  /**
   * Listen to events (role, term and leader changes, snapshots taken and installed, failure,
   * stop), each with a sequence number, in order; none is dropped. Returns an unsubscribe function.
   */
  onEvent(listener: (event: ServerEvent) => void): () => void {
    return this.#events.subscribe(listener);
  }

  /** The retained events after sequence number `seq` (for catching up after a gap). */
  eventsSince(seq: number): ServerEvent[] {
    return this.#events.since(seq);
  }

  /**
   * Stop gracefully: refuse new proposals, let in-flight ones settle (up to `stopGraceMs`), then
   * close the ports and the files. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopping) {
      while (!this.#stopped) await new Promise((r) => setTimeout(r, 10));
      return;
    }
    this.#stopping = true;
    const graceEnd = Date.now() + this.#o.stopGraceMs;
    while (this.#pending.size > 0 && Date.now() < graceEnd && this.#failure === null) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.#shutdown(new ShutdownError('the member stopped'));
    this.#events.emit({ type: 'stopped' });
    this.#log.info('stopped');
  }

  // ---- The loop ---------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#pumping || this.#stopped) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      void this.#pump();
    });
  }

  /**
   * Carry out ready batches. Each batch's messages leave at once; its write joins the chain of
   * storage writes (durable in order), and only once it is durable do its acknowledgements leave
   * and the core hear of it (`advance`). Up to `writeBatchesInFlightMax` batches may be in that
   * chain, so the next batch's appends go out while the previous one is still being synced.
   */
  async #pump(): Promise<void> {
    if (this.#pumping || this.#stopped) return;
    this.#pumping = true;
    try {
      while (!this.#stopped && this.#raft.hasReady()) {
        if (this.#writesInFlight >= this.#o.writeBatchesInFlightMax) {
          await this.#writeChain;
          continue;
        }
        const rd = this.#raft.ready();
        for (const m of rd.messages) this.#sendPeer(m);
        this.#noteStateChanges(rd);
        if (rd.snapshot !== null) this.#handedToExecutor = rd.snapshot.index;
        if (rd.committed.length > 0) this.#apply(rd);
        for (const r of rd.readStates) this.#reads.get(r.requestId)?.resolve(r.index);
        for (const id of rd.readsFailed) {
          this.#reads.get(id)?.reject(new NotLeaderError(this.#raft.leaderId));
        }
        const batch = writeBatchOf(rd);
        this.#writesInFlight++;
        void this.#enqueueWrite(async () => {
          if (batch !== null) await this.#storage.write(batch);
          if (this.#stopped) return;
          for (const m of rd.messagesAfterPersist) this.#sendPeer(m);
          this.#raft.advance(rd);
          this.#syncPeers();
        }).finally(() => {
          this.#writesInFlight--;
          this.#schedulePump();
        });
      }
    } catch (error) {
      await this.#fail(error);
    } finally {
      this.#pumping = false;
    }
    if (!this.#stopped && this.#raft.hasReady()) this.#schedulePump();
  }

  /**
   * Run `write` after every storage write queued before it (the storage takes one writer at a
   * time). A failure stops the member: it must not acknowledge anything after a failed write.
   */
  #enqueueWrite<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#writeChain.then(() => {
      if (this.#failure !== null) throw this.#failure;
      return write();
    });
    // Not awaited: #fail's shutdown waits for this very chain.
    this.#writeChain = run.then(() => {}, (error: unknown) => void this.#fail(error));
    return run;
  }

  #onPeerMessage(m: RaftMessage): void {
    if (this.#stopped) return;
    if (m.type === 'snapshotChunk' || m.type === 'snapshotChunkResponse') {
      this.#snapshots.onMessage(m);
      return;
    }
    this.#raft.step(m);
    this.#schedulePump();
  }

  #sendPeer(m: RaftMessage): void {
    if (m.type === 'snapshot') {
      this.#snapshots.startSending(m);
      return;
    }
    this.#transport.send(m);
  }

  #apply(rd: Ready): void {
    const entries = rd.committed;
    for (const e of entries) {
      const p = this.#pending.get(e.index);
      if (p !== undefined && p.term !== e.term) {
        // Another leader's entry took this index: the proposal was lost, not applied.
        this.#pending.delete(e.index);
        p.reject(new NotLeaderError(this.#raft.leaderId));
      }
    }
    this.#handedToExecutor = entries[entries.length - 1]!.index;
    this.#applyChain = this.#executor.applyEntries(entries).then(
      () => this.#maybeSnapshot(),
      (error) => this.#fail(error),
    );
  }

  #onApplied(result: ApplyResult<unknown>): void {
    const p = this.#pending.get(result.index);
    if (p === undefined) return;
    this.#pending.delete(result.index);
    if (result.ok) p.resolve({ index: result.index, output: result.output });
    else p.reject(result.error);
  }

  #readIndex(lease: boolean): Promise<number> {
    if (this.#stopping || this.#stopped) return Promise.reject(new ShutdownError());
    const id = ++this.#readCounter;
    return new Promise((resolve, reject) => {
      const done = () => this.#reads.delete(id);
      this.#reads.set(id, {
        resolve: (i) => (done(), resolve(i)),
        reject: (e) => (done(), reject(e)),
      });
      try {
        if (lease) this.#raft.leaseRead(id);
        else this.#raft.readIndex(id);
      } catch (error) {
        done();
        reject(error);
        return;
      }
      this.#schedulePump();
    });
  }

  #noteStateChanges(rd: Ready): void {
    for (const c of rd.stateChanges) {
      if (c.term !== this.#lastTerm) this.#events.emit({ type: 'term', term: c.term });
      if (c.role !== this.#lastRole) {
        this.#events.emit({ type: 'role', role: c.role, term: c.term });
        this.#log.info(`role ${c.role} in term ${c.term}`);
      }
      if (c.leaderId !== this.#lastLeader) {
        this.#events.emit({ type: 'leader', leaderId: c.leaderId, term: c.term });
      }
      this.#lastTerm = c.term;
      this.#lastRole = c.role;
      this.#lastLeader = c.leaderId;
    }
  }

  #syncPeers(): void {
    const config = this.#raft.configuration();
    if (config === null || config.index === this.#configIndex) return;
    this.#configIndex = config.index;
    const peers = new Map<string, string>();
    for (const m of config.members) {
      if (m.id !== this.id && m.address !== undefined) peers.set(m.id, m.address);
    }
    this.#transport.setPeers(peers);
  }

  // ---- Snapshots --------------------------------------------------------------------------

  async #maybeSnapshot(): Promise<void> {
    if (this.#snapshotting || this.#stopped) return;
    // Loop: entries applied while a snapshot was being written may make the next one due, and
    // no later apply may come to ask again.
    while (!this.#stopped && this.#snapshotDue()) {
      const before = this.#snapshotIndex;
      await this.takeSnapshot();
      if (this.#snapshotIndex === before) return;
    }
  }

  #snapshotDue(): boolean {
    const applied = this.#executor.lastAppliedIndex;
    const dueByEntries = applied - this.#snapshotIndex >= this.#o.snapshotEntriesThreshold;
    const dueByBytes = this.#storage.logBytes() >= this.#o.snapshotLogBytesThreshold &&
      applied > this.#snapshotIndex;
    return dueByEntries || dueByBytes;
  }

  /** Snapshot the state machine now and compact the log below it (keeping the trailing entries). */
  async takeSnapshot(): Promise<number> {
    if (this.#snapshotting) return this.#snapshotIndex;
    this.#snapshotting = true;
    try {
      const snap = this.#executor.takeSnapshot();
      const { index, term, timeMs } = snap.meta;
      if (index <= this.#snapshotIndex) return this.#snapshotIndex;
      await this.#storage.snapshots.write(index, term, snap.chunks);
      const meta: SnapshotMeta = {
        index,
        term,
        timeMs,
        members: configurationAt(this.#storage.configurations(), index),
      };
      await this.#enqueueWrite(() => this.#storage.write({ snapshot: meta }));
      this.#snapshotIndex = index;
      const compactTo = Math.min(index, index - this.#o.compactionTrailingEntries);
      if (compactTo >= this.#storage.firstIndex()) {
        await this.#enqueueWrite(() => this.#storage.compact(compactTo));
      }
      this.#snapshotsTaken++;
      this.#events.emit({ type: 'snapshotTaken', index, term });
      this.#log.info(
        `snapshot taken at index ${index}, log compacted to ${
          Math.max(compactTo, this.#storage.firstIndex() - 1)
        }`,
      );
      return index;
    } catch (error) {
      await this.#fail(error);
      throw error;
    } finally {
      this.#snapshotting = false;
    }
  }

  /** A complete snapshot arrived from the leader: restore the state machine, then tell the core. */
  async #installSnapshot(meta: SnapshotMeta, chunks: Uint8Array[]): Promise<void> {
    await this.#applyChain;
    // When we already hold what it covers, the core is still told: it answers the leader, which
    // then leaves snapshot state for this member.
    const covered = meta.index <= this.#executor.lastAppliedIndex ||
      meta.index <= this.#raft.commitIndex;
    if (!covered) {
      await this.#storage.snapshots.write(meta.index, meta.term, chunks);
      await this.#executor.restore(
        { index: meta.index, term: meta.term, timeMs: meta.timeMs },
        this.#storage.snapshots.read(),
      );
      this.#snapshotIndex = meta.index;
      this.#snapshotsInstalled++;
      this.#events.emit({ type: 'snapshotInstalled', index: meta.index, term: meta.term });
      this.#log.info(`snapshot installed at index ${meta.index}`);
    }
    const leader = this.#raft.leaderId;
    if (leader === null) return;
    this.#raft.step({
      type: 'snapshot',
      from: leader,
      to: this.id,
      term: this.#raft.term,
      index: meta.index,
      snapshotTerm: meta.term,
      snapshotTimeMs: meta.timeMs,
      members: meta.members,
    });
    this.#schedulePump();
  }

  // ---- Failure and shutdown ---------------------------------------------------------------

  #sweepTimeouts(): void {
    const now = Date.now();
    for (const [index, p] of this.#pending) {
      if (p.deadlineMs <= now) {
        this.#pending.delete(index);
        p.reject(
          new TimeoutError(
            `proposal at index ${index} not applied within ${this.#o.proposalTimeoutMs} ms`,
          ),
        );
      }
    }
  }

  async #fail(error: unknown): Promise<void> {
    if (this.#failure !== null || this.#stopped) return;
    const e = error instanceof Error ? error : new Error(String(error));
    this.#failure = e instanceof StorageError ? e : new StorageError(e.message, { cause: e });
    this.#log.warn(`stopping after a failure, no further acknowledgements: ${e.message}`);
    this.#events.emit({ type: 'failed', message: e.message });
    await this.#shutdown(this.#failure);
  }

  async #shutdown(reason: Error): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopping = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
    for (const r of this.#reads.values()) r.reject(reason);
    this.#reads.clear();
    this.#snapshots.close();
    await this.#clients.close();
    await this.#transport.close();
    await this.#applyChain.catch(() => {});
    this.#executor.close();
    while (this.#pumping) await new Promise((r) => setImmediate(r));
    await this.#writeChain;
    await this.#storage.close();
  }
}

function writeBatchOf(rd: Ready): WriteBatch | null {
  if (rd.snapshot === null && rd.entries.length === 0 && rd.hardState === null) return null;
  const batch: WriteBatch = {};
  if (rd.snapshot !== null) batch.snapshot = rd.snapshot;
  if (rd.entries.length > 0) batch.entries = rd.entries;
  if (rd.hardState !== null) batch.hardState = rd.hardState;
  return batch;
}

/** The members of the newest configuration at or below `index`. */
function configurationAt(configs: Configuration[], index: number): Member[] {
  let found: Configuration | undefined;
  for (const c of configs) if (c.index <= index) found = c;
  return (found ?? configs[0])?.members ?? [];
}
