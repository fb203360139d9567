/**
 * Follower fan-out: a member feeding the PASSIVE members it was assigned (see `membership.ts` for
 * the design). It sends each of them **committed entries only** in `feed` messages, pipelined
 * within the same in-flight window as replication (`Progress`, `Inflights`), whenever its commit
 * index advances and at every heartbeat interval; a passive that needs entries this member has
 * compacted gets a snapshot (the driver streams this member's own latest snapshot). It tells the
 * leader how far each passive it heard from recently has got (`feedReport`).
 *
 * Loss: at each heartbeat interval, a passive that answered nothing since the previous one while
 * entries were in flight is probed again from what it acknowledged; a probe unanswered is resent.
 *
 * The feeder runs inside the core (it reads the log synchronously and sends through the core's
 * outbox), on a follower that was assigned passives by the leader of its term, and on a leader
 * that has no live follower to hand them to.
 *
 * @example
 * ```ts
 * const feeder = new Feeder(host);
 * feeder.assign(['p1', 'p2']);
 * feeder.heartbeat(); // probes p1 and p2
 * ```
 * @module
 */
import { CompactedError } from '../base/errors.ts';
import {
  type Entry,
  entryBytes,
  type FeedResponseMessage,
  type RaftMessage,
  type SnapshotMeta,
} from '../base/messages.ts';
import type { MembershipUnsafeFaults } from './options.ts';
import { Progress, type ProgressState } from './progress.ts';
import type { RaftLog } from './raft-log.ts';

/** What a feeder needs from its core. */
export type FeederHost = {
  readonly id: string;
  readonly log: RaftLog;
  snapshotMeta(): SnapshotMeta | null;
  /** This member's term and the leader it follows (feeds name it to the passives). */
  term(): number;
  leaderId(): string | null;
  /** The core's tick count. */
  tick(): number;
  send(m: RaftMessage, afterPersist: boolean): void;
  readonly messageBytesMax: number;
  readonly inflightMessagesMax: number;
  readonly inflightBytesMax: number;
  /** Ticks a passive may stay in snapshot state before it is probed again. */
  readonly snapshotSendTicksMax: number;
  /** Ticks after which a passive that answered nothing is no longer reported. */
  readonly silenceTicks: number;
  readonly faults: MembershipUnsafeFaults;
};

/**
 * One fed passive's state. `sentSinceHeard`: something was sent since its last answer;
 * `silentBeat`: that was already so at the previous heartbeat (a whole interval unanswered).
 */
type Fed = {
  progress: Progress;
  heardTick: number;
  sentSinceHeard: boolean;
  silentBeat: boolean;
  /** At the previous heartbeat: the match index, and whether feeds were in flight. */
  beatMatchIndex: number;
  beatInflight: boolean;
};

/** What `status()` shows of one fed passive. */
export type FedStatus = {
  matchIndex: number;
  nextIndex: number;
  state: ProgressState;
  heardTicksAgo: number | null;
};

/** See the module comment. */
export class Feeder {
  readonly #h: FeederHost;
  readonly #fed = new Map<string, Fed>();

  constructor(host: FeederHost) {
    this.#h = host;
  }

  /** The passives fed now. */
  ids(): string[] {
    return [...this.#fed.keys()];
  }

  has(id: string): boolean {
    return this.#fed.has(id);
  }

  get size(): number {
    return this.#fed.size;
  }

  /** Feed exactly `ids` from now on (progress kept for those already fed). True if it changed. */
  assign(ids: readonly string[]): boolean {
    let changed = false;
    for (const id of [...this.#fed.keys()]) {
      if (!ids.includes(id)) {
        this.#fed.delete(id);
        changed = true;
      }
    }
    for (const id of ids) {
      if (id === this.#h.id || this.#fed.has(id)) continue;
      const progress = new Progress(
        this.#h.log.committedIndex + 1,
        this.#h.inflightMessagesMax,
        this.#h.inflightBytesMax,
      );
      this.#fed.set(id, {
        progress,
        heardTick: -Infinity,
        sentSinceHeard: false,
        silentBeat: false,
        beatMatchIndex: 0,
        beatInflight: false,
      });
      this.#send(id, true);
      changed = true;
    }
    return changed;
  }

  /** Stop feeding anyone (a new term, a new role). */
  clear(): void {
    this.#fed.clear();
  }

  /**
   * A heartbeat interval passed: recover from loss, send every passive what it lacks (or an empty
   * feed), and return the progress of those heard from within `silenceTicks`, for the leader.
   */
  heartbeat(): { member: string; matchIndex: number }[] {
    const now = this.#h.tick();
    const reports: { member: string; matchIndex: number }[] = [];
    for (const [id, fed] of this.#fed) {
      const pr = fed.progress;
      if (pr.state === 'snapshot' && now - pr.snapshotSinceTick > this.#h.snapshotSendTicksMax) {
        pr.becomeProbe();
      } else if (
        pr.state === 'replicate' &&
        ((fed.silentBeat && fed.sentSinceHeard) ||
          (fed.beatInflight && pr.matchIndex === fed.beatMatchIndex))
      ) {
        // A whole interval without an answer to what we sent, or with feeds in flight all along
        // and no progress (only stale answers came): the feeds or their answers were lost. Without
        // the second test a full window whose feeds were lost stays full forever.
        pr.becomeProbe();
      }
      if (pr.state === 'probe') pr.probeSent = false;
      this.#send(id, true);
      while (this.#send(id, false)) { /* fill the window */ }
      fed.silentBeat = fed.sentSinceHeard;
      fed.beatMatchIndex = pr.matchIndex;
      fed.beatInflight = pr.state === 'replicate' && pr.inflights.count > 0;
      // One being sent a snapshot answers only once it is installed: it is reported while the
      // transfer lasts (bounded by snapshotSendTicksMax), or the leader would take it for failed.
      if (now - fed.heardTick <= this.#h.silenceTicks || pr.state === 'snapshot') {
        reports.push({ member: id, matchIndex: pr.matchIndex });
      }
    }
    return reports;
  }

  /** The commit index advanced: send what became committed. */
  onCommit(): void {
    for (const id of this.#fed.keys()) {
      while (this.#send(id, false)) { /* fill the window */ }
    }
  }

  /** A passive's answer. Returns its new match index when it advanced, else `null`. */
  onResponse(m: FeedResponseMessage): number | null {
    const fed = this.#fed.get(m.from);
    if (fed === undefined) return null;
    const pr = fed.progress;
    fed.heardTick = this.#h.tick();
    fed.sentSinceHeard = false;
    fed.silentBeat = false;
    if (!m.success) {
      if (pr.state === 'replicate' && m.matchIndex < pr.matchIndex) return null; // stale
      if (pr.state === 'snapshot') return null; // the snapshot's answer decides
      pr.becomeProbe();
      // A passive's log is a committed prefix: resume right after its end (it lost its log if
      // that is below what it had acknowledged).
      pr.matchIndex = Math.min(pr.matchIndex, m.hintIndex);
      pr.nextIndex = Math.max(pr.matchIndex + 1, Math.min(m.matchIndex, m.hintIndex + 1));
      this.#send(m.from, true);
      return null;
    }
    const advanced = pr.update(m.matchIndex);
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.matchIndex >= pr.pendingSnapshotIndex) {
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeTo(pr.matchIndex);
    while (this.#send(m.from, false)) { /* fill the window */ }
    return advanced ? pr.matchIndex : null;
  }

  /** The driver could not deliver a snapshot to `to`: probe again. True if `to` is fed here. */
  snapshotFailed(to: string): boolean {
    const fed = this.#fed.get(to);
    if (fed === undefined) return false;
    if (fed.progress.state === 'snapshot') fed.progress.becomeProbe();
    return true;
  }

  /** The connection to `to` was lost: stop streaming to it optimistically. */
  unreachable(to: string): void {
    const fed = this.#fed.get(to);
    if (fed !== undefined && fed.progress.state === 'replicate') fed.progress.becomeProbe();
  }

  status(): Record<string, FedStatus> {
    const now = this.#h.tick();
    const out: Record<string, FedStatus> = {};
    for (const [id, fed] of this.#fed) {
      out[id] = {
        matchIndex: fed.progress.matchIndex,
        nextIndex: fed.progress.nextIndex,
        state: fed.progress.state,
        heardTicksAgo: Number.isFinite(fed.heardTick) ? now - fed.heardTick : null,
      };
    }
    return out;
  }

  /** Send `to` committed entries it lacks (or an empty feed when `allowEmpty`); true if entries went. */
  #send(to: string, allowEmpty: boolean): boolean {
    const fed = this.#fed.get(to);
    const leaderId = this.#h.leaderId();
    if (fed === undefined || leaderId === null) return false;
    const pr = fed.progress;
    if (pr.paused()) return false;
    const log = this.#h.log;
    const commit = log.committedIndex;
    // A passive may be ahead of our commit index (another feeder fed it): anchor at what we know.
    const prevIndex = Math.min(pr.nextIndex - 1, commit);
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined) return this.#sendSnapshot(to, pr);
    const end = this.#h.faults.feedUncommittedEntries === true ? log.lastIndex() : commit;
    let entries: Entry[] = [];
    if (prevIndex + 1 <= end) {
      try {
        entries = log.entries(prevIndex + 1, end + 1, this.#h.messageBytesMax);
      } catch (e) {
        if (e instanceof CompactedError) return this.#sendSnapshot(to, pr);
        throw e;
      }
    }
    if (entries.length === 0 && !allowEmpty) return false;
    this.#h.send({
      type: 'feed',
      from: this.#h.id,
      to,
      term: this.#h.term(),
      leaderId,
      prevLogIndex: prevIndex,
      prevLogTerm: prevTerm,
      entries,
      commitIndex: commit,
    }, false);
    fed.sentSinceHeard = true;
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
    const meta = this.#h.snapshotMeta();
    if (meta === null) return false; // nothing to send yet: a later heartbeat retries
    this.#h.send({
      type: 'snapshot',
      from: this.#h.id,
      to,
      term: this.#h.term(),
      index: meta.index,
      snapshotTerm: meta.term,
      snapshotTimeMs: meta.timeMs,
      members: meta.members,
    }, false);
    pr.becomeSnapshot(meta.index, this.#h.tick());
    return false;
  }
}
