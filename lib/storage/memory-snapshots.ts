/**
 * `MemorySnapshotStore`: the `SnapshotStore` interface with no I/O, for `MemoryStorage` (the
 * simulator and unit tests). It follows the LMDB store's rules exactly: staged data is invisible
 * until a storage write commits it together with the snapshot's metadata, only the newest
 * complete snapshot is kept, and a stage that was never committed is dropped when the storage is
 * reopened (`reopen`, as after a crash).
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * await storeSnapshot(storage, meta, [new Uint8Array([1, 2, 3])]);
 * storage.snapshots.info()?.bytes; // 3
 * ```
 * @module
 */
import { assert } from '../base/errors.ts';
import type { SnapshotInfo, SnapshotPart, SnapshotStage, SnapshotStore } from './storage.ts';

/** Size a memory snapshot is cut into, in bytes (as the LMDB store's default). */
export const memorySnapshotChunkBytesDefault = 1024 ** 2;

type Staged = {
  index: number;
  term: number;
  chunks: Uint8Array[];
  bytes: number;
  finished: boolean;
  done: boolean;
};

/** Snapshot data in memory; see the module comment. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #chunkBytes: number;
  #info: SnapshotInfo | null = null;
  #chunks: Uint8Array[] = [];
  #nextId = 1;
  readonly #stages = new Map<number, Staged>();

  /** `chunkBytes`: the size snapshots are cut into, in bytes. */
  constructor(chunkBytes: number = memorySnapshotChunkBytesDefault) {
    assert(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1, `Chunk size ${chunkBytes}`);
    this.#chunkBytes = chunkBytes;
  }

  info(): SnapshotInfo | null {
    return this.#info === null ? null : { ...this.#info };
  }

  async *read(): AsyncIterable<Uint8Array> {
    const chunks = this.#chunks; // the chunks of the snapshot current at the call
    for (const chunk of chunks) yield chunk;
  }

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
    const data = this.#chunks[n]!.subarray(offsetBytes - n * info.chunkBytes);
    return { offsetBytes, data, done: offsetBytes + data.byteLength === info.bytes };
  }

  stage(index: number, term: number): SnapshotStage {
    const id = this.#nextId++;
    const staged: Staged = { index, term, chunks: [], bytes: 0, finished: false, done: false };
    this.#stages.set(id, staged);
    const chunkBytes = this.#chunkBytes;
    // Grown as bytes arrive, up to one chunk: small snapshots never cost a whole chunk.
    let pending = new Uint8Array(Math.min(chunkBytes, 4096));
    let pendingBytes = 0;
    return {
      id,
      index,
      term,
      get bytes() {
        return staged.bytes;
      },
      append: (data: Uint8Array): Promise<void> => {
        assert(data instanceof Uint8Array, 'Snapshot chunks must be Uint8Array');
        assert(!staged.finished && !staged.done, `Snapshot stage ${id} appended after finish`);
        let offset = 0;
        while (offset < data.byteLength) {
          const take = Math.min(chunkBytes - pendingBytes, data.byteLength - offset);
          if (pendingBytes + take > pending.byteLength) {
            const grown = new Uint8Array(
              Math.min(chunkBytes, Math.max(pending.byteLength * 2, pendingBytes + take)),
            );
            grown.set(pending.subarray(0, pendingBytes));
            pending = grown;
          }
          pending.set(data.subarray(offset, offset + take), pendingBytes);
          pendingBytes += take;
          offset += take;
          staged.bytes += take;
          if (pendingBytes === chunkBytes) {
            staged.chunks.push(pending);
            pending = new Uint8Array(Math.min(chunkBytes, 4096));
            pendingBytes = 0;
          }
        }
        return Promise.resolve();
      },
      finish: (): Promise<void> => {
        assert(!staged.done, `Snapshot stage ${id} finished after it ended`);
        if (!staged.finished && pendingBytes > 0) {
          staged.chunks.push(pending.slice(0, pendingBytes));
        }
        staged.finished = true;
        return Promise.resolve();
      },
      abort: (): Promise<void> => {
        if (!staged.done) {
          staged.done = true;
          this.#stages.delete(id);
        }
        return Promise.resolve();
      },
    };
  }

  /** Make the finished stage `id` current (called by `MemoryStorage.write`, in its "transaction"). */
  commit(id: number, index: number, term: number): void {
    const staged = this.#stages.get(id);
    assert(
      staged !== undefined && staged.finished && !staged.done,
      `Snapshot stage ${id} not finished`,
    );
    assert(
      staged.index === index && staged.term === term,
      `Snapshot stage ${id} holds ${staged.index}/${staged.term}, the metadata says ${index}/${term}`,
    );
    staged.done = true;
    this.#stages.delete(id);
    this.#chunks = staged.chunks;
    this.#info = {
      index,
      term,
      bytes: staged.bytes,
      chunkBytes: this.#chunkBytes,
      chunks: staged.chunks.length,
      writeId: id,
    };
  }

  /** As after a crash and reopen: stages never committed are gone. */
  reopen(): void {
    for (const staged of this.#stages.values()) staged.done = true;
    this.#stages.clear();
  }
}
