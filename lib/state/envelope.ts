/**
 * The envelope of every command entry in the log: what kind of entry it is (a plain command, a
 * command of a client session, a session's registration, keep-alive or unregistration) and the
 * session fields, in front of the command's own bytes. A compact binary header (a kind byte, then
 * unsigned LEB128 numbers) rather than CBOR, because it is read for every entry applied.
 *
 * Layout, by kind:
 * - `plain` (0): the command bytes;
 * - `command` (1): session, sequence, then the command bytes;
 * - `register` (2): the session timeout in milliseconds;
 * - `keepAlive` (3): session, the highest sequence whose output the client has, the highest event
 *   index it has handled;
 * - `unregister` (4): session.
 *
 * @example
 * ```ts
 * const bytes = encodeEnvelope({ kind: 'command', session: 7, sequence: 3, data: commandBytes });
 * decodeEnvelope(bytes); // { kind: 'command', session: 7, sequence: 3, data: ... }
 * ```
 * @module
 */

/** A decoded envelope. */
export type Envelope =
  | { kind: 'plain'; data: Uint8Array }
  | { kind: 'command'; session: number; sequence: number; data: Uint8Array }
  | { kind: 'register'; timeoutMs: number }
  | { kind: 'keepAlive'; session: number; commandAck: number; eventAck: number }
  | { kind: 'unregister'; session: number };

const kindByte = { plain: 0, command: 1, register: 2, keepAlive: 3, unregister: 4 } as const;

/** Bytes of the longest LEB128 encoding of a safe integer. */
const varintBytesMax = 8;

function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** Encode an envelope; numbers must be safe integers at least 0. */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const numbers = e.kind === 'plain'
    ? []
    : e.kind === 'command'
    ? [e.session, e.sequence]
    : e.kind === 'register'
    ? [e.timeoutMs]
    : e.kind === 'keepAlive'
    ? [e.session, e.commandAck, e.eventAck]
    : [e.session];
  const data = e.kind === 'plain' || e.kind === 'command' ? e.data : null;
  let size = 1 + (data?.byteLength ?? 0);
  for (const n of numbers) size += varintBytes(n);
  const out = new Uint8Array(size);
  out[0] = kindByte[e.kind];
  let at = 1;
  for (const n of numbers) at = writeVarint(out, at, n);
  if (data !== null) out.set(data, at);
  return out;
}

/** Why bytes are not an envelope. */
export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

/**
 * Decode an envelope. Throws `EnvelopeError` for bytes that are not one (every member decodes the
 * same entry the same way, so the error is deterministic).
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.byteLength === 0) throw new EnvelopeError('Empty command entry');
  // The reader's bytes and position live in the module (decoding never nests) and it reads with
  // module functions, not closures made per call: under tsx (esbuild's keepNames) every closure
  // made here cost a `__name` call per command, 2.5 % of a leader's CPU at 256 in flight.
  source = bytes;
  at = 1;
  try {
    switch (bytes[0]) {
      case 0:
        return { kind: 'plain', data: bytes.subarray(at) };
      case 1: {
        const session = readVarint();
        const sequence = readVarint();
        return { kind: 'command', session, sequence, data: bytes.subarray(at) };
      }
      case 2:
        return { kind: 'register', timeoutMs: readVarint() };
      case 3: {
        const session = readVarint();
        const commandAck = readVarint();
        const eventAck = readVarint();
        return { kind: 'keepAlive', session, commandAck, eventAck };
      }
      case 4:
        return { kind: 'unregister', session: readVarint() };
      default:
        throw new EnvelopeError(`Unknown command envelope kind ${bytes[0]}`);
    }
  } finally {
    source = noBytes;
  }
}

const noBytes = new Uint8Array(0);
/** The envelope `decodeEnvelope` is reading, and the position of its next byte. */
let source: Uint8Array = noBytes;
let at = 0;

/** Read the varint at `at` in `source`. */
function readVarint(): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < varintBytesMax; i++) {
    if (at >= source.byteLength) throw new EnvelopeError('Truncated command envelope');
    const b = source[at++]!;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return n;
    scale *= 128;
  }
  throw new EnvelopeError('Command envelope number too long');
}
