/**
 * One durable LMDB commit, shared by the log storage and the snapshot store.
 *
 * @module
 */
import type { RootDatabase } from 'lmdb';
import { StorageError } from '../base/errors.ts';
import { syncDelayMs } from './test-hooks.ts';

/**
 * Run `body` as one LMDB transaction and resolve once it is synced to disk. With lmdb's
 * overlapping sync the transaction's own promise may resolve before the sync, so this also waits
 * for `root.flushed`. A failure rejects with a `StorageError` that says what failed and carries
 * the I/O error lmdb reports.
 *
 * With `sync`, `body` runs in `transactionSync`, which lmdb commits and syncs before it returns
 * (the event loop waits meanwhile); the flush is still awaited, in case the transaction joined a
 * batch of lmdb's write thread.
 *
 * @example
 * ```ts
 * await commitDurably(root, 'Write', () => db.put(1, bytes));
 * ```
 */
export async function commitDurably(
  root: RootDatabase,
  what: string,
  body: () => void,
  sync = false,
): Promise<void> {
  try {
    if (sync) {
      root.transactionSync(body);
      // The slow-disk testing hook: a slow sync holds a synchronous commit's thread, so it blocks.
      const delayMs = syncDelayMs();
      if (delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
      await new Promise((resolve, reject) => root.flushed.then(resolve, reject));
      return;
    }
    const committed = root.transaction(body);
    // Take the flush promise now, synchronously: it is the one of the commit that the
    // transaction just joined (lmdb's `flushed` looks up the current batch when `then` runs).
    const flushed = new Promise((resolve, reject) => root.flushed.then(resolve, reject));
    await Promise.all([committed, flushed]);
    // The slow-disk testing hook (`test-hooks.ts`); 0, and no wait, unless it is set.
    const delayMs = syncDelayMs();
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  } catch (error) {
    // lmdb attaches a second rejected promise with the I/O error; observe it so it is not unhandled.
    const commitError = (error as { commitError?: Promise<unknown> }).commitError;
    if (commitError instanceof Promise) commitError.catch(() => {});
    const cause = await (commitError ?? Promise.resolve(error)).catch((e: unknown) => e);
    throw new StorageError(`${what} failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    });
  }
}
