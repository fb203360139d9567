// Restart recovery from what a crash can leave on disk: a snapshot staged but not committed, and
// snapshot metadata without its data (which no crash can leave now: start refuses it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../lib/cli/processes.ts';
import type { Member } from '../../lib/base/messages.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import type { KvServer } from './in-process.ts';

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

async function startSingle(dataDir: string, member: Member): Promise<KvServer> {
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

// Bug 5, on disk: a snapshot staged but never committed (a crash fell between receiving its last
// chunk and the write that installs it) is dropped on reopen, and the member restarts on its old
// log and snapshot with every write there.
test('a restart drops a staged snapshot that was never committed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-recovery-'));
  try {
    const member = await loneMember();
    let server = await startSingle(dir, member);
    for (let i = 0; i < 30; i++) await server.propose({ op: 'put', key: `k${i}`, value: `v${i}` });
    await server.takeSnapshot();
    for (let i = 30; i < 40; i++) await server.propose({ op: 'put', key: `k${i}`, value: `v${i}` });
    await server.stop();

    const storage = await LmdbStorage.open({ path: dir });
    const before = storage.snapshots.info()!;
    const stage = storage.snapshots.stage(storage.lastIndex() + 100, 99);
    await stage.append(new Uint8Array(5000).fill(7));
    await stage.finish();
    await storage.close(); // the crash: the install's write never happened
    const reopened = await LmdbStorage.open({ path: dir });
    assert.equal(reopened.snapshots.info(), before, 'the staged data is not current');
    assert.is(reopened.snapshotMeta()?.index, before.index, 'metadata and data agree');
    await reopened.close();

    server = await startSingle(dir, member);
    try {
      await server.barrier();
      for (let i = 0; i < 40; i++) {
        assert.equal(await server.query({ op: 'get', key: `k${i}` }), { value: `v${i}` }, `k${i}`);
      }
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
        /Snapshot metadata and data disagree: metadata at \d+, data at none/,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
