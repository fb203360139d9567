/**
 * Rate limits for repeated log lines. A flood of bad connections (thousands of idlers, a port
 * scanner, a client stuck in a reconnect loop) must cost the operator a few lines, not thousands,
 * while still saying that it happened and how big it was: at most `linesPerKindMax` lines of one
 * kind are written per `intervalMs`; the rest are counted, and when the interval ends one summary
 * line says how many were suppressed, quoting the first of them.
 *
 * A line's kind is its level plus its text with every run of digits replaced by `#`: addresses,
 * ports, byte counts and durations differ from line to line, what happened does not. Callers that
 * know better may name the kind themselves (`log`).
 *
 * Summaries are written by an unref'd timer (it never keeps a process alive) and by `flush`, which
 * owners call when they close, so that no count is lost on an orderly stop. Lives next to the
 * peer transport so that the transport and the server's client port can both use it without
 * the transport importing from the server.
 *
 * @example
 * ```ts
 * const limiter = new LogLimiter(stderrLogger, { linesPerKindMax: 10, intervalMs: 10_000 });
 * const log = limiter.logger();
 * for (let port = 40_000; port < 41_000; port++) log.warn(`Closing client 10.0.0.1:${port}: idle`);
 * // 10 lines now, then: "Suppressed 990 similar warnings in 10000 ms: Closing client 10.0.0.1:40010: idle"
 * limiter.flush();
 * ```
 * @module
 */
import { clearTimeout, setTimeout } from 'node:timers';
import { assert } from '../base/errors.ts';
import type { LogFields } from '../base/logger.ts';
import type { TransportLogger } from './options.ts';

/** The limits of one `LogLimiter`. */
export type LogLimits = {
  /** Lines of one kind written per interval; more are counted and summarized. At least 1. */
  linesPerKindMax: number;
  /** Length of one interval, in milliseconds, counted from the first line of the kind. */
  intervalMs: number;
};

/**
 * Kinds tracked at once. Beyond it, lines of new kinds share one window (`otherKind`), so a
 * stream of ever-different lines cannot grow the table without bound.
 */
export const logKindsMax = 256;
const otherKind = 'other';

type Level = 'warn' | 'info';

type Window = {
  level: Level;
  startMs: number;
  lines: number;
  suppressed: number;
  /** The first suppressed line, quoted by the summary. */
  firstSuppressed: string;
  timer: ReturnType<typeof setTimeout> | null;
};

/** The kind of `message` at `level`: its text with every run of digits replaced by `#`. */
export function similarKind(level: Level, message: string): string {
  return `${level} ${message.replace(/\d+/g, '#')}`;
}

/** See the module comment. */
export class LogLimiter {
  readonly #logger: TransportLogger;
  readonly #limits: LogLimits;
  readonly #windows = new Map<string, Window>();
  /** Lines written, and lines suppressed, since the limiter was made (summaries not counted). */
  writtenCount = 0;
  suppressedCount = 0;

  constructor(logger: TransportLogger, limits: LogLimits) {
    assert(
      Number.isSafeInteger(limits.linesPerKindMax) && limits.linesPerKindMax >= 1,
      'linesPerKindMax is a positive integer',
    );
    assert(
      Number.isSafeInteger(limits.intervalMs) && limits.intervalMs >= 1,
      'intervalMs is a positive integer',
    );
    this.#logger = logger;
    this.#limits = limits;
  }

  /**
   * A logger whose warnings and infos are limited by `similarKind`; debug lines pass unlimited
   * (they are off unless someone is debugging, and then every one matters).
   */
  logger(): TransportLogger {
    const inner = this.#logger;
    return {
      warn: (message, fields) =>
        this.log('warn', similarKind('warn', message), message, Date.now(), fields),
      info: (message, fields) =>
        this.log('info', similarKind('info', message), message, Date.now(), fields),
      debug: (message, fields) => inner.debug(message, fields),
      // Errors stop the member: rare, and each one matters.
      error: (message, fields) =>
        inner.error === undefined ? inner.warn(message, fields) : inner.error(message, fields),
    };
  }

  /**
   * Write `message` (with its structured `fields`) at `level` unless `kind` already had its lines
   * in this interval.
   */
  log(
    level: Level,
    kind: string,
    message: string,
    nowMs: number = Date.now(),
    fields?: LogFields,
  ): void {
    let w = this.#windows.get(kind);
    if (w !== undefined && nowMs - w.startMs >= this.#limits.intervalMs) {
      this.#end(kind, w);
      w = undefined;
    }
    if (w === undefined) {
      if (this.#windows.size >= logKindsMax) this.#prune(nowMs);
      if (this.#windows.size >= logKindsMax && kind !== otherKind) {
        return this.log(level, otherKind, message, nowMs, fields);
      }
      w = { level, startMs: nowMs, lines: 0, suppressed: 0, firstSuppressed: '', timer: null };
      this.#windows.set(kind, w);
    }
    if (w.lines < this.#limits.linesPerKindMax) {
      w.lines += 1;
      this.writtenCount += 1;
      if (fields === undefined) this.#logger[level](message);
      else this.#logger[level](message, fields);
      return;
    }
    if (w.suppressed === 0) {
      w.firstSuppressed = message;
      const window = w;
      // Summarize when the interval ends, even if no line of this kind ever comes again.
      w.timer = setTimeout(
        () => this.#end(kind, window),
        Math.max(0, w.startMs + this.#limits.intervalMs - nowMs),
      );
      w.timer.unref();
    }
    w.suppressed += 1;
    this.suppressedCount += 1;
  }

  /** Write every pending summary now and start every kind afresh (call on close). */
  flush(): void {
    for (const [kind, w] of [...this.#windows]) this.#end(kind, w);
  }

  #end(kind: string, w: Window): void {
    if (this.#windows.get(kind) !== w) return;
    this.#windows.delete(kind);
    if (w.timer !== null) clearTimeout(w.timer);
    if (w.suppressed === 0) return;
    const what = w.level === 'warn' ? 'warnings' : 'messages';
    this.#logger[w.level](
      `Suppressed ${w.suppressed} similar ${what} in ${this.#limits.intervalMs} ms: ${w.firstSuppressed}`,
      { suppressedCount: w.suppressed, intervalMs: this.#limits.intervalMs },
    );
  }

  /** Forget windows that ended with nothing suppressed (those with suppressions end by timer). */
  #prune(nowMs: number): void {
    for (const [kind, w] of this.#windows) {
      if (w.suppressed === 0 && nowMs - w.startMs >= this.#limits.intervalMs) {
        this.#windows.delete(kind);
      }
    }
  }
}
