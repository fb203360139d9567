/**
 * A small seeded pseudo-random generator (mulberry32). The core takes its randomness only from an
 * injected `() => number`; this is the generator the simulator and tests inject, so one seed
 * replays one run exactly.
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // the same number every run
 * ```
 * @module
 */

/** A function returning numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** A deterministic generator of numbers in [0, 1) for a 32-bit `seed`. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max) drawn from `random`. */
export function randomInt(random: RandomSource, min: number, max: number): number {
  return min + Math.floor(random() * (max - min));
}
