// The deterministic simulator runs the real member driver with the key-value machine, plain
// clients and clients with sessions, and membership churn on every third seed: a thousand seeded
// clusters stay safe and live, runs replay
// exactly (on every runtime alike), every deliberately unsafe variant of the core, the driver and
// the session handling is caught within a few hundred seeds (the mutation table), a user's own
// state machine runs under it and a non-deterministic one is reported, and the `npm run sim` CLI
// keeps its contract (final line, exit codes, flag errors).
import process from 'node:process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApplyContext } from '../../lib/state/context.ts';
import type { Commit, StateMachine } from '../../lib/state/state-machine.ts';
import {
  runSimulation,
  type SimulationFaults,
  type SimulationResult,
  type Workload,
} from '../../lib/testing/mod.ts';
import {
  membershipByDefault,
  unsafeFaultCompanions,
  unsafeFaultOptions,
} from '../../lib/testing/simulator.ts';
import { currentRuntime, repoRoot, type Runtime, runtimes, spawnTs } from '../support/child.ts';

/**
 * Seeds `npm test` runs against the real code (3 members for even seeds, 5 for odd ones): 1,000
 * distinct seeds over the three runtimes, 1..400 under Node, 401..700 under Bun, 701..1000 under
 * Deno. A seed runs identically on every runtime (a test below compares the three), so running
 * the same seeds three times would check nothing more; distinct ranges check more within the
 * suite's time budget. `EDGERAFT_SIM_SEEDS=N` runs seeds 1..N instead.
 */
const seedRanges: Record<Runtime, [number, number]> = {
  node: [1, 400],
  bun: [401, 700],
  deno: [701, 1000],
};
const [firstSeed, lastSeed] = process.env['EDGERAFT_SIM_SEEDS'] === undefined
  ? seedRanges[currentRuntime()]
  : [1, Number(process.env['EDGERAFT_SIM_SEEDS'])];
const safeSeedCount = lastSeed - firstSeed + 1;
/** "Within a few hundred seeds": the budget an unsafe variant gets before the checks must bite. */
const unsafeSeedCount = 300;

function report(r: SimulationResult): string {
  return `seed ${r.seed}: ${r.failure}\n${
    r.trace.join('\n')
  }\nreplay: npm run sim -- --seed ${r.seed}`;
}

// Safety and liveness hold on this runtime's seeds, with both cluster sizes.
test(`seeds ${firstSeed}..${lastSeed} pass (3- and 5-member clusters, churn on every third)`, async () => {
  const sizes = new Set<number>();
  const churn = { seeds: 0, configurations: 0, joined: 0, promoted: 0, demoted: 0, left: 0 };
  let unknownVerdicts = 0;
  let elections = 0;
  let reads = 0;
  let installs = 0;
  let checked = 0;
  const sessions = { commands: 0, duplicates: 0, events: 0, sequentialReads: 0, expired: 0 };
  for (let seed = firstSeed; seed <= lastSeed; seed++) {
    const r = await runSimulation({ seed });
    if (!r.ok) assert.unreachable(report(r));
    sizes.add(seed % 2 === 0 ? 3 : 5);
    elections += r.stats.elections;
    reads += r.stats.reads;
    installs += r.stats.snapshotsInstalled;
    checked += r.stats.historyOperations;
    unknownVerdicts += r.stats.linearizabilityUnknown;
    sessions.commands += r.stats.sessionCommands;
    sessions.duplicates += r.stats.sessionDuplicates;
    sessions.events += r.stats.sessionEvents;
    sessions.sequentialReads += r.stats.sequentialReads;
    sessions.expired += r.stats.sessionsExpired;
    if (membershipByDefault(seed)) {
      churn.seeds++;
      churn.configurations += r.stats.configurationsCommitted;
      churn.joined += r.stats.joined;
      churn.promoted += r.stats.promoted;
      churn.demoted += r.stats.demoted;
      churn.left += r.stats.left;
    }
    assert.ok(
      r.stats.acknowledged > 0,
      `seed ${seed} acknowledged no write: the workload did not run`,
    );
  }
  assert.equal([...sizes].sort(), [3, 5]);
  assert.ok(elections > safeSeedCount, `only ${elections} elections in ${safeSeedCount} seeds`);
  assert.ok(reads > safeSeedCount * 10, `only ${reads} reads`);
  assert.ok(installs > safeSeedCount / 20, `only ${installs} snapshot installs`);
  assert.ok(checked > safeSeedCount * 50, `only ${checked} operations checked for linearizability`);
  // The session clients ran: commands answered (some from the kept result, after a retry),
  // events delivered, sequential reads, sessions that expired and were replaced.
  const n = safeSeedCount;
  assert.ok(sessions.commands > n * 10, `only ${sessions.commands} session commands answered`);
  assert.ok(sessions.duplicates > n, `only ${sessions.duplicates} answered from the kept result`);
  assert.ok(sessions.events > n * 10, `only ${sessions.events} session events delivered`);
  assert.ok(sessions.sequentialReads > n * 5, `only ${sessions.sequentialReads} sequential reads`);
  assert.ok(sessions.expired > n / 2, `only ${sessions.expired} sessions expired`);
  // The churn seeds changed the membership in every way, many times.
  const c = churn.seeds;
  assert.ok(c >= n / 3 - 1, `only ${c} churn seeds`);
  assert.ok(churn.configurations > c, `only ${churn.configurations} configurations committed`);
  for (const kind of ['joined', 'promoted', 'demoted', 'left'] as const) {
    assert.ok(
      churn[kind] >= Math.max(1, c / 10),
      `only ${churn[kind]} members ${kind} in ${c} churn seeds`,
    );
  }
  // A history the checker could not decide within its budget passes: say how many there were.
  console.log(
    `  linearizability: ${checked} operations checked, ${unknownVerdicts} histories undecided within the 10 s budget`,
  );
  console.log(
    `  churn on ${c} seeds: ${churn.configurations} configurations committed, ${churn.joined} joined, ${churn.promoted} promoted, ${churn.demoted} demoted, ${churn.left} left`,
  );
});

// One seed is one run: failure, stats and trace are identical on a second run, and whatever ran
// in the process before it.
test('the same seed replays exactly', async () => {
  for (const seed of [2, 3, 77]) {
    assert.equal(await runSimulation({ seed }), await runSimulation({ seed }), `seed ${seed}`);
  }
  const faults = { voteTwiceInTerm: true };
  const cold: SimulationResult[] = [];
  for (let seed = 1; seed <= 10; seed++) {
    cold.push(await runSimulation({ seed, unsafeFaults: faults }));
  }
  for (let seed = 20; seed <= 60; seed++) await runSimulation({ seed });
  for (const r of cold) {
    assert.equal(await runSimulation({ seed: r.seed, unsafeFaults: faults }), r);
  }
  assert.not.equal(
    (await runSimulation({ seed: 2 })).trace,
    (await runSimulation({ seed: 4 })).trace,
  );
});

// One seed is the same run under Node, Bun and Deno: the replay (failure, whole trace, stats) is
// identical, for a passing seed and for one an unsafe variant fails. It compares all three, so it
// runs once, under Node.
test('a seed replays identically under Node, Bun and Deno', async () => {
  if (currentRuntime() !== 'node') return;
  for (const args of [['--seed', '3'], ['--seed', '2', '--unsafe', 'relayBeforeApplied']]) {
    const full = [...args, '--trace-lines', '100000'];
    const outputs = await Promise.all(runtimes.map((runtime) => sim(full, runtime)));
    for (const [i, r] of outputs.entries()) {
      assert.ok(r.stdout.includes('\nstats {'), `${runtimes[i]}: ${r.stderr}`);
      assert.is(
        r.stdout,
        outputs[0]!.stdout,
        `${runtimes[i]} differs from node: ${args.join(' ')}`,
      );
    }
  }
});

/**
 * The mutation table: every deliberate bug, of the core and of the driver, with what catches it.
 * Each must fail some seed in 1..300; the first one is printed (the full counts are in the README,
 * from `npm run sim -- --mutations`).
 */
const mutations: Array<{ fault: keyof SimulationFaults; caughtBy: RegExp }> = [
  // The session rules (see lib/testing/session-client.ts and session-oracle.ts).
  { fault: 'applyDuplicateSequences', caughtBy: /Applied twice|took effect twice/ },
  { fault: 'relogRetries', caughtBy: /Sequence logged twice|but its first application/ },
  { fault: 'relayBeforeApplied', caughtBy: /reached the client before event/ },
  { fault: 'expireLeaderlessTime', caughtBy: /False expiry/ },
  { fault: 'trimUnacknowledgedResults', caughtBy: /never answered to the client, was refused/ },
  {
    fault: 'leaderCountsUndurableEntries',
    caughtBy:
      /State machine safety|Leader completeness|Log matching|Acknowledged|Assertion|Outputs differ|not linearizable|Stale/,
  },
  { fault: 'voteBeforeDurable', caughtBy: /Two leaders in term|Leader completeness/ },
  {
    fault: 'ackBeforeDurable',
    caughtBy:
      /State machine safety|Leader completeness|Log matching|Acknowledged|Assertion|Outputs differ|not linearizable|Stale/,
  },
  { fault: 'leaseReadDuringTransfer', caughtBy: /Stale lease read|not linearizable/ },
  { fault: 'noRestartEmbargo', caughtBy: /Stale lease read|not linearizable/ },
  {
    fault: 'sendBeforePersist',
    caughtBy:
      /State machine safety|Leader completeness|Log matching|Acknowledged|Assertion|Outputs differ|not linearizable|Stale|Two leaders/,
  },
  {
    fault: 'resolveWithNextIndex',
    caughtBy: /answered .* but the output there is|not linearizable/,
  },
  { fault: 'readBeforeApplied', caughtBy: /below its read index|not linearizable/ },
  { fault: 'voteTwiceInTerm', caughtBy: /Two leaders in term/ },
  {
    fault: 'voteWithoutLogCheck',
    caughtBy: /Leader completeness|State machine safety|Log matching|Assertion/,
  },
  // The membership rules (lib/testing/sim-membership.ts), with membership churn on every seed
  // (`unsafeFaultOptions`).
  { fault: 'feedUncommittedEntries', caughtBy: /^Feed from n\d+ to n\d+ carries entry/ },
  {
    fault: 'passiveAcceptsUncommitted',
    caughtBy: /^PASSIVE member n\d+ (stores entry|holds entries|stored)/,
  },
  { fault: 'passiveKeepsUncommitted', caughtBy: /^PASSIVE member n\d+ (holds entries|stored)/ },
  { fault: 'adoptTermFromNonVoters', caughtBy: /^(Vote request from|Removed member) n\d+/ },
  { fault: 'balancerDemotesFirst', caughtBy: /^Balancer: configuration committed/ },
];

for (const [i, { fault, caughtBy }] of mutations.entries()) {
  // Each unsafe variant is caught by the simulator within the first 300 seeds, by the check that
  // guards against it (with the faults it needs to show at all, `unsafeFaultCompanions`).
  const companions = unsafeFaultCompanions[fault] ?? {};
  // The core's, the driver's and the sessions' faults run without churn, as they always did (a
  // broken core under churn may fail liveness first); the membership faults with it.
  const options = unsafeFaultOptions[fault] ?? { membership: false };
  const name = [fault, ...Object.keys(companions)].join(' + ');
  // Once, under one runtime, in turn (Node, Bun, Deno, Node, ...): a seed runs the same on every
  // runtime (a test above compares the three), so each mutation is checked once and the suite's
  // time is shared out, as the seed ranges are.
  const runtimeOf = runtimes[i % runtimes.length]!;
  test(`mutation ${name} is caught within ${unsafeSeedCount} seeds (under ${runtimeOf})`, async () => {
    if (currentRuntime() !== runtimeOf) return;
    for (let seed = 1; seed <= unsafeSeedCount; seed++) {
      const r = await runSimulation({
        seed,
        unsafeFaults: { ...companions, [fault]: true },
        ...options,
      });
      if (r.ok) continue;
      assert.match(r.failure!, caughtBy, report(r));
      console.log(`  ${fault}: first caught by seed ${seed}: ${r.failure!.slice(0, 100)}`);
      return;
    }
    assert.unreachable(`${fault} was not caught in seeds 1..${unsafeSeedCount}`);
  });
}

/** A counter machine a user might write: deterministic, with log-time bookkeeping. */
class Counter implements StateMachine<{ add: number }, number, 'total', number> {
  #total = 0;
  apply(commit: Commit<{ add: number }>, _context: ApplyContext): number {
    return (this.#total += commit.command.add);
  }
  query(): number {
    return this.#total;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const total = this.#total;
    return (async function* () {
      yield new TextEncoder().encode(String(total));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const c of chunks) text += new TextDecoder().decode(c);
    this.#total = Number(text);
  }
}

const counterWorkload = (): Workload => ({
  next: (random) =>
    random() < 0.7
      ? { kind: 'command', command: { add: 1 + Math.floor(random() * 5) } }
      : { kind: 'query', query: 'total', consistency: 'linearizable' },
});

// A user's own machine and workload run under the simulator with all its faults and checks.
test('a user state machine passes under the simulator', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = await runSimulation({
      seed,
      stateMachine: () => new Counter(),
      workload: counterWorkload,
    });
    if (!r.ok) assert.unreachable(report(r));
  }
});

let instances = 0;
/** A machine that is not deterministic: it reads a counter that differs from member to member. */
class Divergent extends Counter {
  readonly #me = ++instances;
  override apply(commit: Commit<{ add: number }>, context: ApplyContext): number {
    return super.apply(commit, context) + this.#me * 1000;
  }
}

// The simulator reports a machine whose members produce different outputs, with the seed to replay.
test('a non-deterministic state machine is reported with its seed', async () => {
  const r = await runSimulation({
    seed: 5,
    stateMachine: () => new Divergent(),
    workload: counterWorkload,
  });
  assert.is(r.ok, false);
  assert.match(
    r.failure!,
    /^Outputs differ at index \d+: n\d produced ok:\d+, another member ok:\d+/,
  );
  assert.is(r.seed, 5);
});

// A bad option is refused at once, naming it.
test('runSimulation refuses a machine without a workload', async () => {
  try {
    await runSimulation({ seed: 1, stateMachine: () => new Counter() });
    assert.unreachable('accepted a state machine without a workload');
  } catch (e) {
    assert.instance(e, TypeError);
    assert.match((e as Error).message, /option workload/);
  }
});

/** Run the CLI under `runtime` (default: this one); resolves with its exit code and output. */
function sim(
  args: string[],
  runtime?: Runtime,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(
      `${repoRoot}lib/testing/sim-cli.ts`,
      args,
      runtime === undefined ? {} : { runtime },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Uint8Array) => (stdout += new TextDecoder().decode(c)));
    child.stderr!.on('data', (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
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
  const sweep = await sim(['--seeds', '5', '--unsafe', 'resolveWithNextIndex']);
  assert.is(sweep.code, 1, sweep.stderr);
  const failures = failuresIn(sweep.stdout);
  assert.ok(failures.size > 0, sweep.stdout);
  assert.match(sweep.stdout, /^seed \d+: .*\n {2}\s*\d+\.\d\d \S/m, 'a trace follows the failure');
  assert.is(
    sweep.stdout.trimEnd().split('\n').at(-1),
    `${5 - failures.size} passed, ${failures.size} failed`,
  );
  const seed = [...failures.keys()][0]!;
  const replay = await sim(['--seed', String(seed), '--unsafe', 'resolveWithNextIndex']);
  assert.is(replay.code, 1, replay.stdout);
  assert.ok(replay.stdout.startsWith(`seed ${seed}: ${failures.get(seed)} (`), replay.stdout);
  assert.match(replay.stdout, /\nstats \{"virtualMs":\d+/);
  assert.is(replay.stdout.trimEnd().split('\n').at(-1), '0 passed, 1 failed');
});

// A bad flag value is an error naming the flag, exit code 2, and nothing runs.
test('sim CLI: bad flags exit 2 naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--seeds', 'x'], /--seeds must be a whole number/],
    [['--members', '12'], /--members must be in \[2, 9\]/],
    [['--unsafe', 'nope'], /--unsafe must be one of/],
    [['--seed', '1', '--seeds', '3'], /--seed replays one seed/],
    [['--speed', '3'], /Unknown flag '--speed'/],
    [['--membership', 'maybe'], /--membership must be on or off/],
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
