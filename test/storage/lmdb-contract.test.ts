// Proves that LmdbStorage keeps the storage contract, including across a close and reopen, both
// with small writes committed on the calling thread (the default) and with every write going
// through lmdb's write thread (`syncCommitBytesMax: 0`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { storageContract } from './contract.ts';

const root = mkdtempSync(join(tmpdir(), 'edgeraft-lmdb-contract-'));
const paths = new Map<Storage, string>();
let count = 0;

async function openAt(path: string, syncCommitBytesMax?: number): Promise<Storage> {
  const storage = await LmdbStorage.open({
    path,
    mapSizeBytes: 64 * 1024 ** 2,
    ...(syncCommitBytesMax === undefined ? {} : { syncCommitBytesMax }),
  });
  paths.set(storage, path);
  return storage;
}

for (
  const [name, syncCommitBytesMax] of [['lmdb', undefined], ['lmdb, write thread', 0]] as const
) {
  const dir = join(root, name.replace(/\W+/g, '-'));
  storageContract(name, {
    create: () => openAt(join(dir, `db-${count++}`), syncCommitBytesMax),
    reopen: async (storage) => {
      const path = paths.get(storage)!;
      await storage.close();
      return openAt(path, syncCommitBytesMax);
    },
    cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  });
}
