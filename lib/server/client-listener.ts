/**
 * The server's client port: framed, validated client requests (see `lib/base/client-protocol.ts`),
 * answered on the same connection. A non-leader answers commands and leader reads with
 * NOT_LEADER and the leader's id and client address, or NO_LEADER when it knows none; both are
 * retryable. A bad frame closes that one connection with a logged reason.
 *
 * @module
 */
import * as net from 'node:net';
import { clearInterval, setInterval } from 'node:timers';
import {
  type ClientErrorCode,
  type ClientRequest,
  ClientRequestSchema,
  type ClientResponse,
} from '../base/client-protocol.ts';
import { EdgeraftError, NotLeaderError } from '../base/errors.ts';
import { MessageCodec } from '../transport/codec.ts';
import { FramedConnection } from '../transport/connection.ts';
import { controlBytesReserved } from '../transport/options.ts';
import { formatAddress, parseAddress } from '../base/address.ts';
import { cborCodec } from '../state/codec.ts';
import type { ServerLogger } from './options.ts';

/** What the listener needs from its server. */
export type ClientHandler = {
  proposeBytes(data: Uint8Array): Promise<{ index: number; output: unknown }>;
  query(query: unknown, consistency: 'linearizable' | 'lease' | 'sequential'): Promise<unknown>;
  status(): unknown;
  leaderHint(): { leaderId: string | null; leaderAddress: string | null };
};

type ListenerOptions = {
  address: string;
  frameBytesMax: number;
  connectionsMax: number;
  requestsPerConnectionMax: number;
  logger: ServerLogger;
};

/** A client frame must complete within this time once started. */
const clientFrameDeadlineMs = 30_000;
const queryCodec = cborCodec<unknown>();

/** See the module comment. */
export class ClientListener {
  readonly #o: ListenerOptions;
  readonly #server: net.Server;
  readonly #codec: MessageCodec<typeof ClientRequestSchema>;
  readonly #connections = new Set<FramedConnection<ClientRequest>>();
  readonly #busy = new Map<FramedConnection<ClientRequest>, number>();
  readonly #sweep: ReturnType<typeof setInterval>;
  #handler: ClientHandler | null = null;
  #address = '';

  private constructor(o: ListenerOptions) {
    this.#o = o;
    this.#codec = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });
    this.#server = net.createServer((socket) => this.#accept(socket));
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.#connections) c.checkDeadline(now);
    }, 1000);
    this.#sweep.unref();
  }

  static async start(o: ListenerOptions): Promise<ClientListener> {
    const listener = new ClientListener(o);
    const { host, port } = parseAddress(o.address, { portZero: true });
    await new Promise<void>((resolve, reject) => {
      listener.#server.once('error', reject);
      listener.#server.listen(port, host, () => resolve());
    });
    const bound = listener.#server.address() as net.AddressInfo;
    listener.#address = formatAddress(host, bound.port);
    return listener;
  }

  get address(): string {
    return this.#address;
  }

  serve(handler: ClientHandler): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const c of this.#connections) c.close(null, 'info');
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    if (this.#connections.size >= this.#o.connectionsMax) {
      this.#o.logger.warn(
        `refusing client ${socket.remoteAddress}:${socket.remotePort}: ${this.#connections.size} connections, limit ${this.#o.connectionsMax}`,
      );
      socket.destroy();
      return;
    }
    const connection = new FramedConnection<ClientRequest>(socket, this.#codec, {
      frameBytesMax: this.#o.frameBytesMax,
      inflightBytesMax: this.#o.frameBytesMax * 4 + controlBytesReserved,
      frameDeadlineMs: clientFrameDeadlineMs,
      logger: this.#o.logger,
      label: `client ${socket.remoteAddress}:${socket.remotePort}`,
      onMessage: (request, c) => this.#onRequest(request, c),
      onClose: (_reason, c) => {
        this.#connections.delete(c);
        this.#busy.delete(c);
      },
    });
    this.#connections.add(connection);
  }

  #onRequest(request: ClientRequest, c: FramedConnection<ClientRequest>): void {
    const handler = this.#handler;
    if (handler === null) return;
    const busy = this.#busy.get(c) ?? 0;
    if (busy >= this.#o.requestsPerConnectionMax) {
      this.#reply(
        c,
        errorResponse(
          request.id,
          'PROPOSAL_DROPPED',
          `Too many requests in flight: ${busy}, limit ${this.#o.requestsPerConnectionMax}`,
          handler,
        ),
      );
      return;
    }
    this.#busy.set(c, busy + 1);
    const done = (response: ClientResponse) => {
      this.#busy.set(c, (this.#busy.get(c) ?? 1) - 1);
      this.#reply(c, response);
    };
    const fail = (error: unknown) => done(responseFor(request.id, error, handler));
    switch (request.type) {
      case 'command':
        handler.proposeBytes(request.data).then(
          (r) => done({ type: 'ok', id: request.id, index: r.index, output: r.output }),
          fail,
        );
        return;
      case 'query': {
        let q: unknown;
        try {
          q = queryCodec.decode(request.data);
        } catch (error) {
          fail(new Error(`Query is not valid CBOR: ${(error as Error).message}`));
          return;
        }
        handler.query(q, request.consistency).then(
          (output) => done({ type: 'ok', id: request.id, index: 0, output }),
          fail,
        );
        return;
      }
      case 'status':
        done({ type: 'ok', id: request.id, index: 0, output: handler.status() });
        return;
    }
  }

  #reply(c: FramedConnection<ClientRequest>, response: ClientResponse): void {
    if (!c.send(response, 'control')) {
      this.#o.logger.debug(`reply ${response.id} dropped: ${c.label} closed or full`);
    }
  }
}

function errorResponse(
  id: number,
  code: ClientErrorCode,
  message: string,
  handler: ClientHandler,
): ClientResponse {
  const hint = handler.leaderHint();
  return {
    type: 'error',
    id,
    code,
    message: message.slice(0, 4096),
    leaderId: hint.leaderId,
    leaderAddress: hint.leaderAddress,
  };
}

/** Map an error to the wire: typed library errors keep their code, anything else is INTERNAL_ERROR. */
function responseFor(id: number, error: unknown, handler: ClientHandler): ClientResponse {
  if (error instanceof NotLeaderError) {
    return errorResponse(
      id,
      error.leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      error.message,
      handler,
    );
  }
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof EdgeraftError || typeof code === 'string') {
    const known: Record<string, ClientErrorCode> = {
      PROPOSAL_DROPPED: 'PROPOSAL_DROPPED',
      LEADERSHIP_TRANSFER: 'LEADERSHIP_TRANSFER',
      TIMEOUT: 'TIMEOUT',
      SHUTDOWN: 'SHUTDOWN',
      APPLICATION_ERROR: 'APPLICATION_ERROR',
      QUERY_ERROR: 'QUERY_ERROR',
      CONFIG_CHANGE_IN_PROGRESS: 'COMMAND_ERROR',
    };
    const mapped = known[String(code)];
    if (mapped !== undefined) return errorResponse(id, mapped, message, handler);
  }
  return errorResponse(id, 'INTERNAL_ERROR', message, handler);
}
