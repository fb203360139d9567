/**
 * A framed, validated, backpressured connection over one `node:net` socket. The protocol above it
 * sees messages, never bytes or sockets.
 *
 * Inbound: chunks go through `FrameDecoder` (bounded by `frameBytesMax`) and `MessageCodec`
 * (scan, decode, schema); the first bad frame closes the connection with a logged reason.
 * Outbound: `send` encodes at once (so the byte count is exact and the caller may reuse the
 * object), queues the body in one of two lanes, and a flush once per event-loop turn writes all
 * queued control frames first, then bulk frames, coalesced into one buffer per write. Bulk frames
 * are handed to the socket only while it is not asking for a drain, so a heartbeat waits behind at
 * most one write batch, never behind a deep queue of appends. Bytes queued plus bytes buffered in
 * the socket never exceed `inflightBytesMax`: a send that would exceed it is dropped and counted.
 *
 * @example
 * ```ts
 * const connection = new FramedConnection(socket, codec, {
 *   frameBytesMax: 1 << 22, inflightBytesMax: 1 << 24, frameDeadlineMs: 10_000, logger: stderrLogger,
 *   label: 'inbound 127.0.0.1:5000', onMessage: (m) => console.log(m), onClose: () => {},
 * });
 * connection.send({ type: 'hello', cluster: 'c', member: 'a', version: 1 }, 'control');
 * ```
 * @module
 */
import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import { setImmediate, setTimeout } from 'node:timers';
import type * as v from 'valibot';
import { assert } from '../base/errors.ts';
import type { MessageCodec } from './codec.ts';
import { frameBytes, FrameDecoder, writeFrames } from './frame.ts';
import { controlBytesReserved, type TransportLogger } from './options.ts';

/** Control frames (small, latency-critical) jump ahead of bulk frames (appends, snapshots). */
export type Lane = 'control' | 'bulk';

/** Most bytes coalesced into one socket write. */
export const writeBatchBytesMax = 256 * 1024;

/** Bytes a connection moved, both ways; several connections may add to one (one per peer). */
export type Traffic = { sentBytes: number; receivedBytes: number };

/** How long a refused connection may linger for its last frame to reach the peer. */
const refuseLingerMs = 1_000;

/** Settings of one connection; the limits come from the validated transport options. */
export type ConnectionOptions<T> = {
  frameBytesMax: number;
  inflightBytesMax: number;
  frameDeadlineMs: number;
  logger: TransportLogger;
  /** Names the connection in log lines, e.g. `inbound from 127.0.0.1:53412`. */
  label: string;
  onMessage: (message: T, connection: FramedConnection<T>) => void;
  /** Called once, after the socket is destroyed; `reason` is null for an orderly close. */
  onClose: (reason: string | null, connection: FramedConnection<T>) => void;
  /**
   * Looks at the first chunk received before it is parsed: a reason closes the connection (a TLS
   * handshake on a plaintext port, say, which frame parsing would misread as a huge length).
   */
  checkFirstChunk?: (chunk: Uint8Array) => string | null;
};

/**
 * See the module comment. `T` is what the inbound schema yields; anything CBOR-encodable may be
 * sent (the peer validates it).
 */
export class FramedConnection<T> {
  readonly label: string;
  readonly #socket: Socket;
  readonly #codec: MessageCodec<v.GenericSchema<unknown, T>>;
  readonly #options: ConnectionOptions<T>;
  readonly #decoder: FrameDecoder;
  #control: Uint8Array[] = [];
  #bulk: Uint8Array[] = [];
  #bulkHead = 0;
  #queuedBytes = 0;
  #flushScheduled = false;
  #waitingDrain = false;
  #closed = false;
  /** When the unfinished frame started arriving, or -1 when no frame is partial. */
  #partialSinceMs = -1;
  /** Sends refused because `inflightBytesMax` would have been exceeded. */
  droppedCount = 0;
  receivedCount = 0;
  /**
   * Where the bytes written to and read from the socket are counted (frames with their length
   * prefixes). Its own until the owner points it at a shared record, e.g. its peer's.
   */
  traffic: Traffic = { sentBytes: 0, receivedBytes: 0 };

  constructor(
    socket: Socket,
    codec: MessageCodec<v.GenericSchema<unknown, T>>,
    options: ConnectionOptions<T>,
  ) {
    assert(
      options.frameBytesMax + controlBytesReserved <= options.inflightBytesMax,
      'inflight fits a frame',
    );
    this.label = options.label;
    this.#socket = socket;
    this.#codec = codec;
    this.#options = options;
    this.#decoder = new FrameDecoder(options.frameBytesMax, (body) => this.#onFrame(body));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      this.#waitingDrain = false;
      this.#flush();
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: Error & { code?: string }) => {
      this.close(`Socket error: ${error.code ?? error.message}`, 'info');
    });
    socket.on('close', () => this.#onEnd());
  }

  /** True once closed: sends are dropped, nothing more is delivered. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes queued here plus bytes buffered in the socket: never above `inflightBytesMax`. */
  get inflightBytes(): number {
    return this.#queuedBytes + this.#socket.writableLength;
  }

  /**
   * Queue one message; returns false (and counts a drop) when the connection is closed or the
   * message would push the bytes in flight over the lane's bound.
   */
  send(message: unknown, lane: Lane): boolean {
    if (this.#closed) return false;
    const body = this.#codec.encode(message as T);
    const bytes = frameBytes(body.byteLength);
    const bound = lane === 'control'
      ? this.#options.inflightBytesMax
      : this.#options.inflightBytesMax -
        controlBytesReserved;
    if (body.byteLength > this.#options.frameBytesMax || this.inflightBytes + bytes > bound) {
      this.droppedCount += 1;
      return false;
    }
    if (lane === 'control') this.#control.push(body);
    else this.#bulk.push(body);
    this.#queuedBytes += bytes;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
    return true;
  }

  /** Close if a started frame has not completed within `frameDeadlineMs` of `nowMs`. */
  checkDeadline(nowMs: number): void {
    if (this.#partialSinceMs >= 0 && nowMs - this.#partialSinceMs > this.#options.frameDeadlineMs) {
      this.close(
        `Frame deadline exceeded: ${this.#decoder.bufferedBytes} bytes of a frame in ${
          nowMs - this.#partialSinceMs
        } ms, ` +
          `limit ${this.#options.frameDeadlineMs} ms`,
      );
    }
  }

  /**
   * Destroy the socket and drop whatever is queued. A reason is logged (`warn` by default: bad
   * input; `info` for ordinary network failures; `debug` for one already reported).
   */
  close(reason: string | null = null, level: 'warn' | 'info' | 'debug' = 'warn'): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason !== null) this.#options.logger[level](`Closing ${this.label}: ${reason}`);
    this.#decoder.stop();
    this.#control = [];
    this.#bulk = [];
    this.#bulkHead = 0;
    this.#queuedBytes = 0;
    this.#socket.destroy();
    this.#options.onClose(reason, this);
  }

  /**
   * Send `message` as the last frame, then end the connection (used to tell a peer why it is
   * refused). Logs `reason`; nothing more is read.
   */
  refuse(message: unknown, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.logger.warn(`Closing ${this.label}: ${reason}`);
    this.#decoder.stop();
    const body = this.#codec.encode(message as T);
    const frame = Buffer.allocUnsafe(frameBytes(body.byteLength));
    writeFrames(frame, 0, [body]);
    this.#socket.end(frame);
    // The peer should close on reading the refusal; do not wait on it for long.
    setTimeout(() => this.#socket.destroy(), refuseLingerMs).unref();
    this.#options.onClose(reason, this);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed) return;
    const check = this.#options.checkFirstChunk;
    if (check !== undefined && this.traffic.receivedBytes === 0 && this.receivedCount === 0) {
      const refusal = check(chunk);
      if (refusal !== null) return this.close(refusal);
    }
    this.traffic.receivedBytes += chunk.byteLength;
    const error = this.#decoder.push(chunk);
    if (error !== null) return this.close(error);
    if (this.#closed) return;
    if (!this.#decoder.partial) this.#partialSinceMs = -1;
    else if (this.#partialSinceMs < 0) this.#partialSinceMs = Date.now();
  }

  #onFrame(body: Uint8Array): void {
    if (this.#closed) return;
    // A frame completed: the deadline restarts with the next partial one.
    this.#partialSinceMs = -1;
    const result = this.#codec.decode(body);
    if (!result.ok) return this.close(result.reason);
    this.receivedCount += 1;
    this.#options.onMessage(result.value, this);
  }

  #onEnd(): void {
    if (this.#closed) return;
    if (this.#decoder.partial) {
      this.close(
        `Truncated frame: connection ended with ${this.#decoder.bufferedBytes} bytes of an unfinished frame`,
      );
    } else this.close(null);
  }

  /** Write what is queued now instead of at the end of this turn (see `Transport.flush`). */
  flush(): void {
    this.#flush();
  }

  #flush(): void {
    while (!this.#closed && !this.#waitingDrain && this.#queuedBytes > 0) {
      const bodies: Uint8Array[] = this.#control;
      this.#control = [];
      let batchBytes = 0;
      for (const body of bodies) batchBytes += frameBytes(body.byteLength);
      while (this.#bulkHead < this.#bulk.length && batchBytes < writeBatchBytesMax) {
        const body = this.#bulk[this.#bulkHead]!;
        this.#bulkHead += 1;
        bodies.push(body);
        batchBytes += frameBytes(body.byteLength);
      }
      if (this.#bulkHead === this.#bulk.length) {
        this.#bulk = [];
        this.#bulkHead = 0;
      } else if (this.#bulkHead > 1024) {
        // Keep the array from growing without bound while it never fully drains.
        this.#bulk = this.#bulk.slice(this.#bulkHead);
        this.#bulkHead = 0;
      }
      const batch = Buffer.allocUnsafe(batchBytes);
      const written = writeFrames(batch, 0, bodies);
      assert(written === batchBytes, 'flush: batch fully written');
      this.#queuedBytes -= batchBytes;
      assert(this.#queuedBytes >= 0, 'flush: queued bytes never negative');
      this.traffic.sentBytes += batchBytes;
      if (!this.#socket.write(batch)) this.#waitingDrain = true;
    }
  }
}
