/**
 * Real-TCP tests (127.0.0.1) of how TcpTransport finds a peer that comes back: the capped
 * backoff, the redial when the peer's own handshake arrives, and the refusal back-off.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RaftMessage } from '../../lib/base/messages.ts';
import { parseTransportOptions, type TransportLogger } from '../../lib/transport/options.ts';
import type { TcpTransport } from '../../lib/transport/tcp.ts';
import { captureLogger, heartbeat, startTransport, waitFor } from './helpers.ts';

/** One election timeout with RaftServer's defaults (tickMs 10 × electionTicks 15), in ms. */
const electionTimeoutMsDefault = 10 * 15;
/** Room for connect, handshake, timers and polling on a loaded 2-core machine, in ms. */
const slackMs = 250;

/** A logger that counts failed connection attempts to each peer (debug lines). */
function attemptLogger(): TransportLogger & { failures: () => number } {
  let failures = 0;
  return {
    warn: () => {},
    info: () => {},
    debug: (m) => void (/^Cannot connect to /.test(m) && (failures += 1)),
    failures: () => failures,
  };
}

/** Run `body` with a list it adds transports to; every one is closed after, also on failure. */
async function withTransports(body: (opened: TcpTransport[]) => Promise<void>): Promise<void> {
  const opened: TcpTransport[] = [];
  try {
    await body(opened);
  } finally {
    for (const transport of opened) await transport.close();
  }
}

/** Send a heartbeat a→b every 2 ms until the returned stop function is called. */
function keepSending(a: TcpTransport): () => void {
  let seq = 0;
  const timer = setInterval(() => a.send(heartbeat('a', 'b', seq++)), 2);
  return () => clearInterval(timer);
}

// Proves the reconnect delay is capped near an election timeout: after a dozen failed attempts
// (old backoff: seconds), a returning peer is dialled within the default cap, three times over.
test('a peer down for long is redialled within the default cap once it is back', () =>
  withTransports(async (opened) => {
    const logger = attemptLogger();
    // Floor 1 ms: the failed attempts pile up fast, and the ceiling reaches the cap.
    const a = await startTransport('a', { logger, reconnectDelayMsMin: 1 });
    opened.push(a);
    const first = await startTransport('b');
    const port = first.port;
    await first.close();
    a.addPeer('b', `127.0.0.1:${port}`);
    const tookMs: number[] = [];
    for (let round = 0; round < 3; round++) {
      const before = logger.failures();
      await waitFor(() => logger.failures() - before >= 12, '12 failed attempts', 30_000);
      const b = await startTransport('b', { port });
      opened.push(b);
      const upAtMs = performance.now();
      await waitFor(() => a.connected('b'), 'a redials b', 30_000);
      tookMs.push(performance.now() - upAtMs);
      await b.close();
      await waitFor(() => !a.connected('b'), 'a notices b is down');
    }
    assert.ok(
      Math.max(...tookMs) <= electionTimeoutMsDefault + slackMs,
      `redialled within ${electionTimeoutMsDefault} + ${slackMs} ms: ${
        tookMs.map((ms) => ms.toFixed(0)).join(', ')
      } ms`,
    );
  }));

// Proves a peer that restarts and dials us is redialled at once, not after the backoff: from its
// listener being up to our first message delivered, far under a 2 s backoff; and no redial loop.
test('a peer that restarts and dials us is redialled at once', () =>
  withTransports(async (opened) => {
    // A long backoff on purpose: only the redial on b's handshake can beat it.
    const backoffMs = 2_000;
    const a = await startTransport('a', {
      reconnectDelayMsMin: backoffMs,
      reconnectDelayMsMax: 5_000,
    });
    const before = await startTransport('b');
    opened.push(a, before);
    const port = before.port;
    a.addPeer('b', before.address);
    before.addPeer('a', a.address);
    await waitFor(() => a.connected('b') && before.connected('a'), 'both connected');
    await before.close(); // as a SIGKILL would: both of b's connections close
    await waitFor(() => !a.connected('b'), 'a notices b is down');
    const stop = keepSending(a);
    try {
      const received: RaftMessage[] = [];
      let firstAtMs = -1;
      const b = await startTransport('b', { port });
      opened.push(b);
      const upAtMs = performance.now();
      b.onMessage((m) => {
        if (firstAtMs < 0) firstAtMs = performance.now();
        received.push(m);
      });
      b.addPeer('a', a.address);
      await waitFor(() => received.length > 0, 'a message from a', 10_000);
      const tookMs = firstAtMs - upAtMs;
      assert.ok(tookMs < backoffMs / 4, `first message ${tookMs.toFixed(0)} ms after b is up`);
      // Each side holds one connection the other dialled: the redial did not set off another.
      await sleep(300);
      assert.is(a.inboundCount, 1, 'a holds one inbound connection');
      assert.is(b.inboundCount, 1, 'b holds one inbound connection');
    } finally {
      stop();
    }
  }));

// Proves a refusal (peer of another cluster) still backs off for refusedRedialDelayMs (2.5 s or
// more), beyond a 20 ms cap, on both sides, and that a refused handshake triggers no redial.
test('a peer of another cluster is redialled only after the refusal back-off', () =>
  withTransports(async (opened) => {
    const bLogger = captureLogger();
    const cLogger = captureLogger();
    const fast = { reconnectDelayMsMin: 1, reconnectDelayMsMax: 20 };
    const b = await startTransport('b', { ...fast, logger: bLogger });
    const c = await startTransport('c', { ...fast, logger: cLogger, cluster: 'other-cluster' });
    opened.push(b, c);
    const refusalsIn = (lines: string[]) => lines.filter((l) => /Cluster mismatch/.test(l)).length;
    c.addPeer('b', b.address);
    b.addPeer('c', c.address);
    await waitFor(
      () => refusalsIn(bLogger.lines) >= 2 && refusalsIn(cLogger.lines) >= 2,
      'each side refused and was refused once',
    );
    // With the 20 ms cap alone, each side would dial about 50 times in this second.
    await sleep(1_000);
    // Per side: one refusal made (its listener), one received (its dialer).
    assert.is(refusalsIn(bLogger.lines), 2, bLogger.lines.join('\n'));
    assert.is(refusalsIn(cLogger.lines), 2, cLogger.lines.join('\n'));
  }));

// Proves the answer deadline: a connection whose heartbeats go unanswered past answerDeadlineMs
// (a network that dropped it without a word, here a peer that stops answering) is closed and
// redialled, logged once as a warning however long the silence lasts; the peer, dialled again
// while its own old connection is up, replaces that one too; once answers come back, nothing is
// closed any more.
test('unanswered heartbeats close the connection and redial, on both sides', () =>
  withTransports(async (opened) => {
    // Well above a loaded machine's event-loop stalls: a stall between a heartbeat and its answer
    // being read would look like silence.
    const deadlineMs = 500;
    const aLog = captureLogger();
    const bLog = captureLogger();
    const fast = { answerDeadlineMs: deadlineMs, reconnectDelayMsMin: 5, reconnectDelayMsMax: 20 };
    const a = await startTransport('a', { ...fast, logger: aLog });
    const b = await startTransport('b', { ...fast, logger: bLog });
    opened.push(a, b);
    let answering = true;
    b.onMessage((m) => {
      if (answering && m.type === 'heartbeat') {
        b.send({ type: 'heartbeatResponse', from: 'b', to: 'a', term: 1, readSeq: m.readSeq });
      }
    });
    a.addPeer('b', b.address);
    b.addPeer('a', a.address);
    await waitFor(() => a.connected('b') && b.connected('a'), 'both connected');
    let seq = 1;
    const timer = setInterval(() => a.send(heartbeat('a', 'b', seq++)), 20);
    const closedByA = () => aLog.lines.filter((l) => /no answer to a heartbeat/.test(l)).length;
    const replacedByB = () => bLog.lines.filter((l) => /a dialled us again/.test(l)).length;
    try {
      await sleep(deadlineMs * 3);
      assert.is(closedByA(), 0, 'answered heartbeats close nothing');
      answering = false;
      await waitFor(() => closedByA() === 1, 'a closes its silent connection', 5_000);
      await waitFor(() => replacedByB() >= 1, 'b replaces its own old connection', 5_000);
      // Silent for several deadlines: one warning, the later closes at debug.
      await sleep(deadlineMs * 4);
      assert.is(closedByA(), 1, aLog.lines.join('\n'));
      answering = true;
      await waitFor(
        () => aLog.lines.some((l) => /Heartbeats to b are answered again/.test(l)),
        'the answers noticed',
        5_000,
      );
      await waitFor(() => a.connected('b') && b.connected('a'), 'both connected again');
      const linesBefore = aLog.lines.length + bLog.lines.length;
      await sleep(deadlineMs * 3);
      // No loop: neither side's redial sets off the other's once heartbeats are answered.
      assert.is(aLog.lines.length + bLog.lines.length, linesBefore, 'nothing closed since');
    } finally {
      clearInterval(timer);
    }
  }));

test('answerDeadlineMs is validated', () => {
  for (const bad of [-1, 1.5, 3_600_001]) {
    assert.throws(
      () => parseTransportOptions({ cluster: 'c', member: 'a', answerDeadlineMs: bad }),
      (e: Error) => e instanceof RangeError && /answerDeadlineMs/.test(e.message),
    );
  }
  assert.is(parseTransportOptions({ cluster: 'c', member: 'a' }).answerDeadlineMs, 1_000);
});

test.run();
