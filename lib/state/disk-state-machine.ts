/**
 * State machines whose state lives on disk, in the member's own LMDB environment (dragonboat's
 * `IOnDiskStateMachine`, with sessions: the library sees the store, so it can keep the session
 * table and the applied index beside the machine's data and commit all three together).
 *
 * What a user implements is `DiskStateMachine`: `open` (load whatever it caches from its store),
 * `apply` (read and write its store, synchronously) and `query` (read it). It never writes the
 * applied index or the sessions, and never snapshots or restores: the library does all of that.
 *
 * The contract, as the executor keeps it:
 * - Each batch of applied entries runs inside one write transaction of the member's environment:
 *   the machine's writes, the changed session records and the new applied index commit together
 *   or not at all. After a crash the state is exactly that of some applied index, and the log
 *   (durable before anything is applied) replays from the next one: no command is applied twice,
 *   none is lost, and a restart replays only what the last commits missed, not the log since the
 *   last snapshot.
 * - Inside `apply` (and the timer callbacks it schedules) reads see the transaction's own writes;
 *   everywhere else (`query`, `open`) they see the last committed state, which is what the
 *   executor reports as applied. Writes outside `apply` throw.
 * - Snapshots (for followers and for log compaction) are one read transaction over the machine's
 *   data and the sessions at one applied index, streamed in bounded frames; installing one
 *   replaces data, sessions and applied index, switching over in one transaction.
 *
 * Determinism is the same contract as for `StateMachine`: same commits, same state and outputs.
 *
 * @example
 * ```ts
 * class Counter implements DiskStateMachine<number, number, null, number> {
 *   readonly onDisk = true;
 *   #store!: DiskStore;
 *   open(store: DiskStore) { this.#store = store; }
 *   apply(commit: Commit<number>) {
 *     const total = this.query() + commit.command;
 *     this.#store.put(key, new TextEncoder().encode(String(total)));
 *     return total;
 *   }
 *   query() { const b = this.#store.get(key); return b === undefined ? 0 : Number(new TextDecoder().decode(b)); }
 * }
 * const key = new TextEncoder().encode('total');
 * ```
 * @module
 */
import type { ApplyContext } from './context.ts';
import type { SessionRecordOp } from './session-journal.ts';
import type { SessionTableData } from './sessions.ts';
import type { Commit, StateMachine } from './state-machine.ts';

/** Longest key of a state machine on disk, in bytes (LMDB's own limit here is 1978). */
export const diskKeyBytesMax = 1024;
/** Largest value of a state machine on disk, in bytes. */
export const diskValueBytesMax = 16 * 1024 ** 2;

/** One record of a machine's data. */
export type DiskPair = { readonly key: Uint8Array; readonly value: Uint8Array };

/** A key range: from `start` (inclusive) to `end` (exclusive), in byte order, at most `limit`. */
export type DiskRange = {
  readonly start?: Uint8Array;
  readonly end?: Uint8Array;
  readonly limit?: number;
};

/**
 * A state machine's own database: byte keys (1 to `diskKeyBytesMax` bytes) in byte order, byte
 * values (at most `diskValueBytesMax`). Returned bytes are the caller's to keep.
 *
 * Threading contract: synchronous, on the executor's turn. Reads inside `apply` see the batch's
 * transaction (its own writes included); reads elsewhere see the last committed state. `put` and
 * `remove` only inside `apply` or a timer callback (else an `AssertionError`), and a bad key or
 * value is a `RangeError` (which fails that command, deterministically).
 */
export interface DiskStore {
  get(key: Uint8Array): Uint8Array | undefined;
  /** The records in `range`, in key order, read lazily (finish or drop the iteration in the same turn). */
  range(range?: DiskRange): Iterable<DiskPair>;
  put(key: Uint8Array, value: Uint8Array): void;
  remove(key: Uint8Array): void;
}

/**
 * A user's state machine on disk; see the module comment. `onDisk: true` tells the executor which
 * kind it is.
 *
 * Threading contract: `open`, `apply` and `query` are synchronous and never run at the same time.
 * Errors: a throw from `apply` fails that command only (an `ApplicationError` for its index);
 * whatever it had written before the throw stays written, on every member alike (validate first,
 * then write). A throw from `open` stops the member.
 */
export interface DiskStateMachine<Command, Output, Query, QueryOutput> {
  readonly onDisk: true;
  /**
   * Called before anything is applied, and again after a snapshot replaced the state: load what
   * the machine caches in memory from `store` (the handle stays valid: keep it). `context.index`
   * and `context.timeMs` are the applied index and log time the store holds (0 when fresh), and
   * `context.schedule` re-creates timers (they are not stored; see `StateMachine.restore`).
   */
  open(store: DiskStore, context: ApplyContext): void;
  /** Apply one committed command: read and write the store, return the output. */
  apply(commit: Commit<Command>, context: ApplyContext): Output;
  /** Answer a read-only query from the committed state. Must not write. */
  query(query: Query): QueryOutput;
}

/** Either kind of state machine. */
export type AnyStateMachine<Command, Output, Query, QueryOutput> =
  | StateMachine<Command, Output, Query, QueryOutput>
  | DiskStateMachine<Command, Output, Query, QueryOutput>;

/** True for a state machine on disk. */
export function isDiskStateMachine<C, O, Q, QO>(
  machine: AnyStateMachine<C, O, Q, QO>,
): machine is DiskStateMachine<C, O, Q, QO> {
  return (machine as { onDisk?: unknown }).onDisk === true;
}

/** Where the state stands: the last applied index, its term and log time (all 0 when fresh). */
export type AppliedState = {
  readonly index: number;
  readonly term: number;
  readonly timeMs: number;
};

/** What a batch's transaction writes beside the machine's own records. */
export interface MachineTransaction {
  /** Write (value) or remove (null) session records. */
  sessions(ops: Iterable<SessionRecordOp>): void;
  /** The applied index after this batch. */
  applied(state: AppliedState): void;
}

/** A consistent view of the whole state at one applied index: one read transaction. */
export interface MachineView {
  readonly applied: AppliedState;
  readonly sessions: SessionTableData;
  /** The machine's records in key order, read lazily from the view's transaction. */
  pairs(): Iterable<DiskPair>;
  /** Release the read transaction. Idempotent. */
  close(): void;
}

/**
 * The member storage's side of a state machine on disk (`LmdbStorage.openMachineStore`): the
 * machine's database, the session records and the applied index, in one environment.
 *
 * Durability contract: `commit` resolves `committed` once the transaction is committed and
 * visible to reads, and `durable` once it is synced to disk. After a process crash the store
 * reopens at some committed transaction; after an OS crash at some durable one; never between.
 */
export interface MachineStore {
  /** The machine's database (see `DiskStore`). */
  readonly data: DiskStore;
  /** The state the last committed transaction left. */
  load(): { applied: AppliedState; sessions: SessionTableData };
  /**
   * Run `body` synchronously in one write transaction: the machine's writes through `data`, and
   * `txn`'s. A throw from `body` aborts the whole transaction and rejects `committed`.
   */
  commit(body: (txn: MachineTransaction) => void): {
    committed: Promise<void>;
    durable: Promise<void>;
  };
  /** A consistent view of the committed state (close it when done). */
  view(): MachineView;
  /**
   * Replace everything with a snapshot's state: `pairs` (batches, in any key order) are staged
   * beside the current state, then one transaction switches to them with `sessions` and
   * `applied`. Interrupted (a crash, a throw from `pairs`), the current state stays.
   */
  install(
    applied: AppliedState,
    sessions: SessionTableData,
    pairs: AsyncIterable<readonly DiskPair[]>,
  ): Promise<void>;
}

/** Deliberate bugs in how a state machine on disk is committed, for proving the tests catch them. */
export type DiskUnsafeFaults = {
  /**
   * Commit the machine's writes in one transaction and the sessions and applied index in the next
   * (a crash in between applies the batch again on restart).
   */
  splitMachineCommit?: boolean;
};
