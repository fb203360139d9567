// The deterministic simulator: a thousand seeded clusters stay safe and live, runs replay
// exactly, the checkers catch deliberately unsafe cores, and the `npm run sim` CLI keeps its
// contract (final line, exit codes, flag errors).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { SimulationFaults as UnsafeFaults } from '../../lib/testing/simulator.ts';
import { runSimulation, type SimulationResult } from '../../lib/testing/mod.ts';
import { repoRoot, spawnTs } from '../support/child.ts';

/** Seeds `npm test` runs against the real core (3 members for even seeds, 5 for odd ones). */
const safeSeedCount = 1000;
/** "Within a few hundred seeds": the budget an unsafe core gets before the checkers must bite. */
const unsafeSeedCount = 300;

function report(r: SimulationResult): string {
  return `seed ${r.seed}: ${r.failure}\n${
    r.trace.join('\n')
  }\nreplay: npm run sim -- --seed ${r.seed}`;
}

// Safety and liveness hold on seeds 1..1000 with both cluster sizes.
test(`seeds 1..${safeSeedCount} pass (3- and 5-member clusters)`, async () => {
  const sizes = new Set<number>();
  let elections = 0;
  for (let seed = 1; seed <= safeSeedCount; seed++) {
    const r = await runSimulation({ seed });
    if (!r.ok) assert.unreachable(report(r));
    sizes.add(seed % 2 === 0 ? 3 : 5);
    elections += r.stats.elections;
    assert.ok(
      r.stats.acknowledged > 0,
      `seed ${seed} acknowledged no proposal: the workload did not run`,
    );
  }
  assert.equal([...sizes].sort(), [3, 5]);
  assert.ok(elections > safeSeedCount, `only ${elections} elections in ${safeSeedCount} seeds`);
});

const firstFailures = new Map<string, SimulationResult | null>();

/** The first seed in 1..unsafeSeedCount whose run fails against the unsafe core. */
async function firstFailure(faults: UnsafeFaults): Promise<SimulationResult | null> {
  const key = JSON.stringify(faults);
  if (firstFailures.has(key)) return firstFailures.get(key)!;
  let found: SimulationResult | null = null;
  for (let seed = 1; seed <= unsafeSeedCount; seed++) {
    const r = await runSimulation({ seed, unsafeFaults: faults });
    if (!r.ok) {
      found = r;
      break;
    }
  }
  firstFailures.set(key, found);
  return found;
}

// One seed is one run: failure, stats and trace are identical on a second run.
test('the same seed replays exactly', async () => {
  for (const seed of [2, 3, 77]) {
    assert.equal(await runSimulation({ seed }), await runSimulation({ seed }), `seed ${seed}`);
  }
  const failing = await firstFailure({ voteTwiceInTerm: true });
  assert.ok(failing !== null, 'an unsafe core fails some seed');
  assert.equal(
    await runSimulation({ seed: failing.seed, unsafeFaults: { voteTwiceInTerm: true } }),
    failing,
  );
  assert.not.equal(
    (await runSimulation({ seed: 2 })).trace,
    (await runSimulation({ seed: 4 })).trace,
  );
});

// Granting two votes in one term produces two leaders in a term, and the checker says so.
test('the checkers catch a core that votes twice in a term', async () => {
  const r = await firstFailure({ voteTwiceInTerm: true });
  assert.ok(r !== null, `no failure in ${unsafeSeedCount} seeds`);
  assert.match(r.failure!, /^Two leaders in term \d+/);
});

// Voting without comparing logs elects a leader that lacks committed entries.
test('the checkers catch a core that votes without the log check', async () => {
  const r = await firstFailure({ voteWithoutLogCheck: true });
  assert.ok(r !== null, `no failure in ${unsafeSeedCount} seeds`);
  assert.match(r.failure!, /^(Leader completeness|State machine safety|Log matching)/);
});

/** Run the CLI under the current runtime; resolves with its exit code and output. */
function sim(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(`${repoRoot}lib/testing/sim-cli.ts`, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Uint8Array) => (stdout += new TextDecoder().decode(c)));
    child.stderr!.on('data', (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// A sweep ends with `N passed, 0 failed` and exit 0; progress goes to stderr only.
test('sim CLI: a passing sweep', async () => {
  const r = await sim(['--seeds', '6', '--from', '10']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trimEnd().split('\n').at(-1), '6 passed, 0 failed');
  assert.match(r.stderr, /6\/6 seeds \(10\.\.15/);
});

/** The failing seeds a sweep printed, with their failure lines. */
function failuresIn(stdout: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of stdout.matchAll(/^seed (\d+): (.*)$/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

// A failing seed is printed with its trace and counted, exit 1; --seed replays it in a fresh
// process exactly as a one-seed sweep from that seed runs it.
test('sim CLI: failing seeds are reported and replay', async () => {
  const sweep = await sim(['--seeds', '12', '--unsafe', 'voteTwiceInTerm']);
  assert.is(sweep.code, 1, sweep.stderr);
  const failures = failuresIn(sweep.stdout);
  assert.ok(failures.size > 0, sweep.stdout);
  for (const failure of failures.values()) assert.match(failure, /^Two leaders in term/);
  assert.match(sweep.stdout, /^seed \d+: .*\n {2}\s*\d+\.\d\d \S/m, 'a trace follows the failure');
  assert.is(
    sweep.stdout.trimEnd().split('\n').at(-1),
    `${12 - failures.size} passed, ${failures.size} failed`,
  );
  const seed = [...failures.keys()][0]!;
  const [single, replay] = await Promise.all([
    sim(['--seeds', '1', '--from', String(seed), '--unsafe', 'voteTwiceInTerm']),
    sim(['--seed', String(seed), '--unsafe', 'voteTwiceInTerm']),
  ]);
  const singleFailure = failuresIn(single.stdout).get(seed);
  assert.is(replay.code, single.code, replay.stdout);
  if (singleFailure === undefined) {
    assert.match(replay.stdout, new RegExp(`^seed ${seed}: ok `));
  } else {
    assert.ok(replay.stdout.startsWith(`seed ${seed}: ${singleFailure} (`), replay.stdout);
    assert.match(replay.stdout, /\nstats \{"virtualMs":\d+/);
    assert.is(replay.stdout.trimEnd().split('\n').at(-1), '0 passed, 1 failed');
  }
});

// A seed gives the same run however many seeds ran before it in the process (and so whatever
// the engine's JIT tier): the simulator draws every choice from its seeded generator.
test('a seed replays exactly after other seeds ran in the process', async () => {
  const faults = { voteTwiceInTerm: true };
  const cold: SimulationResult[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    cold.push(await runSimulation({ seed, unsafeFaults: faults }));
  }
  for (let seed = 1; seed <= 300; seed++) await runSimulation({ seed });
  for (const r of cold) {
    assert.equal(await runSimulation({ seed: r.seed, unsafeFaults: faults }), r);
  }
});

// A bad flag value is an error naming the flag, exit code 2, and nothing runs.
test('sim CLI: bad flags exit 2 naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--seeds', 'x'], /--seeds must be a whole number/],
    [['--members', '12'], /--members must be in \[2, 9\]/],
    [['--unsafe', 'nope'], /--unsafe must be one of/],
    [['--seed', '1', '--seeds', '3'], /--seed replays one seed/],
    [['--speed', '3'], /Unknown flag '--speed'/],
  ];
  const results = await Promise.all(cases.map(([args]) => sim(args)));
  for (const [i, [args, message]] of cases.entries()) {
    const r = results[i]!;
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.stderr, message);
    assert.is(r.stdout, '', 'nothing ran');
  }
});

test.run();
