/**
 * Start a TypeScript script as a child process under Node (through tsx), Bun or Deno: the one
 * place that knows how each runtime runs a `.ts` file. By default the child runs under the same
 * runtime as the caller, so a test that spawns helpers exercises the runtime it is tested on.
 *
 * @example
 * ```ts
 * const child = spawnTs('lib/cli.ts', ['serve', '--help']);
 * child.stdout!.on('data', (chunk) => console.log(String(chunk)));
 * child.kill('SIGKILL');
 * ```
 * @module
 */
import { type ChildProcess, spawn, type SpawnOptions, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The runtimes edgeraft runs on. */
export type Runtime = 'node' | 'bun' | 'deno';
/** Every runtime, in the order benches and suites run them. */
export const runtimes: readonly Runtime[] = ['node', 'bun', 'deno'];

const here = (import.meta as unknown as { url: string }).url;

/**
 * The package's root folder, with a trailing slash: the repository, or `dist/` when running the
 * built JavaScript of an installed package.
 */
export const repoRoot = fileURLToPath(new URL('../', here));

/** True when this is the built JavaScript (`dist/`) rather than the TypeScript sources. */
export const runningBuiltJs = here.endsWith('.js');

/** The command line's own script: `lib/cli.ts`, or `lib/cli.js` in the built package. */
export const cliScript = fileURLToPath(new URL(runningBuiltJs ? './cli.js' : './cli.ts', here));

/**
 * The module `exitWithParent` preloads into a child (`lib/cli/parent-watch.ts`, or its `.js` in the
 * built package): the child stops once its parent is gone.
 */
export const parentWatchScript: string = fileURLToPath(
  new URL(runningBuiltJs ? './cli/parent-watch.js' : './cli/parent-watch.ts', here),
);
/** The environment variable that tells a child with `exitWithParent` whose child it is. */
const parentPidVariable = 'EDGERAFT_PARENT_PID';

/** The runtime this code runs in. */
export function currentRuntime(): Runtime {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return 'bun';
  if (g.Deno !== undefined) return 'deno';
  return 'node';
}

/**
 * The executable that runs `runtime`: the running one when it is the current runtime; `node` from
 * PATH for Node; for Bun and Deno the project's own copy (the `node_modules/.bin` of this
 * repository, or of the project that installed edgeraft, nearest first), else the one on PATH.
 */
export function runtimeExecutable(runtime: Runtime): string {
  if (runtime === currentRuntime()) return process.execPath;
  if (runtime === 'node') return 'node';
  for (let dir = repoRoot;; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '.bin', runtime);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return runtime;
  }
}

/** Why `runtime` cannot be started here (its executable does not run), or null when it can. */
export function runtimeMissing(runtime: Runtime): string | null {
  if (runtime === currentRuntime()) return null;
  const executable = runtimeExecutable(runtime);
  const probe = spawnSync(executable, ['--version'], { stdio: 'ignore', timeout: 30_000 });
  if (probe.error === undefined && probe.status === 0) return null;
  const why = probe.error?.message ?? `exit code ${probe.status}`;
  return `cannot run ${executable} (${why}): install ${runtime}, or put it on PATH`;
}

/**
 * The command and arguments that run `scriptPath` with `args` under `runtime`, after loading the
 * modules in `preload` (absolute paths): see `runtimeExecutable` for which executable.
 */
export function tsCommand(
  scriptPath: string,
  args: readonly string[] = [],
  runtime: Runtime = currentRuntime(),
  preload: readonly string[] = [],
): { command: string; args: string[] } {
  const command = runtimeExecutable(runtime);
  switch (runtime) {
    case 'node': {
      // Built JavaScript runs on plain Node; TypeScript through the project's tsx.
      const loader = scriptPath.endsWith('.js')
        ? []
        : ['--import', `${repoRoot}node_modules/tsx/dist/loader.mjs`];
      const imports = preload.flatMap((p) => ['--import', pathToFileURL(p).href]);
      return { command, args: [...loader, ...imports, scriptPath, ...args] };
    }
    case 'bun':
      return {
        command,
        args: [...preload.flatMap((p) => ['--preload', p]), scriptPath, ...args],
      };
    case 'deno':
      return {
        command,
        args: ['run', '-A', ...preload.flatMap((p) => ['--preload', p]), scriptPath, ...args],
      };
  }
}

/**
 * Options of `spawnTs`: node's spawn options plus the runtime (default: the current one) and
 * `exitWithParent`: the child stops (SIGTERM, then by force) once this process is gone, however
 * it ended, instead of living on as an orphan (see `lib/cli/parent-watch.ts`).
 */
export type SpawnTsOptions = SpawnOptions & { runtime?: Runtime; exitWithParent?: boolean };

/**
 * Spawn `scriptPath` under a runtime; stdout and stderr are piped unless `stdio` says otherwise,
 * the working directory is the repository root unless `cwd` says otherwise.
 */
export function spawnTs(
  scriptPath: string,
  args: readonly string[] = [],
  options: SpawnTsOptions = {},
): ChildProcess {
  const { runtime, exitWithParent, ...spawnOptions } = options;
  const preload = exitWithParent === true ? [parentWatchScript] : [];
  const { command, args: fullArgs } = tsCommand(scriptPath, args, runtime, preload);
  const env = exitWithParent === true
    ? { ...(spawnOptions.env ?? process.env), [parentPidVariable]: String(process.pid) }
    : spawnOptions.env;
  return spawn(command, fullArgs, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...spawnOptions,
    ...(env === undefined ? {} : { env }),
  });
}
