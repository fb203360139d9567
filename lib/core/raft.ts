/**
 * The Raft step machine: pure and deterministic. It reads storage synchronously but never writes
 * it, has no clock (time arrives as `tick()`), no sockets and no randomness but the injected
 * generator. Its driver calls `tick()`, `step(message)` and `propose(...)`, then takes a `Ready`
 * (what to persist, what to send, what to apply), carries it out, and calls `advance()`.
 *
 * The contract of a `Ready` (etcd-io/raft `rawnode.go` is the model):
 * 1. write `snapshot`, `entries` and `hardState` durably, as one transaction;
 * 2. `messages` may be sent at once, in parallel with that write;
 * 3. `messagesAfterPersist` only once the write is durable (votes and acknowledgements);
 * 4. apply `committed` in order; answer `readStates` once applied up to their index;
 * 5. call `advance(ready)` once the write is durable.
 *
 * Several readies may be outstanding (a driver may send the next batch's messages while the
 * previous batch is still being written), but their writes must become durable, and `advance`
 * be called, in the order the readies were taken.
 *
 * @example
 * ```ts
 * const raft = new Raft(storage, { id: 'a', random: seededRandom(1) });
 * raft.bootstrap([{ id: 'a', type: 'ACTIVE' }], 0);
 * while (raft.hasReady()) { const rd = raft.ready(); await persist(rd); raft.advance(rd); }
 * ```
 * @module
 */
import {
  assert,
  CompactedError,
  ConfigChangeInProgressError,
  LeadershipTransferError,
  NotCaughtUpError,
  NotLeaderError,
} from '../base/errors.ts';
import type { LogReader } from '../base/log-reader.ts';
import {
  type AppendMessage,
  type AppendResponseMessage,
  type AssignMessage,
  type Configuration,
  type ConfigureMessage,
  type ConfigureResponseMessage,
  type Entry,
  entryBytes,
  entryHeaderBytes,
  type FeedMessage,
  type FeedReportMessage,
  type FeedResponseMessage,
  type HardState,
  type HeartbeatResponseMessage,
  type Member,
  MemberSchema,
  MemberType,
  type RaftMessage,
  type SnapshotMessage,
  type SnapshotMeta,
  type VoteMessage,
  type VoteResponseMessage,
} from '../base/messages.ts';
import * as v from 'valibot';
import { type FedStatus, Feeder } from './fan-out.ts';
import { assignPassives } from './membership.ts';
import { parseRaftOptions, type RaftOptions, type RaftOptionsInput } from './options.ts';
import type { Progress, ProgressState } from './progress.ts';
import { tallyVotes } from './quorum.ts';
import { UncommittedQuota } from './quota.ts';
import { RaftLog } from './raft-log.ts';
import { randomInt } from './random.ts';
import { ReadOnly, type ReadState } from './read-only.ts';
import { Tracker } from './tracker.ts';

/** The role of an ACTIVE member. Non-voting members are always followers. */
export type Role = 'follower' | 'candidate' | 'leader';

/** One role, term or leader transition, in the order they happened. */
export type StateChange = { role: Role; term: number; leaderId: string | null };

export type { ReadState };

/** What the driver must do next; see the module comment for the order. */
export interface Ready {
  /** Numbers readies in the order they were taken (advance them in that order). */
  seq: number;
  /**
   * The term, vote and commit index to persist, or `null`. Present when the term or vote changed
   * (must be durable before `messagesAfterPersist` leave), or when the commit index changed and
   * entries or a snapshot are written anyway; a commit index change alone is never written.
   */
  hardState: HardState | null;
  /** A snapshot received from the leader to install (restore the state machine from it). */
  snapshot: SnapshotMeta | null;
  /**
   * Stored entries from this index on are to be dropped (before `entries` are appended), or
   * `null`: a member that became PASSIVE discards its uncommitted entries.
   */
  truncateFromIndex: number | null;
  /** Entries to append durably (replacing stored entries from the first one's index). */
  entries: Entry[];
  /** Messages that may leave now. */
  messages: RaftMessage[];
  /** Messages that may leave only once this ready's writes are durable. */
  messagesAfterPersist: RaftMessage[];
  /** Committed entries to apply, in order. */
  committed: Entry[];
  /** Read requests now safe to answer once applied up to their index. */
  readStates: ReadState[];
  /** Read requests that cannot be answered here (leadership lost): fail them with NotLeader. */
  readsFailed: number[];
  /** Every role, term and leader transition since the last ready, oldest first. */
  stateChanges: StateChange[];
}

/** A snapshot of the core's state, for `status()`. */
export type RaftStatus = {
  id: string;
  role: Role;
  term: number;
  vote: string | null;
  leaderId: string | null;
  polling: boolean;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  persistedIndex: number;
  members: Member[];
  configurationIndex: number;
  leadTransferee: string | null;
  progress: Record<
    string,
    {
      matchIndex: number;
      nextIndex: number;
      state: ProgressState;
      inflight: number;
      /** Ticks since the leader last heard from it. */
      heardTicksAgo: number;
      /** Removed or demoted, still sent entries until it stores that configuration. */
      departing: boolean;
    }
  >;
  membership: MembershipStatus;
};

/** Who feeds whom and how far each member is, as this member knows it (see `fan-out.ts`). */
export type MembershipStatus = {
  /** This member's type in the latest configuration (`null`: not listed, or none known). */
  selfType: MemberType | null;
  /** The passives this member feeds, and their progress. */
  feeding: Record<string, FedStatus>;
  /** The highest commit index this member learned (a RESERVE member learns it from pushes). */
  learnedCommitIndex: number;
  /** The global index: the lowest index every ACTIVE and live PASSIVE member stores. */
  globalIndex: number;
  /** On the leader: each feeder (by id) and the passives it was assigned. */
  assignment: Record<string, string[]>;
  /** On the leader: every PASSIVE member's last reported progress. */
  passives: Record<
    string,
    { matchIndex: number; lag: number; feeder: string | null; reportedTicksAgo: number | null }
  >;
  /** On the leader: RESERVE and INACTIVE members and what they acknowledged. */
  pushed: Record<string, { ackedConfigIndex: number; heardTicksAgo: number | null }>;
};

/**
 * One member's Raft state machine.
 *
 * Invariants (asserted): at most one leader per term from this member's view (a leader never
 * receives AppendEntries of its own term); entries at or below the commit index are never
 * rewritten; the commit index and the applied index never decrease.
 */
export class Raft {
  readonly id: string;
  readonly #o: RaftOptions;
  readonly #storage: LogReader;
  readonly #log: RaftLog;
  #term: number;
  #vote: string | null;
  #role: Role = 'follower';
  #leaderId: string | null = null;
  #polling = false;
  #tickCount = 0;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTicks = 0;
  #nowMs = 0;
  #lastLogTimeMs = 0;
  readonly #tracker: Tracker;
  readonly #reads: ReadOnly;
  readonly #quota: UncommittedQuota;
  #votes = new Map<string, boolean>();
  #messages: RaftMessage[] = [];
  #messagesAfterPersist: RaftMessage[] = [];
  #leadTransferee: string | null = null;
  #broadcastNeeded = false;
  /** The global index sent with appends, recomputed once per ready (it is advisory). */
  #globalIndex = 0;
  #lastReadyHardState: HardState;
  /** Sequence numbers of readies handed out and not yet advanced, oldest first. */
  #readiesOutstanding: number[] = [];
  #readySeq = 0;
  /** Ticks left during which this member refuses real votes (see `voteEmbargoTicks`). */
  #voteEmbargoTicks: number;
  #stateChanges: StateChange[] = [];
  #lastState: StateChange;
  /** The passives this member feeds (see `fan-out.ts`). */
  readonly #feeder: Feeder;
  /** On the leader: the last assignment computed, feeder id to passive ids. */
  #assignment = new Map<string, string[]>();
  /** On the leader: what each follower was last sent in `assign`, and at which tick. */
  #assignSent = new Map<string, { key: string; tick: number }>();
  /** On the leader: each PASSIVE member's last reported progress. */
  #passiveProgress = new Map<string, { matchIndex: number; feeder: string; tick: number }>();
  /** On the leader: what RESERVE and INACTIVE members acknowledged, and when. */
  #pushes = new Map<string, { ackedIndex: number; tick: number }>();
  /** The highest commit index learned from a leader's message (pushes included). */
  #learnedCommitIndex = 0;
  /** The global index a follower last received. */
  #receivedGlobalIndex = 0;
  /** This member was a non-voter in a committed configuration after the last input. */
  #wasFedPassive = false;
  /** The member that sent the last feed this member took (see `#fedBy`). */
  #feederId: string | null = null;

  constructor(storage: LogReader, options: RaftOptionsInput) {
    this.#o = parseRaftOptions(options);
    this.id = this.#o.id;
    this.#storage = storage;
    this.#log = new RaftLog(storage, this.#o.appliedIndex);
    const hard = storage.hardState();
    this.#term = hard.term;
    this.#vote = hard.vote;
    this.#lastReadyHardState = {
      term: hard.term,
      vote: hard.vote,
      commitIndex: this.#log.committedIndex,
    };
    this.#tracker = new Tracker(
      this.id,
      storage.configurations(),
      this.#o.inflightMessagesMax,
      this.#o.inflightBytesMax,
    );
    this.#reads = new ReadOnly(this.#o.readsPendingMax);
    this.#quota = new UncommittedQuota(this.#o.uncommittedBytesMax);
    const last = this.#log.lastIndex();
    if (last >= this.#log.firstIndex()) {
      this.#lastLogTimeMs = this.#log.entries(last, last + 1, 1)[0]!.timeMs;
    } else this.#lastLogTimeMs = storage.snapshotMeta()?.timeMs ?? 0;
    this.#resetRandomizedElectionTicks();
    this.#lastState = { role: this.#role, term: this.#term, leaderId: this.#leaderId };
    this.#voteEmbargoTicks = this.#o.voteEmbargoTicks;
    this.#tracker.commitTo(this.#log.committedIndex);
    this.#learnedCommitIndex = this.#log.committedIndex;
    this.#feeder = new Feeder({
      id: this.id,
      log: this.#log,
      snapshotMeta: () => this.#storage.snapshotMeta(),
      term: () => this.#term,
      leaderId: () => this.#leaderId,
      tick: () => this.#tickCount,
      send: (m, afterPersist) => this.#send(m, afterPersist),
      messageBytesMax: this.#o.messageBytesMax,
      inflightMessagesMax: this.#o.inflightMessagesMax,
      inflightBytesMax: this.#o.inflightBytesMax,
      snapshotSendTicksMax: this.#o.snapshotSendTicksMax,
      silenceTicks: this.#o.feederSilenceHeartbeats * this.#o.heartbeatTicks,
      faults: this.#o.unsafeFaults,
    });
    this.#checkBecamePassive();
  }

  // ---- Inputs -------------------------------------------------------------------------------

  /**
   * Write the first configuration of a new cluster as entry 1 (term 1), committed. Every founding
   * member bootstraps with the same members, so their logs agree. Only on an empty log.
   */
  bootstrap(members: Member[], timeMs: number): void {
    if (this.#log.lastIndex() !== 0 || this.#term !== 0) {
      throw new RangeError(
        `Cannot bootstrap: the log is not empty (last index ${this.#log.lastIndex()}, term ${this.#term})`,
      );
    }
    this.#term = 1;
    const entry: Entry = {
      type: 'config',
      index: 1,
      term: 1,
      timeMs,
      members: members.map((m) => ({ ...m })),
    };
    this.#log.append([entry]);
    this.#lastLogTimeMs = timeMs;
    this.#tracker.push({ index: 1, term: 1, members: entry.members });
    this.#log.commitTo(1);
  }

  /**
   * Advance logical time by one tick. `nowMs`, when given, is the driver's clock, used only to
   * stamp new entries with log time; the core never reads a clock itself.
   */
  tick(nowMs?: number): void {
    if (nowMs !== undefined && nowMs > this.#nowMs) this.#nowMs = Math.floor(nowMs);
    this.#tickCount++;
    if (this.#voteEmbargoTicks > 0) this.#voteEmbargoTicks--;
    if (this.#role === 'leader') this.#tickLeader();
    else this.#tickFollower();
    if (this.#tickCount % this.#o.heartbeatTicks === 0) this.#feedBeat();
    this.#noteState();
  }

  /**
   * Start an election now, as if the election timer had fired: poll first, then campaign if a
   * majority would vote. Does nothing on a leader or a member that is not ACTIVE.
   */
  campaign(): void {
    if (this.#role === 'leader' || !this.#promotable()) return;
    if (this.#role === 'candidate') this.#becomeFollower(this.#term, null);
    this.#startPoll();
    this.#noteState();
  }

  /** Feed one validated message from the network. Messages for another member are ignored. */
  step(m: RaftMessage): void {
    this.#step(m);
    this.#checkBecamePassive();
    this.#noteState();
  }

  #step(m: RaftMessage): void {
    if (m.to !== this.id) return;
    // Snapshot bytes and forwarded client requests are the driver's; the core sees neither.
    if (
      m.type === 'snapshotChunk' || m.type === 'snapshotChunkResponse' || m.type === 'forward' ||
      m.type === 'forwardResponse'
    ) return;
    // Membership traffic never raises a voter's term: each handler decides (see `membership.ts`).
    switch (m.type) {
      case 'feed':
        return this.#onFeed(m);
      case 'feedResponse':
        return this.#onFeedResponse(m);
      case 'feedReport':
        return this.#onFeedReport(m);
      case 'configure':
        return this.#onConfigure(m);
      case 'configureResponse':
        return this.#onConfigureResponse(m);
      case 'snapshot':
        // A fed member answers a snapshot as a feed (the leader takes that as an append answer).
        if (this.#isFed() || this.#fedBy(m.from)) return this.#onFeedSnapshot(m);
        break;
      case 'vote':
        if (
          this.#tracker.latest() !== null && !this.#tracker.voters.includes(m.from) &&
          this.#o.unsafeFaults.adoptTermFromNonVoters !== true
        ) {
          // Not a voter here (removed, demoted, or not yet promoted as far as we know): refused,
          // and its term is not adopted, so a removed member cannot disrupt the cluster.
          if (m.preVote) this.#respondVote(m, false);
          return;
        }
        break;
    }
    if (m.term > this.#term) {
      if (m.type === 'vote') {
        const inLease = this.#leaderId !== null && this.#electionElapsed < this.#o.electionTicks;
        if (!m.transfer && inLease) {
          // A live leader: refuse disruptions by a member that merely lost touch with it.
          if (m.preVote) this.#respondVote(m, false);
          return;
        }
      }
      const pollTraffic = (m.type === 'vote' && m.preVote) ||
        (m.type === 'voteResponse' && m.preVote && m.granted);
      if (!pollTraffic) {
        const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ||
            m.type === 'assign'
          ? m.from
          : null;
        this.#becomeFollower(m.term, leader);
      }
    } else if (m.term < this.#term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // A deposed leader: tell it the newer term so it steps down.
        this.#send(
          {
            type: 'appendResponse',
            from: this.id,
            to: m.from,
            term: this.#term,
            success: false,
            matchIndex: 0,
            hintIndex: 0,
            hintTerm: 0,
          },
          true,
        );
      } else if (m.type === 'vote' && m.preVote) {
        this.#respondVote(m, false);
      }
      return;
    }
    switch (m.type) {
      case 'vote':
        return this.#onVote(m);
      case 'voteResponse':
        return this.#onVoteResponse(m);
      case 'append':
        this.#heardFromLeader(m.from);
        return this.#onAppend(m);
      case 'appendResponse':
        return this.#onAppendResponse(m);
      case 'heartbeat':
        this.#heardFromLeader(m.from);
        if (m.commitIndex > this.#log.lastIndex()) {
          // The leader believes we hold entries we do not: our log was lost. Say where it ends.
          this.#respondAppend(m.from, false, m.commitIndex, this.#log.lastIndex(), 0);
        }
        if (m.commitIndex > this.#log.committedIndex && m.commitIndex <= this.#log.lastIndex()) {
          this.#commitTo(m.commitIndex);
        }
        this.#send({
          type: 'heartbeatResponse',
          from: this.id,
          to: m.from,
          term: this.#term,
          readSeq: m.readSeq,
        }, true);
        return;
      case 'heartbeatResponse':
        return this.#onHeartbeatResponse(m);
      case 'snapshot':
        this.#heardFromLeader(m.from);
        return this.#onSnapshot(m);
      case 'timeoutNow':
        if (this.#promotable()) this.#campaign(true);
        return;
      case 'assign':
        return this.#onAssign(m);
    }
  }

  /**
   * Append one command to the leader's log. Returns its index and term: its outcome is the
   * state machine's output for that index if the entry there still has that term when applied.
   * Throws `NotLeaderError`, `LeadershipTransferError` or `ProposalDroppedError`.
   */
  propose(data: Uint8Array, timeMs: number): { index: number; term: number } {
    const r = this.proposeBatch([data], timeMs);
    return { index: r.firstIndex, term: r.term };
  }

  /** Append several commands at consecutive indexes; returns the first index and the term. */
  proposeBatch(
    commands: readonly Uint8Array[],
    timeMs: number,
  ): { firstIndex: number; term: number } {
    this.#assertCanPropose();
    let bytes = 0;
    for (const c of commands) bytes += c.byteLength + entryHeaderBytes;
    this.#quota.admit(bytes);
    const time = this.#stampTime(timeMs);
    const first = this.#log.lastIndex() + 1;
    const entries: Entry[] = commands.map((data, i) => ({
      type: 'command',
      index: first + i,
      term: this.#term,
      timeMs: time,
      data,
    }));
    this.#appendAsLeader(entries, bytes);
    return { firstIndex: first, term: this.#term };
  }

  /**
   * Propose a new configuration (the full member list). One change at a time: throws
   * `ConfigChangeInProgressError` while the previous one is uncommitted or before the leader has
   * committed an entry of its term (retryable), and `ConfigChangeInvalidError` for a configuration
   * with no ACTIVE member, with a member listed twice, that adds or removes more than one voter,
   * that leaves fewer than `activeMembersMin` ACTIVE members, or that makes a member ACTIVE that
   * was not PASSIVE. A PASSIVE member becomes ACTIVE only once caught up (`NotCaughtUpError`,
   * retryable) and only with at most `messageBytesMax` of entries uncommitted before the change
   * (`ConfigChangeInProgressError`): the promoted member then receives those entries and the
   * change in one message, so that it never holds uncommitted entries as a PASSIVE member.
   */
  proposeConfiguration(members: Member[], timeMs: number): { index: number; term: number } {
    this.#assertCanPropose();
    for (const m of members) {
      if (!v.is(MemberSchema, m)) throw new TypeError(`Invalid member: ${JSON.stringify(m)}`);
    }
    this.#tracker.checkChange(members, this.#o.activeMembersMin);
    const latest = this.#tracker.latest();
    if (latest !== null && latest.index > this.#log.committedIndex) {
      throw new ConfigChangeInProgressError(latest.index);
    }
    if (this.#log.term(this.#log.committedIndex) !== this.#term) {
      throw new ConfigChangeInProgressError(this.#log.lastIndex());
    }
    const promoted = members.filter((m) =>
      m.type === MemberType.ACTIVE && !this.#tracker.voters.includes(m.id)
    );
    for (const m of promoted) this.#checkCaughtUp(m.id);
    if (promoted.length > 0 && this.#quota.bytes > this.#o.messageBytesMax) {
      throw new ConfigChangeInProgressError(this.#log.lastIndex());
    }
    const index = this.#log.lastIndex() + 1;
    const entry: Entry = {
      type: 'config',
      index,
      term: this.#term,
      timeMs: this.#stampTime(timeMs),
      members: members.map((m) => ({ ...m })),
    };
    this.#appendAsLeader([entry], entryBytes(entry));
    return { index, term: this.#term };
  }

  /**
   * Ask for a linearizable read (read index): once a majority confirms this member is still the
   * leader, a `ReadState` with the commit index at receipt is returned in a `Ready`.
   */
  readIndex(requestId: number): void {
    if (this.#role !== 'leader') throw new NotLeaderError(this.#leaderId);
    this.#reads.admit();
    if (this.#log.term(this.#log.committedIndex) !== this.#term) {
      this.#reads.awaitTermCommit(requestId);
      return;
    }
    this.#reads.queue(requestId, this.#log.committedIndex, this.#tracker, this.id);
  }

  /**
   * A read served within the leader's lease: no round trip, relying on bounded clock drift (see
   * `lib/core/read-only.ts`). Falls back to `readIndex` when the lease has lapsed, while a
   * leadership transfer runs (and an election timeout after it), and before the leader has
   * committed an entry of its term.
   */
  leaseRead(requestId: number): void {
    if (
      this.#role === 'leader' && this.#log.term(this.#log.committedIndex) === this.#term &&
      this.#reads.leaseValid(
        this.#tracker,
        this.id,
        this.#tickCount,
        this.#o.electionTicks,
        this.#o.leaseDriftTicks,
        this.#o.unsafeFaults.leaseReadDuringTransfer === true,
      )
    ) {
      this.#reads.readStates.push({ requestId, index: this.#log.committedIndex });
      return;
    }
    this.readIndex(requestId);
  }

  /** Hand leadership to `to`: catch it up, then tell it to campaign at once. */
  transferLeadership(to: string): void {
    if (this.#role !== 'leader') throw new NotLeaderError(this.#leaderId);
    if (to === this.id) return;
    if (!this.#tracker.voters.includes(to)) {
      throw new RangeError(`Cannot transfer leadership to ${to}: not an ACTIVE member`);
    }
    this.#leadTransferee = to;
    this.#reads.transferStarted();
    this.#electionElapsed = 0;
    const pr = this.#tracker.progress.get(to)!;
    if (pr.matchIndex === this.#log.lastIndex()) this.#sendTimeoutNow(to);
    else this.#sendAppend(to, true);
  }

  /** The driver could not deliver a snapshot to `to`: fall back to probing. */
  reportSnapshotFailed(to: string): void {
    if (this.#feeder.snapshotFailed(to)) return;
    const pr = this.#tracker.progress.get(to);
    if (pr === undefined || pr.state !== 'snapshot') return;
    pr.pendingSnapshotIndex = 0;
    pr.becomeProbe();
  }

  /** The driver lost its connection to `to`: stop streaming optimistically to it. */
  reportUnreachable(to: string): void {
    this.#feeder.unreachable(to);
    const pr = this.#tracker.progress.get(to);
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  /**
   * Whether snapshot chunks from `from` at `term` may be staged here: from the leader of this
   * term, or, on a member fed by followers (not a voter), from any member (its feeder's term may
   * be older than ours: committed state is the same everywhere).
   */
  acceptsSnapshotFrom(from: string, term: number): boolean {
    if (this.#isFed() || this.#fedBy(from)) return true;
    return term === this.#term && from === this.#leaderId;
  }

  // ---- Ready / advance ----------------------------------------------------------------------

  /** True when there is something for the driver to do. */
  hasReady(): boolean {
    return (
      // Only a leader broadcasts: a flag left by one that stepped down is no work (it would make
      // a driver that pumps while this is true spin forever).
      (this.#role === 'leader' && (this.#broadcastNeeded || this.#reads.roundNeeded)) ||
      this.#messages.length > 0 ||
      this.#messagesAfterPersist.length > 0 ||
      this.#reads.readStates.length > 0 ||
      this.#reads.failed.length > 0 ||
      this.#stateChanges.length > 0 ||
      this.#log.hasEntriesToPersist() ||
      this.#log.hasTruncationToPersist() ||
      this.#log.hasSnapshotToPersist() ||
      this.#log.hasEntriesToApply() ||
      this.#termOrVoteChanged()
    );
  }

  /** Take the next batch of work. Call `advance(ready)` when its writes are durable. */
  ready(): Ready {
    if (this.#role === 'leader') {
      // Members silent for an election timeout do not hold compaction back: when they are
      // back, a snapshot catches them up.
      this.#globalIndex = this.#tracker.globalIndex(
        this.#log.persistedIndex(),
        this.#livePassiveIndexes(),
        (pr) => this.#tickCount - pr.heardTick <= this.#o.electionTicks,
      );
    }
    this.#flushBroadcasts();
    const snapshot = this.#log.takeSnapshotToPersist();
    const truncateFromIndex = this.#log.takeTruncation();
    const entries = this.#log.takeEntriesToPersist();
    // A new term or vote must be durable before we answer; the commit index need not be (it is
    // learned again from the leader), so it never costs a sync of its own: it rides along with
    // writes that happen anyway (etcd's MustSync rule).
    const commitChanged = this.#lastReadyHardState.commitIndex !== this.#log.committedIndex;
    const hardState = this.#termOrVoteChanged() ||
        (commitChanged && (entries.length > 0 || snapshot !== null || truncateFromIndex !== null))
      ? this.#hardState()
      : null;
    if (hardState !== null) this.#lastReadyHardState = hardState;
    const rd: Ready = {
      seq: ++this.#readySeq,
      hardState,
      snapshot,
      truncateFromIndex,
      entries,
      messages: this.#messages,
      messagesAfterPersist: this.#messagesAfterPersist,
      committed: this.#log.takeEntriesToApply(this.#o.committedBytesMax),
      readStates: this.#reads.readStates,
      readsFailed: this.#reads.failed,
      stateChanges: this.#stateChanges,
    };
    this.#stateChanges = [];
    this.#messages = [];
    this.#messagesAfterPersist = [];
    this.#reads.readStates = [];
    this.#reads.failed = [];
    this.#readiesOutstanding.push(rd.seq);
    return rd;
  }

  /** The writes of `rd` are durable. */
  advance(rd: Ready): void {
    assert(
      this.#readiesOutstanding[0] === rd.seq,
      `advance() out of order: ready ${rd.seq}, oldest outstanding ${this.#readiesOutstanding[0]}`,
    );
    this.#readiesOutstanding.shift();
    if (rd.snapshot !== null) this.#log.stableSnapshotTo(rd.snapshot);
    if (rd.truncateFromIndex !== null) this.#log.stableTruncation();
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) this.#log.stableTo(last.index, last.term);
    // Committing may make the leader step down (it removed or demoted itself): check again.
    if (this.#role === 'leader' && this.#maybeCommit() && this.#role === 'leader') {
      this.#broadcastNeeded = true;
    }
    this.#checkBecamePassive();
    this.#noteState();
  }

  // ---- Queries ------------------------------------------------------------------------------

  get role(): Role {
    return this.#role;
  }
  get term(): number {
    return this.#term;
  }
  get leaderId(): string | null {
    return this.#leaderId;
  }
  get commitIndex(): number {
    return this.#log.committedIndex;
  }
  get lastIndex(): number {
    return this.#log.lastIndex();
  }
  /** Term of the entry at `index`, or `undefined` when compacted or absent. */
  termAt(index: number): number | undefined {
    return this.#log.term(index);
  }
  /** The configuration in effect (the latest in the log, committed or not). */
  configuration(): Configuration | null {
    return this.#tracker.latest();
  }
  /** This member's type in the configuration in effect (`null`: not listed, or none known). */
  get memberType(): MemberType | null {
    return this.#tracker.typeOf(this.id);
  }
  /** The PASSIVE members this member feeds now. */
  get feeding(): readonly string[] {
    return this.#feeder.ids();
  }

  /** The snapshot received from the leader and not yet durable, if any (the driver installs it). */
  snapshotToInstall(): SnapshotMeta | null {
    return this.#log.pendingSnapshot();
  }

  status(): RaftStatus {
    const config = this.#tracker.latest();
    const progress: RaftStatus['progress'] = {};
    for (const [id, pr] of this.#tracker.progress) {
      progress[id] = {
        matchIndex: pr.matchIndex,
        nextIndex: pr.nextIndex,
        state: pr.state,
        inflight: pr.inflights.count,
        heardTicksAgo: this.#tickCount - pr.heardTick,
        departing: pr.departing,
      };
    }
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leaderId: this.#leaderId,
      polling: this.#polling,
      commitIndex: this.#log.committedIndex,
      appliedIndex: this.#log.appliedIndex,
      firstIndex: this.#log.firstIndex(),
      lastIndex: this.#log.lastIndex(),
      persistedIndex: this.#log.persistedIndex(),
      members: config?.members.map((m) => ({ ...m })) ?? [],
      configurationIndex: config?.index ?? 0,
      leadTransferee: this.#leadTransferee,
      progress,
      membership: this.#membershipStatus(),
    };
  }

  // ---- Timers -------------------------------------------------------------------------------

  #tickFollower(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#randomizedElectionTicks && this.#promotable()) {
      if (this.#role === 'candidate') this.#becomeFollower(this.#term, null);
      this.#startPoll();
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#o.electionTicks) {
      this.#electionElapsed = 0;
      if (!this.#tracker.quorumActive()) {
        // Check quorum: a leader cut off from a majority stops serving.
        this.#becomeFollower(this.#term, null);
        return;
      }
      for (const pr of this.#tracker.progress.values()) pr.recentActive = false;
      if (this.#leadTransferee !== null) {
        // A transfer that did not finish in an election timeout is abandoned; its target may
        // still win with votes that ignored our lease, so the lease stays void a while longer.
        this.#leadTransferee = null;
        this.#reads.transferEnded(this.#tickCount, this.#o.electionTicks);
      }
    }
    if (this.#heartbeatElapsed >= this.#o.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
      this.#leadMembership();
    }
    for (const [id, pr] of this.#tracker.progress) {
      if (
        pr.state === 'snapshot' &&
        this.#tickCount - pr.snapshotSinceTick > this.#o.snapshotSendTicksMax
      ) {
        pr.becomeProbe(); // its answer may have been lost: ask where it stands
        this.#sendAppend(id, true);
      }
    }
  }

  #resetRandomizedElectionTicks(): void {
    const t = this.#o.electionTicks;
    this.#randomizedElectionTicks = randomInt(this.#o.random, t, 2 * t);
  }

  // ---- Role changes -------------------------------------------------------------------------

  #becomeFollower(term: number, leaderId: string | null): void {
    assert(term >= this.#term, `Term may not decrease: ${this.#term} to ${term}`);
    const wasLeader = this.#role === 'leader';
    this.#noteState();
    if (term !== this.#term) {
      this.#term = term;
      this.#vote = null;
      this.#feeder.clear(); // an assignment holds for the term of the leader that made it
    }
    this.#role = 'follower';
    this.#leaderId = leaderId;
    this.#polling = false;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#resetRandomizedElectionTicks();
    if (wasLeader) {
      this.#feeder.clear();
      this.#assignment.clear();
      this.#assignSent.clear();
      this.#passiveProgress.clear();
      this.#pushes.clear();
      this.#tracker.clearProgress();
      this.#leadTransferee = null;
      this.#quota.reset();
      this.#broadcastNeeded = false;
      this.#reads.failAll();
    }
  }

  #startPoll(): void {
    this.#polling = true;
    this.#leaderId = null;
    this.#electionElapsed = 0;
    this.#resetRandomizedElectionTicks();
    this.#votes = new Map([[this.id, true]]);
    if (tallyVotes(this.#tracker.voters, this.#votes) === 'won') return this.#campaign(false);
    // A poll changes nothing durable, so it may leave at once.
    this.#requestVotes(this.#term + 1, true, false);
  }

  #campaign(transfer: boolean): void {
    this.#noteState();
    this.#term += 1;
    this.#vote = this.id;
    this.#role = 'candidate';
    this.#leaderId = null;
    this.#polling = false;
    this.#noteState();
    this.#electionElapsed = 0;
    this.#resetRandomizedElectionTicks();
    this.#votes = new Map([[this.id, true]]);
    if (tallyVotes(this.#tracker.voters, this.#votes) === 'won') return this.#becomeLeader();
    this.#requestVotes(this.#term, false, transfer);
  }

  /**
   * Ask every other voter for its vote (or, for a poll, whether it would vote) at `term`. Real
   * votes leave only once our own vote is durable: otherwise a crash could let us vote twice in
   * this term.
   */
  #requestVotes(term: number, preVote: boolean, transfer: boolean): void {
    const lastLogIndex = this.#log.lastIndex();
    const lastLogTerm = this.#log.lastTerm();
    for (const to of this.#tracker.voters) {
      if (to === this.id) continue;
      this.#send({
        type: 'vote',
        from: this.id,
        to,
        term,
        lastLogIndex,
        lastLogTerm,
        preVote,
        transfer,
      }, !preVote);
    }
  }

  #becomeLeader(): void {
    assert(this.#role === 'candidate', `Only a candidate becomes leader, not a ${this.#role}`);
    this.#role = 'leader';
    this.#leaderId = this.id;
    this.#noteState();
    this.#polling = false;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#leadTransferee = null;
    this.#reads.reset();
    this.#tracker.resetProgress(this.#log.lastIndex() + 1);
    // Everyone counts as heard from at the start of the term: a new leader waits a full silence
    // before it gives a follower's passives to another, or the balancer replaces anyone.
    for (const pr of this.#tracker.progress.values()) pr.heardTick = this.#tickCount;
    this.#feeder.clear();
    if (this.#o.unsafeFaults.commitOlderTermByCount === true) {
      this.#broadcastNeeded = true;
      return;
    }
    const noop: Entry = {
      type: 'noop',
      index: this.#log.lastIndex() + 1,
      term: this.#term,
      timeMs: this.#stampTime(this.#nowMs),
    };
    this.#appendAsLeader([noop], entryBytes(noop));
  }

  #promotable(): boolean {
    return this.#tracker.mayCampaign();
  }

  #heardFromLeader(leaderId: string): void {
    assert(
      this.#role !== 'leader',
      `Two leaders in term ${this.#term}: ${this.id} and ${leaderId}`,
    );
    if (this.#role === 'candidate') this.#becomeFollower(this.#term, leaderId);
    this.#electionElapsed = 0;
    this.#leaderId = leaderId;
    this.#polling = false;
  }

  // ---- Elections ----------------------------------------------------------------------------

  #onVote(m: VoteMessage): void {
    const faults = this.#o.unsafeFaults;
    const candidateIsVoter = this.#tracker.voters.includes(m.from);
    const canVote = this.#vote === m.from || (this.#vote === null && this.#leaderId === null) ||
      (m.preVote && m.term > this.#term) || faults.voteTwiceInTerm === true;
    const logOk = this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm) ||
      faults.voteWithoutLogCheck === true;
    const embargoed = !m.preVote && this.#voteEmbargoTicks > 0;
    const grant = candidateIsVoter && canVote && logOk && !embargoed && this.#role !== 'leader';
    if (grant && !m.preVote) {
      this.#electionElapsed = 0;
      this.#vote = m.from;
    }
    this.#respondVote(m, grant);
  }

  #respondVote(m: VoteMessage, granted: boolean): void {
    const term = granted ? m.term : this.#term;
    this.#send({
      type: 'voteResponse',
      from: this.id,
      to: m.from,
      term,
      granted,
      preVote: m.preVote,
    }, this.#o.unsafeFaults.voteBeforeDurable !== true);
  }

  #onVoteResponse(m: VoteResponseMessage): void {
    if (m.preVote) {
      if (!this.#polling || this.#role !== 'follower') return;
      if (m.granted && m.term !== this.#term + 1) return;
      this.#votes.set(m.from, m.granted);
      const result = tallyVotes(this.#tracker.voters, this.#votes);
      if (result === 'won') this.#campaign(false);
      else if (result === 'lost') this.#polling = false;
      return;
    }
    if (this.#role !== 'candidate' || m.term !== this.#term) return;
    this.#votes.set(m.from, m.granted);
    const result = tallyVotes(this.#tracker.voters, this.#votes);
    if (result === 'won') this.#becomeLeader();
    else if (result === 'lost') this.#becomeFollower(this.#term, null);
  }

  // ---- Replication: follower side -----------------------------------------------------------

  #onAppend(m: AppendMessage): void {
    let prevIndex = m.prevLogIndex;
    let prevTerm = m.prevLogTerm;
    let entries = m.entries;
    if (m.globalIndex > this.#receivedGlobalIndex) this.#receivedGlobalIndex = m.globalIndex;
    if (this.#fedPassive()) {
      // A PASSIVE member being promoted: it takes uncommitted entries only together with the
      // change that makes it ACTIVE (the leader sends them so); anything else stays committed.
      const promoting = entries.find((e) =>
        e.type === 'config' && e.members.some((x) => x.id === this.id && x.type === 'ACTIVE')
      );
      const end = promoting?.index ?? m.commitIndex;
      if (entries.length > 0 && entries[entries.length - 1]!.index > end) {
        entries = entries.filter((e) => e.index <= end);
      }
    }
    const commit = this.#log.committedIndex;
    if (prevIndex < commit) {
      // Entries up to our commit index match the leader's already: skip them.
      const skip = Math.min(commit - prevIndex, entries.length);
      if (skip === entries.length) {
        this.#respondAppend(m.from, true, commit, 0, 0);
        return;
      }
      const anchor = entries[skip - 1];
      prevIndex = commit;
      prevTerm = anchor === undefined ? prevTerm : anchor.term;
      entries = entries.slice(skip);
      if (anchor !== undefined) {
        assert(
          this.#log.matchTerm(prevIndex, prevTerm),
          `Committed entry ${prevIndex} differs from the leader's (term ${prevTerm})`,
        );
      }
    }
    if (!this.#log.matchTerm(prevIndex, prevTerm)) {
      const last = this.#log.lastIndex();
      if (prevIndex > last) {
        this.#respondAppend(m.from, false, m.prevLogIndex, last, 0);
      } else {
        const conflictTerm = this.#log.term(prevIndex) ?? 0;
        let first = prevIndex;
        const floor = Math.max(this.#log.firstIndex(), commit + 1);
        while (first > floor && this.#log.term(first - 1) === conflictTerm) first--;
        this.#respondAppend(m.from, false, m.prevLogIndex, first, conflictTerm);
      }
      return;
    }
    const lastNew = prevIndex + entries.length;
    const conflict = this.#log.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > commit, `Conflict at committed index ${conflict} (commit ${commit})`);
      const fresh = entries.slice(conflict - entries[0]!.index);
      const truncating = conflict <= this.#log.lastIndex();
      this.#log.append(fresh);
      this.#noteAppended(fresh, truncating ? conflict : 0);
    }
    const newCommit = Math.min(m.commitIndex, lastNew);
    if (newCommit > this.#log.committedIndex) this.#commitTo(newCommit);
    this.#respondAppend(m.from, true, lastNew, 0, 0);
  }

  #respondAppend(
    to: string,
    success: boolean,
    matchIndex: number,
    hintIndex: number,
    hintTerm: number,
  ): void {
    this.#send({
      type: 'appendResponse',
      from: this.id,
      to,
      term: this.#term,
      success,
      matchIndex,
      hintIndex,
      hintTerm,
    }, this.#o.unsafeFaults.ackBeforeDurable !== true);
  }

  #onSnapshot(m: SnapshotMessage): void {
    const commit = this.#log.committedIndex;
    if (m.index <= commit) {
      this.#respondAppend(m.from, true, commit, 0, 0);
      return;
    }
    if (this.#log.matchTerm(m.index, m.snapshotTerm)) {
      // We already hold everything the snapshot covers: just commit it.
      this.#commitTo(m.index);
      this.#respondAppend(m.from, true, m.index, 0, 0);
      return;
    }
    const meta: SnapshotMeta = {
      index: m.index,
      term: m.snapshotTerm,
      timeMs: m.snapshotTimeMs,
      members: m.members,
    };
    this.#log.restore(meta);
    this.#lastLogTimeMs = m.snapshotTimeMs;
    this.#tracker.reset({ index: m.index, term: m.snapshotTerm, members: m.members });
    this.#respondAppend(m.from, true, m.index, 0, 0);
  }

  // ---- Replication: leader side -------------------------------------------------------------

  #onAppendResponse(m: AppendResponseMessage): void {
    if (this.#role !== 'leader') return;
    const pr = this.#tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.heardTick = this.#tickCount;
    if (!m.success) {
      // A member whose log is shorter than what it acknowledged has lost its log.
      const lostLog = m.hintTerm === 0 && m.hintIndex < pr.matchIndex;
      if (pr.state === 'replicate') {
        if (m.matchIndex < pr.matchIndex || (m.matchIndex === pr.matchIndex && !lostLog)) return; // stale
        pr.becomeProbe();
      } else if (pr.state === 'probe') {
        if (m.matchIndex !== pr.nextIndex - 1) return; // stale
      } else return;
      if (m.matchIndex <= pr.matchIndex) {
        // It refused an index it had acknowledged: it lost its log (its data directory was
        // wiped). Start over from what it still has; a compacted log then sends a snapshot.
        pr.matchIndex = Math.min(
          pr.matchIndex,
          m.hintTerm === 0 ? m.hintIndex : Math.max(0, m.hintIndex - 1),
        );
      }
      pr.nextIndex = Math.max(pr.matchIndex + 1, Math.min(m.matchIndex, this.#hintNextIndex(m)));
      pr.probeSent = false;
      this.#sendAppend(m.from, true);
      return;
    }
    const wasPaused = pr.paused();
    if (!pr.update(m.matchIndex)) return;
    if (pr.departing && pr.matchIndex >= (this.#tracker.latest()?.index ?? 0)) {
      this.#tracker.progress.delete(m.from); // it stores the change that removed it: done
      return;
    }
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.matchIndex >= pr.pendingSnapshotIndex) {
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeTo(pr.matchIndex);
    if (this.#maybeCommit()) {
      if (this.#role !== 'leader') return; // it committed its own removal or demotion
      this.#broadcastNeeded = true;
    }
    if (wasPaused || pr.state === 'replicate') {
      while (this.#sendAppend(m.from, false)) { /* fill the window */ }
    }
    if (this.#leadTransferee === m.from && pr.matchIndex === this.#log.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
  }

  /** Where to resume after a refusal, from the follower's hint. */
  #hintNextIndex(m: AppendResponseMessage): number {
    if (m.hintTerm === 0) return m.hintIndex + 1;
    let i = Math.min(m.matchIndex, this.#log.lastIndex());
    let t = this.#log.term(i);
    while (t !== undefined && t > m.hintTerm && i > 0) {
      i--;
      t = this.#log.term(i);
    }
    return t === m.hintTerm ? i + 1 : m.hintIndex;
  }

  #onHeartbeatResponse(m: HeartbeatResponseMessage): void {
    if (this.#role !== 'leader') return;
    const pr = this.#tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.heardTick = this.#tickCount;
    const roundTick = this.#reads.roundTick(m.readSeq);
    if (roundTick !== undefined && roundTick > pr.ackedRoundTick) pr.ackedRoundTick = roundTick;
    if (m.readSeq > pr.ackedReadSeq) pr.ackedReadSeq = m.readSeq;
    // At most one resend of entries per tick (empty probes are not limited): the answers to every
    // heartbeat sent while a follower was paused (SIGSTOP, a stall) arrive together when it
    // resumes, and each would read and send a whole batch of entries again (on a real member,
    // seconds of LMDB reads and encoding in one go).
    if (pr.resentTick !== this.#tickCount) {
      pr.probeSent = false;
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
      if (pr.matchIndex < this.#log.lastIndex() && this.#sendAppend(m.from, true)) {
        pr.resentTick = this.#tickCount; // entries went: the rest of the burst sends none
      }
    }
    this.#reads.release(this.#tracker, this.id);
  }

  /** Send `to` the entries it lacks (or an empty append when `allowEmpty`); true if entries went. */
  #sendAppend(to: string, allowEmpty: boolean): boolean {
    const pr = this.#tracker.progress.get(to);
    if (pr === undefined || pr.paused()) return false;
    const prevIndex = pr.nextIndex - 1;
    const prevTerm = this.#log.term(prevIndex);
    if (prevTerm === undefined) return this.#sendSnapshot(to, pr);
    let entries: Entry[];
    try {
      const [end, bytesMax] = this.#appendRange(to, pr.nextIndex);
      entries = this.#log.entries(pr.nextIndex, end + 1, bytesMax);
    } catch (e) {
      if (e instanceof CompactedError) return this.#sendSnapshot(to, pr);
      throw e;
    }
    if (entries.length === 0 && !allowEmpty) return false;
    this.#send({
      type: 'append',
      from: this.id,
      to,
      term: this.#term,
      prevLogIndex: prevIndex,
      prevLogTerm: prevTerm,
      entries,
      commitIndex: this.#log.committedIndex,
      globalIndex: this.#globalIndex,
    }, false);
    const last = entries[entries.length - 1];
    if (pr.state === 'replicate') {
      if (last !== undefined) {
        let bytes = 0;
        for (const e of entries) bytes += entryBytes(e);
        pr.nextIndex = last.index + 1;
        pr.inflights.add(last.index, bytes);
      }
    } else pr.probeSent = true;
    return last !== undefined;
  }

  #sendSnapshot(to: string, pr: Progress): boolean {
    const meta = this.#storage.snapshotMeta();
    assert(meta !== null, `Log compacted below ${pr.nextIndex} without a snapshot`);
    this.#send({
      type: 'snapshot',
      from: this.id,
      to,
      term: this.#term,
      index: meta.index,
      snapshotTerm: meta.term,
      snapshotTimeMs: meta.timeMs,
      members: meta.members,
    }, false);
    pr.becomeSnapshot(meta.index, this.#tickCount);
    return false;
  }

  #sendTimeoutNow(to: string): void {
    this.#send({ type: 'timeoutNow', from: this.id, to, term: this.#term }, false);
  }

  #broadcastHeartbeat(): void {
    const readSeq = this.#reads.startRound(this.#tickCount);
    const commit = this.#log.committedIndex;
    for (const [to, pr] of this.#tracker.progress) {
      this.#send({
        type: 'heartbeat',
        from: this.id,
        to,
        term: this.#term,
        commitIndex: Math.min(pr.matchIndex, commit),
        readSeq,
      }, false);
    }
  }

  /** Send what proposals and commits since the last ready left pending. */
  #flushBroadcasts(): void {
    if (this.#role !== 'leader') {
      this.#broadcastNeeded = false;
      this.#reads.roundNeeded = false;
      return;
    }
    if (this.#broadcastNeeded) {
      this.#broadcastNeeded = false;
      for (const to of [...this.#tracker.progress.keys()]) {
        // Nothing new to send still means a probe. The commit index alone is not worth a message:
        // it travels with the next append or heartbeat.
        if (!this.#sendAppend(to, false) && this.#tracker.progress.get(to)?.state === 'probe') {
          this.#sendAppend(to, true);
        }
        while (this.#sendAppend(to, false)) { /* fill the window */ }
      }
    }
    if (this.#reads.roundNeeded) {
      this.#reads.roundNeeded = false;
      this.#broadcastHeartbeat();
      this.#reads.release(this.#tracker, this.id);
    }
  }

  #appendAsLeader(entries: Entry[], bytes: number): void {
    this.#log.append(entries);
    this.#noteAppended(entries, 0);
    this.#quota.add(entries[entries.length - 1]!.index, bytes);
    this.#broadcastNeeded = true;
  }

  /** Track log time and configurations of newly appended entries (after truncating at `truncatedFrom`). */
  #noteAppended(entries: readonly Entry[], truncatedFrom: number): void {
    let configChanged = truncatedFrom > 0 && this.#tracker.truncateFrom(truncatedFrom);
    for (const e of entries) {
      if (e.timeMs > this.#lastLogTimeMs) this.#lastLogTimeMs = e.timeMs;
      if (e.type === 'config') {
        this.#tracker.push({ index: e.index, term: e.term, members: e.members });
        configChanged = true;
      }
    }
    if (configChanged && this.#role === 'leader') this.#syncProgress();
  }

  #maybeCommit(): boolean {
    // Our own entries count only once durable: a leader that crashes before its write lands
    // must not have been counted in the majority that made an entry committed.
    const selfIndex = this.#o.unsafeFaults.leaderCountsUndurableEntries === true
      ? this.#log.lastIndex()
      : this.#log.persistedIndex();
    const n = this.#tracker.committedIndex(selfIndex);
    if (n <= this.#log.committedIndex) return false;
    // Only entries of the current term commit by counting (Raft §5.4.2, Figure 8).
    if (this.#log.term(n) !== this.#term && this.#o.unsafeFaults.commitOlderTermByCount !== true) {
      return false;
    }
    this.#commitTo(n);
    return true;
  }

  #commitTo(index: number): void {
    this.#log.commitTo(index);
    if (index > this.#learnedCommitIndex) this.#learnedCommitIndex = index;
    this.#quota.release(index);
    if (this.#tracker.commitTo(index) && this.#role === 'leader') {
      // A committed change may end a target (a demotion or removal): it departs.
      this.#syncProgress();
    }
    this.#feeder.onCommit();
    if (this.#role === 'leader') {
      if (this.#log.term(index) === this.#term) {
        for (const id of this.#reads.takeAwaitingTermCommit()) {
          this.#reads.queue(id, this.#log.committedIndex, this.#tracker, this.id);
        }
      }
      const config = this.#tracker.latest();
      if (config !== null && config.index <= index && !this.#tracker.selfVotes()) {
        this.#becomeFollower(this.#term, null); // removed or demoted: step down once that is committed
      }
    }
  }

  // ---- Membership: fan-out, pushes, departures (see membership.ts) -------------------------

  /** Not a voter in the latest configuration (or none known): fed by followers, not the leader. */
  #isFed(): boolean {
    return this.#role !== 'leader' && !this.#tracker.selfVotes();
  }

  /**
   * `from` is the feeder this member last took a feed from, and this member is no leader: its
   * snapshots are taken like a feeder's even by a member that still thinks it votes (it missed its
   * demotion, and the entries it lacks were compacted).
   */
  #fedBy(from: string): boolean {
    return this.#role !== 'leader' && from === this.#feederId;
  }

  /** Fed, and the configuration that made it so is committed: a PASSIVE (or lower) member. */
  #fedPassive(): boolean {
    const latest = this.#tracker.latest();
    return this.#isFed() && latest !== null && latest.index <= this.#log.committedIndex;
  }

  /** On becoming PASSIVE (or lower), drop every uncommitted entry (see `membership.ts`). */
  #checkBecamePassive(): void {
    const passive = this.#fedPassive();
    if (passive && !this.#wasFedPassive && this.#o.unsafeFaults.passiveKeepsUncommitted !== true) {
      const commit = this.#log.committedIndex;
      if (this.#log.lastIndex() > commit && this.#log.pendingSnapshot() === null) {
        this.#log.truncateAfter(commit);
        this.#tracker.truncateFrom(commit + 1);
      }
    }
    this.#wasFedPassive = passive;
  }

  /** Throws `NotCaughtUpError` unless the leader's last report of passive `id` is recent and close. */
  #checkCaughtUp(id: string): void {
    const report = this.#passiveProgress.get(id);
    const commit = this.#log.committedIndex;
    if (report === undefined || this.#tickCount - report.tick > this.#o.electionTicks) {
      throw new NotCaughtUpError(`no recent report of ${id} (is it running?)`);
    }
    if (commit - report.matchIndex > this.#o.promotionLagEntriesMax) {
      throw new NotCaughtUpError(
        `${id} stores up to ${report.matchIndex}, ${
          commit - report.matchIndex
        } entries behind the commit index ${commit} (promotionLagEntriesMax ${this.#o.promotionLagEntriesMax})`,
      );
    }
  }

  /** Match indexes of the passives reported within an election timeout (for the global index). */
  #livePassiveIndexes(): number[] {
    const out: number[] = [];
    for (const [id, p] of this.#passiveProgress) {
      if (
        this.#tickCount - p.tick <= this.#o.electionTicks && this.#tracker.passives.includes(id)
      ) {
        out.push(p.matchIndex);
      }
    }
    return out;
  }

  /**
   * The last index to send `to` from `nextIndex`, and the byte limit. A member being promoted
   * gets committed entries first, then everything up to the change that promotes it in one
   * message (never uncommitted entries without that change: it is still PASSIVE until it has it).
   */
  #appendRange(to: string, nextIndex: number): [number, number] {
    const last = this.#log.lastIndex();
    const joining = this.#tracker.joiningIndex(to);
    if (joining === 0) return [last, this.#o.messageBytesMax];
    const commit = this.#log.committedIndex;
    if (nextIndex <= commit) return [commit, this.#o.messageBytesMax];
    if (nextIndex <= joining) return [joining, Infinity];
    return [last, this.#o.messageBytesMax];
  }

  /**
   * Track the targets of the latest configurations; a member that stops being one stays a while
   * (departing) until it stores the configuration that says so, at most two election timeouts.
   */
  #syncProgress(): void {
    const latestIndex = this.#tracker.latest()?.index ?? 0;
    this.#tracker.syncProgress(this.#log.lastIndex() + 1, (_id, pr) => {
      if (!pr.departing) pr.departingSinceTick = this.#tickCount;
      return pr.matchIndex < latestIndex &&
        this.#tickCount - pr.departingSinceTick < 2 * this.#o.electionTicks;
    });
  }

  /**
   * The leader's membership duties, every heartbeat interval: hand the passives to the live
   * followers (or keep them when none is live), push the committed configuration to RESERVE and
   * INACTIVE members, and let departing members go once they know or the bound passed.
   */
  #leadMembership(): void {
    const now = this.#tickCount;
    const silence = this.#o.feederSilenceHeartbeats * this.#o.heartbeatTicks;
    const latest = this.#tracker.latest();
    const members = latest?.members ?? [];
    const followers: string[] = [];
    const live: string[] = [];
    for (const id of this.#tracker.voters) {
      const pr = this.#tracker.progress.get(id);
      if (id === this.id || pr === undefined || pr.departing) continue;
      followers.push(id);
      // A follower being sent a snapshot is far behind: it could feed its passives only up to
      // its own stale commit index, and then only by snapshots it does not have yet.
      if (now - pr.heardTick <= silence && pr.state !== 'snapshot') live.push(id);
    }
    const passives = this.#tracker.passives;
    const assignment = assignPassives(passives, live.length > 0 ? live : [this.id]);
    this.#assignment = assignment;
    for (const id of followers) {
      const ids = assignment.get(id) ?? [];
      const key = ids.join('\u0000');
      const sent = this.#assignSent.get(id);
      const changed = sent === undefined ? ids.length > 0 : sent.key !== key;
      const refresh = ids.length > 0 && sent !== undefined &&
        now - sent.tick >= this.#o.electionTicks;
      if (!changed && !refresh) continue;
      this.#assignSent.set(id, { key, tick: now });
      this.#send({
        type: 'assign',
        from: this.id,
        to: id,
        term: this.#term,
        members: ids.map((p) => ({ ...members.find((x) => x.id === p)! })),
      }, false);
    }
    this.#feeder.assign(assignment.get(this.id) ?? []);
    for (const id of [...this.#passiveProgress.keys()]) {
      if (!passives.includes(id)) this.#passiveProgress.delete(id);
    }
    const committed = this.#tracker.committed();
    if (committed !== null) {
      for (const m of committed.members) {
        if (m.id === this.id) continue;
        const acked = this.#pushes.get(m.id)?.ackedIndex ?? 0;
        if (
          m.type === MemberType.RESERVE ||
          (m.type === MemberType.INACTIVE && acked < committed.index)
        ) {
          this.#send({
            type: 'configure',
            from: this.id,
            to: m.id,
            term: this.#term,
            commitIndex: this.#log.committedIndex,
            configIndex: committed.index,
            configTerm: committed.term,
            members: committed.members.map((x) => ({ ...x })),
          }, false);
        }
      }
      for (const id of [...this.#pushes.keys()]) {
        if (!committed.members.some((m) => m.id === id)) this.#pushes.delete(id);
      }
    }
    let departed = false;
    for (const pr of this.#tracker.progress.values()) {
      if (pr.departing && now - pr.departingSinceTick >= 2 * this.#o.electionTicks) departed = true;
    }
    if (departed) this.#syncProgress();
  }

  /** Every heartbeat interval: feed the assigned passives and report their progress to the leader. */
  #feedBeat(): void {
    if (this.#feeder.size === 0) return;
    const reports = this.#feeder.heartbeat();
    if (this.#role === 'leader') {
      for (const r of reports) this.#notePassive(r.member, r.matchIndex, this.id);
      return;
    }
    const leader = this.#leaderId;
    if (leader === null || leader === this.id) return;
    for (const r of reports) {
      this.#send({
        type: 'feedReport',
        from: this.id,
        to: leader,
        term: this.#term,
        member: r.member,
        matchIndex: r.matchIndex,
      }, false);
    }
  }

  #notePassive(id: string, matchIndex: number, feeder: string): void {
    if (!this.#tracker.passives.includes(id)) return;
    this.#passiveProgress.set(id, { matchIndex, feeder, tick: this.#tickCount });
  }

  /** The leader's assignment: feed exactly these passives (this term). */
  #onAssign(m: AssignMessage): void {
    if (this.#role !== 'follower' || m.from !== this.#leaderId || !this.#tracker.selfVotes()) {
      return;
    }
    this.#feeder.assign(m.members.map((x) => x.id));
  }

  /** Committed entries from a feeder (see `fan-out.ts`): only a member that does not vote takes them. */
  #onFeed(m: FeedMessage): void {
    // Only a leader ignores feeds. A member that still thinks it votes is fed when the leader
    // counts it a non-voter: it missed its demotion (down while it was a departing target), and
    // feeds are how it learns it. Their entries are committed, so any member may take them.
    if (this.#role === 'leader') return;
    this.#feederId = m.from;
    if (m.term > this.#term) this.#becomeFollower(m.term, m.leaderId);
    if (m.term === this.#term) {
      this.#leaderId = m.leaderId;
      this.#electionElapsed = 0;
    }
    if (m.commitIndex > this.#learnedCommitIndex) this.#learnedCommitIndex = m.commitIndex;
    let entries = this.#o.unsafeFaults.passiveAcceptsUncommitted === true
      ? m.entries
      : m.entries.filter((e) => e.index <= m.commitIndex);
    let prevIndex = m.prevLogIndex;
    let prevTerm = m.prevLogTerm;
    const commit = this.#log.committedIndex;
    const respond = (success: boolean, matchIndex: number, hintIndex: number) =>
      this.#send({
        type: 'feedResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        success,
        matchIndex,
        hintIndex,
      }, true);
    if (prevIndex < commit) {
      const skip = Math.min(commit - prevIndex, entries.length);
      if (skip === entries.length) return respond(true, commit, 0);
      const anchor = entries[skip - 1];
      prevIndex = commit;
      prevTerm = anchor === undefined ? prevTerm : anchor.term;
      entries = entries.slice(skip);
      if (anchor !== undefined) {
        assert(
          this.#log.matchTerm(prevIndex, prevTerm),
          `Committed entry ${prevIndex} differs from the feeder's (term ${prevTerm})`,
        );
      }
    }
    if (!this.#log.matchTerm(prevIndex, prevTerm)) {
      const last = this.#log.lastIndex();
      // Our committed prefix surely matches; past it nothing is certain.
      return respond(false, m.prevLogIndex, prevIndex > last ? last : commit);
    }
    const lastNew = prevIndex + entries.length;
    const conflict = this.#log.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > commit, `Conflict at committed index ${conflict} (commit ${commit})`);
      const fresh = entries.slice(conflict - entries[0]!.index);
      const truncating = conflict <= this.#log.lastIndex();
      this.#log.append(fresh);
      this.#noteAppended(fresh, truncating ? conflict : 0);
    }
    const newCommit = Math.min(m.commitIndex, lastNew);
    if (newCommit > this.#log.committedIndex) this.#commitTo(newCommit);
    respond(true, lastNew, 0);
  }

  /** A snapshot from this fed member's feeder: install it, answer the feeder. */
  #onFeedSnapshot(m: SnapshotMessage): void {
    if (m.term > this.#term) this.#becomeFollower(m.term, this.#leaderId);
    const respond = (matchIndex: number) =>
      this.#send({
        type: 'feedResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        success: true,
        matchIndex,
        hintIndex: 0,
      }, true);
    const commit = this.#log.committedIndex;
    if (m.index <= commit) return respond(commit);
    if (this.#log.matchTerm(m.index, m.snapshotTerm)) {
      this.#commitTo(m.index);
      return respond(m.index);
    }
    const meta: SnapshotMeta = {
      index: m.index,
      term: m.snapshotTerm,
      timeMs: m.snapshotTimeMs,
      members: m.members,
    };
    this.#log.restore(meta);
    this.#lastLogTimeMs = m.snapshotTimeMs;
    this.#tracker.reset({ index: m.index, term: m.snapshotTerm, members: m.members });
    this.#tracker.commitTo(m.index);
    if (m.index > this.#learnedCommitIndex) this.#learnedCommitIndex = m.index;
    respond(m.index);
  }

  #onFeedResponse(m: FeedResponseMessage): void {
    if (this.#feeder.has(m.from)) {
      const advanced = this.#feeder.onResponse(m);
      if (advanced !== null && this.#role === 'leader') {
        this.#notePassive(m.from, advanced, this.id);
      }
      return;
    }
    // A member the leader replicates to (being promoted) that still thought itself fed.
    if (this.#role === 'leader' && this.#tracker.progress.has(m.from)) {
      this.#onAppendResponse({
        type: 'appendResponse',
        from: m.from,
        to: this.id,
        term: this.#term,
        success: m.success,
        matchIndex: m.matchIndex,
        hintIndex: m.hintIndex,
        hintTerm: 0,
      });
    }
  }

  #onFeedReport(m: FeedReportMessage): void {
    if (this.#role !== 'leader' || m.term !== this.#term) return;
    this.#notePassive(m.member, m.matchIndex, m.from);
  }

  /** The leader's committed configuration, pushed to a RESERVE or INACTIVE member. */
  #onConfigure(m: ConfigureMessage): void {
    if (!this.#isFed() || m.term < this.#term) return;
    if (m.term > this.#term) this.#becomeFollower(m.term, m.from);
    else {
      this.#heardFromLeader(m.from);
    }
    if (m.commitIndex > this.#learnedCommitIndex) this.#learnedCommitIndex = m.commitIndex;
    const config: Configuration = { index: m.configIndex, term: m.configTerm, members: m.members };
    const makesVoter = m.members.some((x) => x.id === this.id && x.type === MemberType.ACTIVE);
    if (!makesVoter) this.#tracker.adoptPushed(config);
    this.#send({
      type: 'configureResponse',
      from: this.id,
      to: m.from,
      term: this.#term,
      configIndex: this.#tracker.latest()?.index ?? 0,
    }, false);
  }

  #onConfigureResponse(m: ConfigureResponseMessage): void {
    if (this.#role !== 'leader' || m.term !== this.#term) return;
    const known = this.#pushes.get(m.from)?.ackedIndex ?? 0;
    this.#pushes.set(m.from, { ackedIndex: Math.max(known, m.configIndex), tick: this.#tickCount });
  }

  /** What `status()` reports of membership. */
  #membershipStatus(): MembershipStatus {
    const now = this.#tickCount;
    const commit = this.#log.committedIndex;
    const passives: MembershipStatus['passives'] = {};
    if (this.#role === 'leader') {
      for (const id of this.#tracker.passives) {
        const p = this.#passiveProgress.get(id);
        passives[id] = p === undefined
          ? { matchIndex: 0, lag: commit, feeder: null, reportedTicksAgo: null }
          : {
            matchIndex: p.matchIndex,
            lag: Math.max(0, commit - p.matchIndex),
            feeder: p.feeder,
            reportedTicksAgo: now - p.tick,
          };
      }
    }
    const pushed: MembershipStatus['pushed'] = {};
    if (this.#role === 'leader') {
      for (const m of this.#tracker.committed()?.members ?? []) {
        if (m.type !== MemberType.RESERVE && m.type !== MemberType.INACTIVE) continue;
        const p = this.#pushes.get(m.id);
        pushed[m.id] = {
          ackedConfigIndex: p?.ackedIndex ?? 0,
          heardTicksAgo: p === undefined ? null : now - p.tick,
        };
      }
    }
    return {
      selfType: this.#tracker.typeOf(this.id),
      feeding: this.#feeder.status(),
      learnedCommitIndex: Math.max(this.#learnedCommitIndex, commit),
      globalIndex: this.globalIndex,
      assignment: this.#role === 'leader' ? Object.fromEntries(this.#assignment) : {},
      passives,
      pushed,
    };
  }

  /**
   * The global index: on the leader the lowest index every ACTIVE member and every live PASSIVE
   * member stores; elsewhere the last one received from the leader (0: none yet).
   */
  get globalIndex(): number {
    return this.#role === 'leader' ? this.#globalIndex : this.#receivedGlobalIndex;
  }

  // ---- Helpers ------------------------------------------------------------------------------

  #assertCanPropose(): void {
    if (this.#role !== 'leader') throw new NotLeaderError(this.#leaderId);
    if (this.#leadTransferee !== null) throw new LeadershipTransferError(this.#leadTransferee);
  }

  /** Log time never decreases along the log. */
  #stampTime(timeMs: number): number {
    if (timeMs > this.#nowMs) this.#nowMs = Math.floor(timeMs);
    return Math.max(this.#nowMs, this.#lastLogTimeMs);
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commitIndex: this.#log.committedIndex };
  }

  #termOrVoteChanged(): boolean {
    const h = this.#lastReadyHardState;
    return h.term !== this.#term || h.vote !== this.#vote;
  }

  /** Record a transition (checked after every input, and inside elections, so none is missed). */
  #noteState(): void {
    const last = this.#lastState;
    if (last.role === this.#role && last.term === this.#term && last.leaderId === this.#leaderId) {
      return;
    }
    this.#lastState = { role: this.#role, term: this.#term, leaderId: this.#leaderId };
    this.#stateChanges.push(this.#lastState);
  }

  #send(m: RaftMessage, afterPersist: boolean): void {
    if (afterPersist) this.#messagesAfterPersist.push(m);
    else this.#messages.push(m);
  }
}
