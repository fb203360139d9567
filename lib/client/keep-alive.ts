/**
 * Failure detection for one client connection. A server process that is paused (SIGSTOP, a long
 * stall) or cut off keeps its TCP connection open: its kernel still acknowledges what the client
 * sends and even accepts new connections, so no error ever arrives and a client would wait out
 * every request's deadline while the rest of the cluster has long elected a new leader.
 *
 * So the client listens: while requests are outstanding on the connection and nothing has arrived
 * for `intervalMs`, it sends a `ping`, which the server's client port answers at once without
 * touching Raft (a slow commit does not delay it); when nothing at all arrives within `timeoutMs`
 * of that ping, the connection is dead. A dead server is thus noticed within
 * `intervalMs + timeoutMs` of the last byte heard. A connection with nothing outstanding is never
 * pinged: an idle client costs the servers nothing.
 *
 * Pure: time comes in as arguments; the client owns the timer and the socket.
 *
 * @example
 * ```ts
 * const liveness = new KeepAlive(100, 300, Date.now());
 * liveness.started(Date.now()); // the first request went out
 * liveness.check(Date.now() + 150, true); // 'ping'
 * liveness.check(Date.now() + 500, true); // 'dead': nothing heard since the ping
 * ```
 * @module
 */

/** What the owner of a connection should do now. */
export type KeepAliveAction = 'none' | 'ping' | 'dead';

/** See the module comment. */
export class KeepAlive {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  /** When a byte last arrived, or requests last became outstanding after there were none. */
  #heardMs: number;
  /** When the unanswered ping was sent, or -1 when none is. */
  #pingSentMs = -1;

  constructor(intervalMs: number, timeoutMs: number, nowMs: number) {
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#heardMs = nowMs;
  }

  /** Bytes arrived: the server is alive. */
  heard(nowMs: number): void {
    this.#heardMs = nowMs;
    this.#pingSentMs = -1;
  }

  /** Requests became outstanding after there were none: the silence before does not count. */
  started(nowMs: number): void {
    this.heard(nowMs);
  }

  /** When the unanswered ping was sent, or -1. */
  get pingSentMs(): number {
    return this.#pingSentMs;
  }

  /** Decide, given whether requests are outstanding on the connection. */
  check(nowMs: number, outstanding: boolean): KeepAliveAction {
    if (!outstanding) {
      this.#pingSentMs = -1;
      return 'none';
    }
    if (this.#pingSentMs >= 0) {
      return nowMs - this.#pingSentMs >= this.#timeoutMs ? 'dead' : 'none';
    }
    if (nowMs - this.#heardMs >= this.#intervalMs) {
      this.#pingSentMs = nowMs;
      return 'ping';
    }
    return 'none';
  }
}
