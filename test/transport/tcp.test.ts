/** Real-TCP tests of TcpTransport on 127.0.0.1: delivery, hostile input, refusal, backpressure, reconnect, flood. */
import * as net from 'node:net';
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RaftMessage } from '../../lib/base/messages.ts';
import type { TcpTransport } from '../../lib/transport/tcp.ts';
import {
  appendMessage,
  captureLogger,
  closed,
  frameOf,
  frameOfValue,
  heartbeat,
  helloFrame,
  normalize,
  rawConnect,
  startTransport,
  waitFor,
} from './helpers.ts';

/** Send `count` messages a→b while `during` runs; assert every one arrived intact and in lane order. */
async function withPeerTraffic(
  a: TcpTransport,
  received: RaftMessage[],
  count: number,
  during: () => Promise<void>,
) {
  const sent: RaftMessage[] = [];
  const start = received.length;
  let i = 0;
  const pump = (async () => {
    while (i < count) {
      const message = i % 3 === 0 ? heartbeat('a', 'b', i) : appendMessage('a', 'b', i, 4, 50);
      sent.push(message);
      a.send(message);
      i += 1;
      if (i % 20 === 0) await sleep(1);
    }
  })();
  await during();
  await pump;
  await waitFor(() => received.length - start >= count, `${count} peer messages`);
  // Heartbeats may overtake appends (priority lane); within each lane order is kept.
  const got = received.slice(start);
  for (const type of ['heartbeat', 'append']) {
    const pick = (list: RaftMessage[]) => normalize(list.filter((m) => m.type === type));
    assert.equal(pick(got), pick(sent), `peer ${type} traffic intact and in order`);
  }
  assert.is(got.length, sent.length);
  assert.is(a.counters.droppedCount, 0);
}

// Proves messages a→b arrive intact, in order, with the bound port exposed and handshake done.
test('delivers messages between two transports', async () => {
  const a = await startTransport('a');
  const b = await startTransport('b');
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  assert.ok(b.port > 0);
  a.addPeer('b', b.address);
  await waitFor(() => a.connected('b'), 'a connected to b');
  await withPeerTraffic(a, received, 300, async () => {});
  await a.close();
  await b.close();
});

// Proves each hostile input closes only its connection with the logged reason while a real peer keeps being served.
test('hostile inputs close only the offending connection, with a logged reason', async () => {
  const logger = captureLogger();
  const b = await startTransport('b', {
    logger,
    frameBytesMax: 65_536,
    inflightBytesMax: 1 << 20,
    frameDeadlineMs: 300,
    handshakeDeadlineMs: 400,
  });
  const a = await startTransport('a');
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  a.addPeer('b', b.address);
  await waitFor(() => a.connected('b'), 'a connected to b');
  const hello = helloFrame('x');
  const cases: { name: string; reason: RegExp; act: (s: net.Socket) => Promise<void> | void }[] = [
    {
      name: 'oversized length prefix',
      reason: /Frame too large: 9437184 bytes, limit 65536/,
      act: (s) => void s.write(Buffer.from([0, 0x90, 0, 0])),
    },
    {
      name: 'truncated frame then close',
      reason: /Truncated frame: connection ended with \d+ bytes/,
      act: (s) =>
        void s.end(Buffer.concat([hello, frameOfValue(heartbeat('x', 'b', 1)).subarray(0, 10)])),
    },
    {
      name: 'garbage bytes',
      reason: /Invalid CBOR/,
      act: (s) =>
        void s.write(Buffer.concat([hello, frameOf(Buffer.from([0x1c, 0xfe, 0x42, 0x00]))])),
    },
    {
      name: 'valid CBOR of the wrong shape',
      reason: /Invalid message/,
      act: (s) => void s.write(Buffer.concat([hello, frameOfValue({ hello: [1, 2, 3] })])),
    },
    {
      name: 'unknown message type',
      reason: /Invalid message: type/,
      act: (s) =>
        void s.write(
          Buffer.concat([hello, frameOfValue({ ...heartbeat('x', 'b', 1), type: 'gossip' })]),
        ),
    },
    {
      name: 'BigInt term',
      reason: /Integer beyond 2\^53/,
      act: (s) =>
        void s.write(Buffer.concat([hello, frameOf(Buffer.from('1bffffffffffffffff', 'hex'))])),
    },
    {
      name: 'deep nesting',
      reason: /nested too deep/,
      act: (s) => void s.write(Buffer.concat([hello, frameOf(Buffer.alloc(60_000, 0x81))])),
    },
    {
      name: 'first frame not hello',
      reason: /Handshake expected/,
      act: (s) => void s.write(frameOfValue(heartbeat('x', 'b', 1))),
    },
    {
      name: 'sender mismatch',
      reason: /Sender mismatch/,
      act: (s) => void s.write(Buffer.concat([hello, frameOfValue(heartbeat('a', 'b', 1))])),
    },
    { name: 'no handshake', reason: /Handshake deadline exceeded/, act: () => {} },
    {
      name: 'slow-drip sender',
      reason: /Frame deadline exceeded/,
      act: async (s) => {
        s.write(hello);
        const frame = frameOfValue(heartbeat('x', 'b', 1));
        for (let i = 0; i < frame.length - 1 && !s.destroyed && s.readyState === 'open'; i++) {
          s.write(frame.subarray(i, i + 1));
          await sleep(40);
        }
      },
    },
  ];
  await withPeerTraffic(a, received, 600, async () => {
    for (const c of cases) {
      const before = logger.lines.length;
      const socket = await rawConnect(b.port);
      const done = closed(socket);
      await c.act(socket);
      await done;
      await waitFor(
        () => logger.lines.slice(before).some((l) => c.reason.test(l)),
        `logged reason for ${c.name}`,
      );
    }
  });
  assert.is(b.inboundCount, 1, 'only the real peer connection remains');
  assert.ok(b.counters.rejectedCount >= cases.length);
  await a.close();
  await b.close();
});

// Proves a peer from another cluster is refused on both sides with logged reasons and none of its messages arrive.
test('handshake refuses a peer from another cluster', async () => {
  const bLogger = captureLogger();
  const cLogger = captureLogger();
  const b = await startTransport('b', { logger: bLogger });
  const c = await startTransport('c', { logger: cLogger, cluster: 'other-cluster' });
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  c.addPeer('b', b.address);
  // The refusal can come back before any poll sees the connection up: wait on the logs instead.
  await waitFor(
    () => bLogger.lines.some((l) => /Cluster mismatch: peer c is in cluster other-cluster/.test(l)),
    'b logs refusal',
  );
  await waitFor(
    () => cLogger.lines.some((l) => /Refused by b: Cluster mismatch/.test(l)),
    'c logs refusal',
  );
  c.send(heartbeat('c', 'b', 1));
  await sleep(50);
  assert.is(received.length, 0);
  assert.is(b.inboundCount, 0);
  await c.close();
  await b.close();
});

// Proves a peer that never reads cannot make the sender buffer more than inflightBytesMax; excess sends are dropped.
test('backpressure bounds bytes in flight to a peer that does not read', async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.pause();
    sockets.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const inflightBytesMax = 1 << 20;
  const a = await startTransport('a', { inflightBytesMax, frameBytesMax: 65_536 });
  a.addPeer('x', `127.0.0.1:${port}`);
  await waitFor(() => a.connected('x'), 'a connected to x');
  let peakBytes = 0;
  for (let round = 0; round < 60; round++) {
    for (let i = 0; i < 50; i++) a.send(appendMessage('a', 'x', round * 50 + i, 64, 100));
    a.send(heartbeat('a', 'x', round));
    peakBytes = Math.max(peakBytes, a.inflightBytes('x'));
    await sleep(2);
    peakBytes = Math.max(peakBytes, a.inflightBytes('x'));
  }
  assert.ok(peakBytes <= inflightBytesMax, `peak ${peakBytes} within ${inflightBytesMax}`);
  assert.ok(peakBytes > inflightBytesMax / 2, `the bound was reached: peak ${peakBytes}`);
  assert.ok(a.counters.droppedCount > 0, 'excess sends dropped');
  await a.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

// Proves a dialer reconnects (with backoff) after the remote restarts on the same port, and traffic resumes.
test('reconnects after the remote restarts', async () => {
  const a = await startTransport('a', { reconnectDelayMsMin: 10, reconnectDelayMsMax: 100 });
  let b = await startTransport('b');
  const port = b.port;
  a.addPeer('b', b.address);
  await waitFor(() => a.connected('b'), 'first connection');
  await b.close();
  await waitFor(() => !a.connected('b'), 'a notices the close');
  a.send(heartbeat('a', 'b', 1)); // dropped: unreachable
  assert.ok(a.counters.droppedCount >= 1);
  b = await startTransport('b', { port });
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  await waitFor(() => a.connected('b'), 'reconnected');
  for (let i = 0; i < 50; i++) a.send(heartbeat('a', 'b', i));
  await waitFor(() => received.length >= 50, 'traffic after restart');
  assert.equal(received.map((m) => m.type === 'heartbeat' ? m.readSeq : -1), [...Array(50).keys()]);
  await a.close();
  await b.close();
});

// Proves a flood of 2,000 connections beyond connectionsMax is refused and logged while the real peer is still served.
test('connection flood: beyond connectionsMax refused, node keeps serving', async () => {
  const logger = captureLogger();
  const connectionsMax = 50;
  const b = await startTransport('b', {
    logger,
    connectionsMax: connectionsMax + 1,
    handshakeDeadlineMs: 60_000,
  });
  const a = await startTransport('a');
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  a.addPeer('b', b.address);
  await waitFor(() => a.connected('b') && b.inboundCount === 1, 'a connected to b');
  const flood: net.Socket[] = [];
  let peakInbound = 0;
  await withPeerTraffic(a, received, 300, async () => {
    for (let batch = 0; batch < 10; batch++) {
      const opened = await Promise.all(
        Array.from({ length: 200 }, () => rawConnect(b.port).catch(() => null)),
      );
      for (const s of opened) if (s !== null) flood.push(s);
      peakInbound = Math.max(peakInbound, b.inboundCount);
    }
    await waitFor(() => b.counters.rejectedCount >= 2_000 - connectionsMax, 'refusals counted');
  });
  assert.ok(peakInbound <= connectionsMax + 1, `inbound ${peakInbound} within limit`);
  assert.ok(
    logger.lines.some((l) =>
      /Refusing inbound connection from .*: 51 connections, limit 51/.test(l)
    ),
  );
  for (const s of flood) s.destroy();
  await a.close();
  await b.close();
});

test.run();
