/**
 * A member's snapshot as its client port serves it to `snapshot save` (etcdctl's `snapshot save`):
 * the current snapshot's metadata and size, optionally after taking a new one, and its bytes by
 * byte range. Reads name the snapshot (index and term) they belong to, so that a snapshot replaced
 * during a save (a newer one taken, or one installed from the leader) fails the save with
 * SNAPSHOT_CHANGED instead of mixing two snapshots' bytes.
 *
 * @example
 * ```ts
 * const source = storageSnapshotSource({ storage, takeSnapshot, appliedIndex, retryDelayMs: 20 });
 * const info = await source.info(true); // { meta, totalBytes } or null
 * const part = source.read(info!.meta.index, info!.meta.term, 0, 65_536);
 * ```
 * @module
 */
import { setTimeout } from 'node:timers';
import type { SnapshotInfoOutput, SnapshotReadOutput } from '../base/client-protocol.ts';
import { EdgeraftError, TimeoutError } from '../base/errors.ts';
import type { Storage } from '../storage/storage.ts';

/** What the client port asks of a member's snapshot. */
export type SnapshotSource = {
  /**
   * The current snapshot's metadata and size (null: none). With `take`, first a snapshot of the
   * state machine covering every entry applied at the call, stored; rejects with TIMEOUT when one
   * cannot be taken within `snapshotTakeAttemptsMax` attempts (a transfer or install holds it).
   */
  info(take: boolean): Promise<SnapshotInfoOutput>;
  /**
   * Bytes `offsetBytes` to at most `offsetBytes + bytesMax` of the current snapshot, which must be
   * the one at `index`/`term`: else SNAPSHOT_CHANGED. An offset past the end is a RangeError.
   */
  read(index: number, term: number, offsetBytes: number, bytesMax: number): SnapshotReadOutput;
};

/** Attempts to take a snapshot while another one (or an install) is under way, at most. */
export const snapshotTakeAttemptsMax = 500;

/** What `storageSnapshotSource` reads from and drives. */
export type SnapshotSourceHost = {
  storage: Pick<Storage, 'snapshotMeta' | 'snapshots'>;
  /** `MemberDriver.takeSnapshot`: the new snapshot's index, 0 when none was taken. */
  takeSnapshot(): Promise<number>;
  /** The member's last applied index. */
  appliedIndex(): number;
  /** Wait between two attempts to take a snapshot, in milliseconds. */
  retryDelayMs: number;
};

/** A `SnapshotSource` over a member's storage; see the module comment. */
export function storageSnapshotSource(h: SnapshotSourceHost): SnapshotSource {
  const current = (): SnapshotInfoOutput => {
    const meta = h.storage.snapshotMeta();
    const info = h.storage.snapshots.info();
    if (meta === null || info === null || info.index !== meta.index || info.term !== meta.term) {
      return null;
    }
    return { meta, totalBytes: info.bytes };
  };
  return {
    async info(take) {
      if (!take) return current();
      const appliedIndex = h.appliedIndex();
      for (let attempt = 1; attempt <= snapshotTakeAttemptsMax; attempt++) {
        // 0: nothing new since the stored snapshot, or another snapshot or an install runs.
        const taken = await h.takeSnapshot();
        const now = current();
        if (taken > 0 || (now !== null && now.meta.index >= appliedIndex)) return now;
        await new Promise((resolve) => setTimeout(resolve, h.retryDelayMs));
      }
      throw new TimeoutError(
        `no snapshot taken in ${snapshotTakeAttemptsMax} attempts: another snapshot or an install held it`,
      );
    },
    read(index, term, offsetBytes, bytesMax) {
      const now = current();
      if (now === null || now.meta.index !== index || now.meta.term !== term) {
        throw new EdgeraftError(
          'SNAPSHOT_CHANGED',
          `Snapshot changed: asked for index ${index} term ${term}, the member holds ${
            now === null ? 'none' : `index ${now.meta.index} term ${now.meta.term}`
          }`,
          false,
        );
      }
      const part = h.storage.snapshots.chunkAt(offsetBytes)!;
      const data = part.data.subarray(0, bytesMax);
      return {
        index,
        term,
        totalBytes: now.totalBytes,
        offsetBytes,
        data,
        done: offsetBytes + data.byteLength === now.totalBytes,
      };
    },
  };
}
