// A state machine on disk in a running member, on real LMDB files: RaftServer takes one as its
// `stateMachine`, a restart opens at the applied index it holds and applies nothing again (the
// log is not replayed from the snapshot), a member whose install stopped between the log's write
// and the machine's switch restores the snapshot at open, and the options are checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemberDriver } from '../../lib/member/driver.ts';
import { parseDriverOptions } from '../../lib/member/options.ts';
import { realClock } from '../../lib/server/clock.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import type { DiskStateMachine, DiskStore } from '../../lib/state/disk-state-machine.ts';
import type { Commit } from '../../lib/state/state-machine.ts';
import { kvQuery } from '../../lib/state/kv.ts';
import { LmdbKvStateMachine } from '../../lib/state/lmdb-kv.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { MemoryStorage } from '../../lib/storage/memory.ts';
import { storeSnapshot } from '../../lib/storage/storage.ts';
import { CountingLmdbKv, EntryMaker, openDiskMember, tempDir } from './disk-support.ts';

const codec = cborCodec<unknown>();
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

async function startServer(dataDir: string, machine: CountingLmdbKv) {
  const server = await RaftServer.start({
    id: 'a',
    cluster: 'disk',
    dataDir,
    peerAddress: '127.0.0.1:0',
    clientAddress: '127.0.0.1:0',
    members: [{ id: 'a', type: 'ACTIVE', address: '127.0.0.1:1' }],
    stateMachine: machine,
    logger: quiet,
    tickMs: 5,
    electionTicks: 10,
    heartbeatTicks: 2,
    compactionTrailingEntries: 0,
  });
  await waitForLeader(server);
  return server;
}

async function waitForLeader(server: { role: string }): Promise<void> {
  for (let i = 0; i < 400 && server.role !== 'leader'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.is(server.role, 'leader');
}

test('RaftServer with an LMDB key-value machine restarts at its applied index, replaying nothing', async () => {
  const dir = tempDir('disk-server');
  try {
    let machine = new CountingLmdbKv();
    let server = await startServer(dir.path, machine);
    const reg = await server.handle({ kind: 'register', timeoutMs: 60_000 });
    assert.ok(reg.ok);
    const session = (reg.output as { session: number }).session;
    for (let sequence = 1; sequence <= 40; sequence++) {
      const data = codec.encode({ op: 'append', key: 'log', value: `${sequence},` });
      const reply = await server.handle({ kind: 'command', session, sequence, data });
      assert.ok(reply.ok, JSON.stringify(reply));
      if (sequence === 20) assert.ok((await server.takeSnapshot()) > 0);
    }
    const applied = server.status().lastAppliedIndex;
    const value = await server.query({ op: 'get', key: 'log' });
    await server.stop();

    machine = new CountingLmdbKv();
    server = await startServer(dir.path, machine);
    const r = server.recovery;
    assert.equal(
      { onDisk: r.onDisk, machine: r.machineAppliedIndex, restored: r.restoredSnapshot },
      { onDisk: true, machine: applied, restored: false },
    );
    assert.ok(r.snapshotIndex > 0 && r.snapshotIndex < applied, 'a snapshot below it');
    assert.equal(await server.query({ op: 'get', key: 'log' }, 'sequential'), value);
    // A retry of the last command after the restart: answered from the kept result.
    const retry = await server.handle({
      kind: 'command',
      session,
      sequence: 40,
      data: codec.encode({ op: 'append', key: 'log', value: '40,' }),
    });
    assert.equal(retry.ok && retry.duplicate, true);
    assert.equal(machine.appliedIndexes, [], 'nothing applied again');
    await server.stop();
  } finally {
    dir.remove();
  }
});

test('a member whose install stopped before the machine switched restores the snapshot at open', async () => {
  const a = tempDir('disk-half-install-a');
  const b = tempDir('disk-half-install-b');
  try {
    // A snapshot of a machine at index 60, as a leader would send it.
    const ma = await openDiskMember(a.path);
    const e = new EntryMaker();
    const entries = [e.register()];
    for (let i = 1; i < 60; i++) {
      entries.push(e.command(1, i, { op: 'put', key: `k${i}`, value: 'v' }));
    }
    await ma.executor.applyEntries(entries);
    const snap = ma.executor.takeSnapshot();
    const expected = ma.executor.query(kvQuery.scan('', 1000));
    // The follower's install write: snapshot data and metadata in, its log discarded; then it
    // died before the machine's own switch.
    const storage = await LmdbStorage.open({ path: b.path });
    await storage.write({
      entries: [{ type: 'noop', index: 1, term: 1, timeMs: 0 }],
      hardState: { term: 1, vote: null, commitIndex: 1 },
    });
    const members = [{ id: 'b', type: 'ACTIVE' as const, address: '127.0.0.1:1' }];
    await storeSnapshot(storage, { ...snap.meta, members }, snap.chunks);
    assert.is(storage.firstIndex(), 61, 'the log starts after the snapshot');
    const machine = new CountingLmdbKv();
    const driver = await MemberDriver.open({
      id: 'b',
      storage,
      transport: { send: () => {}, setPeers: () => {} },
      clock: realClock,
      random: Math.random,
      stateMachine: machine,
      options: parseDriverOptions({}),
      logger: quiet,
    });
    assert.equal(driver.recovery.restoredSnapshot, true);
    assert.is(driver.recovery.machineAppliedIndex, 0);
    assert.is(driver.lastAppliedIndex, 60);
    assert.equal(await driver.query(kvQuery.scan('', 1000), 'sequential'), expected);
    await driver.stop();
    await storage.close();
    await ma.close();
    // Reopened, it is simply at 60.
    const mb = await openDiskMember(b.path);
    assert.is(mb.openedAt, 60);
    await mb.close();
  } finally {
    a.remove();
    b.remove();
  }
});

test('a state machine on disk needs a storage that holds one, and a complete interface', async () => {
  try {
    await MemberDriver.open({
      id: 'a',
      storage: new MemoryStorage(),
      transport: { send: () => {}, setPeers: () => {} },
      clock: realClock,
      random: Math.random,
      stateMachine: new LmdbKvStateMachine(),
      options: parseDriverOptions({}),
      logger: quiet,
    });
    assert.unreachable('accepted a memory storage');
  } catch (error) {
    assert.instance(error, TypeError);
    assert.match((error as Error).message, /option stateMachine\b/);
  }
  const dir = tempDir('disk-options-server');
  try {
    await RaftServer.start({
      id: 'a',
      cluster: 'c',
      dataDir: dir.path,
      peerAddress: '127.0.0.1:0',
      clientAddress: '127.0.0.1:0',
      stateMachine: { onDisk: true, apply: () => null, query: () => null } as never,
      logger: quiet,
    });
    assert.unreachable('accepted a machine on disk without open');
  } catch (error) {
    assert.instance(error, TypeError);
    assert.match((error as Error).message, /option stateMachine\b/);
  } finally {
    dir.remove();
  }
});

// The README's example of a state machine on disk, as written there.
const totalKey = new TextEncoder().encode('total');
/** A running total on disk. */
class DiskCounter implements DiskStateMachine<{ add: number }, number, 'total', number> {
  readonly onDisk = true;
  #store!: DiskStore;
  open(store: DiskStore): void {
    this.#store = store; // keep the handle; load any cache from it here
  }
  apply(commit: Commit<{ add: number }>): number {
    const total = this.query() + commit.command.add;
    this.#store.put(totalKey, new TextEncoder().encode(String(total))); // in the batch's transaction
    return total;
  }
  query(): number {
    const bytes = this.#store.get(totalKey);
    return bytes === undefined ? 0 : Number(new TextDecoder().decode(bytes));
  }
}

test("the README's counter on disk keeps its total across a restart", async () => {
  const dir = tempDir('disk-readme');
  const options = {
    id: 'a',
    cluster: 'demo',
    dataDir: dir.path,
    peerAddress: '127.0.0.1:0',
    clientAddress: '127.0.0.1:0',
    members: [{ id: 'a', type: 'ACTIVE' as const, address: '127.0.0.1:1' }],
    logger: quiet,
    tickMs: 5,
    electionTicks: 10,
    heartbeatTicks: 2,
  };
  try {
    let server = await RaftServer.start({ ...options, stateMachine: new DiskCounter() });
    await waitForLeader(server);
    assert.is(await server.propose({ add: 2 }), 2);
    assert.is(await server.propose({ add: 3 }), 5);
    await server.stop();
    server = await RaftServer.start({ ...options, stateMachine: new DiskCounter() });
    assert.ok(server.recovery.machineAppliedIndex > 0);
    assert.is(await server.query('total', 'sequential'), 5);
    await server.stop();
  } finally {
    dir.remove();
  }
});

test.run();
