/**
 * Helpers of the command-line tests: run `lib/cli.ts` as a user does, in a child process of the
 * current runtime, and collect what it printed.
 *
 * @module
 */
import { spawnTs } from '../../lib/runtime.ts';

/** What one run of the command line did: exit code, output, and how long it took. */
export type Run = { code: number | null; stdout: string; stderr: string; elapsedMs: number };

/** Longest one run may take before it is killed (by its own pid), in milliseconds. */
export const runMsMax = 30_000;

/** Run `lib/cli.ts` with `args`; killed (SIGKILL, by its pid) if it takes longer than `runMsMax`. */
export function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const startedMs = Date.now();
    const child = spawnTs('lib/cli.ts', args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), runMsMax);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, elapsedMs: Date.now() - startedMs });
    });
  });
}
