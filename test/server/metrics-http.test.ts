// Proves the operations HTTP port cannot be held or misused: unknown paths are 404, other methods
// 405 with Allow, HEAD has no body; a request body is never read (a 64 MiB upload is answered and
// its connection closed after a fraction of it); a silent connection is closed at
// metricsRequestDeadlineMs; connections beyond metricsConnectionsMax are closed on arrival; bad
// metrics options are a TypeError/RangeError naming them; a metrics port in use is refused before
// anything is created on disk.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { OpsHttpServer } from '../../lib/server/http.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { cleanUp, members, quiet, root, startNode } from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('metrics HTTP port');
test.after(cleanUp);

let ops: OpsHttpServer;
const deadlineMs = 400;
const connectionsMax = 4;

test.before(async () => {
  ops = await OpsHttpServer.start({
    address: '127.0.0.1:0',
    connectionsMax,
    requestDeadlineMs: deadlineMs,
    logger: quiet,
    routes: {
      metrics: () => '# TYPE x gauge\nx 1\n',
      health: () => ({ ok: true }),
      ready: () => ({ ok: false, reason: 'no leader' }),
    },
  });
});
test.after(() => ops.close());

function portOf(server: OpsHttpServer): number {
  return Number(server.address.split(':').at(-1));
}

/** Open a raw connection, write `data`, and report what came back and when it closed. */
function raw(
  data: string | Uint8Array,
  holdMs = 5_000,
): Promise<{ text: string; closedAfterMs: number | null }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(portOf(ops), '127.0.0.1', () => {
      if (data.length > 0) socket.write(data, () => {});
    });
    socket.on('data', (c: Uint8Array) => (text += new TextDecoder().decode(c)));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfterMs: null });
    }, holdMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: Date.now() - t0 });
    });
  });
}

test('routes: 200, 503 with a reason, 404, 405 with Allow, HEAD without a body', async () => {
  const base = `http://${ops.address}`;
  const m = await fetch(`${base}/metrics?x=1`);
  assert.is(m.status, 200);
  assert.is(await m.text(), '# TYPE x gauge\nx 1\n');
  assert.is(m.headers.get('connection'), 'close');
  const h = await fetch(`${base}/health`);
  assert.equal([h.status, await h.json()], [200, { health: 'true' }]);
  const r = await fetch(`${base}/ready`);
  assert.equal([r.status, await r.json()], [503, { ready: 'false', reason: 'no leader' }]);
  const nf = await fetch(`${base}/metricsx`);
  assert.is(nf.status, 404);
  await nf.text();
  const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
  assert.is(post.status, 405);
  assert.is(post.headers.get('allow'), 'GET, HEAD');
  await post.text();
  const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.is(await head.text(), '');
});

test('a request body is never read: a 64 MiB upload is answered and cut off', async () => {
  const bodyBytes = 64 * 1024 * 1024;
  const chunk = new Uint8Array(1024 * 1024).fill(97);
  const t0 = Date.now();
  const result = await new Promise<{ text: string; sentBytes: number }>((resolve) => {
    let text = '';
    let sentBytes = 0;
    const socket = net.connect(portOf(ops), '127.0.0.1', () => {
      socket.write(`POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
      const pump = () => {
        while (sentBytes < bodyBytes && !socket.destroyed) {
          sentBytes += chunk.byteLength;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    socket.on('data', (c: Uint8Array) => (text += new TextDecoder().decode(c)));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, sentBytes }));
  });
  assert.match(result.text, /^HTTP\/1\.1 405 /);
  assert.ok(result.sentBytes < bodyBytes, `cut off after ${result.sentBytes} bytes`);
  assert.ok(Date.now() - t0 < 5_000);
});

test('a silent connection is closed at the request deadline; so is a half-sent request', async () => {
  const [silent, partial] = await Promise.all([
    raw(''),
    raw('GET /metrics HTTP/1.1\r\nHost: x\r\n'),
  ]);
  for (const r of [silent, partial]) {
    assert.ok(r.closedAfterMs !== null, 'closed');
    assert.ok(r.closedAfterMs! >= deadlineMs * 0.9, `closed after ${r.closedAfterMs} ms`);
    assert.ok(r.closedAfterMs! < deadlineMs * 4, `closed after ${r.closedAfterMs} ms`);
  }
});

test('connections beyond the limit are closed on arrival; the held ones expire', async () => {
  const held = Array.from({ length: connectionsMax }, () => raw(''));
  await waitFor(
    'the held connections',
    () => ops.connectionCount === connectionsMax || undefined,
    2_000,
  );
  const extra = await raw('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.ok(extra.closedAfterMs !== null && extra.closedAfterMs < deadlineMs / 2);
  assert.is(extra.text, '', 'refused without an answer');
  assert.ok(ops.refusedCount >= 1);
  await Promise.all(held);
  await waitFor('room again', () => ops.connectionCount === 0 || undefined, 2_000);
  const after = await fetch(`http://${ops.address}/health`);
  assert.is(after.status, 200);
  await after.text();
});

test('bad metrics options are a TypeError/RangeError naming them', async () => {
  const nodes = await members(1);
  const n = nodes[0]!;
  const cases: [Record<string, unknown>, RegExp, typeof TypeError | typeof RangeError][] = [
    [{ metricsAddress: 'nowhere' }, /metricsAddress/, RangeError],
    [{ metricsAddress: 7 }, /metricsAddress/, TypeError],
    [{ metricsConnectionsMax: 0 }, /metricsConnectionsMax/, RangeError],
    [{ metricsRequestDeadlineMs: 10 }, /metricsRequestDeadlineMs/, RangeError],
    [{ logLevel: 'loud' }, /logLevel/, TypeError],
    [{ logFormat: 'xml' }, /logFormat/, TypeError],
  ];
  for (const [extra, name, kind] of cases) {
    try {
      await startNode(n, nodes, extra);
      assert.unreachable(`accepted ${JSON.stringify(extra)}`);
    } catch (error) {
      assert.instance(error, kind, `${JSON.stringify(extra)}: ${(error as Error).message}`);
      assert.match((error as Error).message, name);
    }
  }
});

test('a metrics port in use is refused before the data directory is created', async () => {
  const nodes = await members(1);
  const m = nodes[0]!.member;
  const dataDir = join(root, 'never-created');
  try {
    await RaftServer.start({
      id: m.id,
      cluster: 'server-test',
      dataDir,
      peerAddress: m.address!,
      clientAddress: m.clientAddress!,
      members: [m],
      stateMachine: new KvStateMachine(),
      logger: quiet,
      metricsAddress: ops.address,
    });
    assert.unreachable('started on a port in use');
  } catch (error) {
    assert.match(String((error as Error).message), /EADDRINUSE|in use/i);
  }
  assert.not.ok(existsSync(dataDir), 'nothing created on disk');
});

test.run();
