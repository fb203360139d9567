// A member compacts a long log in steps of at most `compactionStepEntriesMax` entries, each its own
// storage write, so that appends go between them and no step holds the event loop for long: in
// one step, compacting 100,000 LMDB entries blocked every member for 0.7 s at the same moment
// (bench:cluster at 256 in flight: an election and clients giving up on a silent leader). Real
// LMDB files; a lone member proposes past its snapshot threshold.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { compactionStepEntriesMax } from '../../lib/member/driver.ts';

import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { startLoneDriver } from './lone-driver.ts';
import { wrappedStorage } from './wrapped-storage.ts';

const threshold = 3 * compactionStepEntriesMax + 100;

test('a compaction of more than one step of entries is made of steps, appends between them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-compaction-steps-'));
  const lmdb = await LmdbStorage.open({ path: join(dir, 'log') });
  // What each storage write did, in order: 'w' an append, or the entries a compaction removed.
  const events: (string | number)[] = [];
  const storage = wrappedStorage(lmdb, {
    write: (batch) => {
      if ((batch.entries?.length ?? 0) > 0) events.push('w');
      return lmdb.write(batch);
    },
    compact: (index) => {
      events.push(index - lmdb.firstIndex() + 1);
      return lmdb.compact(index);
    },
  });
  const driver = await startLoneDriver(storage, {
    snapshotEntriesThreshold: threshold,
    compactionTrailingEntries: 0,
  });
  try {
    assert.is(driver.role, 'leader');
    const data = new TextEncoder().encode('x'.repeat(20));
    // Past the threshold, and on while the snapshot and its compaction run (at most 60 s).
    const until = Date.now() + 60_000;
    while (lmdb.firstIndex() <= threshold && Date.now() < until) {
      const batch = [];
      for (let i = 0; i < 200; i++) batch.push(driver.propose(data).catch(() => {}));
      await Promise.all(batch);
    }
    const steps = events.filter((e): e is number => typeof e === 'number');
    assert.ok(lmdb.firstIndex() > threshold, `compacted past ${threshold}: ${lmdb.firstIndex()}`);
    assert.ok(steps.length >= 4, `a compaction of ${threshold} entries in steps: ${steps}`);
    for (const s of steps) {
      assert.ok(s <= compactionStepEntriesMax, `step of ${s} > ${compactionStepEntriesMax}`);
    }
    // The proposals went on meanwhile: at least one append went between two steps.
    const first = events.findIndex((e) => typeof e === 'number');
    const last = events.findLastIndex((e) => typeof e === 'number');
    assert.ok(events.slice(first, last).includes('w'), 'an append between compaction steps');
  } finally {
    await driver.stop();
    await lmdb.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
