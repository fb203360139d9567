/**
 * A binary min-heap: the ordered queue behind scheduled timers (by due time, then registration)
 * and applied-index waiters (by index). Push and pop are O(log n).
 *
 * @module
 */

/**
 * A binary min-heap ordered by `less`.
 *
 * @example
 * ```ts
 * const heap = new MinHeap<number>((a, b) => a < b);
 * heap.push(3); heap.push(1);
 * heap.pop(); // 1
 * ```
 */
export class MinHeap<T> {
  readonly #less: (a: T, b: T) => boolean;
  #items: T[] = [];

  constructor(less: (a: T, b: T) => boolean) {
    this.#less = less;
  }

  /** How many items the heap holds. */
  get size(): number {
    return this.#items.length;
  }

  /** The smallest item, or `undefined` when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Add an item. */
  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let child = items.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.#less(items[child]!, items[parent]!)) break;
      [items[child], items[parent]] = [items[parent]!, items[child]!];
      child = parent;
    }
  }

  /** Remove and return the smallest item, or `undefined` when empty. */
  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  /** Keep only the items `keep` accepts (O(n), then re-heapify). */
  filter(keep: (item: T) => boolean): void {
    this.#items = this.#items.filter(keep);
    for (let i = (this.#items.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  /** Remove every item and return them, in no particular order. */
  drain(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  #siftDown(start: number): void {
    const items = this.#items;
    let parent = start;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < items.length && this.#less(items[left]!, items[smallest]!)) smallest = left;
      if (right < items.length && this.#less(items[right]!, items[smallest]!)) smallest = right;
      if (smallest === parent) return;
      [items[parent], items[smallest]] = [items[smallest]!, items[parent]!];
      parent = smallest;
    }
  }
}
