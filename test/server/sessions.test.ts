// Client sessions end to end on real in-process members (LMDB files, TCP on 127.0.0.1): a command
// whose answer is lost with its connection is sent again on another member and answered with the
// original output, applied once (without a session it is of unknown outcome); a client on a
// follower has its commands forwarded and reads its own writes there; session events arrive once
// each, in order, before the answer of the command that published them, across a move to another
// member; an expired session is refused (UNKNOWN_SESSION) and a new one can be opened; a session
// does not expire while there is no leader.
import * as net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientRequestSchema } from '../../lib/base/client-protocol.ts';
import { ClientError, type ClientEvent, RaftClient } from '../../lib/client/client.ts';
import { parseAddress } from '../../lib/base/address.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { MessageCodec } from '../../lib/transport/codec.ts';
import { FrameDecoder } from '../../lib/transport/frame.ts';
import {
  cleanUp,
  leaderOf,
  type Node,
  startCluster,
  startNode,
  stopCluster,
  stopNode,
} from './in-process.ts';
import { RawConnection, requestFrame } from './raw-client.ts';
import { sleep, waitFor } from './support.ts';

const test = suite('client sessions');
test.after(cleanUp);

const codec = cborCodec<unknown>();
const requests = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });

/**
 * A TCP proxy in front of `target` that passes everything until the client sends its first
 * command; from then on it drops every byte the server sends back, and closes both sides
 * `closeAfterMs` later. The command reaches the server; its answer never reaches the client.
 */
async function answerEatingProxy(target: string, closeAfterMs: number) {
  const { host, port } = parseAddress(target);
  let commandsSeen = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port });
    let eating = false;
    const decoder = new FrameDecoder(1 << 20, (body) => {
      const r = requests.decode(body);
      if (r.ok && r.value.type === 'command' && !eating) {
        eating = true;
        commandsSeen++;
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, closeAfterMs);
      }
    });
    client.on('data', (chunk: Uint8Array) => {
      decoder.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Uint8Array) => {
      if (!eating) client.write(chunk);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    commandsSeen: () => commandsSeen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const followerOf = async (nodes: Node[]) => {
  const leader = await leaderOf(nodes);
  return nodes.find((n) => n.server !== null && n.server !== leader)!;
};

// The answer of an applied command is lost with its connection. In a session the client sends it
// again, on the next member (a follower, which forwards it), and gets the original output: the
// value shows one append. Without a session the same loss is an unknown outcome (TIMEOUT), and the
// command is not sent again.
test('a command whose answer is lost is retried elsewhere and answered once', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    const follower = await followerOf(nodes);
    for (const session of [true, false]) {
      const key = `lost-answer-${session}`;
      const proxy = await answerEatingProxy(leader.clientAddress, 300);
      const client = await RaftClient.connect({
        servers: [proxy.address, follower.member.clientAddress!],
        requestTimeoutMs: 5_000,
        session,
        preferLeader: false,
      });
      try {
        const outcome = await client.commandWithIndex({ op: 'append', key, value: 'x' }).then(
          (r) => r,
          (e: unknown) => e,
        );
        assert.is(proxy.commandsSeen(), 1, 'the command went through the proxy once');
        assert.equal(await leader.query({ op: 'get', key }), { value: 'x' }, 'applied once');
        if (session) {
          assert.equal((outcome as { output: unknown }).output, { value: 'x' }, String(outcome));
          // The retried command kept its index: the original application's.
          const index = (outcome as { index: number }).index;
          assert.ok(index > 0 && index <= leader.status().lastAppliedIndex);
        } else {
          assert.instance(outcome, ClientError);
          assert.is((outcome as ClientError).code, 'TIMEOUT');
          assert.is((outcome as ClientError).retryable, false);
        }
      } finally {
        await client.close();
        await proxy.close();
      }
    }
  } finally {
    await stopCluster(nodes);
  }
});

// A client that stays on a follower: its commands are forwarded to the leader, each answer is
// relayed once the follower has applied it, so a sequential read there right after sees the write;
// linearizable reads are forwarded too.
test('a client on a follower is forwarded and reads its own writes there', async () => {
  const nodes = await startCluster(3);
  try {
    const follower = await followerOf(nodes);
    const client = await RaftClient.connect({
      servers: [follower.member.clientAddress!],
      preferLeader: false,
      requestTimeoutMs: 5_000,
    });
    try {
      await Promise.all(Array.from({ length: 50 }, async (_, i) => {
        await client.command({ op: 'put', key: `f${i}`, value: `v${i}` });
        assert.equal(await client.query({ op: 'get', key: `f${i}` }, 'sequential'), {
          value: `v${i}`,
        });
      }));
      assert.equal(await client.query({ op: 'get', key: 'f7' }), { value: 'v7' });
      assert.equal(await client.query({ op: 'get', key: 'f8' }, 'lease'), { value: 'v8' });
      const s = (await client.status()) as { role: string };
      assert.is(s.role, 'follower', 'it stayed on the follower');
    } finally {
      await client.close();
    }
  } finally {
    await stopCluster(nodes);
  }
});

// A watching session gets every change of its prefix once, in log order, and the change its own
// command made before that command's answer. Its member is stopped half-way: the client moves on,
// the next member sends what was not acknowledged again, and nothing is delivered twice or lost.
test('session events: once each, in order, before the answer, across a move', async () => {
  const nodes = await startCluster(3);
  const watcher = await RaftClient.connect({
    servers: nodes.map((n) => n.member.clientAddress!),
    requestTimeoutMs: 10_000,
    keepAliveTimeoutMs: 3_000,
  });
  const writer = await RaftClient.connect({
    servers: nodes.map((n) => n.member.clientAddress!),
    requestTimeoutMs: 10_000,
    keepAliveTimeoutMs: 3_000,
  });
  try {
    const events: ClientEvent[] = [];
    watcher.onEvent((e) => events.push(e));
    assert.equal(await watcher.command({ op: 'watch', prefix: 'w/' }), { watching: ['w/'] });
    const changes = new Map<number, string>(); // index → key, of every acknowledged change
    let orderViolations = 0;
    const round = async (tag: string) => {
      await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        const own = await watcher.commandWithIndex({ op: 'put', key: `w/${tag}-${i}`, value: 'o' });
        if (!events.some((e) => e.index === own.index)) orderViolations++;
        changes.set(own.index, `w/${tag}-${i}`);
        const other = await writer.commandWithIndex({
          op: 'put',
          key: `w/${tag}-x${i}`,
          value: 'x',
        });
        changes.set(other.index, `w/${tag}-x${i}`);
        await writer.command({ op: 'put', key: `elsewhere/${tag}-${i}`, value: 'x' });
      }));
    };
    await round('a');
    // Stop the member the watcher talks to (it moved to the leader): it must move on.
    const before = (await watcher.status()) as { id: string };
    const node = nodes.find((n) => n.member.id === before.id)!;
    await stopNode(node);
    await round('b');
    await startNode(node, nodes);
    await round('c');
    await waitFor(
      'every change delivered',
      () => events.length >= changes.size || undefined,
      10_000,
    );
    await sleep(200); // nothing more may arrive
    assert.is(orderViolations, 0, 'each own change arrived before its answer');
    assert.equal(events.map((e) => e.eventIndex), events.map((_, i) => i + 1), 'no gap, no repeat');
    const expected = [...changes].sort((a, b) => a[0] - b[0]);
    assert.equal(
      events.map((e) => [e.index, (e.payload as { key: string }).key]),
      expected,
      'every change of the prefix, once, in log order',
    );
  } finally {
    await watcher.close();
    await writer.close();
    await stopCluster(nodes);
  }
});

// An ended session is refused with UNKNOWN_SESSION (not retryable) and the client can open a new
// one. A session past its timeout by log time expires; but time without a leader never counts.
test('expired sessions are refused; time without a leader does not expire them', async () => {
  const nodes = await startCluster(3);
  const client = await RaftClient.connect({
    servers: nodes.map((n) => n.member.clientAddress!),
    requestTimeoutMs: 10_000,
  });
  const raw: RawConnection[] = [];
  try {
    await client.command({ op: 'put', key: 'a', value: '1' });
    const first = client.sessionId;
    assert.ok(first > 0);
    const leader = await leaderOf(nodes);
    const r = await RawConnection.open(leader.clientAddress);
    raw.push(r);
    let id = 100;
    const ask = async (request: Record<string, unknown>) => {
      const rid = ++id;
      r.write(requestFrame({ id: rid, session: 0, sequence: 0, ...request } as never));
      return await waitFor(
        `answer ${rid}`,
        () => r.frames.find((f) => 'id' in f && f.id === rid),
        5_000,
      );
    };
    // End the client's session behind its back.
    assert.is((await ask({ type: 'unregister', session: first })).type, 'ok');
    const error = await client.command({ op: 'put', key: 'a', value: '2' }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(error, ClientError);
    assert.is((error as ClientError).code, 'UNKNOWN_SESSION');
    assert.is((error as ClientError).retryable, false);
    const second = await client.openSession();
    assert.ok(second > first);
    assert.equal(await client.command({ op: 'put', key: 'a', value: '3' }), { previous: '1' });

    // A session registered for the shortest timeout (1 s) and never kept alive expires once the
    // log has moved on by more than that.
    const reg = await ask({ type: 'register', timeoutMs: 1_000 });
    const lapsed = (reg as { output: { session: number } }).output.session;
    await sleep(1_300);
    await client.command({ op: 'put', key: 'tick', value: '1' });
    const late = await ask({
      type: 'command',
      session: lapsed,
      sequence: 1,
      data: codec.encode({ op: 'put', key: 'b', value: '1' }),
    });
    assert.equal([late.type, (late as { code?: string }).code], ['error', 'UNKNOWN_SESSION']);

    // Another, then two seconds without a leader (two of three members stopped): the next leader's
    // first entry renews every session, so it is still there.
    const kept =
      ((await ask({ type: 'register', timeoutMs: 1_000 })) as { output: { session: number } })
        .output.session;
    r.destroy();
    const others = nodes.filter((n) => n.server !== null && n.server !== leader);
    await Promise.all([stopNode(nodes.find((n) => n.server === leader)!), stopNode(others[0]!)]);
    await sleep(2_000);
    await Promise.all(nodes.filter((n) => n.server === null).map((n) => startNode(n, nodes)));
    const next = await leaderOf(nodes, 15_000);
    const r2 = await RawConnection.open(next.clientAddress);
    raw.push(r2);
    r2.write(
      requestFrame({
        type: 'command',
        id: 1,
        session: kept,
        sequence: 1,
        data: codec.encode({ op: 'put', key: 'c', value: '1' }),
      }),
    );
    const answer = await waitFor(
      'the answer',
      () => r2.frames.find((f) => 'id' in f && f.id === 1),
      5_000,
    );
    assert.is(answer.type, 'ok', JSON.stringify(answer));
  } finally {
    for (const r of raw) r.destroy();
    await client.close();
    await stopCluster(nodes);
  }
});

test.run();
