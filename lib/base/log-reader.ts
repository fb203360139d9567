/**
 * What the core reads from durable storage: a synchronous view of the stored log and state.
 * The core never writes; it hands writes to its driver in a `Ready`, and the driver reports
 * them durable through `advance()`. Reads are synchronous because the LMDB log is memory-mapped.
 *
 * @module
 */
import type { Configuration, Entry, HardState, SnapshotMeta } from './messages.ts';

/**
 * A synchronous read view of the stored log.
 *
 * Contract: the log holds entries `[firstIndex(), lastIndex()]`; `firstIndex() - 1` is the
 * compaction point (0 for a log that was never compacted), whose term `term()` still answers.
 * An empty log has `lastIndex() === firstIndex() - 1`.
 *
 * @example
 * ```ts
 * const last = reader.lastIndex();
 * const lastTerm = reader.term(last) ?? 0;
 * ```
 */
export interface LogReader {
  /** Index of the first stored entry: the compaction point plus one (1 for a new log). */
  firstIndex(): number;
  /** Index of the last stored entry (`firstIndex() - 1` when the log is empty). */
  lastIndex(): number;
  /** Term of the entry at `index`; for `firstIndex() - 1`, the compaction point's term; `undefined` outside that range. */
  term(index: number): number | undefined;
  /**
   * Entries in `[fromIndex, toIndex)`, in order, stopping before their total size
   * (`entryBytes`) would pass `bytesMax` but always at least one when the range is not empty.
   * Throws `CompactedError` when `fromIndex < firstIndex()`. The entries returned may be shared
   * with the storage: callers must not mutate them.
   */
  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[];
  /** The durable term, vote and commit index ({term: 0, vote: null, commitIndex: 0} when new). */
  hardState(): HardState;
  /**
   * The configurations that may still be needed, oldest first: the one in effect at the
   * compaction point (or snapshot), then every configuration entry stored after it.
   */
  configurations(): Configuration[];
  /** The latest snapshot's metadata, or `null` when none was taken or installed. */
  snapshotMeta(): SnapshotMeta | null;
}
