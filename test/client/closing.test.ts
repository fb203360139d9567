// Proves that a server's idle closes never cost a client a command: a request left unanswered by a
// `closing` notice is sent again (the server read nothing after it), while a connection that just
// drops after a command was sent leaves that command's outcome unknown (TIMEOUT, never resent);
// and against a real member that closes idle connections every ~150 ms, hundreds of commands
// issued around those closes all succeed, each applied exactly once.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError, RaftClient } from '../../lib/client/client.ts';
import { cleanUp, leaderOf, startCluster, stopCluster } from '../server/in-process.ts';
import { sleep } from '../server/support.ts';
import { FakeServer } from './fake-server.ts';

const test = suite('client and idle closes');
test.after(cleanUp);

// First connection: the command is answered only with a closing notice; the client sends it again
// on a new connection to the same server, which answers it.
test('a request unanswered at a closing notice is sent again, commands too', async () => {
  const fake = await FakeServer.start((request, c) => {
    if (request.type !== 'command') return;
    if (c.index === 0) {
      c.send({ type: 'closing', reason: 'Idle deadline exceeded: test' });
      c.socket.end();
    } else c.send({ type: 'ok', id: request.id, index: 5, output: 'applied' });
  });
  const client = await RaftClient.connect({
    servers: [fake.address],
    requestTimeoutMs: 5_000,
    session: false,
  });
  try {
    assert.equal(await client.commandWithIndex({ op: 'noop' }), { index: 5, output: 'applied' });
    assert.equal(fake.of('command').map((r) => r.connection), [0, 1]);
  } finally {
    await client.close();
    await fake.close();
  }
});

// The connection drops with no notice after the command was sent: it may have been proposed, so it
// rejects with TIMEOUT and is not sent again.
test('a command on a connection that drops without a notice is not resent', async () => {
  const fake = await FakeServer.start((request, c) => {
    if (request.type === 'command') c.socket.destroy();
  });
  const client = await RaftClient.connect({
    servers: [fake.address],
    requestTimeoutMs: 5_000,
    session: false,
  });
  try {
    const error = await client.command({ op: 'noop' }).then(() => null, (e: unknown) => e);
    assert.instance(error, ClientError);
    assert.is((error as ClientError).code, 'TIMEOUT', String(error));
    await sleep(200);
    assert.is(fake.of('command').length, 1, 'sent once');
  } finally {
    await client.close();
    await fake.close();
  }
});

// A member closing connections idle for 100 ms: rounds of 10 appends issued after pauses of
// 95 to 135 ms, around the moment the member closes the connection, now and then meet one being
// closed (the notice is already sent, not yet read). Every append succeeds and its token appears
// exactly once in the chain (a resend of a command the member had read would appear twice).
test('commands racing idle closes all succeed, each applied exactly once', async () => {
  const nodes = await startCluster(1, {
    clientFirstRequestDeadlineMs: 100,
    clientIdleDeadlineMs: 100,
  });
  const client = await RaftClient.connect({
    servers: [nodes[0]!.member.clientAddress!],
    requestTimeoutMs: 5_000,
  });
  try {
    await leaderOf(nodes);
    const tokens: string[] = [];
    for (let round = 0; round < 40; round++) {
      await sleep(95 + ((round * 7) % 40));
      const batch = Array.from({ length: 10 }, (_, i) => `<${round}.${i}>`);
      tokens.push(...batch);
      await Promise.all(batch.map((t) => client.command({ op: 'append', key: 'chain', value: t })));
    }
    const { value } = (await client.query({ op: 'get', key: 'chain' })) as { value: string };
    const applied = value.match(/<[^>]*>/g) ?? [];
    assert.is(applied.length, tokens.length, 'each command applied once');
    assert.equal([...applied].sort(), [...tokens].sort());
  } finally {
    await client.close();
    await stopCluster(nodes);
  }
});

test.run();
