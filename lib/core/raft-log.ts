/**
 * The core's view of the log: what storage holds (read synchronously through `LogReader`) plus
 * the unstable tail that has been appended in memory but not yet reported durable, and a received
 * snapshot that is not yet installed.
 *
 * Invariants: `appliedIndex <= committedIndex <= lastIndex()`; every entry at or below
 * `committedIndex` is never rewritten; unstable entries are consecutive from `#unstableOffset`.
 *
 * @module
 */
import { assert, CompactedError } from '../base/errors.ts';
import type { LogReader } from '../base/log-reader.ts';
import { type Entry, entryBytes, type SnapshotMeta } from '../base/messages.ts';

/**
 * The log as the core sees it.
 *
 * @example
 * ```ts
 * const log = new RaftLog(storage, 0);
 * log.append([{ type: 'noop', index: log.lastIndex() + 1, term: 1, timeMs: 0 }]);
 * ```
 */
export class RaftLog {
  readonly #storage: LogReader;
  #unstable: Entry[] = [];
  /** Index of `#unstable[0]`: entries below it are in storage. */
  #unstableOffset: number;
  /** Unstable entries below this index have been handed out for persisting. */
  #persistingTo: number;
  /** A snapshot received from the leader, not yet installed in storage. */
  #pendingSnapshot: SnapshotMeta | null = null;
  #pendingSnapshotHandedOut = false;
  /** Stored entries from this index on are to be dropped by the next write (`truncateAfter`). */
  #truncateFrom: number | null = null;
  /** Truncations handed out for writing and not yet durable: stored entries past the end may remain. */
  #truncationsInFlight = 0;
  committedIndex: number;
  /** Committed entries up to this index were handed out for applying. */
  appliedIndex: number;

  constructor(storage: LogReader, appliedIndex: number) {
    this.#storage = storage;
    this.#unstableOffset = storage.lastIndex() + 1;
    this.#persistingTo = this.#unstableOffset;
    const hard = storage.hardState();
    // Everything up to the compaction point, and up to the latest snapshot, was committed; the
    // durable commit index may be older (it is written only alongside other writes).
    // What the state machine applied was committed too.
    const snapshotIndex = Math.max(storage.firstIndex() - 1, storage.snapshotMeta()?.index ?? 0);
    this.committedIndex = Math.max(hard.commitIndex, snapshotIndex, appliedIndex);
    assert(
      this.committedIndex <= storage.lastIndex(),
      `Stored commit index ${this.committedIndex} is past the last index ${storage.lastIndex()}`,
    );
    this.appliedIndex = Math.max(appliedIndex, snapshotIndex);
    assert(
      this.appliedIndex <= this.committedIndex,
      `Applied index ${this.appliedIndex} is past the commit index ${this.committedIndex}`,
    );
  }

  firstIndex(): number {
    if (this.#pendingSnapshot !== null) return this.#pendingSnapshot.index + 1;
    return this.#storage.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstable.length > 0) return this.#unstableOffset + this.#unstable.length - 1;
    if (this.#pendingSnapshot !== null) return this.#pendingSnapshot.index;
    if (this.#truncatePending()) {
      return Math.min(this.#storage.lastIndex(), this.#unstableOffset - 1);
    }
    return this.#storage.lastIndex();
  }

  /** A truncation is not yet durable: the storage may still hold entries past our end. */
  #truncatePending(): boolean {
    return this.#truncateFrom !== null || this.#truncationsInFlight > 0;
  }

  /**
   * Drop every entry after `index`, none of them committed (a member that became PASSIVE keeps
   * only committed entries). The next ready's write drops them from storage too
   * (`takeTruncation`); writes under way that would store them land before it.
   */
  truncateAfter(index: number): void {
    if (index >= this.lastIndex()) return;
    assert(
      index >= this.committedIndex,
      `Refusing to truncate committed entries after ${index} (commit ${this.committedIndex})`,
    );
    assert(this.#pendingSnapshot === null, 'Truncation while a snapshot is being installed');
    if (index + 1 > this.#unstableOffset) {
      this.#unstable.length = index + 1 - this.#unstableOffset;
    } else {
      this.#unstableOffset = index + 1;
      this.#unstable = [];
    }
    if (this.#persistingTo > index + 1) this.#persistingTo = index + 1;
    this.#truncateFrom = Math.min(this.#truncateFrom ?? index + 1, index + 1);
  }

  /** The index from which the next write must drop stored entries, or `null`; hands it out. */
  takeTruncation(): number | null {
    const from = this.#truncateFrom;
    if (from !== null) {
      this.#truncateFrom = null;
      this.#truncationsInFlight++;
    }
    return from;
  }

  /** A truncation handed out by `takeTruncation` is durable. */
  stableTruncation(): void {
    assert(this.#truncationsInFlight > 0, 'No truncation in flight');
    this.#truncationsInFlight--;
  }

  hasTruncationToPersist(): boolean {
    return this.#truncateFrom !== null;
  }

  /** Term at `index`, or `undefined` when it is compacted or past the end. */
  term(index: number): number | undefined {
    if (index >= this.#unstableOffset) {
      const entry = this.#unstable[index - this.#unstableOffset];
      return entry?.term;
    }
    if (this.#pendingSnapshot !== null) {
      return index === this.#pendingSnapshot.index ? this.#pendingSnapshot.term : undefined;
    }
    if (index === 0) return 0;
    return this.#storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** True when the entry at `index` has `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** True when a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in `[fromIndex, toIndex)` up to `bytesMax` (at least one). Throws `CompactedError`
   * when `fromIndex` is compacted.
   */
  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    toIndex = Math.min(toIndex, this.lastIndex() + 1);
    if (fromIndex >= toIndex) return [];
    const first = this.firstIndex();
    if (fromIndex < first) throw new CompactedError(fromIndex, first);
    const out: Entry[] = [];
    let bytes = 0;
    if (fromIndex < this.#unstableOffset) {
      const stored = this.#storage.entries(
        fromIndex,
        Math.min(toIndex, this.#unstableOffset),
        bytesMax,
      );
      for (const e of stored) bytes += entryBytes(e);
      out.push(...stored);
      if (
        out.length === 0 || out[out.length - 1]!.index + 1 < Math.min(toIndex, this.#unstableOffset)
      ) return out;
    }
    for (let i = Math.max(fromIndex, this.#unstableOffset); i < toIndex; i++) {
      const e = this.#unstable[i - this.#unstableOffset]!;
      const size = entryBytes(e);
      if (out.length > 0 && bytes + size > bytesMax) break;
      bytes += size;
      out.push(e);
    }
    return out;
  }

  /** The first index whose stored term differs from the given entry's, or 0 when all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Append `entries` (consecutive), replacing any entries at or after the first one's index.
   * Committed entries are never replaced.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0]!.index;
    assert(
      after > this.committedIndex,
      `Refusing to overwrite committed entry ${after} (commit ${this.committedIndex})`,
    );
    assert(
      after <= this.lastIndex() + 1,
      `Append leaves a gap: entry ${after} after last index ${this.lastIndex()}`,
    );
    if (after === this.#unstableOffset + this.#unstable.length) {
      for (const e of entries) this.#unstable.push(e);
    } else if (after <= this.#unstableOffset) {
      // The new entries replace the whole unstable tail and some stored entries.
      this.#unstableOffset = after;
      this.#unstable = [...entries];
    } else {
      this.#unstable.length = after - this.#unstableOffset;
      for (const e of entries) this.#unstable.push(e);
    }
    if (this.#persistingTo > after) this.#persistingTo = after;
  }

  /** Raise the commit index (never lowers it). */
  commitTo(index: number): boolean {
    if (index <= this.committedIndex) return false;
    assert(
      index <= this.lastIndex(),
      `Commit index ${index} is past the last index ${this.lastIndex()}`,
    );
    this.committedIndex = index;
    return true;
  }

  /** Replace the whole log by a snapshot received from the leader. */
  restore(snapshot: SnapshotMeta): void {
    assert(
      snapshot.index > this.committedIndex,
      `Snapshot ${snapshot.index} is not past the commit index ${this.committedIndex}`,
    );
    this.#pendingSnapshot = snapshot;
    this.#pendingSnapshotHandedOut = false;
    // A truncation not yet written now drops whatever the storage holds past the snapshot (it
    // keeps its entries when it holds the snapshot's own entry).
    if (this.#truncateFrom !== null) this.#truncateFrom = snapshot.index + 1;
    this.#unstable = [];
    this.#unstableOffset = snapshot.index + 1;
    this.#persistingTo = this.#unstableOffset;
    this.committedIndex = snapshot.index;
    this.appliedIndex = snapshot.index;
  }

  /** Unstable entries not yet handed out for persisting. */
  hasEntriesToPersist(): boolean {
    return this.#persistingTo < this.#unstableOffset + this.#unstable.length;
  }

  /** Hand out the unstable entries not yet being persisted. */
  takeEntriesToPersist(): Entry[] {
    const start = this.#persistingTo - this.#unstableOffset;
    const out = this.#unstable.slice(start);
    this.#persistingTo = this.#unstableOffset + this.#unstable.length;
    return out;
  }

  /** The snapshot received from the leader and not yet durable, or `null`. */
  pendingSnapshot(): SnapshotMeta | null {
    return this.#pendingSnapshot;
  }

  hasSnapshotToPersist(): boolean {
    return this.#pendingSnapshot !== null && !this.#pendingSnapshotHandedOut;
  }

  takeSnapshotToPersist(): SnapshotMeta | null {
    if (!this.hasSnapshotToPersist()) return null;
    this.#pendingSnapshotHandedOut = true;
    return this.#pendingSnapshot;
  }

  /** Storage now holds entries up to `index` with `term`: drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    if (index < this.#unstableOffset) return;
    const entry = this.#unstable[index - this.#unstableOffset];
    if (entry === undefined || entry.term !== term) return; // replaced while it was being written
    this.#unstable = this.#unstable.slice(index + 1 - this.#unstableOffset);
    this.#unstableOffset = index + 1;
    if (this.#persistingTo < this.#unstableOffset) this.#persistingTo = this.#unstableOffset;
  }

  /** Storage now holds `snapshot`. */
  stableSnapshotTo(snapshot: SnapshotMeta): void {
    if (this.#pendingSnapshot !== null && this.#pendingSnapshot.index === snapshot.index) {
      this.#pendingSnapshot = null;
      this.#pendingSnapshotHandedOut = false;
    }
  }

  /** The last index known to be durable in storage (what a member may count as its own ack). */
  persistedIndex(): number {
    if (this.#pendingSnapshot !== null) return 0; // nothing of the new log is durable yet
    if (this.#unstable.length > 0) return this.#unstableOffset - 1;
    if (this.#truncatePending()) {
      return Math.min(this.#storage.lastIndex(), this.#unstableOffset - 1);
    }
    return this.#storage.lastIndex();
  }

  /** True when committed entries wait to be applied. */
  hasEntriesToApply(): boolean {
    return this.applyableIndex() > this.appliedIndex;
  }

  /** Hand out committed, durable entries after `appliedIndex`, up to `bytesMax` (at least one). */
  takeEntriesToApply(bytesMax: number): Entry[] {
    const to = this.applyableIndex();
    if (to <= this.appliedIndex) return [];
    const out = this.entries(this.appliedIndex + 1, to + 1, bytesMax);
    if (out.length > 0) this.appliedIndex = out[out.length - 1]!.index;
    return out;
  }

  applyableIndex(): number {
    if (this.#pendingSnapshot !== null) return this.appliedIndex;
    return Math.min(this.committedIndex, this.persistedIndex());
  }
}
