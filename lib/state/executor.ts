/**
 * The state-machine executor: applies committed log entries to the user's state machine, in
 * order, exactly once, in bounded batches that yield to the event loop, and publishes each
 * command's output for *its own* index so that the server resolves exactly the proposal that
 * wrote it.
 *
 * The server hands over committed entries as they commit (`applyEntries`); noop and configuration
 * entries advance the index and the log time (and may fire timers) but never reach `apply`.
 * Reads go beside the log: `query` runs against the current state, and `waitForApplied` lets a
 * read-index read wait until the state covers the index it must see.
 *
 * Two kinds of state machine (`disk-state-machine.ts`). One in memory is rebuilt on restart from
 * a snapshot plus the log. One on disk (`DiskStateMachine`, with its `MachineStore`) applies each
 * batch inside one write transaction of the member's environment, together with the batch's
 * session changes and the new applied index; its results, events and applied index are published
 * only once that transaction is committed, so that every read sees what it was told is applied.
 * `open()` loads the sessions and the applied index it holds, and applying goes on from there.
 *
 * @module
 */
import console from 'node:console';
import { setImmediate } from 'node:timers';
import { performance } from 'node:perf_hooks';
import * as v from 'valibot';
import { parseOptions } from '../base/validate.ts';
import { assert, ShutdownError } from '../base/errors.ts';
import type { CommandEntry, Entry } from '../base/messages.ts';
import { cborCodec, type CommandCodec } from './codec.ts';
import { type ApplyContext, LogClock } from './context.ts';
import {
  ApplicationError,
  CommandError,
  type EdgeraftError,
  QueryError,
  UnknownSessionError,
} from '../base/errors.ts';
import { decodeEnvelope, type Envelope, EnvelopeError } from './envelope.ts';
import {
  type CachedResult,
  type SessionEvent,
  sessionFrameBytesMax,
  type SessionLimits,
  sessionLimitsDefault,
  SessionTable,
} from './sessions.ts';
import { splitLeadingFrame, withLeadingFrame } from './frames.ts';
import { MinHeap } from './heap.ts';
import type { Commit, StateMachine } from './state-machine.ts';
import {
  type AnyStateMachine,
  type DiskStateMachine,
  type DiskUnsafeFaults,
  isDiskStateMachine,
  type MachineStore,
  type MachineTransaction,
} from './disk-state-machine.ts';
import { diskSnapshotChunks, readDiskSnapshot } from './disk-snapshot.ts';
import { SessionChangeLog } from './session-journal.ts';

/** Default most entries applied before yielding to the event loop. */
export const applyBatchEntriesMaxDefault = 1024;
/** Default longest run of applying, in milliseconds, before yielding to the event loop. */
export const applyBatchMsMaxDefault = 5;
/** Default most pending `waitForApplied` calls. */
export const appliedWaitersMaxDefault = 65_536;

/**
 * The outcome of one command entry: its output, or the error it failed with (an
 * `ApplicationError` from the state machine, or a session's `UnknownSessionError` or
 * `CommandError`). A session's registration answers `{ session, timeoutMs }`, its keep-alive and
 * unregistration `{ session }`. `duplicate`: a retried command answered from the session's kept
 * result, not applied again.
 */
export type ApplyResult<Output> =
  | {
    readonly index: number;
    readonly ok: true;
    readonly output: Output;
    readonly duplicate?: boolean;
  }
  | {
    readonly index: number;
    readonly ok: false;
    readonly error: EdgeraftError;
    readonly duplicate?: boolean;
  };

/** What a session's registration answers. */
export type SessionRegistered = { session: number; timeoutMs: number };

/** Where a snapshot stands in the log: its last index, that entry's term and log time. */
export type StateSnapshotMeta = {
  readonly index: number;
  readonly term: number;
  readonly timeMs: number;
};

/** A snapshot as the executor takes it: where it stands and its byte chunks (consume once). */
export type StateSnapshot = {
  readonly meta: StateSnapshotMeta;
  readonly chunks: AsyncIterable<Uint8Array>;
  /**
   * Drop a snapshot whose chunks will not be read (or not to the end): releases what it holds (a
   * machine on disk holds a read transaction until its stream ends). Idempotent.
   */
  readonly discard: () => void;
};

/** Options of `StateMachineExecutor`; every one has a default. */
export type ExecutorOptions<Command, Output> = {
  /** Decodes command bytes for the state machine. Default `cborCodec()`. */
  codec?: CommandCodec<Command>;
  /**
   * Most entries applied in one batch before yielding to the event loop. Default 1024. Smaller
   * keeps heartbeats and votes prompt under heavy apply; larger costs fewer event-loop turns.
   */
  applyBatchEntriesMax?: number;
  /**
   * Longest batch in milliseconds (by `nowMs`) before yielding. Default 5: well under any
   * sensible heartbeat interval, so a long apply never delays a heartbeat past it. The check runs
   * after each entry, so one slow apply can overrun it by its own duration.
   */
  applyBatchMsMax?: number;
  /** Most pending `waitForApplied` calls; one more rejects with a retryable `QueryError`. Default 65,536. */
  appliedWaitersMax?: number;
  /** Monotonic clock in milliseconds for the batch budget only (never seen by the state machine). Default `performance.now`. */
  nowMs?: () => number;
  /**
   * Let other work run between batches: resolves on a later turn. Default `setImmediate`; the
   * simulator passes its own so that yielding happens in virtual time.
   */
  yieldTurn?: () => Promise<void>;
  /** Called for each command's result as soon as its batch is applied, in index order. */
  onApplied?: (result: ApplyResult<Output>) => void;
  /** Called when a timer callback throws (other timers still run). Default: `console.error`. */
  onTimerError?: (error: unknown, index: number) => void;
  /** Limits of the session table (every member must use the same). Default `sessionLimitsDefault`. */
  sessionLimits?: SessionLimits;
  /** Called for each event a state machine publishes to a session, as it is published. */
  onEvent?: (session: number, event: SessionEvent) => void;
  /** Called for each session that expired (by log time), as it expires. */
  onSessionExpired?: (session: number) => void;
  /** Where a state machine on disk keeps its state (required for one, refused for the other). */
  store?: MachineStore;
  /** Deliberate bugs of the on-disk path, for tests only. */
  diskUnsafeFaults?: DiskUnsafeFaults;
  /** Deliberate bugs, for proving that the simulator catches them. Never set them in production. */
  unsafeFaults?: ExecutorUnsafeFaults;
};

/**
 * Deliberate session bugs of the executor, for the simulator's mutation table only (each one
 * breaks a rule of `lib/state/sessions.ts`; see `test/testing/simulator.test.ts`).
 */
export type ExecutorUnsafeFaults = {
  /** Apply a session command whose sequence was already applied again (no deduplication). */
  applyDuplicateSequences?: boolean;
  /** A new leader's no-op does not renew the sessions: time without a leader counts for expiry. */
  expireLeaderlessTime?: boolean;
  /** A keep-alive trims every kept result, also those past its `commandAck`. */
  trimUnacknowledgedResults?: boolean;
};

/** The names of every executor fault, for command lines and mutation tables. */
export const executorUnsafeFaultNames = [
  'applyDuplicateSequences',
  'expireLeaderlessTime',
  'trimUnacknowledgedResults',
] as const satisfies ReadonlyArray<keyof ExecutorUnsafeFaults>;

const positiveInteger = v.pipe(v.number(), v.safeInteger(), v.minValue(1));
const OptionsSchema = v.strictObject({
  codec: v.optional(v.object({ encode: v.function(), decode: v.function() })),
  applyBatchEntriesMax: v.optional(v.pipe(positiveInteger, v.maxValue(1_048_576))),
  applyBatchMsMax: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(60_000))),
  appliedWaitersMax: v.optional(v.pipe(positiveInteger, v.maxValue(16_777_216))),
  nowMs: v.optional(v.function()),
  yieldTurn: v.optional(v.function()),
  onApplied: v.optional(v.function()),
  onTimerError: v.optional(v.function()),
  sessionLimits: v.optional(v.strictObject({
    resultsMax: positiveInteger,
    eventsMax: positiveInteger,
  })),
  onEvent: v.optional(v.function()),
  onSessionExpired: v.optional(v.function()),
  store: v.optional(
    v.custom<MachineStore>(
      (x) =>
        typeof x === 'object' && x !== null && typeof (x as MachineStore).commit === 'function',
      'Expected a machine store (LmdbStorage.openMachineStore())',
    ),
  ),
  diskUnsafeFaults: v.optional(v.strictObject({
    splitMachineCommit: v.optional(v.boolean()),
  })),
  unsafeFaults: v.optional(
    v.strictObject(
      Object.fromEntries(executorUnsafeFaultNames.map((n) => [n, v.optional(v.boolean())])),
    ),
  ),
});

/** The on-disk side of an executor. */
type Disk<Command, Output, Query, QueryOutput> = {
  readonly machine: DiskStateMachine<Command, Output, Query, QueryOutput>;
  readonly store: MachineStore;
  readonly changes: SessionChangeLog;
  readonly faults: DiskUnsafeFaults;
};

/** A commit in a pending `applyBatch` run, with the session command it answers, if any. */
type RunItem<Command, Output> = {
  commit: Commit<Command>;
  job: Job<Output>;
  session: number;
  sequence: number;
};

type Job<Output> = {
  readonly entries: readonly Entry[];
  position: number;
  readonly results: ApplyResult<Output>[];
  readonly resolve: (results: ApplyResult<Output>[]) => void;
  readonly reject: (error: unknown) => void;
};

type Waiter = {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
};

/**
 * Applies committed entries to a `StateMachine` or a `DiskStateMachine`.
 *
 * Invariants: entries arrive and are applied in index order, each exactly once
 * (`index === cursor + 1`, asserted); `lastAppliedIndex` never decreases and, on disk, is never
 * ahead of the committed state (the apply cursor may run one uncommitted batch ahead of it); an
 * application error fails only its own index.
 *
 * @example
 * ```ts
 * const executor = new StateMachineExecutor(new KvStateMachine());
 * const codec = cborCodec<KvCommand>();
 * const [result] = await executor.applyEntries([
 *   { type: 'command', index: 1, term: 1, timeMs: 1000, data: encodeEnvelope({ kind: 'plain', data: codec.encode(kvCommand.put('a', '1')) }) },
 * ]);
 * console.log(result); // { index: 1, ok: true, output: { previous: null } }
 * ```
 */
export class StateMachineExecutor<Command, Output, Query, QueryOutput> {
  readonly #machine: AnyStateMachine<Command, Output, Query, QueryOutput>;
  /** The machine in memory, or null for one on disk. */
  readonly #memory: StateMachine<Command, Output, Query, QueryOutput> | null;
  readonly #disk: Disk<Command, Output, Query, QueryOutput> | null;
  readonly #codec: CommandCodec<Command>;
  readonly #entriesMax: number;
  readonly #msMax: number;
  readonly #waitersMax: number;
  readonly #nowMs: () => number;
  readonly #yieldTurn: () => Promise<void>;
  readonly #onApplied: ((result: ApplyResult<Output>) => void) | undefined;
  readonly #onTimerError: (error: unknown, index: number) => void;
  readonly #clock = new LogClock();
  readonly #sessions: SessionTable;
  readonly #onEvent: ((session: number, event: SessionEvent) => void) | undefined;
  readonly #onSessionExpired: ((session: number) => void) | undefined;
  readonly #faults: ExecutorUnsafeFaults;
  readonly #sessionCodec = cborCodec<unknown>();
  readonly #jobs: Job<Output>[] = [];
  readonly #waiters = new MinHeap<Waiter>((a, b) => a.index < b.index);
  /** What reads see as applied: for a machine on disk, what is committed. */
  #lastAppliedIndex = 0;
  #lastAppliedTerm = 0;
  /** The apply loop's position: `lastAppliedIndex`, or one batch ahead while it commits. */
  #cursorIndex = 0;
  #cursorTerm = 0;
  /** On disk: the applied index of the last transaction synced to disk. */
  #durableAppliedIndex = 0;
  /** On disk, during a batch: notifications held back until its transaction commits. */
  #held: (() => void)[] | null = null;
  #opened = false;
  /** Index of the last entry handed to `applyEntries` (applied or queued). */
  #lastQueuedIndex = 0;
  #draining = false;
  #restoring = false;
  #closed = false;
  #failure: unknown = undefined;

  constructor(
    machine: AnyStateMachine<Command, Output, Query, QueryOutput>,
    options: ExecutorOptions<Command, Output> = {},
  ) {
    parseOptions(OptionsSchema, options, 'StateMachineExecutor');
    this.#machine = machine;
    if (isDiskStateMachine(machine)) {
      if (options.store === undefined) {
        throw new TypeError(
          'Invalid option store for StateMachineExecutor: a state machine on disk needs a machine store',
        );
      }
      this.#memory = null;
      this.#disk = {
        machine,
        store: options.store,
        changes: new SessionChangeLog(),
        faults: options.diskUnsafeFaults ?? {},
      };
    } else {
      if (options.store !== undefined) {
        throw new TypeError(
          'Invalid option store for StateMachineExecutor: only a state machine on disk (onDisk: true) takes a store',
        );
      }
      this.#memory = machine;
      this.#disk = null;
    }
    this.#codec = options.codec ?? cborCodec<Command>();
    this.#entriesMax = options.applyBatchEntriesMax ?? applyBatchEntriesMaxDefault;
    this.#msMax = options.applyBatchMsMax ?? applyBatchMsMaxDefault;
    this.#waitersMax = options.appliedWaitersMax ?? appliedWaitersMaxDefault;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#yieldTurn = options.yieldTurn ?? yieldToEventLoop;
    this.#onApplied = options.onApplied;
    this.#onTimerError = options.onTimerError ??
      ((error, index) => console.error(`Timer callback failed at index ${index}:`, error));
    this.#sessions = new SessionTable(options.sessionLimits ?? sessionLimitsDefault);
    if (this.#disk !== null) this.#sessions.journal = this.#disk.changes;
    this.#onEvent = options.onEvent;
    this.#onSessionExpired = options.onSessionExpired;
    this.#faults = options.unsafeFaults ?? {};
    this.#clock.publish = (session, name, payload) => this.#publishEvent(session, name, payload);
  }

  /** The client sessions, as the applied log defines them (read them; never change them). */
  get sessions(): SessionTable {
    return this.#sessions;
  }

  /**
   * Index of the last applied entry (0 before any). Never decreases. For a machine on disk, the
   * last committed one: reads see its state.
   */
  get lastAppliedIndex(): number {
    return this.#lastAppliedIndex;
  }

  /**
   * For a machine on disk, the applied index of the newest transaction synced to disk: after any
   * crash the machine restarts at this index or later, so the log must be kept above it. For one
   * in memory, `lastAppliedIndex` (its durability is the snapshot's).
   */
  get durableAppliedIndex(): number {
    return this.#disk === null ? this.#lastAppliedIndex : this.#durableAppliedIndex;
  }

  /** True when the state machine lives on disk. */
  get onDisk(): boolean {
    return this.#disk !== null;
  }

  /**
   * Before anything is applied: load what a machine on disk holds (its session table and applied
   * index, then its own `open`) and return the applied index it stands at (0 when fresh), which
   * applying continues from (dragonboat's `Open`). An in-memory machine holds nothing: 0 (restore
   * it from a snapshot instead). Call once.
   */
  open(): number {
    assert(!this.#opened, 'The executor was opened twice');
    assert(
      this.#lastQueuedIndex === 0 && this.#jobs.length === 0,
      'The executor was opened after entries were handed to it',
    );
    this.#opened = true;
    const disk = this.#disk;
    if (disk === null) return 0;
    const { applied, sessions } = disk.store.load();
    this.#sessions.load(sessions);
    disk.changes.drain(this.#sessions); // nothing pending: `load` is not journaled
    this.#moveTo(applied.index, applied.term, applied.timeMs);
    this.#durableAppliedIndex = applied.index;
    disk.machine.open(disk.store.data, this.#clock.context);
    return applied.index;
  }

  /**
   * Stand at `index` (a snapshot's, or what a machine on disk holds), with nothing in flight. The
   * clock is reset only when `timeMs` is given (an in-memory restore reset it before the machine
   * re-created its timers).
   */
  #moveTo(index: number, term: number, timeMs?: number): void {
    if (timeMs !== undefined) this.#clock.reset(index, timeMs);
    this.#lastAppliedIndex = this.#cursorIndex = index;
    this.#lastAppliedTerm = this.#cursorTerm = term;
    this.#lastQueuedIndex = index;
  }

  /** Term of the last applied entry (0 before any). */
  get lastAppliedTerm(): number {
    return this.#lastAppliedTerm;
  }

  /** Log time of the last applied entry in milliseconds. */
  get logTimeMs(): number {
    return this.#clock.timeMs;
  }

  /** Timers pending in the state machine's context. */
  get pendingTimerCount(): number {
    return this.#clock.pendingCount;
  }

  /**
   * Hand over committed entries, consecutive and following the last handed over (asserted, at
   * the call). They are applied in bounded batches that yield to the event loop; the promise
   * resolves with the results of the command entries among them, in index order, once all are
   * applied (`onApplied` hears each result earlier, as its batch completes). Calls queue behind
   * each other. The entries array is read, not copied: do not change it until the promise settles.
   */
  applyEntries(entries: readonly Entry[]): Promise<ApplyResult<Output>[]> {
    if (this.#closed) return Promise.reject(new ShutdownError('the executor is closed'));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    assert(!this.#restoring, 'Entries handed to the executor during a restore');
    assert(
      this.#disk === null || this.#opened,
      'Entries handed to a state machine on disk before executor.open()',
    );
    let expected = this.#lastQueuedIndex + 1;
    for (const entry of entries) {
      assert(
        entry.index === expected,
        `Entries must be consecutive: expected index ${expected}, got ${entry.index}`,
      );
      expected++;
    }
    this.#lastQueuedIndex = expected - 1;
    if (entries.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#jobs.push({ entries, position: 0, results: [], resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  /** Answer a read-only query against the current state; a throw becomes a `QueryError`. */
  query(query: Query): QueryOutput {
    try {
      return this.#machine.query(query);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new QueryError(`Query failed: ${detail}`, false, { cause: error });
    }
  }

  /**
   * Resolve once `lastAppliedIndex >= index`. Rejects with a retryable `QueryError` when
   * `appliedWaitersMax` calls already wait, and with `ShutdownError` when the executor closes.
   */
  waitForApplied(index: number): Promise<void> {
    if (index <= this.#lastAppliedIndex) return Promise.resolve();
    if (this.#closed) return Promise.reject(new ShutdownError('the executor is closed'));
    if (this.#waiters.size >= this.#waitersMax) {
      return Promise.reject(
        new QueryError(`Too many reads waiting: limit ${this.#waitersMax}`, true),
      );
    }
    return new Promise((resolve, reject) => this.#waiters.push({ index, resolve, reject }));
  }

  /**
   * Take a snapshot of the state at `lastAppliedIndex`. The state machine captures its view now,
   * synchronously, and the chunks stream it while applying goes on. Timers are not included
   * (see `StateMachine.restore`).
   */
  takeSnapshot(): StateSnapshot {
    assert(!this.#restoring, 'Snapshot requested during a restore');
    if (this.#disk !== null) {
      // One read transaction: the committed data, sessions and applied index, consistent.
      const view = this.#disk.store.view();
      return { meta: view.applied, chunks: diskSnapshotChunks(view), discard: () => view.close() };
    }
    const meta = {
      index: this.#lastAppliedIndex,
      term: this.#lastAppliedTerm,
      timeMs: this.#clock.timeMs,
    };
    // The session table leads the stream, as one length-prefixed frame, captured now too.
    const sessions = this.#sessionCodec.encode(this.#sessions.toData());
    const machine = this.#memory!.snapshot();
    return { meta, chunks: withLeadingFrame(sessions, machine), discard: () => {} };
  }

  /**
   * Replace the state with a snapshot: cancel every timer, let the state machine load the chunks
   * (it may re-create timers, with the snapshot's index and time in its context), and continue
   * from `meta.index`. Only when nothing is being applied, and never backwards.
   */
  async restore(meta: StateSnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    assert(this.#jobs.length === 0 && !this.#draining, 'Restore while entries are being applied');
    assert(!this.#restoring, 'Restore while another restore runs');
    assert(
      meta.index >= this.#lastAppliedIndex,
      `Restore would move backwards: applied ${this.#lastAppliedIndex}, snapshot ${meta.index}`,
    );
    this.#restoring = true;
    try {
      const disk = this.#disk;
      if (disk !== null) {
        // Staged beside the current state, switched to in one transaction (synced), then loaded.
        const { sessions, pairs } = await readDiskSnapshot(chunks);
        await disk.store.install(meta, sessions, pairs);
        this.#sessions.load(sessions);
        this.#moveTo(meta.index, meta.term, meta.timeMs);
        this.#durableAppliedIndex = meta.index;
        disk.machine.open(disk.store.data, this.#clock.context);
      } else {
        this.#clock.reset(meta.index, meta.timeMs);
        const { frame, rest } = await splitLeadingFrame(
          chunks,
          sessionFrameBytesMax,
          'session table',
        );
        this.#sessions.load(this.#sessionCodec.decode(frame));
        await this.#memory!.restore(rest, this.#clock.context);
        this.#moveTo(meta.index, meta.term);
      }
      this.#releaseWaiters();
    } finally {
      this.#restoring = false;
    }
  }

  /** Stop: pending `applyEntries` and `waitForApplied` calls reject with `ShutdownError`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new ShutdownError('the executor is closed');
    for (const job of this.#jobs.splice(0)) job.reject(error);
    for (const waiter of this.#waiters.drain()) waiter.reject(error);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#jobs.length > 0 && !this.#closed) {
        let held: (() => void)[] = [];
        try {
          if (this.#disk === null) this.#applyBatch();
          else held = await this.#applyDiskBatch(this.#disk);
        } catch (error) {
          // A broken invariant or a contract breach by applyBatch: the state is unknown, so stop.
          this.#failure = error;
          for (const job of this.#jobs.splice(0)) job.reject(error);
          break;
        }
        if (held.length > 0 && this.#jobs.length === 0) {
          // Done: idle before telling, as the in-memory path is, so that whoever hears of the last
          // result may restore or snapshot at once.
          this.#draining = false;
          for (const tell of held) tell();
          this.#releaseWaiters();
          return;
        }
        for (const tell of held) tell();
        this.#releaseWaiters();
        if (this.#jobs.length > 0) await this.#yieldTurn();
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * One bounded batch of a machine on disk, in one write transaction with its session changes and
   * applied index. What it would tell (results, events, expiries, jobs done) is held back until
   * the transaction is committed, so nobody hears of a state that reads cannot see yet: the
   * caller tells it, in order.
   */
  async #applyDiskBatch(
    disk: Disk<Command, Output, Query, QueryOutput>,
  ): Promise<(() => void)[]> {
    const held: (() => void)[] = [];
    const split = disk.faults.splitMachineCommit === true;
    const writeApplied = (txn: MachineTransaction) => {
      txn.sessions(disk.changes.drain(this.#sessions));
      txn.applied({ index: this.#cursorIndex, term: this.#cursorTerm, timeMs: this.#clock.timeMs });
    };
    let commit = disk.store.commit((txn) => {
      // Runs inside the environment's write transaction, on a later turn.
      if (this.#closed) return;
      this.#held = held;
      try {
        this.#applyBatch();
      } finally {
        this.#held = null;
      }
      if (!split) writeApplied(txn);
    });
    await commit.committed;
    if (split) {
      // The planted bug: sessions and applied index in a transaction of their own, after.
      commit = disk.store.commit(writeApplied);
      await commit.committed;
    }
    const appliedIndex = this.#cursorIndex;
    commit.durable.then(() => {
      if (appliedIndex > this.#durableAppliedIndex) this.#durableAppliedIndex = appliedIndex;
    }, () => {}); // a failed sync fails the storage's next write too
    if (this.#closed) return [];
    this.#lastAppliedIndex = this.#cursorIndex;
    this.#lastAppliedTerm = this.#cursorTerm;
    return held;
  }

  /** Run `tell` now, or once the batch's transaction is committed (a machine on disk). */
  #tell(tell: () => void): void {
    if (this.#held === null) tell();
    else this.#held.push(tell);
  }

  /** Apply one bounded batch across the queued jobs. */
  #applyBatch(): void {
    const startedMs = this.#nowMs();
    let appliedCount = 0;
    const batched = this.#memory?.applyBatch !== undefined;
    const run: RunItem<Command, Output>[] = [];
    while (this.#jobs.length > 0) {
      const job = this.#jobs[0]!;
      while (job.position < job.entries.length) {
        const entry = job.entries[job.position]!;
        assert(
          entry.index === this.#cursorIndex + 1,
          `Applied out of order: last applied ${this.#cursorIndex}, next ${entry.index}`,
        );
        if (batched && run.length > 0 && this.#clock.hasDue(entry.timeMs)) this.#flushRun(run);
        this.#clock.advance(entry.index, entry.timeMs);
        this.#clock.fireDue(this.#onTimerError);
        // Sessions expire by log time, the same at every member; each new leader's no-op first
        // renews them all (no keep-alive could be logged while there was no leader).
        if (entry.type === 'noop' && this.#faults.expireLeaderlessTime !== true) {
          this.#sessions.renewAll(this.#clock.timeMs);
        }
        for (const id of this.#sessions.expireUpTo(this.#clock.timeMs)) {
          const onExpired = this.#onSessionExpired;
          if (onExpired !== undefined) this.#tell(() => onExpired(id));
        }
        if (entry.type === 'command') this.#applyEntry(entry, job, batched ? run : null);
        this.#cursorIndex = entry.index;
        this.#cursorTerm = entry.term;
        if (this.#disk === null) {
          this.#lastAppliedIndex = entry.index;
          this.#lastAppliedTerm = entry.term;
        }
        job.position++;
        appliedCount++;
        if (appliedCount >= this.#entriesMax || this.#nowMs() - startedMs >= this.#msMax) break;
      }
      if (job.position < job.entries.length) break;
      // The job is complete once its pending run (if any) is flushed below or here.
      this.#flushRun(run);
      this.#jobs.shift();
      this.#tell(() => job.resolve(job.results));
      if (appliedCount >= this.#entriesMax || this.#nowMs() - startedMs >= this.#msMax) break;
    }
    this.#flushRun(run);
  }

  /**
   * One command entry: its envelope says whether it is a plain command, a session's command (each
   * sequence applied once, a retry answered from the kept result), or a session's registration,
   * keep-alive or unregistration. `run` collects commits for `applyBatch`; `null`: apply one by one.
   */
  #applyEntry(entry: CommandEntry, job: Job<Output>, run: RunItem<Command, Output>[] | null): void {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(entry.data);
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      if (run !== null) this.#flushRun(run); // keep results in index order
      return this.#publish(job, {
        index: entry.index,
        ok: false,
        error: new ApplicationError(`Command could not be decoded: ${error.message}`),
      });
    }
    const index = entry.index;
    const timeMs = this.#clock.timeMs;
    if (envelope.kind === 'plain' || envelope.kind === 'command') {
      let sessionId = 0;
      let sequence = 0;
      if (envelope.kind === 'command') {
        sessionId = envelope.session;
        sequence = envelope.sequence;
        const session = this.#sessions.get(sessionId);
        if (session === undefined) {
          if (run !== null) this.#flushRun(run);
          return this.#publish(job, {
            index,
            ok: false,
            error: new UnknownSessionError(sessionId),
          });
        }
        this.#sessions.touch(session, timeMs);
        const again = sequence < session.nextSequence &&
          this.#faults.applyDuplicateSequences === true; // a planted bug: dedup off
        if (sequence !== session.nextSequence && !again) {
          if (run !== null) this.#flushRun(run); // a kept result may be in the pending run
          return this.#publish(job, this.#answerOutOfSequence(index, session, sequence));
        }
        if (!again) this.#sessions.advanceSequence(session);
      }
      const commit = this.#decode(entry, envelope.data);
      if (commit instanceof ApplicationError) {
        if (run !== null) this.#flushRun(run);
        const result: ApplyResult<Output> = { index, ok: false, error: commit };
        this.#keepResult(sessionId, sequence, result);
        return this.#publish(job, result);
      }
      if (run !== null) {
        run.push({ commit, job, session: sessionId, sequence });
        return;
      }
      let result: ApplyResult<Output>;
      try {
        this.#clock.publishing = sessionId;
        const output = this.#machine.apply(commit, this.#clock.context);
        result = output instanceof ApplicationError
          ? { index, ok: false, error: output }
          : { index, ok: true, output };
      } catch (error) {
        result = { index, ok: false, error: ApplicationError.from(error) };
      } finally {
        this.#clock.publishing = 0;
      }
      this.#keepResult(sessionId, sequence, result);
      return this.#publish(job, result);
    }
    if (run !== null) this.#flushRun(run);
    switch (envelope.kind) {
      case 'register':
        this.#sessions.register(index, timeMs, envelope.timeoutMs);
        return this.#publish(job, {
          index,
          ok: true,
          output: { session: index, timeoutMs: envelope.timeoutMs } as unknown as Output,
        });
      case 'keepAlive': {
        const session = this.#sessions.get(envelope.session);
        if (session === undefined) {
          return this.#publish(job, {
            index,
            ok: false,
            error: new UnknownSessionError(envelope.session),
          });
        }
        this.#sessions.touch(session, timeMs);
        const commandAck = this.#faults.trimUnacknowledgedResults === true
          ? Number.MAX_SAFE_INTEGER // a planted bug: trims results the client never received
          : envelope.commandAck;
        this.#sessions.acknowledge(session, commandAck, envelope.eventAck);
        return this.#publish(job, {
          index,
          ok: true,
          output: { session: envelope.session } as unknown as Output,
        });
      }
      case 'unregister':
        this.#sessions.remove(envelope.session);
        return this.#publish(job, {
          index,
          ok: true,
          output: { session: envelope.session } as unknown as Output,
        });
    }
  }

  /** A session command whose sequence is not the next one: a retry (answer it again) or early. */
  #answerOutOfSequence(
    index: number,
    session: { nextSequence: number; results: Map<number, CachedResult> },
    sequence: number,
  ): ApplyResult<Output> {
    if (sequence > session.nextSequence) {
      return {
        index,
        ok: false,
        error: new CommandError(
          `sequence ${sequence} of session ahead of the next expected ${session.nextSequence}`,
        ),
      };
    }
    const kept = session.results.get(sequence);
    if (kept === undefined) {
      return {
        index,
        ok: false,
        duplicate: true,
        error: new CommandError(
          `sequence ${sequence} was applied and its output is no longer kept (acknowledged)`,
        ),
      };
    }
    if (kept.ok) return { index, ok: true, output: kept.output as Output, duplicate: true };
    return {
      index,
      ok: false,
      duplicate: true,
      error: kept.code === 'UNKNOWN_SESSION'
        ? new UnknownSessionError(0)
        : new ApplicationError(kept.message),
    };
  }

  /** Keep a session command's result for its retries. */
  #keepResult(sessionId: number, sequence: number, result: ApplyResult<Output>): void {
    if (sessionId === 0) return;
    const session = this.#sessions.get(sessionId);
    if (session === undefined) return;
    this.#sessions.keep(
      session,
      sequence,
      result.ok ? { index: result.index, ok: true, output: result.output } : {
        index: result.index,
        ok: false,
        code: result.error.code,
        message: result.error.message,
      },
    );
  }

  /** `context.publish`: record an event for a session while applying (unknown sessions: ignored). */
  #publishEvent(session: number, name: string, payload: unknown): boolean {
    const s = this.#sessions.get(session);
    if (s === undefined) return false;
    const event = this.#sessions.publish(s, this.#clock.index, name, payload);
    const onEvent = this.#onEvent;
    if (onEvent !== undefined) this.#tell(() => onEvent(session, event));
    return true;
  }

  /** Decode a command's bytes into a commit, or the `ApplicationError` they earn. */
  #decode(entry: CommandEntry, data: Uint8Array): Commit<Command> | ApplicationError {
    let command: Command;
    try {
      command = this.#codec.decode(data);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return new ApplicationError(`Command could not be decoded: ${detail}`, { cause: error });
    }
    return { index: entry.index, term: entry.term, timeMs: this.#clock.timeMs, command };
  }

  /** Apply the pending run of commits with `applyBatch` and publish their results in order. */
  #flushRun(run: RunItem<Command, Output>[]): void {
    if (run.length === 0) return;
    const commits = run.map((r) => r.commit);
    const outputs = this.#memory!.applyBatch!(commits);
    assert(
      Array.isArray(outputs) && outputs.length === commits.length,
      `applyBatch returned ${
        Array.isArray(outputs) ? outputs.length : 'no'
      } outputs for ${commits.length} commits`,
    );
    for (let i = 0; i < run.length; i++) {
      const { commit, job, session, sequence } = run[i]!;
      const output = outputs[i] as Output | ApplicationError;
      const result: ApplyResult<Output> = output instanceof ApplicationError
        ? { index: commit.index, ok: false, error: output }
        : { index: commit.index, ok: true, output };
      this.#keepResult(session, sequence, result);
      this.#publish(job, result);
    }
    run.length = 0;
  }

  #publish(job: Job<Output>, result: ApplyResult<Output>): void {
    job.results.push(result);
    const onApplied = this.#onApplied;
    if (onApplied !== undefined) this.#tell(() => onApplied(result));
  }

  #releaseWaiters(): void {
    for (;;) {
      const top = this.#waiters.peek();
      if (top === undefined || top.index > this.#lastAppliedIndex) return;
      this.#waiters.pop();
      top.resolve();
    }
  }
}

export { sessionFrameBytesMax };

/** Let timers, I/O and other tasks run before the next batch. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type { ApplyContext };
