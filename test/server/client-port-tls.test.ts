// Proves, against in-process members over real TCP on 127.0.0.1 with openssl-made certificates,
// that a cluster runs with mutual TLS on its peer port, and that its client port serves only
// authenticated clients: with a bearer token, a client without it or with a wrong one gets
// UNAUTHENTICATED for a write and for a read; with client certificates, a client without one or
// with one another CA signed gets UNAUTHENTICATED; a plaintext client on the TLS port is refused
// with a logged reason; a new member joins through the TLS client port with the token. Bad TLS
// options are errors naming the option (and the path).
import * as net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ClientError, RaftClient } from '../../lib/client/client.ts';
import type { ServerLogger } from '../../lib/server/options.ts';
import { type Certs, makeCerts, opensslMissing } from '../support/certs.ts';
import { cleanUp, leaderOf, members, quiet, startNode, stopCluster } from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('client port TLS');
const missing = opensslMissing();
if (missing !== null) console.warn(`SKIPPED client-port-tls.test.ts: ${missing}`);
let certs: Certs;
test.before(() => {
  if (missing === null) certs = makeCerts([]);
});
test.after(async () => {
  await cleanUp();
  certs?.remove();
});

const token = 'correct horse battery staple';

/** Start `n` members with TLS on both ports and `extra`; returns them and a warn recorder. */
async function tlsCluster(n: number, extra: Record<string, unknown>) {
  const nodes = await members(n);
  const warns: string[] = [];
  const logger: ServerLogger = { ...quiet, warn: (m) => void warns.push(m) };
  await Promise.all(nodes.map((node) => {
    const files = certs.issue(node.member.id, [node.member.id]);
    return startNode(node, nodes, { peerTls: files, clientTls: files, logger, ...extra });
  }));
  return { nodes, warns, servers: nodes.map((n) => n.member.clientAddress!) };
}

async function refusal(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (error) {
    return error as ClientError;
  }
  throw new Error('expected a refusal');
}

const guarded = (name: string, body: () => Promise<void>) =>
  test(name, async () => {
    if (missing !== null) return console.warn(`skipped (${missing}): ${name}`);
    await body();
  });

guarded(
  'token auth: the right token reads and writes; none or a wrong one is UNAUTHENTICATED',
  async () => {
    const { nodes, warns, servers } = await tlsCluster(3, {
      clientAuth: 'token',
      clientToken: token,
    });
    try {
      await leaderOf(nodes);
      const tlsFiles = { ca: certs.ca };
      const good = await RaftClient.connect({ servers, tls: tlsFiles, token, session: false });
      await good.command({ op: 'put', key: 'k', value: 'v' });
      assert.equal(await good.query({ op: 'get', key: 'k' }), { value: 'v' } as never);
      await good.close();
      for (const bad of [{}, { token: 'not the token at all' }]) {
        const c = await RaftClient.connect({
          servers,
          tls: tlsFiles,
          session: false,
          requestTimeoutMs: 2_000,
          ...bad,
        });
        const write = await refusal(c.command({ op: 'put', key: 'k', value: 'stolen' }));
        assert.is(write.code, 'UNAUTHENTICATED', write.message);
        assert.is(write.retryable, false);
        assert.match(write.message, /Unauthenticated: /);
        const read = await refusal(c.query({ op: 'get', key: 'k' }));
        assert.is(read.code, 'UNAUTHENTICATED', read.message);
        await c.close();
      }
      assert.ok(warns.some((w) => /wrong bearer token/.test(w)), 'a wrong token is logged');
      // A plaintext client on the TLS port: refused with a logged reason, never served.
      const plain = await RaftClient.connect({
        servers,
        token,
        session: false,
        requestTimeoutMs: 500,
      });
      await refusal(plain.query({ op: 'get', key: 'k' }));
      await plain.close();
      await waitFor(
        'the plaintext refusal logged',
        () => warns.some((w) => /Plaintext on a TLS port/.test(w)) || undefined,
        5_000,
      );
      // Nothing written by the refused clients.
      const check = await RaftClient.connect({ servers, tls: tlsFiles, token, session: false });
      assert.equal(await check.query({ op: 'get', key: 'k' }), { value: 'v' } as never);
      await check.close();
      // A new member joins through the TLS client port, with the token, and is fed over peer TLS.
      const [joiner] = await members(1);
      nodes.push(joiner!);
      const files = certs.issue(joiner!.member.id, [joiner!.member.id]);
      const d = await startNode(joiner!, [], {
        peerTls: files,
        clientTls: files,
        clientAuth: 'token',
        clientToken: token,
        logger: { ...quiet, warn: (m: string) => void warns.push(m) },
        members: undefined,
        join: servers,
      });
      await Promise.race([
        d.joined,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('the joiner was not added within 10 s')), 10_000)
        ),
      ]);
      const leader = await leaderOf(nodes.slice(0, 3));
      const view = await leader.members();
      assert.is(view.members.find((m) => m.id === joiner!.member.id)?.type, 'PASSIVE');
      await waitFor(
        'the joiner to catch up',
        () => d.status().lastAppliedIndex >= leader.status().commitIndex || undefined,
        10_000,
      );
    } finally {
      await stopCluster(nodes);
    }
  },
);

guarded(
  'cert auth: a client certificate of the cluster CA is served; none or another CA is not',
  async () => {
    const { nodes, warns, servers } = await tlsCluster(1, { clientAuth: 'cert' });
    try {
      await leaderOf(nodes);
      const mine = certs.issue('client-ok', ['operator']);
      const good = await RaftClient.connect({ servers, tls: mine, session: false });
      await good.command({ op: 'put', key: 'k', value: 'v' });
      await good.close();
      const other = certs.issue('client-other-ca', ['operator'], { otherCa: true });
      for (const tls of [{ ca: certs.ca }, { ...other, ca: certs.ca }]) {
        const c = await RaftClient.connect({
          servers,
          tls,
          session: false,
          requestTimeoutMs: 2_000,
        });
        const e = await refusal(c.query({ op: 'get', key: 'k' }));
        assert.is(e.code, 'UNAUTHENTICATED', e.message);
        assert.match(e.message, /client certificate refused/);
        await c.close();
      }
      assert.ok(warns.some((w) => /not signed by the cluster's CA/.test(w)));
    } finally {
      await stopCluster(nodes);
    }
  },
);

guarded(
  'TLS handshakes count in clientConnectionsMax: silent sockets are shed, real clients served',
  async () => {
    const limit = 3;
    const { nodes, warns, servers } = await tlsCluster(1, {
      clientAuth: 'token',
      clientToken: token,
      clientConnectionsMax: limit,
      // Long deadlines: what closes the silent sockets here must be the limit, not a deadline.
      clientFirstRequestDeadlineMs: 60_000,
      clientIdleDeadlineMs: 60_000,
    });
    const silent: net.Socket[] = [];
    const held = () =>
      Number(
        /^edgeraft_client_connections(?:\{[^}]*\})? (\d+)$/m.exec(nodes[0]!.server!.metricsText())
          ?.[1],
      );
    try {
      await leaderOf(nodes);
      const [host, port] = [servers[0]!.split(':')[0]!, Number(servers[0]!.split(':')[1])];
      const closed = new Set<net.Socket>();
      const count = limit * 3;
      for (let i = 0; i < count; i++) {
        const s = net.connect({ host, port });
        s.on('error', () => {});
        s.on('close', () => void closed.add(s));
        silent.push(s);
        await new Promise<void>((resolve) => s.once('connect', () => resolve()));
        // Each one's accept is seen before the next connects, so the shedding order is defined.
        await waitFor(
          'the member to count it',
          () => held() >= Math.min(i + 1, limit) || undefined,
          5_000,
        );
      }
      // At most `limit` held: the oldest silent handshakes were shed, the newest are still open.
      await waitFor(
        'the silent sockets past the limit to be shed',
        () => closed.size >= count - limit || undefined,
        5_000,
      );
      assert.ok(held() <= limit, `${held()} connections held, limit ${limit}`);
      for (const s of silent.slice(0, count - limit)) assert.ok(closed.has(s), 'an old one shed');
      assert.ok(warns.some((w) => /TLS handshake unfinished/.test(w)), 'the shedding is logged');
      // A real client still gets in (it sheds a silent one) and is served.
      const c = await RaftClient.connect({ servers, tls: { ca: certs.ca }, token, session: false });
      await c.command({ op: 'put', key: 'k', value: 'v' });
      assert.equal(await c.query({ op: 'get', key: 'k' }), { value: 'v' } as never);
      await c.close();
    } finally {
      for (const s of silent) s.destroy();
      await stopCluster(nodes);
    }
  },
);

guarded('bad TLS options are errors naming the option and the path', async () => {
  const [node] = await members(1);
  const files = certs.issue('opt', ['x']);
  const base = { logger: quiet };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ clientAuth: 'cert' }, /option clientAuth\b/],
    [{ clientAuth: 'token' }, /option clientToken\b/],
    [{ clientAuth: 'token', clientToken: 'short' }, /option clientToken\b/],
    [{ peerTls: { ca: files.ca, cert: files.cert } }, /option peerTls\.key\b/],
    [
      { peerTls: { ...files, ca: '/nonexistent/ca.crt' } },
      /peerTls\.ca \/nonexistent\/ca\.crt: ENOENT/,
    ],
  ];
  for (const [extra, pattern] of cases) {
    try {
      await startNode(node!, [node!], { ...base, ...extra });
      assert.unreachable(`accepted ${JSON.stringify(extra)}`);
    } catch (error) {
      assert.match((error as Error).message, pattern);
    }
  }
  try {
    await RaftClient.connect({ servers: ['127.0.0.1:1'], tls: { ca: '/nonexistent/x' } });
    assert.unreachable('client accepted a missing CA file');
  } catch (error) {
    assert.match((error as Error).message, /tls\.ca \/nonexistent\/x: ENOENT/);
  }
});

test.run();
