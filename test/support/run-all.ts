/**
 * `npm test`: the whole suite under Node (through tsx), Bun and Deno, then the type checks,
 * the linter and the formatter. Every step runs even when an earlier one failed, so one run
 * shows every failure; the exit code is non-zero if any step failed.
 *
 * Each step must end within `stepTimeMsMax` (a suite that passed but leaves a socket or timer
 * open would otherwise never exit): past it the step's process is killed and the step fails.
 *
 * Environment: `EDGERAFT_TEST_RUNTIMES=node,bun` limits the runtimes; `EDGERAFT_TEST_STEPS=`
 * `suite,check,lint,fmt` limits the steps; a pattern given as the first argument is passed to
 * uvu (for example `npm test -- storage`).
 */
import { spawn } from 'node:child_process';
import process from 'node:process';

type Step = { name: string; command: string; args: string[]; suite: boolean };

/**
 * Longest any one step may take, in milliseconds: a guard against a suite that never exits, not a
 * budget (on the 2-core machine of 2026-12-02 the Node suite took over 12 minutes, Bun's and
 * Deno's about 6).
 */
const stepTimeMsMax = 20 * 60 * 1000;

const bin = (name: string) => `node_modules/.bin/${name}`;
const uvu = 'node_modules/uvu/bin.js';
const pattern = process.argv[2] ?? '\\.test\\.ts$';
const uvuArgs = [uvu, 'test', pattern.endsWith('.ts$') ? pattern : `${pattern}.*\\.test\\.ts$`];

const runtimes: Record<string, Step> = {
  node: { name: 'suite under Node', command: bin('tsx'), args: uvuArgs, suite: true },
  bun: { name: 'suite under Bun', command: bin('bun'), args: uvuArgs, suite: true },
  deno: {
    name: 'suite under Deno',
    command: bin('deno'),
    args: ['run', '-A', ...uvuArgs],
    suite: true,
  },
};
const checks: Record<string, Step[]> = {
  check: [
    { name: 'tsc', command: bin('tsc'), args: ['-p', '.'], suite: false },
    {
      name: 'deno check',
      command: bin('deno'),
      args: ['check', 'mod.ts', 'lib/', 'test/', 'bench/'],
      suite: false,
    },
  ],
  lint: [{ name: 'deno lint', command: bin('deno'), args: ['lint'], suite: false }],
  fmt: [{ name: 'deno fmt --check', command: bin('deno'), args: ['fmt', '--check'], suite: false }],
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

const stepNames = listFromEnv('EDGERAFT_TEST_STEPS', ['suite', 'check', 'lint', 'fmt']);
const steps: Step[] = [];
if (stepNames.includes('suite')) {
  for (const r of listFromEnv('EDGERAFT_TEST_RUNTIMES', Object.keys(runtimes))) {
    steps.push(runtimes[r]!);
  }
}
for (const s of ['check', 'lint', 'fmt']) if (stepNames.includes(s)) steps.push(...checks[s]!);

function run(step: Step): Promise<{ code: number; passed: number; failed: number }> {
  return new Promise((resolve) => {
    let tail = '';
    // Its own process group, so that a step past its time limit is ended with every process it
    // started (tsx runs the suite in a child of its own: killing tsx alone left it running).
    const child = spawn(step.command, step.args, {
      stdio: ['ignore', 'pipe', 'inherit'],
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
    child.once('close', () => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-4096);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(
        `\n${step.name}: still running after ${
          stepTimeMsMax / 1000
        } s, killing it (pid ${child.pid})`,
      );
      try {
        if (process.platform === 'win32') child.kill('SIGKILL');
        else process.kill(-child.pid!, 'SIGKILL'); // the step's group: only what it started
      } catch {
        child.kill('SIGKILL');
      }
    }, stepTimeMsMax);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // uvu's summary: "  Total:     12", "  Passed:    12", "  Skipped:   0".
      const total = Number(/Total:\s+(\d+)/.exec(tail)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(tail)?.[1] ?? 0);
      const ok = code === 0 && signal === null && !timedOut;
      resolve({
        code: ok ? 0 : (code ?? 1),
        passed,
        failed: step.suite ? total - passed : ok ? 0 : 1,
      });
    });
  });
}

let passed = 0;
let failed = 0;
const report: string[] = [];
for (const step of steps) {
  const started = Date.now();
  console.log(`\n=== ${step.name}`);
  const result = await run(step);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const stepFailed = result.code !== 0;
  if (step.suite) {
    passed += result.passed;
    failed += result.failed + (stepFailed && result.failed === 0 ? 1 : 0);
    if (step.suite && result.passed === 0 && !stepFailed) failed += 1; // a suite that ran nothing is a failure
  } else if (stepFailed) failed += 1;
  report.push(
    `${stepFailed ? 'FAIL' : 'ok  '} ${step.name} (${seconds} s${
      step.suite ? `, ${result.passed} passed` : ''
    })`,
  );
}
console.log(`\n${report.join('\n')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
