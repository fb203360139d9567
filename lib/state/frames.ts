/**
 * A leading length-prefixed frame in front of a byte stream: how a snapshot carries a small
 * header (the executor's session table, the key-value machine's watches) ahead of the state
 * machine's own chunks, whatever the chunk boundaries in transit.
 *
 * @example
 * ```ts
 * const stream = withLeadingFrame(header, machineChunks);
 * const { frame, rest } = await splitLeadingFrame(stream, 1 << 20, 'watch table');
 * ```
 * @module
 */
import { ApplicationError } from '../base/errors.ts';

/** A stream of `frame` (length-prefixed: 4 bytes big-endian) followed by `rest`. */
export async function* withLeadingFrame(
  frame: Uint8Array,
  rest: AsyncIterable<Uint8Array>,
): AsyncIterable<Uint8Array> {
  const head = new Uint8Array(4 + frame.byteLength);
  new DataView(head.buffer).setUint32(0, frame.byteLength);
  head.set(frame, 4);
  yield head;
  yield* rest;
}

/**
 * Read the leading length-prefixed frame of a stream; the rest streams on, however chunked.
 * Throws `ApplicationError` (naming `what`) when the stream ends first or the frame announces more
 * than `frameBytesMax` bytes.
 */
export async function splitLeadingFrame(
  chunks: AsyncIterable<Uint8Array>,
  frameBytesMax: number,
  what: string,
): Promise<{ frame: Uint8Array; rest: AsyncIterable<Uint8Array> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  let buffered = new Uint8Array(0);
  let frameBytes = -1;
  for (;;) {
    if (frameBytes < 0 && buffered.byteLength >= 4) {
      frameBytes = new DataView(buffered.buffer, buffered.byteOffset, 4).getUint32(0);
      if (frameBytes > frameBytesMax) {
        throw new ApplicationError(
          `Snapshot ${what} frame too large: ${frameBytes} bytes, limit ${frameBytesMax}`,
        );
      }
    }
    if (frameBytes >= 0 && buffered.byteLength >= 4 + frameBytes) break;
    const next = await iterator.next();
    if (next.done === true) throw new ApplicationError(`Snapshot ends before its ${what}`);
    const joined = new Uint8Array(buffered.byteLength + next.value.byteLength);
    joined.set(buffered);
    joined.set(next.value, buffered.byteLength);
    buffered = joined;
  }
  const frame = buffered.subarray(4, 4 + frameBytes);
  const leftover = buffered.subarray(4 + frameBytes);
  const rest = (async function* () {
    if (leftover.byteLength > 0) yield leftover;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  })();
  return { frame, rest };
}
