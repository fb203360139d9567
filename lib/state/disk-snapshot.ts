/**
 * The snapshot format of a state machine on disk: the session table as one leading frame (the
 * same as every snapshot's, see `frames.ts`), then the machine's records as frames, each a 4-byte
 * big-endian length and one CBOR array `[key1, value1, key2, value2, ...]` of byte strings, at
 * most `diskSnapshotFrameBytesTarget` bytes (or one larger record alone). The records are read
 * lazily from one read transaction as the stream is pulled, so a large store is never one buffer;
 * frames are self-delimiting, so re-chunking in transit does not matter.
 *
 * @example
 * ```ts
 * const chunks = diskSnapshotChunks(store.view());
 * const { sessions, pairs } = await readDiskSnapshot(chunks);
 * await other.install(applied, sessions, pairs);
 * ```
 * @module
 */
import { Decoder } from 'cbor-x/decode';
import { Encoder } from 'cbor-x/encode';
import { cborOptions } from './codec.ts';
import {
  diskKeyBytesMax,
  type DiskPair,
  diskValueBytesMax,
  type MachineView,
} from './disk-state-machine.ts';
import { splitLeadingFrame, withLeadingFrame } from './frames.ts';
import { sessionFrameBytesMax, type SessionTableData, SessionTableDataSchema } from './sessions.ts';
import * as v from 'valibot';

/** Target size of one frame of records, in bytes. */
export const diskSnapshotFrameBytesTarget = 65_536;
/** Largest frame a restore accepts, in bytes: the target, or one largest record with headers. */
export const diskSnapshotFrameBytesMax = Math.max(
  diskSnapshotFrameBytesTarget,
  diskKeyBytesMax + diskValueBytesMax + 64,
);

const prefixBytes = 4;
/** Upper bound of a CBOR byte-string or array header, in bytes (lengths below 2^32). */
const headerBytesMax = 5;

/** Frames of `pairs`, encoded lazily as they are pulled. */
export async function* encodeDiskFrames(
  pairs: Iterable<DiskPair>,
  frameBytesTarget = diskSnapshotFrameBytesTarget,
): AsyncGenerator<Uint8Array> {
  const encoder = new Encoder(cborOptions);
  let batch: Uint8Array[] = [];
  let batchBytes = prefixBytes + headerBytesMax;
  for (const { key, value } of pairs) {
    const pairBytes = key.byteLength + value.byteLength + 2 * headerBytesMax;
    if (batch.length > 0 && batchBytes + pairBytes > frameBytesTarget) {
      yield frame(encoder, batch);
      batch = [];
      batchBytes = prefixBytes + headerBytesMax;
    }
    batch.push(key, value);
    batchBytes += pairBytes;
  }
  if (batch.length > 0) yield frame(encoder, batch);
}

function frame(encoder: Encoder, items: Uint8Array[]): Uint8Array {
  const body = encoder.encode(items);
  const out = new Uint8Array(prefixBytes + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength);
  out.set(body, prefixBytes);
  return out;
}

/**
 * The records of a frame stream, one batch per frame, whatever the chunk boundaries. Throws
 * `Error` on a truncated stream, a frame over `frameBytesMax`, or a record out of bounds.
 */
export async function* decodeDiskFrames(
  chunks: AsyncIterable<Uint8Array>,
  frameBytesMax = diskSnapshotFrameBytesMax,
): AsyncGenerator<DiskPair[]> {
  const decoder = new Decoder(cborOptions);
  let pending: Uint8Array = new Uint8Array(0);
  for await (const chunk of chunks) {
    if (chunk.byteLength === 0) continue;
    pending = pending.byteLength === 0 ? chunk : concat(pending, chunk);
    for (;;) {
      if (pending.byteLength < prefixBytes) break;
      const bodyBytes = new DataView(pending.buffer, pending.byteOffset, prefixBytes).getUint32(0);
      if (bodyBytes > frameBytesMax) {
        throw new Error(`Snapshot frame too large: ${bodyBytes} bytes, limit ${frameBytesMax}`);
      }
      if (pending.byteLength < prefixBytes + bodyBytes) break;
      const items: unknown = decoder.decode(pending.subarray(prefixBytes, prefixBytes + bodyBytes));
      pending = pending.subarray(prefixBytes + bodyBytes);
      yield pairsOf(items);
    }
  }
  if (pending.byteLength !== 0) {
    throw new Error(`Snapshot truncated: ${pending.byteLength} bytes after the last frame`);
  }
}

function pairsOf(items: unknown): DiskPair[] {
  if (!Array.isArray(items) || items.length % 2 !== 0) {
    throw new Error('Snapshot frame is not an array of key-value pairs');
  }
  const out: DiskPair[] = [];
  for (let i = 0; i < items.length; i += 2) {
    const key: unknown = items[i];
    const value: unknown = items[i + 1];
    if (
      !(key instanceof Uint8Array) || !(value instanceof Uint8Array) || key.byteLength < 1 ||
      key.byteLength > diskKeyBytesMax || value.byteLength > diskValueBytesMax
    ) {
      throw new Error('Snapshot frame holds a record that is not bytes within bounds');
    }
    out.push({ key, value });
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

const sessionCodec = { encoder: new Encoder(cborOptions), decoder: new Decoder(cborOptions) };

/**
 * The snapshot stream of `view`: its session table, then its records. The view is closed when the
 * stream ends, fails or is dropped (`return`); one that is never pulled stays open.
 */
export async function* diskSnapshotChunks(view: MachineView): AsyncGenerator<Uint8Array> {
  try {
    const sessions = sessionCodec.encoder.encode(view.sessions);
    yield* withLeadingFrame(sessions, encodeDiskFrames(view.pairs()));
  } finally {
    view.close();
  }
}

/** Split a disk snapshot stream into its session table (validated) and its record batches. */
export async function readDiskSnapshot(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ sessions: SessionTableData; pairs: AsyncIterable<DiskPair[]> }> {
  const { frame, rest } = await splitLeadingFrame(chunks, sessionFrameBytesMax, 'session table');
  const sessions = v.parse(SessionTableDataSchema, sessionCodec.decoder.decode(frame));
  return { sessions, pairs: decodeDiskFrames(rest) };
}
