/**
 * `MemoryStorage`: the `Storage` interface with no I/O, for the core's unit tests and the
 * deterministic simulator. A write applies at once and its promise is already resolved, so what
 * the object holds is exactly what was "durably" written: a simulated crash keeps the object and
 * drops everything else. Batches are checked like the LMDB storage's (`planBatch`), and entries
 * are copied in, so a caller's later mutation cannot change the stored log; reads return the stored
 * entries themselves (readers must not mutate them, as the `LogReader` contract says).
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storage.write({ entries: [{ type: 'noop', index: 1, term: 1, timeMs: 0 }] });
 * storage.term(1); // 1
 * ```
 * @module
 */
import { assert, CompactedError } from '../base/errors.ts';
import {
  type Configuration,
  type Entry,
  entryBytes,
  type HardState,
  type SnapshotMeta,
} from '../base/messages.ts';
import type { Storage, WriteBatch } from './storage.ts';
import { configurationAt, configurationOf, planBatch } from './batch.ts';
import { MemorySnapshotStore } from './memory-snapshots.ts';

function copyEntry(entry: Entry): Entry {
  if (entry.type === 'command') return { ...entry, data: entry.data.slice() };
  if (entry.type === 'config') return { ...entry, members: entry.members.map((m) => ({ ...m })) };
  return { ...entry };
}

/** In-memory storage; see the module comment. */
export class MemoryStorage implements Storage {
  /** The snapshot data, committed with the snapshot metadata by `write`. */
  readonly snapshots: MemorySnapshotStore;
  /** Entries `[compactIndex + 1, compactIndex + entries.length]`. */
  #entries: Entry[] = [];
  #compactIndex = 0;
  #compactTerm = 0;
  #hardState: HardState = { term: 0, vote: null, commitIndex: 0 };
  #snapshot: SnapshotMeta | null = null;
  /** The configuration in effect at the compaction point. */
  #baseConfig: Configuration | null = null;
  /** Configurations set by stored entries, oldest first. */
  #configs: Configuration[] = [];
  #logBytes = 0;

  /** `snapshotChunkBytes`: the size snapshot data is cut into, in bytes. */
  constructor(options: { snapshotChunkBytes?: number } = {}) {
    this.snapshots = new MemorySnapshotStore(options.snapshotChunkBytes);
  }

  /** As after a crash and reopen of a real store: snapshot stages never committed are dropped. */
  reopen(): void {
    this.snapshots.reopen();
  }

  firstIndex(): number {
    return this.#compactIndex + 1;
  }

  lastIndex(): number {
    return this.#compactIndex + this.#entries.length;
  }

  term(index: number): number | undefined {
    if (index === this.#compactIndex) return this.#compactTerm;
    return this.#entries[index - this.#compactIndex - 1]?.term;
  }

  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    if (fromIndex < this.firstIndex()) throw new CompactedError(fromIndex, this.firstIndex());
    const end = Math.min(toIndex, this.lastIndex() + 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = fromIndex; index < end; index++) {
      const entry = this.#entries[index - this.#compactIndex - 1]!;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry); // shared, not copied: readers must not mutate entries (LogReader contract)
    }
    return out;
  }

  hardState(): HardState {
    return { ...this.#hardState };
  }

  configurations(): Configuration[] {
    const all = this.#baseConfig === null ? this.#configs : [this.#baseConfig, ...this.#configs];
    return all.map((c) => ({ ...c, members: c.members.map((m) => ({ ...m })) }));
  }

  snapshotMeta(): SnapshotMeta | null {
    return this.#snapshot === null
      ? null
      : { ...this.#snapshot, members: this.#snapshot.members.map((m) => ({ ...m })) };
  }

  logBytes(): number {
    return this.#logBytes;
  }

  write(batch: WriteBatch): Promise<void> {
    try {
      this.#apply(batch);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #apply(batch: WriteBatch): void {
    const plan = planBatch(this, batch);
    const snapshot = batch.snapshot;
    if (batch.snapshotData !== undefined) {
      this.snapshots.commit(batch.snapshotData, snapshot!.index, snapshot!.term);
    }
    if (snapshot !== undefined) {
      this.#snapshot = { ...snapshot, members: snapshot.members.map((m) => ({ ...m })) };
      if (plan.discardLog) {
        this.#entries = [];
        this.#configs = [];
        this.#logBytes = 0;
        this.#compactIndex = snapshot.index;
        this.#compactTerm = snapshot.term;
        this.#baseConfig = {
          index: snapshot.index,
          term: snapshot.term,
          members: this.#snapshot.members,
        };
      }
    }
    const entries = batch.entries ?? [];
    if (plan.truncateFromIndex !== null) {
      const keep = plan.truncateFromIndex - this.#compactIndex - 1;
      for (const dropped of this.#entries.splice(keep)) this.#logBytes -= entryBytes(dropped);
      this.#configs = this.#configs.filter((c) => c.index < plan.truncateFromIndex!);
    }
    for (const entry of entries) {
      const copy = copyEntry(entry);
      this.#entries.push(copy);
      this.#logBytes += entryBytes(copy);
      const config = configurationOf(copy);
      if (config !== null) this.#configs.push(config);
    }
    assert(
      this.lastIndex() === plan.lastIndex,
      `MemoryStorage: last index ${this.lastIndex()}, planned ${plan.lastIndex}`,
    );
    if (batch.hardState !== undefined) this.#hardState = { ...batch.hardState };
  }

  compact(index: number): Promise<void> {
    try {
      this.#compact(index);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #compact(index: number): void {
    if (index <= this.#compactIndex) return;
    assert(
      index <= this.lastIndex(),
      `Compaction to index ${index} past the last index ${this.lastIndex()}`,
    );
    assert(
      this.#snapshot !== null && index <= this.#snapshot.index,
      `Compaction to index ${index} past the snapshot index ${this.#snapshot?.index ?? 0}`,
    );
    const term = this.term(index)!;
    for (const dropped of this.#entries.splice(0, index - this.#compactIndex)) {
      this.#logBytes -= entryBytes(dropped);
    }
    this.#baseConfig = configurationAt(this.#baseConfig, this.#configs, index);
    this.#configs = this.#configs.filter((c) => c.index > index);
    this.#compactIndex = index;
    this.#compactTerm = term;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
