// Proves disaster recovery as an operator runs it: the real command line and real `serve`
// children on 127.0.0.1 under the current runtime. Save refuses a member with no snapshot when
// told not to take one, and writes nothing. `snapshot save` fetches the leader's snapshot
// of a 3-member cluster into a file (never leaving FILE.part), the cluster stops, `snapshot
// restore` makes three fresh data directories from that one file for a new cluster on other
// ports, and the new cluster serves every key with its saved value (and takes writes). A file with
// one flipped byte, a truncated one, and one that is not a snapshot file are refused, naming what
// is wrong, and create nothing; restore into a non-empty directory and bad flags exit 2 naming
// the flag.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KvClient, RaftClient } from '../../lib/client/client.ts';
import { LocalCluster, localMembers } from '../../lib/cli/processes.ts';
import type { MemberSpec } from '../../lib/cli/args.ts';
import { cli, type Run } from './support.ts';

const test = suite('command line: snapshot save and restore');

/** Keys written before the save: past `--snapshot-entries`, so snapshots and compaction happen. */
const keyCount = 60;
/** The serve flags of both clusters: a snapshot every 20 entries, 5 kept below it. */
const serveArgs = ['--snapshot-entries', '20', '--trailing-entries', '5'];
/** How long a cluster may take to elect a leader and answer, in milliseconds. */
const leaderWaitMsMax = 20_000;

let root = '';
let saved = '';
const clusters: LocalCluster[] = [];

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'edgeraft-cli-snapshot-'));
});

test.after(async () => {
  for (const c of clusters) await c.stopAll();
  rmSync(root, { recursive: true, force: true });
});

function membersFlag(specs: readonly MemberSpec[]): string {
  return specs.map((m) => `${m.id}=${m.address}/${m.clientAddress}`).join(',');
}

function exited(run: Run, code: number, what: string): void {
  assert.is(
    run.code,
    code,
    `${what}: exit ${run.code}, stdout: ${run.stdout}, stderr: ${run.stderr}`,
  );
}

async function kvClient(servers: string[]): Promise<KvClient> {
  return await RaftClient.connect({ servers, requestTimeoutMs: leaderWaitMsMax }) as KvClient;
}

const valueOf = (i: number) => `value-${i}-${'x'.repeat(i % 7)}`;
/** Large values besides: the snapshot spans more than one of the store's 1 MiB chunks. */
const bigKeyCount = 3;
const bigValueOf = (i: number) => `${i}`.repeat(400_000);

// The whole round trip: save from a live cluster, restore three members, read every key back.
test('save, stop, restore three members, and the new cluster serves every saved key', async () => {
  const specs = await localMembers(3);
  const first = await LocalCluster.start({
    members: specs,
    dataRoot: join(root, 'first'),
    cluster: 'snap-first',
    serveArgs,
  });
  clusters.push(first);
  // Before any write no member has a snapshot: without taking one, save refuses and writes nothing.
  const early = join(root, 'early.snap');
  const none = await cli([
    'snapshot',
    'save',
    early,
    '--take=false',
    '--servers',
    first.clientAddresses().join(','),
  ]);
  exited(none, 1, 'snapshot save --take=false with no snapshot');
  assert.match(none.stderr, /holds no snapshot yet/, none.stderr);
  assert.not.ok(existsSync(early) || existsSync(`${early}.part`), 'no file was written');
  const client = await kvClient(first.clientAddresses());
  try {
    for (let i = 0; i < keyCount; i++) {
      await client.command({ op: 'put', key: `k${i}`, value: valueOf(i) });
    }
    for (let i = 0; i < bigKeyCount; i++) {
      await client.command({ op: 'put', key: `big${i}`, value: bigValueOf(i) });
    }
  } finally {
    await client.close();
  }
  saved = join(root, 'backup.snap');
  // Ranges of an odd size: the snapshot crosses the wire in many reads, across store chunks.
  const save = await cli([
    'snapshot',
    'save',
    saved,
    '--chunk-bytes',
    '65537',
    '--servers',
    first.clientAddresses().join(','),
  ]);
  exited(save, 0, 'snapshot save');
  const summary = JSON.parse(save.stdout) as {
    index: number;
    term: number;
    dataBytes: number;
    sha256: string;
    member: string;
  };
  assert.ok(summary.index >= keyCount, `snapshot at ${summary.index} covers the ${keyCount} puts`);
  assert.match(summary.sha256, /^[0-9a-f]{64}$/);
  assert.ok(summary.dataBytes > 1024 ** 2, `${summary.dataBytes} bytes: more than one store chunk`);
  assert.ok(existsSync(saved), 'the file exists');
  assert.not.ok(existsSync(`${saved}.part`), 'no .part file is left');
  await first.stopAll();

  // A new cluster on other ports, every member restored from the one file.
  const next = await localMembers(3);
  const nextRoot = join(root, 'next');
  const restores = await Promise.all(next.map((m) =>
    cli([
      'snapshot',
      'restore',
      saved,
      '--data',
      join(nextRoot, m.id),
      '--id',
      m.id,
      '--members',
      membersFlag(next),
    ])
  ));
  for (const r of restores) exited(r, 0, 'snapshot restore');
  const restored = JSON.parse(restores[0]!.stdout) as { index: number; sha256: string };
  assert.is(restored.index, summary.index);
  assert.is(restored.sha256, summary.sha256);
  const second = await LocalCluster.start({
    members: next,
    dataRoot: nextRoot,
    cluster: 'snap-next',
    serveArgs,
  });
  clusters.push(second);
  const reader = await kvClient(second.clientAddresses());
  try {
    for (let i = 0; i < keyCount; i++) {
      const out = await reader.query({ op: 'get', key: `k${i}` });
      assert.equal(out, { value: valueOf(i) }, `key k${i}`);
    }
    for (let i = 0; i < bigKeyCount; i++) {
      const out = await reader.query({ op: 'get', key: `big${i}` }) as { value: string | null };
      assert.ok(out.value === bigValueOf(i), `key big${i}`);
    }
    // The new cluster is a working cluster of the given members: it takes writes.
    await reader.command({ op: 'put', key: 'after', value: 'restore' });
    assert.equal(await reader.query({ op: 'get', key: 'after' }), { value: 'restore' });
    // Its configuration is the one given to restore: the new addresses, every member ACTIVE.
    const status = await reader.status() as {
      members: Array<{ id: string; type: string; address: string; clientAddress: string }>;
    };
    assert.equal(
      status.members.map((m) => [m.id, m.type, m.address, m.clientAddress]).sort(),
      next.map((m) => [m.id, 'ACTIVE', m.address, m.clientAddress]),
    );
  } finally {
    await reader.close();
    await second.stopAll();
  }
});

/** Run restore of `file` into a fresh path; returns the run and whether that path exists after. */
async function restoreInto(file: string, name: string): Promise<{ run: Run; created: boolean }> {
  const dir = join(root, name);
  const run = await cli([
    'snapshot',
    'restore',
    file,
    '--data',
    dir,
    '--id',
    'a',
    '--members',
    'a=127.0.0.1:1/127.0.0.1:2',
  ]);
  return { run, created: existsSync(dir) };
}

// Needs the file of the first test. A flipped byte in the data, a truncated file and a file of
// something else: each refused with what is wrong, exit 1, nothing created.
test('a corrupted, truncated or foreign file is refused and creates nothing', async () => {
  assert.ok(saved !== '' && existsSync(saved), 'the first test saved a file');
  const bytes = readFileSync(saved);
  const flipped = Buffer.from(bytes);
  const at = Math.floor(flipped.byteLength / 2);
  flipped[at] = flipped[at]! ^ 0x01;
  const flippedPath = join(root, 'flipped.snap');
  writeFileSync(flippedPath, flipped);
  const truncatedPath = join(root, 'truncated.snap');
  writeFileSync(truncatedPath, bytes.subarray(0, bytes.byteLength - 100));
  const foreignPath = join(root, 'foreign.snap');
  writeFileSync(foreignPath, 'not a snapshot at all, just text\n');
  const [f, t, o] = await Promise.all([
    restoreInto(flippedPath, 'from-flipped'),
    restoreInto(truncatedPath, 'from-truncated'),
    restoreInto(foreignPath, 'from-foreign'),
  ]);
  exited(f.run, 1, 'flipped');
  assert.match(f.run.stderr, /Snapshot file corrupted: SHA-256 mismatch/);
  exited(t.run, 1, 'truncated');
  assert.match(t.run.stderr, /Snapshot file truncated: .* bytes, expected \d+/);
  exited(o.run, 1, 'foreign');
  assert.match(o.run.stderr, /Not an edgeraft snapshot file/);
  assert.not.ok(f.created || t.created || o.created, 'no data directory was created');
});

// A directory that holds anything is refused (its file untouched); missing and bad flags too.
test('restore into a non-empty directory, or with bad flags, exits 2 naming the flag', async () => {
  assert.ok(saved !== '' && existsSync(saved), 'the first test saved a file');
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep.txt'), 'mine');
  const members = 'a=127.0.0.1:1/127.0.0.1:2';
  const [nonEmpty, noMembers, wrongId, badMembers] = await Promise.all([
    cli(['snapshot', 'restore', saved, '--data', busy, '--id', 'a', '--members', members]),
    cli(['snapshot', 'restore', saved, '--data', join(root, 'x1'), '--id', 'a']),
    cli([
      'snapshot',
      'restore',
      saved,
      '--data',
      join(root, 'x2'),
      '--id',
      'z',
      '--members',
      members,
    ]),
    cli([
      'snapshot',
      'restore',
      saved,
      '--data',
      join(root, 'x3'),
      '--id',
      'a',
      '--members',
      'a=nope',
    ]),
  ]);
  exited(nonEmpty, 2, 'non-empty --data');
  assert.match(nonEmpty.stderr, /Flag --data: .*already holds data/);
  assert.equal(readdirSync(busy), ['keep.txt'], 'the directory is untouched');
  exited(noMembers, 2, 'no --members');
  assert.match(noMembers.stderr, /needs --members/);
  exited(wrongId, 2, '--id not in --members');
  assert.match(wrongId.stderr, /Flag --id: z is not in --members/);
  exited(badMembers, 2, 'bad --members');
  assert.match(badMembers.stderr, /Flag --members: expected id=peerHost:port\/clientHost:port/);
  for (const x of ['x1', 'x2', 'x3']) assert.not.ok(existsSync(join(root, x)), `${x} not created`);
});

test.run();
