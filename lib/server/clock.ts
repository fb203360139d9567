/**
 * The real clock of a running member: the wall clock for log time and deadlines, `setTimeout` for
 * timers and `setImmediate` for work deferred to the next turn of the event loop.
 *
 * Testing hook (off unless set): with `EDGERAFT_CLOCK_FILE` naming a file, the member's clock is
 * skewed by what that file says, re-read every `clockFilePollMs`: JSON `{"offsetMs": N, "rate": R}`.
 * `offsetMs` shifts the wall clock (a jump when it changes); `rate` makes it run fast (above 1) or
 * slow, and scales every timer by the same factor, so the member's ticks (election timeouts,
 * heartbeats, its lease, counted in ticks) run fast or slow too. It reaches everything the member
 * reads from its clock: the log time a leader stamps on entries (session expiry), proposal and
 * read deadlines, event times. `edgeraft torture` uses it for its clock faults; a missing or
 * malformed file means no skew.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { clearInterval, clearTimeout, setImmediate, setInterval, setTimeout } from 'node:timers';
import type { Clock } from '../member/ports.ts';

/** The testing hook's environment variable: see the module comment. */
export const clockFileVariable = 'EDGERAFT_CLOCK_FILE';

/** How often a skewed clock re-reads its file, in milliseconds. */
export const clockFilePollMs = 50;

const wallClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
  defer: (callback) => void setImmediate(callback),
};

/** A clock skewed by the JSON in `file` (see the module comment); for tests and `torture`. */
export function skewedClock(file: string): Clock & { stop(): void } {
  let offsetMs = 0;
  let rate = 1;
  // Skewed time is `anchorSkewedMs + (Date.now() - anchorRealMs) * rate`.
  let anchorRealMs = Date.now();
  let anchorSkewedMs = anchorRealMs;
  const nowMs = () => anchorSkewedMs + (Date.now() - anchorRealMs) * rate;
  const poll = () => {
    let next: { offsetMs?: unknown; rate?: unknown } = {};
    try {
      next = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      next = {};
    }
    const nextOffsetMs = typeof next.offsetMs === 'number' && Number.isFinite(next.offsetMs)
      ? next.offsetMs
      : 0;
    const nextRate = typeof next.rate === 'number' && next.rate > 0 && next.rate <= 100
      ? next.rate
      : 1;
    if (nextOffsetMs === offsetMs && nextRate === rate) return;
    const skewed = nowMs();
    anchorRealMs = Date.now();
    anchorSkewedMs = skewed - offsetMs + nextOffsetMs;
    offsetMs = nextOffsetMs;
    rate = nextRate;
  };
  poll();
  const poller = setInterval(poll, clockFilePollMs);
  poller.unref?.();
  return {
    nowMs: () => Math.floor(nowMs()),
    setTimer: (delayMs, callback) => {
      const timer = setTimeout(callback, delayMs / rate);
      return () => clearTimeout(timer);
    },
    defer: wallClock.defer,
    stop: () => clearInterval(poller),
  };
}

const clockFile = process.env[clockFileVariable];

/**
 * The `Clock` a `RaftServer` gives its driver: the wall clock, or with the testing hook set, a
 * skewed one.
 *
 * @example
 * ```ts
 * const cancel = realClock.setTimer(10, () => console.log('tick'));
 * cancel();
 * ```
 */
export const realClock: Clock = clockFile === undefined || clockFile === ''
  ? wallClock
  : skewedClock(clockFile);
