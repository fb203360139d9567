// Proves the client's own failure detection, over real TCP on 127.0.0.1: the keep-alive decides
// ping and dead as documented; a server that accepts and then never answers (a paused process, as
// its client sees it) is given up within the keep-alive timeout, not the request's deadline, the
// command sent there rejects with TIMEOUT and is never sent again, and a query moves on to the
// next server; a connect that cannot complete is given up at the connect deadline; a client that
// was itself blocked past the timeout does not take its own lateness for a dead server.
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import process from 'node:process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError, RaftClient } from '../../lib/client/client.ts';
import { KeepAlive } from '../../lib/client/keep-alive.ts';
import { signalAndWait } from '../../lib/cli/processes.ts';
import { cleanUp, leaderOf, startCluster, stopCluster } from '../server/in-process.ts';
import { sleep } from '../server/support.ts';
import { spawnTs } from '../support/child.ts';
import { FakeServer } from './fake-server.ts';

const test = suite('client keep-alive');
test.after(cleanUp);

// Pings only while requests are outstanding and the connection is silent; dead only when a ping
// went unanswered for the timeout; any byte heard restarts the count.
test('KeepAlive pings after the interval of silence and declares dead after the timeout', () => {
  const k = new KeepAlive(100, 300, 0);
  assert.is(k.check(1_000, false), 'none', 'nothing outstanding: never a ping');
  k.started(1_000);
  assert.is(k.check(1_099, true), 'none');
  assert.is(k.check(1_100, true), 'ping');
  assert.is(k.check(1_150, true), 'none', 'one ping at a time');
  assert.is(k.check(1_399, true), 'none');
  k.heard(1_390);
  assert.is(k.check(1_450, true), 'none', 'heard: alive again');
  assert.is(k.check(1_490, true), 'ping');
  assert.is(k.check(1_790, true), 'dead');
});

// The fake accepts and reads but never answers, not even a ping. The command sent there rejects
// with TIMEOUT (its outcome is unknown) well within its 10 s deadline, and is never resent; the
// query sent alongside is retried at the real member and answered; the key was never written.
test('a server that stops answering is left within the keep-alive timeout; its command is not resent', async () => {
  const hung = await FakeServer.start();
  const nodes = await startCluster(1);
  const client = await RaftClient.connect({
    servers: [hung.address, nodes[0]!.member.clientAddress!],
    requestTimeoutMs: 10_000,
    retryDelayMs: 20,
    session: false, // without a session a command of unknown outcome is never sent again
  });
  try {
    const leader = await leaderOf(nodes);
    const startedMs = Date.now();
    const command = client.command({ op: 'put', key: 'k', value: 'v' }).then(
      () => null,
      (e: unknown) => e,
    );
    const query = client.query({ op: 'get', key: 'k' });
    query.catch(() => {}); // awaited below; a failed assertion before must not leave it unhandled
    const error = await command;
    const failedMs = Date.now() - startedMs;
    assert.instance(error, ClientError);
    assert.is((error as ClientError).code, 'TIMEOUT', String(error));
    assert.ok(!(error as ClientError).retryable, 'an unknown outcome is not retryable');
    assert.match((error as Error).message, /Keep-alive timeout/);
    // Default keep-alive: 100 ms of silence, then 300 ms for the ping's answer.
    assert.ok(failedMs >= 350 && failedMs < 1_500, `gave up after ${failedMs} ms`);
    assert.equal(await query, { value: null });
    assert.ok(Date.now() - startedMs < 2_000, 'the query moved on at once');
    await sleep(300);
    assert.equal(await leader.query({ op: 'get', key: 'k' }), { value: null }, 'never resent');
    assert.is(hung.of('command').length, 1, 'sent once, to the hung server');
    assert.ok(hung.of('ping').length >= 1, 'the client pinged before giving up');
    // The client now works through the real member.
    assert.equal(await client.command({ op: 'put', key: 'k2', value: 'v' }), { previous: null });
  } finally {
    await client.close();
    await hung.close();
    await stopCluster(nodes);
  }
});

// The member after the hung one still names it as leader (it has not noticed yet). The client does
// not follow that stale hint back to the server it just gave up on, which would strand the next
// command there too: the second command succeeds at the real member and the hung server received
// exactly one command.
test('a stale leader hint naming the server just given up on is not followed', async () => {
  const hung = await FakeServer.start();
  const stale = await FakeServer.start((request, c) => {
    if (request.type === 'ping') {
      return c.send({ type: 'ok', id: request.id, index: 0, output: null });
    }
    c.send({
      type: 'error',
      id: request.id,
      code: 'NOT_LEADER',
      message: 'Not the leader: follower',
      leaderId: 'hung',
      leaderAddress: hung.address,
    });
  });
  const nodes = await startCluster(1);
  const client = await RaftClient.connect({
    servers: [hung.address, stale.address, nodes[0]!.member.clientAddress!],
    requestTimeoutMs: 10_000,
    retryDelayMs: 20,
    session: false, // without a session a command of unknown outcome is never sent again
  });
  try {
    await leaderOf(nodes);
    const first = await client.command({ op: 'put', key: 'a', value: 'v' }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.is((first as ClientError).code, 'TIMEOUT', String(first));
    const startedMs = Date.now();
    assert.equal(await client.command({ op: 'put', key: 'b', value: 'v' }), { previous: null });
    assert.ok(Date.now() - startedMs < 1_000, 'went on to the real member at once');
    assert.is(stale.of('command').length, 1, 'the stale member refused it once');
    assert.is(hung.of('command').length, 1, 'the hung server got only the first command');
  } finally {
    await client.close();
    await hung.close();
    await stale.close();
    await stopCluster(nodes);
  }
});

// The server (a child process) answers the ping 150 ms after it came, while the client's process
// is blocked for 800 ms, twice the keep-alive's interval and timeout together. When the client runs again, its timer
// finds the ping unanswered before the socket is read: the answer is waiting, so the connection
// stays and the command stays in flight (the client gave up on it before: a busy client at 256
// in flight ended every command on a live leader with an unknown outcome).
test('a client blocked past the keep-alive timeout does not give up on a server that answered', async () => {
  const child: ChildProcess = spawnTs('test/client/listen-child.ts', ['pings']);
  let client: RaftClient | null = null;
  try {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += String(chunk)));
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', () => {
        const line = /\{"address":"([^"]+)"\}/.exec(out);
        if (line !== null) resolve(line[1]!);
      });
      child.once('exit', () => reject(new Error(`listen-child exited: ${out}`)));
    });
    client = await RaftClient.connect({
      servers: [address],
      requestTimeoutMs: 10_000,
      session: false,
    });
    let outcome: unknown = 'in flight';
    client.command({ op: 'put', key: 'k', value: 'v' }).then(
      (value) => (outcome = value),
      (e: unknown) => (outcome = e),
    );
    // The connection went silent and the client pinged: block at once, before the answer.
    await new Promise<void>((resolve) => {
      const look = () => /ping 1\n/.test(out) ? resolve() : setTimeout(look, 1);
      look();
    });
    assert.match(out, /accepted 1\n/);
    const blockedUntil = Date.now() + 800;
    while (Date.now() < blockedUntil) { /* this process is blocked, the server is not */ }
    await sleep(200);
    assert.is(outcome, 'in flight', `the command ended: ${String(outcome)}`);
    assert.not.match(out, /accepted 2/, 'the client did not reconnect');
  } finally {
    await client?.close();
    await signalAndWait(child, 'SIGKILL', 5_000);
  }
});

/** Connect to `port` until one connection does not complete within 200 ms; returns the rest. */
async function fillAcceptQueue(port: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 4_096; i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    socket.on('error', () => {});
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      setTimeout(() => resolve(false), 200);
    });
    if (!connected) return sockets;
  }
  throw new Error('The accept queue never filled');
}

// The first server's accept queue is full (its process is stopped), so a connect to it hangs:
// the client gives up at the connect deadline and the status request is answered by the next.
test('a connect that cannot complete is given up at the connect deadline', async () => {
  const child: ChildProcess = spawnTs('test/client/listen-child.ts', ['listen']);
  const nodes = await startCluster(1);
  let sockets: net.Socket[] = [];
  let client: RaftClient | null = null;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => resolve(JSON.parse(String(chunk)).port));
      child.once('exit', () => reject(new Error('listen-child exited')));
    });
    // By pid: under Deno `child.kill` sends nothing more once the child has been signalled.
    process.kill(child.pid!, 'SIGSTOP');
    sockets = await fillAcceptQueue(port);
    await leaderOf(nodes);
    const startedMs = Date.now();
    client = await RaftClient.connect({
      servers: [`127.0.0.1:${port}`, nodes[0]!.member.clientAddress!],
      requestTimeoutMs: 10_000,
      connectTimeoutMs: 300,
    });
    const s = (await client.status()) as { role: string };
    const tookMs = Date.now() - startedMs;
    assert.is(s.role, 'leader');
    assert.ok(tookMs >= 250 && tookMs < 1_500, `answered after ${tookMs} ms`);
  } finally {
    await client?.close();
    for (const s of sockets) s.destroy();
    process.kill(child.pid!, 'SIGCONT');
    await signalAndWait(child, 'SIGKILL', 5_000);
    await stopCluster(nodes);
  }
});

test.run();
