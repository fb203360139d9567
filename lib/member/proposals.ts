/**
 * The proposals a member has handed to its core and not yet answered, keyed by log index. Each
 * ends exactly once: with the state machine's output for its own index, with a refusal that is
 * certain (another entry took its index: `ProposalDroppedError`, retryable), or with an unknown
 * outcome (`TimeoutError`, `OutcomeUnknownError`: not retryable).
 *
 * @module
 */
import { OutcomeUnknownError, ProposalDroppedError, TimeoutError } from '../base/errors.ts';

type Pending = {
  index: number;
  term: number;
  deadlineMs: number;
  resolve: (result: { index: number; output: unknown; duplicate?: boolean }) => void;
  reject: (error: unknown) => void;
};

/**
 * Pending proposals. Deadlines are checked in insertion order (every proposal gets the same
 * timeout, so the oldest expires first): sweeping costs only the expired ones.
 *
 * @example
 * ```ts
 * const proposals = new Proposals(10_000);
 * const answer = proposals.add(7, 2, nowMs);
 * proposals.settle(7, 2, { ok: true, output: 'done' });
 * ```
 */
export class Proposals {
  readonly #timeoutMs: number;
  readonly #byIndex = new Map<number, Pending>();
  /** Insertion order, for deadlines; entries already settled are skipped lazily. */
  #order: Pending[] = [];
  #orderHead = 0;
  /** Proposals that ended with their own index's result (an `ApplicationError` included). */
  committedCount = 0;
  /** Proposals that ended any other way: dropped, timed out, outcome unknown. */
  failedCount = 0;

  /** `timeoutMs`: the driver's `proposalTimeoutMs`. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#byIndex.size;
  }

  /**
   * Track the proposal appended at `index` in `term`. A proposal already waiting at that index
   * was truncated away by a newer leader and replaced by this member's new entry: it can never be
   * applied, so it ends now with `ProposalDroppedError` (retryable).
   */
  add(index: number, term: number, nowMs: number): Promise<{ index: number; output: unknown }> {
    this.drop(index, term, 'its entry was truncated and the index reused');
    return new Promise((resolve, reject) => {
      const p: Pending = { index, term, deadlineMs: nowMs + this.#timeoutMs, resolve, reject };
      this.#byIndex.set(index, p);
      this.#order.push(p);
    });
  }

  /**
   * The committed entry at `index` has `term`: a proposal there of another term was lost (that
   * index is another leader's entry for good) and ends with `ProposalDroppedError`. True when a
   * proposal of this very term waits there (its result will settle it).
   */
  checkCommitted(index: number, term: number): boolean {
    const p = this.#byIndex.get(index);
    if (p === undefined) return false;
    if (p.term === term) return true;
    this.drop(index, term, `another leader's entry (term ${term}) was committed there`);
    return false;
  }

  /** End the proposal at `index` with the state machine's result for that index. */
  settle(
    index: number,
    result: { ok: true; output: unknown; duplicate?: boolean } | { ok: false; error: unknown },
  ): void {
    const p = this.#byIndex.get(index);
    if (p === undefined) return;
    this.#byIndex.delete(index);
    this.committedCount += 1;
    if (result.ok) {
      p.resolve(
        result.duplicate === true
          ? { index, output: result.output, duplicate: true }
          : { index, output: result.output },
      );
    } else p.reject(result.error);
  }

  /** End a proposal at `index` of another term than `term` with `ProposalDroppedError`. */
  drop(index: number, term: number, why: string): void {
    const p = this.#byIndex.get(index);
    if (p === undefined || p.term === term) return;
    this.#byIndex.delete(index);
    this.failedCount += 1;
    p.reject(new ProposalDroppedError(`the entry at index ${index} was lost: ${why}`));
  }

  /** Proposals at or below `index` end with an unknown outcome (a snapshot replaced the log). */
  unknownUpTo(index: number, why: string): void {
    for (const [i, p] of this.#byIndex) {
      if (i > index) continue;
      this.#byIndex.delete(i);
      this.failedCount += 1;
      p.reject(new OutcomeUnknownError(i, why));
    }
  }

  /** Every proposal ends with an unknown outcome (the member stopped or failed). */
  unknownAll(why: string): void {
    this.failedCount += this.#byIndex.size;
    for (const [i, p] of this.#byIndex) p.reject(new OutcomeUnknownError(i, why));
    this.#byIndex.clear();
    this.#order = [];
    this.#orderHead = 0;
  }

  /** Reject with `TimeoutError` every proposal whose deadline is at or before `nowMs`. */
  sweep(nowMs: number): void {
    while (this.#orderHead < this.#order.length) {
      const p = this.#order[this.#orderHead]!;
      if (this.#byIndex.get(p.index) !== p) {
        this.#orderHead++;
        continue;
      }
      if (p.deadlineMs > nowMs) break;
      this.#orderHead++;
      this.#byIndex.delete(p.index);
      this.failedCount += 1;
      p.reject(
        new TimeoutError(`proposal at index ${p.index} not applied within ${this.#timeoutMs} ms`),
      );
    }
    if (this.#orderHead > 1024 && this.#orderHead * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead);
      this.#orderHead = 0;
    }
  }
}
