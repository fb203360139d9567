// Proves the TLS flags as a user runs them: real `serve` children on 127.0.0.1 with
// --peer-tls-*, --client-tls-*, --client-auth token and --client-token-file (certificates made by
// openssl; one certificate naming all three members), and the real command line as a child
// process: put with --tls-ca and --token-file writes; get without the token exits 1 saying
// Unauthenticated; SIGHUP makes a member reload its certificates; a missing certificate file
// exits 2 naming the flag and the path.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { LocalCluster, localMembers } from '../../lib/cli/processes.ts';
import { type Certs, makeCerts, opensslMissing } from '../support/certs.ts';
import { waitFor } from '../server/support.ts';
import { cli } from './support.ts';

const test = suite('command line: TLS');
const missing = opensslMissing();
if (missing !== null) console.warn(`SKIPPED cli/tls.test.ts: ${missing}`);

let cluster: LocalCluster | null = null;
let certs: Certs | null = null;
let dataRoot = '';
let tokenFile = '';

test.before(async () => {
  if (missing !== null) return;
  certs = makeCerts([]);
  const files = certs.issue('members', ['n1', 'n2', 'n3']);
  tokenFile = join(certs.dir, 'token');
  writeFileSync(tokenFile, 'cli-test-token-0123456789\n');
  dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-cli-tls-'));
  const tlsArgs = (port: string) =>
    ['ca', 'cert', 'key'].flatMap((k) => [`--${port}-tls-${k}`, files[k as 'ca']]);
  cluster = await LocalCluster.start({
    members: await localMembers(3),
    dataRoot,
    cluster: 'cli-tls',
    serveArgs: [
      ...tlsArgs('peer'),
      ...tlsArgs('client'),
      '--client-auth',
      'token',
      '--client-token-file',
      tokenFile,
    ],
  });
});

test.after(async () => {
  await cluster?.stopAll();
  if (dataRoot !== '') rmSync(dataRoot, { recursive: true, force: true });
  certs?.remove();
});

const guarded = (name: string, body: () => Promise<void>) =>
  test(name, async () => {
    if (missing !== null) return console.warn(`skipped (${missing}): ${name}`);
    await body();
  });

guarded('put with --tls-ca and --token-file writes; get without the token is refused', async () => {
  const servers = cluster!.clientAddresses().join(',');
  const put = await cli([
    'put',
    'k',
    'v',
    '--servers',
    servers,
    '--tls-ca',
    certs!.ca,
    '--token-file',
    tokenFile,
  ]);
  assert.is(put.code, 0, put.stderr);
  const got = await cli([
    'get',
    'k',
    '--servers',
    servers,
    '--tls-ca',
    certs!.ca,
    '--token-file',
    tokenFile,
  ]);
  assert.is(got.code, 0, got.stderr);
  assert.match(got.stdout, /"v"/);
  const refused = await cli(['get', 'k', '--servers', servers, '--tls-ca', certs!.ca]);
  assert.is(refused.code, 1);
  assert.match(
    refused.stderr,
    /Unauthenticated: not authenticated: this port requires a bearer token/,
  );
  // A write in a session (put registers one first): refused too, not retried to its deadline.
  const write = await cli(['put', 'k', 'stolen', '--servers', servers, '--tls-ca', certs!.ca]);
  assert.is(write.code, 1);
  assert.match(write.stderr, /Unauthenticated/);
  assert.ok(write.elapsedMs < 5_000, `refused in ${write.elapsedMs} ms`);
  const after = await cli([
    'get',
    'k',
    '--servers',
    servers,
    '--tls-ca',
    certs!.ca,
    '--token-file',
    tokenFile,
  ]);
  assert.match(after.stdout, /"v"/, 'the refused write changed nothing');
});

guarded('SIGHUP reloads the certificates of a running member', async () => {
  const member = [...cluster!.processes.values()][0]!;
  // process.kill, not child.kill: Deno's ChildProcess ignores a later kill() (stopAll's SIGTERM)
  // once kill() has been called.
  process.kill(member.child.pid!, 'SIGHUP');
  await waitFor(
    'the reload logged',
    () => member.stderrTail.some((l) => /TLS certificates reloaded/.test(l)) || undefined,
    10_000,
  );
});

guarded('a missing certificate file exits 2, naming the flag and the path', async () => {
  const run = await cli([
    'serve',
    '--id',
    'a',
    '--data',
    join(dataRoot, 'never'),
    '--members',
    'a=127.0.0.1:1/127.0.0.1:2',
    '--peer-tls-ca',
    '/nonexistent/ca.crt',
    '--peer-tls-cert',
    certs!.ca,
    '--peer-tls-key',
    certs!.ca,
  ]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /Cannot read TLS file --peer-tls-ca \/nonexistent\/ca\.crt: ENOENT/);
});

test.run();
