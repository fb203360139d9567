/**
 * What a leader knows of one member's log (etcd-io/raft `tracker/progress.go` is the model).
 *
 * - probe: the leader does not know where the member's log matches; it sends one AppendEntries
 *   at a time and waits for the answer (or a heartbeat answer) before the next.
 * - replicate: the logs match up to `matchIndex`; the leader streams entries optimistically,
 *   advancing `nextIndex` as it sends, bounded by the in-flight window.
 * - snapshot: the member is behind the compacted log and is being sent a snapshot.
 *
 * @module
 */
import { Inflights } from './inflights.ts';

/** The three replication states of a member. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * One member's replication progress.
 * Invariant: `0 <= matchIndex < nextIndex`.
 *
 * @example
 * ```ts
 * const p = new Progress(11, 256, 1 << 24);
 * p.update(10); // acknowledged up to 10
 * ```
 */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = 'probe';
  /** In probe state: a message is out and unanswered. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshotIndex = 0;
  /** In snapshot state: the leader's tick count when it entered it. */
  snapshotSinceTick = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The tick at which the newest heartbeat round this member answered was sent (for leases). */
  ackedRoundTick = -1;
  /** The newest heartbeat round (read sequence) this member answered. */
  ackedReadSeq = 0;
  /** The leader's tick count when it last heard from this member (any answer). */
  heardTick = 0;
  /** The leader's tick count when a heartbeat answer of this member last led to a resend. */
  resentTick = -1;
  /**
   * No longer a target (removed or demoted) but still sent entries until it has stored the
   * configuration that says so; counted in no quorum and no global index.
   */
  departing = false;
  /** The leader's tick count when this member started departing. */
  departingSinceTick = 0;
  readonly inflights: Inflights;

  constructor(nextIndex: number, inflightMessagesMax: number, inflightBytesMax: number) {
    this.nextIndex = nextIndex;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
  }

  /** Record an acknowledgement up to `index`; true if it was news. */
  update(index: number): boolean {
    let updated = false;
    if (index > this.matchIndex) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.nextIndex < index + 1) this.nextIndex = index + 1;
    return updated;
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it; otherwise right after what is known to match.
    const next = this.state === 'snapshot'
      ? Math.max(this.matchIndex + 1, this.pendingSnapshotIndex + 1)
      : this.matchIndex + 1;
    this.state = 'probe';
    this.nextIndex = next;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.nextIndex = this.matchIndex + 1;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number, nowTick: number): void {
    this.state = 'snapshot';
    this.pendingSnapshotIndex = snapshotIndex;
    this.snapshotSinceTick = nowTick;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** True when the leader must not send this member more entries now. */
  paused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      default:
        return true;
    }
  }
}
