/**
 * Event-loop stalls of a running member: a timer every `stallWatchIntervalMs` notes how late it
 * fired; a lateness of `stallWatchThresholdMs` or more is a stall (the loop was blocked: a long
 * synchronous step, garbage collection, the process paused or starved of CPU). While it stalls a
 * member sends no heartbeat and answers no client, so a stall near the election timeout or the
 * client's keep-alive limit explains elections and "outcome unknown" answers that nothing else
 * does. Each stall of at least `stallWatchWarnMs` is logged as a warning (the caller's logger,
 * usually rate-limited); every one is counted for the metrics and the status. The same on every
 * runtime (a plain timer, not `perf_hooks`).
 *
 * @example
 * ```ts
 * const watch = new StallWatch((ms) => console.warn(`event loop blocked for ${ms} ms`));
 * watch.start();
 * watch.snapshot(); // { stalls: 0, longestMs: 0, totalMs: 0 }
 * watch.stop();
 * ```
 * @module
 */

/** How often the watch's timer fires, in ms. */
export const stallWatchIntervalMs = 50;
/** Lateness of the timer that counts as a stall, in ms. */
export const stallWatchThresholdMs = 100;
/** Stalls at least this long are reported to `onWarn`, in ms. */
export const stallWatchWarnMs = 250;

/** What the watch saw since it started. */
export type StallCounts = {
  /** Stalls of at least `stallWatchThresholdMs`. */
  stalls: number;
  /** The longest, in ms (0 before the first). */
  longestMs: number;
  /** Their sum, in ms. */
  totalMs: number;
};

/** See the module comment. */
export class StallWatch {
  readonly #onWarn: (stallMs: number) => void;
  #timer: ReturnType<typeof setInterval> | null = null;
  #lastMs = 0;
  #counts: StallCounts = { stalls: 0, longestMs: 0, totalMs: 0 };

  constructor(onWarn: (stallMs: number) => void) {
    this.#onWarn = onWarn;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#lastMs = performance.now();
    this.#timer = setInterval(() => this.#check(), stallWatchIntervalMs);
    // A member is kept alive by its sockets and its own timers, never by this one.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  snapshot(): StallCounts {
    return { ...this.#counts };
  }

  #check(): void {
    const now = performance.now();
    const lateMs = now - this.#lastMs - stallWatchIntervalMs;
    this.#lastMs = now;
    if (lateMs < stallWatchThresholdMs) return;
    const stallMs = Math.round(lateMs);
    this.#counts.stalls += 1;
    this.#counts.totalMs += stallMs;
    if (stallMs > this.#counts.longestMs) this.#counts.longestMs = stallMs;
    if (stallMs >= stallWatchWarnMs) this.#onWarn(stallMs);
  }
}
