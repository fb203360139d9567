/**
 * Loaded before the main module of every child that `spawnTs` starts with `exitWithParent` (the
 * `serve` children of a `LocalCluster`): the child stops once the process that started it is
 * gone, however that process ended (SIGKILL, SIGPIPE, a crash), instead of living on as an orphan
 * that holds its ports and its data directory's lock.
 *
 * The parent's pid arrives in `EDGERAFT_PARENT_PID`. Every `parentCheckMs` the child compares it
 * with its own parent pid, which changes when the parent dies (an orphan is adopted by init or a
 * subreaper). It then sends itself SIGTERM, the graceful stop that `serve` handles, and exits by
 * force if that has not ended it within `parentGoneStopMsMax`. Polling rather than waiting for
 * end-of-file on a pipe from the parent: Deno's `--preload` runs the event loop until the preloaded
 * module settles, so a preload may hold nothing open; the timer is unref'd and never keeps a
 * process alive by itself.
 *
 * @example
 * ```ts
 * // What spawnTs does for exitWithParent (see lib/runtime.ts):
 * // node --import ./lib/cli/parent-watch.ts lib/cli.ts serve ...  with EDGERAFT_PARENT_PID set
 * ```
 * @module
 */
import process from 'node:process';

/** The environment variable that carries the parent's pid to the child. */
export const parentPidVariable = 'EDGERAFT_PARENT_PID';
/** How often the child checks that its parent is still there, in milliseconds. */
export const parentCheckMs = 250;
/** How long the graceful stop may take once the parent is gone, in milliseconds. */
export const parentGoneStopMsMax = 15_000;

/** Start watching the parent named in the environment; does nothing when none is named. */
function watchParent(): void {
  const parentPid = Number(process.env[parentPidVariable]);
  // Not inherited by whatever this process starts: each child watches its own parent.
  delete process.env[parentPidVariable];
  if (!Number.isSafeInteger(parentPid) || parentPid <= 0) return;
  let gone = false;
  const check = () => {
    if (gone || process.ppid === parentPid) return;
    gone = true;
    clearInterval(timer);
    setTimeout(() => process.exit(1), parentGoneStopMsMax).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  // The child's stdout and stderr are pipes to the parent. Once it is gone, a log line written
  // before the next check (or during the stop) fails with EPIPE, which would end the process
  // with an uncaught error before its files are closed (seen under Deno and Node: the data
  // directory's lock left behind). So a failed write is ignored, and checks the parent at once.
  process.stdout.on('error', check);
  process.stderr.on('error', check);
  const timer = setInterval(check, parentCheckMs);
  timer.unref();
}

watchParent();
