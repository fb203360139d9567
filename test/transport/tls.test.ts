/**
 * Real-TCP tests (127.0.0.1) of mutual TLS on the peer port, with certificates made by openssl:
 * good peers connect; a wrong CA, a wrong member name (checked by the acceptor and by the dialer),
 * an expired certificate, plaintext on the TLS port, TLS on a plaintext port and garbage are each
 * refused with a logged reason while the good peers keep talking; a rotated certificate is
 * presented to new connections without a restart.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RaftMessage } from '../../lib/base/messages.ts';
import type { TcpTransport } from '../../lib/transport/tcp.ts';
import type { TlsFiles } from '../../lib/transport/tls.ts';
import { type Certs, makeCerts, opensslMissing } from '../support/certs.ts';
import {
  captureLogger,
  closed,
  heartbeat,
  rawConnect,
  startTransport,
  waitFor,
} from './helpers.ts';

const missing = opensslMissing();
if (missing !== null) console.warn(`SKIPPED tls.test.ts: ${missing}`);

let certs: Certs;
const opened: TcpTransport[] = [];

test.before(() => {
  if (missing === null) certs = makeCerts(['a', 'b', 'c']);
});
test.after.each(async () => {
  for (const t of opened.splice(0)) await t.close();
});
test.after(() => certs?.remove());

async function member(
  id: string,
  files: TlsFiles | undefined,
  extra: Record<string, unknown> = {},
): Promise<TcpTransport & { log: ReturnType<typeof captureLogger> }> {
  const log = captureLogger();
  const t = await startTransport(id, {
    logger: log,
    ...(files === undefined ? {} : { tls: files }),
    reconnectDelayMsMax: 50,
    ...extra,
  });
  opened.push(t);
  return Object.assign(t, { log });
}

/** Messages `to` receives from now on. */
function inbox(to: TcpTransport): RaftMessage[] {
  const got: RaftMessage[] = [];
  to.onMessage((m) => got.push(m));
  return got;
}

/** `from` reaches `to` through the transport: a heartbeat arrives. */
async function reaches(from: TcpTransport, to: TcpTransport, got: RaftMessage[]): Promise<void> {
  const before = got.filter((m) => m.from === from.member).length;
  let seq = 1;
  await waitFor(
    () => {
      from.send(heartbeat(from.member, to.member, seq++));
      return got.filter((m) => m.from === from.member).length > before;
    },
    `${from.member} to reach ${to.member}`,
    5_000,
  );
}

function logged(t: { log: { lines: string[] } }, pattern: RegExp): boolean {
  return t.log.lines.some((l) => pattern.test(l));
}

const guarded = (name: string, body: () => Promise<void>) =>
  test(name, async () => {
    if (missing !== null) return console.warn(`skipped (${missing}): ${name}`);
    await body();
  });

guarded('good peers connect over mutual TLS; a plaintext port stays available', async () => {
  const a = await member('a', certs.files('a'));
  const b = await member('b', certs.files('b'));
  const c = await member('c', certs.files('c'));
  assert.ok(a.tls && b.tls && c.tls);
  const toB = inbox(b);
  const toC = inbox(c);
  a.addPeer('b', b.address);
  a.addPeer('c', c.address);
  c.addPeer('b', b.address);
  await reaches(a, b, toB);
  await reaches(a, c, toC);
  await reaches(c, b, toB);
  const p = await member('a', undefined);
  const q = await member('b', undefined);
  assert.not.ok(p.tls);
  const toQ = inbox(q);
  p.addPeer('b', q.address);
  await reaches(p, q, toQ);
});

guarded(
  'wrong CA, wrong member name, expired: refused with a reason, others undisturbed',
  async () => {
    const a = await member('a', certs.files('a'));
    const b = await member('b', certs.files('b'));
    const toB = inbox(b);
    a.addPeer('b', b.address);
    await reaches(a, b, toB);

    const wrongCa = certs.issue('c-other-ca', ['c'], { otherCa: true });
    const c1 = await member('c', { ...wrongCa, ca: certs.ca });
    c1.addPeer('b', b.address);
    await waitFor(() => logged(b, /not signed by the cluster's CA/), 'the wrong CA refused');

    const x = certs.issue('c-named-x', ['x']);
    const c2 = await member('c', x);
    c2.addPeer('b', b.address);
    await waitFor(
      () => logged(b, /Certificate mismatch: peer claims to be c, its certificate names x/),
      'the wrong member name refused by the acceptor',
    );

    const expired = certs.issue('c-expired', ['c'], { days: -1 });
    const c3 = await member('c', expired);
    c3.addPeer('b', b.address);
    await waitFor(() => logged(b, /Peer certificate refused: certificate .* expired/), 'expired');

    // The dialer checks that it reached the member it dialled: x's port is no b.
    const impostor = await member('b', x);
    const a2 = await member('a', certs.files('a'));
    a2.addPeer('b', impostor.address);
    await waitFor(
      () =>
        logged(
          a2,
          /Refusing connection to b at .*: peer certificate refused: certificate names x, not b/,
        ),
      'the dialer refusing an impostor',
    );
    const impostorInbox = inbox(impostor);
    await sleep(100);
    assert.is(impostorInbox.length, 0, 'nothing was sent to the impostor');

    assert.not.ok(toB.some((m) => m.from === 'c'), 'no message of a refused peer was delivered');
    await reaches(a, b, toB);
  },
);

guarded(
  'plaintext to a TLS port, TLS to a plaintext port, garbage: each closed, logged',
  async () => {
    const a = await member('a', certs.files('a'));
    const b = await member('b', certs.files('b'));
    const toB = inbox(b);
    a.addPeer('b', b.address);
    await reaches(a, b, toB);

    const plain = await member('c', undefined);
    plain.addPeer('b', b.address);
    await waitFor(() => logged(b, /Plaintext on a TLS port: first byte 0x00/), 'plaintext refused');

    const plainPort = await member('d', undefined);
    const tlsDialer = await member('c', certs.files('c'));
    tlsDialer.addPeer('d', plainPort.address);
    await waitFor(
      () => logged(plainPort, /TLS handshake on a plaintext port/),
      'TLS to a plaintext port refused',
    );
    await waitFor(() => logged(tlsDialer, /TLS handshake with d at .*/), 'the TLS dialer logs why');

    const raw = await rawConnect(b.port);
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await closed(raw);
    await waitFor(() => logged(b, /Plaintext on a TLS port: first byte 0x47/), 'garbage refused');

    // Garbage that starts like a TLS record goes to the TLS layer, which fails on it: the failure
    // is logged and the connection is destroyed, but on Node, Bun and Deno alike the accepted
    // socket's file descriptor then stays open until the sender closes its end (a runtime
    // behaviour of a server `TLSSocket` wrapped around an accepted socket, with or without our
    // first-byte peek: seen with /proc/self/fd; destroying the TLS socket, the raw one or both
    // does not close it). So this asserts only what holds: the good peer is undisturbed and
    // nothing from the garbage is delivered; the closing of this one socket is not asserted.
    const raw2 = await rawConnect(b.port);
    raw2.write(new Uint8Array([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5]));
    await reaches(a, b, toB);
    assert.not.ok(toB.some((m) => m.from !== 'a'), 'only a was heard');
    raw2.destroy();
  },
);

guarded('a TLS handshake never finished is closed at the handshake deadline', async () => {
  const b = await member('b', certs.files('b'), { handshakeDeadlineMs: 200 });
  const raw = await rawConnect(b.port);
  raw.write(new Uint8Array([0x16]));
  await closed(raw);
  await waitFor(() => logged(b, /Handshake deadline exceeded: no TLS handshake/), 'deadline');
});

/** The serial number of the certificate the TLS port at `port` presents to a new connection. */
function presentedSerial(port: number, files: TlsFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(files.ca),
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      checkServerIdentity: () => undefined,
    }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

guarded('rotation: new connections present the new certificate, without a restart', async () => {
  const b1 = certs.issue('rot-b', ['b']);
  const b = await member('b', b1, { tlsReloadMs: 50 });
  const a = await member('a', certs.files('a'));
  const toB = inbox(b);
  a.addPeer('b', b.address);
  await reaches(a, b, toB);
  const before = await presentedSerial(b.port, certs.files('a'));
  // File change (polled): overwrite the files with a new certificate for b, same CA.
  const next = certs.issue('rot-b-next', ['b']);
  copyFileSync(next.key, b1.key);
  copyFileSync(next.cert, b1.cert);
  let after = before;
  for (let i = 0; i < 100 && after === before; i++) {
    await sleep(50);
    after = await presentedSerial(b.port, certs.files('a'));
  }
  assert.is.not(after, before, 'a new connection sees the rotated certificate');
  // On demand (SIGHUP in `serve`): back to a third certificate.
  const third = certs.issue('rot-b-third', ['b']);
  copyFileSync(third.key, b1.key);
  copyFileSync(third.cert, b1.cert);
  assert.ok(b.reloadTls());
  const third1 = await presentedSerial(b.port, certs.files('a'));
  assert.is.not(third1, after);
  // The established connection a→b still carries traffic; a fresh dial works too.
  await reaches(a, b, toB);
  const a2 = await member('a', certs.files('a'));
  a2.addPeer('b', b.address);
  await reaches(a2, b, toB);
});

test.run();
