/**
 * The terms of the newest stretch of the log, kept in memory as runs (the first index of each
 * term), so that `term(index)` answers from memory for the entries the core asks about on every
 * AppendEntries. Terms change rarely, so a few runs cover millions of entries; the list is bounded
 * by `runsMax`, dropping the oldest runs, and indexes below what it covers go to the disk.
 *
 * Invariant: `starts` is strictly increasing, `starts[0] === coverStart`, and the runs cover
 * `[coverStart, lastIndex]` exactly (empty when `coverStart > lastIndex`).
 *
 * @example
 * ```ts
 * const runs = new TermRuns(64);
 * runs.append(1, 1); runs.append(2, 1); runs.append(3, 2);
 * runs.term(2); // 1
 * runs.term(3); // 2
 * ```
 * @module
 */
import { assert } from '../base/errors.ts';

/** Default bound on the number of term runs kept in memory. */
export const termRunsMaxDefault = 1024;

export class TermRuns {
  readonly #runsMax: number;
  #starts: number[] = [];
  #terms: number[] = [];
  #lastIndex = 0;

  constructor(runsMax: number) {
    assert(
      Number.isSafeInteger(runsMax) && runsMax >= 1,
      `TermRuns: runsMax must be >= 1, got ${runsMax}`,
    );
    this.#runsMax = runsMax;
  }

  /** The first index covered, or `undefined` when nothing is. */
  coverStart(): number | undefined {
    return this.#starts[0];
  }

  /** The term of `index` if covered, else `undefined`. */
  term(index: number): number | undefined {
    const starts = this.#starts;
    const count = starts.length;
    if (count === 0 || index > this.#lastIndex || index < starts[0]!) return undefined;
    // The newest run answers almost every call; search the rest.
    if (index >= starts[count - 1]!) return this.#terms[count - 1];
    let low = 0;
    let high = count - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (starts[middle]! <= index) low = middle;
      else high = middle - 1;
    }
    return this.#terms[low];
  }

  /** Record the entry at `index` (the next one after the covered range, or the first). */
  append(index: number, term: number): void {
    const count = this.#starts.length;
    assert(
      count === 0 || index === this.#lastIndex + 1,
      `TermRuns: append at ${index} after ${this.#lastIndex}`,
    );
    this.#lastIndex = index;
    if (count > 0 && this.#terms[count - 1] === term) return;
    this.#starts.push(index);
    this.#terms.push(term);
    if (this.#starts.length > this.#runsMax) {
      this.#starts.shift();
      this.#terms.shift();
    }
  }

  /** Forget every index at or after `index` (a truncated suffix). */
  truncateFrom(index: number): void {
    if (this.#starts.length === 0 || index > this.#lastIndex) return;
    while (this.#starts.length > 0 && this.#starts[this.#starts.length - 1]! >= index) {
      this.#starts.pop();
      this.#terms.pop();
    }
    this.#lastIndex = index - 1;
  }

  /** Forget every index at or before `index` (a compacted prefix). */
  compactTo(index: number): void {
    const starts = this.#starts;
    if (starts.length === 0 || index < starts[0]!) return;
    if (index >= this.#lastIndex) return this.clear();
    while (starts.length > 1 && starts[1]! <= index + 1) {
      starts.shift();
      this.#terms.shift();
    }
    starts[0] = index + 1;
  }

  /** Forget everything. */
  clear(): void {
    this.#starts = [];
    this.#terms = [];
    this.#lastIndex = 0;
  }
}
