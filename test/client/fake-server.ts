/**
 * A fake member for client tests: a TCP listener on 127.0.0.1 that decodes every request frame
 * and lets the test decide what, if anything, to answer: hang (a paused process, as its client
 * sees it), answer, send a `closing` notice, or drop the connection.
 *
 * @module
 */
import * as net from 'node:net';
import { Buffer } from 'node:buffer';
import {
  type ClientRequest,
  ClientRequestSchema,
  ClientResponseSchema,
} from '../../lib/base/client-protocol.ts';
import { formatAddress } from '../../lib/base/address.ts';
import { MessageCodec } from '../../lib/transport/codec.ts';
import { FrameDecoder } from '../../lib/transport/frame.ts';

const requests = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });
const responses = new MessageCodec(ClientResponseSchema, { nestingDepthMax: 64 });

/** One accepted connection of the fake. */
export type FakeConnection = {
  /** Its number, from 0, in the order accepted. */
  index: number;
  socket: net.Socket;
  /** Send one framed message (anything the client's response schema accepts). */
  send(message: unknown): void;
};

/** What the fake does with each request; the default hangs (never answers, not even pings). */
export type Behaviour = (request: ClientRequest, connection: FakeConnection) => void;

/**
 * See the module comment.
 *
 * @example
 * ```ts
 * const fake = await FakeServer.start(); // hangs
 * const client = await RaftClient.connect({ servers: [fake.address] });
 * await fake.close();
 * ```
 */
export class FakeServer {
  readonly address: string;
  /** Every request received, with the connection it came on. */
  readonly received: { request: ClientRequest; connection: number }[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  behaviour: Behaviour;

  private constructor(server: net.Server, behaviour: Behaviour) {
    this.#server = server;
    this.behaviour = behaviour;
    this.address = formatAddress('127.0.0.1', (server.address() as net.AddressInfo).port);
  }

  static async start(behaviour: Behaviour = () => {}): Promise<FakeServer> {
    let fake: FakeServer | null = null;
    let accepted = 0;
    const server = net.createServer((socket) => fake!.#accept(socket, accepted++));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    fake = new FakeServer(server, behaviour);
    return fake;
  }

  #accept(socket: net.Socket, index: number): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    const connection: FakeConnection = {
      index,
      socket,
      send: (message) => {
        const body = responses.encode(message as never);
        const frame = Buffer.alloc(4 + body.byteLength);
        frame.writeUInt32BE(body.byteLength, 0);
        frame.set(body, 4);
        socket.write(frame);
      },
    };
    const decoder = new FrameDecoder(1 << 20, (body) => {
      const result = requests.decode(body);
      if (!result.ok) throw new Error(`Client sent an invalid request: ${result.reason}`);
      this.received.push({ request: result.value, connection: index });
      this.behaviour(result.value, connection);
    });
    socket.on('data', (chunk: Buffer) => {
      const error = decoder.push(chunk);
      if (error !== null) throw new Error(`Client sent a bad frame: ${error}`);
    });
  }

  /** Requests of `type` received, in order. */
  of(type: ClientRequest['type']): { request: ClientRequest; connection: number }[] {
    return this.received.filter((r) => r.request.type === type);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
