/**
 * The member driver: the one loop that carries out the core's readies, run alike by `RaftServer`
 * (LMDB, TCP, real timers) and by the simulator (memory storage that loses what was not durable,
 * a simulated network, virtual time). It sees the world only through `Storage`, `MemberTransport`
 * and `Clock` (`ports.ts`), so thousands of seeded simulations test the code that runs in
 * production.
 *
 * The loop (`#pump`), for each ready in the core's order:
 * 1. messages that may leave now are sent at once, so the leader's own disk write runs in
 *    parallel with replication;
 * 2. committed entries go to the state-machine executor (after any snapshot install before them);
 *    confirmed reads wait until their index is applied;
 * 3. the ready's writes join the chain of storage writes, durable in order; up to
 *    `writeBatchesInFlightMax` readies may be in that chain;
 * 4. once a ready's write is durable, its `messagesAfterPersist` (votes, acknowledgements) leave
 *    and the core hears of it (`advance`). A follower therefore acknowledges only what is on disk.
 *
 * A snapshot received from the leader is installed as one recoverable step: its data is staged in
 * the snapshot store as it arrives; the core takes it; the write that discards the log commits the
 * staged data with the snapshot's metadata in one transaction; only then is the state machine
 * restored, as a step of the apply queue (so no entry is applied around it), and no local snapshot
 * runs meanwhile. After a crash at any moment the storage holds either the old log and snapshot or
 * the new snapshot, never a mix.
 *
 * A storage failure stops the member: it never acknowledges what it could not write; the
 * proposals it had accepted end with an unknown outcome.
 *
 * A state machine on disk (`DiskStateMachine`) lives in the storage's own environment
 * (`Storage.openMachineStore`): on open it reports the applied index it holds and the log is
 * applied from the next entry, not from the snapshot; it is restored from the snapshot only when
 * it stands below it (an install interrupted between the log's write and the machine's switch).
 * Compaction never passes the machine's durable applied index.
 *
 * @example
 * ```ts
 * const driver = await MemberDriver.open({ id: 'a', storage, transport, clock, random: Math.random,
 *   stateMachine: new KvStateMachine(), options: parseDriverOptions({}), logger, members });
 * transport.onMessage((m) => driver.receive(m));
 * driver.start();
 * const { index, output } = await driver.propose(bytes);
 * ```
 * @module
 */
import {
  assert,
  AssertionError,
  NotLeaderError,
  type OutcomeUnknownError,
  ShutdownError,
  StorageError,
  TimeoutError,
  TransferInvalidError,
} from '../base/errors.ts';
import {
  type Configuration,
  type Member,
  MemberType,
  type RaftMessage,
  type SnapshotMeta,
} from '../base/messages.ts';
import {
  membershipFaultNames,
  type MembershipUnsafeFaults,
  type UnsafeFaults,
} from '../core/options.ts';
import { Raft, type RaftStatus, type Ready, type Role } from '../core/raft.ts';
import type { RandomSource } from '../core/random.ts';
import { cborCodec, type CommandCodec } from '../state/codec.ts';
import { encodeEnvelope } from '../state/envelope.ts';
import {
  type ApplyResult,
  executorUnsafeFaultNames,
  type ExecutorUnsafeFaults,
  StateMachineExecutor,
} from '../state/executor.ts';
import {
  type AnyStateMachine,
  type DiskUnsafeFaults,
  isDiskStateMachine,
  type MachineStore,
} from '../state/disk-state-machine.ts';
import type { Storage, WriteBatch } from '../storage/storage.ts';
import { EventLog, type ServerEvent } from './events.ts';
import type { DriverOptions, DriverUnsafeFaults } from './options.ts';
import type { Clock, DriverProbe, MemberLogger, MemberTransport } from './ports.ts';
import type { DriverMeter } from './meter.ts';
import { Proposals } from './proposals.ts';
import {
  type Reply,
  Requests,
  requestsUnsafeFaultNames,
  type RequestsUnsafeFaults,
} from './requests.ts';
import type { MemberReply, MemberRequest, ReconfigureRequest } from '../base/member-requests.ts';
import type { BalancerFaults } from './balancer.ts';
import { MembershipDuties } from './membership-duties.ts';
import type { SessionEvent } from '../state/sessions.ts';
import {
  type ReceivedSnapshot,
  snapshotProgressIntervalMs,
  SnapshotTransfers,
} from './snapshot-transfer.ts';

/** A read's consistency: see `MemberDriver.read`. */
export type ReadConsistency = 'linearizable' | 'lease' | 'sequential';

/** Everything a driver is made of. */
export type DriverHost<Command, Output, Query, QueryOutput> = {
  id: string;
  storage: Storage;
  transport: MemberTransport;
  clock: Clock;
  /** Randomness for election timeouts (seeded in the simulator). */
  random: RandomSource;
  /** In memory (`StateMachine`) or on disk (`DiskStateMachine`, needs `storage.openMachineStore`). */
  stateMachine: AnyStateMachine<Command, Output, Query, QueryOutput>;
  /** Decodes command bytes for the state machine. Default `cborCodec()`. */
  codec?: CommandCodec<Command>;
  /** Validated options (`parseDriverOptions`). */
  options: DriverOptions;
  logger: MemberLogger;
  /** The founding configuration, used only when the storage is new. */
  members?: Member[];
  probe?: DriverProbe;
  /** Times storage writes and applies for metrics (`lib/member/meter.ts`); none: nothing timed. */
  meter?: DriverMeter;
  /**
   * Ticks after start during which real votes are refused. Default: an election timeout on every
   * start, two on an empty storage (see the core's `voteEmbargoTicks`). Scripted tests that hold
   * elections at once pass 0; nothing else should set it.
   */
  voteEmbargoTicks?: number;
  /** Deliberate bugs, for tests only. */
  unsafeFaults?:
    & DriverUnsafeFaults
    & UnsafeFaults
    & RequestsUnsafeFaults
    & ExecutorUnsafeFaults
    & MembershipUnsafeFaults
    & BalancerFaults;
  /** Deliberate bugs of a state machine on disk, for tests only. */
  diskUnsafeFaults?: DiskUnsafeFaults;
};

/** Where a member started from, as `MemberDriver.open` found its storage. */
export type MemberRecovery = {
  /** The state machine lives on disk. */
  onDisk: boolean;
  /** The applied index the machine on disk held (its `open()`); 0 for one in memory. */
  machineAppliedIndex: number;
  /** The machine was restored from the stored snapshot (always, for one in memory that has one). */
  restoredSnapshot: boolean;
  /** Index of the stored snapshot (0: none). */
  snapshotIndex: number;
  /** The applied index the member started at: the log is applied from the next entry. */
  appliedIndex: number;
  /** The log's last index at open: `lastIndex - appliedIndex` entries (at most) to apply again. */
  lastIndex: number;
};

/** What `status()` reports: the core's view plus the driver's. */
export type MemberStatus = RaftStatus & {
  lastAppliedIndex: number;
  snapshotIndex: number;
  /** Snapshots this member took of its own state machine since it started. */
  snapshotsTaken: number;
  /** Snapshots this member received from a leader and installed since it started. */
  snapshotsInstalled: number;
  /** The snapshot being received from a leader, if any. */
  snapshotReceiving: { index: number; receivedBytes: number; totalBytes: number } | null;
  pendingProposals: number;
  /** Proposals made here that committed at their own index and were applied (since start). */
  proposalsCommitted: number;
  /** Proposals made here that ended otherwise: lost, timed out, outcome unknown (since start). */
  proposalsFailed: number;
  /** Snapshots this member streamed to a follower in full (since start). */
  snapshotsSent: number;
  stopped: boolean;
  /**
   * Messages that carried log entries or a snapshot to this member since it started, by sender
   * (appends and feeds with entries, snapshot chunks): who actually feeds it.
   */
  entriesReceivedFrom: Record<string, number>;
};

type PendingRead = { resolve: (index: number) => void; reject: (error: unknown) => void };

/**
 * Most log entries one storage write of a compaction removes, in entries: a larger compaction
 * goes in steps, with the appends queued meanwhile between them (about 30 ms of one core per step
 * on LMDB, where a step reads every entry it removes to count its bytes).
 */
export const compactionStepEntriesMax = 4096;

/** Core faults among the host's unsafe faults (the rest are the driver's own). */
const coreFaultKeys = [
  'commitOlderTermByCount',
  'voteTwiceInTerm',
  'voteWithoutLogCheck',
  'leaderCountsUndurableEntries',
  'voteBeforeDurable',
  'ackBeforeDurable',
  'leaseReadDuringTransfer',
  ...membershipFaultNames,
] as const;

/** See the module comment. Create with `MemberDriver.open`. */
export class MemberDriver<
  Command = unknown,
  Output = unknown,
  Query = unknown,
  QueryOutput = unknown,
> {
  readonly id: string;
  readonly #o: DriverOptions;
  readonly #storage: Storage;
  readonly #transport: MemberTransport;
  readonly #clock: Clock;
  readonly #log: MemberLogger;
  readonly #raft: Raft;
  readonly #executor: StateMachineExecutor<Command, Output, Query, QueryOutput>;
  readonly #events: EventLog;
  readonly #snapshots: SnapshotTransfers;
  readonly #proposals: Proposals;
  readonly #requests: Requests;
  readonly #sessionEventListeners = new Set<(session: number, event: SessionEvent) => void>();
  readonly #membership: MembershipDuties;
  readonly #entriesReceivedFrom = new Map<string, number>();
  /** The last compaction was held back (see `#compact`): try again at the next heartbeat. */
  #compactHeld = false;
  #compacting = false;
  /** The index of the no-op that began this member's term `#termStartTerm` as leader. */
  #termStartIndex = 0;
  #termStartTerm = 0;
  readonly #reads = new Map<number, PendingRead>();
  readonly #probe: DriverProbe;
  readonly #meter: DriverMeter | null;
  readonly #faults: DriverUnsafeFaults;
  readonly #diskFaults: DiskUnsafeFaults;
  readonly #recovery: MemberRecovery;
  #readCounter = 0;
  #cancelTick: (() => void) | null = null;
  #pumpScheduled = false;
  #pumping = false;
  /** Storage writes, chained so that they run (and become durable) one after another, in order. */
  #writeChain: Promise<void> = Promise.resolve();
  #writesInFlight = 0;
  /** State-machine work (applying entries, restoring a snapshot), one step after another. */
  #applyChain: Promise<void> = Promise.resolve();
  /** A snapshot install is queued or running: no local snapshot until it is done. */
  #installsPending = 0;
  /** A received snapshot waiting for the core to take it (and then for its write). */
  #staged: ReceivedSnapshot | null = null;
  #snapshotIndex: number;
  #snapshotting = false;
  #snapshotsTaken = 0;
  #snapshotsInstalled = 0;
  #configIndex = -1;
  /** The ids of the configuration in effect, the transport's peers and who departed (see `#syncPeers`). */
  #configMembers: string[] = [];
  #peersKey = '';
  readonly #addresses = new Map<string, string>();
  readonly #departing = new Map<string, number>();
  #ticks = 0;
  #stopping = false;
  #stopped = false;
  #failure: Error | null = null;
  #lastRole: Role = 'follower';
  #lastTerm: number;
  #lastLeader: string | null = null;

  private constructor(
    h: DriverHost<Command, Output, Query, QueryOutput>,
    raft: Raft,
    executor: StateMachineExecutor<Command, Output, Query, QueryOutput>,
    recovery: MemberRecovery,
  ) {
    this.id = h.id;
    this.#o = h.options;
    this.#storage = h.storage;
    this.#transport = h.transport;
    this.#clock = h.clock;
    this.#log = h.logger;
    this.#raft = raft;
    this.#executor = executor;
    this.#probe = h.probe ?? {};
    this.#meter = h.meter ?? null;
    this.#faults = h.unsafeFaults ?? {};
    this.#diskFaults = h.diskUnsafeFaults ?? {};
    this.#recovery = recovery;
    this.#snapshotIndex = recovery.snapshotIndex;
    this.#lastTerm = raft.term;
    this.#proposals = new Proposals(h.options.proposalTimeoutMs);
    const o = h.options;
    this.#requests = new Requests({
      id: h.id,
      clock: h.clock,
      leaderTerm: () => (this.#raft.role === 'leader' && !this.#stopped ? this.#raft.term : null),
      leaderId: () => this.#raft.leaderId,
      // Until the driver has carried out the ready that began this term (it may wait behind
      // writes), the core's last index stands in: the no-op was appended as the term began.
      termStartIndex: () =>
        this.#termStartTerm === this.#raft.term ? this.#termStartIndex : this.#raft.lastIndex,
      appliedIndex: () => this.#executor.lastAppliedIndex,
      waitForApplied: (index) => this.#executor.waitForApplied(index),
      sessions: () => this.#executor.sessions,
      append: (entry) => this.#appendEnvelope(entry),
      read: (consistency) => this.read(consistency),
      query: (query) => this.#executor.query(query as Query),
      send: (m) => this.#transport.send(m),
      sessionTimeoutMsMin: o.sessionTimeoutMsMin,
      sessionTimeoutMsMax: o.sessionTimeoutMsMax,
      sessionCommandsAheadMax: o.sessionCommandsAheadMax,
      forwardTimeoutMs: o.forwardTimeoutMs,
      reconfigure: (request) => this.#membership.reconfigure(request),
      members: () => this.#membership.members(),
      transferLeadership: (to) => this.#transferForClient(to),
      term: () => this.#raft.term,
      unsafeFaults: pickFaults(h.unsafeFaults, requestsUnsafeFaultNames),
    });
    this.#events = new EventLog(h.options.eventsRetainedMax, () => h.clock.nowMs());
    this.#membership = new MembershipDuties({
      raft,
      options: o,
      events: this.#events,
      log: h.logger,
      nowMs: () => this.#clock.nowMs(),
      assertRunning: () => {
        if (this.#stopping || this.#stopped) throw this.#refusal();
      },
      track: (index, term) => this.#proposals.add(index, term, this.#clock.nowMs()),
      pump: () => this.#schedulePump(),
      faults: h.unsafeFaults ?? {},
      promotionLagEntriesMax: o.promotionLagEntriesMax,
    });
    this.#snapshots = new SnapshotTransfers({
      id: h.id,
      snapshots: h.storage.snapshots,
      clock: h.clock,
      chunkBytes: h.options.snapshotChunkBytes,
      chunkTimeoutMs: h.options.snapshotChunkTimeoutMs,
      receiveBytesMax: h.options.snapshotReceiveBytesMax,
      progressIntervalMs: snapshotProgressIntervalMs,
      send: (m) => this.#transport.send(m),
      currentTerm: () => this.#raft.term,
      leaderId: () => this.#raft.leaderId,
      accepts: (from, term) => this.#raft.acceptsSnapshotFrom(from, term),
      reportFailed: (to) => {
        this.#raft.reportSnapshotFailed(to);
        this.#schedulePump();
      },
      received: (snapshot) => this.#onSnapshotReceived(snapshot),
      log: h.logger,
    });
  }

  /**
   * Recover a member from its storage: open a state machine on disk at the applied index it
   * holds, or restore one in memory from the snapshot (whose metadata and data always agree),
   * create the core (bootstrapping a new storage with `members`), and wire the executor. Nothing
   * runs until `start()`. Throws `TypeError` for a machine on disk over a storage that cannot hold
   * one, `StorageError` when the machine and the log do not fit together.
   */
  static async open<C, O, Q, QO>(
    h: DriverHost<C, O, Q, QO>,
  ): Promise<MemberDriver<C, O, Q, QO>> {
    const o = h.options;
    const storage = h.storage;
    const onDisk = isDiskStateMachine(h.stateMachine);
    let store: MachineStore | undefined;
    if (onDisk) {
      if (storage.openMachineStore === undefined) {
        throw new TypeError(
          'Invalid option stateMachine for MemberDriver: a state machine on disk needs a storage that holds one (LmdbStorage)',
        );
      }
      store = storage.openMachineStore();
    }
    let onApplied: (result: ApplyResult<O>) => void = () => {};
    let onEvent: (session: number, event: SessionEvent) => void = () => {};
    let onExpired: (session: number) => void = () => {};
    const executor = new StateMachineExecutor(h.stateMachine, {
      codec: h.codec ?? cborCodec<C>(),
      applyBatchEntriesMax: o.applyBatchEntriesMax,
      applyBatchMsMax: o.applyBatchMsMax,
      nowMs: () => h.clock.nowMs(),
      yieldTurn: () => new Promise<void>((resolve) => h.clock.defer(resolve)),
      onApplied: (result) => onApplied(result),
      sessionLimits: { resultsMax: o.sessionResultsMax, eventsMax: o.sessionEventsMax },
      onEvent: (session, event) => onEvent(session, event),
      onSessionExpired: (session) => onExpired(session),
      ...(store === undefined ? {} : { store }),
      ...(h.diskUnsafeFaults === undefined ? {} : { diskUnsafeFaults: h.diskUnsafeFaults }),
      unsafeFaults: pickFaults(h.unsafeFaults, executorUnsafeFaultNames),
    });
    try {
      const machineAppliedIndex = executor.open();
      const meta = storage.snapshotMeta();
      const data = storage.snapshots.info();
      if (meta !== null || data !== null) {
        if (
          meta === null || data === null || meta.index !== data.index || meta.term !== data.term
        ) {
          throw new StorageError(
            `Snapshot metadata and data disagree: metadata at ${meta?.index ?? 'none'}, data at ${
              data?.index ?? 'none'
            }`,
          );
        }
      }
      // A machine on disk already holds its state; it needs the snapshot only when it stands below
      // it (an install that stopped between the log's write and the machine's switch).
      const restoredSnapshot = meta !== null && (!onDisk || machineAppliedIndex < meta.index);
      if (restoredSnapshot) {
        await executor.restore(
          { index: meta.index, term: meta.term, timeMs: meta.timeMs },
          storage.snapshots.read(),
        );
      }
      const appliedIndex = executor.lastAppliedIndex;
      if (onDisk && appliedIndex < storage.firstIndex() - 1) {
        throw new StorageError(
          `The state machine on disk is at applied index ${appliedIndex} but the log starts at ${storage.firstIndex()}: entries were compacted before the machine made them durable`,
        );
      }
      if (onDisk && appliedIndex > storage.lastIndex()) {
        throw new StorageError(
          `The state machine on disk is at applied index ${appliedIndex}, past the log's last index ${storage.lastIndex()}`,
        );
      }
      const recovery: MemberRecovery = {
        onDisk,
        machineAppliedIndex,
        restoredSnapshot,
        snapshotIndex: meta?.index ?? 0,
        appliedIndex,
        lastIndex: storage.lastIndex(),
      };
      if (onDisk) {
        h.logger.info(
          `state machine on disk at applied index ${machineAppliedIndex}${
            restoredSnapshot ? `, restored from the snapshot at ${meta!.index}` : ''
          }; log ${appliedIndex + 1}..${storage.lastIndex()} to apply`,
        );
      }
      const fresh = storage.lastIndex() === 0 && storage.hardState().term === 0 && meta === null;
      const faults = h.unsafeFaults ?? {};
      const coreFaults: UnsafeFaults & MembershipUnsafeFaults = {};
      for (const key of coreFaultKeys) if (faults[key] === true) coreFaults[key] = true;
      const raft = new Raft(storage, {
        id: h.id,
        random: h.random,
        electionTicks: o.electionTicks,
        heartbeatTicks: o.heartbeatTicks,
        messageBytesMax: o.messageBytesMax,
        inflightMessagesMax: o.inflightMessagesMax,
        inflightBytesMax: o.inflightBytesMax,
        uncommittedBytesMax: o.uncommittedBytesMax,
        committedBytesMax: o.committedBytesMax,
        readsPendingMax: o.readsPendingMax,
        leaseDriftTicks: o.leaseDriftTicks,
        snapshotSendTicksMax: o.snapshotSendTicksMax,
        feederSilenceHeartbeats: o.feederSilenceHeartbeats,
        activeMembersMin: o.activeMembersMin,
        promotionLagEntriesMax: o.promotionLagEntriesMax,
        appliedIndex,
        // Every start refuses real votes for an election timeout: a restarted voter has forgotten
        // that it heard from a leader (whose lease relies on it). An empty storage may be a wiped
        // one whose member forgot whom it voted for: two election timeouts.
        voteEmbargoTicks: h.voteEmbargoTicks ??
          (fresh ? 2 * o.electionTicks : faults.noRestartEmbargo === true ? 0 : o.electionTicks),
        unsafeFaults: coreFaults,
      });
      // Log time 0: every founding member writes the very same entry 1.
      if (fresh && h.members !== undefined) raft.bootstrap(h.members, 0);
      else if (h.members !== undefined) warnIfOtherMembers(h, raft);
      const driver = new MemberDriver(h, raft, executor, recovery);
      onApplied = (result) => driver.#onApplied(result);
      onEvent = (session, event) => {
        for (const listener of driver.#sessionEventListeners) listener(session, event);
      };
      onExpired = (session) => driver.#requests.forget(session);
      return driver;
    } catch (error) {
      executor.close();
      throw error;
    }
  }

  /** Start ticking and serving. */
  start(): void {
    this.#transport.onPeerDown?.((member) => {
      if (this.#stopped) return;
      this.#requests.leaderChanged(member);
      this.#raft.reportUnreachable(member);
      this.#schedulePump();
    });
    this.#syncPeers();
    this.#scheduleTick();
    this.#log.info(`started: term ${this.#raft.term}, last index ${this.#raft.lastIndex}`);
    this.#schedulePump();
  }

  /** Feed one validated message from a peer. */
  receive(m: RaftMessage): void {
    if (this.#stopped) return;
    if (
      m.type === 'snapshotChunk' ||
      ((m.type === 'append' || m.type === 'feed') && m.entries.length > 0)
    ) {
      this.#entriesReceivedFrom.set(m.from, (this.#entriesReceivedFrom.get(m.from) ?? 0) + 1);
    }
    if (m.type === 'snapshotChunk' || m.type === 'snapshotChunkResponse') {
      this.#snapshots.onMessage(m);
      return;
    }
    if (m.type === 'forward' || m.type === 'forwardResponse') {
      this.#requests.receive(m);
      return;
    }
    this.#raft.step(m);
    this.#schedulePump();
  }

  /**
   * The core was stepped from outside the driver (a scripted test): carry out what it has to do.
   * Nothing else needs this; every input through the driver schedules it.
   */
  nudge(): void {
    this.#schedulePump();
  }

  // ---- The API ----------------------------------------------------------------------------

  /**
   * Propose encoded command bytes. Resolves with the state machine's output for the command's own
   * log index, or rejects: `NotLeaderError`, `ProposalDroppedError`, `LeadershipTransferError`,
   * `ShutdownError` (all refused before anything was appended: retryable); `ApplicationError`
   * (the machine refused it); `TimeoutError`, `OutcomeUnknownError` (outcome unknown).
   */
  propose(data: Uint8Array): Promise<{ index: number; output: Output }> {
    try {
      return this.#appendEnvelope(encodeEnvelope({ kind: 'plain', data })).result;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A client's request at this member, whichever it is (see `lib/member/requests.ts`): a command
   * in a session (exactly once) or not, a session's registration, keep-alive or unregistration, or
   * a query. A member that is not the leader forwards it to the leader and relays the answer.
   * Never rejects: a failure is a reply with its error code.
   */
  handle(request: MemberRequest): Promise<MemberReply> {
    if (this.#stopping || this.#stopped) {
      return Promise.resolve({
        ok: false,
        code: 'SHUTDOWN',
        message: this.#refusal().message,
        leaderId: this.#raft.leaderId,
      });
    }
    const redirect = this.#membership.redirect(request);
    if (redirect !== null) return Promise.resolve(redirect);
    return this.#requests.handle(request);
  }

  /**
   * A configuration change (`join`, `leave`, `promote`, `demote`; see `lib/member/reconfigure.ts`)
   * at this member, whichever it is: the leader makes it and answers once it is committed, with
   * the new members in `output`. Never rejects: a failure is a reply with its error code
   * (CONFIG_CHANGE_IN_PROGRESS and NOT_CAUGHT_UP are retryable; CONFIG_CHANGE_INVALID is not).
   */
  changeMembership(request: Omit<ReconfigureRequest, 'kind'>): Promise<MemberReply> {
    return this.handle({ ...request, kind: 'reconfigure' });
  }

  /** The leader's view of the members (types, who feeds whom, each passive member's lag). */
  members(): Promise<MemberReply> {
    return this.handle({ kind: 'members' });
  }

  /**
   * Listen to the events state machines publish to client sessions, as this member applies them
   * (in log order). Returns an unsubscribe function.
   */
  onSessionEvent(listener: (session: number, event: SessionEvent) => void): () => void {
    this.#sessionEventListeners.add(listener);
    return () => this.#sessionEventListeners.delete(listener);
  }

  /** The events kept for `session` (unacknowledged), oldest first; empty for an unknown session. */
  sessionEvents(session: number): readonly SessionEvent[] {
    return this.#executor.sessions.get(session)?.events ?? [];
  }

  /** The index of the last event published to `session` as applied here (0: none, or unknown). */
  sessionEventIndex(session: number): number {
    return (this.#executor.sessions.get(session)?.nextEventIndex ?? 1) - 1;
  }

  /**
   * Append one entry whose bytes are an envelope (see `lib/state/envelope.ts`). A refusal (not
   * the leader, a transfer, the quota) is thrown synchronously: nothing was appended.
   */
  #appendEnvelope(
    entry: Uint8Array,
  ): { index: number; result: Promise<{ index: number; output: Output; duplicate?: boolean }> } {
    if (this.#stopping || this.#stopped) throw this.#refusal();
    const { index, term } = this.#raft.propose(entry, this.#clock.nowMs());
    this.#schedulePump();
    const result = this.#proposals.add(index, term, this.#clock.nowMs()) as Promise<
      { index: number; output: Output }
    >;
    return { index, result };
  }

  /**
   * Resolve, with an index, once this member's state machine covers a read at `consistency`:
   * `linearizable` confirms leadership with a majority (read index) and waits until applied;
   * `lease` answers within the leader's lease (falling back to a read index); `sequential`
   * answers from local state at once. Rejects with `NotLeaderError` (retryable) on a follower
   * for the first two.
   */
  read(consistency: ReadConsistency): Promise<number> {
    if (this.#stopping || this.#stopped) return Promise.reject(this.#refusal());
    if (consistency === 'sequential') return Promise.resolve(this.#executor.lastAppliedIndex);
    const id = ++this.#readCounter;
    return new Promise((resolve, reject) => {
      const done = () => this.#reads.delete(id);
      this.#reads.set(id, {
        resolve: (index) => {
          done();
          if (this.#faults.readBeforeApplied === true) return resolve(index);
          this.#executor.waitForApplied(index).then(() => resolve(index), reject);
        },
        reject: (e) => (done(), reject(e)),
      });
      try {
        if (consistency === 'lease') this.#raft.leaseRead(id);
        else this.#raft.readIndex(id);
      } catch (error) {
        done();
        reject(error);
        return;
      }
      this.#schedulePump();
    });
  }

  /** A read at `consistency` (see `read`), answered by the state machine's `query`. */
  async query(query: Query, consistency: ReadConsistency = 'linearizable'): Promise<QueryOutput> {
    return (await this.queryWithIndex(query, consistency)).output;
  }

  /**
   * Like `query`, also returning the index the read was confirmed at and the applied index of the
   * state that answered it (never below `index`).
   */
  async queryWithIndex(
    query: Query,
    consistency: ReadConsistency = 'linearizable',
  ): Promise<{ index: number; appliedIndex: number; output: QueryOutput }> {
    const index = await this.read(consistency);
    const appliedIndex = this.#executor.lastAppliedIndex;
    return { index, appliedIndex, output: this.#executor.query(query) };
  }

  /**
   * Resolves, with an index, once every entry in the leader's log at the call (including
   * proposals not yet committed) is applied here. Rejects with `NotLeaderError` on a follower and
   * `TimeoutError` if that is not done within `proposalTimeoutMs` (leadership lost meanwhile).
   */
  async barrier(): Promise<number> {
    const lastIndex = this.#raft.lastIndex;
    const index = Math.max(await this.read('linearizable'), lastIndex);
    let cancel: () => void = () => {};
    const timeout = new Promise<never>((_, reject) => {
      cancel = this.#clock.setTimer(
        this.#o.proposalTimeoutMs,
        () =>
          reject(
            new TimeoutError(
              `barrier at index ${index} not applied within ${this.#o.proposalTimeoutMs} ms`,
            ),
          ),
      );
    });
    try {
      await Promise.race([this.#executor.waitForApplied(index), timeout]);
    } finally {
      cancel();
    }
    return index;
  }

  /**
   * Resolves once this member knows a leader that can take writes: a leader of its current term
   * has committed an entry of that term (the entry at this member's commit index is of the current
   * term; a member learns its commit index from that leader). Checked every tick. Rejects with
   * `TimeoutError` naming `timeoutMs` when that does not happen within it, and `ShutdownError`
   * when the member stops first.
   */
  ready(timeoutMs: number): Promise<{ leaderId: string; term: number }> {
    const deadlineMs = this.#clock.nowMs() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = () => {
        const { leaderId, term, commitIndex } = this.#raft;
        if (this.#stopped) return reject(new ShutdownError('the member stopped'));
        if (leaderId !== null && commitIndex > 0 && this.#raft.termAt(commitIndex) === term) {
          return resolve({ leaderId, term });
        }
        if (this.#clock.nowMs() >= deadlineMs) {
          return reject(
            new TimeoutError(`no leader that can take writes within timeoutMs ${timeoutMs} ms`),
          );
        }
        this.#clock.setTimer(this.#o.tickMs, check);
      };
      check();
    });
  }

  /** Hand leadership to `to`: resolves when it leads, rejects after two election timeouts. */
  transferLeadership(to: string): Promise<void> {
    this.#raft.transferLeadership(to);
    this.#schedulePump();
    const limitMs = this.#o.tickMs * this.#o.electionTicks * 2;
    const deadlineMs = this.#clock.nowMs() + limitMs;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#raft.leaderId === to) return resolve();
        if (this.#clock.nowMs() >= deadlineMs || this.#stopped) {
          const now = this.#raft.leaderId;
          return reject(
            new TimeoutError(
              `leadership transfer to ${to}: not leader within ${limitMs} ms (leader now: ${
                now ?? 'none'
              })`,
            ),
          );
        }
        this.#clock.setTimer(this.#o.tickMs, check);
      };
      this.#clock.setTimer(this.#o.tickMs, check);
    });
  }

  /**
   * A client's leadership transfer, on the leader: `to` must be an ACTIVE member of the latest
   * configuration (`TransferInvalidError` otherwise); resolves once it leads.
   */
  async #transferForClient(to: string): Promise<Reply> {
    const member = this.#raft.configuration()?.members.find((m) => m.id === to);
    if (member === undefined) {
      throw new TransferInvalidError(`${to} is not a member of the configuration`);
    }
    if (member.type !== MemberType.ACTIVE) {
      throw new TransferInvalidError(`${to} is ${member.type}; only an ACTIVE member can lead`);
    }
    try {
      await this.transferLeadership(to);
    } catch (error) {
      // The core's own check (the voters in effect) refuses a member being promoted or demoted.
      if (error instanceof RangeError) throw new TransferInvalidError(error.message);
      throw error;
    }
    return { index: this.#raft.commitIndex, output: { leaderId: to, term: this.#raft.term } };
  }

  /** Role, term, leader, commit index, last applied, members and replication progress. */
  status(): MemberStatus {
    return {
      ...this.#raft.status(),
      lastAppliedIndex: this.#executor.lastAppliedIndex,
      snapshotIndex: this.#snapshotIndex,
      snapshotsTaken: this.#snapshotsTaken,
      snapshotsInstalled: this.#snapshotsInstalled,
      snapshotReceiving: this.#snapshots.receivingProgress(),
      pendingProposals: this.#proposals.size,
      proposalsCommitted: this.#proposals.committedCount,
      proposalsFailed: this.#proposals.failedCount,
      snapshotsSent: this.#snapshots.sentCount,
      stopped: this.#stopped,
      entriesReceivedFrom: Object.fromEntries(this.#entriesReceivedFrom),
    };
  }

  /** The core, for inspection by status pages and checkers (never step it directly). */
  get core(): Raft {
    return this.#raft;
  }

  /** The state machine's current applied index. */
  get lastAppliedIndex(): number {
    return this.#executor.lastAppliedIndex;
  }

  /** Where this member started from (see `MemberRecovery`). */
  get recovery(): MemberRecovery {
    return { ...this.#recovery };
  }

  get role(): Role {
    return this.#raft.role;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Why the member stopped on its own (a storage failure or a bug), or `null`. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** The member this one believes leads, with its client address when known. */
  leaderHint(): { leaderId: string | null; leaderAddress: string | null } {
    const leaderId = this.#raft.leaderId;
    const member = this.#raft.configuration()?.members.find((m) => m.id === leaderId);
    return { leaderId, leaderAddress: member?.clientAddress ?? null };
  }

  /** Listen to events, each with a sequence number, in order; returns an unsubscribe function. */
  onEvent(listener: (event: ServerEvent) => void): () => void {
    return this.#events.subscribe(listener);
  }

  /** The retained events after sequence number `seq`. */
  eventsSince(seq: number): ServerEvent[] {
    return this.#events.since(seq);
  }

  /**
   * Stop gracefully: refuse new proposals, let in-flight ones settle (up to `stopGraceMs`), then
   * end the rest with an unknown outcome and wait for the storage writes under way. The caller
   * closes the storage and transport afterwards. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopping) {
      while (!this.#stopped) await this.#sleep(this.#o.tickMs);
      await this.#writeChain;
      return;
    }
    this.#stopping = true;
    const graceEndMs = this.#clock.nowMs() + this.#o.stopGraceMs;
    while (this.#proposals.size > 0 && this.#clock.nowMs() < graceEndMs && this.#failure === null) {
      await this.#sleep(Math.min(this.#o.tickMs, 10));
    }
    this.#halt('the member stopped before it was applied');
    await this.#applyChain.catch(() => {});
    await this.#writeChain;
    this.#events.emit({ type: 'stopped' });
    this.#log.info('stopped');
  }

  /**
   * Stop at once, as a crash would: nothing more is sent, written or applied; pending proposals
   * end with an unknown outcome. For the simulator (a real crash needs no call).
   */
  crash(): void {
    this.#halt('the member crashed');
  }

  // ---- The loop ---------------------------------------------------------------------------

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#clock.setTimer(ms, resolve));
  }

  #scheduleTick(): void {
    this.#cancelTick = this.#clock.setTimer(this.#o.tickMs, () => {
      if (this.#stopped) return;
      this.#raft.tick(this.#clock.nowMs());
      if (++this.#ticks % 8 === 0) this.#proposals.sweep(this.#clock.nowMs());
      this.#membership.tick();
      if (this.#departing.size > 0) this.#syncPeers();
      if (this.#compactHeld && !this.#compacting && this.#ticks % this.#o.heartbeatTicks === 0) {
        this.#compacting = true;
        this.#compact().catch(() => {}).finally(() => {
          this.#compacting = false;
        });
      }
      this.#scheduleTick();
      this.#schedulePump();
    });
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#stopped) return;
    this.#pumpScheduled = true;
    this.#clock.defer(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /**
   * Carry out ready batches until the core has none or the write pipeline is full (a completing
   * write pumps again). See the module comment for the order.
   */
  #pump(): void {
    if (this.#stopped || this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#stopped && this.#raft.hasReady()) {
        if (this.#writesInFlight >= this.#o.writeBatchesInFlightMax) return;
        this.#carryOut(this.#raft.ready());
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#pumping = false;
    }
  }

  #carryOut(rd: Ready): void {
    this.#probe.ready?.(rd);
    for (const m of rd.messages) this.#sendPeer(m);
    const early = this.#faults.sendBeforePersist === true;
    if (early) { for (const m of rd.messagesAfterPersist) this.#sendPeer(m); }
    this.#noteStateChanges(rd);
    let snapshotData: number | undefined;
    if (rd.snapshot !== null) snapshotData = this.#beginInstall(rd.snapshot);
    if (rd.committed.length > 0) this.#queueApply(rd);
    for (const r of rd.readStates) this.#reads.get(r.requestId)?.resolve(r.index);
    for (const id of rd.readsFailed) {
      this.#reads.get(id)?.reject(new NotLeaderError(this.#raft.leaderId));
    }
    const batch = writeBatchOf(rd, snapshotData);
    this.#writesInFlight++;
    const durable = this.#enqueueWrite(async () => {
      if (batch === null) return;
      // The write may block the loop (a small LMDB commit is synchronous): what this batch sends
      // goes to the sockets first, so that followers write in parallel with this member.
      this.#transport.flush?.();
      const meter = this.#meter;
      const startMs = meter === null ? 0 : meter.nowMs();
      await this.#storage.write(batch);
      meter?.storageWritten(meter.nowMs() - startMs);
    });
    if (rd.snapshot !== null) this.#queueRestore(rd.snapshot, durable);
    durable.then(() => {
      if (this.#stopped) return;
      this.#probe.persisted?.(rd);
      if (!early) { for (const m of rd.messagesAfterPersist) this.#sendPeer(m); }
      this.#raft.advance(rd);
      this.#syncPeers();
    }).catch(() => {}).finally(() => {
      this.#writesInFlight--;
      this.#schedulePump();
    });
  }

  /**
   * Run `write` after every storage write queued before it (the storage takes one writer at a
   * time). A failure stops the member: it must not acknowledge anything after a failed write.
   */
  #enqueueWrite(write: () => Promise<void>): Promise<void> {
    const run = this.#writeChain.then(() => {
      if (this.#failure !== null) throw this.#failure;
      if (this.#stopped) throw new ShutdownError('the member stopped');
      return write();
    });
    this.#writeChain = run.catch((error: unknown) => {
      if (!(error instanceof ShutdownError)) this.#fail(error);
    });
    return run;
  }

  #sendPeer(m: RaftMessage): void {
    if (m.type === 'snapshot') {
      this.#snapshots.startSending(m);
      return;
    }
    this.#transport.send(m);
  }

  /** Hand committed entries to the executor, after whatever state-machine work is queued. */
  #queueApply(rd: Ready): void {
    const entries = rd.committed;
    // Any entry of another term at a proposal's index (a command, or another leader's no-op or
    // configuration) means that proposal is lost for good.
    for (const e of entries) {
      // A configuration change is answered once committed (it has no state-machine output).
      if (this.#proposals.checkCommitted(e.index, e.term) && e.type === 'config') {
        this.#proposals.settle(e.index, { ok: true, output: { members: e.members } });
      }
    }
    this.#probe.committed?.(entries);
    // Every batch goes behind whatever state-machine work is queued: a snapshot restore moves
    // the applied index, so entries after it must never overtake it, nor those queued behind it.
    this.#applyChain = this.#applyChain.then(() => {
      const meter = this.#meter;
      const startMs = meter === null ? 0 : meter.nowMs();
      return this.#executor.applyEntries(entries).then(() => {
        meter?.applied(meter.nowMs() - startMs, entries.length);
        this.#maybeSnapshot();
      });
    }).catch((error) => this.#fail(error));
  }

  #onApplied(result: ApplyResult<Output>): void {
    this.#probe.applied?.(result);
    if (this.#faults.resolveWithNextIndex === true) {
      this.#proposals.settle(result.index - 1, result);
      return;
    }
    this.#proposals.settle(result.index, result);
  }

  #noteStateChanges(rd: Ready): void {
    if (rd.stateChanges.length > 0) {
      // Sequencing is per term of leadership: a new term starts it afresh from the applied state.
      this.#requests.reset();
      this.#requests.leaderChanged();
      if (this.#raft.role === 'leader') {
        this.#termStartIndex = this.#raft.lastIndex;
        this.#membership.becameLeader();
        this.#termStartTerm = this.#raft.term;
      }
    }
    for (const c of rd.stateChanges) {
      if (c.term !== this.#lastTerm) this.#events.emit({ type: 'term', term: c.term });
      if (c.role !== this.#lastRole) {
        this.#events.emit({ type: 'role', role: c.role, term: c.term });
        this.#log.info(`role ${c.role} in term ${c.term}`, { role: c.role, term: c.term });
      }
      if (c.leaderId !== this.#lastLeader) {
        this.#events.emit({ type: 'leader', leaderId: c.leaderId, term: c.term });
      }
      this.#lastTerm = c.term;
      this.#lastRole = c.role;
      this.#lastLeader = c.leaderId;
    }
  }

  /**
   * Peers to talk to before this member has a configuration of its own (a member joining: the
   * answer to its join lists them). Ignored once a configuration is in its log.
   */
  learnPeers(members: readonly Member[]): void {
    if (this.#stopped || this.#raft.configuration() !== null) return;
    const peers = new Map<string, string>();
    for (const m of members) {
      if (m.id !== this.id && m.address !== undefined) peers.set(m.id, m.address);
    }
    this.#transport.setPeers(peers);
  }

  /** This member is in a configuration (its log, or a snapshot, holds one). */
  get configured(): boolean {
    return this.#raft.configuration() !== null;
  }

  /**
   * The transport's peers: every member of the configuration in effect, and each member it
   * removed, for two election timeouts after that (a removed leader still leads until its removal
   * commits and needs its followers' answers; a removed follower must still learn the change).
   */
  #syncPeers(): void {
    const config = this.#raft.configuration();
    if (config === null) return;
    const nowMs = this.#clock.nowMs();
    if (config.index !== this.#configIndex) {
      this.#configIndex = config.index;
      this.#membership.configurationChanged(config.index, config.members);
      const ids = new Set(config.members.map((m) => m.id));
      const keepMs = 2 * this.#o.electionTicks * this.#o.tickMs;
      for (const id of this.#configMembers) {
        if (!ids.has(id)) this.#departing.set(id, nowMs + keepMs);
      }
      for (const m of config.members) {
        this.#departing.delete(m.id);
        if (m.address !== undefined) this.#addresses.set(m.id, m.address);
      }
      this.#configMembers = [...ids];
    }
    const peers = new Map<string, string>();
    for (const m of config.members) {
      if (m.id !== this.id) peers.set(m.id, m.address ?? '');
    }
    for (const [id, untilMs] of this.#departing) {
      if (untilMs <= nowMs) this.#departing.delete(id);
      else if (id !== this.id && this.#addresses.has(id)) peers.set(id, this.#addresses.get(id)!);
    }
    const key = [...peers].map(([id, a]) => `${id}=${a}`).sort().join(',');
    if (key === this.#peersKey) return;
    this.#peersKey = key;
    this.#transport.setPeers(peers);
  }

  /**
   * Compact the log below the snapshot as far as allowed now: `compactionTrailingEntries` below
   * it, not past the global index while a member that is catching up still needs the entries
   * (see `MembershipDuties.compactionPoint`), and never past what a machine on disk has synced.
   * When that holds it back, it is tried again at every heartbeat interval (`#compactHeld`), so
   * the log shrinks once the member caught up or fell silent, without waiting for a snapshot.
   * Returns the index compacted to (or that was allowed).
   */
  async #compact(): Promise<number> {
    const index = this.#snapshotIndex;
    const full = index - this.#o.compactionTrailingEntries;
    let compactTo = this.#membership.compactionPoint(index);
    if (this.#executor.onDisk) {
      // Never past what the machine on disk has synced: an OS crash could take it back there
      // (the stored snapshot would then still cover it; this keeps the log replay short).
      compactTo = Math.min(compactTo, this.#executor.durableAppliedIndex);
    }
    this.#compactHeld = compactTo < full;
    // In steps of at most `compactionStepEntriesMax` entries, each its own write: the appends
    // queued meanwhile go between them, and no step holds the event loop for long (one compaction
    // of 100,000 entries read, decoded and removed them in 0.7 s on LMDB, every member at the same
    // index at once: no heartbeats, no answers to pings, an election, clients giving up).
    for (let first = this.#storage.firstIndex(); compactTo >= first;) {
      const stepTo = Math.min(compactTo, first + compactionStepEntriesMax - 1);
      // Checked again when the write runs: another compaction may have gone further meanwhile.
      await this.#enqueueWrite(async () => {
        if (stepTo >= this.#storage.firstIndex() && stepTo <= this.#snapshotIndex) {
          await this.#storage.compact(stepTo);
        }
      });
      const next = this.#storage.firstIndex();
      if (next <= first) break; // no progress (the snapshot moved under it): the next call goes on
      first = next;
    }
    return compactTo;
  }

  // ---- Snapshots --------------------------------------------------------------------------

  /** Every byte of a leader's snapshot is staged: let the core take it, unless a local snapshot runs. */
  #onSnapshotReceived(s: ReceivedSnapshot): void {
    if (this.#stopped) {
      void s.stage.abort().catch(() => {});
      return;
    }
    if (this.#snapshotting) {
      // A local snapshot is being stored: install right after it (never both at once).
      this.#clock.setTimer(this.#o.tickMs, () => this.#onSnapshotReceived(s));
      return;
    }
    // Two senders (a leader and a feeder, or two feeders) may finish at once: the one the core
    // takes is kept staged, the other aborted (the core may keep an earlier one pending).
    const previous = this.#staged;
    this.#staged = s;
    this.#raft.step({
      type: 'snapshot',
      from: s.from,
      to: this.id,
      term: s.term,
      index: s.meta.index,
      snapshotTerm: s.meta.term,
      snapshotTimeMs: s.meta.timeMs,
      members: s.meta.members,
    });
    const taken = this.#raft.snapshotToInstall();
    const isTaken = (r: ReceivedSnapshot | null) =>
      r !== null && taken !== null && taken.index === r.meta.index && taken.term === r.meta.term;
    if (isTaken(s)) {
      if (previous !== null) void previous.stage.abort().catch(() => {});
    } else {
      // Refused (a stale term, or older than one already pending) or not needed (the log already
      // holds what it covers: the core just committed it and answers the leader).
      void s.stage.abort().catch(() => {});
      this.#staged = isTaken(previous) ? previous : null;
      if (previous !== null && this.#staged === null) void previous.stage.abort().catch(() => {});
    }
    this.#schedulePump();
  }

  /** The core took a snapshot to install: the staged data goes into the same write. */
  #beginInstall(meta: SnapshotMeta): number {
    const s = this.#staged;
    assert(
      s !== null && s.meta.index === meta.index && s.meta.term === meta.term,
      `The core installs snapshot ${meta.index}/${meta.term}, staged is ${s?.meta.index ?? 'none'}`,
    );
    this.#staged = null;
    this.#installsPending++;
    this.#proposals.unknownUpTo(meta.index, `a snapshot at index ${meta.index} replaced the log`);
    return s.stage.id;
  }

  /** Once the install's write is durable, restore the state machine from it, in apply order. */
  #queueRestore(meta: SnapshotMeta, durable: Promise<void>): void {
    this.#applyChain = this.#applyChain.then(() => durable).then(async () => {
      if (this.#stopped) return;
      await this.#executor.restore(
        { index: meta.index, term: meta.term, timeMs: meta.timeMs },
        this.#storage.snapshots.read(),
      );
      this.#snapshotIndex = meta.index;
      this.#snapshotsInstalled++;
      this.#probe.installed?.(meta);
      this.#events.emit({ type: 'snapshotInstalled', index: meta.index, term: meta.term });
      this.#log.info(`snapshot installed at index ${meta.index}`);
    }).catch((error) => this.#fail(error)).finally(() => {
      this.#installsPending--;
    });
  }

  #maybeSnapshot(): void {
    if (this.#snapshotting || this.#stopped || this.#installsPending > 0) return;
    if (!this.#snapshotDue()) return;
    void this.takeSnapshot().then((index) => {
      // Entries applied while it was being stored may make the next one due at once.
      if (index > 0) this.#maybeSnapshot();
    }, () => {});
  }

  #snapshotDue(): boolean {
    const applied = this.#executor.lastAppliedIndex;
    const dueByEntries = applied - this.#snapshotIndex >= this.#o.snapshotEntriesThreshold;
    const dueByBytes = this.#storage.logBytes() >= this.#o.snapshotLogBytesThreshold &&
      applied > this.#snapshotIndex;
    return dueByEntries || dueByBytes;
  }

  /**
   * Snapshot the state machine now and compact the log below it (keeping
   * `compactionTrailingEntries`). Resolves with the snapshot's index (0 when none was taken:
   * nothing new, or an install is under way).
   */
  async takeSnapshot(): Promise<number> {
    if (this.#snapshotting || this.#installsPending > 0 || this.#staged !== null) return 0;
    if (this.#stopped) throw this.#refusal();
    this.#snapshotting = true;
    let stage: ReturnType<Storage['snapshots']['stage']> | null = null;
    let discard = () => {};
    try {
      const snap = this.#executor.takeSnapshot();
      discard = snap.discard;
      const { index, term, timeMs } = snap.meta;
      if (index <= this.#snapshotIndex) {
        snap.discard();
        return 0;
      }
      const meta: SnapshotMeta = {
        index,
        term,
        timeMs,
        members: configurationAt(this.#storage.configurations(), index),
      };
      stage = this.#storage.snapshots.stage(index, term);
      for await (const chunk of snap.chunks) await stage.append(chunk);
      await stage.finish();
      const id = stage.id;
      await this.#enqueueWrite(() => this.#storage.write({ snapshot: meta, snapshotData: id }));
      stage = null;
      this.#snapshotIndex = index;
      const compactTo = await this.#compact();
      this.#snapshotsTaken++;
      this.#probe.snapshotTaken?.(meta);
      this.#events.emit({ type: 'snapshotTaken', index, term });
      this.#log.info(
        `snapshot taken at index ${index}, log compacted to ${
          Math.max(compactTo, this.#storage.firstIndex() - 1)
        }`,
      );
      return index;
    } catch (error) {
      discard();
      if (stage !== null) void stage.abort().catch(() => {});
      if (!(error instanceof ShutdownError)) this.#fail(error);
      throw error;
    } finally {
      this.#snapshotting = false;
    }
  }

  // ---- Failure and shutdown ---------------------------------------------------------------

  /** Why a request is refused now that the member stops or stopped (certainly not proposed). */
  #refusal(): ShutdownError {
    return new ShutdownError(
      this.#failure === null
        ? 'the member is stopping'
        : `the member failed: ${this.#failure.message}`,
    );
  }

  /**
   * A storage failure or a bug: stop at once. The error keeps its kind (a broken invariant is not
   * relabelled a storage failure).
   */
  #fail(error: unknown): void {
    if (this.#failure !== null || this.#stopped) return;
    const e = error instanceof Error ? error : new Error(String(error));
    this.#failure = e;
    const kind = e instanceof AssertionError ? 'a broken invariant (a bug)' : 'a failure';
    const line = `stopping after ${kind}, no further acknowledgements: ${e.message}`;
    if (this.#log.error === undefined) this.#log.warn(line);
    else this.#log.error(line, { error: e.message });
    this.#events.emit({ type: 'failed', message: e.message });
    this.#halt(`the member failed: ${e.message}`);
  }

  #halt(why: string): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopping = true;
    this.#cancelTick?.();
    this.#proposals.unknownAll(why);
    const refusal = this.#failure === null
      ? new ShutdownError('the member stopped')
      : new ShutdownError(`the member failed: ${this.#failure.message}`);
    for (const r of this.#reads.values()) r.reject(refusal);
    this.#reads.clear();
    this.#snapshots.close();
    this.#requests.close();
    if (this.#staged !== null) void this.#staged.stage.abort().catch(() => {});
    this.#staged = null;
    this.#executor.close();
  }
}

/** The faults among `faults` named in `names` (each part of the member gets its own). */
function pickFaults<K extends string>(
  faults: Partial<Record<string, boolean>> | undefined,
  names: readonly K[],
): Partial<Record<K, boolean>> {
  const picked: Partial<Record<K, boolean>> = {};
  for (const name of names) if (faults?.[name] === true) picked[name] = true;
  return picked;
}

function writeBatchOf(rd: Ready, snapshotData: number | undefined): WriteBatch | null {
  if (
    rd.snapshot === null && rd.entries.length === 0 && rd.hardState === null &&
    rd.truncateFromIndex === null
  ) return null;
  const batch: WriteBatch = {};
  if (rd.snapshot !== null) batch.snapshot = rd.snapshot;
  if (snapshotData !== undefined) batch.snapshotData = snapshotData;
  if (rd.truncateFromIndex !== null) batch.truncateFromIndex = rd.truncateFromIndex;
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

export type { OutcomeUnknownError };

/**
 * A storage that already holds a configuration keeps it: the founding members given at a restart
 * are not used (as etcd ignores `--initial-cluster` once its data directory exists). When they
 * differ from the stored configuration, say so, naming both, instead of ignoring them silently.
 */
function warnIfOtherMembers(h: { members?: Member[]; logger: MemberLogger }, raft: Raft): void {
  const stored = raft.configuration();
  if (stored === null || h.members === undefined) return;
  const key = (ms: readonly Member[]) =>
    ms.map((m) => `${m.id}=${m.type}@${m.address ?? ''}`).sort().join(',');
  if (key(stored.members) === key(h.members)) return;
  const list = (ms: readonly Member[]) => ms.map((m) => `${m.id}=${m.type}`).join(',');
  h.logger.warn(
    `the founding members given (${
      list(h.members)
    }) are ignored: the storage already holds the configuration at index ${stored.index} (${
      list(stored.members)
    }); change members with join, leave, promote and demote`,
  );
}
