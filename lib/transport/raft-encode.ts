/**
 * A hand-written CBOR encoder for Raft messages, byte for byte what cbor-x's `Encoder` writes with
 * the transport's options (`useRecords: false`, `variableMapSize: true`, `tagUint8Array: false`,
 * `useFloat32: 0`), several times faster: cbor-x spends microseconds per entry on `Object.keys`,
 * `Object.values` and its extension lookup for byte strings, which capped the transport near 100k
 * entries/s.
 *
 * It encodes only values it can reproduce exactly, and returns `null` for anything else so that the
 * caller falls back to cbor-x: plain objects (prototype `Object.prototype`) whose keys are all Raft
 * field names (raft-fields.ts), each holding the kind of value that field has
 * in the schemas: ASCII text, a number that is not negative, a boolean, a byte string, the entries
 * or the members list. Keys are written in the object's own order, as cbor-x does, so no key order
 * is assumed. Whether the message is valid is not its concern: the receiver validates.
 * `test/transport/raft-codec.test.ts` holds it to cbor-x's output on thousands of random messages.
 *
 * @example
 * ```ts
 * import { encodeRaftMessage } from './raft-encode.ts';
 * const body = encodeRaftMessage({ type: 'timeoutNow', from: 'a', to: 'b', term: 3 });
 * // body: a4 64 'type' 6a 'timeoutNow' 64 'from' 61 'a' 62 'to' 61 'b' 64 'term' 03
 * encodeRaftMessage({ type: 'x', nested: new Map() }); // null: not a Raft field, use cbor-x
 * ```
 * @module
 */
import { assert } from '../base/errors.ts';
import { FieldKind, messageFieldKinds } from './raft-fields.ts';

/** Size of each shared buffer that bodies are encoded into. */
const encodeBufferBytes = 256 * 1024;
/** Most bytes a key and a number or head may take together: a 24-byte key, a 9-byte float. */
const primitiveBytesMax = 40;
/** Most keys an entry has (type, index, term, timeMs, data or members). */
const entryKeysMax = 5;

let buffer = new Uint8Array(encodeBufferBytes);
let view = new DataView(buffer.buffer);
/** Where the body being encoded starts in `buffer`, and the next byte to write. */
let start = 0;
let position = 0;

/** A key's CBOR text head and ASCII bytes, computed once (keys are short ASCII, asserted). */
function keyHead(key: string): Uint8Array {
  assert(key.length < 24 && /^[\x20-\x7e]*$/.test(key), 'raft-encode: keys are short ASCII');
  return Uint8Array.from([0x60 + key.length, ...Array.from(key, (c) => c.charCodeAt(0))]);
}

/** Each message key's head bytes and value kind, looked up once per key. */
const messageKeys = new Map<string, { head: Uint8Array; kind: FieldKind }>(
  Object.entries(messageFieldKinds).map(([key, kind]) => [key, { head: keyHead(key), kind }]),
);
const typeKey = keyHead('type');
const indexKey = keyHead('index');
const termKey = keyHead('term');
const timeMsKey = keyHead('timeMs');
const dataKey = keyHead('data');
const membersKey = keyHead('members');
const idKey = keyHead('id');
const addressKey = keyHead('address');
const clientAddressKey = keyHead('clientAddress');

/** Make room for `bytes` more bytes, moving the body so far to a fresh buffer when full. */
function ensure(bytes: number): void {
  if (position + bytes <= buffer.length) return;
  const used = position - start;
  const next = new Uint8Array(Math.max(encodeBufferBytes, 2 * (used + bytes)));
  next.set(buffer.subarray(start, position));
  // The old buffer is left as it is: bodies returned earlier still point into it.
  buffer = next;
  lastTextAt = -1;
  view = new DataView(buffer.buffer);
  start = 0;
  position = used;
}

function writeKey(bytes: Uint8Array): void {
  // Locals, not the module's `let`s: the loop then runs without reloading them per byte.
  const target = buffer;
  const at = position;
  const length = bytes.length;
  for (let i = 0; i < length; i++) target[at + i] = bytes[i]!;
  position = at + length;
}

/** A major-type head with the shortest argument, as cbor-x writes lengths (`argument` < 2^32). */
function writeHead(major: number, argument: number): void {
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
    view.setUint32(position, argument);
    position += 4;
  }
}

/**
 * A number as cbor-x writes it: an unsigned integer when it fits 32 bits, else a float64 (which
 * holds every integer below 2^53 exactly). Negative numbers take other paths in cbor-x: refused.
 */
function writeNumber(value: unknown): boolean {
  if (typeof value !== 'number') return false;
  if (value >>> 0 === value) writeHead(0, value);
  else if (value < 0) return false;
  else {
    buffer[position++] = 0xfb;
    view.setFloat64(position, value);
    position += 8;
  }
  return true;
}

/**
 * The last text written and where its encoding starts in `buffer` (-1: none), for repeats. Bytes
 * of finished bodies are never written again; a failed body or a new buffer forgets it.
 */
let lastText = '';
let lastTextAt = -1;
let lastTextBytes = 0;

/**
 * ASCII text (cbor-x writes it as its bytes after the shortest head); other text is refused. The
 * same string again (an entry type, a member id) is copied from where it was last written.
 */
function writeText(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const length = value.length;
  ensure(length + 5);
  if (value === lastText && lastTextAt >= 0) {
    const target = buffer;
    const from = lastTextAt;
    const to = position;
    const bytes = lastTextBytes;
    for (let i = 0; i < bytes; i++) target[to + i] = target[from + i]!;
    position = to + bytes;
    return true;
  }
  const at = position;
  writeHead(3, length);
  const target = buffer;
  const from = position;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0x7f) return false;
    target[from + i] = code;
  }
  position = from + length;
  lastText = value;
  lastTextAt = at;
  lastTextBytes = position - at;
  return true;
}

function writeBytes(value: unknown): boolean {
  if (!(value instanceof Uint8Array)) return false;
  const length = value.byteLength;
  ensure(length + 5);
  writeHead(2, length);
  buffer.set(value, position);
  position += length;
  return true;
}

function writeBool(value: unknown): boolean {
  if (typeof value !== 'boolean') return false;
  buffer[position++] = value ? 0xf5 : 0xf4;
  return true;
}

/** A plain object as cbor-x sees it: its own enumerable keys are exactly what `for in` yields. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null &&
    Object.getPrototypeOf(value) === Object.prototype;
}

/** A plain array (cbor-x writes other iterables as indefinite-length arrays). */
function isPlainArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && value.constructor === Array;
}

/**
 * Open a map: its count is patched by `closeMap` (fewer than 24 keys here, so one byte). Returns
 * the head's offset from `start`, which stays right when `ensure` moves the body.
 */
function openMap(): number {
  ensure(1);
  position += 1;
  return position - 1 - start;
}

function closeMap(at: number, keyCount: number): boolean {
  if (keyCount >= 0x18) return false;
  buffer[start + at] = 0xa0 | keyCount;
  return true;
}

/** The keys of a command entry in the schema's order, and its bytes up to the index value. */
const commandKeys = ['type', 'index', 'term', 'timeMs', 'data'];
const commandHead = Uint8Array.from([
  0xa5,
  0x64,
  0x74,
  0x79,
  0x70,
  0x65,
  0x67,
  0x63,
  0x6f,
  0x6d,
  0x6d,
  0x61,
  0x6e,
  0x64,
  0x65,
  0x69,
  0x6e,
  0x64,
  0x65,
  0x78,
]);

/**
 * A command entry whose keys are in the schema's order (as the core and the storage build them)
 * is written from a template; `false` when the entry is laid out otherwise or a value is off.
 */
function writeCommandEntry(entry: Record<string, unknown>): boolean {
  let keyIndex = 0;
  for (const key in entry) {
    if (key !== commandKeys[keyIndex]) return false;
    keyIndex += 1;
  }
  if (keyIndex !== commandKeys.length || entry['type'] !== 'command') return false;
  const data = entry['data'];
  if (!(data instanceof Uint8Array)) return false;
  ensure(entryKeysMax * primitiveBytesMax + data.byteLength);
  const at = position;
  writeKey(commandHead);
  if (!writeNumber(entry['index'])) return (position = at), false;
  writeKey(termKey);
  if (!writeNumber(entry['term'])) return (position = at), false;
  writeKey(timeMsKey);
  if (!writeNumber(entry['timeMs'])) return (position = at), false;
  writeKey(dataKey);
  writeHead(2, data.byteLength);
  buffer.set(data, position);
  position += data.byteLength;
  return true;
}

function writeEntry(entry: unknown): boolean {
  if (!isPlainObject(entry)) return false;
  if (writeCommandEntry(entry)) return true;
  const at = openMap();
  let keyCount = 0;
  // Room for every key and number of an entry at once; text and bytes make their own room.
  ensure(entryKeysMax * primitiveBytesMax);
  for (const key in entry) {
    const value = entry[key];
    if (keyCount === entryKeysMax) return false;
    let written: boolean;
    switch (key) {
      case 'type':
        writeKey(typeKey);
        written = writeText(value);
        break;
      case 'index':
        writeKey(indexKey);
        written = writeNumber(value);
        break;
      case 'term':
        writeKey(termKey);
        written = writeNumber(value);
        break;
      case 'timeMs':
        writeKey(timeMsKey);
        written = writeNumber(value);
        break;
      case 'data':
        writeKey(dataKey);
        written = writeBytes(value);
        break;
      case 'members':
        writeKey(membersKey);
        written = writeMembers(value);
        break;
      default:
        return false;
    }
    if (!written) return false;
    keyCount += 1;
  }
  return closeMap(at, keyCount);
}

function writeMember(member: unknown): boolean {
  if (!isPlainObject(member)) return false;
  const at = openMap();
  let keyCount = 0;
  for (const key in member) {
    ensure(primitiveBytesMax);
    if (key === 'id') writeKey(idKey);
    else if (key === 'type') writeKey(typeKey);
    else if (key === 'address') writeKey(addressKey);
    else if (key === 'clientAddress') writeKey(clientAddressKey);
    else return false;
    if (!writeText(member[key])) return false;
    keyCount += 1;
  }
  return closeMap(at, keyCount);
}

function writeArray(value: unknown, writeItem: (item: unknown) => boolean): boolean {
  if (!isPlainArray(value)) return false;
  const length = value.length;
  ensure(primitiveBytesMax);
  writeHead(4, length);
  for (let i = 0; i < length; i++) if (!writeItem(value[i])) return false;
  return true;
}

function writeEntries(value: unknown): boolean {
  return writeArray(value, writeEntry);
}

function writeMembers(value: unknown): boolean {
  return writeArray(value, writeMember);
}

function writeField(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case FieldKind.text:
      return writeText(value);
    case FieldKind.natural:
      return writeNumber(value);
    case FieldKind.bool:
      return writeBool(value);
    case FieldKind.bytes:
      return writeBytes(value);
    case FieldKind.entries:
      return writeEntries(value);
    default:
      return writeMembers(value);
  }
}

function writeMessage(message: unknown): boolean {
  if (!isPlainObject(message)) return false;
  const at = openMap();
  let keyCount = 0;
  for (const key in message) {
    const field = messageKeys.get(key);
    if (field === undefined) return false;
    ensure(primitiveBytesMax);
    writeKey(field.head);
    if (!writeField(field.kind, message[key])) return false;
    keyCount += 1;
  }
  return closeMap(at, keyCount);
}

/** True when `Object.prototype` has no enumerable keys, so `for in` sees own keys only. */
function prototypeClean(): boolean {
  for (const _ in Object.prototype) return false;
  return true;
}

/**
 * Encode `message` exactly as cbor-x would, or return `null` (nothing is kept) when it holds
 * anything outside the subset described in the module comment. The result is a view of a shared
 * buffer that is never written again, so it stays valid in a write queue.
 *
 * @example
 * ```ts
 * const body = encodeRaftMessage(message) ?? cborEncoder.encode(message);
 * ```
 */
export function encodeRaftMessage(message: unknown): Uint8Array | null {
  if (!prototypeClean()) return null;
  start = position;
  if (!writeMessage(message)) {
    // The bytes after `start` will be written over: forget the text remembered there.
    position = start;
    lastTextAt = -1;
    return null;
  }
  const body = buffer.subarray(start, position);
  start = position;
  return body;
}
