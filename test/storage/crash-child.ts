/**
 * Crash-test child: opens the LMDB storage at argv[2] and appends batches of command entries,
 * whose data is `dataFor(index, bytes)`, forever; after each write resolves (durable) it prints
 * the acknowledged last index on its own line. The parent SIGKILLs it at a random moment.
 * Batch sizes vary (1 to 200 entries) so kills land inside commits of every size. Every 8th
 * round it also records a snapshot and compacts to an index inside a stored run.
 */
import process from 'node:process';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import type { Entry } from '../../lib/base/messages.ts';
import { command, membersA as members } from './contract.ts';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: crash-child.ts PATH');
const storage = await LmdbStorage.open({ path, mapSizeBytes: 256 * 1024 ** 2 });
let next = storage.lastIndex() + 1;
let round = 0;
for (;;) {
  const count = 1 + ((next * 7919 + round++ * 104729) % 200);
  const term = 1 + (round >> 4);
  const entries: Entry[] = [];
  for (let index = next; index < next + count; index++) {
    entries.push(command(index, term, 64 + (index % 200)));
  }
  await storage.write({ entries, hardState: { term, vote: 'a', commitIndex: 0 } });
  next += count;
  process.stdout.write(`${next - 1}\n`);
  // Every 8th round a snapshot and a compaction to an index inside a stored run (most writes are
  // one run each), so that kills also land inside a compaction that rewrites the run it cuts.
  const snapshotAt = next - 1 - 37;
  if (round % 8 === 0 && snapshotAt - 13 > storage.firstIndex()) {
    await storage.write({
      snapshot: { index: snapshotAt, term: storage.term(snapshotAt)!, timeMs: 0, members },
    });
    await storage.compact(snapshotAt - 13);
  }
}
