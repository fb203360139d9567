// Proves the command line as a user runs it, in a child process of the current runtime:
// `--help` on every command, exit code 2 with a message for bad input, and put, get and status
// against real members over TCP on 127.0.0.1.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import process from 'node:process';
import { RaftClient } from '../../lib/client/client.ts';
import { spawnTs } from '../../lib/runtime.ts';
import { waitFor } from '../server/support.ts';
import { cleanUp, leaderOf, startCluster, stopCluster } from '../server/in-process.ts';
import { localMembers } from '../../lib/cli/processes.ts';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cli } from './support.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const test = suite('command line');
test.after(cleanUp);

const commandFlags: Record<string, string[]> = {
  serve: [
    '--id',
    '--data',
    '--members',
    '--tick-ms',
    '--snapshot-entries',
    '--trailing-entries',
    '--state-machine',
  ],
  cluster: ['--size', '--data', '--cluster'],
  put: ['--servers', '--timeout'],
  get: ['--servers', '--timeout', '--consistency'],
  del: ['--servers', '--timeout'],
  cas: ['--servers', '--timeout', '--expect-absent'],
  append: ['--servers', '--timeout'],
  scan: ['--servers', '--timeout', '--prefix', '--limit', '--consistency', '-o'],
  status: ['--servers', '--timeout'],
  health: ['--servers', '--timeout', '-o'],
  'transfer-leader': ['--servers', '--timeout'],
  watch: ['--servers', '--timeout', '--prefix'],
  join: ['--servers', '--timeout', '--peer-address', '--client-address', '--as'],
  leave: ['--servers', '--timeout'],
  promote: ['--servers', '--timeout'],
  demote: ['--servers', '--timeout'],
  members: ['--servers', '--timeout', '-o'],
  demo: ['--seconds', '--size', '--workers', '--keep'],
};

// Every command answers --help with exit code 0 and lists its flags.
test('--help on every command prints its flags and exits 0', async () => {
  const names = Object.keys(commandFlags);
  const runs = await Promise.all([cli(['--help']), ...names.map((n) => cli([n, '--help']))]);
  const [top, ...each] = runs;
  assert.is(top!.code, 0, top!.stderr);
  for (const n of names) assert.ok(top!.stdout.includes(n), `top-level help names ${n}`);
  names.forEach((name, i) => {
    const r = each[i]!;
    assert.is(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.ok(r.stdout.includes(`Usage: edgeraft ${name}`), `${name} usage line`);
    for (const flag of commandFlags[name]!) {
      assert.ok(r.stdout.includes(flag), `${name} --help lists ${flag}`);
    }
  });
});

// Bad input exits 2 with a message saying what was wrong.
test('unknown commands, unknown flags and bad values exit 2 with a message', async () => {
  const dataDir = join(tmpdir(), `edgeraft-badport-${process.pid}`);
  const [none, unknown, flag, value, missing, machine, port] = await Promise.all([
    cli([]),
    cli(['frobnicate']),
    cli(['put', 'k', 'v', '--bogus', '1']),
    cli(['serve', '--tick-ms', 'fast']),
    cli(['get']),
    cli([
      'serve',
      '--id',
      'a',
      '--data',
      '/nonexistent',
      '--members',
      'a=127.0.0.1:1/127.0.0.1:2',
      '--state-machine',
      'rocksdb',
    ]),
    cli(['serve', '--id', 'a', '--data', dataDir, '--members', 'a=127.0.0.1:99999/127.0.0.1:2']),
  ]);
  // A bad port in --members names the flag and the entry, and creates nothing on disk.
  assert.is(port!.code, 2);
  assert.match(port!.stderr, /Flag --members: a=127\.0\.0\.1:99999\/127\.0\.0\.1:2: port 99999/);
  assert.not.ok(existsSync(dataDir), 'the data directory was created');
  assert.is(machine!.code, 2);
  assert.match(machine!.stderr, /--state-machine: expected memory-kv or lmdb-kv, got "rocksdb"/);
  assert.is(none!.code, 2);
  assert.is(unknown!.code, 2);
  assert.match(unknown!.stderr, /Unknown command: frobnicate/);
  assert.is(flag!.code, 2);
  assert.match(flag!.stderr, /Unknown flag: --bogus/);
  assert.is(value!.code, 2);
  assert.match(value!.stderr, /--tick-ms: expected an integer, got fast/);
  assert.is(missing!.code, 2);
  assert.match(missing!.stderr, /get takes KEY/);
});

// put, get and status reach a running cluster through any member's client address.
test('put, get and status against a running cluster', async () => {
  const nodes = await startCluster(3);
  try {
    const leader = await leaderOf(nodes);
    const servers = nodes.map((n) => n.member.clientAddress!).join(',');
    const put = await cli(['put', 'colour', 'blue', '--servers', servers]);
    assert.is(put.code, 0, put.stderr);
    const written = JSON.parse(put.stdout) as { index: number; output: unknown };
    assert.equal(written.output, { previous: null });
    assert.ok(written.index >= 2);
    const [get, sequential, status] = await Promise.all([
      cli(['get', 'colour', '--servers', servers]),
      cli(['get', 'colour', '--consistency', 'lease', '--servers', servers]),
      cli(['status', '--servers', nodes[0]!.member.clientAddress!]),
    ]);
    assert.is(get.code, 0, get.stderr);
    assert.equal(JSON.parse(get.stdout), { value: 'blue' });
    assert.is(sequential.code, 0, sequential.stderr);
    assert.equal(JSON.parse(sequential.stdout), { value: 'blue' });
    assert.is(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { id: string; leaderId: string; commitIndex: number };
    assert.is(s.id, nodes[0]!.member.id);
    assert.is(s.leaderId, leader.id);
    assert.ok(s.commitIndex >= written.index);
  } finally {
    await stopCluster(nodes);
  }
});

// `watch KEY` prints every change of KEY, one JSON line each, as it happens (and not the changes of
// other keys), and ends on SIGINT with exit code 0.
test('watch prints each change of a key until Ctrl-C', async () => {
  const nodes = await startCluster(3);
  const servers = nodes.map((n) => n.member.clientAddress!).join(',');
  const child = spawnTs('lib/cli.ts', ['watch', 'colour', '--servers', servers]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (code) => resolve(code))
  );
  const client = await RaftClient.connect({ servers: nodes.map((n) => n.member.clientAddress!) });
  try {
    await waitFor('the watch to start', () => stderr.includes('watching') || undefined, 20_000);
    const indexes: number[] = [];
    for (const [key, value] of [['colour', 'red'], ['colours', 'x'], ['colour', 'green']]) {
      indexes.push((await client.commandWithIndex({ op: 'put', key, value })).index);
    }
    await client.command({ op: 'delete', key: 'colour' });
    await waitFor(
      'three changes printed',
      () => stdout.trim().split('\n').length >= 3 || undefined,
      10_000,
    );
    process.kill(child.pid!, 'SIGINT');
    assert.is(await closed, 0, stderr);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.map((l) => [l.key, l.value]), [['colour', 'red'], ['colour', 'green'], [
      'colour',
      null,
    ]]);
    assert.equal(lines.slice(0, 2).map((l) => l.index), [indexes[0], indexes[2]]);
  } finally {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
    await client.close();
    await stopCluster(nodes);
  }
});

// join, members, promote, demote and leave change and show the configuration of a running cluster;
// their bad input exits 2.
test('join, members, promote, demote and leave', async () => {
  const nodes = await startCluster(3);
  try {
    await leaderOf(nodes);
    const servers = nodes.map((n) => n.member.clientAddress!).join(',');
    const types = async () => {
      const r = await cli(['members', '-o', 'json', '--servers', servers]);
      assert.is(r.code, 0, r.stderr);
      const view = JSON.parse(r.stdout) as { members: Array<{ id: string; type: string }> };
      return Object.fromEntries(view.members.map((m) => [m.id, m.type]));
    };
    const join = await cli([
      'join',
      'x',
      '--as',
      'reserve',
      '--peer-address',
      '127.0.0.1:1',
      '--servers',
      servers,
    ]);
    assert.is(join.code, 0, join.stderr);
    assert.equal((await types())['x'], 'RESERVE');
    const table = await cli(['members', '--servers', servers]);
    assert.is(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+TYPE\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+FED BY\s+LAG/);
    assert.match(table.stdout, /\nx\s+RESERVE/);
    // Each ACTIVE member's own term, commit and applied index, asked of it directly.
    assert.match(table.stdout, /\n\S+\s+ACTIVE\s+leader\s+\d+\s+\d+\s+\d+\s/);
    assert.match(table.stdout, /\n\S+\s+ACTIVE\s+follower\s+\d+\s+\d+\s+\d+\s+-\s+\d+\s/);
    const full = JSON.parse(
      (await cli(['members', '-o', 'json', '--servers', servers])).stdout,
    ) as {
      members: Array<{ type: string; self?: { term: number; appliedIndex: number } }>;
    };
    for (const m of full.members.filter((x) => x.type === 'ACTIVE')) {
      assert.ok(
        m.self !== undefined && m.self.term > 0 && m.self.appliedIndex > 0,
        JSON.stringify(m),
      );
    }
    assert.is((await cli(['promote', 'x', '--servers', servers])).code, 0);
    assert.equal((await types())['x'], 'PASSIVE');
    assert.is((await cli(['demote', 'x', '--servers', servers])).code, 0);
    assert.equal((await types())['x'], 'RESERVE');
    assert.is((await cli(['leave', 'x', '--servers', servers])).code, 0);
    assert.is((await types())['x'], undefined);
    const [noAddress, badFormat, badAs] = await Promise.all([
      cli(['join', 'y', '--servers', servers]),
      cli(['members', '-o', 'yaml', '--servers', servers]),
      cli(['join', 'y', '--as', 'active', '--peer-address', '127.0.0.1:1', '--servers', servers]),
    ]);
    assert.is(noAddress.code, 2);
    assert.match(noAddress.stderr, /join needs --peer-address/);
    assert.is(badFormat.code, 2);
    assert.match(badFormat.stderr, /Flag -o: expected table or json/);
    assert.is(badAs.code, 2);
    assert.match(badAs.stderr, /Flag --as: expected passive or reserve/);
  } finally {
    await stopCluster(nodes);
  }
});

/** The ready line of `serve`. */
type Ready = {
  stateMachine: string;
  recovery: {
    onDisk: boolean;
    restoredSnapshot: boolean;
    machineAppliedIndex: number;
    appliedIndex: number;
  };
};

/** Start `serve` and wait for its ready line (parsed); the child is returned to be killed. */
async function startServe(args: string[]) {
  const child = spawnTs('lib/cli.ts', ['serve', ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    const line = await waitFor(
      `serve to be ready (${stderr})`,
      () => stdout.split('\n').find((l) => l.startsWith('{"ready"')),
      30_000,
    );
    return { child, closed, ready: JSON.parse(line) as Ready };
  } catch (error) {
    process.kill(child.pid!, 'SIGKILL');
    throw error;
  }
}

// `serve --state-machine lmdb-kv` keeps the key-value machine in the member's LMDB environment:
// after a SIGKILL the member starts at the applied index the machine holds (nothing replayed) and
// answers with what was acknowledged before the kill.
test('serve --state-machine lmdb-kv restarts after SIGKILL at its applied index', async () => {
  const [m] = await localMembers(1);
  const data = mkdtempSync(join(tmpdir(), 'edgeraft-cli-lmdb-'));
  const args = [
    '--id',
    m!.id,
    '--data',
    data,
    '--members',
    `${m!.id}=${m!.address}/${m!.clientAddress}`,
    '--tick-ms',
    '5',
    '--state-machine',
    'lmdb-kv',
  ];
  let run = await startServe(args);
  try {
    assert.is(run.ready.stateMachine, 'lmdb-kv');
    assert.is(run.ready.recovery.onDisk, true);
    const client = await RaftClient.connect({ servers: [m!.clientAddress] });
    let last = 0;
    try {
      for (let i = 0; i < 20; i++) {
        last = (await client.commandWithIndex({ op: 'put', key: `k${i}`, value: `v${i}` })).index;
      }
    } finally {
      await client.close();
    }
    process.kill(run.child.pid!, 'SIGKILL');
    await run.closed;
    run = await startServe(args);
    const recovery = run.ready.recovery;
    assert.is(recovery.onDisk, true);
    assert.is(recovery.restoredSnapshot, false);
    assert.ok(recovery.machineAppliedIndex >= last, JSON.stringify(recovery));
    assert.is(recovery.appliedIndex, recovery.machineAppliedIndex);
    const again = await RaftClient.connect({ servers: [m!.clientAddress] });
    try {
      assert.equal(await again.query({ op: 'get', key: 'k19' }), { value: 'v19' });
    } finally {
      await again.close();
    }
  } finally {
    if (run.child.exitCode === null) process.kill(run.child.pid!, 'SIGKILL');
    await run.closed;
    rmSync(data, { recursive: true, force: true });
  }
});

test.run();
