// A port that is still in use when a member restarts is tried again for a bounded time: the
// listen succeeds once the port is free, and fails with EADDRINUSE when it stays taken.
import * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../lib/cli/processes.ts';
import { listenRetrying, listenRetryMsMax } from '../../lib/transport/listen.ts';

function hold(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}
const close = (s: net.Server) => new Promise<void>((resolve) => s.close(() => resolve()));

test('a port released within the bound is listened on, after one warning', async () => {
  const port = await freePort();
  const holder = await hold(port);
  const warnings: string[] = [];
  setTimeout(() => void close(holder), 300);
  const server = net.createServer();
  const started = Date.now();
  await listenRetrying(server, port, '127.0.0.1', (m) => warnings.push(m));
  assert.ok(Date.now() - started >= 250, 'it waited for the port');
  assert.is((server.address() as net.AddressInfo).port, port);
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!, /in use; trying again/);
  // Failed attempts leave no listener behind (Bun warned of 11 'listening' listeners).
  assert.is(server.listenerCount('listening'), 0);
  assert.is(server.listenerCount('error'), 0);
  await close(server);
});

test('a port that stays taken fails with EADDRINUSE after the bound', async () => {
  const port = await freePort();
  const holder = await hold(port);
  const started = Date.now();
  try {
    await listenRetrying(net.createServer(), port, '127.0.0.1', () => {});
    assert.unreachable('listened on a taken port');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'EADDRINUSE');
    assert.ok(Date.now() - started >= listenRetryMsMax - 200);
  } finally {
    await close(holder);
  }
});

test.run();
