/**
 * Testing hooks of the storage, off unless their environment variables are set (`edgeraft
 * torture` sets them on the members it starts):
 *
 * - `EDGERAFT_SYNC_DELAY_FILE`: a file holding a number of milliseconds, re-read every
 *   `syncDelayPollMs`. Every durable commit waits that long after its sync before it resolves, so
 *   the member acknowledges nothing it wrote (entries, votes) until then: a slow disk. A missing
 *   file or a non-number means no delay.
 * - `EDGERAFT_IGNORE_SIGXFSZ=1`: the process ignores SIGXFSZ, so a file-size limit
 *   (`prlimit --fsize`) makes a write that grows the LMDB file fail with EFBIG (a full disk, which
 *   fails the storage and the member stops serving) instead of killing the process.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { setInterval } from 'node:timers';

/** See the module comment. */
export const syncDelayFileVariable = 'EDGERAFT_SYNC_DELAY_FILE';
/** See the module comment. */
export const ignoreSigxfszVariable = 'EDGERAFT_IGNORE_SIGXFSZ';
/** How often the sync delay file is re-read, in milliseconds. */
export const syncDelayPollMs = 50;

let delayMs = 0;
const delayFile = process.env[syncDelayFileVariable];
if (delayFile !== undefined && delayFile !== '') {
  const poll = () => {
    try {
      const ms = Number(readFileSync(delayFile, 'utf8').trim());
      delayMs = Number.isFinite(ms) && ms > 0 ? Math.min(ms, 60_000) : 0;
    } catch {
      delayMs = 0;
    }
  };
  poll();
  setInterval(poll, syncDelayPollMs).unref?.();
}
if (process.env[ignoreSigxfszVariable] === '1') {
  try {
    process.on('SIGXFSZ', () => {});
  } catch {
    // A runtime that cannot catch it: the limit then ends the process (reported as a crash).
  }
}

/** Milliseconds every durable commit waits after its sync (0 unless the hook is set). */
export function syncDelayMs(): number {
  return delayMs;
}
