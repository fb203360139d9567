/**
 * Checks on a `WriteBatch` shared by both storages, made before anything is written: a batch that
 * breaks the interface's preconditions is a bug in the caller (the core), so it fails with
 * `AssertionError` naming what is wrong, and nothing of it is stored.
 *
 * @example
 * ```ts
 * const plan = planBatch(storage, { entries }); // throws AssertionError on a gap
 * if (plan.truncateFromIndex !== null) dropSuffix(plan.truncateFromIndex);
 * ```
 * @module
 */
import * as v from 'valibot';
import { assert } from '../base/errors.ts';
import type { LogReader } from '../base/log-reader.ts';
import {
  type Configuration,
  type Entry,
  HardStateSchema,
  SnapshotMetaSchema,
} from '../base/messages.ts';
import type { WriteBatch } from './storage.ts';
import { isEntry } from './codec.ts';

/** What a batch does to the stored log, decided from the state before it. */
export type BatchPlan = {
  /** The snapshot does not match the log: every entry goes and the log restarts after it. */
  discardLog: boolean;
  /** Stored entries from this index on are replaced (a conflicting suffix), or `null`. */
  truncateFromIndex: number | null;
  /** The last index once the batch is applied. */
  lastIndex: number;
};

/** Check `batch` against the current log and say what it changes. */
export function planBatch(log: LogReader, batch: WriteBatch): BatchPlan {
  let compactIndex = log.firstIndex() - 1;
  let lastIndex = log.lastIndex();
  let discardLog = false;
  const snapshot = batch.snapshot;
  if (snapshot !== undefined) {
    assert(
      v.is(SnapshotMetaSchema, snapshot),
      `Invalid snapshot metadata at index ${snapshot.index}`,
    );
    assert(
      snapshot.index >= compactIndex,
      `Snapshot at index ${snapshot.index} is older than the compaction point ${compactIndex}`,
    );
    discardLog = log.term(snapshot.index) !== snapshot.term;
    if (discardLog) {
      compactIndex = snapshot.index;
      lastIndex = snapshot.index;
    }
  }
  if (batch.snapshotData !== undefined) {
    assert(
      snapshot !== undefined,
      `Snapshot data ${batch.snapshotData} committed without metadata`,
    );
  }
  let truncateFromIndex: number | null = null;
  const truncate = batch.truncateFromIndex;
  if (truncate !== undefined) {
    assert(
      Number.isSafeInteger(truncate) && truncate > compactIndex,
      `Truncation from index ${truncate} is at or before the compaction point ${compactIndex}`,
    );
    if (truncate <= lastIndex) {
      truncateFromIndex = truncate;
      lastIndex = truncate - 1;
    }
  }
  const entries = batch.entries;
  if (entries !== undefined && entries.length > 0) {
    const firstIndex = entries[0]!.index;
    assert(
      firstIndex > compactIndex,
      `Entry at index ${firstIndex} is at or before the compaction point ${compactIndex}`,
    );
    assert(
      firstIndex <= lastIndex + 1,
      `Entry at index ${firstIndex} leaves a gap after the last index ${lastIndex}`,
    );
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      assert(
        isEntry(entry),
        `Invalid entry at position ${i} of the batch, index ${(entry as Entry | undefined)?.index}`,
      );
      assert(
        entry.index === firstIndex + i,
        `Entries not consecutive: index ${entry.index} at position ${i} after ${firstIndex}`,
      );
    }
    if (firstIndex <= lastIndex) {
      truncateFromIndex = Math.min(truncateFromIndex ?? firstIndex, firstIndex);
    }
    lastIndex = firstIndex + entries.length - 1;
  }
  if (batch.hardState !== undefined) {
    assert(
      v.is(HardStateSchema, batch.hardState),
      `Invalid hard state: term ${batch.hardState.term}`,
    );
  }
  return { discardLog, truncateFromIndex, lastIndex };
}

/** The configuration a config entry sets, or `null` for other entries. */
export function configurationOf(entry: Entry): Configuration | null {
  if (entry.type !== 'config') return null;
  return { index: entry.index, term: entry.term, members: entry.members };
}

/**
 * The configuration in effect at `index`: the newest of `base` and `later` (oldest first) whose
 * index is at most `index`.
 */
export function configurationAt(
  base: Configuration | null,
  later: readonly Configuration[],
  index: number,
): Configuration | null {
  let found = base;
  for (const c of later) {
    if (c.index > index) break;
    found = c;
  }
  return found;
}
