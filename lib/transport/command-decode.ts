/**
 * A fast path for the client port's most frequent frame, a `command` request: one CBOR map of
 * exactly `type` ('command'), `id`, `session`, `sequence` (naturals) and `data` (a byte string),
 * in any key order. It returns what `MessageCodec` would for such a body (scanCbor, cbor-x, then
 * valibot's `ClientRequestSchema`): a plain object with the keys in the schema's order and `data`
 * a plain `Uint8Array` that owns its memory. Anything else, valid or not, returns `null` and takes
 * the general path, which decides and gives the reason; so this path can only accept what that one
 * accepts. On a busy leader the general path cost about 9 µs per command (cbor-x's decoder and
 * valibot's variant, about 15 % of the leader's profile at 256 commands in flight).
 *
 * `test/transport/command-decode.test.ts` holds it to the general path on valid, odd, corrupted
 * and random bodies.
 *
 * @example
 * ```ts
 * import { decodeCommandRequest } from './command-decode.ts';
 * decodeCommandRequest(body); // { type: 'command', id, session, sequence, data } or null
 * ```
 * @module
 */
import type { ClientRequest } from '../base/client-protocol.ts';

/** The text heads and bytes of the five keys, and of the value 'command'. */
const ascii = (text: string) => [0x60 + text.length, ...Array.from(text, (c) => c.charCodeAt(0))];
const keyBytes = ['type', 'id', 'session', 'sequence', 'data'].map((k) =>
  Uint8Array.from(ascii(k))
);
const commandBytes = Uint8Array.from(ascii('command'));
const keyType = 0;
const keyData = 4;

// The body being read and the read position (one decode at a time: JavaScript is single-threaded).
let src: Uint8Array = new Uint8Array(0);
let pos = 0;
let end = 0;

/** Whether the next bytes are `expected`; if so they are consumed. */
function skip(expected: Uint8Array): boolean {
  const length = expected.length;
  if (length > end - pos) return false;
  for (let i = 0; i < length; i++) if (src[pos + i] !== expected[i]) return false;
  pos += length;
  return true;
}

/** Which of the five keys comes next (consumed), or -1. */
function readKey(): number {
  for (let k = 0; k < keyBytes.length; k++) if (skip(keyBytes[k]!)) return k;
  return -1;
}

/**
 * A natural as cbor-x decodes one that valibot's `NaturalSchema` accepts: an unsigned integer
 * with a head of up to 4 bytes, or a float64 holding a safe integer ≥ 0 (not -0); -1 for anything
 * else, left to the general path (8-byte integers, float16 and float32 included).
 */
function readNatural(): number {
  if (pos >= end) return -1;
  const initial = src[pos]!;
  if (initial < 0x18) {
    pos += 1;
    return initial;
  }
  let bytes: number;
  if (initial === 0x18) bytes = 1;
  else if (initial === 0x19) bytes = 2;
  else if (initial === 0x1a) bytes = 4;
  else if (initial === 0xfb) {
    if (pos + 9 > end) return -1;
    const value = new DataView(src.buffer, src.byteOffset + pos + 1, 8).getFloat64(0);
    if (!Number.isSafeInteger(value) || value < 0 || Object.is(value, -0)) return -1;
    pos += 9;
    return value;
  } else return -1;
  if (pos + 1 + bytes > end) return -1;
  let value = 0;
  for (let i = 1; i <= bytes; i++) value = value * 256 + src[pos + i]!;
  pos += 1 + bytes;
  return value;
}

/** A definite-length byte string, copied out; null for anything else. */
function readBytes(): Uint8Array | null {
  if (pos >= end) return null;
  const initial = src[pos]!;
  if (initial >>> 5 !== 2) return null;
  const info = initial & 0x1f;
  let length: number;
  let head = 1;
  if (info < 24) length = info;
  else if (info === 24 && pos + 2 <= end) {
    length = src[pos + 1]!;
    head = 2;
  } else if (info === 25 && pos + 3 <= end) {
    length = (src[pos + 1]! << 8) | src[pos + 2]!;
    head = 3;
  } else if (info === 26 && pos + 5 <= end) {
    length = ((src[pos + 1]! << 24) >>> 0) + (src[pos + 2]! << 16) + (src[pos + 3]! << 8) +
      src[pos + 4]!;
    head = 5;
  } else return null;
  if (length > end - pos - head) return null;
  const data = src.slice(pos + head, pos + head + length);
  pos += head + length;
  return data;
}

/**
 * The `command` request `body` holds, exactly as the general path would decode and validate it,
 * or `null` when the body is anything else (see the module comment). `body` is a plain
 * `Uint8Array` (not a Buffer: `slice` must copy into a plain array).
 */
export function decodeCommandRequest(body: Uint8Array): ClientRequest | null {
  src = body;
  pos = 0;
  end = body.length;
  const request = readRequest();
  src = new Uint8Array(0); // the body is not pinned until the next decode
  return request;
}

function readRequest(): ClientRequest | null {
  // A map of exactly five pairs: the head 0xa5.
  if (end < 1 || src[0] !== 0xa5) return null;
  pos = 1;
  let seen = 0;
  let id = -1;
  let session = -1;
  let sequence = -1;
  let data: Uint8Array | null = null;
  for (let pair = 0; pair < 5; pair++) {
    const key = readKey();
    if (key < 0 || (seen & (1 << key)) !== 0) return null;
    seen |= 1 << key;
    if (key === keyType) {
      if (!skip(commandBytes)) return null;
    } else if (key === keyData) {
      data = readBytes();
      if (data === null) return null;
    } else {
      const value = readNatural();
      if (value < 0) return null;
      if (key === 1) id = value;
      else if (key === 2) session = value;
      else sequence = value;
    }
  }
  // Trailing bytes after the map: the general path decides.
  if (pos !== end) return null;
  return { type: 'command', id, session, sequence, data: data! };
}
