/**
 * The message codec: CBOR (cbor-x, pure-JS subpaths) plus a valibot schema. Outbound messages are
 * encoded with one reusable `Encoder`; inbound bodies pass three gates before anything reaches the
 * core:
 *
 * 1. `scanCbor`: a structural scan that allocates nothing. It refuses what cbor-x would turn into
 *    something other than plain data: tags (BigInt, Date, records, typed arrays), integers beyond
 *    2^53 (BigInt), indefinite lengths (where a lone break byte lives), nesting deeper than
 *    `nestingDepthMax` (deep recursion), counts larger than the bytes could hold, trailing bytes.
 * 2. cbor-x `Decoder.decode`, options spelled out.
 * 3. valibot `safeParse` against the schema: the schema is the single source of the type.
 *
 * Raft messages take a fast path that gives the same results (`test/transport/raft-codec.test.ts`
 * proves it on valid, mutated and random bodies): `encodeRaftMessage` writes the bytes cbor-x would,
 * and `decodeRaftMessage` decodes and validates a body in one walk when the schema is
 * `RaftMessageSchema` or `AcceptorInboundSchema`, handing anything it is not sure of to the three
 * gates above, so hostile input meets the same checks and gets the same refusal reasons.
 *
 * @example
 * ```ts
 * import { RaftMessageSchema } from '../base/messages.ts';
 * import { MessageCodec } from './codec.ts';
 * const codec = new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 });
 * const body = codec.encode({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commitIndex: 0, readSeq: 0 });
 * const result = codec.decode(body); // { ok: true, value: { type: 'heartbeat', ... } }
 * ```
 * @module
 */
import { Decoder } from 'cbor-x/decode';
import { Encoder } from 'cbor-x/encode';
import * as v from 'valibot';
import { RaftMessageSchema } from '../base/messages.ts';
import { ClientRequestSchema } from '../base/client-protocol.ts';
import { AcceptorInboundSchema } from './handshake.ts';
import { decodeRaftMessage, raftDecodeDepth } from './raft-decode.ts';
import { decodeCommandRequest } from './command-decode.ts';
import { encodeRaftMessage } from './raft-encode.ts';

/** Schemas whose values are exactly what `decodeRaftMessage` accepts for a Raft message body. */
const raftSchemas: ReadonlySet<unknown> = new Set([RaftMessageSchema, AcceptorInboundSchema]);

/** The outcome of decoding one frame body: the validated message, or why it was refused. */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Codec settings; see `TransportOptionsSchema` for the defaults the transports use. */
export type CodecOptions = {
  /** Deepest container nesting accepted (the top-level message is depth 1). */
  nestingDepthMax: number;
  /**
   * Whether Raft message bodies, and client `command` requests, may take their hand-written
   * decoders (default true). Off, every body goes through scan + cbor-x + valibot: the reference
   * the fast paths are tested against.
   */
  raftFastPath?: boolean;
};

/**
 * The cbor-x options, written out so that a library default changing cannot change the wire.
 * Exported for the tests that hold the hand-written codec to cbor-x.
 *
 * @example
 * ```ts
 * const encoder = new Encoder(cborOptions); // what MessageCodec falls back to
 * ```
 */
export const cborOptions = {
  useRecords: false, // plain CBOR maps; records are a cbor-x extension other peers do not speak
  mapsAsObjects: true, // maps decode to plain objects, which the schemas describe
  tagUint8Array: false, // Uint8Array as a plain byte string, not tag 64
  copyBuffers: true, // decoded byte strings own their memory instead of pinning the whole frame
  bundleStrings: false,
  structuredClone: false,
  variableMapSize: true, // smallest map header for the key count
  useFloat32: 0, // never round numbers to float32
  largeBigIntToFloat: false,
  int64AsNumber: false, // a 64-bit integer above 2^53 is refused by scanCbor before decoding
  useTimestamp32: false,
  encodeUndefinedAsNil: false,
  pack: false,
  sequential: false,
} as const;

/**
 * Check that `bytes` holds exactly one CBOR data item made of plain data, no deeper than
 * `depthMax`. Returns `null` or the reason it is refused. Iterative: hostile nesting cannot blow
 * the stack.
 *
 * @example
 * ```ts
 * scanCbor(new Uint8Array([0xff]), 16); // 'CBOR break outside an indefinite-length item'
 * scanCbor(new Uint8Array([0xa0]), 16); // null (an empty map)
 * ```
 */
export function scanCbor(bytes: Uint8Array, depthMax: number): string | null {
  const end = bytes.byteLength;
  // remaining[d] counts the items still expected at depth d; depth 0 is the top-level item.
  const remaining: number[] = [1];
  let depth = 0;
  let pos = 0;
  while (true) {
    while (remaining[depth] === 0) {
      if (depth === 0) return pos === end ? null : `Trailing bytes after CBOR item: ${end - pos}`;
      depth -= 1;
    }
    if (pos >= end) return 'Truncated CBOR';
    const initial = bytes[pos++]!;
    const major = initial >>> 5;
    const info = initial & 0x1f;
    let argument: number;
    if (info < 24) argument = info;
    else if (info === 24) {
      if (pos + 1 > end) return 'Truncated CBOR';
      argument = bytes[pos]!;
      pos += 1;
    } else if (info === 25) {
      if (pos + 2 > end) return 'Truncated CBOR';
      argument = (bytes[pos]! << 8) | bytes[pos + 1]!;
      pos += 2;
    } else if (info === 26) {
      if (pos + 4 > end) return 'Truncated CBOR';
      argument = ((bytes[pos]! << 24) >>> 0) + (bytes[pos + 1]! << 16) + (bytes[pos + 2]! << 8) +
        bytes[pos + 3]!;
      pos += 4;
    } else if (info === 27) {
      if (pos + 8 > end) return 'Truncated CBOR';
      const high = ((bytes[pos]! << 24) >>> 0) + (bytes[pos + 1]! << 16) + (bytes[pos + 2]! << 8) +
        bytes[pos + 3]!;
      const low = ((bytes[pos + 4]! << 24) >>> 0) + (bytes[pos + 5]! << 16) +
        (bytes[pos + 6]! << 8) +
        bytes[pos + 7]!;
      pos += 8;
      // Above 2^53 cbor-x yields a BigInt (integers) or no representable length: refuse both.
      if (major !== 7 && high >= 0x20_0000) return 'Integer beyond 2^53 in CBOR';
      argument = high * 0x1_0000_0000 + low;
    } else if (info === 31) {
      if (major === 7) return 'CBOR break outside an indefinite-length item';
      return 'Indefinite-length CBOR item';
    } else return `Reserved CBOR additional information: ${info}`;

    remaining[depth]! -= 1;
    switch (major) {
      case 0:
      case 1:
        break;
      case 2:
      case 3:
        if (argument > end - pos) return 'Truncated CBOR';
        pos += argument;
        break;
      case 4:
      case 5: {
        const items = major === 4 ? argument : argument * 2;
        if (items > end - pos) return 'Truncated CBOR'; // every item takes at least one byte
        if (items === 0) break;
        if (depth + 1 >= depthMax) return `CBOR nested too deep: limit ${depthMax}`;
        depth += 1;
        remaining[depth] = items;
        break;
      }
      case 6:
        return `CBOR tag not allowed: ${argument}`;
      default: // major 7: simple values and floats
        if (info < 20 || (info > 23 && info < 25) || (info < 24 && argument > 23)) {
          return `CBOR simple value not allowed: ${argument}`;
        }
    }
  }
}

/**
 * Encodes messages to CBOR bodies and decodes bodies to messages validated against `schema`.
 * One instance per connection or per transport: the encoder and decoder are reused, never shared
 * across concurrent encodes (JavaScript is single-threaded, so this holds).
 *
 * @example
 * ```ts
 * const codec = new MessageCodec(v.object({ type: v.literal('ping') }), { nestingDepthMax: 8 });
 * codec.decode(codec.encode({ type: 'ping' })); // { ok: true, value: { type: 'ping' } }
 * ```
 */
export class MessageCodec<S extends v.GenericSchema> {
  readonly #schema: S;
  readonly #nestingDepthMax: number;
  readonly #encoder = new Encoder(cborOptions);
  readonly #decoder = new Decoder(cborOptions);
  /** Whether Raft message bodies may take the fast path (the schema admits exactly them). */
  readonly #raftFastPath: boolean;
  /** Whether client `command` requests may take their fast path (the schema is the client's). */
  readonly #commandFastPath: boolean;

  constructor(schema: S, options: CodecOptions) {
    this.#schema = schema;
    this.#nestingDepthMax = options.nestingDepthMax;
    // Deeper nesting than the limit allows would be refused by scanCbor: keep the slow path then.
    this.#raftFastPath = options.raftFastPath !== false && raftSchemas.has(schema) &&
      raftDecodeDepth < options.nestingDepthMax;
    // A command request nests one level (its map): any depth limit of at least 2 admits it.
    this.#commandFastPath = options.raftFastPath !== false &&
      (schema as unknown) === ClientRequestSchema && options.nestingDepthMax >= 2;
  }

  /**
   * Encode one message: the bytes cbor-x writes, by the hand encoder for Raft messages. The
   * returned bytes stay valid after later encodes (both encoders move on to fresh space), so they
   * can sit in a write queue.
   */
  encode(message: v.InferOutput<S>): Uint8Array {
    return encodeRaftMessage(message) ?? this.#encoder.encode(message);
  }

  /** Decode and validate one frame body; never throws on bad input. */
  decode(body: Uint8Array): DecodeResult<v.InferOutput<S>> {
    // A plain Uint8Array view, not a Buffer: byte strings are copied out with `slice`, which on a
    // Buffer goes through the species constructor and is several times slower on Node.
    const view = Object.getPrototypeOf(body) === Uint8Array.prototype
      ? body
      : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (this.#raftFastPath) {
      const message = decodeRaftMessage(view);
      // The schema admits every Raft message, unchanged: this is its output for `body`.
      if (message !== null) return { ok: true, value: message as v.InferOutput<S> };
    } else if (this.#commandFastPath) {
      const request = decodeCommandRequest(view);
      // What scanCbor, cbor-x and the schema make of such a body (command-decode.ts).
      if (request !== null) return { ok: true, value: request as v.InferOutput<S> };
    }
    const refused = scanCbor(view, this.#nestingDepthMax);
    if (refused !== null) return { ok: false, reason: `Invalid CBOR: ${refused}` };
    let value: unknown;
    try {
      value = this.#decoder.decode(view);
    } catch (error) {
      return { ok: false, reason: `Invalid CBOR: ${(error as Error).message}` };
    }
    const result = v.safeParse(this.#schema, value);
    if (result.success) return { ok: true, value: result.output };
    return { ok: false, reason: `Invalid message: ${describeIssue(result.issues[0])}` };
  }
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  const path = issue.path?.map((item) => String(item.key)).join('.') ?? '';
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
