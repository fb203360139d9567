/**
 * The codec boundary between the log and the state machine. Raft stores and replicates commands
 * as opaque bytes; the executor decodes each committed command's bytes with a `CommandCodec`
 * before handing it to the state machine, and clients encode with the same codec.
 *
 * The default codec is CBOR through cbor-x's pure-JavaScript subpaths (the package root loads a
 * native extension that crashes Bun and Deno). Its options are spelled out so that a cbor-x
 * upgrade that changes a default cannot change what members decode.
 *
 * @module
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';

/**
 * Turns commands into log bytes and back. `decode` must be a pure function of the bytes (every
 * member decodes the same entry), and it may throw: a command that fails to decode becomes an
 * `ApplicationError` for its index only. A decoded value comes from the network, by way of a
 * client: the state machine validates it before trusting its shape.
 *
 * @example
 * ```ts
 * const json: CommandCodec<unknown> = {
 *   encode: (c) => new TextEncoder().encode(JSON.stringify(c)),
 *   decode: (b) => JSON.parse(new TextDecoder().decode(b)),
 * };
 * ```
 */
export interface CommandCodec<Command> {
  encode(command: Command): Uint8Array;
  decode(bytes: Uint8Array): Command;
}

/**
 * The cbor-x options every CBOR codec of this layer uses. Plain maps decode to plain objects,
 * byte strings to `Uint8Array`s that own their memory (`copyBuffers`, so a decoded value never
 * pins or aliases the log's buffer), and nothing depends on encoder state shared between
 * messages (no records, no bundled strings, no structured clone).
 */
export const cborOptions = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  structuredClone: false,
  bundleStrings: false,
  pack: false,
  variableMapSize: true,
  copyBuffers: true,
  useFloat32: 0, // FLOAT32_OPTIONS.NEVER: a number decodes to exactly what was encoded
  alwaysUseFloat: false,
  largeBigIntToFloat: false,
  useTimestamp32: false,
  encodeUndefinedAsNil: false,
  useSelfDescribedHeader: false,
  useToJSON: false,
} as const;

/**
 * The default `CommandCodec`: CBOR with `cborOptions`. Decoding yields `unknown`-shaped data
 * typed as `Command`; validate it in the state machine.
 *
 * Not canonical: equal values may encode to different bytes across versions, so never compare or
 * hash encoded commands.
 *
 * @example
 * ```ts
 * const codec = cborCodec<{ op: string }>();
 * codec.decode(codec.encode({ op: 'size' })); // { op: 'size' }
 * ```
 */
export function cborCodec<Command>(): CommandCodec<Command> {
  const encoder = new Encoder(cborOptions);
  const decoder = new Decoder(cborOptions);
  return {
    encode: (command) => encoder.encode(command),
    decode: (bytes) => decoder.decode(bytes) as Command,
  };
}
