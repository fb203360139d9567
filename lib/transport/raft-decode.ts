/**
 * A hand-written decoder and validator for Raft message bodies: one walk over the CBOR builds the
 * message and checks every field as `RaftMessageSchema` would (types, naturals below 2^53, string
 * lengths, picklists, strict objects, the entries and members limits), several times faster than
 * scan + cbor-x + valibot. On Node most of that saving is byte strings: cbor-x copies each one out
 * with its own `slice`, about 1 µs apiece there; here the body is copied once and every byte string
 * is a view of that copy.
 *
 * It is a recogniser, not a full decoder: it returns `null` for anything it is not certain the slow
 * path accepts, and the caller then runs scan + cbor-x + valibot, which accept it or give the
 * refusal reason. So it accepts only the plain encodings a CBOR encoder writes for a valid message:
 * definite-length maps with known ASCII text keys (any order, no repeats), text values in ASCII,
 * unsigned integers up to 32 bits or float64 naturals, `true`/`false`, byte strings, arrays. What
 * `scanCbor` refuses it never accepts, by construction: it reads no tags, no indefinite lengths,
 * no 64-bit integers (BigInt), checks every length against the bytes left, nests at most
 * `raftDecodeDepth` containers (the codec uses it only when `nestingDepthMax` allows that), and
 * requires the item to end exactly at the end of the body.
 * `test/transport/raft-codec.test.ts` holds it to the slow path on valid, mutated and random bodies.
 *
 * Byte strings are views of one copy of the body: a kept `data` keeps that copy (the whole frame
 * body, about 1.5 times the payload) alive, never the socket's buffer.
 *
 * @example
 * ```ts
 * import { decodeRaftMessage } from './raft-decode.ts';
 * const message = decodeRaftMessage(body); // a RaftMessage, or null: use the slow path
 * ```
 * @module
 */
import {
  appendEntriesCountMax,
  configurationMembersMax,
  type Entry,
  type Member,
  memberAddressLengthMax,
  memberIdLengthMax,
  type MemberType,
  type RaftMessage,
} from '../base/messages.ts';
import { assert } from '../base/errors.ts';
import {
  entryFieldKinds,
  FieldKind,
  type FieldName,
  headFields,
  memberFields,
  messageFieldKinds,
  messageFields,
} from './raft-fields.ts';

/** Deepest nesting of non-empty containers this decoder accepts (message, entries, entry, members, member). */
export const raftDecodeDepth = 5;

/** Each message field's number: fields 0-30 have their bit in the low mask, 31-61 in the high one. */
const F = Object.fromEntries(Object.keys(messageFieldKinds).map((name, i) => [name, i])) as Record<
  FieldName,
  number
>;
/** Bits per mask word: 31, so that every mask stays a positive small integer. */
const maskBits = 31;
assert(
  Object.keys(F).length < 2 * maskBits,
  'raft-decode: every field has a bit in one of two 31-bit masks',
);
/** Each field's kind, by field number. */
const kindOf: FieldKind[] = Object.values(messageFieldKinds);

const messageTypes = Object.keys(messageFields) as RaftMessage['type'][];
/** Each type's fields as [low mask, high mask]. */
const messageMasks: [number, number][] = messageTypes.map((type) => {
  let low = 0;
  let high = 0;
  for (const name of [...headFields, ...messageFields[type]]) {
    if (F[name] < maskBits) low |= 1 << F[name];
    else high |= 1 << (F[name] - maskBits);
  }
  return [low, high];
});

/** Known words (keys, literals) by byte length, for matching without building a string. */
type WordTable = { bytes: Uint8Array; code: number }[][];
function wordTable(words: readonly string[]): WordTable {
  const table: WordTable = [];
  words.forEach((word, code) => {
    (table[word.length] ??= []).push({
      bytes: Uint8Array.from(word, (c) => c.charCodeAt(0)),
      code,
    });
  });
  return table;
}
const messageKeys = wordTable(Object.keys(messageFieldKinds));
const messageTypeWords = wordTable(messageTypes);
const entryKeys = wordTable(Object.keys(entryFieldKinds));
const entryTypeNames = ['noop', 'command', 'config'] as const;
const entryTypeWords = wordTable(entryTypeNames);
const memberKeys = wordTable(memberFields);
const memberTypeNames: readonly MemberType[] = ['INACTIVE', 'RESERVE', 'PASSIVE', 'ACTIVE'];
const memberTypeWords = wordTable(memberTypeNames);

// The body being decoded, the read position, and the lazily made copy byte strings view.
let src: Uint8Array = new Uint8Array(0);
let pos = 0;
let end = 0;
let copy: Uint8Array | null = null;
/** A view of `src` for float64 values, made when the first one is read. */
let srcView: DataView | null = null;
/** Field values of the message being decoded, by field number. */
const values: unknown[] = [];

/** Read a head of major type `major` with a definite argument below 2^32; -1 otherwise. */
function readHead(major: number): number {
  if (pos >= end) return -1;
  const initial = src[pos]!;
  if (initial >>> 5 !== major) return -1;
  const info = initial & 0x1f;
  if (info < 24) {
    pos += 1;
    return info;
  }
  if (info === 24) {
    if (pos + 2 > end) return -1;
    pos += 2;
    return src[pos - 1]!;
  }
  if (info === 25) {
    if (pos + 3 > end) return -1;
    pos += 3;
    return (src[pos - 2]! << 8) | src[pos - 1]!;
  }
  if (info === 26) {
    if (pos + 5 > end) return -1;
    pos += 5;
    return ((src[pos - 4]! << 24) >>> 0) + (src[pos - 3]! << 16) + (src[pos - 2]! << 8) +
      src[pos - 1]!;
  }
  return -1;
}

/** A natural: an unsigned integer head, or a float64 holding a safe integer ≥ 0; -1 otherwise. */
function readNatural(): number {
  if (pos < end && src[pos] === 0xfb) {
    if (pos + 9 > end) return -1;
    srcView ??= new DataView(src.buffer, src.byteOffset, src.byteLength);
    const value = srcView.getFloat64(pos + 1);
    if (!Number.isSafeInteger(value) || value < 0) return -1;
    pos += 9;
    return value;
  }
  return readHead(0);
}

/** 1 for true, 0 for false, -1 otherwise. */
function readBool(): number {
  if (pos >= end) return -1;
  const initial = src[pos++]!;
  return initial === 0xf5 ? 1 : initial === 0xf4 ? 0 : -1;
}

/** A text string matched against `table`: the word's code, or -1 for anything else. */
function readWord(table: WordTable): number {
  const length = readHead(3);
  if (length < 0 || length > end - pos) return -1;
  const candidates = table[length];
  if (candidates === undefined) return -1;
  const bytesIn = src;
  const at = pos;
  for (let c = 0; c < candidates.length; c++) {
    const bytes = candidates[c]!.bytes;
    let i = 0;
    while (i < length && bytesIn[at + i] === bytes[i]) i++;
    if (i === length) {
      pos += length;
      return candidates[c]!.code;
    }
  }
  return -1;
}

/** Whether the next bytes are `expected`; if so they are consumed. */
function skipExpected(expected: Uint8Array): boolean {
  // Locals, not the module's `let`s: the loop then runs without reloading them per byte.
  const bytesIn = src;
  const at = pos;
  const length = expected.length;
  if (length > end - at) return false;
  for (let i = 0; i < length; i++) if (bytesIn[at + i] !== expected[i]) return false;
  pos = at + length;
  return true;
}

/** Recently decoded texts (member ids repeat in every message), to skip rebuilding the string. */
const textCache: { bytes: Uint8Array; text: string }[] = [];
const textCacheSize = 4;
let textCacheNext = 0;

/** ASCII text of `lengthMin`..`lengthMax` characters; null otherwise. */
function readText(lengthMin: number, lengthMax: number): string | null {
  const length = readHead(3);
  if (length < lengthMin || length > lengthMax || length > end - pos) return null;
  for (const cached of textCache) {
    const bytes = cached.bytes;
    if (bytes.length !== length) continue;
    let i = 0;
    while (i < length && src[pos + i] === bytes[i]) i++;
    if (i === length) {
      pos += length;
      return cached.text;
    }
  }
  let text = '';
  for (let i = 0; i < length; i++) {
    const code = src[pos + i]!;
    if (code > 0x7f) return null;
    text += String.fromCharCode(code);
  }
  if (length <= memberIdLengthMax) {
    textCache[textCacheNext] = { bytes: src.slice(pos, pos + length), text };
    textCacheNext = (textCacheNext + 1) % textCacheSize;
  }
  pos += length;
  return text;
}

/** A byte string, as a view of the body's one copy; null otherwise. */
function readBytes(): Uint8Array | null {
  const length = readHead(2);
  if (length < 0 || length > end - pos) return null;
  copy ??= src.slice();
  pos += length;
  // `slice` made a fresh buffer, so the copy starts at offset 0 of it.
  return new Uint8Array(copy.buffer, pos - length, length);
}

function readMember(): Member | null {
  const keyCount = readHead(5);
  if (keyCount < 2 || keyCount > 4) return null;
  let id: string | null = null;
  let type: MemberType | null = null;
  let address: string | null = null;
  let clientAddress: string | null = null;
  for (let i = 0; i < keyCount; i++) {
    switch (readWord(memberKeys)) {
      case 0:
        if (id !== null) return null;
        id = readText(1, memberIdLengthMax);
        if (id === null) return null;
        break;
      case 1: {
        if (type !== null) return null;
        const code = readWord(memberTypeWords);
        if (code < 0) return null;
        type = memberTypeNames[code]!;
        break;
      }
      case 2:
        if (address !== null) return null;
        address = readText(0, memberAddressLengthMax);
        if (address === null) return null;
        break;
      case 3:
        if (clientAddress !== null) return null;
        clientAddress = readText(0, memberAddressLengthMax);
        if (clientAddress === null) return null;
        break;
      default:
        return null;
    }
  }
  if (id === null || type === null) return null;
  // The schema's key order, as valibot builds it; absent optional keys stay absent.
  const member: Member = { id, type };
  if (address !== null) member.address = address;
  if (clientAddress !== null) member.clientAddress = clientAddress;
  return member;
}

function readMembers(): Member[] | null {
  const count = readHead(4);
  if (count < 0 || count > configurationMembersMax || count > end - pos) return null;
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    const member = readMember();
    if (member === null) return null;
    members.push(member);
  }
  return members;
}

const entryTypeBit = 1 << 0;
const entryHeadMask = 0b1111; // type, index, term, timeMs
const entryDataBit = 1 << 4;
const entryMembersBit = 1 << 5;

/** Text heads and bytes of `words`, back to back: what an encoder writes for those keys. */
function textBytes(...words: string[]): Uint8Array {
  return Uint8Array.from(
    words.flatMap((word) => [0x60 + word.length, ...Array.from(word, (c) => c.charCodeAt(0))]),
  );
}
const commandHead = Uint8Array.from([0xa5, ...textBytes('type', 'command', 'index')]);
const termKey = textBytes('term');
const timeMsKey = textBytes('timeMs');
const dataKey = textBytes('data');

/**
 * A command entry laid out as the encoders write it (keys in the schema's order), checked against
 * that layout byte for byte; null, with nothing consumed, when it is laid out otherwise.
 */
function readCommandEntry(): Entry | null {
  const at = pos;
  if (skipExpected(commandHead)) {
    const index = readNatural();
    if (index >= 0 && skipExpected(termKey)) {
      const term = readNatural();
      if (term >= 0 && skipExpected(timeMsKey)) {
        const timeMs = readNatural();
        if (timeMs >= 0 && skipExpected(dataKey)) {
          const data = readBytes();
          if (data !== null) return { type: 'command', index, term, timeMs, data };
        }
      }
    }
  }
  pos = at;
  return null;
}

function readEntry(): Entry | null {
  const command = readCommandEntry();
  if (command !== null) return command;
  const keyCount = readHead(5);
  if (keyCount < 4 || keyCount > 5) return null;
  let seen = 0;
  let type = -1;
  let index = -1;
  let term = -1;
  let timeMs = -1;
  let data: Uint8Array | null = null;
  let members: Member[] | null = null;
  for (let i = 0; i < keyCount; i++) {
    const key = readWord(entryKeys);
    if (key < 0 || (seen & (1 << key)) !== 0) return null;
    seen |= 1 << key;
    switch (key) {
      case 0:
        type = readWord(entryTypeWords);
        if (type < 0) return null;
        break;
      case 1:
        index = readNatural();
        if (index < 0) return null;
        break;
      case 2:
        term = readNatural();
        if (term < 0) return null;
        break;
      case 3:
        timeMs = readNatural();
        if (timeMs < 0) return null;
        break;
      case 4:
        data = readBytes();
        if (data === null) return null;
        break;
      default:
        members = readMembers();
        if (members === null) return null;
    }
  }
  if ((seen & entryHeadMask) !== entryHeadMask || (seen & entryTypeBit) === 0) return null;
  const rest = seen & ~entryHeadMask;
  if (type === 1 && rest === entryDataBit) {
    return { type: 'command', index, term, timeMs, data: data! };
  }
  if (type === 0 && rest === 0) return { type: 'noop', index, term, timeMs };
  if (type === 2 && rest === entryMembersBit) {
    return { type: 'config', index, term, timeMs, members: members! };
  }
  return null;
}

function readEntries(): Entry[] | null {
  const count = readHead(4);
  if (count < 0 || count > appendEntriesCountMax || count > end - pos) return null;
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const entry = readEntry();
    if (entry === null) return null;
    entries.push(entry);
  }
  return entries;
}

/** Read one field's value into `values`; false when it is not what the schema wants. */
function readField(field: number): boolean {
  let value: unknown;
  switch (kindOf[field]) {
    case FieldKind.text:
      value = field === F.type ? readWord(messageTypeWords) : readText(1, memberIdLengthMax) ?? -1;
      break;
    case FieldKind.natural:
      value = readNatural();
      break;
    case FieldKind.bool: {
      const bool = readBool();
      value = bool < 0 ? -1 : bool === 1;
      break;
    }
    case FieldKind.bytes:
      value = readBytes() ?? -1;
      break;
    case FieldKind.entries:
      value = readEntries() ?? -1;
      break;
    default:
      value = readMembers() ?? -1;
  }
  if (value === -1) return false;
  values[field] = value;
  return true;
}

function readMessage(): RaftMessage | null {
  const keyCount = readHead(5);
  if (keyCount < 4 || keyCount > 12) return null;
  let seen = 0;
  let seenHigh = 0;
  for (let i = 0; i < keyCount; i++) {
    const field = readWord(messageKeys);
    if (field < 0) return null;
    if (field < maskBits) {
      if ((seen & (1 << field)) !== 0) return null;
      seen |= 1 << field;
    } else {
      const bit = 1 << (field - maskBits);
      if ((seenHigh & bit) !== 0) return null;
      seenHigh |= bit;
    }
    if (!readField(field)) return null;
  }
  const typeCode = values[F.type] as number;
  if ((seen & 1) === 0) return null;
  const mask = messageMasks[typeCode]!;
  if (mask[0] !== seen || mask[1] !== seenHigh) return null;
  return buildMessage(messageTypes[typeCode]!);
}

/** The message in the schema's key order, as valibot outputs it (every field was seen). */
function buildMessage(type: RaftMessage['type']): RaftMessage {
  const message: Record<string, unknown> = {
    type,
    from: values[F.from],
    to: values[F.to],
    term: values[F.term],
  };
  for (const name of messageFields[type]) message[name] = values[F[name]];
  return message as RaftMessage;
}

/**
 * Decode and validate `body` as a Raft message, or return `null` when the slow path must decide.
 * `body` must be a plain `Uint8Array` (not a Buffer), so that byte strings are plain too; it is
 * not kept: byte strings view a copy.
 *
 * @example
 * ```ts
 * const message = decodeRaftMessage(body) ?? slowDecode(body);
 * ```
 */
export function decodeRaftMessage(body: Uint8Array): RaftMessage | null {
  src = body;
  pos = 0;
  end = body.byteLength;
  copy = null;
  srcView = null;
  let message = readMessage();
  if (pos !== end) message = null;
  src = new Uint8Array(0);
  copy = null;
  srcView = null;
  values.fill(undefined);
  return message;
}
