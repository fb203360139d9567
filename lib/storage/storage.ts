/**
 * The storage interface the server persists through. Two implementations: LMDB (`lmdb.ts`), the
 * real one, and in-memory (`memory.ts`) for the core's unit tests and the simulator.
 *
 * @module
 */
import type { LogReader } from '../base/log-reader.ts';
import type { Entry, HardState, SnapshotMeta } from '../base/messages.ts';

/**
 * The writes of one ready batch, applied as one transaction in this order: snapshot, entries,
 * hard state.
 */
export interface WriteBatch {
  /**
   * Record a snapshot's metadata. When the log does not hold an entry at `snapshot.index` with
   * `snapshot.term` (an installed snapshot from the leader), every entry is discarded and the log
   * restarts at `snapshot.index + 1`; otherwise the entries are kept (compaction is separate).
   */
  snapshot?: SnapshotMeta;
  /**
   * Entries to append, consecutive. `entries[0].index` must be at most `lastIndex() + 1` and
   * above the compaction point; stored entries at or after it are replaced (a conflicting suffix
   * is truncated).
   */
  entries?: Entry[];
  /** The new term, vote and commit index. */
  hardState?: HardState;
}

/**
 * Durable storage for one member.
 *
 * Durability contract: the promise of `write` and `compact` resolves only once the data is on
 * disk; a failure rejects with `StorageError` and the storage refuses all later writes
 * (a member must stop acknowledging rather than pretend). Reads are synchronous and see every
 * write whose promise has resolved. Not safe for concurrent writers: the server issues one write
 * at a time.
 *
 * @example
 * ```ts
 * await storage.write({ entries: [{ type: 'noop', index: 1, term: 1, timeMs: 0 }], hardState: { term: 1, vote: 'a', commitIndex: 0 } });
 * storage.lastIndex(); // 1
 * ```
 */
export interface Storage extends LogReader {
  /** Apply one ready batch as one transaction; resolves when durable. */
  write(batch: WriteBatch): Promise<void>;
  /**
   * Discard entries up to and including `index` (at most the snapshot index); `term(index)` keeps
   * answering for the new compaction point. Resolves when durable.
   */
  compact(index: number): Promise<void>;
  /** Bytes of entries stored (approximate, by `entryBytes`), for compaction thresholds. */
  logBytes(): number;
  /** Flush and release the files. Idempotent. */
  close(): Promise<void>;
}
