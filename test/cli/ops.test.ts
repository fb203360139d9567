// Proves the operator's commands as a user runs them: the real command line, a child process of
// the current runtime, against a cluster of real `serve` children on 127.0.0.1 (started as
// `LocalCluster` starts them, under the same runtime): del, cas, append and scan print the
// key-value machine's outputs; transfer-leader moves leadership (status agrees); health exits 0 on
// a healthy cluster and 1 once a member was SIGKILLed; --version prints package.json's version;
// a client that finds nobody at any address fails at once, naming each; `cluster` reports a member
// that dies and removes its temporary data folder; bad flags exit 2 naming the flag.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { RaftClient } from '../../lib/client/client.ts';
import { freePort, LocalCluster, localMembers } from '../../lib/cli/processes.ts';
import { repoRoot, spawnTs } from '../../lib/runtime.ts';
import { waitFor } from '../server/support.ts';
import { cli, type Run } from './support.ts';

const test = suite('command line: operations');

/** Members of the shared cluster. */
const clusterSize = 3;
/** How long the cluster may take to elect a leader, in milliseconds. */
const leaderWaitMsMax = 20_000;

let cluster: LocalCluster | null = null;
let dataRoot = '';
const tempFolders: string[] = [];

test.before(async () => {
  dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-cli-ops-'));
  cluster = await LocalCluster.start({
    members: await localMembers(clusterSize),
    dataRoot,
    cluster: 'cli-ops',
  });
});

test.after(async () => {
  await cluster?.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
  for (const dir of tempFolders) rmSync(dir, { recursive: true, force: true });
});

function live(): LocalCluster {
  if (cluster === null) throw new Error('The cluster did not start');
  return cluster;
}

/** Every member's client address, comma-separated (the `--servers` of a command). */
function servers(): string {
  return live().clientAddresses().join(',');
}

type Status = { id: string; role: string; leaderId: string | null; term: number };

/** The status member `address` reports (asked of it alone). */
async function statusAt(address: string): Promise<Status> {
  const client = await RaftClient.connect({ servers: [address], preferLeader: false });
  try {
    return await client.status() as Status;
  } finally {
    await client.close();
  }
}

/** The leader every member names, once they all name the same one. */
function agreedLeader(): Promise<string> {
  return waitFor('every member to name one leader', async () => {
    const statuses = await Promise.all(live().clientAddresses().map(statusAt));
    const leaders = new Set(statuses.map((s) => s.leaderId));
    const [leader] = [...leaders];
    return leaders.size === 1 && leader !== null && leader !== undefined ? leader : undefined;
  }, leaderWaitMsMax);
}

/** The JSON a command printed on stdout. */
function json(run: Run): unknown {
  assert.ok(run.stdout.trim() !== '', `no output; stderr: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** `run` ended with `code`; the message names the run's stderr when not. */
function exited(run: Run, code: number, what: string): void {
  assert.is(run.code, code, `${what}: exit ${run.code}, stderr: ${run.stderr}`);
}

// del, cas, append and scan print the key-value machine's outputs (see lib/state/kv.ts), put's
// way: {"index":...,"output":...}; a cas that does not set exits 1 and says what the key holds.
test('del, cas (set and not set), append and scan print the machine outputs', async () => {
  await agreedLeader();
  const s = servers();
  exited(await cli(['put', 'ops/a', 'x', '--servers', s]), 0, 'put');
  // Independent keys in parallel: each chain is one key's history.
  const [appendChain, delChain, casChain] = await Promise.all([
    (async () => {
      const first = await cli(['append', 'ops/a', 'yz', '--servers', s]);
      const fresh = await cli(['append', 'ops/new', 'q', '--servers', s]);
      return [first, fresh];
    })(),
    (async () => {
      exited(await cli(['put', 'ops/gone', 'v', '--servers', s]), 0, 'put ops/gone');
      const first = await cli(['del', 'ops/gone', '--servers', s]);
      const again = await cli(['del', 'ops/gone', '--servers', s]);
      return [first, again];
    })(),
    (async () => {
      const wrong = await cli(['cas', 'ops/lock', 'someone', 'me', '--servers', s]);
      const absent = await cli(['cas', 'ops/lock', 'me', '--expect-absent', '--servers', s]);
      const absentAgain = await cli(['cas', 'ops/lock', 'you', '--expect-absent', '--servers', s]);
      const swap = await cli(['cas', 'ops/lock', 'me', 'you', '--servers', s]);
      return [wrong, absent, absentAgain, swap];
    })(),
  ]);
  const [append, appendFresh] = appendChain;
  exited(append!, 0, 'append');
  const appended = json(append!) as { index: number; output: unknown };
  assert.equal(appended.output, { value: 'xyz' });
  assert.ok(appended.index >= 1);
  exited(appendFresh!, 0, 'append to an absent key');
  assert.equal((json(appendFresh!) as { output: unknown }).output, { value: 'q' });

  const [del, delAgain] = delChain;
  exited(del!, 0, 'del');
  assert.equal((json(del!) as { output: unknown }).output, { previous: 'v' });
  exited(delAgain!, 0, 'del of an absent key');
  assert.equal((json(delAgain!) as { output: unknown }).output, { previous: null });

  const [wrong, absent, absentAgain, swap] = casChain;
  exited(wrong!, 1, 'cas with the wrong expected value');
  assert.equal((json(wrong!) as { output: unknown }).output, { ok: false, current: null });
  assert.match(wrong!.stderr, /not set: "ops\/lock" holds no value, expected "someone"/);
  exited(absent!, 0, 'cas --expect-absent on an absent key');
  assert.equal((json(absent!) as { output: unknown }).output, { ok: true, current: 'me' });
  exited(absentAgain!, 1, 'cas --expect-absent on a present key');
  assert.equal((json(absentAgain!) as { output: unknown }).output, { ok: false, current: 'me' });
  assert.match(absentAgain!.stderr, /holds "me", expected no value/);
  exited(swap!, 0, 'cas with the right expected value');
  assert.equal((json(swap!) as { output: unknown }).output, { ok: true, current: 'you' });

  const [table, limited, asJson, none] = await Promise.all([
    cli(['scan', '--prefix', 'ops/', '--servers', s]),
    cli(['scan', '--prefix', 'ops/', '--limit', '2', '--servers', s]),
    cli(['scan', '--prefix', 'ops/', '-o', 'json', '--consistency', 'lease', '--servers', s]),
    cli(['scan', '--prefix', 'nothing-here/', '--servers', s]),
  ]);
  exited(table, 0, 'scan');
  assert.equal(table.stdout.trim().split('\n').map((l) => l.split(/\s+/)), [
    ['KEY', 'VALUE'],
    ['ops/a', 'xyz'],
    ['ops/lock', 'you'],
    ['ops/new', 'q'],
    ['3', 'keys'],
  ]);
  exited(limited, 0, 'scan --limit 2');
  assert.match(limited.stdout, /ops\/a\s+xyz\nops\/lock\s+you\n2 keys \(the limit: --limit 2/);
  exited(asJson, 0, 'scan -o json');
  assert.equal(json(asJson), {
    entries: [['ops/a', 'xyz'], ['ops/lock', 'you'], ['ops/new', 'q']],
  });
  exited(none, 0, 'scan of an empty prefix');
  assert.is(none.stdout.trim(), '0 keys');
});

// transfer-leader ID, sent through the one member that is neither leader nor target (so it is
// forwarded), answers once ID leads, and every member's status then names ID; a target that is
// not a member, or not ACTIVE, is refused by name, exit 1.
test('transfer-leader moves leadership; status agrees; an unknown member is refused', async () => {
  const leader = await agreedLeader();
  const members = live().options.members;
  const target = members.find((m) => m.id !== leader)!;
  const bystander = members.find((m) => m.id !== leader && m.id !== target.id)!;
  const moved = await cli(['transfer-leader', target.id, '--servers', bystander.clientAddress]);
  exited(moved, 0, 'transfer-leader');
  const answer = json(moved) as { leaderId: string; term: number };
  assert.is(answer.leaderId, target.id);
  const status = await cli(['status', '--servers', target.clientAddress]);
  exited(status, 0, 'status of the target');
  const s = json(status) as Status;
  assert.is(s.role, 'leader');
  assert.is(s.id, target.id);
  assert.is(s.term, answer.term);
  assert.is(await agreedLeader(), target.id);

  const joined = await cli([
    'join',
    'spare',
    '--as',
    'reserve',
    '--peer-address',
    '127.0.0.1:1',
    '--servers',
    servers(),
  ]);
  exited(joined, 0, 'join a RESERVE member');
  const [unknown, same, reserve] = await Promise.all([
    cli(['transfer-leader', 'nobody', '--servers', servers()]),
    cli(['transfer-leader', target.id, '--servers', servers()]),
    cli(['transfer-leader', 'spare', '--servers', servers()]),
  ]);
  exited(reserve, 1, 'transfer-leader to a RESERVE member');
  assert.match(reserve.stderr, /refused: spare is RESERVE; only an ACTIVE member can lead/);
  exited(unknown, 1, 'transfer-leader to a non-member');
  assert.match(unknown.stderr, /Leadership transfer refused: nobody is not a member/);
  assert.is(unknown.stderr.trim().split('\n').length, 1, 'one line');
  exited(same, 0, 'transfer-leader to the leader itself');
  assert.is((json(same) as { leaderId: string }).leaderId, target.id);
});

// --version prints package.json's version, and nothing else.
test('--version prints the version in package.json', async () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  const run = await cli(['--version']);
  exited(run, 0, '--version');
  assert.is(run.stdout, `${version}\n`);
});

// When nothing listens at any address, a command fails at once (not at its --timeout) with one
// line naming every address and "connection refused", exit 1; so does one member's health row.
test('every address refusing fails fast, naming each address', async () => {
  const addresses = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const timeoutMs = 20_000;
  const [put, status] = await Promise.all([
    cli(['put', 'k', 'v', '--timeout', String(timeoutMs), '--servers', addresses.join(',')]),
    cli(['status', '--timeout', String(timeoutMs), '--servers', addresses.join(',')]),
  ]);
  for (const [what, run] of [['put', put], ['status', status]] as const) {
    exited(run, 1, what);
    const lines = run.stderr.trim().split('\n');
    assert.is(lines.length, 1, `${what}: one line: ${run.stderr}`);
    for (const a of addresses) assert.ok(lines[0]!.includes(`${a} connection refused`), lines[0]);
    // Runtime start-up included: far below the 20 s deadline on a loaded 2-core machine.
    assert.ok(run.elapsedMs < timeoutMs / 2, `${what} took ${run.elapsedMs} ms`);
  }
});

// Bad flags and arguments of the new commands exit 2 with a message naming the flag.
test('bad flags of the operator commands exit 2 naming the flag', async () => {
  const runs = await Promise.all([
    cli(['health', '--timeout', '0']),
    cli(['health', '-o', 'yaml']),
    cli(['scan', '--limit', 'many']),
    cli(['scan', '--limit', '10001']),
    cli(['scan', '--consistency', 'eventual']),
    cli(['del', 'k', '--timeout', 'soon']),
    cli(['cas', 'k', 'v']),
    cli(['transfer-leader']),
    cli(['append', 'k', 'v', '--bogus']),
    cli(['health', '--servers', '127.0.0.1:1,nohost']),
  ]);
  const expected = [
    /Flag --timeout: 0 is below the minimum 1/,
    /Flag -o: expected table or json, got "yaml"/,
    /Flag --limit: expected an integer, got many/,
    /Flag --limit: 10001 is above the maximum 10000/,
    /Flag --consistency: expected linearizable, lease or sequential, got "eventual"/,
    /Flag --timeout: expected an integer, got soon/,
    /cas takes KEY, EXPECTED and NEW/,
    /transfer-leader takes a member ID/,
    /Unknown flag: --bogus/,
    /Flag --servers: expected host:port, got "nohost"/,
  ];
  runs.forEach((run, i) => {
    exited(run, 2, String(expected[i]));
    assert.match(run.stderr, expected[i]!);
  });
});

// `cluster` says which member died and how, and removes the temporary data folder it made when
// it ends (here on Ctrl-C, SIGINT to its pid, after one of its two members was SIGKILLed).
test('cluster reports a member that dies and removes its temporary data folder', async () => {
  const child = spawnTs('lib/cli.ts', ['cluster', '--size', '2']);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal }))
  );
  const pids: number[] = [];
  try {
    await waitFor('the cluster to run', () => stdout.includes('Ctrl-C stops') || undefined, 30_000);
    const folder = /data in (\S+)/.exec(stdout)![1]!;
    tempFolders.push(folder); // removed afterwards should the cluster fail to
    for (const m of stdout.matchAll(/^\s+(n\d): peer \S+, client \S+, pid (\d+)$/gm)) {
      pids.push(Number(m[2]));
    }
    assert.is(pids.length, 2, stdout);
    assert.ok(existsSync(folder), 'the data folder exists while the cluster runs');
    process.kill(pids[1]!, 'SIGKILL'); // n2: a process the cluster started for this test
    await waitFor('the death reported', () => stderr.includes('member n2') || undefined, 10_000);
    assert.match(stderr, new RegExp(`member n2 \\(pid ${pids[1]}\\) died: signal SIGKILL`));
    assert.not.match(stderr, /member n1 .*died/);
    process.kill(child.pid!, 'SIGINT');
    const end = await closed;
    assert.ok(end.signal === 'SIGINT' || end.code === 130, JSON.stringify(end));
    assert.not.ok(existsSync(folder), `${folder} removed`);
    assert.match(stdout, /removed/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Ended already.
      }
    }
  }
});

// health asks every member for its own status: exit 0, one row each, while all answer and agree
// on one leader; after a SIGKILL of one member (a process this test started, by its pid) exit 1,
// with that member's row and the verdict saying "connection refused"; a transfer to the dead
// member times out. Last: it breaks the cluster.
test('health: exit 0 on a healthy cluster, 1 once a member was killed', async () => {
  const leader = await agreedLeader();
  const [table, asJson] = await Promise.all([
    cli(['health', '--servers', servers()]),
    cli(['health', '-o', 'json', '--servers', servers()]),
  ]);
  exited(table, 0, 'health');
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0]!, /^ID\s+ADDRESS\s+STATE\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED$/);
  assert.is(lines.length, clusterSize + 2);
  assert.match(lines.at(-1)!, new RegExp(`^healthy: 3 of 3 members reachable, leader ${leader}`));
  exited(asJson, 0, 'health -o json');
  const report = json(asJson) as {
    healthy: boolean;
    leaderId: string;
    members: Array<{ id: string; reachable: boolean; leaderId: string }>;
  };
  assert.is(report.healthy, true);
  assert.is(report.leaderId, leader);
  assert.equal(report.members.map((m) => m.reachable), [true, true, true]);

  const victim = live().options.members.find((m) => m.id !== leader)!;
  await live().kill(victim.id);
  const [after, afterJson] = await Promise.all([
    cli(['health', '--servers', servers()]),
    cli(['health', '-o', 'json', '--servers', servers()]),
  ]);
  exited(after, 1, 'health with a member killed');
  assert.match(
    after.stdout,
    new RegExp(`${victim.id}\\s+${victim.clientAddress}\\s+unreachable: connection refused`),
  );
  assert.match(after.stdout, /unhealthy: .* unreachable: connection refused/);
  exited(afterJson, 1, 'health -o json with a member killed');
  const broken = json(afterJson) as { healthy: boolean; members: Array<{ reachable: boolean }> };
  assert.is(broken.healthy, false);
  assert.is(broken.members.filter((m) => !m.reachable).length, 1);

  // A transfer to the dead member (ACTIVE, so allowed) cannot finish: it times out, naming it.
  const stuck = await cli(['transfer-leader', victim.id, '--servers', servers()]);
  exited(stuck, 1, 'transfer-leader to a dead member');
  assert.match(stuck.stderr, new RegExp(`Timed out: leadership transfer to ${victim.id}`));
});

test.run();
