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
 * Where sessions will hook in (next issue): `#applyCommand` is the one place a command entry
 * becomes a commit; a session manager wraps it to unwrap (session, sequence), answer duplicates
 * from its cache and expire sessions by log time, and adds its table to the snapshot stream.
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
  type SessionLimits,
  sessionLimitsDefault,
  SessionTable,
} from './sessions.ts';
import { splitLeadingFrame, withLeadingFrame } from './frames.ts';
import { MinHeap } from './heap.ts';
import type { Commit, StateMachine } from './state-machine.ts';

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
  unsafeFaults: v.optional(
    v.strictObject(
      Object.fromEntries(executorUnsafeFaultNames.map((n) => [n, v.optional(v.boolean())])),
    ),
  ),
});

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
 * Applies committed entries to a `StateMachine`.
 *
 * Invariants: entries arrive and are applied in index order, each exactly once
 * (`index === lastAppliedIndex + 1`, asserted); `lastAppliedIndex` never decreases; an
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
  readonly #machine: StateMachine<Command, Output, Query, QueryOutput>;
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
  #lastAppliedIndex = 0;
  #lastAppliedTerm = 0;
  /** Index of the last entry handed to `applyEntries` (applied or queued). */
  #lastQueuedIndex = 0;
  #draining = false;
  #restoring = false;
  #closed = false;
  #failure: unknown = undefined;

  constructor(
    machine: StateMachine<Command, Output, Query, QueryOutput>,
    options: ExecutorOptions<Command, Output> = {},
  ) {
    parseOptions(OptionsSchema, options, 'StateMachineExecutor');
    this.#machine = machine;
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
    this.#onEvent = options.onEvent;
    this.#onSessionExpired = options.onSessionExpired;
    this.#faults = options.unsafeFaults ?? {};
    this.#clock.publish = (session, name, payload) => this.#publishEvent(session, name, payload);
  }

  /** The client sessions, as the applied log defines them (read them; never change them). */
  get sessions(): SessionTable {
    return this.#sessions;
  }

  /** Index of the last applied entry (0 before any). Never decreases. */
  get lastAppliedIndex(): number {
    return this.#lastAppliedIndex;
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
    const meta = {
      index: this.#lastAppliedIndex,
      term: this.#lastAppliedTerm,
      timeMs: this.#clock.timeMs,
    };
    // The session table leads the stream, as one length-prefixed frame, captured now too.
    const sessions = this.#sessionCodec.encode(this.#sessions.toData());
    const machine = this.#machine.snapshot();
    return { meta, chunks: withLeadingFrame(sessions, machine) };
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
      this.#clock.reset(meta.index, meta.timeMs);
      const { frame, rest } = await splitLeadingFrame(
        chunks,
        sessionFrameBytesMax,
        'session table',
      );
      this.#sessions.load(this.#sessionCodec.decode(frame));
      await this.#machine.restore(rest, this.#clock.context);
      this.#lastAppliedIndex = meta.index;
      this.#lastAppliedTerm = meta.term;
      this.#lastQueuedIndex = meta.index;
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
        try {
          this.#applyBatch();
        } catch (error) {
          // A broken invariant or a contract breach by applyBatch: the state is unknown, so stop.
          this.#failure = error;
          for (const job of this.#jobs.splice(0)) job.reject(error);
          break;
        }
        this.#releaseWaiters();
        if (this.#jobs.length > 0) await this.#yieldTurn();
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Apply one bounded batch across the queued jobs. */
  #applyBatch(): void {
    const startedMs = this.#nowMs();
    let appliedCount = 0;
    const batched = this.#machine.applyBatch !== undefined;
    const run: RunItem<Command, Output>[] = [];
    while (this.#jobs.length > 0) {
      const job = this.#jobs[0]!;
      while (job.position < job.entries.length) {
        const entry = job.entries[job.position]!;
        assert(
          entry.index === this.#lastAppliedIndex + 1,
          `Applied out of order: last applied ${this.#lastAppliedIndex}, next ${entry.index}`,
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
          this.#onSessionExpired?.(id);
        }
        if (entry.type === 'command') this.#applyEntry(entry, job, batched ? run : null);
        this.#lastAppliedIndex = entry.index;
        this.#lastAppliedTerm = entry.term;
        job.position++;
        appliedCount++;
        if (appliedCount >= this.#entriesMax || this.#nowMs() - startedMs >= this.#msMax) break;
      }
      if (job.position < job.entries.length) break;
      // The job is complete once its pending run (if any) is flushed below or here.
      this.#flushRun(run);
      this.#jobs.shift();
      job.resolve(job.results);
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
        if (!again) session.nextSequence++;
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
    this.#onEvent?.(session, event);
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
    const outputs = this.#machine.applyBatch!(commits);
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
    this.#onApplied?.(result);
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

/** Largest session-table frame a snapshot may lead with, in bytes. */
export const sessionFrameBytesMax = 1024 ** 3;

/** Let timers, I/O and other tasks run before the next batch. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type { ApplyContext };
