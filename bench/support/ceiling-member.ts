/**
 * One member of the ceiling `bench/cluster.bench.ts` measures edgeraft against: only what a
 * replicated, durable commit physically needs, with no Raft (no terms, elections, log matching),
 * no validation and no state machine. The leader takes length-prefixed frames from clients
 * (`[u32 request id][command bytes]`), gives each command the next index, and once per event-loop
 * turn appends that turn's commands to its LMDB durably while it sends them in one frame to each
 * follower (`[u32 first index][the commands as frames]`). A follower appends each such frame
 * durably and answers `[u32 last index]`. Once the leader's own write and the followers' answers
 * cover a command on a majority (2 of 3), the leader answers its client (`[u32 request id]`),
 * every answer of a turn in one write per connection. LMDB settings are edgeraft's
 * (`lib/storage/lmdb.ts`), and each append is one transaction awaited until synced, as there.
 *
 * Writes do not wait for `'drain'`: what is outstanding is bounded by the clients' requests in
 * flight (at most a few hundred commands of about 100 bytes), unlike a real replication stream.
 *
 * Usage: `tsx bench/support/ceiling-member.ts --role follower --data DIR --listen H:P`, then
 * `... --role leader --data DIR --listen H:P --followers H:P,H:P`. Prints `{"ready":true,...}` on
 * stdout once serving; stops on SIGTERM.
 *
 * @example
 * ```ts
 * spawnTs('bench/support/ceiling-member.ts', ['--role', 'follower', '--data', dir, '--listen', a]);
 * ```
 * @module
 */
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { open } from 'lmdb';
import { commitDurably } from '../../lib/storage/commit.ts';
import { lmdbSettings } from '../../lib/storage/lmdb.ts';
import { frameBytes, FrameDecoder, writeFrames } from '../../lib/transport/frame.ts';
import { hostPort } from './children.ts';

/** Largest frame body accepted, in bytes (a follower's frame carries one turn's commands). */
const frameBytesMax = 16 * 1024 * 1024;
/** Bytes of the request id, index and answer fields. */
const u32Bytes = 4;

function flag(name: string, fallback?: string): string {
  const at = process.argv.indexOf(name);
  const value = at === -1 ? fallback : process.argv[at + 1];
  if (value === undefined) throw new TypeError(`Flag ${name} is required`);
  return value;
}

const role = flag('--role');
if (role !== 'leader' && role !== 'follower') throw new RangeError(`Flag --role: ${role}`);
const listen = hostPort(flag('--listen'));
// The settings of lib/storage/lmdb.ts (`lmdbSettings`): durable commits, as edgeraft's log.
const dataDir = flag('--data');
mkdirSync(dataDir, { recursive: true });
const root = open({ path: dataDir, ...lmdbSettings });
const entries = root.openDB({ name: 'entries', encoding: 'binary', keyEncoding: 'ordered-binary' });

/** Append `commands` from index `first` in one durable transaction. */
function append(first: number, commands: readonly Uint8Array[]): Promise<void> {
  return commitDurably(root, 'Append', () => {
    for (let i = 0; i < commands.length; i++) entries.put(first + i, commands[i]!);
  });
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(u32Bytes);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}
const readU32 = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);

/** One write of `bodies` as consecutive frames. */
function writeAll(socket: net.Socket, bodies: readonly Uint8Array[]): void {
  const wire = new Uint8Array(bodies.reduce((sum, b) => sum + frameBytes(b.byteLength), 0));
  writeFrames(wire, 0, bodies);
  socket.write(wire);
}

/** Call `onFrame` for each frame `socket` receives; a broken stream closes the socket. */
function readFrames(socket: net.Socket, onFrame: (body: Uint8Array) => void): void {
  const decoder = new FrameDecoder(frameBytesMax, onFrame);
  socket.on('data', (chunk: Uint8Array) => {
    const error = decoder.push(chunk);
    if (error !== null) {
      process.stderr.write(`ceiling ${role}: ${error}\n`);
      socket.destroy();
    }
  });
  socket.on('error', () => {});
}

function serve(onConnection: (socket: net.Socket) => void): Promise<void> {
  const server = net.createServer({ noDelay: true }, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
}

function follower(): Promise<void> {
  return serve((socket) => {
    socket.setNoDelay(true);
    readFrames(socket, (body) => {
      const first = readU32(body);
      const commands: Uint8Array[] = [];
      new FrameDecoder(frameBytesMax, (c) => void commands.push(c.slice())).push(
        body.subarray(u32Bytes),
      );
      const last = first + commands.length - 1;
      void append(first, commands).then(() => writeAll(socket, [u32(last)]));
    });
  });
}

async function leader(): Promise<void> {
  const followers = await Promise.all(
    flag('--followers').split(',').map((address) =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ ...hostPort(address), noDelay: true });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      })
    ),
  );
  /** Highest index written durably here, and acknowledged by each follower. */
  let durableIndex = 0;
  const ackedIndex = followers.map(() => 0);
  let lastIndex = 0;
  /** Commands given an index this turn, not yet written or sent. */
  let turn: Uint8Array[] = [];
  /** Commands not yet answered, in index order from `waitingHead`. */
  const waiting: { socket: net.Socket; id: Uint8Array }[] = [];
  let waitingHead = 0;
  /** Index of `waiting[waitingHead]`. */
  let waitingHeadIndex = 1;

  const answer = () => {
    // The commit index: the highest index on a majority (this member counts as one).
    const committed = [durableIndex, ...ackedIndex].sort((a, b) => b - a)[1]!;
    const replies = new Map<net.Socket, Uint8Array[]>();
    while (waitingHeadIndex <= committed && waitingHead < waiting.length) {
      const w = waiting[waitingHead]!;
      const list = replies.get(w.socket);
      if (list === undefined) replies.set(w.socket, [w.id]);
      else list.push(w.id);
      waitingHead++;
      waitingHeadIndex++;
    }
    if (waitingHead > 4096 && waitingHead * 2 > waiting.length) {
      waiting.splice(0, waitingHead);
      waitingHead = 0;
    }
    for (const [socket, ids] of replies) writeAll(socket, ids);
  };
  followers.forEach((socket, k) =>
    readFrames(socket, (body) => {
      ackedIndex[k] = Math.max(ackedIndex[k]!, readU32(body));
      answer();
    })
  );
  const flush = () => {
    const commands = turn;
    turn = [];
    const first = lastIndex - commands.length + 1;
    const message = new Uint8Array(
      u32Bytes + commands.reduce((sum, c) => sum + frameBytes(c.byteLength), 0),
    );
    message.set(u32(first), 0);
    writeFrames(message, u32Bytes, commands);
    for (const socket of followers) writeAll(socket, [message]);
    const last = lastIndex;
    void append(first, commands).then(() => {
      durableIndex = Math.max(durableIndex, last);
      answer();
    });
  };
  await serve((socket) => {
    socket.setNoDelay(true);
    readFrames(socket, (body) => {
      lastIndex++;
      if (lastIndex > 0xffff_ffff) throw new RangeError('Ceiling: log index past the u32 field');
      if (turn.length === 0) setImmediate(flush);
      turn.push(body.slice(u32Bytes));
      waiting.push({ socket, id: body.slice(0, u32Bytes) });
    });
  });
}

await (role === 'leader' ? leader() : follower());
process.stdout.write(`${JSON.stringify({ ready: true, role, pid: process.pid })}\n`);
process.once('SIGTERM', () => {
  void root.close().finally(() => process.exit(0));
});
