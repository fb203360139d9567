/**
 * The in-flight window of one peer: AppendEntries messages sent but not yet acknowledged,
 * bounded by count and by bytes (etcd-io/raft `tracker/inflights.go` is the model).
 *
 * @module
 */
import { assert } from '../base/errors.ts';

/**
 * A FIFO of (last index, bytes) for messages in flight to one peer.
 * Invariant: `count <= countMax`, and the last indexes are increasing.
 *
 * @example
 * ```ts
 * const w = new Inflights(256, 1 << 20);
 * w.add(10, 4096);
 * w.freeTo(10); // acknowledged up to index 10
 * ```
 */
export class Inflights {
  readonly countMax: number;
  readonly bytesMax: number;
  #indexes: number[] = [];
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;

  constructor(countMax: number, bytesMax: number) {
    this.countMax = countMax;
    this.bytesMax = bytesMax;
  }

  /** Messages in flight. */
  get count(): number {
    return this.#indexes.length - this.#head;
  }

  /** Bytes of entries in flight. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True when no further message may be sent. */
  full(): boolean {
    return this.count >= this.countMax || this.#bytes >= this.bytesMax;
  }

  /** Record a message whose last entry has `lastIndex`, carrying `bytes` of entries. */
  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'Inflights.add on a full window');
    const count = this.count;
    assert(
      count === 0 || this.#indexes[this.#indexes.length - 1]! < lastIndex,
      'Inflights indexes must increase',
    );
    this.#indexes.push(lastIndex);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
  }

  /** Free every message whose last index is at most `index`. */
  freeTo(index: number): void {
    while (this.#head < this.#indexes.length && this.#indexes[this.#head]! <= index) {
      this.#bytes -= this.#sizes[this.#head]!;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#indexes.length) {
      this.#indexes = this.#indexes.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Free the oldest message. Used when a heartbeat answer shows the member alive while the window
   * is full: its answers may have been lost, and one more message lets it say where it stands.
   */
  freeFirst(): void {
    if (this.count === 0) return;
    this.freeTo(this.#indexes[this.#head]!);
  }

  /** Forget everything in flight (the peer fell back to probing). */
  reset(): void {
    this.#indexes = [];
    this.#sizes = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
