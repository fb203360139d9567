/**
 * The deterministic context a state machine runs in: the log index being applied, the log time,
 * and timers fired by log time.
 *
 * Log time advances only with applied entries (noop and configuration entries included): it is
 * the leader's timestamp carried in each entry, so every member sees the same time at the same
 * index whatever its wall clock says. A timer is due at `timeMs + delayMs` of the entry that
 * registered it; it fires inside the apply of the first later entry whose log time reaches the
 * due time, before that entry's command, in order of due time then registration. Every member
 * therefore fires the same callbacks at the same index in the same order.
 *
 * @module
 */
import { assert } from '../base/errors.ts';
import { MinHeap } from './heap.ts';

/** Most timers pending at once in one executor: a runaway `schedule` loop fails, not the heap. */
export const scheduledTimersMax = 1_000_000;

/** A timer callback; it receives the context of the entry whose log time made it due. */
export type TimerCallback = (context: ApplyContext) => void;

/**
 * A registered timer. `cancel()` returns true when it removed a pending timer, false when the
 * timer had already fired or been cancelled.
 */
export interface ScheduledTimer {
  readonly dueTimeMs: number;
  cancel(): boolean;
}

/**
 * What `apply` (and a timer callback, and `restore`) sees.
 *
 * @example
 * ```ts
 * apply(commit, context) {
 *   // expire this key 60 s of log time from now, identically on every member
 *   context.schedule(60_000, () => this.map.delete(commit.command.key));
 * }
 * ```
 */
export interface ApplyContext {
  /** Index of the entry being applied (the snapshot's index inside `restore`). */
  readonly index: number;
  /** Log time of that entry in milliseconds (the snapshot's inside `restore`). */
  readonly timeMs: number;
  /**
   * Run `callback` once log time reaches `timeMs + delayMs` (`delayMs`: a safe integer ≥ 0). A
   * timer registered with delay 0 fires at the next entry, never in the current one. Throws
   * `RangeError` for a bad delay or past `scheduledTimersMax` pending timers (inside `apply`
   * that fails the command, deterministically).
   */
  schedule(delayMs: number, callback: TimerCallback): ScheduledTimer;
  /**
   * The client session whose command is being applied, or 0 (a command without a session, a
   * timer, `restore`).
   */
  readonly session: number;
  /**
   * Publish an event to client session `session` (any session, not only the current one), for
   * example a change to a key it watches. Every member computes it, since it comes from the log;
   * the member the client is connected to delivers it, before the response to the command being
   * applied and after the responses to earlier ones, and again after a reconnect until the client
   * acknowledges it. Returns false when the session does not exist (it expired). `payload` must be
   * CBOR-encodable; it is kept in the session (and its snapshots) until acknowledged.
   */
  publish(session: number, name: string, payload?: unknown): boolean;
}

type Timer = {
  readonly dueTimeMs: number;
  readonly seq: number;
  readonly callback: TimerCallback;
  pending: boolean;
};

/**
 * The executor's log clock and timer queue: one per executor. `advance` moves it to an applied
 * entry and `fireDue` runs the timers that entry made due.
 *
 * @example
 * ```ts
 * const clock = new LogClock();
 * clock.context.schedule(10, () => console.log('fired'));
 * clock.advance(1, 10);
 * clock.fireDue((error) => console.error(error)); // logs 'fired'
 * ```
 */
export class LogClock {
  #index = 0;
  #timeMs = 0;
  #seq = 0;
  #pendingCount = 0;
  readonly #timers = new MinHeap<Timer>((a, b) =>
    a.dueTimeMs < b.dueTimeMs || (a.dueTimeMs === b.dueTimeMs && a.seq < b.seq)
  );
  /** The context handed to `apply`, timer callbacks and `restore`; it reads the clock live. */
  readonly context: ApplyContext;
  /** Where `context.publish` goes (set by the executor, which keeps the sessions). */
  publish: (session: number, name: string, payload: unknown) => boolean = () => false;
  /** The session of the command being applied (0: none). */
  publishing = 0;

  constructor() {
    const index = (): number => this.#index;
    const timeMs = (): number => this.#timeMs;
    const session = (): number => this.publishing;
    this.context = {
      get index() {
        return index();
      },
      get timeMs() {
        return timeMs();
      },
      get session() {
        return session();
      },
      schedule: (delayMs, callback) => this.#schedule(delayMs, callback),
      publish: (s, name, payload) => this.publish(s, name, payload),
    };
  }

  /** Index of the last entry the clock was advanced to. */
  get index(): number {
    return this.#index;
  }

  /** Current log time in milliseconds. */
  get timeMs(): number {
    return this.#timeMs;
  }

  /** Timers registered and neither fired nor cancelled. */
  get pendingCount(): number {
    return this.#pendingCount;
  }

  /**
   * Move to the entry at `index` (the next one) with log time `timeMs`. Log time never goes
   * back: an entry stamped earlier than its predecessor (a new leader whose clock lags) keeps
   * the previous time. That rule depends only on the log, so it holds identically everywhere.
   */
  advance(index: number, timeMs: number): void {
    assert(
      index === this.#index + 1,
      `Log clock must advance by one index: at ${this.#index}, got ${index}`,
    );
    this.#index = index;
    if (timeMs > this.#timeMs) this.#timeMs = timeMs;
  }

  /** True when some pending timer is due at log time `timeMs`. */
  hasDue(timeMs: number): boolean {
    this.#dropCancelledTop();
    const top = this.#timers.peek();
    return top !== undefined && top.dueTimeMs <= Math.max(timeMs, this.#timeMs);
  }

  /**
   * Fire every timer due at the current log time, in order of due time then registration.
   * Timers that these callbacks register wait for a later entry even when already due, so a
   * callback that re-schedules itself with delay 0 cannot loop forever. A throwing callback is
   * reported to `onError` and the others still run (the throw is deterministic too).
   * Returns how many fired.
   */
  fireDue(onError: (error: unknown, index: number) => void): number {
    const seqLimit = this.#seq;
    let firedCount = 0;
    for (;;) {
      const top = this.#timers.peek();
      if (top === undefined || top.dueTimeMs > this.#timeMs || top.seq >= seqLimit) break;
      this.#timers.pop();
      if (!top.pending) continue;
      top.pending = false;
      this.#pendingCount--;
      firedCount++;
      try {
        top.callback(this.context);
      } catch (error) {
        onError(error, this.#index);
      }
    }
    return firedCount;
  }

  /**
   * Reset to a snapshot's index and time and drop every pending timer (they are not part of
   * snapshots; the state machine re-creates what it needs in `restore`).
   */
  reset(index: number, timeMs: number): void {
    for (const timer of this.#timers.drain()) timer.pending = false;
    this.#pendingCount = 0;
    this.#index = index;
    this.#timeMs = timeMs;
  }

  #schedule(delayMs: number, callback: TimerCallback): ScheduledTimer {
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
      throw new RangeError(`Invalid timer delay: ${delayMs} ms, expected a safe integer >= 0`);
    }
    if (this.#pendingCount >= scheduledTimersMax) {
      throw new RangeError(`Too many pending timers: limit ${scheduledTimersMax}`);
    }
    const timer: Timer = {
      dueTimeMs: this.#timeMs + delayMs,
      seq: this.#seq++,
      callback,
      pending: true,
    };
    this.#timers.push(timer);
    this.#pendingCount++;
    return { dueTimeMs: timer.dueTimeMs, cancel: () => this.#cancel(timer) };
  }

  #cancel(timer: Timer): boolean {
    if (!timer.pending) return false;
    timer.pending = false;
    this.#pendingCount--;
    this.#compact();
    return true;
  }

  #dropCancelledTop(): void {
    while (this.#timers.peek()?.pending === false) this.#timers.pop();
  }

  /** Cancelled timers stay in the heap until popped; rebuild when they dominate it. */
  #compact(): void {
    if (this.#timers.size > 1024 && this.#timers.size > this.#pendingCount * 2) {
      this.#timers.filter((t) => t.pending);
    }
  }
}
