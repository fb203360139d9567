/**
 * The real clock of a running member: the wall clock for log time and deadlines, `setTimeout` for
 * timers and `setImmediate` for work deferred to the next turn of the event loop.
 *
 * @module
 */
import { clearTimeout, setImmediate, setTimeout } from 'node:timers';
import type { Clock } from '../member/ports.ts';

/**
 * The `Clock` a `RaftServer` gives its driver.
 *
 * @example
 * ```ts
 * const cancel = realClock.setTimer(10, () => console.log('tick'));
 * cancel();
 * ```
 */
export const realClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
  defer: (callback) => void setImmediate(callback),
};
