// Members on test hosts of our own: three `serve` processes, each in its own network namespace
// with its own address on a virtual link (lib/testing/netns.ts), all listening on the same ports
// as separate machines would; the test drives them from outside over that link. A partition is a
// property of the network (blackhole routes), not of a port: a leader cut off from both followers
// loses its leadership to one of them, and writes go on; a one-way cut from the leader to one
// follower leaves the cluster writable, and once healed that follower is fed again within a few
// heartbeat deadlines (not TCP's backoff); after each heal every member holds every acknowledged
// write. Under the runtime the suite runs in. Needs root and `ip` (iproute2); without them the
// test says so and checks nothing (the fault proxy of `edgeraft torture` covers partitions on
// loopback, as a non-root user can run it).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftClient } from '../../lib/client/client.ts';
import { signalAndWait } from '../../lib/cli/processes.ts';
import { cliScript, parentWatchScript, tsCommand } from '../../lib/runtime.ts';
import {
  createNamespaceHosts,
  type NamespaceHosts,
  namespacesUnavailable,
} from '../../lib/testing/netns.ts';

const unavailable = namespacesUnavailable();
const ids = ['a', 'b', 'c'];
const peerPort = 7101;
const clientPort = 7102;
/** Longest a leader change or a catch-up may take here, in ms (elections take 150-300 ms). */
const settleMsMax = 20_000;
/** How long the one-way cut lasts, in ms (see its test). */
const cutMs = 6_500;
/**
 * Longest a follower may stay unfed after a one-way cut heals, in ms: a few heartbeat deadlines;
 * TCP's retransmission backoff alone took 3.8 s after a 10 s cut and 7.2 s after a 20 s one.
 */
const caughtUpMsMax = 3_000;

type Status = {
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  lastAppliedIndex: number;
};

let net: NamespaceHosts | null = null;
let dir = '';
const children = new Map<string, ChildProcess>();
const stderrTails = new Map<string, string[]>();

function startMember(id: string): Promise<void> {
  const hosts = net!;
  const membersFlag = ids.map((m) => {
    const a = hosts.host(m).address;
    return `${m}=${a}:${peerPort}/${a}:${clientPort}`;
  }).join(',');
  const { command, args } = tsCommand(
    cliScript,
    [
      'serve',
      '--id',
      id,
      '--cluster',
      'netns',
      '--data',
      join(dir, id),
      '--members',
      membersFlag,
    ],
    undefined,
    [parentWatchScript],
  );
  const wrapped = hosts.host(id).wrap(command, args);
  const child = spawn(wrapped.command, wrapped.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EDGERAFT_PARENT_PID: String(process.pid) },
  });
  children.set(id, child);
  const tail: string[] = [];
  stderrTails.set(id, tail);
  child.stderr!.on('data', (chunk: Buffer) => {
    tail.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
    tail.splice(0, Math.max(0, tail.length - 20));
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`member ${id} not ready: ${tail.slice(-5).join(' | ')}`)),
      30_000,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('"ready":true')) {
        clearTimeout(timer);
        child.stdout!.resume();
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`member ${id} exited (${code ?? signal}): ${tail.slice(-5).join(' | ')}`));
    });
  });
}

function clientAddress(id: string): string {
  return `${net!.host(id).address}:${clientPort}`;
}

/**
 * A client of the whole cluster, from outside the namespaces, in a session: a command whose
 * leader is lost on the way is retried under its sequence number (applied once), as a user's is.
 */
function clusterClient(): Promise<RaftClient> {
  return RaftClient.connect({ servers: ids.map(clientAddress), requestTimeoutMs: 15_000 });
}

/** One member's own view, asked of it alone; null when it does not answer in time. */
async function statusOf(id: string): Promise<Status | null> {
  const client = await RaftClient.connect({
    servers: [clientAddress(id)],
    preferLeader: false,
    session: false,
    requestTimeoutMs: 1_000,
  });
  try {
    return await client.status() as Status;
  } catch {
    return null;
  } finally {
    await client.close();
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + settleMsMax;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`Not within ${settleMsMax} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The member every answering member names as leader, with the term, once they agree. */
function agreedLeader(among: readonly string[]): Promise<{ id: string; term: number }> {
  return waitFor(`one leader among ${among.join(', ')}`, async () => {
    const views = await Promise.all(among.map(statusOf));
    if (views.some((v) => v === null)) return null;
    const leaders = views.filter((v) => v!.role === 'leader');
    if (leaders.length !== 1) return null;
    const leader = among[views.indexOf(leaders[0]!)]!;
    const term = leaders[0]!.term;
    return views.every((v) => v!.leaderId === leader && v!.term === term)
      ? { id: leader, term }
      : null;
  });
}

/** Every member has applied at least `index`. */
function allApplied(index: number): Promise<true> {
  return waitFor(`every member applied ${index}`, async () => {
    const views = await Promise.all(ids.map(statusOf));
    return views.every((v) => v !== null && v.lastAppliedIndex >= index) ? true : null;
  });
}

async function put(client: RaftClient, key: string, value: string): Promise<number> {
  const { index } = await client.commandWithIndex({ op: 'put', key, value });
  return index;
}

test.before(async () => {
  if (unavailable !== null) return;
  net = createNamespaceHosts(ids);
  dir = mkdtempSync(join(tmpdir(), 'edgeraft-netns-'));
  await Promise.all(ids.map(startMember));
});

test.after(async () => {
  await Promise.all([...children.values()].map(async (child) => {
    if (!(await signalAndWait(child, 'SIGTERM', 5_000))) {
      await signalAndWait(child, 'SIGKILL', 5_000);
    }
  }));
  net?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('members on their own hosts elect a leader and answer from outside', async () => {
  if (unavailable !== null) {
    return console.log(`  network namespaces unavailable (${unavailable}): checks skipped`);
  }
  const addresses = new Set(net!.hosts.map((h) => h.address));
  assert.is(addresses.size, 3, 'three addresses, none of them loopback');
  for (const a of addresses) assert.not.match(a, /^127\./);
  const leader = await agreedLeader(ids);
  const client = await clusterClient();
  try {
    const index = await put(client, 'k0', 'v0');
    await allApplied(index);
    assert.equal(await client.query({ op: 'get', key: 'k0' }), { value: 'v0' });
    console.log(`  leader ${leader.id} at ${net!.host(leader.id).address}, term ${leader.term}`);
  } finally {
    await client.close();
  }
});

test('a leader cut off from both followers is replaced; after the heal it holds every write', async () => {
  if (unavailable !== null) return;
  const old = await agreedLeader(ids);
  const rest = ids.filter((id) => id !== old.id);
  const cutAtMs = Date.now();
  net!.isolate(old.id);
  const client = await clusterClient();
  try {
    const next = await agreedLeader(rest);
    const electedMs = Date.now() - cutAtMs;
    assert.is.not(next.id, old.id);
    assert.ok(next.term > old.term, 'a later term');
    let last = 0;
    for (let i = 1; i <= 20; i++) last = await put(client, `p${i}`, `v${i}`);
    const stale = await statusOf(old.id);
    assert.ok(stale !== null, 'the cut-off member still answers its client port from outside');
    assert.ok(stale.commitIndex < last, 'the cut-off member committed none of the new writes');
    net!.heal();
    const healed = await agreedLeader(ids);
    assert.ok(healed.term >= next.term);
    await allApplied(last);
    for (let i = 1; i <= 20; i++) {
      assert.equal(await client.query({ op: 'get', key: `p${i}` }), { value: `v${i}` });
    }
    console.log(`  ${old.id} isolated: ${next.id} leads after ${electedMs} ms, 20 writes`);
  } finally {
    net!.heal();
    await client.close();
  }
});

test('a one-way cut from the leader to one follower leaves the cluster writable; healed, it is fed at once', async () => {
  if (unavailable !== null) return;
  const leader = await agreedLeader(ids);
  const follower = ids.find((id) => id !== leader.id)!;
  net!.cut(leader.id, follower);
  const cutAtMs = Date.now();
  const client = await clusterClient();
  try {
    let last = 0;
    let writes = 0;
    // Writes go on through the whole cut, which lasts long enough for TCP's own retransmission
    // backoff on the connections between the two (an IP cut one way stops the acknowledgements
    // of the other direction too) to reach about 6 s: waiting for it would leave the follower
    // unfed for seconds after the heal.
    while (writes < 20 || Date.now() - cutAtMs < cutMs) {
      writes += 1;
      last = await put(client, `o${writes}`, `v${writes}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(net!.cuts(), [`${leader.id}>${follower}`]);
    const behind = await statusOf(follower);
    assert.ok(behind !== null && behind.lastAppliedIndex < last, 'the cut-off follower is behind');
    net!.heal();
    const healedAtMs = Date.now();
    await waitFor(`${follower} to apply ${last}`, async () => {
      const v = await statusOf(follower);
      return v !== null && v.lastAppliedIndex >= last ? true : null;
    });
    const caughtUpMs = Date.now() - healedAtMs;
    // A liveness bound, not a speed goal: the connections a cut silenced are redialled on the
    // members' own heartbeat deadline (answerDeadlineMs, 1 s here) instead of TCP's backoff.
    assert.ok(
      caughtUpMs < caughtUpMsMax,
      `${follower} fed again ${caughtUpMs} ms after the heal, limit ${caughtUpMsMax} ms`,
    );
    await agreedLeader(ids);
    await allApplied(last);
    for (let i = 1; i <= writes; i++) {
      assert.equal(await client.query({ op: 'get', key: `o${i}` }), { value: `v${i}` });
    }
    console.log(
      `  ${leader.id}>${follower} cut one way for ${cutMs} ms: ${writes} writes, ${follower} caught up ${caughtUpMs} ms after the heal`,
    );
  } finally {
    net!.heal();
    await client.close();
  }
});

test.run();
