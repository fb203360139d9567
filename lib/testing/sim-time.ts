/**
 * Virtual time for the simulator: one queue of events ordered by time, then by scheduling order,
 * and a `Clock` per member incarnation whose timers die with it (a crashed member's timers never
 * fire). Between events the simulator lets every promise continuation run (`settle`), so that
 * what an event set in motion finishes at that event's virtual time, as it would on a real
 * member between two ticks.
 *
 * @module
 */
import { setImmediate } from 'node:timers';
import type { Clock } from '../member/ports.ts';
import { MinHeap } from '../state/heap.ts';

/**
 * Events one virtual instant may hold before the run is declared a livelock: a busy cluster runs
 * a few hundred at one instant; a driver that keeps rescheduling itself at delay 0 runs millions
 * (a real process would spin at 100% CPU).
 */
const livelockEventsMax = 200_000;

/** Virtual time stopped passing: something reschedules itself at delay 0 forever. */
export class LivelockError extends Error {
  override name = 'LivelockError';
}

type Scheduled = {
  at: number;
  seq: number;
  run: () => void;
  cancelled: boolean;
  /** The event may set promise continuations going: let them run before the next event. */
  settles: boolean;
};

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * The simulator's event queue and virtual clock.
 *
 * @example
 * ```ts
 * const time = new VirtualTime();
 * time.schedule(5, () => console.log(time.nowMs)); // 5
 * await time.runUntil(10, () => {});
 * ```
 */
export class VirtualTime {
  #now = 0;
  #seq = 0;
  readonly #queue = new MinHeap<Scheduled>(before);
  /** Events run so far. */
  events = 0;
  /** Events run since virtual time last moved (see `livelockEventsMax`). */
  #eventsAtNow = 0;

  get nowMs(): number {
    return this.#now;
  }

  /** Events waiting. */
  get size(): number {
    return this.#queue.size;
  }

  /**
   * Run `run` `delayMs` from now; returns a cancel function. `settles: false` promises that
   * `run` starts no promise continuation (a plain message delivery), which saves a turn.
   */
  schedule(delayMs: number, run: () => void, settles = true): () => void {
    const item: Scheduled = {
      at: this.#now + Math.max(0, delayMs),
      seq: this.#seq++,
      run,
      cancelled: false,
      settles,
    };
    this.#queue.push(item);
    return () => {
      item.cancelled = true;
    };
  }

  /**
   * Run events in order until the queue is empty, virtual time would pass `endMs`, or `stop`
   * returns true (checked after each event). `afterEach` runs after every event, once the
   * continuations it set off have run.
   */
  async runUntil(
    endMs: number,
    afterEach: () => void,
    stop: () => boolean = () => false,
  ): Promise<void> {
    while (this.#queue.size > 0) {
      const next = this.#queue.peek()!;
      if (next.at > endMs) break;
      this.#queue.pop();
      if (next.cancelled) continue;
      if (next.at > this.#now) this.#eventsAtNow = 0;
      else if (++this.#eventsAtNow > livelockEventsMax) {
        throw new LivelockError(
          `Livelock: ${livelockEventsMax} events at virtual time ${this.#now} ms without time passing`,
        );
      }
      this.#now = next.at;
      this.events++;
      next.run();
      if (next.settles) await settle();
      afterEach();
      if (stop()) break;
    }
  }

  /**
   * A clock for one member incarnation: its timers and deferred calls run only while `alive()`
   * says so; `skewMs` offsets what it reads (a clock running ahead or behind).
   */
  clock(alive: () => boolean, skewMs = 0): Clock {
    return {
      nowMs: () => this.#now + skewMs,
      setTimer: (delayMs, callback) =>
        this.schedule(delayMs, () => {
          if (alive()) callback();
        }),
      defer: (callback) => {
        this.schedule(0, () => {
          if (alive()) callback();
        });
      },
    };
  }
}

/** Let every pending promise continuation run (a macrotask turn runs after all of them). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
