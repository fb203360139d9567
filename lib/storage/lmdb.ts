/**
 * `LmdbStorage`: the durable `Storage`, one LMDB environment per member with named databases:
 * `entries` (runs of consecutive entries, each run one value under the index of its first entry:
 * see "The log's layout" below), `meta`
 * (hard state, compaction point, snapshot metadata, the configuration at the compaction point,
 * the log's byte count), `configs` (configuration entries by index) and `snapshots` (the snapshot
 * store's chunks); with a state machine on disk also `machine.data.0/1` and `machine.meta.0/1`
 * (`lmdb-machine-store.ts`). Values are binary CBOR written by `codec.ts`.
 *
 * Durability: every `write` and `compact` is one LMDB transaction (`root.transaction(callback)`:
 * all its puts and removes commit together or not at all), and its promise resolves only after
 * `root.flushed`, i.e. once that commit is synced to disk. lmdb's settings are spelled out in
 * `lmdbSettings` below. A failed write leaves the storage failed for good: every later write
 * rejects with the same `StorageError`, so the member stops acknowledging instead of pretending.
 *
 * The log's layout: the entries of one write are stored together, in runs of at most
 * `logRunEntriesMax` entries and `logRunBytesMax` bytes (a bigger entry is a run of its own), each
 * run one LMDB value: the entries' encodings one after another (`encodeRun`), under the index of
 * its first entry as an ordered-binary number, exact to 2^53 (never the 'uint32' key encoding,
 * which wraps at 2^32 and would overwrite entry 5 with entry 2^32 + 5). One put per run instead of
 * one per entry is what lets a batch of 1,024 small entries go faster than 1,024 raw puts. The run
 * holding an index is the one under the greatest key at or below it (one reverse range lookup);
 * a truncation rewrites the run it cuts to its prefix and removes the runs after, a compaction
 * removes the runs it covers and rewrites the one it cuts to its suffix, under the new first index,
 * each in the same transaction as the rest of the write. A run of one entry is byte for byte an
 * entry as stored one per key before runs (2026-12-04), so logs written then read the same.
 *
 * @example
 * ```ts
 * const storage = await LmdbStorage.open({ path: '/var/lib/edgeraft/node-a' });
 * await storage.write({ entries: [{ type: 'noop', index: 1, term: 1, timeMs: Date.now() }] });
 * storage.lastIndex(); // 1, on disk
 * await storage.close();
 * ```
 * @module
 */
import { mkdirSync } from 'node:fs';
import { type Database, open, type RootDatabase } from 'lmdb';
import * as v from 'valibot';
import { assert, CompactedError, ShutdownError, StorageError } from '../base/errors.ts';
import {
  type Configuration,
  type Entry,
  entryBytes,
  type HardState,
  HardStateSchema,
  MembersSchema,
  NaturalSchema,
  type SnapshotMeta,
  SnapshotMetaSchema,
} from '../base/messages.ts';
import type { SnapshotInfo, Storage, WriteBatch } from './storage.ts';
import { configurationAt, configurationOf, planBatch } from './batch.ts';
import { decodeRecord, decodeRun, encodeRecord, encodeRun } from './codec.ts';
import { intInRange, type IntOption, parseOptions } from '../base/validate.ts';
import { LmdbSnapshotStore, snapshotChunkBytesMaxDefault } from './snapshot-store.ts';
import { TermRuns, termRunsMaxDefault } from './term-runs.ts';
import { commitDurably, observeLmdbCommitFailures } from './commit.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';
import { LmdbMachineStore } from './lmdb-machine-store.ts';

/** Default LMDB map size: address space only, the file grows as needed (lmdb also grows the map). */
export const mapSizeBytesDefault = 16 * 1024 ** 3;

/**
 * Default `syncCommitBytesMax`: 256 KiB. A synchronous commit of that much blocks the event loop
 * for about as long as its sync (a few ms on a slow disk); measured on a 2-core VM, one small
 * write took p50 0.65 ms synchronously against 1.0-1.5 ms through the write thread.
 */
export const syncCommitBytesMaxDefault = 256 * 1024;

/** Most entries stored in one LMDB value (one run: see the module comment). */
export const logRunEntriesMax = 1024;
/**
 * Most bytes of entries (by `entryBytes`) stored in one LMDB value, unless one entry alone is
 * bigger: reading one entry decodes the run up to it, so runs stay well below a message.
 */
export const logRunBytesMax = 64 * 1024;

/** Most entries a synchronous commit removes (a longer truncation goes to the write thread). */
const syncCommitRemovalsMax = 1024;
/** A synchronous commit slower than this, in ms, is a slow disk's: see `syncCommitAvoidMs`. */
export const syncCommitSlowMs = 20;
/** How long writes avoid the synchronous path after a slow synchronous commit, in ms. */
export const syncCommitAvoidMs = 10_000;

/** Options of `LmdbStorage.open`, validated once. */
type LmdbStorageOptionsEntries = {
  /** Folder of the LMDB environment (created if missing). */
  path: v.SchemaWithPipe<
    readonly [v.StringSchema<undefined>, v.MinLengthAction<string, 1, undefined>]
  >;
  /** Initial LMDB map size in bytes: at least 1 MiB, at most 2^46. */
  mapSizeBytes: IntOption;
  /** Most term runs kept in memory for `term(index)` (see `TermRuns`). */
  termRunsMax: IntOption;
  /** Largest chunk the snapshot store keeps, in bytes (snapshots are re-chunked to this size). */
  snapshotChunkBytesMax: IntOption;
  /**
   * Largest log write, in encoded bytes of its entries, committed synchronously on the calling
   * thread (`transactionSync`); larger ones go through lmdb's write thread. 0: never.
   */
  syncCommitBytesMax: IntOption;
};

export const LmdbStorageOptionsSchema: v.StrictObjectSchema<LmdbStorageOptionsEntries, undefined> =
  v.strictObject({
    path: v.pipe(v.string(), v.minLength(1)),
    mapSizeBytes: v.optional(
      intInRange(1024 ** 2, 2 ** 46),
      mapSizeBytesDefault,
    ),
    termRunsMax: v.optional(
      intInRange(1, 1_000_000),
      termRunsMaxDefault,
    ),
    snapshotChunkBytesMax: v.optional(
      intInRange(1, 64 * 1024 ** 2),
      snapshotChunkBytesMaxDefault,
    ),
    syncCommitBytesMax: v.optional(
      intInRange(0, 64 * 1024 ** 2),
      syncCommitBytesMaxDefault,
    ),
  });
export type LmdbStorageOptions = v.InferInput<typeof LmdbStorageOptionsSchema>;

/**
 * lmdb settings that durability depends on, written out rather than left to defaults:
 * - `noSync: false`: commits are synced to disk; `noMetaSync: false`: so is the meta page.
 * - `overlappingSync: true`: lmdb's default on Linux, kept on purpose. A commit is visible before
 *   its sync finishes, so a `put`/`transaction` promise may resolve before the data is durable:
 *   every write here therefore also awaits `root.flushed`, which resolves after the sync. The sync
 *   then overlaps the next batch's commit instead of holding the write lock, which is what lets
 *   pipelined appends reach LMDB's throughput. After a process crash lmdb reopens at the last
 *   commit (the OS still has its pages); after an OS crash, at the last synced one, which covers
 *   every acknowledged write.
 * - `eventTurnBatching: true`, `commitDelay: 0`: writes queued in one turn share one commit, started
 *   on the next turn; each `write` is in any case one `transaction` callback.
 * - Small log writes (at most `syncCommitBytesMax` of entries) are committed with `transactionSync`
 *   on the calling thread instead: lmdb commits those synchronously (the data file's
 *   `fdatasync`, then the meta page through its `O_DSYNC` descriptor, both before it returns:
 *   checked with strace), which saves the two thread hops of the write thread; the write still
 *   waits for `root.flushed` in case it joined a batch of the write thread. The loop waits
 *   meanwhile: the driver hands queued messages (a leader's appends) to the sockets first. A
 *   synchronous commit slower than `syncCommitSlowMs` (a stalling disk) sends the writes of the
 *   next `syncCommitAvoidMs` through the write thread, so that a member with a slow disk goes on
 *   heartbeating and answering (its followers commit without it) instead of blocking on each sync.
 * - `cache: false`, `compression: false`, `useWritemap: false`: plain LMDB, no extra copy of
 *   values in memory, no write map (a stray pointer cannot scribble on the database).
 */
export const lmdbSettings = {
  encoding: 'binary',
  keyEncoding: 'ordered-binary',
  noSync: false,
  noMetaSync: false,
  overlappingSync: true,
  eventTurnBatching: true,
  commitDelay: 0,
  cache: false,
  compression: false,
  useWritemap: false,
  maxDbs: 16,
} as const;

const CompactionSchema = v.strictObject({ index: NaturalSchema, term: NaturalSchema });
const ConfigurationSchema = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  members: MembersSchema,
});
const metaKeys = {
  hardState: 'hardState',
  compaction: 'compaction',
  snapshot: 'snapshot',
  baseConfig: 'baseConfig',
  logBytes: 'logBytes',
} as const;

/** The durable LMDB storage; see the module comment. */
export class LmdbStorage implements Storage {
  /** The snapshot data of this member, in the same environment. */
  readonly snapshots: LmdbSnapshotStore;
  readonly #root: RootDatabase;
  readonly #entries: Database<Uint8Array, number>;
  readonly #meta: Database<Uint8Array, string>;
  readonly #configs: Database<Uint8Array, number>;
  readonly #terms: TermRuns;
  #compactIndex = 0;
  #compactTerm = 0;
  #lastIndex = 0;
  #hardState: HardState = { term: 0, vote: null, commitIndex: 0 };
  #snapshot: SnapshotMeta | null = null;
  #baseConfig: Configuration | null = null;
  #configList: Configuration[] = [];
  #logBytes = 0;
  #failure: StorageError | null = null;
  #closed = false;
  /** This process's hold on the data directory, released once LMDB is closed. */
  #lock: DirLock | null = null;
  #machineStore: LmdbMachineStore | null = null;

  readonly #syncCommitBytesMax: number;
  /** Until when (performance.now() ms) writes avoid the synchronous path after a slow one. */
  #syncAvoidUntilMs = 0;

  private constructor(
    root: RootDatabase,
    termRunsMax: number,
    snapshotChunkBytesMax: number,
    syncCommitBytesMax: number,
  ) {
    this.#root = root;
    this.#syncCommitBytesMax = syncCommitBytesMax;
    this.#entries = root.openDB<Uint8Array, number>({ name: 'entries', ...lmdbSettings });
    this.#meta = root.openDB<Uint8Array, string>({ name: 'meta', ...lmdbSettings });
    this.#configs = root.openDB<Uint8Array, number>({ name: 'configs', ...lmdbSettings });
    this.#terms = new TermRuns(termRunsMax);
    this.snapshots = new LmdbSnapshotStore(root, snapshotChunkBytesMax);
  }

  /**
   * Open (or create) the storage at `options.path` and recover its state. Throws `TypeError` or
   * `RangeError` naming a bad option, `StorageError` when the stored data is damaged,
   * `DataDirectoryInUseError` while another opener (here or in another process) holds the folder.
   */
  static async open(options: LmdbStorageOptions): Promise<LmdbStorage> {
    const o = parseOptions(LmdbStorageOptionsSchema, options, 'LmdbStorage.open');
    observeLmdbCommitFailures();
    // One process per data directory, taken before LMDB opens it: a second opener must not even
    // read the log (see dir-lock.ts). The lock file lives in the folder, so make it first.
    try {
      mkdirSync(o.path, { recursive: true });
    } catch (error) {
      throw new StorageError(`Cannot open LMDB at ${o.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const lock = acquireDirLock(o.path);
    let root: RootDatabase;
    try {
      // noSubdir: false: the path is a folder even when its name has a dot (lmdb would take
      // `node.a` for a file name, and the folder just made would not open).
      root = open({ path: o.path, mapSize: o.mapSizeBytes, ...lmdbSettings, noSubdir: false });
    } catch (error) {
      lock.release();
      throw new StorageError(`Cannot open LMDB at ${o.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const storage = new LmdbStorage(
      root,
      o.termRunsMax,
      o.snapshotChunkBytesMax,
      o.syncCommitBytesMax,
    );
    storage.#lock = lock;
    try {
      storage.#recover();
      await storage.snapshots.recover();
    } catch (error) {
      await root.close();
      lock.release();
      throw error;
    }
    return storage;
  }

  #readMeta<S extends v.GenericSchema>(key: string, schema: S): v.InferOutput<S> | undefined {
    const bytes = this.#meta.getBinary(key);
    return bytes === undefined ? undefined : decodeRecord(bytes, schema, `${key} record`);
  }

  /** Load the cached state from disk and check the log's ends. */
  #recover(): void {
    const compaction = this.#readMeta(metaKeys.compaction, CompactionSchema);
    this.#compactIndex = compaction?.index ?? 0;
    this.#compactTerm = compaction?.term ?? 0;
    this.#hardState = this.#readMeta(metaKeys.hardState, HardStateSchema) ?? this.#hardState;
    this.#snapshot = this.#readMeta(metaKeys.snapshot, SnapshotMetaSchema) ?? null;
    this.#baseConfig = this.#readMeta(metaKeys.baseConfig, v.nullable(ConfigurationSchema)) ?? null;
    this.#logBytes = this.#readMeta(metaKeys.logBytes, NaturalSchema) ?? 0;
    for (const { key, value } of this.#configs.getRange({})) {
      const config = decodeRecord(value, ConfigurationSchema, `configuration at index ${key}`);
      if (config.index !== key) {
        throw new StorageError(
          `Corrupted configuration at index ${key}: it holds index ${config.index}`,
        );
      }
      this.#configList.push(config);
    }
    let firstKey: number | undefined;
    for (const key of this.#entries.getKeys({ limit: 1 })) firstKey = key;
    let lastKey: number | undefined;
    for (const key of this.#entries.getKeys({ reverse: true, limit: 1 })) lastKey = key;
    if (firstKey === undefined || lastKey === undefined) {
      this.#lastIndex = this.#compactIndex;
      return;
    }
    if (firstKey !== this.#compactIndex + 1) {
      throw new StorageError(
        `Missing entry at index ${this.#compactIndex + 1}: the log starts at ${firstKey}`,
      );
    }
    const lastRun = this.#readRun(lastKey);
    const last = lastRun[lastRun.length - 1]!;
    this.#lastIndex = last.index;
    this.#terms.append(last.index, last.term);
  }

  /** The key of the run that holds `index` if it is stored: the greatest key at or below it. */
  #runKeyAt(index: number): number | undefined {
    for (const key of this.#entries.getKeys({ start: index, reverse: true, limit: 1 })) return key;
    return undefined;
  }

  /** Read and validate the run stored under `key` (up to `toIndex` when given). */
  #readRun(key: number, toIndex = Infinity): Entry[] {
    const bytes = this.#entries.getBinary(key);
    if (bytes === undefined) throw new StorageError(`Missing entry at index ${key}`);
    return decodeRun(bytes, key, toIndex);
  }

  /** Read and validate the entry at `index`, which must be stored. */
  #readEntry(index: number): Entry {
    const key = this.#runKeyAt(index);
    if (key === undefined) throw new StorageError(`Missing entry at index ${index}`);
    const run = this.#readRun(key, index + 1);
    const entry = run[index - key];
    if (entry === undefined) throw new StorageError(`Missing entry at index ${index}`);
    return entry;
  }

  firstIndex(): number {
    return this.#compactIndex + 1;
  }

  lastIndex(): number {
    return this.#lastIndex;
  }

  term(index: number): number | undefined {
    if (index === this.#compactIndex) return this.#compactTerm;
    if (index < this.#compactIndex || index > this.#lastIndex) return undefined;
    return this.#terms.term(index) ?? this.#readEntry(index).term;
  }

  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    if (fromIndex < this.firstIndex()) throw new CompactedError(fromIndex, this.firstIndex());
    const end = Math.min(toIndex, this.#lastIndex + 1);
    const out: Entry[] = [];
    if (fromIndex >= end) return out;
    let bytes = 0;
    let expected = fromIndex;
    const start = this.#runKeyAt(fromIndex) ?? fromIndex;
    for (const { key, value } of this.#entries.getRange({ start, end })) {
      // The first run may start before `fromIndex`; every later one where the last one ended.
      if (key > expected) throw new StorageError(`Missing entry at index ${expected}`);
      if (key < expected && key !== start) {
        throw new StorageError(`Corrupted log at index ${key}: it overlaps the run before`);
      }
      const run = decodeRun(value, key, end);
      for (let i = expected - key; i < run.length; i++) {
        const entry = run[i]!;
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > bytesMax) return out;
        out.push(entry);
        expected++;
      }
    }
    if (expected < end) throw new StorageError(`Missing entry at index ${expected}`);
    return out;
  }

  hardState(): HardState {
    return { ...this.#hardState };
  }

  configurations(): Configuration[] {
    return this.#baseConfig === null
      ? [...this.#configList]
      : [this.#baseConfig, ...this.#configList];
  }

  snapshotMeta(): SnapshotMeta | null {
    return this.#snapshot;
  }

  logBytes(): number {
    return this.#logBytes;
  }

  /**
   * The store of a state machine on disk, in this environment (created on first use; the same
   * object every call): its writes commit in the same environment as the log, in order with it.
   */
  openMachineStore(): LmdbMachineStore {
    if (this.#closed) throw new ShutdownError('the storage is closed');
    this.#machineStore ??= new LmdbMachineStore(this.#root);
    return this.#machineStore;
  }

  #checkWritable(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#closed) throw new ShutdownError('the storage is closed');
  }

  /** Commit `body` durably; a failure makes this store failed for good. */
  async #commit(what: string, body: () => void, sync = false): Promise<void> {
    try {
      await commitDurably(this.#root, what, body, sync);
    } catch (error) {
      this.#failure = error as StorageError;
      throw error;
    }
  }

  async write(batch: WriteBatch): Promise<void> {
    this.#checkWritable();
    const plan = planBatch(this, batch);
    const entries = batch.entries ?? [];
    const snapshot = batch.snapshot;
    // Worked out before the transaction from the state it starts from (one writer at a time).
    let logBytes = plan.discardLog ? 0 : this.#logBytes;
    let dropFrom = 0;
    let dropTo = -1;
    if (plan.discardLog) {
      dropFrom = this.firstIndex();
      dropTo = this.#lastIndex;
    } else if (plan.truncateFromIndex !== null) {
      dropFrom = plan.truncateFromIndex;
      dropTo = this.#lastIndex;
      for (const old of this.entries(dropFrom, dropTo + 1, Infinity)) logBytes -= entryBytes(old);
    }
    const keptConfigs = plan.discardLog
      ? []
      : this.#configList.filter((c) =>
        plan.truncateFromIndex === null || c.index < plan.truncateFromIndex
      );
    const droppedConfigs = this.#configList.filter((c) => !keptConfigs.includes(c));
    const newConfigs: Configuration[] = [];
    let writeBytes = 0;
    for (const entry of entries) {
      const bytes = entryBytes(entry);
      logBytes += bytes;
      writeBytes += bytes;
      const config = configurationOf(entry);
      if (config !== null) newConfigs.push(config);
    }
    const baseConfig = snapshot !== undefined && plan.discardLog
      ? { index: snapshot.index, term: snapshot.term, members: snapshot.members }
      : this.#baseConfig;
    let snapshotData: SnapshotInfo | null = null;
    // The runs the dropped entries are in: the one cut keeps its prefix, the ones after go.
    const droppedRuns: number[] = [];
    let cutRun: Entry[] = [];
    if (dropFrom <= dropTo) {
      const cutKey = this.#runKeyAt(dropFrom);
      if (cutKey !== undefined && cutKey < dropFrom) cutRun = this.#readRun(cutKey, dropFrom);
      for (const key of this.#entries.getKeys({ start: dropFrom, end: dropTo + 1 })) {
        droppedRuns.push(key);
      }
    }

    // Synchronously when small: no snapshot, few removals (see the module comment).
    const sync = this.#syncCommitBytesMax > 0 && writeBytes <= this.#syncCommitBytesMax &&
      snapshot === undefined && dropTo - dropFrom < syncCommitRemovalsMax &&
      performance.now() >= this.#syncAvoidUntilMs;
    const startMs = sync ? performance.now() : 0;
    await this.#commit('Write', () => {
      if (batch.snapshotData !== undefined) {
        snapshotData = this.snapshots.commitInTransaction(
          batch.snapshotData,
          snapshot!.index,
          snapshot!.term,
        );
      }
      for (const key of droppedRuns) this.#entries.remove(key);
      if (cutRun.length > 0) this.#entries.put(cutRun[0]!.index, encodeRun(cutRun));
      for (const c of droppedConfigs) this.#configs.remove(c.index);
      if (snapshot !== undefined) {
        this.#meta.put(metaKeys.snapshot, encodeRecord(snapshot));
        if (plan.discardLog) {
          this.#meta.put(
            metaKeys.compaction,
            encodeRecord({ index: snapshot.index, term: snapshot.term }),
          );
          this.#meta.put(metaKeys.baseConfig, encodeRecord(baseConfig));
        }
      }
      this.#putRuns(entries);
      for (const c of newConfigs) this.#configs.put(c.index, encodeRecord(c));
      if (logBytes !== this.#logBytes) this.#meta.put(metaKeys.logBytes, encodeRecord(logBytes));
      if (batch.hardState !== undefined) {
        this.#meta.put(metaKeys.hardState, encodeRecord(batch.hardState));
      }
    }, sync);
    // A synchronous commit holds the event loop for as long as the disk takes: after a slow one
    // (a stalling disk), the next writes go through the write thread for a while, so that this
    // member keeps heartbeating and answering while its disk is slow.
    if (sync && performance.now() - startMs > syncCommitSlowMs) {
      this.#syncAvoidUntilMs = performance.now() + syncCommitAvoidMs;
    }

    // Durable: now the cached state may show it.
    if (snapshotData !== null) this.snapshots.committed(snapshotData);
    if (snapshot !== undefined) {
      this.#snapshot = snapshot;
      if (plan.discardLog) {
        this.#compactIndex = snapshot.index;
        this.#compactTerm = snapshot.term;
        this.#baseConfig = baseConfig;
        this.#terms.clear();
      }
    }
    if (plan.truncateFromIndex !== null) this.#terms.truncateFrom(plan.truncateFromIndex);
    for (const entry of entries) this.#terms.append(entry.index, entry.term);
    this.#configList = [...keptConfigs, ...newConfigs];
    this.#lastIndex = plan.lastIndex;
    this.#logBytes = logBytes;
    if (batch.hardState !== undefined) this.#hardState = { ...batch.hardState };
  }

  async compact(index: number): Promise<void> {
    this.#checkWritable();
    if (index <= this.#compactIndex) return;
    assert(
      index <= this.#lastIndex,
      `Compaction to index ${index} past the last index ${this.#lastIndex}`,
    );
    assert(
      this.#snapshot !== null && index <= this.#snapshot.index,
      `Compaction to index ${index} past the snapshot index ${this.#snapshot?.index ?? 0}`,
    );
    const dropFrom = this.firstIndex();
    let logBytes = this.#logBytes;
    let term = 0;
    for (const old of this.entries(dropFrom, index + 1, Infinity)) {
      logBytes -= entryBytes(old);
      term = old.term;
    }
    const baseConfig = configurationAt(this.#baseConfig, this.#configList, index);
    const dropped = this.#configList.filter((c) => c.index <= index);
    // The runs it covers go; the one it cuts is stored again from `index + 1`.
    const droppedRuns = [...this.#entries.getKeys({ start: dropFrom, end: index + 1 })];
    const lastKey = droppedRuns[droppedRuns.length - 1];
    const cut = lastKey === undefined ? [] : this.#readRun(lastKey).slice(index + 1 - lastKey);
    await this.#commit('Compaction', () => {
      for (const key of droppedRuns) this.#entries.remove(key);
      if (cut.length > 0) this.#entries.put(index + 1, encodeRun(cut));
      for (const c of dropped) this.#configs.remove(c.index);
      this.#meta.put(metaKeys.compaction, encodeRecord({ index, term }));
      this.#meta.put(metaKeys.baseConfig, encodeRecord(baseConfig));
      this.#meta.put(metaKeys.logBytes, encodeRecord(logBytes));
    });
    this.#compactIndex = index;
    this.#compactTerm = term;
    this.#baseConfig = baseConfig;
    this.#configList = this.#configList.filter((c) => c.index > index);
    this.#logBytes = logBytes;
    this.#terms.compactTo(index);
  }

  /** Store `entries` (consecutive) as runs; inside a transaction. */
  #putRuns(entries: readonly Entry[]): void {
    let first = 0;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const size = entryBytes(entries[i]!);
      if (i > first && (i - first >= logRunEntriesMax || bytes + size > logRunBytesMax)) {
        this.#entries.put(entries[first]!.index, encodeRun(entries.slice(first, i)));
        first = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (first < entries.length) {
      this.#entries.put(
        entries[first]!.index,
        encodeRun(first === 0 ? entries : entries.slice(first)),
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
    // Only after a clean close: if LMDB failed to close, the lock stays until this process ends.
    this.#lock?.release();
  }
}
