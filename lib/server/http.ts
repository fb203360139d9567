/**
 * The operations port: plain HTTP on `node:http` (the same code on Node, Bun and Deno) serving
 * `GET /metrics` (Prometheus text format), `GET /health` and `GET /ready` (the probes etcd and
 * Kubernetes use). Any other path is 404, any method but GET and HEAD 405.
 *
 * Nothing here can be held by a client: every response closes its connection (`Connection:
 * close`; a scraper or a probe opens one per request), request bodies are never read (a request
 * that has one is answered and its connection closed), headers are bounded
 * (`httpHeaderBytesMax`), at most `connectionsMax` connections are open at once (more are closed
 * on arrival), and a connection still open `requestDeadlineMs` after it was accepted is closed,
 * whatever it is doing (one sweep timer enforces it, since the runtimes differ in how they honour
 * `node:http`'s own timeouts, which are set too).
 *
 * @example
 * ```ts
 * const ops = await OpsHttpServer.start({
 *   address: '127.0.0.1:0', connectionsMax: 64, requestDeadlineMs: 10_000, logger,
 *   routes: { metrics: () => text, health: () => ({ ok: true }), ready: () => ({ ok: true }) },
 * });
 * console.log(ops.address); // 127.0.0.1:40123
 * await ops.close();
 * ```
 * @module
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import { clearInterval, setInterval } from 'node:timers';
import { formatAddress, parseAddress } from '../base/address.ts';
import type { Logger } from '../base/logger.ts';
import { metricsContentType } from './metrics.ts';

/** Largest request head (request line and headers) read, in bytes; larger is answered 431. */
export const httpHeaderBytesMax = 16 * 1024;

/** A probe's verdict: ok, or why not (the 503 body's `reason`). */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** What the port answers with; called once per request. */
export type OpsRoutes = {
  /** The exposition text, or null when there is nothing to show yet (503). */
  metrics(): string | null;
  health(): ProbeResult;
  ready(): ProbeResult;
};

/** The settings of `OpsHttpServer.start`; the server passes its validated `metrics*` options. */
export type OpsHttpOptions = {
  /** `host:port` to listen on; port 0 picks one (see `address`). */
  address: string;
  /** Connections open at once; one more is closed on arrival. */
  connectionsMax: number;
  /** A connection is closed this many milliseconds after it was accepted, answered or not. */
  requestDeadlineMs: number;
  routes: OpsRoutes;
  logger: Logger;
};

/** See the module comment. Create with `OpsHttpServer.start`. */
export class OpsHttpServer {
  readonly #o: OpsHttpOptions;
  readonly #server: http.Server;
  /** Open connections and when each was accepted (`Date.now()`). */
  readonly #sockets = new Map<net.Socket, number>();
  readonly #sweep: ReturnType<typeof setInterval>;
  #address = '';
  /** Requests answered, and connections closed at the limit or the deadline, since start. */
  requestCount = 0;
  refusedCount = 0;
  expiredCount = 0;

  private constructor(o: OpsHttpOptions) {
    this.#o = o;
    this.#server = http.createServer(
      { maxHeaderSize: httpHeaderBytesMax },
      (req, res) => this.#answer(req, res),
    );
    this.#server.headersTimeout = o.requestDeadlineMs;
    this.#server.requestTimeout = o.requestDeadlineMs;
    this.#server.keepAliveTimeout = Math.min(1_000, o.requestDeadlineMs);
    this.#server.timeout = o.requestDeadlineMs;
    this.#server.on('connection', (socket: net.Socket) => this.#accept(socket));
    const sweepMs = Math.max(10, Math.min(1_000, Math.floor(o.requestDeadlineMs / 4)));
    this.#sweep = setInterval(() => this.#expire(), sweepMs);
    this.#sweep.unref();
  }

  /** Listen on `o.address`; rejects (EADDRINUSE, EACCES) if it cannot. */
  static async start(o: OpsHttpOptions): Promise<OpsHttpServer> {
    const ops = new OpsHttpServer(o);
    const { host, port } = parseAddress(o.address, { portZero: true });
    try {
      await new Promise<void>((resolve, reject) => {
        ops.#server.once('error', reject);
        ops.#server.listen(port, host, () => {
          ops.#server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      clearInterval(ops.#sweep);
      throw error;
    }
    ops.#server.on('error', (error) => o.logger.warn(`HTTP listener error: ${error.message}`));
    const bound = ops.#server.address() as net.AddressInfo;
    ops.#address = formatAddress(host, bound.port);
    return ops;
  }

  /** The bound `host:port`. */
  get address(): string {
    return this.#address;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#sockets.size;
  }

  /** Stop listening and close every connection. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const socket of this.#sockets.keys()) socket.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    socket.on('error', () => {}); // a reset by the peer: nothing to do but forget it
    if (this.#sockets.size >= this.#o.connectionsMax) {
      this.refusedCount += 1;
      this.#o.logger.warn(
        `Refusing HTTP connection from ${socket.remoteAddress}:${socket.remotePort}: ${this.#sockets.size} open, limit metricsConnectionsMax ${this.#o.connectionsMax}`,
      );
      socket.destroy();
      return;
    }
    this.#sockets.set(socket, Date.now());
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #expire(): void {
    const nowMs = Date.now();
    for (const [socket, sinceMs] of this.#sockets) {
      if (nowMs - sinceMs < this.#o.requestDeadlineMs) continue;
      this.expiredCount += 1;
      this.#sockets.delete(socket);
      socket.destroy();
    }
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requestCount += 1;
    const path = (req.url ?? '/').split('?', 1)[0];
    const route = path === '/metrics' || path === '/health' || path === '/ready' ? path : null;
    // A body is never read: answer, then close the connection with whatever of it was sent.
    const head = req.method === 'HEAD';
    if (route === null) return send(res, 404, 'text/plain; charset=utf-8', 'Not found\n', head);
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed\n', head);
    }
    const r = this.#o.routes;
    if (route === '/metrics') {
      const text = r.metrics();
      if (text === null) {
        return send(res, 503, 'text/plain; charset=utf-8', 'Not serving yet\n', head);
      }
      return send(res, 200, metricsContentType, text, head);
    }
    const verdict = route === '/health' ? r.health() : r.ready();
    const key = route === '/health' ? 'health' : 'ready';
    const body = verdict.ok
      ? JSON.stringify({ [key]: 'true' })
      : JSON.stringify({ [key]: 'false', reason: verdict.reason });
    return send(res, verdict.ok ? 200 : 503, 'application/json', `${body}\n`, head);
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headOnly: boolean,
): void {
  const bytes = new TextEncoder().encode(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': String(bytes.byteLength),
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  res.end(headOnly ? undefined : bytes);
}
