/**
 * The storage interface the server persists through. Two implementations: LMDB (`lmdb.ts`), the
 * real one, and in-memory (`memory.ts`) for the core's unit tests and the simulator.
 *
 * @module
 */
import type { LogReader } from '../base/log-reader.ts';
import type { Entry, HardState, SnapshotMeta } from '../base/messages.ts';
import type { MachineStore } from '../state/disk-state-machine.ts';

/**
 * The writes of one ready batch, applied as one transaction in this order: snapshot (with its
 * data), truncation, entries, hard state.
 */
export interface WriteBatch {
  /**
   * Record a snapshot's metadata. When the log does not hold an entry at `snapshot.index` with
   * `snapshot.term` (an installed snapshot from the leader), every entry is discarded and the log
   * restarts at `snapshot.index + 1`; otherwise the entries are kept (compaction is separate).
   */
  snapshot?: SnapshotMeta;
  /**
   * The id of a finished `SnapshotStage` holding `snapshot`'s data (same index and term): it
   * becomes the current snapshot data in this same transaction, and the previous data is dropped.
   * Metadata and data therefore always agree, whatever moment a crash hits.
   */
  snapshotData?: number;
  /**
   * Drop every stored entry from this index on (above the compaction point), before `entries` are
   * appended: a member that becomes PASSIVE discards its uncommitted entries this way.
   */
  truncateFromIndex?: number;
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
  /** This member's snapshot data (the state machine's bytes), in the same durable store. */
  readonly snapshots: SnapshotStore;
  /** Apply one ready batch as one transaction; resolves when durable. */
  write(batch: WriteBatch): Promise<void>;
  /**
   * Discard entries up to and including `index` (at most the snapshot index); `term(index)` keeps
   * answering for the new compaction point. Resolves when durable.
   */
  compact(index: number): Promise<void>;
  /** Bytes of entries stored (approximate, by `entryBytes`), for compaction thresholds. */
  logBytes(): number;
  /**
   * Optional: the store of a state machine on disk, beside the log (`lmdb-machine-store.ts`). A
   * storage without it cannot run one (`MemberDriver.open` refuses with a `TypeError`).
   */
  openMachineStore?(): MachineStore;
  /** Flush and release the files. Idempotent. */
  close(): Promise<void>;
}

/** The current complete snapshot's data. */
export type SnapshotInfo = {
  /** Index and term of the last entry the snapshot covers. */
  index: number;
  term: number;
  /** Total size in bytes. */
  bytes: number;
  /** Size of every chunk but the last, in bytes. */
  chunkBytes: number;
  /** Number of chunks. */
  chunks: number;
  /** Which stage stored it. */
  writeId: number;
};

/** The bytes of a snapshot from `offsetBytes` to the end of the chunk that holds it. */
export type SnapshotPart = { offsetBytes: number; data: Uint8Array; done: boolean };

/**
 * Snapshot data being stored beside the current snapshot, invisible until a `Storage.write` names
 * it in `snapshotData`. One stage is one write id: its chunks never touch another stage's. A
 * stage that is neither committed nor aborted (the process died) is dropped when the storage is
 * opened again.
 *
 * @example
 * ```ts
 * const stage = storage.snapshots.stage(120, 3);
 * for await (const chunk of machine.snapshot()) await stage.append(chunk);
 * await stage.finish();
 * await storage.write({ snapshot: meta, snapshotData: stage.id });
 * ```
 */
export interface SnapshotStage {
  /** The write id to name in `WriteBatch.snapshotData`. */
  readonly id: number;
  readonly index: number;
  readonly term: number;
  /** Bytes appended so far. */
  readonly bytes: number;
  /** Store the next bytes (any size; they are re-chunked). Rejects with `StorageError`. */
  append(data: Uint8Array): Promise<void>;
  /** Every byte was appended: store the last partial chunk. The stage may then be committed. */
  finish(): Promise<void>;
  /** Drop what this stage stored. Idempotent; a committed stage is not touched. */
  abort(): Promise<void>;
}

/**
 * Snapshot data: the newest complete snapshot only, readable whole (for `restore`) or from a byte
 * offset (for resumable chunked transfer to a follower).
 */
export interface SnapshotStore {
  /** The current complete snapshot, or `null`. */
  info(): SnapshotInfo | null;
  /** The current snapshot's bytes, chunk by chunk (nothing when there is none). */
  read(): AsyncIterable<Uint8Array>;
  /**
   * The current snapshot's bytes from `offsetBytes` to the end of their chunk, and whether they
   * reach the end; `null` when there is no snapshot. Throws `RangeError` past the end.
   */
  chunkAt(offsetBytes: number): SnapshotPart | null;
  /** Begin storing the data of a snapshot covering up to `index` (of term `term`). */
  stage(index: number, term: number): SnapshotStage;
}

/**
 * Store a snapshot durably as one step: stage its data, then commit metadata and data together.
 * Resolves with the stored data's info.
 *
 * @example
 * ```ts
 * await storeSnapshot(storage, { index: 120, term: 3, timeMs, members }, machine.snapshot());
 * ```
 */
export async function storeSnapshot(
  storage: Storage,
  meta: SnapshotMeta,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<SnapshotInfo> {
  const stage = storage.snapshots.stage(meta.index, meta.term);
  try {
    for await (const chunk of chunks) await stage.append(chunk);
    await stage.finish();
  } catch (error) {
    await stage.abort().catch(() => {});
    throw error;
  }
  await storage.write({ snapshot: meta, snapshotData: stage.id });
  return storage.snapshots.info()!;
}
