/**
 * A `Storage` that passes every call to `inner` except those given in `over`: for tests that
 * watch or fail some of a member's storage calls.
 *
 * @example
 * ```ts
 * const storage = wrappedStorage(memory, { compact: (i) => (seen.push(i), memory.compact(i)) });
 * ```
 * @module
 */
import type { Storage } from '../../lib/storage/storage.ts';

export function wrappedStorage(inner: Storage, over: Partial<Storage>): Storage {
  return {
    snapshots: inner.snapshots,
    firstIndex: () => inner.firstIndex(),
    lastIndex: () => inner.lastIndex(),
    term: (i) => inner.term(i),
    entries: (from, to, max) => inner.entries(from, to, max),
    hardState: () => inner.hardState(),
    configurations: () => inner.configurations(),
    snapshotMeta: () => inner.snapshotMeta(),
    logBytes: () => inner.logBytes(),
    write: (batch) => inner.write(batch),
    compact: (index) => inner.compact(index),
    close: () => inner.close(),
    ...over,
  };
}
