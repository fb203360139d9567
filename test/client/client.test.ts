// Proves `RaftClient` against real in-process members over TCP on 127.0.0.1: it finds the leader
// from any server, follows NOT_LEADER hints without losing pipelined commands, waits out
// NO_LEADER and reports it as retryable, fails fast when asked and no server listens, and refuses
// bad options by name.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError, RaftClient } from '../../lib/client/client.ts';
import {
  cleanUp,
  leaderOf,
  members,
  startCluster,
  startNode,
  stopCluster,
} from '../server/in-process.ts';

const test = suite('client');
test.after(cleanUp);

// Bad options are refused at connect with a TypeError or RangeError naming the option.
test('options are validated, naming the option', async () => {
  const cases: [Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    [{}, TypeError, /option servers\b/],
    [{ servers: [] }, RangeError, /option servers\b/],
    [{ servers: ['nohost'] }, RangeError, /option servers\.0\b/],
    [{ servers: ['127.0.0.1:1'], requestTimeoutMs: 0 }, RangeError, /option requestTimeoutMs\b/],
    [{ servers: ['127.0.0.1:1'], retryDelay: 5 }, TypeError, /option retryDelay\b/],
  ];
  for (const [options, kind, pattern] of cases) {
    try {
      await RaftClient.connect(options as never);
      assert.unreachable(`accepted ${JSON.stringify(options)}`);
    } catch (error) {
      assert.instance(error, kind, String(error));
      assert.match((error as Error).message, pattern);
    }
  }
});

// Given only a follower's address, the client moves to the leader the follower forwarded to; many
// commands pipelined on the follower's connection are all forwarded or sent again, none lost.
test('finds the leader from any one server and loses no pipelined command on the way', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    for (const node of nodes) {
      const client = await RaftClient.connect({
        servers: [node.member.clientAddress!],
        requestTimeoutMs: 5_000,
      });
      try {
        const outputs = await Promise.all(
          Array.from(
            { length: 100 },
            (_, i) => client.command({ op: 'put', key: `${node.member.id}-${i}`, value: 'v' }),
          ),
        );
        assert.equal(outputs, outputs.map(() => ({ previous: null })));
        assert.is(client.leaderId, node.server === leader ? null : leader.id);
        assert.equal(await client.query({ op: 'get', key: `${node.member.id}-7` }), { value: 'v' });
        assert.is(
          (await client.status() as { role: string }).role,
          'leader',
          'it now talks to the leader',
        );
      } finally {
        await client.close();
      }
    }
  } finally {
    await stopCluster(nodes);
  }
});

// With no leader the client keeps trying, and succeeds once one is elected.
test('waits out NO_LEADER and succeeds once a leader is elected', async () => {
  const nodes = await members(3);
  try {
    await startNode(nodes[0]!, nodes);
    const client = await RaftClient.connect({
      servers: [nodes[0]!.member.clientAddress!],
      requestTimeoutMs: 10_000,
    });
    try {
      const write = client.commandWithIndex({ op: 'put', key: 'k', value: 'v' });
      await new Promise((r) => setTimeout(r, 300));
      await Promise.all(nodes.slice(1).map((n) => startNode(n, nodes)));
      const r = await write;
      assert.equal(r.output, { previous: null });
      assert.ok(r.index >= 2);
    } finally {
      await client.close();
    }
  } finally {
    await stopCluster(nodes);
  }
});

// With failFastUnreachable, a request fails at once (NO_LEADER, retryable: never sent) when every
// server refuses the connection, naming each address; without it (the default) the client rides
// out a cluster that is not up yet, and a request that times out meanwhile says that no server
// was reachable, naming each. Once servers listen, the fail-fast client works again.
test('failFastUnreachable: every server refusing fails at once; off, the client waits', async () => {
  const nodes = await members(3);
  const servers = nodes.map((n) => n.member.clientAddress!);
  const fast = await RaftClient.connect({ servers, failFastUnreachable: true });
  const patient = await RaftClient.connect({ servers, requestTimeoutMs: 10_000 });
  try {
    const startedMs = Date.now();
    const error = await fast.status().then(() => null, (e: unknown) => e);
    const elapsedMs = Date.now() - startedMs;
    assert.instance(error, ClientError);
    assert.is((error as ClientError).code, 'NO_LEADER');
    assert.ok((error as ClientError).retryable);
    for (const a of servers) {
      assert.ok((error as Error).message.includes(`${a} connection refused`), String(error));
    }
    assert.ok(elapsedMs < 5_000, `failed after ${elapsedMs} ms, the deadline is 10000 ms`);
    // The default client waits its deadline, then says why nothing answered: every address.
    const short = await RaftClient.connect({ servers, session: false, requestTimeoutMs: 500 });
    const late = await short.status().then(() => null, (e: unknown) => e);
    await short.close();
    assert.instance(late, ClientError);
    assert.is((late as ClientError).code, 'TIMEOUT');
    assert.match((late as Error).message, /no server reachable \(/);
    for (const a of servers) {
      assert.ok((late as Error).message.includes(`${a} connection refused`), String(late));
    }
    const write = patient.commandWithIndex({ op: 'put', key: 'k', value: 'v' });
    write.catch(() => {}); // awaited below: a failure must fail the test, not the process
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all(nodes.map((n) => startNode(n, nodes)));
    assert.equal((await write).output, { previous: null });
    const status = await fast.status() as { id: string };
    assert.ok(nodes.some((n) => n.member.id === status.id));
  } finally {
    await fast.close();
    await patient.close();
    await stopCluster(nodes);
  }
});

// When no leader appears in time, the command fails with the refusal (retryable), not as an
// unknown outcome, and it is never sent again after the caller was told.
test('NO_LEADER until the deadline is a retryable error, and the command is not sent later', async () => {
  const nodes = await members(3);
  try {
    const lone = await startNode(nodes[0]!, nodes);
    const client = await RaftClient.connect({
      servers: [nodes[0]!.member.clientAddress!],
      requestTimeoutMs: 1000, // well above one round trip even on a loaded machine
      retryDelayMs: 20,
    });
    try {
      await client.command({ op: 'put', key: 'never', value: 'v' });
      assert.unreachable('a command succeeded without a leader');
    } catch (error) {
      assert.instance(error, ClientError);
      assert.is((error as ClientError).code, 'NO_LEADER', (error as Error).message);
      assert.ok((error as ClientError).retryable);
    } finally {
      await client.close();
    }
    await Promise.all(nodes.slice(1).map((n) => startNode(n, nodes)));
    const leader = await leaderOf(nodes);
    await leader.barrier();
    assert.equal(await leader.query({ op: 'get', key: 'never' }), { value: null });
    assert.ok(lone.status().lastAppliedIndex >= 1);
  } finally {
    await stopCluster(nodes);
  }
});

// The same with a retry almost always in flight at the deadline (1 ms retry delay, 500 ms
// deadline, well above one round trip, 6 times): that last attempt's answer decides: NO_LEADER.
test('NO_LEADER is reported even when a retry is in flight at the deadline', async () => {
  const nodes = await members(3);
  try {
    await startNode(nodes[0]!, nodes);
    const client = await RaftClient.connect({
      servers: [nodes[0]!.member.clientAddress!],
      requestTimeoutMs: 500,
      retryDelayMs: 1,
    });
    try {
      for (let i = 0; i < 6; i++) {
        const error = await client.command({ op: 'put', key: `k${i}`, value: 'v' }).then(
          () => null,
          (e: unknown) => e,
        );
        assert.instance(error, ClientError);
        assert.is(
          (error as ClientError).code,
          'NO_LEADER',
          `attempt ${i}: ${(error as Error).message}`,
        );
      }
    } finally {
      await client.close();
    }
  } finally {
    await stopCluster(nodes);
  }
});

test.run();
