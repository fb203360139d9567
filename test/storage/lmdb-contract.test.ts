// Proves that LmdbStorage keeps the storage contract, including across a close and reopen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { storageContract } from './contract.ts';

const root = mkdtempSync(join(tmpdir(), 'edgeraft-lmdb-contract-'));
const paths = new Map<Storage, string>();
let count = 0;

async function openAt(path: string): Promise<Storage> {
  const storage = await LmdbStorage.open({ path, mapSizeBytes: 64 * 1024 ** 2 });
  paths.set(storage, path);
  return storage;
}

storageContract('lmdb', {
  create: () => openAt(join(root, `db-${count++}`)),
  reopen: async (storage) => {
    const path = paths.get(storage)!;
    await storage.close();
    return openAt(path);
  },
  cleanup: () => Promise.resolve(rmSync(root, { recursive: true, force: true })),
});
