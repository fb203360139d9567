/**
 * `LmdbSnapshotStore`: a member's snapshot data, kept in the `snapshots` database of its LMDB
 * environment as chunks keyed by (snapshot index, write id, chunk number), each exactly
 * `chunkBytes` long but the last. Only the newest complete snapshot is kept: a stage stores its
 * chunks, then the storage's write that names it (`WriteBatch.snapshotData`) records it as the
 * current snapshot, with the snapshot's metadata and in the same transaction, and drops the
 * previous one's chunks. Chunks of a stage that never completed (the process died) are dropped on
 * reopen. The write id keeps a second stage of the same index from touching the current chunks.
 *
 * Reads: the whole snapshot as an async iterable of chunks (for `restore`), or the bytes from a
 * byte offset to the end of their chunk (for resumable chunked transfer to a follower).
 *
 * @example
 * ```ts
 * const storage = await LmdbStorage.open({ path });
 * await storeSnapshot(storage, meta, stateMachine.snapshot()); // stage, then commit with the metadata
 * for await (const chunk of storage.snapshots.read()) restoreFrom(chunk);
 * const part = storage.snapshots.chunkAt(1_048_576); // { offsetBytes, data, done }
 * ```
 * @module
 */
import type { Database, RootDatabase } from 'lmdb';
import * as v from 'valibot';
import { assert, ShutdownError, StorageError } from '../base/errors.ts';
import { NaturalSchema } from '../base/messages.ts';
import { decodeRecord, encodeRecord } from './codec.ts';
import { commitDurably } from './commit.ts';
import type { SnapshotInfo, SnapshotPart, SnapshotStage, SnapshotStore } from './storage.ts';

export type { SnapshotInfo, SnapshotPart };

/** Default size of a stored snapshot chunk: 1 MiB, small next to the map, large per transaction. */
export const snapshotChunkBytesMaxDefault = 1024 ** 2;

const SnapshotInfoSchema = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  bytes: NaturalSchema,
  chunkBytes: v.pipe(NaturalSchema, v.minValue(1)),
  chunks: NaturalSchema,
  writeId: NaturalSchema,
});

const infoKey = 'snapshotData';
type ChunkKey = [number, number, number];

type StageState = {
  index: number;
  term: number;
  bytes: number;
  chunkCount: number;
  finished: boolean;
  done: boolean;
};

/** Snapshot data in LMDB; see the module comment. Made by `LmdbStorage`. */
export class LmdbSnapshotStore implements SnapshotStore {
  readonly #root: RootDatabase;
  readonly #chunks: Database<Uint8Array, ChunkKey>;
  readonly #meta: Database<Uint8Array, string>;
  readonly #chunkBytesMax: number;
  #info: SnapshotInfo | null = null;
  #nextWriteId = 1;
  readonly #stages = new Map<number, StageState>();
  #failure: StorageError | null = null;

  /** `chunkBytesMax`: the size snapshots are cut into, in bytes (`snapshotChunkBytesMax`). */
  constructor(root: RootDatabase, chunkBytesMax: number) {
    assert(
      Number.isSafeInteger(chunkBytesMax) && chunkBytesMax >= 1,
      `SnapshotStore: chunk size ${chunkBytesMax}`,
    );
    this.#root = root;
    const settings = { encoding: 'binary', keyEncoding: 'ordered-binary' } as const;
    this.#chunks = root.openDB<Uint8Array, ChunkKey>({ name: 'snapshots', ...settings });
    this.#meta = root.openDB<Uint8Array, string>({ name: 'meta', ...settings });
    this.#chunkBytesMax = chunkBytesMax;
  }

  /** Load the current snapshot's record and drop chunks of any write that did not complete. */
  async recover(): Promise<void> {
    const bytes = this.#meta.getBinary(infoKey);
    this.#info = bytes === undefined
      ? null
      : decodeRecord(bytes, SnapshotInfoSchema, 'snapshot data record');
    const stale: ChunkKey[] = [];
    for (const key of this.#chunks.getKeys({})) {
      const [index, writeId] = key;
      if (this.#info === null || index !== this.#info.index || writeId !== this.#info.writeId) {
        stale.push(key);
      }
      this.#nextWriteId = Math.max(this.#nextWriteId, writeId + 1);
    }
    if (this.#info !== null) {
      this.#nextWriteId = Math.max(this.#nextWriteId, this.#info.writeId + 1);
    }
    if (stale.length > 0) {
      await this.#commit('Discarding an incomplete snapshot', () => {
        for (const key of stale) this.#chunks.remove(key);
      });
    }
  }

  /** The current complete snapshot, or `null`. */
  info(): SnapshotInfo | null {
    return this.#info === null ? null : { ...this.#info };
  }

  /** Commit `body` durably; a failure makes this store failed for good. */
  async #commit(what: string, body: () => void): Promise<void> {
    try {
      await commitDurably(this.#root, what, body);
    } catch (error) {
      this.#failure = error as StorageError;
      throw error;
    }
  }

  #fail(error: unknown): StorageError {
    this.#failure = error instanceof StorageError
      ? error
      : new StorageError(`Snapshot chunk write failed: ${(error as Error).message}`, {
        cause: error,
      });
    return this.#failure;
  }

  stage(index: number, term: number): SnapshotStage {
    if (this.#failure !== null) throw this.#failure;
    assert(
      v.is(NaturalSchema, index) && v.is(NaturalSchema, term),
      `Snapshot index ${index} or term ${term} invalid`,
    );
    const id = this.#nextWriteId++;
    const state: StageState = {
      index,
      term,
      bytes: 0,
      chunkCount: 0,
      finished: false,
      done: false,
    };
    this.#stages.set(id, state);
    const chunkBytes = this.#chunkBytesMax;
    let pending = new Uint8Array(chunkBytes);
    let pendingBytes = 0;
    const put = async (chunk: Uint8Array): Promise<void> => {
      if (this.#failure !== null) throw this.#failure;
      try {
        await this.#chunks.put([index, id, state.chunkCount++], chunk);
      } catch (error) {
        throw this.#fail(error);
      }
    };
    return {
      id,
      index,
      term,
      get bytes() {
        return state.bytes;
      },
      append: async (data: Uint8Array): Promise<void> => {
        assert(data instanceof Uint8Array, 'Snapshot chunks must be Uint8Array');
        assert(!state.finished && !state.done, `Snapshot stage ${id} appended after finish`);
        let offset = 0;
        while (offset < data.byteLength) {
          const take = Math.min(chunkBytes - pendingBytes, data.byteLength - offset);
          pending.set(data.subarray(offset, offset + take), pendingBytes);
          pendingBytes += take;
          offset += take;
          state.bytes += take;
          if (pendingBytes === chunkBytes) {
            const full = pending;
            pending = new Uint8Array(chunkBytes);
            pendingBytes = 0;
            await put(full);
          }
        }
      },
      finish: async (): Promise<void> => {
        assert(!state.done, `Snapshot stage ${id} finished after it ended`);
        if (state.finished) return;
        if (pendingBytes > 0) await put(pending.slice(0, pendingBytes));
        state.finished = true;
      },
      abort: async (): Promise<void> => {
        if (state.done || this.#info?.writeId === id) return;
        state.done = true;
        this.#stages.delete(id);
        if (this.#failure !== null || state.chunkCount === 0) return;
        await this.#commit('Discarding an incomplete snapshot', () => {
          for (let n = 0; n < state.chunkCount; n++) this.#chunks.remove([index, id, n]);
        });
      },
    };
  }

  /**
   * Inside the storage's write transaction: make the finished stage `id` current (its metadata
   * must be written in the same transaction) and drop the previous snapshot's chunks. Returns
   * what `committed` must be told once the transaction is durable.
   */
  commitInTransaction(id: number, index: number, term: number): SnapshotInfo {
    const state = this.#stages.get(id);
    assert(
      state !== undefined && state.finished && !state.done,
      `Snapshot stage ${id} not finished`,
    );
    assert(
      state.index === index && state.term === term,
      `Snapshot stage ${id} holds ${state.index}/${state.term}, the metadata says ${index}/${term}`,
    );
    const info: SnapshotInfo = {
      index,
      term,
      bytes: state.bytes,
      chunkBytes: this.#chunkBytesMax,
      chunks: state.chunkCount,
      writeId: id,
    };
    this.#meta.put(infoKey, encodeRecord(info));
    // The previous snapshot's chunks stay until `committed` has switched to this one: a transfer
    // may be reading them until then (removing them here failed such a read: 'chunk 0 missing').
    return info;
  }

  /**
   * The transaction that committed `info` is durable: it is the current snapshot now, and the
   * previous one's chunks go (in a transaction of their own; after a crash first, `recover`
   * drops them).
   */
  committed(info: SnapshotInfo): void {
    const state = this.#stages.get(info.writeId);
    if (state !== undefined) state.done = true;
    this.#stages.delete(info.writeId);
    const previous = this.#info;
    this.#info = { ...info };
    if (previous === null || previous.writeId === info.writeId) return;
    void this.#commit('Discarding the previous snapshot', () => {
      for (let n = 0; n < previous.chunks; n++) {
        this.#chunks.remove([previous.index, previous.writeId, n]);
      }
    }).catch(() => {}); // a failure fails the store: its next write reports it
  }

  #chunk(info: SnapshotInfo, n: number): Uint8Array {
    const chunk = this.#chunks.getBinary([info.index, info.writeId, n]);
    const expectedBytes = n === info.chunks - 1
      ? info.bytes - n * info.chunkBytes
      : info.chunkBytes;
    if (chunk === undefined || chunk.byteLength !== expectedBytes) {
      throw new StorageError(
        `Corrupted snapshot at index ${info.index}: chunk ${n} missing or of the wrong size`,
      );
    }
    return chunk;
  }

  /** The current snapshot's bytes, chunk by chunk (nothing when there is none). */
  async *read(): AsyncIterable<Uint8Array> {
    const info = this.#info;
    if (info === null) return;
    for (let n = 0; n < info.chunks; n++) {
      if (this.#info?.writeId !== info.writeId) {
        throw new ShutdownError('the snapshot was replaced while being read');
      }
      yield this.#chunk(info, n);
    }
  }

  /**
   * The current snapshot's bytes from `offsetBytes` to the end of their chunk, and whether they
   * reach the end; `null` when there is no snapshot. Throws `RangeError` past the end.
   */
  chunkAt(offsetBytes: number): SnapshotPart | null {
    const info = this.#info;
    if (info === null) return null;
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes > info.bytes) {
      throw new RangeError(
        `Snapshot offset out of range: ${offsetBytes} bytes, size ${info.bytes}`,
      );
    }
    if (offsetBytes === info.bytes) return { offsetBytes, data: new Uint8Array(0), done: true };
    const n = Math.floor(offsetBytes / info.chunkBytes);
    const data = this.#chunk(info, n).subarray(offsetBytes - n * info.chunkBytes);
    return { offsetBytes, data, done: offsetBytes + data.byteLength === info.bytes };
  }
}
