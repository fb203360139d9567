/**
 * The ceiling (`bench/support/ceiling-member.ts`) as a `LoadTarget` of the bench client: one TCP
 * connection to the leader, as `RaftClient` keeps one; each command is a frame `[u32 request
 * id][command bytes]`, and the frames of one event-loop turn go out in one write; an answer is a
 * frame `[u32 request id]`.
 *
 * @example
 * ```ts
 * const target = await ceilingTarget({ leader: '127.0.0.1:4000', commandBytes: 100 });
 * await target.command('-', 0, 0);
 * ```
 * @module
 */
import * as net from 'node:net';
import { setImmediate } from 'node:timers';
import { frameBytes, FrameDecoder, writeFrames } from '../../lib/transport/frame.ts';
import { hostPort } from './children.ts';
import type { LoadTarget } from './load.ts';

/** Largest answer frame accepted, in bytes (an answer is 4). */
const answerBytesMax = 64;

/** Connect to the ceiling's leader at `leader`; commands are `commandBytes` opaque bytes. */
export async function ceilingTarget(o: {
  leader: string;
  commandBytes: number;
}): Promise<LoadTarget> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ ...hostPort(o.leader), noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let closed: Error | null = null;
  const fail = (error: Error) => {
    closed ??= error;
    for (const w of waiting.values()) w.reject(error);
    waiting.clear();
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('Connection to the ceiling leader closed')));
  const decoder = new FrameDecoder(answerBytesMax, (body) => {
    const id = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0);
    const w = waiting.get(id);
    waiting.delete(id);
    w?.resolve();
  });
  socket.on('data', (chunk: Uint8Array) => {
    const error = decoder.push(chunk);
    if (error !== null) {
      fail(new Error(error));
      socket.destroy();
    }
  });
  let nextId = 0;
  let outgoing: Uint8Array[] = [];
  const flush = () => {
    const bodies = outgoing;
    outgoing = [];
    const wire = new Uint8Array(bodies.length * frameBytes(4 + o.commandBytes));
    writeFrames(wire, 0, bodies);
    socket.write(wire);
  };
  const command = (): Promise<void> => {
    if (closed !== null) return Promise.reject(closed);
    const id = nextId;
    nextId = (nextId + 1) >>> 0;
    const body = new Uint8Array(4 + o.commandBytes).fill(0x78);
    new DataView(body.buffer).setUint32(0, id);
    if (outgoing.length === 0) setImmediate(flush);
    outgoing.push(body);
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  };
  return {
    modes: ['-'],
    ready: command,
    command,
    leader: () => 'n1',
    close: () => {
      socket.destroy();
      return Promise.resolve();
    },
  };
}
