/**
 * `SnapshotStore`: a member's snapshot data, kept in the `snapshots` database of its LMDB
 * environment as chunks keyed by (snapshot index, write id, chunk number), each exactly
 * `chunkBytes` long but the last. Only the newest complete snapshot is kept: a write stores its
 * chunks, then in one transaction records itself as the current snapshot and drops the previous
 * one's chunks. Chunks of a write that never completed (the process died) are dropped on reopen.
 * The write id keeps a second write of the same index from touching the complete one's chunks.
 *
 * Reads: the whole snapshot as an async iterable of chunks (for `restore`), or the bytes from a
 * byte offset to the end of their chunk (for resumable chunked transfer to a follower).
 *
 * @example
 * ```ts
 * const storage = await LmdbStorage.open({ path });
 * await storage.snapshots.write(120, 3, stateMachine.snapshotChunks());
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

/** Default size of a stored snapshot chunk: 1 MiB, small next to the map, large per transaction. */
export const snapshotChunkBytesMaxDefault = 1024 ** 2;

/** The current complete snapshot's data. */
export type SnapshotInfo = {
  /** Index and term of the last entry the snapshot covers. */
  index: number;
  term: number;
  /** Total size in bytes. */
  bytes: number;
  /** Size of every chunk but the last, in bytes. */
  chunkBytes: number;
  /** Number of chunks. */
  chunks: number;
  /** Which write stored it (part of its chunks' keys). */
  writeId: number;
};

const SnapshotInfoSchema = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  bytes: NaturalSchema,
  chunkBytes: v.pipe(NaturalSchema, v.minValue(1)),
  chunks: NaturalSchema,
  writeId: NaturalSchema,
});

/** The bytes of a snapshot from `offsetBytes` to the end of the chunk that holds it. */
export type SnapshotPart = { offsetBytes: number; data: Uint8Array; done: boolean };

const infoKey = 'snapshotData';
type ChunkKey = [number, number, number];

/** Snapshot data in LMDB; see the module comment. Made by `LmdbStorage`, one writer at a time. */
export class SnapshotStore {
  readonly #root: RootDatabase;
  readonly #chunks: Database<Uint8Array, ChunkKey>;
  readonly #meta: Database<Uint8Array, string>;
  readonly #chunkBytesMax: number;
  #info: SnapshotInfo | null = null;
  #nextWriteId = 1;
  #writing = false;
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

  /**
   * Store the snapshot covering up to `index` (of term `term`) from `chunks`, any sizes, cut into
   * chunks of `snapshotChunkBytesMax`. Resolves once it is durable and current; the previous
   * snapshot is then gone. Rejects with `StorageError` on a storage failure (then every later
   * write does too); an error thrown by `chunks` rejects the write and leaves the previous one.
   */
  async write(
    index: number,
    term: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<SnapshotInfo> {
    if (this.#failure !== null) throw this.#failure;
    assert(
      v.is(NaturalSchema, index) && v.is(NaturalSchema, term),
      `Snapshot index ${index} or term ${term} invalid`,
    );
    assert(!this.#writing, 'SnapshotStore: one snapshot write at a time');
    this.#writing = true;
    const writeId = this.#nextWriteId++;
    const chunkBytes = this.#chunkBytesMax;
    let pending = new Uint8Array(chunkBytes);
    let pendingBytes = 0;
    let chunkCount = 0;
    let totalBytes = 0;
    const keys: ChunkKey[] = [];
    const flushChunk = async (chunk: Uint8Array): Promise<void> => {
      const key: ChunkKey = [index, writeId, chunkCount++];
      keys.push(key);
      try {
        await this.#chunks.put(key, chunk);
      } catch (error) {
        this.#failure = new StorageError(
          `Snapshot chunk write failed: ${(error as Error).message}`,
          { cause: error },
        );
        throw this.#failure;
      }
    };
    try {
      for await (const part of chunks) {
        assert(part instanceof Uint8Array, 'Snapshot chunks must be Uint8Array');
        let offset = 0;
        while (offset < part.byteLength) {
          const take = Math.min(chunkBytes - pendingBytes, part.byteLength - offset);
          pending.set(part.subarray(offset, offset + take), pendingBytes);
          pendingBytes += take;
          offset += take;
          totalBytes += take;
          if (pendingBytes === chunkBytes) {
            await flushChunk(pending);
            pending = new Uint8Array(chunkBytes);
            pendingBytes = 0;
          }
        }
      }
      if (pendingBytes > 0) await flushChunk(pending.slice(0, pendingBytes));
      const info: SnapshotInfo = {
        index,
        term,
        bytes: totalBytes,
        chunkBytes,
        chunks: chunkCount,
        writeId,
      };
      const previous = this.#info;
      await this.#commit('Snapshot write', () => {
        this.#meta.put(infoKey, encodeRecord(info));
        if (previous !== null) {
          for (let n = 0; n < previous.chunks; n++) {
            this.#chunks.remove([previous.index, previous.writeId, n]);
          }
        }
      });
      this.#info = info;
      return { ...info };
    } catch (error) {
      if (this.#failure === null && keys.length > 0) {
        // The source failed: drop what this write stored (best effort; reopen would too).
        await this.#commit('Discarding an incomplete snapshot', () => {
          for (const key of keys) this.#chunks.remove(key);
        });
      }
      throw error;
    } finally {
      this.#writing = false;
    }
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
