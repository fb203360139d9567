/**
 * One durable LMDB commit, shared by the log storage and the snapshot store.
 *
 * @module
 */
import type { RootDatabase } from 'lmdb';
import process from 'node:process';
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

/**
 * Whether `reason` is lmdb's rejection of a write in a failed commit ("Commit failed (see
 * commitError for details)", carrying the I/O error as a rejected `commitError` promise).
 */
function isLmdbCommitFailure(reason: unknown): boolean {
  return reason instanceof Error && reason.message.startsWith('Commit failed') &&
    (reason as { commitError?: unknown }).commitError instanceof Promise;
}

let commitFailuresObserved = false;

/**
 * lmdb (3.x) rejects a promise of its own when a batch's commit fails (the event-turn batch's
 * start, which it creates and drops), so a failed commit (a full disk, an I/O error) also raised
 * an unhandled rejection that ended the process, after the storage had already failed the member
 * and stopped its acknowledgements. This observes such rejections once per process: each is
 * swallowed (the write that failed reports it through its own promise). Any other unhandled
 * rejection is thrown on as an uncaught exception, as without this listener, unless the
 * application listens for them itself.
 */
export function observeLmdbCommitFailures(): void {
  if (commitFailuresObserved) return;
  commitFailuresObserved = true;
  process.on('unhandledRejection', (reason) => {
    if (isLmdbCommitFailure(reason)) {
      (reason as { commitError: Promise<unknown> }).commitError.catch(() => {});
      return;
    }
    // Someone else listens: theirs decides, as it did before this listener.
    if (process.listenerCount('unhandledRejection') > 1) return;
    throw reason;
  });
}
