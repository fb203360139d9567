/**
 * `npm test`: the whole suite under Node (through tsx), Bun and Deno, then the type checks,
 * the linter and the formatter. Every step runs even when an earlier one failed, so one run
 * shows every failure; the exit code is non-zero if any step failed.
 *
 * Each test file runs in a process of its own (uvu given that one file): a file cannot slow the
 * ones after it with what it leaves behind (in one process for the whole suite, Node took 868 s
 * where the files one by one took about 520 s), a hung file costs only itself, and each file's
 * time is printed, the slowest listed at the end. Each file must end within `fileTimeMsMax`, each
 * other step within `stepTimeMsMax` (a suite that passed but leaves a socket or timer open would
 * otherwise never exit): past it the process group is killed and that file or step fails.
 *
 * Environment: `EDGERAFT_TEST_RUNTIMES=node,bun` limits the runtimes; `EDGERAFT_TEST_STEPS=`
 * `suite,check,lint,fmt` limits the steps; a pattern given as the first argument picks the test
 * files whose path under `test/` it matches, as uvu's pattern would (for example
 * `npm test -- storage`).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';

type Step = { name: string; command: string; args: string[] };

/** Longest one test file may take, in milliseconds: a guard against a file that never exits. */
const fileTimeMsMax = 8 * 60 * 1000;
/** Longest a check step (tsc, deno check, lint, fmt) may take, in milliseconds. */
const stepTimeMsMax = 10 * 60 * 1000;
/** Files listed as the slowest per runtime at the end. */
const slowestListed = 8;
/** Lines of each failed file's output repeated at the end, just before the report (CI shows the end). */
const failureLinesShown = 8;

const bin = (name: string) => `node_modules/.bin/${name}`;
const uvu = 'node_modules/uvu/bin.js';
const testRoot = 'test';
const pattern = process.argv[2] ?? '\\.test\\.ts$';
const fileFilter = new RegExp(pattern.endsWith('.ts$') ? pattern : `${pattern}.*\\.test\\.ts$`);

/** Every test file under `test/` whose path under it matches the pattern, sorted. */
function testFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.ts') && fileFilter.test(relative(testRoot, path))) {
        out.push(path);
      }
    }
  };
  walk(testRoot);
  return out.sort();
}

/** uvu's arguments that run `file` alone: its folder, and a pattern matching only its name. */
function uvuArgsFor(file: string): string[] {
  const slash = file.lastIndexOf('/');
  const name = file.slice(slash + 1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [uvu, file.slice(0, slash), `^${name}$`];
}

const runtimes: Record<string, (file: string) => Step> = {
  node: (file) => ({ name: `node ${file}`, command: bin('tsx'), args: uvuArgsFor(file) }),
  bun: (file) => ({ name: `bun ${file}`, command: bin('bun'), args: uvuArgsFor(file) }),
  deno: (file) => ({
    name: `deno ${file}`,
    command: bin('deno'),
    args: ['run', '-A', ...uvuArgsFor(file)],
  }),
};
const runtimeNames: Record<string, string> = {
  node: 'suite under Node',
  bun: 'suite under Bun',
  deno: 'suite under Deno',
};
const checks: Record<string, Step[]> = {
  check: [
    { name: 'tsc', command: bin('tsc'), args: ['-p', '.'] },
    {
      name: 'deno check',
      command: bin('deno'),
      args: ['check', '--quiet', 'mod.ts', 'lib/', 'test/', 'bench/'],
    },
  ],
  lint: [{ name: 'deno lint', command: bin('deno'), args: ['lint'] }],
  fmt: [{ name: 'deno fmt --check', command: bin('deno'), args: ['fmt', '--check'] }],
};

function withoutNoColor(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy['NO_COLOR'];
  return copy;
}

function listFromEnv(name: string, all: string[]): string[] {
  const value = process.env[name];
  if (value === undefined || value === '') return all;
  const chosen = value.split(',').map((s) => s.trim());
  for (const c of chosen) {
    if (!all.includes(c)) {
      throw new RangeError(`Unknown value in ${name}: ${c}, expected one of ${all.join(', ')}`);
    }
  }
  return chosen;
}

type Result = { ok: boolean; total: number; passed: number; timedOut: boolean; excerpt: string };

/** Terminal colour codes, which uvu writes under some runtimes whatever FORCE_COLOR says. */
// deno-lint-ignore no-control-regex
const ansi = /\x1b\[[0-9;]*m/g;

/**
 * What a failed step said about its failure: from uvu's first FAIL (or the first error) on, at
 * most `failureLinesShown` non-blank lines; else its last lines.
 */
function failureExcerpt(output: string): string {
  const lines = output.replace(ansi, '').split('\n').filter((line) =>
    line.trim() !== '' &&
    !/^\s*at .*node_modules\/uvu\/|^\s*(Total|Passed|Skipped|Duration):/.test(line)
  );
  let from = lines.findIndex((line) => / FAIL |Error|error:/.test(line));
  if (from < 0) from = Math.max(0, lines.length - failureLinesShown);
  return lines.slice(from, from + failureLinesShown).map((line) => `         ${line.trim()}`)
    .join('\n');
}

function run(step: Step, timeMsMax: number): Promise<Result> {
  return new Promise((resolve) => {
    let tail = '';
    /** Stdout and stderr together, the first part kept: where a failure is first reported. */
    let output = '';
    const keep = (chunk: Buffer) => {
      if (output.length < 65_536) output += chunk.toString('utf8');
    };
    // Its own process group, so that a step past its time limit is ended with every process it
    // started (tsx runs the suite in a child of its own: killing tsx alone left it running).
    const child = spawn(step.command, step.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // FORCE_COLOR=0 alone: with NO_COLOR as well, Node warns on stderr of every child process
      // ("The 'NO_COLOR' env is ignored due to the 'FORCE_COLOR' env being set").
      env: { ...withoutNoColor(process.env), FORCE_COLOR: '0' },
      detached: process.platform !== 'win32',
    });
    // Ctrl-C on `npm test` reaches our group only: pass it on to the step's.
    const forward = (signal: NodeJS.Signals) => {
      try {
        process.kill(process.platform === 'win32' ? child.pid! : -child.pid!, signal);
      } catch { /* already gone */ }
    };
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-4096);
      keep(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      keep(chunk);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(
        `\n${step.name}: still running after ${timeMsMax / 1000} s, killing it (pid ${child.pid})`,
      );
      try {
        if (process.platform === 'win32') child.kill('SIGKILL');
        else process.kill(-child.pid!, 'SIGKILL'); // the step's group: only what it started
      } catch {
        child.kill('SIGKILL');
      }
    }, timeMsMax);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      // uvu's summary: "  Total:     12", "  Passed:    12", "  Skipped:   0".
      const total = Number(/Total:\s+(\d+)/.exec(tail)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(tail)?.[1] ?? 0);
      const ok = code === 0 && signal === null && !timedOut;
      const ending = signal !== null ? `ended by ${signal}` : `exit code ${code}`;
      const excerpt = ok ? '' : `         (${ending})\n${failureExcerpt(output)}`;
      resolve({ ok, total, passed, timedOut, excerpt });
    });
  });
}

const stepNames = listFromEnv('EDGERAFT_TEST_STEPS', ['suite', 'check', 'lint', 'fmt']);
const chosenRuntimes = stepNames.includes('suite')
  ? listFromEnv('EDGERAFT_TEST_RUNTIMES', Object.keys(runtimes))
  : [];
const files = chosenRuntimes.length === 0 ? [] : testFiles();
if (chosenRuntimes.length > 0 && files.length === 0) {
  console.error(`No test file under ${testRoot}/ matches ${fileFilter}`);
  process.exit(1);
}

let passed = 0;
let failed = 0;
const report: string[] = [];
/** What each failed file or step said, printed after the report. */
const failures: string[] = [];
const seconds = (ms: number) => (ms / 1000).toFixed(1);

for (const runtime of chosenRuntimes) {
  const name = runtimeNames[runtime]!;
  console.log(`\n=== ${name}: ${files.length} files, one process each`);
  const started = Date.now();
  const times: [string, number][] = [];
  const failedFiles: string[] = [];
  let stepPassed = 0;
  for (const file of files) {
    const fileStarted = Date.now();
    const result = await run(runtimes[runtime]!(file), fileTimeMsMax);
    const ms = Date.now() - fileStarted;
    times.push([file, ms]);
    stepPassed += result.passed;
    // A file that ran no test, or exited non-zero with every test passed, fails as a whole.
    const fileFailed = result.total - result.passed +
      (!result.ok && result.total === result.passed ? 1 : 0) +
      (result.ok && result.total === 0 ? 1 : 0);
    if (fileFailed > 0) {
      failedFiles.push(file + (result.timedOut ? ' (timed out)' : ''));
      failures.push(`  ${runtime} ${file}:\n${result.excerpt}`);
    }
    failed += fileFailed;
    console.log(
      `--- ${runtime} ${file}: ${result.passed}/${result.total} passed in ${seconds(ms)} s${
        fileFailed > 0 ? ' FAILED' : ''
      }`,
    );
  }
  passed += stepPassed;
  const slowest = times.sort((a, b) => b[1] - a[1]).slice(0, slowestListed)
    .map(([f, ms]) => `${f.slice(testRoot.length + 1)} ${seconds(ms)} s`).join(', ');
  report.push(
    `${failedFiles.length > 0 ? 'FAIL' : 'ok  '} ${name} (${
      seconds(Date.now() - started)
    } s, ${stepPassed} passed; slowest: ${slowest})`,
    ...failedFiles.map((f) => `       failed: ${f}`),
  );
}

for (const s of ['check', 'lint', 'fmt']) {
  if (!stepNames.includes(s)) continue;
  for (const step of checks[s]!) {
    const started = Date.now();
    console.log(`\n=== ${step.name}`);
    const result = await run(step, stepTimeMsMax);
    if (!result.ok) {
      failed += 1;
      failures.push(`  ${step.name}:\n${result.excerpt}`);
    }
    report.push(`${result.ok ? 'ok  ' : 'FAIL'} ${step.name} (${seconds(Date.now() - started)} s)`);
  }
}
if (failures.length > 0) console.log(`\nwhat the failures said:\n${failures.join('\n')}`);
console.log(`\n${report.join('\n')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
