/** Helpers for the transport tests: a capturing logger, polling, raw sockets and frames. */
import * as net from 'node:net';
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppendMessage, HeartbeatMessage } from '../../lib/base/messages.ts';
import { MessageCodec } from '../../lib/transport/codec.ts';
import { frameBytes, writeFrames } from '../../lib/transport/frame.ts';
import { HelloSchema, protocolVersion } from '../../lib/transport/handshake.ts';
import type { TransportLogger } from '../../lib/transport/options.ts';
import { TcpTransport } from '../../lib/transport/tcp.ts';
import type { TransportOptionsInput } from '../../lib/transport/options.ts';
import { seededRandom } from '../../lib/core/random.ts';

export const cluster = 'test-cluster';

/** A logger that keeps every line, so tests can assert a reason was logged. */
export function captureLogger(): TransportLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (m) => void lines.push(`warn ${m}`),
    info: (m) => void lines.push(`info ${m}`),
    debug: () => {},
  };
}

/** Poll `predicate` every few ms; throws with `what` after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Encoder for hand-made frames (any value, no schema on the way out). */
export const anyCodec = new MessageCodec(HelloSchema, { nestingDepthMax: 16 });

/** One frame (length prefix + body) around raw `body` bytes. */
export function frameOf(body: Uint8Array): Buffer {
  const out = Buffer.alloc(frameBytes(body.byteLength));
  writeFrames(out, 0, [body]);
  return out;
}

/** One frame around the CBOR encoding of `value`. */
export function frameOfValue(value: unknown): Buffer {
  return frameOf(anyCodec.encode(value as never));
}

export function helloFrame(member: string, clusterName = cluster): Buffer {
  return frameOfValue({ type: 'hello', cluster: clusterName, member, version: protocolVersion });
}

/** A raw client socket to `port`; resolves once connected. Errors are swallowed (resets expected). */
export function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      socket.resume(); // read (and discard) what the listener sends, so 'end' and 'close' fire
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves when `socket` has closed. */
export function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.readyState === 'closed') return resolve();
    socket.once('close', () => resolve());
  });
}

/** An AppendEntries message with `count` command entries of `dataBytes` bytes each. */
export function appendMessage(
  from: string,
  to: string,
  seq: number,
  count = 4,
  dataBytes = 100,
): AppendMessage {
  const entries = [];
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(dataBytes);
    for (let j = 0; j < dataBytes; j++) data[j] = (seq * 31 + i * 7 + j) & 0xff;
    entries.push({
      type: 'command' as const,
      index: seq * count + i + 1,
      term: 1,
      timeMs: 1_700_000_000_000 + seq,
      data,
    });
  }
  return {
    type: 'append',
    from,
    to,
    term: 1,
    prevLogIndex: seq * count,
    prevLogTerm: 1,
    entries,
    commitIndex: seq,
    globalIndex: 0,
  };
}

export function heartbeat(from: string, to: string, seq: number): HeartbeatMessage {
  return { type: 'heartbeat', from, to, term: 1, commitIndex: seq, readSeq: seq };
}

/** Start a transport on 127.0.0.1, port 0, with a capturing logger unless one is given. */
export function startTransport(
  member: string,
  options: Partial<TransportOptionsInput> = {},
): Promise<TcpTransport> {
  return TcpTransport.start({
    cluster,
    member,
    host: '127.0.0.1',
    port: 0,
    logger: captureLogger(),
    ...options,
  });
}

/** `value` with every byte array turned into a plain number array, for deep comparison. */
export function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

/** A seeded generator, so a failing randomized test reproduces with its seed. */
export const prng = seededRandom;

/**
 * `value` written out with everything deep equality can miss: key order, prototypes, typed-array
 * classes, -0, undefined. Two values with the same description are interchangeable for a reader.
 */
export function describe(value: unknown): string {
  if (value instanceof Uint8Array) {
    return `${value.constructor.name}<${Buffer.from(value).toString('hex')}>`;
  }
  if (Array.isArray(value)) return `[${value.map(describe).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const proto = Object.getPrototypeOf(value) === Object.prototype ? '' : 'exotic';
    const fields = Object.keys(value).map((k) =>
      `${k}:${describe((value as Record<string, unknown>)[k])}`
    );
    return `${proto}{${fields.join(',')}}`;
  }
  if (Object.is(value, -0)) return '-0';
  if (typeof value === 'bigint') return `${value}n`;
  return value === undefined ? 'undefined' : JSON.stringify(value);
}
