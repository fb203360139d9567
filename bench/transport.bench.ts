/**
 * Transport throughput: AppendEntries of 64 × 100-byte entries from one TcpTransport to another
 * over one loopback connection (encode, frame, coalesce, write, read, decode, validate), beside a
 * raw `node:net` ceiling that carries the same bytes with no encoding or validation. Both sides run
 * in this one process, as they would on a 2-core box running sender and receiver. The goal (issue
 * 4) is at least 1,000,000 entries/s on Node.
 *
 * Also prints where the time goes per message: `encodeUs` and `decodeTotalUs` through
 * `MessageCodec`, as the transport runs them (the hand-written Raft codec); `scanUs`,
 * `cborDecodeUs` and `valibotUs` are the three steps of the fallback path (scan + cbor-x +
 * valibot) that bodies the fast path is not sure of take.
 *
 * Usage: `tsx bench/transport.bench.ts [seconds]` (or under bun / deno run -A); `tsx bench/run.ts
 * transport` runs it under every runtime. Prints `ROW <json>` lines on stdout, progress on stderr.
 */
import * as net from 'node:net';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { Decoder } from 'cbor-x/decode';
import * as v from 'valibot';
import { type AppendMessage, RaftMessageSchema } from '../lib/base/messages.ts';
import { MessageCodec, scanCbor } from '../lib/transport/codec.ts';
import { frameBytes, writeFrames } from '../lib/transport/frame.ts';
import { TcpTransport } from '../lib/transport/tcp.ts';
import { printRow, progress } from './support/rows.ts';

const seconds = Number(process.argv[2] ?? 3);
const entriesPerMessage = 64;
const entryBytes = 100;
const quiet = { warn: () => {}, info: () => {}, debug: () => {} };

function runtimeName(): string {
  const g = globalThis as Record<string, unknown>;
  if (g['Bun'] !== undefined) return 'bun';
  if (g['Deno'] !== undefined) return 'deno';
  return 'node';
}
const runtime = runtimeName();

function makeAppend(seq: number): AppendMessage {
  const entries = [];
  for (let i = 0; i < entriesPerMessage; i++) {
    const data = new Uint8Array(entryBytes).fill((seq + i) & 0xff);
    entries.push({
      type: 'command' as const,
      index: seq * 64 + i + 1,
      term: 7,
      timeMs: 1_700_000_000_000 + seq,
      data,
    });
  }
  return {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 7,
    prevLogIndex: seq * 64,
    prevLogTerm: 7,
    entries,
    commitIndex: seq * 64,
    globalIndex: 0,
  };
}

/** Messages a→b for `seconds`; the sender keeps about 1 MiB in flight, as a pipelined leader would. */
async function transportRun(): Promise<{ messages: number; bytes: number; ms: number }> {
  const inflightBytesMax = 16 * 1024 * 1024;
  const b = await TcpTransport.start({
    cluster: 'bench',
    member: 'b',
    logger: quiet,
    inflightBytesMax,
  });
  const a = await TcpTransport.start({
    cluster: 'bench',
    member: 'a',
    logger: quiet,
    inflightBytesMax,
  });
  let received = 0;
  b.onMessage((m) => {
    if (m.type === 'append' && m.entries.length === entriesPerMessage) received += 1;
  });
  a.addPeer('b', b.address);
  while (!a.connected('b')) await sleep(5);
  const templates = Array.from({ length: 16 }, (_, i) => makeAppend(i));
  const frameSize = frameBytes(
    new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 }).encode(templates[0]!).length,
  );
  let sent = 0;
  let running = true;
  const pump = () => {
    if (!running) return;
    // Top up to ~1 MiB in flight, then yield so the flush and the receiver run.
    while (a.inflightBytes('b') < 1 << 20) {
      a.send(templates[sent % templates.length]!);
      sent += 1;
    }
    setImmediate(pump);
  };
  pump();
  await sleep(300); // warm-up
  const startReceived = received;
  const started = performance.now();
  await sleep(seconds * 1000);
  const ms = performance.now() - started;
  const messages = received - startReceived;
  running = false;
  if (a.counters.droppedCount > 0) {
    progress(`transport: ${a.counters.droppedCount} sends dropped at the inflight bound`);
  }
  await a.close();
  await b.close();
  return { messages, bytes: messages * frameSize, ms };
}

/** The same frames written as raw bytes on a node:net socket, counted (not parsed) by the reader. */
async function ceilingRun(
  frame: Uint8Array,
): Promise<{ messages: number; bytes: number; ms: number }> {
  let receivedBytes = 0;
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => void (receivedBytes += chunk.length));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.setNoDelay(true);
  const batch = Buffer.alloc(frame.length * 32);
  for (let i = 0; i < 32; i++) batch.set(frame, i * frame.length);
  let running = true;
  const write = () => {
    while (running && socket.write(batch));
  };
  socket.on('drain', write);
  write();
  await sleep(300);
  const startBytes = receivedBytes;
  const started = performance.now();
  await sleep(seconds * 1000);
  const ms = performance.now() - started;
  const bytes = receivedBytes - startBytes;
  running = false;
  socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { messages: bytes / frame.length, bytes, ms };
}

/** Microseconds per message for each step of the receive and send paths. */
function breakdown(): Record<string, number> {
  const codec = new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 });
  const message = makeAppend(1);
  const body = codec.encode(message);
  const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });
  const decoded = decoder.decode(body);
  const time = (f: () => unknown) => {
    for (let i = 0; i < 500; i++) f();
    const n = 3000;
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    return Math.round(((performance.now() - t) / n) * 1000 * 10) / 10;
  };
  return {
    encodeUs: time(() => codec.encode(message)),
    scanUs: time(() => scanCbor(body, 16)),
    cborDecodeUs: time(() => decoder.decode(body)),
    valibotUs: time(() => v.safeParse(RaftMessageSchema, decoded)),
    decodeTotalUs: time(() => codec.decode(body)),
  };
}

const codec = new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 });
const body = codec.encode(makeAppend(1));
const frame = new Uint8Array(frameBytes(body.length));
writeFrames(frame, 0, [body]);
const mb = (bytes: number, ms: number) => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;

progress(`transport ${runtime}: raw node:net ceiling, ${seconds} s`);
const ceiling = await ceilingRun(frame);
progress(`transport ${runtime}: TcpTransport, ${seconds} s`);
const measured = await transportRun();
progress(`transport ${runtime}: per-message breakdown`);
const steps = breakdown();
const ceilingMessagesPerSec = ceiling.messages / (ceiling.ms / 1000);
const messagesPerSec = measured.messages / (measured.ms / 1000);
printRow({
  bench: 'transport',
  runtime,
  case: `append ${entriesPerMessage}x${entryBytes}B`,
  messagesPerSec: Math.round(messagesPerSec),
  entriesPerSec: Math.round(messagesPerSec * entriesPerMessage),
  mbPerSec: mb(measured.bytes, measured.ms),
  ceilingMessagesPerSec: Math.round(ceilingMessagesPerSec),
  ceilingEntriesPerSec: Math.round(ceilingMessagesPerSec * entriesPerMessage),
  ceilingMbPerSec: mb(ceiling.bytes, ceiling.ms),
  ratio: Math.round((messagesPerSec / ceilingMessagesPerSec) * 1000) / 1000,
  frameBytes: frame.length,
  ...steps,
});
process.exit(0);
