// Proves the whole member over real parts: three `serve` child processes of the current runtime,
// real TCP on 127.0.0.1, LMDB files in a fresh temporary folder, SIGKILL by pid. The tests run in
// order on one cluster (starting one costs seconds under Deno); each says what it proves.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError, RaftClient } from '../../lib/client/client.ts';
import type { MemberSpec } from '../../lib/cli/args.ts';
import {
  LocalCluster,
  localMembers,
  type ServeProcess,
  signalAndWait,
} from '../../lib/cli/processes.ts';
import type { ServerStatus } from '../../lib/server/server.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { MemberProbes, waitFor } from './support.ts';

const test = suite('cluster of processes');

/** Small thresholds so that a few hundred writes take snapshots and compact the log. */
const snapshotEntries = 200;
const trailingEntries = 50;

let root = '';
let members: MemberSpec[] = [];
let cluster: LocalCluster | null = null;
let client: RaftClient | null = null;
const probes = new MemberProbes();
/** Every write a leader acknowledged, key → value: all must be readable at the end of each test. */
const acknowledged = new Map<string, string>();
let lastAckIndex = 0;

const addressOf = (id: string) => members.find((m) => m.id === id)!.clientAddress;
const running = () => members.filter((m) => cluster!.processes.has(m.id));

/** Statuses of the running members (throws if one does not answer). */
async function statuses(): Promise<ServerStatus[]> {
  return await Promise.all(running().map((m) => probes.status(m.clientAddress)));
}

/** The leader every running member agrees on, once they do. */
function agreedLeader(timeoutMs: number): Promise<ServerStatus> {
  return waitFor('the running members to agree on one leader', async () => {
    const all = await statuses();
    const leaders = all.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0]!;
    return all.every((s) => s.leaderId === leader.id && s.term === leader.term)
      ? leader
      : undefined;
  }, timeoutMs);
}

/**
 * Write `count` fresh keys with `prefix` through the client, `parallel` at a time. A failed write
 * fails the test unless `tolerate` accepts the error (its outcome is then unknown, so it is not
 * counted as acknowledged).
 */
async function writeKeys(
  prefix: string,
  count: number,
  parallel = 32,
  tolerate = (_e: unknown) => false,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const key = `${prefix}${next++}`;
      const value = `value of ${key}`;
      let r: { index: number; output: unknown };
      try {
        r = await client!.commandWithIndex({ op: 'put', key, value });
      } catch (error) {
        if (tolerate(error)) continue;
        throw error;
      }
      assert.equal(r.output, { previous: null }, `put ${key} replaced nothing`);
      acknowledged.set(key, value);
      lastAckIndex = Math.max(lastAckIndex, r.index);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** Wait until member `id` has applied everything the leader committed, then check every key. */
async function assertCaughtUp(id: string, timeoutMs: number): Promise<ServerStatus> {
  const leader = await agreedLeader(timeoutMs);
  const target = Math.max(leader.commitIndex, lastAckIndex);
  const s = await waitFor(`${id} to apply up to ${target}`, async () => {
    const st = await probes.status(addressOf(id));
    return st.lastAppliedIndex >= target ? st : undefined;
  }, timeoutMs);
  for (const [key, value] of acknowledged) {
    assert.is(await probes.get(addressOf(id), key), value, `${id} holds acknowledged ${key}`);
  }
  return s;
}

/** Linearizable reads, through the leader, of every acknowledged key. */
async function assertNothingLost(): Promise<void> {
  const keys = [...acknowledged.keys()];
  const values = await Promise.all(keys.map((key) => client!.query({ op: 'get', key })));
  keys.forEach((key, i) =>
    assert.equal(values[i], { value: acknowledged.get(key) }, `acknowledged ${key} readable`)
  );
}

test.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'edgeraft-cluster-test-'));
  members = await localMembers(3);
  cluster = await LocalCluster.start({
    members,
    dataRoot: root,
    cluster: 'cluster-test',
    serveArgs: [
      '--snapshot-entries',
      String(snapshotEntries),
      '--trailing-entries',
      String(trailingEntries),
    ],
  });
  client = await RaftClient.connect({
    servers: cluster.clientAddresses(),
    requestTimeoutMs: 10_000,
    retryDelayMs: 20,
    // These tests kill members (a reset connection is noticed at once); the keep-alive that finds
    // paused members has its own test. On a loaded machine its default (300 ms) may give up on a
    // busy live member, which ends the commands in flight there with TIMEOUT too.
    keepAliveTimeoutMs: 3_000,
  });
});

test.after(async () => {
  try {
    await client?.close();
    await probes.close();
    await cluster?.stopAll(5_000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// One leader is elected and every member agrees on it and its term.
test('election: the members elect one leader and agree on it', async () => {
  const leader = await agreedLeader(15_000);
  assert.ok(leader.term >= 1);
  const followers = (await statuses()).filter((s) => s.id !== leader.id);
  assert.equal(followers.map((s) => s.role), ['follower', 'follower']);
});

// Acknowledged writes reach every member's state machine; past the threshold each takes a snapshot.
test('replication: every member applies every acknowledged write, and compacts its log', async () => {
  await writeKeys('r', snapshotEntries + 150);
  for (const m of members) await assertCaughtUp(m.id, 15_000);
  for (const s of await statuses()) {
    assert.ok(s.snapshotsTaken >= 1, `${s.id} took a snapshot`);
    assert.ok(s.snapshotIndex >= snapshotEntries, `${s.id} snapshot index ${s.snapshotIndex}`);
    assert.ok(s.firstIndex > 1, `${s.id} compacted its log, first index ${s.firstIndex}`);
    assert.ok(
      s.firstIndex - 1 <= s.snapshotIndex - trailingEntries,
      `${s.id} kept ${trailingEntries} trailing entries`,
    );
  }
});

let killedLeader = '';

// A SIGKILLed leader is replaced by a new one, and nothing it acknowledged is lost.
test('SIGKILL of the leader: re-election, no acknowledged write lost', async () => {
  const old = await agreedLeader(10_000);
  killedLeader = old.id;
  let killing = false;
  let unknownOutcomes = 0;
  // Commands in flight at the kill may reject with an unknown outcome (TIMEOUT); no other failure.
  const tolerate = (e: unknown) =>
    killing && e instanceof ClientError && e.code === 'TIMEOUT' && ++unknownOutcomes > 0;
  const writing = writeKeys('k', 400, 16, tolerate);
  await waitFor(
    'some writes before the kill',
    () => (acknowledged.size > snapshotEntries + 250 ? true : undefined),
    10_000,
    5,
  );
  killing = true;
  await cluster!.kill(old.id);
  await writing;
  assert.ok(
    unknownOutcomes <= 16,
    `at most one unknown outcome per writer, got ${unknownOutcomes}`,
  );
  const next = await agreedLeader(15_000);
  assert.is.not(next.id, old.id);
  assert.ok(next.term > old.term, `new term ${next.term} after ${old.term}`);
  await writeKeys('after-kill-', 50);
  await assertNothingLost();
});

// The killed member restarts from its own files and catches up with what it missed.
test('the killed member restarts and catches up', async () => {
  assert.ok(killedLeader !== '');
  await cluster!.startMember(killedLeader);
  await writeKeys('after-restart-', 20);
  const s = await assertCaughtUp(killedLeader, 20_000);
  assert.is(s.role, 'follower');
});

// A follower that missed more than the leader kept in its log is brought back by a snapshot.
test('a follower behind the compacted log catches up by snapshot', async () => {
  const leader = await agreedLeader(10_000);
  const follower = members.find((m) => m.id !== leader.id)!.id;
  const behind = await probes.status(addressOf(follower));
  await cluster!.kill(follower);
  await writeKeys('while-down-', snapshotEntries + trailingEntries + 50);
  // Snapshots and compaction follow the applies asynchronously: wait (bounded) for the leader to
  // compact past what the follower has.
  const now = await waitFor('the leader to compact past the stopped follower', async () => {
    const l = await agreedLeader(10_000);
    return l.firstIndex > behind.lastIndex + 1 ? l : undefined;
  }, 10_000);
  await cluster!.startMember(follower);
  const s = await assertCaughtUp(follower, 20_000);
  assert.ok(s.snapshotsInstalled >= 1, `${follower} installed a snapshot`);
  assert.ok(s.snapshotIndex >= now.firstIndex - 1, `${follower} snapshot index ${s.snapshotIndex}`);
});

// A follower whose data folder is deleted rejoins and is brought back by a snapshot transfer.
test('a wiped follower catches up by snapshot', async () => {
  const leader = await agreedLeader(10_000);
  const before = leader.firstIndex;
  assert.ok(
    before > 2,
    `the leader's log is compacted (first index ${before}), so only a snapshot can help`,
  );
  const follower = members.find((m) => m.id !== leader.id)!.id;
  const proc = cluster!.processes.get(follower)!;
  await cluster!.kill(follower);
  rmSync(proc.dataDir, { recursive: true, force: true });
  // Restarted at once, with no write in between: the leader still counts its old match index.
  await cluster!.startMember(follower);
  await writeKeys('after-wipe-', 30);
  const s = await assertCaughtUp(follower, 30_000);
  assert.ok(s.snapshotsInstalled >= 1, `${follower} installed a snapshot`);
  assert.ok(s.snapshotIndex > 0, `${follower} snapshot index ${s.snapshotIndex}`);
  // It now replicates normally: a new write reaches it through the log.
  await writeKeys('after-install-', 10);
  await assertCaughtUp(follower, 10_000);
  await assertNothingLost();
});

// SIGTERM stops every member cleanly (it logs its stop, then ends by SIGTERM as Unix convention
// asks; its files close and reopen holding every acknowledged write).
test('graceful stop: every member stops, ends by SIGTERM, and its log holds every acknowledged write', async () => {
  await agreedLeader(10_000);
  const procs: ServeProcess[] = [...cluster!.processes.values()];
  assert.is(procs.length, 3);
  const exits = await Promise.all(procs.map(async (p) => {
    const exited = await signalAndWait(p.child, 'SIGTERM', 10_000);
    return {
      id: p.spec.id,
      exited,
      code: p.child.exitCode,
      signal: p.child.signalCode,
      tail: `signal ${p.child.signalCode}: ${p.stderrTail.slice(-3).join(' | ')}`,
    };
  }));
  cluster!.processes.clear();
  for (const e of exits) {
    assert.ok(e.exited, `${e.id} exited after SIGTERM`);
    // After its graceful stop, serve ends by the signal it got (Unix convention), on every runtime.
    assert.is(e.signal, 'SIGTERM', `${e.id} ended by SIGTERM (code ${e.code}, ${e.tail})`);
    assert.ok(e.tail.includes('stopped'), `${e.id} logged its stop: ${e.tail}`);
  }
  for (const p of procs) {
    const storage = await LmdbStorage.open({ path: p.dataDir });
    try {
      assert.ok(
        storage.lastIndex() >= lastAckIndex,
        `${p.spec.id} last index ${storage.lastIndex()} >= ${lastAckIndex}`,
      );
    } finally {
      await storage.close();
    }
  }
});

test.run();
