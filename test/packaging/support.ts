/**
 * Helpers of the packaging test: run commands as a user would, in folders outside the
 * repository, with an environment free of what `npm test` itself set; pack the package once per
 * process; install the tarball into a fresh folder from npm's cache; read processes from /proc.
 * Every folder made here is removed by `cleanUp`, and every process started here (or reported by
 * one started here) that still runs then is ended by its pid.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { repoRoot } from '../../lib/runtime.ts';

export { repoRoot };

/** Longest any one command of the test may take, in milliseconds. */
export const commandMsMax = 180_000;

/** The runtimes' executables: the repository's own copies (npm dev dependencies). */
export const bunBin: string = join(repoRoot, 'node_modules/.bin/bun');
export const denoBin: string = join(repoRoot, 'node_modules/.bin/deno');
export const tscScript: string = join(repoRoot, 'node_modules/typescript/bin/tsc');

/** The @types/node the repository uses: installed next to the package where types are checked. */
export const typesNodeVersion: string = JSON.parse(
  readFileSync(join(repoRoot, 'node_modules/@types/node/package.json'), 'utf8'),
).version;

const folders: string[] = [];
const pids = new Set<number>();

/** A fresh folder outside the repository, removed by `cleanUp`. */
export function tempFolder(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `edgeraft-${name}-`));
  folders.push(dir);
  return dir;
}

const sharedFolders: string[] = [];

/**
 * A fresh folder outside the repository shared by every test file of this process (the packed
 * tarball, the installed package): removed when the process exits, since `cleanUp` runs after
 * each file's suite.
 */
function sharedFolder(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `edgeraft-${name}-`));
  if (sharedFolders.length === 0) {
    process.on('exit', () => {
      for (const d of sharedFolders) rmSync(d, { recursive: true, force: true });
    });
  }
  sharedFolders.push(dir);
  return dir;
}

/** Remember a process to end (by its pid, SIGKILL) in `cleanUp` if it still runs then. */
export function track(pid: number | undefined): void {
  if (pid !== undefined) pids.add(pid);
}

/** End every tracked process still running, then remove every folder made here. */
export function cleanUp(): void {
  for (const pid of pids) {
    if (!isRunning(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Ended meanwhile.
    }
  }
  pids.clear();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * The environment of a user's shell: this process's, without what `npm test` and tsx put there
 * (npm_* variables, NODE_OPTIONS), so that a command here sees no trace of the repository.
 */
export function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^npm_/i.test(key) || key === 'NODE_OPTIONS' || key === 'INIT_CWD') {
      continue;
    }
    env[key] = value;
  }
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', ...extra };
}

/** What a finished command did. */
export type Ran = { code: number | null; signal: string | null; stdout: string; stderr: string };

/** Run `command` in `cwd` to its end (SIGKILLed by its pid past `commandMsMax`). */
export function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = userEnv(),
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // Ended meanwhile.
      }
    }, commandMsMax);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Could not start ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `ran` as text for an assertion message: the command's exit and the tails of its output. */
export function describeRun(what: string, ran: Ran): string {
  const tail = (text: string) => text.trim().split('\n').slice(-15).join('\n    ');
  return `${what}: exit ${ran.code}${ran.signal === null ? '' : ` (${ran.signal})`}\n` +
    `  stdout:\n    ${tail(ran.stdout)}\n  stderr:\n    ${tail(ran.stderr)}`;
}

/** Run `command` and throw, with its output, unless it exits 0. */
export async function runOk(
  what: string,
  command: string,
  args: readonly string[],
  cwd: string,
  env?: Record<string, string>,
): Promise<Ran> {
  const ran = await run(command, args, cwd, env);
  if (ran.code !== 0) throw new Error(describeRun(what, ran));
  return ran;
}

/** The packed tarball and what `npm pack` said of it. */
export type Packed = {
  tarball: string;
  sizeBytes: number;
  unpackedBytes: number;
  files: string[];
};

let packed: Promise<Packed> | null = null;

/** `npm pack` the repository (its `prepack` builds dist/) into a temporary folder, once. */
export function pack(): Promise<Packed> {
  packed ??= (async () => {
    const out = sharedFolder('pack');
    const ran = await runOk(
      'npm pack',
      'npm',
      ['pack', '--json', '--pack-destination', out],
      repoRoot,
    );
    // The build's own lines may precede npm's JSON on stdout.
    const report = JSON.parse(ran.stdout.slice(ran.stdout.indexOf('[')))[0] as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    };
    return {
      tarball: join(out, report.filename),
      sizeBytes: report.size,
      unpackedBytes: report.unpackedSize,
      files: report.files.map((f) => f.path),
    };
  })();
  return packed;
}

/** A folder with the tarball installed as a user installs it, and how npm got the dependencies. */
export type Installed = { dir: string; how: string };

/**
 * A folder with a `package.json` and `npm install <tarball> @types/node`, made once per process
 * (the tests that share it write files of distinct names into it). The dependencies
 * come from npm's cache (`--offline`: no network needed once `npm ci` has run in the repository);
 * only if the cache lacks one does npm ask the registry, and if that fails too the error names
 * what is missing.
 */
export function install(): Promise<Installed> {
  installed ??= installFresh();
  return installed;
}

let installed: Promise<Installed> | null = null;

async function installFresh(): Promise<Installed> {
  const { tarball } = await pack();
  const dir = sharedFolder('installed');
  await runOk('write package.json', process.execPath, [
    '-e',
    `require('node:fs').writeFileSync('package.json', JSON.stringify({ name: 'edgeraft-way-in', private: true, type: 'module' }))`,
  ], dir);
  const args = ['install', '--no-audit', '--no-fund', tarball, `@types/node@${typesNodeVersion}`];
  const offline = await run('npm', [...args, '--offline'], dir);
  if (offline.code === 0) return { dir, how: 'offline, from the npm cache' };
  const online = await run('npm', [...args, '--prefer-offline'], dir);
  if (online.code === 0) {
    const missing = /ENOTCACHED[^\n]*/.exec(offline.stderr)?.[0] ?? 'see npm output';
    return { dir, how: `from the registry: the npm cache lacked something (${missing})` };
  }
  throw new Error(
    `npm could not install the tarball into ${dir}, neither offline from its cache nor from the ` +
      `registry: this machine is missing the package's dependencies in npm's cache and cannot ` +
      `reach the registry.\n${describeRun('npm install --offline', offline)}\n${
        describeRun('npm install --prefer-offline', online)
      }`,
  );
}

/** True if process `pid` exists and is not a zombie (Linux: /proc). */
export function isRunning(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const text = readFileSync(stat, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The parent pid of process `pid` (Linux: /proc). */
export function parentOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The command line of process `pid`, one string per argument (Linux: /proc). */
export function commandLineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
}

/** Resolves once `check` holds (polled every 50 ms); rejects with `what` past `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One member of a running `edgeraft cluster`, as its output lists it. */
export type ClusterMember = { id: string; pid: number; clientAddress: string };

/** A running `edgeraft cluster` started here. */
export type RunningCluster = {
  child: ChildProcess;
  members: ClusterMember[];
  dataRoot: string;
  exited: Promise<void>;
  /** The last 8 KiB the cluster process (and its members, which share it) wrote to stderr. */
  stderrTail: () => string;
};

/** Longest a `cluster` may take to report every member ready, in milliseconds. */
export const clusterReadyMsMax = 60_000;

/**
 * Start `command args` (an `edgeraft cluster ... --data DIR`) in `cwd` and wait until it lists its
 * members; every pid involved is tracked for `cleanUp`.
 */
export function startCluster(
  command: string,
  args: readonly string[],
  cwd: string,
  dataRoot: string,
): Promise<RunningCluster> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args, '--data', dataRoot], {
      cwd,
      env: userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child.pid);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    const timer = setTimeout(
      () =>
        reject(new Error(`cluster not ready in ${clusterReadyMsMax} ms:\n${stdout}\n${stderr}`)),
      clusterReadyMsMax,
    );
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk).slice(-8192)));
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (!stdout.includes('Ctrl-C stops every member')) return;
      clearTimeout(timer);
      const members = [...stdout.matchAll(/^\s+(\w+): peer \S+, client (\S+), pid (\d+)$/gm)].map((
        m,
      ) => ({ id: m[1]!, clientAddress: m[2]!, pid: Number(m[3]) }));
      for (const m of members) track(m.pid);
      resolve({ child, members, dataRoot, exited, stderrTail: () => stderr });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`cluster ended before ready (${code}, ${signal}):\n${stdout}\n${stderr}`));
    });
  });
}

/** What the app prints: its own state machine's outputs, and the checker's verdict. */
export const appOutput = { outputs: [1, 3, 6], total: 6, staleRead: 'not linearizable' } as const;
/** A user's app (test/packaging/app/app.ts), importing 'edgeraft' and 'edgeraft/testing'. */
export const appSource: string = readFileSync(join(repoRoot, 'test/packaging/app/app.ts'), 'utf8');

/** The README's text. */
export const readme: string = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The README's `deno.json` for an app beside a checkout (the first ```json block after its heading). */
export function readmeCheckoutDenoJson(): string {
  const from = readme.indexOf('**Deno, from a checkout**');
  if (from < 0) throw new Error('README: no "Deno, from a checkout" section');
  const block = /```json\n([\s\S]*?)```/.exec(readme.slice(from));
  if (block === null) throw new Error('README: no deno.json block in "Deno, from a checkout"');
  return block[1]!;
}

/**
 * An app folder laid out as the README's "Deno, from a checkout" says: `root/edgeraft` (here a
 * symlink to this repository, whose node_modules `npm ci` filled) beside `root/app`, which holds
 * the README's `deno.json` verbatim and `@types/node` installed from npm's cache. Returns the app
 * folder.
 */
export async function denoCheckoutApp(name: string): Promise<string> {
  const root = tempFolder(name);
  symlinkSync(repoRoot, join(root, 'edgeraft'), 'dir');
  const app = join(root, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'deno.json'), readmeCheckoutDenoJson());
  // What npm writes when the folder has none (here explicit: npm would look above the folder).
  writeFileSync(join(app, 'package.json'), '{ "private": true }\n');
  await runOk('npm install --save-dev @types/node (offline)', 'npm', [
    'install',
    '--offline',
    '--no-audit',
    '--no-fund',
    '--save-dev',
    `@types/node@${typesNodeVersion}`,
  ], app);
  return app;
}
