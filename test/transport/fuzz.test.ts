/** Fuzz: ≥100,000 random and mutated frames against a live listener while real peer traffic flows beside them. */
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry, RaftMessage } from '../../lib/base/messages.ts';
import { MessageCodec } from '../../lib/transport/codec.ts';
import type { TcpTransport } from '../../lib/transport/tcp.ts';
import { frameBytes, writeFrames } from '../../lib/transport/frame.ts';
import { AcceptorInboundSchema } from '../../lib/transport/handshake.ts';
import {
  appendMessage,
  captureLogger,
  closed,
  heartbeat,
  helloFrame,
  normalize,
  rawConnect,
  startTransport,
  waitFor,
} from './helpers.ts';
import { seededRandom as prng } from '../../lib/core/random.ts';

const seed = Number(process.env.EDGERAFT_FUZZ_SEED ?? 20240601);
const framesTotal = 100_000;
const lanes = 4;
const frameBytesMax = 65_536;

/** The slow path (scan + cbor-x + valibot) judges, so the listener's fast path is held to it. */
const oracle = new MessageCodec(AcceptorInboundSchema, {
  nestingDepthMax: 16,
  raftFastPath: false,
});
/** A frame to send: its body, and whether the listener should accept it (decided by the oracle). */
type Fuzz = { kind: 'body'; body: Uint8Array; valid: boolean } | {
  kind: 'oversized' | 'truncated';
  bytes: Buffer;
};

function makeGenerator(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const natural = () => (random() < 0.8 ? int(1000) : int(2 ** 40));
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  function validMessage(): RaftMessage {
    const head = { from: 'x', to: 'b', term: natural() };
    switch (int(5)) {
      case 0:
        return { type: 'heartbeat', ...head, commitIndex: natural(), readSeq: natural() };
      case 1:
        return {
          type: 'vote',
          ...head,
          lastLogIndex: natural(),
          lastLogTerm: natural(),
          preVote: random() < 0.5,
          transfer: false,
        };
      case 2:
        return {
          type: 'appendResponse',
          ...head,
          success: random() < 0.5,
          matchIndex: natural(),
          hintIndex: natural(),
          hintTerm: 0,
        };
      case 3:
        return { type: 'voteResponse', ...head, granted: random() < 0.5, preVote: random() < 0.5 };
      default: {
        const entries: Entry[] = Array.from(
          { length: int(6) },
          (_, i) =>
            random() < 0.8
              ? { type: 'command', index: i + 1, term: 1, timeMs: natural(), data: bytes(int(40)) }
              : { type: 'noop', index: i + 1, term: 1, timeMs: natural() },
        );
        return {
          type: 'append',
          ...head,
          prevLogIndex: natural(),
          prevLogTerm: natural(),
          entries,
          commitIndex: natural(),
          globalIndex: 0,
        };
      }
    }
  }
  function judge(body: Uint8Array): Fuzz {
    const result = oracle.decode(body);
    const valid = result.ok && result.value.type !== 'hello' && result.value.from === 'x' &&
      result.value.to === 'b';
    return { kind: 'body', body, valid };
  }
  return function next(): Fuzz {
    const roll = random();
    if (roll < 0.9) return judge(oracle.encode(validMessage() as never).slice());
    if (roll < 0.97) {
      const body = oracle.encode(validMessage() as never).slice();
      for (let flips = 1 + int(3); flips > 0; flips--) body[int(body.length)] = int(256);
      return judge(body);
    }
    if (roll < 0.98) return judge(bytes(1 + int(64)));
    if (roll < 0.985) {
      return judge(new Uint8Array(200 + int(2000)).fill(random() < 0.5 ? 0x81 : 0xa1));
    }
    if (roll < 0.99) return judge(Uint8Array.from([0x1b, 0xff, ...bytes(7)]));
    if (roll < 0.995) {
      const length = frameBytesMax + 1 + int(2 ** 30);
      return {
        kind: 'oversized',
        bytes: Buffer.from([
          length >>> 24,
          (length >>> 16) & 0xff,
          (length >>> 8) & 0xff,
          length & 0xff,
        ]),
      };
    }
    const body = oracle.encode(validMessage() as never);
    const frame = Buffer.alloc(frameBytes(body.length));
    writeFrames(frame, 0, [body]);
    return { kind: 'truncated', bytes: frame.subarray(0, 1 + int(frame.length - 1)) };
  };
}

// Proves 100,000 fuzz frames cause no crash or unhandled rejection, each bad frame closes only its
// connection with a logged reason, every valid fuzz frame before it is delivered, and peer traffic arrives intact.
/** Transports to close after the suite, also when a check failed (else the process never exits). */
const opened: TcpTransport[] = [];
test.after(async () => {
  for (const t of opened) await t.close();
});

test('fuzz: random and mutated frames beside real peer traffic', async () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  const logger = captureLogger();
  const b = await startTransport('b', {
    logger,
    frameBytesMax,
    inflightBytesMax: 1 << 20,
    frameDeadlineMs: 5_000,
  });
  // b never answers a's heartbeats here: no answer deadline, or a would redial mid-stream.
  const a = await startTransport('a', { answerDeadlineMs: 0 });
  opened.push(a, b);
  const peerReceived: RaftMessage[] = [];
  let fuzzDelivered = 0;
  b.onMessage((m) => {
    if (m.from === 'a') peerReceived.push(m);
    else fuzzDelivered += 1;
  });
  a.addPeer('b', b.address);
  await waitFor(() => a.connected('b'), 'a connected to b');

  const next = makeGenerator(prng(seed));
  let framesSent = 0;
  let validExpected = 0;
  let badExpected = 0;
  async function lane(): Promise<void> {
    while (framesSent < framesTotal) {
      const parts: Buffer[] = [helloFrame('x')];
      let ending: Fuzz | null = null;
      while (framesSent < framesTotal && parts.length < 400) {
        const fuzz = next();
        framesSent += 1;
        if (fuzz.kind !== 'body') {
          ending = fuzz;
          break;
        }
        const frame = Buffer.alloc(frameBytes(fuzz.body.length));
        writeFrames(frame, 0, [fuzz.body]);
        parts.push(frame);
        if (!fuzz.valid) {
          ending = fuzz;
          break;
        }
        validExpected += 1;
      }
      const socket = await rawConnect(b.port);
      const done = closed(socket);
      if (ending === null) socket.end(Buffer.concat(parts));
      else {
        badExpected += 1;
        if (ending.kind === 'truncated') socket.end(Buffer.concat([...parts, ending.bytes]));
        else {socket.write(
            Buffer.concat(ending.kind === 'oversized' ? [...parts, ending.bytes] : parts),
          );}
      }
      await done;
    }
  }

  const peerSent: RaftMessage[] = [];
  const pump = (async () => {
    for (let i = 0; framesSent < framesTotal || i < 500; i++) {
      const message = i % 2 === 0 ? heartbeat('a', 'b', i) : appendMessage('a', 'b', i, 8, 64);
      peerSent.push(message);
      a.send(message);
      await sleep(1);
    }
  })();
  await Promise.all(Array.from({ length: lanes }, lane));
  await pump;
  await waitFor(() => peerReceived.length >= peerSent.length, 'peer traffic delivered', 20_000);
  await waitFor(
    () => fuzzDelivered >= validExpected && b.inboundCount === 1,
    'fuzz connections settled',
    20_000,
  );

  assert.ok(framesSent >= framesTotal, `${framesSent} fuzz frames sent`);
  for (const type of ['heartbeat', 'append']) {
    const pick = (list: RaftMessage[]) => normalize(list.filter((m) => m.type === type));
    assert.equal(pick(peerReceived), pick(peerSent), `peer ${type} traffic intact`);
  }
  assert.is(a.counters.droppedCount, 0);
  assert.is(fuzzDelivered, validExpected, 'every valid fuzz frame before a bad one was delivered');
  assert.ok(badExpected > 100, `${badExpected} bad frames exercised`);
  const reasons = logger.lines.filter((l) => l.startsWith('warn Closing inbound'));
  assert.is(
    reasons.length,
    badExpected,
    'each bad frame closed its connection with a logged reason',
  );
  assert.equal(rejections, []);
  process.off('unhandledRejection', onRejection);
  console.log(
    `  fuzz seed ${seed}: ${framesSent} frames, ${validExpected} valid delivered, ${badExpected} bad closed`,
  );
  await a.close();
  await b.close();
});

test.run();
