/**
 * The transport layer: framing, codec, connections, the TCP and in-memory transports.
 *
 * @example
 * ```ts
 * import { TcpTransport } from './mod.ts';
 * const transport = await TcpTransport.start({ cluster: 'c1', member: 'a', port: 0 });
 * await transport.close();
 * ```
 * @module
 */
export type { Transport, TransportCounters } from './transport.ts';
export { laneOf } from './transport.ts';
export { parseAddress } from '../base/address.ts';
export { TcpTransport } from './tcp.ts';
export {
  controlBytesReserved,
  parseTransportOptions,
  stderrLogger,
  type TransportLogger,
  type TransportOptions,
  type TransportOptionsInput,
  TransportOptionsSchema,
} from './options.ts';
export { type CodecOptions, type DecodeResult, MessageCodec, scanCbor } from './codec.ts';
export {
  frameBytes,
  FrameDecoder,
  frameHeaderBytes,
  frameLengthMax,
  writeFrames,
} from './frame.ts';
export { FramedConnection, type Lane, writeBatchBytesMax } from './connection.ts';
export {
  checkHello,
  type Hello,
  HelloSchema,
  protocolVersion,
  type Refused,
  RefusedSchema,
} from './handshake.ts';
