/**
 * A hand-written CBOR encoder for Raft messages, byte for byte what cbor-x's `Encoder` writes with
 * the transport's options (`useRecords: false`, `variableMapSize: true`, `tagUint8Array: false`,
 * `useFloat32: 0`), several times faster: cbor-x spends microseconds per entry on `Object.keys`,
 * `Object.values` and its extension lookup for byte strings, which capped the transport near 100k
 * entries/s. The bytes are written by the project's one CBOR writer (`lib/base/cbor-writer.ts`),
 * which the storage's entry encoder shares.
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
import { cborHeadBytesMax, CborWriter } from '../base/cbor-writer.ts';
import { assert } from '../base/errors.ts';
import { FieldKind, messageFieldKinds } from './raft-fields.ts';

/** Size of each shared buffer that bodies are encoded into. */
const encodeBufferBytes = 256 * 1024;
/** Most bytes a key and a number or head may take together: a 24-byte key, a 9-byte float. */
const primitiveBytesMax = 40;
/** Most keys an entry has (type, index, term, timeMs, data or members). */
const entryKeysMax = 5;
const writer = new CborWriter(encodeBufferBytes);

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

/** A number as cbor-x writes it (see `CborWriter.number`); anything else is refused. */
function writeNumber(value: unknown): boolean {
  return typeof value === 'number' && writer.number(value);
}

/** ASCII text; other text and other values are refused. */
function writeText(value: unknown): boolean {
  return typeof value === 'string' && writer.text(value);
}

function writeBytes(value: unknown): boolean {
  if (!(value instanceof Uint8Array)) return false;
  writer.bytes(value);
  return true;
}

function writeBool(value: unknown): boolean {
  if (typeof value !== 'boolean') return false;
  writer.byte(value ? 0xf5 : 0xf4);
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

/** The keys of a command entry in the schema's order, and its bytes up to the index value. */
const commandKeys = ['type', 'index', 'term', 'timeMs', 'data'];
const commandHead = Uint8Array.from([
  0xa5,
  ...typeKey,
  ...[0x67, ...Array.from('command', (c) => c.charCodeAt(0))],
  ...indexKey,
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
  const index = entry['index'];
  const term = entry['term'];
  const timeMs = entry['timeMs'];
  // What `writer.number` refuses, checked before anything is written: a refusal leaves the body
  // as it was, for the general path to decide.
  if (
    typeof index !== 'number' || index < 0 || typeof term !== 'number' || term < 0 ||
    typeof timeMs !== 'number' || timeMs < 0
  ) return false;
  writer.ensure(entryKeysMax * primitiveBytesMax + data.byteLength);
  writer.raw(commandHead);
  writer.number(index);
  writer.raw(termKey);
  writer.number(term);
  writer.raw(timeMsKey);
  writer.number(timeMs);
  writer.raw(dataKey);
  writer.bytes(data);
  return true;
}

function writeEntry(entry: unknown): boolean {
  if (!isPlainObject(entry)) return false;
  if (writeCommandEntry(entry)) return true;
  const at = writer.openMap();
  let keyCount = 0;
  for (const key in entry) {
    const value = entry[key];
    if (keyCount === entryKeysMax) return false;
    // Room for this key and a number, made per key: a byte string or members list written before
    // uses up any room made ahead (text and bytes make their own).
    writer.ensure(primitiveBytesMax);
    let written: boolean;
    switch (key) {
      case 'type':
        writer.raw(typeKey);
        written = writeText(value);
        break;
      case 'index':
        writer.raw(indexKey);
        written = writeNumber(value);
        break;
      case 'term':
        writer.raw(termKey);
        written = writeNumber(value);
        break;
      case 'timeMs':
        writer.raw(timeMsKey);
        written = writeNumber(value);
        break;
      case 'data':
        writer.raw(dataKey);
        written = writeBytes(value);
        break;
      case 'members':
        writer.raw(membersKey);
        written = writeMembers(value);
        break;
      default:
        return false;
    }
    if (!written) return false;
    keyCount += 1;
  }
  return writer.closeMap(at, keyCount);
}

function writeMember(member: unknown): boolean {
  if (!isPlainObject(member)) return false;
  const at = writer.openMap();
  let keyCount = 0;
  for (const key in member) {
    writer.ensure(primitiveBytesMax);
    if (key === 'id') writer.raw(idKey);
    else if (key === 'type') writer.raw(typeKey);
    else if (key === 'address') writer.raw(addressKey);
    else if (key === 'clientAddress') writer.raw(clientAddressKey);
    else return false;
    if (!writeText(member[key])) return false;
    keyCount += 1;
  }
  return writer.closeMap(at, keyCount);
}

function writeArray(value: unknown, writeItem: (item: unknown) => boolean): boolean {
  if (!isPlainArray(value)) return false;
  const length = value.length;
  writer.ensure(cborHeadBytesMax);
  writer.arrayHead(length);
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
  const at = writer.openMap();
  let keyCount = 0;
  for (const key in message) {
    const field = messageKeys.get(key);
    if (field === undefined) return false;
    writer.ensure(primitiveBytesMax);
    writer.raw(field.head);
    if (!writeField(field.kind, message[key])) return false;
    keyCount += 1;
  }
  return writer.closeMap(at, keyCount);
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
  writer.begin();
  if (!writeMessage(message)) {
    // The bytes written so far will be written over, and the text remembered there forgotten.
    writer.abandon();
    return null;
  }
  return writer.finish();
}
