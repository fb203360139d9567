// Proves that MemoryStorage keeps the storage contract the LMDB storage keeps.
import { MemoryStorage } from '../../lib/storage/memory.ts';
import { storageContract } from './contract.ts';

storageContract('memory', {
  create: () => Promise.resolve(new MemoryStorage()),
  cleanup: () => Promise.resolve(),
});
