/**
 * The uncommitted-size quota of a leader (etcd-io/raft `MaxUncommittedEntriesSize`): proposals are
 * refused once the bytes appended in this term and not yet committed pass a limit, so a leader
 * that cannot commit (cut off from its followers) does not grow its log and memory without bound.
 *
 * @module
 */
import { ProposalDroppedError } from '../base/errors.ts';

/**
 * Bytes proposed and not yet committed, released as the commit index passes them.
 *
 * Invariant: `bytes` is the sum of the runs still held, and runs are ordered by `lastIndex`.
 *
 * @example
 * ```ts
 * const quota = new UncommittedQuota(1 << 20);
 * quota.admit(100); // throws ProposalDroppedError when over the limit
 * quota.add(7, 100);
 * quota.release(7); // quota.bytes === 0
 * ```
 */
export class UncommittedQuota {
  readonly #bytesMax: number;
  #runs: Array<{ lastIndex: number; bytes: number }> = [];
  #bytes = 0;

  /** `bytesMax`: the core's `uncommittedBytesMax`. */
  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Throw `ProposalDroppedError` (retryable: nothing was appended) when `bytes` more would pass
   * the limit. An empty quota always admits, so one oversized proposal is not refused forever.
   */
  admit(bytes: number): void {
    if (this.#bytes > 0 && this.#bytes + bytes > this.#bytesMax) {
      throw new ProposalDroppedError(
        `${this.#bytes} bytes uncommitted, limit uncommittedBytesMax ${this.#bytesMax}`,
      );
    }
  }

  /** Entries up to `lastIndex` worth `bytes` were appended. */
  add(lastIndex: number, bytes: number): void {
    this.#runs.push({ lastIndex, bytes });
    this.#bytes += bytes;
  }

  /** The commit index reached `index`: release what it covers. */
  release(index: number): void {
    while (this.#runs.length > 0 && this.#runs[0]!.lastIndex <= index) {
      this.#bytes -= this.#runs.shift()!.bytes;
    }
  }

  /** Leadership ended: nothing is held any more. */
  reset(): void {
    this.#runs = [];
    this.#bytes = 0;
  }
}
