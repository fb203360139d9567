/**
 * `CborWriter`: the one hand-written CBOR writer, shared by the storage's entry encoder
 * (`lib/storage/codec.ts`) and the transport's Raft message encoder
 * (`lib/transport/raft-encode.ts`).
 * It writes CBOR items the way cbor-x's `Encoder` does with the project's options (shortest heads,
 * unsigned integers up to 2^32 - 1 and float64 above, untagged byte strings), so that the encoders
 * built on it can be held byte for byte to cbor-x by their differential tests.
 *
 * Items are written one after another into a growable buffer: `begin()`, the writes, then
 * `finish()` returns the item as a view of the buffer. A buffer is never written again below its
 * last finished item, and a full one is replaced (the unfinished item moved to a fresh one), not
 * reused, so every item returned stays valid while a write queue or an LMDB put still holds it.
 *
 * Room: `bytes`, `text` and `openMap` make their own room; `byte`, `raw`, `head`, `arrayHead` and
 * `number` do not (they are the per-byte hot path): call `ensure` with enough for them first.
 *
 * Pure: no imports, no I/O, usable from any runtime.
 *
 * @example
 * ```ts
 * const writer = new CborWriter();
 * writer.begin();
 * const map = writer.openMap();
 * writer.text('term');
 * writer.ensure(cborNumberBytesMax);
 * writer.number(3);
 * writer.closeMap(map, 1);
 * const item = writer.finish(); // a1 64 't' 'e' 'r' 'm' 03
 * ```
 * @module
 */

/** Size of each fresh buffer, in bytes, unless one item needs more. */
export const cborWriterBufferBytesDefault = 256 * 1024;

/** Longest head `head` writes for an argument below 2^32: initial byte and 4 bytes. */
export const cborHeadBytesMax = 5;
/** Longest encoding `number` writes: a float64 (initial byte and 8 bytes). */
export const cborNumberBytesMax = 9;
/** Most key-value pairs a map opened with `openMap` holds: its head is one byte. */
export const cborMapKeysMax = 23;

/**
 * A growable byte buffer that CBOR items are written into; see the module comment.
 *
 * @example
 * ```ts
 * const writer = new CborWriter(64 * 1024);
 * writer.begin();
 * writer.ensure(cborHeadBytesMax);
 * writer.arrayHead(2);
 * writer.bytes(new Uint8Array([1, 2]));
 * writer.bytes(new Uint8Array(0));
 * writer.finish(); // 82 42 01 02 40
 * ```
 */
export class CborWriter {
  readonly #bufferBytes: number;
  #buffer: Uint8Array;
  #view: DataView;
  /** Where the item being written starts in `#buffer`, and the next byte to write. */
  #start = 0;
  #position = 0;
  /**
   * The last text written and where its encoding starts in `#buffer` (-1: none), so that the
   * same string again (an entry type, a member id) is copied instead of encoded. Bytes of finished
   * items are never written again; `abandon` and a fresh buffer forget it.
   */
  #lastText = '';
  #lastTextAt = -1;
  #lastTextBytes = 0;

  /** `bufferBytes`: size of each fresh buffer (a positive integer number of bytes). */
  constructor(bufferBytes: number = cborWriterBufferBytesDefault) {
    if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1) {
      throw new RangeError(`Invalid CborWriter bufferBytes: ${bufferBytes}, expected at least 1`);
    }
    this.#bufferBytes = bufferBytes;
    this.#buffer = new Uint8Array(bufferBytes);
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** Start an item at the next free byte. */
  begin(): void {
    this.#start = this.#position;
  }

  /** End the item: its bytes, a view of the buffer that is never written again. */
  finish(): Uint8Array {
    const item = this.#buffer.subarray(this.#start, this.#position);
    this.#start = this.#position;
    return item;
  }

  /** Drop the item being written: its bytes will be written over by the next one. */
  abandon(): void {
    this.#position = this.#start;
    this.#lastTextAt = -1;
  }

  /** Make room for `bytes` more bytes, moving the item so far to a fresh buffer when full. */
  ensure(bytes: number): void {
    // The check alone, small enough to be inlined into every write; the move is out of line.
    if (this.#position + bytes > this.#buffer.length) this.#grow(bytes);
  }

  #grow(bytes: number): void {
    const used = this.#position - this.#start;
    const next = new Uint8Array(Math.max(this.#bufferBytes, 2 * (used + bytes)));
    next.set(this.#buffer.subarray(this.#start, this.#position));
    // The old buffer is left as it is: items returned earlier still point into it.
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
    this.#lastTextAt = -1;
    this.#start = 0;
    this.#position = used;
  }

  /** One byte (an initial byte such as `0xf5`, true). No room is made. */
  byte(value: number): void {
    this.#buffer[this.#position++] = value;
  }

  /** Bytes already encoded (a key's head and text, a template), copied as is. No room made. */
  raw(bytes: Uint8Array): void {
    // Locals, not fields: the loop then runs without reloading them per byte. Short copies (keys)
    // are faster as a loop than as `set`.
    const target = this.#buffer;
    const at = this.#position;
    const length = bytes.length;
    for (let i = 0; i < length; i++) target[at + i] = bytes[i]!;
    this.#position = at + length;
  }

  /**
   * A head of major type `major` (0 unsigned, 2 bytes, 3 text, 4 array, 5 map, ...) with the
   * shortest encoding of `argument`, an integer from 0 to 2^32 - 1, as cbor-x writes lengths. No
   * room is made.
   */
  head(major: number, argument: number): void {
    const buffer = this.#buffer;
    let position = this.#position;
    const base = major << 5;
    if (argument < 0x18) buffer[position++] = base | argument;
    else if (argument < 0x100) {
      buffer[position++] = base | 24;
      buffer[position++] = argument;
    } else if (argument < 0x10000) {
      buffer[position++] = base | 25;
      buffer[position++] = argument >> 8;
      buffer[position++] = argument & 0xff;
    } else {
      buffer[position++] = base | 26;
      this.#view.setUint32(position, argument);
      position += 4;
    }
    this.#position = position;
  }

  /**
   * A number as cbor-x writes it: an unsigned integer when it is one below 2^32, else a float64
   * (which holds every integer below 2^53 exactly). Negative numbers take other encodings in
   * cbor-x: `false`, nothing written. No room is made (`cborNumberBytesMax`).
   */
  number(value: number): boolean {
    if (value >>> 0 === value) {
      this.head(0, value);
      return true;
    }
    if (value < 0) return false;
    const at = this.#position;
    this.#buffer[at] = 0xfb;
    this.#view.setFloat64(at + 1, value);
    this.#position = at + 9;
    return true;
  }

  /** A byte string: head and bytes. Makes its own room. */
  bytes(value: Uint8Array): void {
    const length = value.byteLength;
    this.ensure(length + cborHeadBytesMax);
    this.head(2, length);
    const at = this.#position;
    this.#buffer.set(value, at);
    this.#position = at + length;
  }

  /**
   * ASCII text, as cbor-x writes it (its bytes after the shortest head). Other text is refused with
   * `false`, and the item is then broken: `abandon` it. Makes its own room.
   */
  text(value: string): boolean {
    const length = value.length;
    this.ensure(length + cborHeadBytesMax);
    const target = this.#buffer;
    if (value === this.#lastText && this.#lastTextAt >= 0) {
      const from = this.#lastTextAt;
      const to = this.#position;
      const bytes = this.#lastTextBytes;
      for (let i = 0; i < bytes; i++) target[to + i] = target[from + i]!;
      this.#position = to + bytes;
      return true;
    }
    const at = this.#position;
    this.head(3, length);
    const from = this.#position;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) return false;
      target[from + i] = code;
    }
    this.#position = from + length;
    this.#lastText = value;
    this.#lastTextAt = at;
    this.#lastTextBytes = this.#position - at;
    return true;
  }

  /** An array head for `count` items. No room is made. */
  arrayHead(count: number): void {
    this.head(4, count);
  }

  /**
   * Open a map whose pairs are counted while they are written: its one-byte head is reserved, to
   * be filled by `closeMap`. Returns the head's offset in the item, which stays right when
   * `ensure` moves the item. Makes its own room.
   */
  openMap(): number {
    this.ensure(1);
    this.#position += 1;
    return this.#position - 1 - this.#start;
  }

  /**
   * Fill the head reserved by `openMap` at `offset` for `count` pairs; `false` when there are
   * more than `cborMapKeysMax` (a longer head would be needed), and the item is then broken.
   */
  closeMap(offset: number, count: number): boolean {
    if (count > cborMapKeysMax) return false;
    this.#buffer[this.#start + offset] = 0xa0 | count;
    return true;
  }
}
