/**
 * Reads that never enter the log (etcd-io/raft `read_only.go` is the model): read-index reads,
 * confirmed by a heartbeat round that a majority of voters answers, and lease reads, answered at
 * once while the leader's lease holds.
 *
 * The lease: voters refuse to vote while they have heard from a leader within an election timeout
 * (and for an election timeout after they start, see `voteEmbargoTicks`), so a leader whose
 * heartbeat round sent at tick `t` was answered by a majority knows no other leader can exist
 * before `t + electionTicks` (minus `leaseDriftTicks` for clock drift). Two things void it early:
 * - a leadership transfer: the target campaigns with `transfer` set, which voters grant despite a
 *   live leader. From the moment a transfer starts until an election timeout after it ended, no
 *   lease read is served (they fall back to read index);
 * - a new term: a leader serves reads (of either kind) only once it has committed an entry of its
 *   own term, so its commit index is known to cover every earlier commit.
 *
 * @module
 */
import { ProposalDroppedError } from '../base/errors.ts';
import { committedIndex } from './quorum.ts';
import type { Tracker } from './tracker.ts';

/** A read request that may be answered once the state machine has applied `index`. */
export type ReadState = { requestId: number; index: number };

type PendingRead = { requestId: number; index: number; seq: number };

/** How many heartbeat rounds to remember the send tick of, for leases. */
const heartbeatRoundsRemembered = 1024;

/**
 * The leader's pending reads and heartbeat rounds.
 *
 * Invariant: `pending` is ordered by `seq`, and a read is released only once a majority of voters
 * answered a round sent after it arrived.
 *
 * @example
 * ```ts
 * const reads = new ReadOnly(65_536);
 * reads.queue(1, commitIndex, tracker, 'a'); // released by the next round a majority answers
 * ```
 */
export class ReadOnly {
  readonly #pendingMax: number;
  /** Confirmed reads, for the next ready. */
  readStates: ReadState[] = [];
  /** Reads given up (leadership lost), for the next ready. */
  failed: number[] = [];
  #pending: PendingRead[] = [];
  #awaitingTermCommit: number[] = [];
  /** Sequence number of the newest heartbeat round. */
  seq = 0;
  /** A read arrived that the next heartbeat round must confirm. */
  roundNeeded = false;
  #roundTicks = new Map<number, number>();
  /** Lease reads are refused until this tick (a transfer voided the lease); Infinity while one runs. */
  #leaseVoidUntilTick = -1;

  constructor(pendingMax: number) {
    this.#pendingMax = pendingMax;
  }

  /** Throws `ProposalDroppedError` (retryable: nothing was read) when `readsPendingMax` wait. */
  admit(): void {
    if (this.#pending.length + this.#awaitingTermCommit.length >= this.#pendingMax) {
      throw new ProposalDroppedError(`${this.#pendingMax} reads pending, limit readsPendingMax`);
    }
  }

  /** Hold a read until the leader has committed an entry of its term. */
  awaitTermCommit(requestId: number): void {
    this.#awaitingTermCommit.push(requestId);
  }

  /** The leader committed an entry of its term: the held reads may now be confirmed. */
  takeAwaitingTermCommit(): number[] {
    const waiting = this.#awaitingTermCommit;
    this.#awaitingTermCommit = [];
    return waiting;
  }

  /**
   * Queue a read at `commitIndex`, to be confirmed by the next heartbeat round; with this member
   * the only voter, it is confirmed at once. A leader that does not vote (it demoted itself) needs
   * the remaining voters' confirmation like any other.
   */
  queue(requestId: number, commitIndex: number, tracker: Tracker, self: string): void {
    if (tracker.voters.length === 1 && tracker.voters[0] === self) {
      this.readStates.push({ requestId, index: commitIndex });
      return;
    }
    this.#pending.push({ requestId, index: commitIndex, seq: this.seq + 1 });
    this.roundNeeded = true;
  }

  /** A heartbeat round with sequence number `this.seq + 1` leaves at `tick`; returns its number. */
  startRound(tick: number): number {
    this.seq++;
    this.#roundTicks.set(this.seq, tick);
    this.#roundTicks.delete(this.seq - heartbeatRoundsRemembered);
    return this.seq;
  }

  /** The tick at which round `seq` was sent, if still remembered. */
  roundTick(seq: number): number | undefined {
    return this.#roundTicks.get(seq);
  }

  /** Release every read whose round a majority of voters has answered. */
  release(tracker: Tracker, self: string): void {
    if (this.#pending.length === 0) return;
    const acked = tracker.voters.map((id) =>
      id === self ? this.seq : tracker.progress.get(id)?.ackedReadSeq ?? 0
    );
    const quorumSeq = committedIndex(acked);
    let released = 0;
    for (const r of this.#pending) {
      if (r.seq > quorumSeq) break;
      this.readStates.push({ requestId: r.requestId, index: r.index });
      released++;
    }
    if (released > 0) this.#pending = this.#pending.slice(released);
  }

  /**
   * True while the lease holds at `tick`: a majority of voters answered a round sent within
   * `electionTicks - leaseDriftTicks`, and no transfer voided it (`ignoreTransfer`: the unsafe
   * fault `leaseReadDuringTransfer`, for tests only).
   */
  leaseValid(
    tracker: Tracker,
    self: string,
    tick: number,
    electionTicks: number,
    leaseDriftTicks: number,
    ignoreTransfer = false,
  ): boolean {
    if (tick < this.#leaseVoidUntilTick && !ignoreTransfer) return false;
    const ticks = tracker.voters.map((id) =>
      id === self ? tick : tracker.progress.get(id)?.ackedRoundTick ?? -1
    );
    const confirmedAt = committedIndex(ticks.map((t) => t + 1)) - 1;
    return confirmedAt >= 0 && confirmedAt + electionTicks - leaseDriftTicks > tick;
  }

  /** A leadership transfer started: no lease reads until `transferEnded`, and an election timeout after. */
  transferStarted(): void {
    this.#leaseVoidUntilTick = Infinity;
  }

  /** The transfer ended without this member losing leadership (abandoned). */
  transferEnded(tick: number, electionTicks: number): void {
    if (this.#leaseVoidUntilTick === Infinity) this.#leaseVoidUntilTick = tick + electionTicks;
  }

  /** A new term of leadership: nothing pending, no round remembered, no lease yet. */
  reset(): void {
    this.#roundTicks.clear();
    this.roundNeeded = false;
    this.#leaseVoidUntilTick = -1;
  }

  /** Leadership lost: every pending read fails. */
  failAll(): void {
    for (const r of this.#pending) this.failed.push(r.requestId);
    for (const id of this.#awaitingTermCommit) this.failed.push(id);
    this.#pending = [];
    this.#awaitingTermCommit = [];
    this.roundNeeded = false;
  }
}
