/**
 * A small deterministic generator for tests (mulberry32): `generator(seed)` returns a function
 * giving an integer in `[0, n)` per call, the same sequence for the same seed, so that a failing
 * seed can be replayed.
 */
export function generator(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}
