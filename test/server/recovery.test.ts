// Restart recovery from what a crash can leave on disk: snapshot data written but its metadata
// not (the crash fell between the two), and a durable commit index older than the snapshot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../lib/cli/processes.ts';
import type { Member } from '../../lib/base/messages.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { StateMachineExecutor } from '../../lib/state/executor.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

/** A one-member cluster's member on free loopback ports. */
async function loneMember(): Promise<Member> {
  return {
    id: 'a',
    type: 'ACTIVE',
    address: `127.0.0.1:${await freePort()}`,
    clientAddress: `127.0.0.1:${await freePort()}`,
  };
}

async function startSingle(dataDir: string, member: Member): Promise<RaftServer> {
  const server = await RaftServer.start({
    id: member.id,
    cluster: 'recovery',
    dataDir,
    peerAddress: member.address!,
    clientAddress: member.clientAddress!,
    members: [member],
    stateMachine: new KvStateMachine(),
    logger: quiet,
  });
  const deadline = Date.now() + 10_000;
  while (server.role !== 'leader' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(server.role, 'leader');
  return server;
}

// Snapshot data newer than the recorded snapshot metadata: the member rebuilds its state from
// that data (the only copy kept) and the log after it, and every write is there.
test('a restart restores from snapshot data written just before a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-recovery-'));
  try {
    const member = await loneMember();
    let server = await startSingle(dir, member);
    for (let i = 0; i < 60; i++) await server.propose({ op: 'put', key: `k${i}`, value: `v${i}` });
    await server.stop();

    // What a crash between the two writes leaves: snapshot data at index D, no metadata for it.
    const storage = await LmdbStorage.open({ path: dir });
    assert.is(storage.snapshotMeta(), null, 'no snapshot was recorded yet');
    const d = storage.lastIndex() - 10;
    const executor = new StateMachineExecutor(new KvStateMachine(), { codec: cborCodec() });
    await executor.applyEntries(storage.entries(1, d + 1, Infinity));
    const snap = executor.takeSnapshot();
    await storage.snapshots.write(snap.meta.index, snap.meta.term, snap.chunks);
    executor.close();
    assert.is(storage.snapshots.info()?.index, d);
    assert.ok(storage.hardState().commitIndex >= 0);
    await storage.close();

    server = await startSingle(dir, member);
    try {
      assert.ok(server.status().snapshotIndex === d, `restored from the snapshot at ${d}`);
      await server.barrier();
      for (let i = 0; i < 60; i++) {
        assert.equal(await server.query({ op: 'get', key: `k${i}` }), { value: `v${i}` }, `k${i}`);
      }
      assert.equal(await server.query({ op: 'size' }), { size: 60 });
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The recorded snapshot without its data cannot be rebuilt: start refuses with a clear error
// instead of serving an empty state machine.
test('a restart refuses snapshot metadata whose data is missing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-recovery-'));
  try {
    const member = await loneMember();
    const server = await startSingle(dir, member);
    for (let i = 0; i < 20; i++) await server.propose({ op: 'put', key: `k${i}`, value: 'v' });
    await server.stop();
    const storage = await LmdbStorage.open({ path: dir });
    const last = storage.lastIndex();
    await storage.write({
      snapshot: { index: last, term: storage.term(last)!, timeMs: 0, members: [member] },
    });
    await storage.close();
    try {
      await RaftServer.start({
        id: 'a',
        cluster: 'recovery',
        dataDir: dir,
        peerAddress: member.address!,
        clientAddress: member.clientAddress!,
        stateMachine: new KvStateMachine(),
        logger: quiet,
      });
      assert.unreachable('started without the snapshot data');
    } catch (error) {
      assert.match(
        (error as Error).message,
        /Snapshot data missing: metadata at index \d+, data at none/,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
