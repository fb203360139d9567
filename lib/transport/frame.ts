/**
 * Framing: a frame is a 4-byte big-endian length followed by that many bytes of body (one CBOR
 * message). `FrameDecoder` turns a stream of arbitrary chunks into whole frame bodies; the
 * encoder helpers lay frames out for one coalesced write.
 *
 * @example
 * ```ts
 * import { FrameDecoder, frameBytes, writeFrames } from './frame.ts';
 * const bodies = [new Uint8Array([1, 2]), new Uint8Array([3])];
 * const wire = new Uint8Array(frameBytes(2) + frameBytes(1));
 * writeFrames(wire, 0, bodies);
 * const decoder = new FrameDecoder(1024, (body) => console.log(body));
 * decoder.push(wire.subarray(0, 3)); // nothing yet
 * decoder.push(wire.subarray(3)); // logs both bodies
 * ```
 * @module
 */
import { assert } from '../base/errors.ts';

/** Bytes of the length prefix in front of every frame body. */
export const frameHeaderBytes = 4;
/** Largest frame body the 4-byte length prefix can describe. */
export const frameLengthMax = 0xffff_ffff;

/** Bytes on the wire of a frame whose body is `bodyBytes` long. */
export function frameBytes(bodyBytes: number): number {
  return frameHeaderBytes + bodyBytes;
}

/**
 * Write `bodies` as consecutive frames into `target` from `offset`; returns the offset after the
 * last frame. The caller sized `target` with `frameBytes` (asserted).
 *
 * @example
 * ```ts
 * const target = new Uint8Array(frameBytes(1));
 * writeFrames(target, 0, [new Uint8Array([7])]); // returns 5; target is 00 00 00 01 07
 * ```
 */
export function writeFrames(
  target: Uint8Array,
  offset: number,
  bodies: readonly Uint8Array[],
): number {
  let at = offset;
  for (const body of bodies) {
    const length = body.byteLength;
    assert(at + frameHeaderBytes + length <= target.byteLength, 'writeFrames: target too small');
    target[at] = length >>> 24;
    target[at + 1] = (length >>> 16) & 0xff;
    target[at + 2] = (length >>> 8) & 0xff;
    target[at + 3] = length & 0xff;
    target.set(body, at + frameHeaderBytes);
    at += frameHeaderBytes + length;
  }
  return at;
}

/**
 * Reassembles frames from stream chunks. Partial chunks are collected and concatenated once, when
 * the frame completes (a frame inside one chunk is handed out as a view, without copying). The
 * body passed to `onFrame` is only valid during the call: decode it before returning.
 *
 * After an error (`push` returns a reason) or `stop()`, the decoder ignores further input: the
 * owner closes the connection, and nothing on it is trusted any more.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder(4 * 1024 * 1024, (body) => handle(body));
 * socket.on('data', (chunk) => {
 *   const error = decoder.push(chunk);
 *   if (error !== null) socket.destroy();
 * });
 * ```
 */
export class FrameDecoder {
  readonly #frameBytesMax: number;
  readonly #onFrame: (body: Uint8Array) => void;
  readonly #header = new Uint8Array(frameHeaderBytes);
  #headerFill = 0;
  /** Body bytes of the frame being read, or -1 while reading a header. */
  #bodyBytes = -1;
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  #stopped = false;

  /** `frameBytesMax` bounds the body (not counting the 4-byte prefix). */
  constructor(frameBytesMax: number, onFrame: (body: Uint8Array) => void) {
    assert(
      Number.isSafeInteger(frameBytesMax) && frameBytesMax >= 1,
      'frameBytesMax must be positive',
    );
    this.#frameBytesMax = frameBytesMax;
    this.#onFrame = onFrame;
  }

  /** True while part of a frame (header or body) has arrived but not all of it. */
  get partial(): boolean {
    return this.#headerFill > 0 || this.#bodyBytes >= 0;
  }

  /** Bytes held for the frame in progress: bounded by `frameBytesMax`. */
  get bufferedBytes(): number {
    return this.#headerFill + this.#partsBytes;
  }

  /** Stop decoding: later chunks are ignored and held parts released. */
  stop(): void {
    this.#stopped = true;
    this.#parts = [];
    this.#partsBytes = 0;
  }

  /**
   * Feed one chunk. Calls `onFrame` once per completed frame, in order. Returns `null`, or the
   * reason the stream is invalid (the decoder then stops).
   */
  push(chunk: Uint8Array): string | null {
    let offset = 0;
    const end = chunk.byteLength;
    while (offset < end && !this.#stopped) {
      if (this.#bodyBytes < 0) {
        let length: number;
        if (this.#headerFill === 0 && end - offset >= frameHeaderBytes) {
          length = ((chunk[offset]! << 24) >>> 0) + (chunk[offset + 1]! << 16) +
            (chunk[offset + 2]! << 8) +
            chunk[offset + 3]!;
          offset += frameHeaderBytes;
        } else {
          const take = Math.min(frameHeaderBytes - this.#headerFill, end - offset);
          this.#header.set(chunk.subarray(offset, offset + take), this.#headerFill);
          this.#headerFill += take;
          offset += take;
          if (this.#headerFill < frameHeaderBytes) return null;
          const h = this.#header;
          length = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
          this.#headerFill = 0;
        }
        if (length > this.#frameBytesMax) {
          this.stop();
          return `Frame too large: ${length} bytes, limit ${this.#frameBytesMax}`;
        }
        if (length === 0) {
          this.stop();
          return 'Empty frame: a frame body holds one CBOR message';
        }
        this.#bodyBytes = length;
      }
      const available = end - offset;
      if (this.#partsBytes === 0 && available >= this.#bodyBytes) {
        const body = chunk.subarray(offset, offset + this.#bodyBytes);
        offset += this.#bodyBytes;
        this.#bodyBytes = -1;
        this.#onFrame(body);
        continue;
      }
      const take = Math.min(this.#bodyBytes - this.#partsBytes, available);
      this.#parts.push(chunk.subarray(offset, offset + take));
      this.#partsBytes += take;
      offset += take;
      if (this.#partsBytes < this.#bodyBytes) return null;
      const body = concat(this.#parts, this.#bodyBytes);
      this.#parts = [];
      this.#partsBytes = 0;
      this.#bodyBytes = -1;
      this.#onFrame(body);
    }
    return null;
  }
}

function concat(parts: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  assert(at === totalBytes, 'concat: parts do not add up to the frame length');
  return out;
}
