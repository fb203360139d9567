// Proves the snapshot source the client port serves `snapshot save` from, over a real LMDB
// storage: ranges of the current snapshot read back its bytes in order and say when they reach the
// end; a read that names a snapshot since replaced fails with SNAPSHOT_CHANGED (never another
// snapshot's bytes); `info(false)` is null without a snapshot; `info(true)` tries again while the
// member cannot take one yet and answers with the snapshot that covers the applied index.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeraftError } from '../../lib/base/errors.ts';
import type { SnapshotMeta } from '../../lib/base/messages.ts';
import { storageSnapshotSource } from '../../lib/server/snapshot-reads.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { storeSnapshot } from '../../lib/storage/storage.ts';

const test = suite('snapshot reads for snapshot save');

const members = [
  { id: 'a', type: 'ACTIVE' as const, address: '127.0.0.1:1', clientAddress: '127.0.0.1:2' },
];
const metaAt = (index: number): SnapshotMeta => ({ index, term: 1, timeMs: index, members });
const bytesOf = (length: number, seed: number) =>
  Uint8Array.from({ length }, (_, i) => (i * 7 + seed) % 251);

async function withStorage(body: (storage: LmdbStorage) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-snapshot-reads-'));
  // Small store chunks: a snapshot spans several, and reads cross their boundaries.
  const storage = await LmdbStorage.open({ path: dir, snapshotChunkBytesMax: 1000 });
  try {
    await body(storage);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('ranges read the current snapshot in order; a replaced one is SNAPSHOT_CHANGED', async () => {
  await withStorage(async (storage) => {
    const source = storageSnapshotSource({
      storage,
      takeSnapshot: () => Promise.resolve(0),
      appliedIndex: () => 0,
      retryDelayMs: 1,
    });
    assert.is(await source.info(false), null, 'no snapshot yet');
    const data = bytesOf(3_500, 1);
    await storeSnapshot(storage, metaAt(10), [data]);
    const info = await source.info(false);
    assert.equal(info, { meta: metaAt(10), totalBytes: data.byteLength });
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const part = source.read(10, 1, offset, 777);
      assert.ok(part.data.byteLength <= 777, 'at most bytesMax');
      assert.is(part.offsetBytes, offset);
      parts.push(part.data.slice());
      offset += part.data.byteLength;
      if (part.done) break;
    }
    assert.is(offset, data.byteLength);
    assert.equal(Buffer.concat(parts), Buffer.from(data), 'the bytes, in order');
    await storeSnapshot(storage, metaAt(20), [bytesOf(500, 2)]);
    try {
      source.read(10, 1, 777, 777);
      assert.unreachable('read the replaced snapshot');
    } catch (error) {
      assert.instance(error, EdgeraftError);
      assert.is((error as EdgeraftError).code, 'SNAPSHOT_CHANGED');
      assert.match(
        (error as Error).message,
        /asked for index 10 term 1, the member holds index 20/,
      );
    }
  });
});

test('info(true) tries again until a snapshot covers the applied index', async () => {
  await withStorage(async (storage) => {
    let calls = 0;
    const source = storageSnapshotSource({
      storage,
      // Busy twice (another snapshot runs), then takes one at the applied index.
      takeSnapshot: async () => {
        calls++;
        if (calls < 3) return 0;
        await storeSnapshot(storage, metaAt(30), [bytesOf(100, 3)]);
        return 30;
      },
      appliedIndex: () => 30,
      retryDelayMs: 1,
    });
    const info = await source.info(true);
    assert.is(calls, 3);
    assert.equal(info, { meta: metaAt(30), totalBytes: 100 });
  });
});

test.run();
