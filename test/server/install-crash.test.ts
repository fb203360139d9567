// Bug 5, on real processes: a follower that is SIGKILLed while it receives and installs a snapshot
// (many small chunks, killed at a different moment each time) restarts every time, and in the
// end catches up with every acknowledged write. On the landed code the data was made durable
// before the metadata, and a member killed between the two could fail every later start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftClient } from '../../lib/client/client.ts';
import { LocalCluster, localMembers } from '../../lib/cli/processes.ts';
import { seededRandom } from '../../lib/core/random.ts';
import type { ServerStatus } from '../../lib/server/server.ts';
import { MemberProbes, sleep, waitFor } from './support.ts';

/** Kills during the install; each lands at a different moment of the transfer. */
const killsDuringInstall = 8;

test('a follower killed at any moment of a snapshot install restarts and catches up', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edgeraft-install-crash-'));
  const members = await localMembers(3);
  const cluster = await LocalCluster.start({
    members,
    dataRoot: root,
    cluster: 'install-crash',
    // Snapshots often, nothing kept below them, and many 1 KiB chunks per transfer.
    serveArgs: [
      '--snapshot-entries',
      '100',
      '--trailing-entries',
      '0',
      '--snapshot-chunk-bytes',
      '1024',
    ],
  });
  const client = await RaftClient.connect({
    servers: cluster.clientAddresses(),
    requestTimeoutMs: 10_000,
  });
  const probes = new MemberProbes();
  const random = seededRandom(5);
  try {
    const statusOf = (id: string) =>
      probes.status(members.find((m) => m.id === id)!.clientAddress) as Promise<ServerStatus>;
    const leader = await waitFor('a leader', async () => {
      for (const m of members) {
        const s = await statusOf(m.id).catch(() => null);
        if (s?.role === 'leader') return s;
      }
      return undefined;
    }, 20_000);
    const follower = members.find((m) => m.id !== leader.id)!.id;
    await cluster.kill(follower);
    // A state of ~150 KiB (so ~150 chunks), written while the follower is down and compacted away.
    const value = 'v'.repeat(200);
    const written: string[] = [];
    for (let batch = 0; batch < 8; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => {
        const key = `k${batch}-${i}`;
        written.push(key);
        return client.command({ op: 'put', key, value });
      }));
    }
    // The snapshot and the compaction after it run in the background: wait for them (under a
    // loaded Deno they had not happened yet when the last write was answered).
    let firstIndex = 0;
    await waitFor('the leader to compact its log', async () => {
      firstIndex = (await statusOf(leader.id)).firstIndex;
      return firstIndex > 100 || undefined;
    }, 20_000).catch((e: Error) => {
      throw new Error(`${e.message} (first index ${firstIndex})`);
    });
    const now = await statusOf(leader.id);
    for (let kill = 0; kill < killsDuringInstall; kill++) {
      const proc = await cluster.startMember(follower); // fails the test if it cannot start
      if (kill % 2 === 0) {
        // The worst moment the follower names itself: right as it says the install is done
        // (on the landed code the metadata was written only after this line).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 3_000);
          proc.child.stderr!.on('data', (chunk: Uint8Array) => {
            if (new TextDecoder().decode(chunk).includes('snapshot installed')) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
      } else await sleep(Math.floor(random() * 400));
      await cluster.kill(follower);
    }
    await cluster.startMember(follower);
    const caughtUp = await waitFor(`${follower} to catch up`, async () => {
      const s = await statusOf(follower);
      return s.lastAppliedIndex >= now.commitIndex ? s : undefined;
    }, 60_000);
    assert.ok(caughtUp.snapshotIndex > 0, 'it caught up by a snapshot');
    const address = members.find((m) => m.id === follower)!.clientAddress;
    for (const key of written.filter((_, i) => i % 37 === 0)) {
      assert.is(await probes.get(address, key), value, `${follower} holds ${key}`);
    }
  } finally {
    await client.close();
    await probes.close();
    await cluster.stopAll(5_000);
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
