/**
 * The search's memory of where it has been: every (set of linearized operations, model state)
 * reached, so that reaching one again by another order is recognised as a dead end (Lowe's
 * memoisation). States are interned to small integers; each entry is then one bitset and one
 * state number, stored flat in typed arrays (a few dozen bytes an entry, no object per entry,
 * so millions of entries cost little memory and no garbage collection).
 *
 * Everything is counted against a {@link MemoryBudget} shared by the searches of one check;
 * when it runs out the search gives up with verdict `unknown` rather than exhaust the process.
 *
 * @example
 * ```ts
 * const budget = { bytesMax: 64 << 20, bytesUsed: 0 };
 * const states = new StateIds(undefined, budget);
 * const visited = new VisitedSet(3, budget);
 * visited.add(new Uint32Array([0b101]), 12345, states.id(7)); // true: new
 * visited.add(new Uint32Array([0b101]), 12345, states.id(7)); // false: seen
 * ```
 * @module
 */

/** Bytes that the searches of one check may use for their memory, shared between them. */
export type MemoryBudget = { bytesMax: number; bytesUsed: number };

/** Result of an insertion that would exceed the memory budget. */
export const memoryFull = 'memory full' as const;

/** Estimated bytes of one interned state beyond its key's characters (map entry, headers). */
const stateOverheadBytes = 64;
/**
 * Most distinct states interned by one search: below V8's Map limit (2^24 entries), which would
 * otherwise throw.
 */
const statesMax = 8_000_000;

/**
 * Interns model states as small integers, by the model's key, or by the state itself when it is
 * a primitive (no text to build), or by its JSON.
 *
 * @example
 * ```ts
 * const ids = new StateIds(undefined, { bytesMax: 1 << 20, bytesUsed: 0 });
 * ids.id('a') === ids.id('a'); // true
 * ```
 */
export class StateIds<State> {
  readonly #key: ((state: State) => string) | undefined;
  readonly #budget: MemoryBudget;
  /** Primitive states by value; a separate map from keys, so no text key collides with one. */
  readonly #primitives = new Map<unknown, number>();
  readonly #keyed = new Map<string, number>();
  #bytes = 0;

  constructor(key: ((state: State) => string) | undefined, budget: MemoryBudget) {
    this.#key = key;
    this.#budget = budget;
  }

  /** The state's number, or {@link memoryFull} when a new one does not fit. */
  id(state: State): number | typeof memoryFull {
    const byValue = this.#key === undefined &&
      (state === null || (typeof state !== 'object' && typeof state !== 'function'));
    const map: Map<unknown, number> = byValue ? this.#primitives : this.#keyed;
    const key: unknown = byValue ? state : this.#key?.(state) ?? JSON.stringify(state);
    const known = map.get(key);
    if (known !== undefined) return known;
    const bytes = stateOverheadBytes + (typeof key === 'string' ? key.length : 8);
    const count = this.#primitives.size + this.#keyed.size;
    if (this.#budget.bytesUsed + bytes > this.#budget.bytesMax || count >= statesMax) {
      return memoryFull;
    }
    this.#budget.bytesUsed += bytes;
    this.#bytes += bytes;
    map.set(key, count);
    return count;
  }

  /** Give the memory back to the budget (the search is over). */
  release(): void {
    this.#budget.bytesUsed -= this.#bytes;
    this.#bytes = 0;
    this.#primitives.clear();
    this.#keyed.clear();
  }
}

/** Entries a new set has room for before it first grows. */
const initialCapacity = 1024;

/**
 * A set of (bitset, state number) pairs: open addressing with linear probing over a table of
 * entry numbers, at most half full; entries stored flat.
 *
 * @example
 * ```ts
 * const set = new VisitedSet(1, { bytesMax: 1 << 20, bytesUsed: 0 });
 * set.add(new Uint32Array([1]), 99, 0); // true
 * ```
 */
export class VisitedSet {
  readonly #wordCount: number;
  readonly #budget: MemoryBudget;
  #bits: Uint32Array;
  #stateIds: Int32Array;
  #hashes: Int32Array;
  /** Entry number + 1 per slot; 0 is an empty slot. Its length is a power of two. */
  #table: Int32Array;
  #size = 0;
  #bytes = 0;

  constructor(wordCount: number, budget: MemoryBudget) {
    this.#wordCount = Math.max(1, wordCount);
    this.#budget = budget;
    this.#bits = new Uint32Array(0);
    this.#stateIds = new Int32Array(0);
    this.#hashes = new Int32Array(0);
    this.#table = new Int32Array(0);
  }

  /** Entries stored. */
  get size(): number {
    return this.#size;
  }

  /**
   * Add the pair; `true` if it is new, `false` if it was there, {@link memoryFull} if it is new
   * and there is no room for it. `setHash` is a hash of `bits` (the caller keeps it up to date).
   */
  add(bits: Uint32Array, setHash: number, stateId: number): boolean | typeof memoryFull {
    const hash = mix(setHash ^ Math.imul(stateId + 1, 0x9e3779b1));
    if (this.#table.length > 0) {
      const mask = this.#table.length - 1;
      for (let slot = hash & mask;; slot = (slot + 1) & mask) {
        const entry = this.#table[slot]! - 1;
        if (entry < 0) break;
        if (this.#hashes[entry] === hash && this.#same(entry, bits, stateId)) return false;
      }
    }
    if (this.#size === this.#stateIds.length && !this.#grow()) return memoryFull;
    const entry = this.#size++;
    this.#bits.set(bits, entry * this.#wordCount);
    this.#stateIds[entry] = stateId;
    this.#hashes[entry] = hash;
    this.#place(entry, hash);
    return true;
  }

  /** Give the memory back to the budget (the search is over). */
  release(): void {
    this.#budget.bytesUsed -= this.#bytes;
    this.#bytes = 0;
    this.#bits = new Uint32Array(0);
    this.#stateIds = new Int32Array(0);
    this.#hashes = new Int32Array(0);
    this.#table = new Int32Array(0);
    this.#size = 0;
  }

  #same(entry: number, bits: Uint32Array, stateId: number): boolean {
    if (this.#stateIds[entry] !== stateId) return false;
    const base = entry * this.#wordCount;
    for (let i = 0; i < this.#wordCount; i++) {
      if (this.#bits[base + i] !== bits[i]) return false;
    }
    return true;
  }

  #place(entry: number, hash: number): void {
    const mask = this.#table.length - 1;
    let slot = hash & mask;
    while (this.#table[slot] !== 0) slot = (slot + 1) & mask;
    this.#table[slot] = entry + 1;
  }

  /** Double the capacity (entries and table), if the budget allows it. */
  #grow(): boolean {
    const capacity = Math.max(initialCapacity, this.#stateIds.length * 2);
    // Per entry: its words and two Int32s; the table has two slots per entry.
    const bytes = capacity * (this.#wordCount * 4 + 8 + 8);
    const delta = bytes - this.#bytes;
    if (this.#budget.bytesUsed + delta > this.#budget.bytesMax) return false;
    this.#budget.bytesUsed += delta;
    this.#bytes = bytes;
    const bits = new Uint32Array(capacity * this.#wordCount);
    bits.set(this.#bits);
    const stateIds = new Int32Array(capacity);
    stateIds.set(this.#stateIds);
    const hashes = new Int32Array(capacity);
    hashes.set(this.#hashes);
    this.#bits = bits;
    this.#stateIds = stateIds;
    this.#hashes = hashes;
    this.#table = new Int32Array(capacity * 2);
    for (let entry = 0; entry < this.#size; entry++) this.#place(entry, hashes[entry]!);
    return true;
  }
}

/** A 32-bit finaliser (murmur3's), so that nearby inputs spread over the table. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
