/**
 * A raw client-port connection for tests that must control every byte: send a request frame all
 * at once or one byte at a time, or nothing at all, and see each frame the server sends back and
 * when the server closed the connection.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import {
  type ClientRequest,
  ClientRequestSchema,
  type ClientResponse,
  ClientResponseSchema,
} from '../../lib/base/client-protocol.ts';
import { parseAddress } from '../../lib/base/address.ts';
import { MessageCodec } from '../../lib/transport/codec.ts';
import { FrameDecoder } from '../../lib/transport/frame.ts';

const requests = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });
const responses = new MessageCodec(ClientResponseSchema, { nestingDepthMax: 64 });

/** The bytes of one framed client request. */
export function requestFrame(request: ClientRequest): Uint8Array {
  const body = requests.encode(request);
  const frame = Buffer.alloc(4 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  frame.set(body, 4);
  return frame;
}

/**
 * One raw connection to a client port.
 *
 * @example
 * ```ts
 * const raw = await RawConnection.open('127.0.0.1:8001');
 * raw.write(requestFrame({ type: 'status', id: 1, session: 0, sequence: 0 }));
 * await waitFor('an answer', () => raw.frames[0], 1_000);
 * raw.destroy();
 * ```
 */
export class RawConnection {
  readonly socket: net.Socket;
  /** Every frame the server sent, decoded and validated. */
  readonly frames: ClientResponse[] = [];
  /** When the connection was established, and when it closed (-1 while open). */
  readonly openedMs: number;
  closedMs = -1;
  readonly #decoder: FrameDecoder;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.openedMs = Date.now();
    this.#decoder = new FrameDecoder(1 << 20, (body) => {
      const result = responses.decode(body);
      if (!result.ok) throw new Error(`Server sent an invalid frame: ${result.reason}`);
      this.frames.push(result.value);
    });
    socket.on('data', (chunk: Buffer) => {
      const error = this.#decoder.push(chunk);
      if (error !== null) throw new Error(`Server sent a bad frame: ${error}`);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.closedMs < 0) this.closedMs = Date.now();
    });
  }

  static open(address: string): Promise<RawConnection> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedMs >= 0;
  }

  write(bytes: Uint8Array): void {
    if (!this.closed) this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
