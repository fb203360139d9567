/**
 * `snapshot restore` (etcdctl's `snapshot restore`): a fresh data directory in which a member
 * starts from a saved snapshot, as the first member of a new cluster. Offline: no member may run
 * on the directory (the storage's directory lock refuses otherwise).
 *
 * The result is exactly what a snapshot installed from a leader leaves, written through the
 * storage's own path (`LmdbStorage.write`) in one transaction: the snapshot data staged and made
 * current, the snapshot metadata at its index and term, the log compacted to it with no entry
 * after it, the given members (ACTIVE) as the configuration at the snapshot's index, and the hard
 * state at the snapshot's term with nothing voted and the snapshot's index committed. Every member
 * of the new cluster is restored from the same file with the same members, so they all start
 * from the same log and configuration; `serve` then restores the state machine from the snapshot
 * as it does after any restart.
 *
 * @example
 * ```ts
 * const file = verifySnapshotFile('backup.snap');
 * await restoreDataDir({ file, dataDir: '/var/lib/edgeraft/a', members });
 * ```
 * @module
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { Member, SnapshotMeta } from '../base/messages.ts';
import { LmdbStorage } from './lmdb.ts';
import { readSnapshotFileData, type VerifiedSnapshotFile } from './snapshot-file.ts';

/** A data directory that cannot be restored into (it holds something, or is not a folder). */
export class RestoreTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreTargetError';
  }
}

/** What `restoreDataDir` makes. */
export type RestoreOptions = {
  /** A file `verifySnapshotFile` accepted. */
  file: VerifiedSnapshotFile;
  /** The new data directory: absent or empty (anything else is refused). */
  dataDir: string;
  /** The new cluster's members, every one ACTIVE. */
  members: Member[];
};

/**
 * Write the restored storage (see the module comment). Throws `RestoreTargetError` when `dataDir`
 * exists and is not an empty folder; on any later failure removes what it created.
 */
export async function restoreDataDir(o: RestoreOptions): Promise<SnapshotMeta> {
  const existed = existsSync(o.dataDir);
  if (existed) {
    if (!statSync(o.dataDir).isDirectory()) {
      throw new RestoreTargetError(`Data directory ${o.dataDir} exists and is not a folder`);
    }
    const held = readdirSync(o.dataDir);
    if (held.length > 0) {
      throw new RestoreTargetError(
        `Data directory ${o.dataDir} already holds data (${held.length} entries, e.g. ${
          held[0]
        }): restore makes a fresh one, give an empty or new folder`,
      );
    }
  }
  const { header } = o.file;
  const meta: SnapshotMeta = {
    index: header.index,
    term: header.term,
    timeMs: header.timeMs,
    members: o.members.map((m) => ({ ...m, type: 'ACTIVE' as const })),
  };
  mkdirSync(o.dataDir, { recursive: true });
  let storage: LmdbStorage | null = null;
  try {
    storage = await LmdbStorage.open({ path: o.dataDir });
    const stage = storage.snapshots.stage(meta.index, meta.term);
    for (const chunk of readSnapshotFileData(o.file)) await stage.append(chunk);
    await stage.finish();
    // One transaction, as an installed snapshot is written: the log (empty) does not hold the
    // snapshot's index, so the storage discards it and restarts after the snapshot, with the
    // snapshot's members as the configuration at its index.
    await storage.write({
      snapshot: meta,
      snapshotData: stage.id,
      hardState: { term: meta.term, vote: null, commitIndex: meta.index },
    });
    await storage.close();
    storage = null;
    return meta;
  } catch (error) {
    await storage?.close().catch(() => {});
    if (existed) {
      for (const name of readdirSync(o.dataDir)) {
        rmSync(`${o.dataDir}/${name}`, { recursive: true, force: true });
      }
    } else rmSync(o.dataDir, { recursive: true, force: true });
    throw error;
  }
}
