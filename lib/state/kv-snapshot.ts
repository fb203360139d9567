/**
 * The key-value state machine's snapshot format: a stream of frames, each a 4-byte big-endian
 * length followed by one CBOR array `[key1, value1, key2, value2, ...]`. One frame per chunk, of
 * bounded size, so a large map is never one buffer; frames are self-delimiting, so `restore` does
 * not care how the stream was re-chunked in transit.
 *
 * @module
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';
import { cborOptions } from './codec.ts';

/**
 * Target size of one snapshot chunk in bytes: pairs are packed into a frame until the next would
 * pass it. A single pair larger than this goes alone in its frame.
 */
export const kvSnapshotChunkBytesTarget = 65_536;

/** Bytes of a frame's length prefix. */
const framePrefixBytes = 4;
/** Upper bound of a CBOR text or array header's size in bytes (lengths below 2^32). */
const cborHeaderBytesMax = 5;

/** UTF-8 length of a string in bytes (lone surrogates count as the 3-byte replacement character). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Stream the pairs `(keys[i], values[i])` as frames of at most `chunkBytesTarget` bytes each (or
 * one oversize pair). The caller passes a captured view of the map, which the generator encodes
 * lazily, as chunks are pulled; the arrays must not change meanwhile.
 *
 * @example
 * ```ts
 * for await (const chunk of encodeKvFrames(['a'], ['1'])) console.log(chunk.byteLength);
 * ```
 */
export async function* encodeKvFrames(
  keys: readonly string[],
  values: readonly string[],
  chunkBytesTarget = kvSnapshotChunkBytesTarget,
): AsyncGenerator<Uint8Array> {
  const encoder = new Encoder(cborOptions);
  let batch: string[] = [];
  let batchBytes = framePrefixBytes + cborHeaderBytesMax;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = values[i]!;
    const pairBytes = utf8Length(key) + utf8Length(value) + 2 * cborHeaderBytesMax;
    if (batch.length > 0 && batchBytes + pairBytes > chunkBytesTarget) {
      yield frame(encoder, batch);
      batch = [];
      batchBytes = framePrefixBytes + cborHeaderBytesMax;
    }
    batch.push(key, value);
    batchBytes += pairBytes;
  }
  if (batch.length > 0) yield frame(encoder, batch);
}

function frame(encoder: Encoder, batch: string[]): Uint8Array {
  const body = encoder.encode(batch);
  const out = new Uint8Array(framePrefixBytes + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength);
  out.set(body, framePrefixBytes);
  return out;
}

/**
 * Parse a frame stream back into pairs, whatever the chunk boundaries. `frameBytesMax` bounds
 * what one length prefix may announce (a corrupt prefix cannot make it allocate gigabytes);
 * `onPair` validates and stores each pair and may throw. Throws `Error` on a truncated stream,
 * an oversize frame or a frame that is not an array of strings of even length.
 *
 * @example
 * ```ts
 * const map = new Map<string, string>();
 * await decodeKvFrames(chunks, 1 << 20, (k, v) => map.set(k, v));
 * ```
 */
export async function decodeKvFrames(
  chunks: AsyncIterable<Uint8Array>,
  frameBytesMax: number,
  onPair: (key: string, value: string) => void,
): Promise<void> {
  const decoder = new Decoder(cborOptions);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let bodyBytes = -1; // the current frame's announced length, -1 until its prefix is read
  // Concatenate only when a prefix or a whole frame is there, never once per small chunk.
  const flatten = (): Uint8Array => {
    const head = pending.length === 1 ? pending[0]! : concat(pending, pendingBytes);
    pending = [head];
    return head;
  };
  for await (const chunk of chunks) {
    if (chunk.byteLength === 0) continue;
    pending.push(chunk);
    pendingBytes += chunk.byteLength;
    for (;;) {
      if (bodyBytes < 0) {
        if (pendingBytes < framePrefixBytes) break;
        const head = flatten();
        bodyBytes = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0);
        if (bodyBytes > frameBytesMax) {
          throw new Error(`Snapshot frame too large: ${bodyBytes} bytes, limit ${frameBytesMax}`);
        }
      }
      if (pendingBytes < framePrefixBytes + bodyBytes) break;
      const head = flatten();
      decodeFrame(
        decoder.decode(head.subarray(framePrefixBytes, framePrefixBytes + bodyBytes)),
        onPair,
      );
      const rest = head.subarray(framePrefixBytes + bodyBytes);
      pending = rest.byteLength > 0 ? [rest] : [];
      pendingBytes = rest.byteLength;
      bodyBytes = -1;
    }
  }
  if (pendingBytes !== 0) {
    throw new Error(`Snapshot truncated: ${pendingBytes} bytes after the last frame`);
  }
}

function decodeFrame(items: unknown, onPair: (key: string, value: string) => void): void {
  if (!Array.isArray(items) || items.length % 2 !== 0) {
    throw new Error('Snapshot frame is not an array of key-value pairs');
  }
  for (let i = 0; i < items.length; i += 2) {
    const key: unknown = items[i];
    const value: unknown = items[i + 1];
    if (typeof key !== 'string' || typeof value !== 'string') {
      throw new Error('Snapshot frame holds a key or value that is not a string');
    }
    onPair(key, value);
  }
}

function concat(parts: Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
