/**
 * `npm run sim`: run the deterministic simulator over many seeds, or replay one.
 *
 * Usage:
 *   npm run sim -- --seeds 1000            seeds 1..1000 (3 members for even seeds, 5 for odd)
 *   npm run sim -- --seeds 500 --from 9001 seeds 9001..9500
 *   npm run sim -- --seed 42               replay seed 42: its failure (if any), trace and stats
 *   npm run sim -- --seeds 300 --unsafe voteTwiceInTerm   against a deliberately broken core
 *   npm run sim -- --members 5 ...         force the cluster size (its ACTIVE members)
 *   npm run sim -- --membership on ...     membership churn on every seed (default: every third
 *                                          seed, seed % 3 = 0; off for none); with it,
 *                                          --balancer on|off forces the balancer
 *   npm run sim -- --mutations --seeds 300 the mutation table: for every unsafe variant, how many
 *                                          of the seeds catch it, and the first one
 *
 * Progress goes to stderr; each failing seed is printed as `seed S: <failure>` with the end of
 * its trace; the last line on stdout is `N passed, M failed`. Exit code: 0 when all passed, 1 when
 * any failed, 2 for bad flags. Runs unchanged under Node (tsx), Bun and Deno.
 *
 * @example
 * ```sh
 * node_modules/.bin/tsx lib/testing/sim-cli.ts --seeds 100
 * bun lib/testing/sim-cli.ts --seed 7
 * deno run -A lib/testing/sim-cli.ts --seeds 100 --members 3
 * ```
 * @module
 */
import process from 'node:process';
import { membershipFaultNames, unsafeFaultNames as coreFaultNames } from '../core/options.ts';
import { driverUnsafeFaultNames } from '../member/options.ts';
import { requestsUnsafeFaultNames } from '../member/requests.ts';
import { executorUnsafeFaultNames } from '../state/executor.ts';
import {
  emptyStats,
  runSimulation,
  type SimulationFaults,
  type SimulationResult,
  unsafeFaultCompanions,
  unsafeFaultOptions,
} from './simulator.ts';

/** The unsafe variants of the core, the driver and the sessions that `--unsafe` selects. */
const unsafeFaultNames = [
  ...coreFaultNames,
  ...driverUnsafeFaultNames,
  ...requestsUnsafeFaultNames,
  ...executorUnsafeFaultNames,
  ...membershipFaultNames,
  'balancerDemotesFirst',
] as const;
type UnsafeFaultName = (typeof unsafeFaultNames)[number];

/** Seeds one sweep may run: bounds the run time of a typo like `--seeds 1e9`. */
const seedCountMax = 10_000_000;
/** Seeds are 32-bit: the simulator's generator reduces a seed modulo 2^32. */
const seedMax = 2 ** 32 - 1;
/** Cluster sizes the simulator is meant for (a leader transfer needs a second member). */
const memberCountMin = 2;
const memberCountMax = 9;
/** Trace lines shown per failing seed in a sweep, and kept for a replay. */
const sweepTraceLines = 20;
const replayTraceLinesDefault = 400;
const traceLinesMax = 100_000;

const usage = `Usage: sim-cli.ts [--seeds N] [--from S] [--seed S] [--members N] [--unsafe FAULT]
                  [--membership on|off] [--balancer on|off] [--mutations] [--trace-lines N] [--help]
  --seeds N        run N seeds, S..S+N-1 (default 1000)
  --from S         first seed of the sweep (default 1)
  --seed S         replay one seed: print its failure, full trace and stats
  --members N      members per cluster, ${memberCountMin}-${memberCountMax} (default: 3 for even seeds, 5 for odd)
  --membership X   membership churn (joins, leaves, promotions, demotions, passive members):
                   on for every seed, or off (default: every third seed, seed % 3 = 0;
                   with --unsafe, on only for a membership FAULT)
  --balancer X     with churn, the balancer on or off (default: 40% of the churn seeds)
  --unsafe FAULT   run against a deliberately unsafe core or driver: ${unsafeFaultNames.join(', ')}
  --mutations      print the mutation table: per unsafe variant, the seeds that catch it
  --trace-lines N  trace lines kept for --seed (default ${replayTraceLinesDefault})
  --help           print this help`;

/** A bad command line: printed with the usage hint, exit code 2. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type CliOptions = {
  mode: 'sweep' | 'replay' | 'help' | 'mutations';
  fromSeed: number;
  seedCount: number;
  memberCount: number | undefined;
  unsafe: UnsafeFaultName | undefined;
  /** Faults run together with `unsafe` (the mutation table's companions). */
  with: SimulationFaults;
  membership: boolean | undefined;
  balancer: boolean | undefined;
  traceLines: number;
};

function parseInteger(flag: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined || text.startsWith('--')) throw new UsageError(`${flag} needs a value`);
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got '${text}'`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag} must be in [${min}, ${max}], got ${text}`);
  return n;
}

function parseArgs(argv: readonly string[]): CliOptions {
  const seen = new Set<string>();
  const o: CliOptions = {
    mode: 'sweep',
    fromSeed: 1,
    seedCount: 1000,
    memberCount: undefined,
    unsafe: undefined,
    with: {},
    membership: undefined,
    balancer: undefined,
    traceLines: replayTraceLinesDefault,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    // Accept --flag=value as well as --flag value.
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    if (seen.has(flag)) throw new UsageError(`${flag} given twice`);
    seen.add(flag);
    switch (flag) {
      case '--help':
      case '-h':
        o.mode = 'help';
        break;
      case '--seeds':
        o.seedCount = parseInteger(flag, value(), 1, seedCountMax);
        break;
      case '--from':
        o.fromSeed = parseInteger(flag, value(), 0, seedMax);
        break;
      case '--mutations':
        o.mode = 'mutations';
        break;
      case '--seed':
        o.mode = 'replay';
        o.fromSeed = parseInteger(flag, value(), 0, seedMax);
        o.seedCount = 1;
        break;
      case '--members':
        o.memberCount = parseInteger(flag, value(), memberCountMin, memberCountMax);
        break;
      case '--membership':
      case '--balancer': {
        const text = value();
        if (text !== 'on' && text !== 'off') {
          throw new UsageError(`${flag} must be on or off, got '${text ?? ''}'`);
        }
        o[flag === '--membership' ? 'membership' : 'balancer'] = text === 'on';
        break;
      }
      case '--trace-lines':
        o.traceLines = parseInteger(flag, value(), 1, traceLinesMax);
        break;
      case '--unsafe': {
        const name = value();
        if (name === undefined || name.startsWith('--')) {
          throw new UsageError('--unsafe needs a value');
        }
        if (!(unsafeFaultNames as readonly string[]).includes(name)) {
          throw new UsageError(
            `--unsafe must be one of ${unsafeFaultNames.join(', ')}, got '${name}'`,
          );
        }
        o.unsafe = name as UnsafeFaultName;
        break;
      }
      default:
        throw new UsageError(`Unknown flag '${arg}'`);
    }
  }
  if (o.mode === 'mutations' && o.unsafe !== undefined) {
    throw new UsageError(
      '--mutations runs every unsafe variant: it cannot be combined with --unsafe',
    );
  }
  if (o.mode === 'replay' && (seen.has('--seeds') || seen.has('--from'))) {
    throw new UsageError('--seed replays one seed: it cannot be combined with --seeds or --from');
  }
  if (o.mode === 'sweep' && seen.has('--trace-lines')) {
    throw new UsageError('--trace-lines applies to --seed only');
  }
  if (o.fromSeed + o.seedCount - 1 > seedMax) {
    throw new UsageError(
      `--from ${o.fromSeed} with --seeds ${o.seedCount} passes the last seed ${seedMax}`,
    );
  }
  return o;
}

/** Run one seed; an unexpected exception (a bug outside the checkers' reach) is a failure too. */
async function runSeed(
  seed: number,
  o: CliOptions,
  traceLinesMax: number,
): Promise<SimulationResult> {
  try {
    return await runSimulation({
      seed,
      traceLinesMax,
      ...(o.memberCount === undefined ? {} : { memberCount: o.memberCount }),
      ...(o.unsafe === undefined ? {} : {
        unsafeFaults: { ...o.with, [o.unsafe]: true },
        ...unsafeFaultOptions[o.unsafe],
      }),
      ...(o.membership === undefined ? {} : { membership: o.membership }),
      ...(o.balancer === undefined ? {} : { balancer: o.balancer }),
    });
  } catch (e) {
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return {
      seed,
      ok: false,
      failure: `Exception: ${detail}`,
      trace: e instanceof Error && e.stack !== undefined ? e.stack.split('\n').slice(1, 8) : [],
      stats: emptyStats(),
    };
  }
}

function describeRun(o: CliOptions): string {
  const size = o.memberCount === undefined ? '3/5 members' : `${o.memberCount} members`;
  const unsafe = o.unsafe === undefined ? '' : `, unsafe ${o.unsafe}`;
  const churn = o.membership === undefined ? '' : `, membership ${o.membership ? 'on' : 'off'}`;
  const balancer = o.balancer === undefined ? '' : `, balancer ${o.balancer ? 'on' : 'off'}`;
  return `${size}${unsafe}${churn}${balancer}`;
}

async function replay(o: CliOptions): Promise<number> {
  const r = await runSeed(o.fromSeed, o, o.traceLines);
  process.stdout.write(`seed ${r.seed}: ${r.ok ? 'ok' : r.failure} (${describeRun(o)})\n`);
  process.stdout.write(`${r.trace.join('\n')}\n`);
  process.stdout.write(`stats ${JSON.stringify(r.stats)}\n`);
  process.stdout.write(`${r.ok ? 1 : 0} passed, ${r.ok ? 0 : 1} failed\n`);
  return r.ok ? 0 : 1;
}

async function sweep(o: CliOptions): Promise<number> {
  const tty = process.stderr.isTTY === true;
  const last = o.fromSeed + o.seedCount - 1;
  const started = performance.now();
  const step = Math.max(1, Math.ceil(o.seedCount / 10));
  let passed = 0;
  let failed = 0;
  let firstFailure: number | null = null;
  const line = (done: number) => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    return `sim: ${done}/${o.seedCount} seeds (${o.fromSeed}..${last}, ${describeRun(o)}), ` +
      `${failed} failed, ${seconds} s`;
  };
  for (let seed = o.fromSeed; seed <= last; seed++) {
    const r = await runSeed(seed, o, sweepTraceLines);
    if (r.ok) passed++;
    else {
      failed++;
      firstFailure ??= seed;
      if (tty) process.stderr.write('\r\x1b[K');
      process.stdout.write(
        `seed ${seed}: ${r.failure}\n${r.trace.map((t) => `  ${t}`).join('\n')}\n`,
      );
    }
    const done = seed - o.fromSeed + 1;
    if (tty) process.stderr.write(`\r\x1b[K${line(done)}`);
    else if (done % step === 0 || done === o.seedCount) process.stderr.write(`${line(done)}\n`);
  }
  if (tty) process.stderr.write(`\r\x1b[K${line(o.seedCount)}\n`);
  if (firstFailure !== null) {
    const members = o.memberCount === undefined ? '' : ` --members ${o.memberCount}`;
    const unsafe = o.unsafe === undefined ? '' : ` --unsafe ${o.unsafe}`;
    const churn = o.membership === undefined ? '' : ` --membership ${o.membership ? 'on' : 'off'}`;
    const balancer = o.balancer === undefined ? '' : ` --balancer ${o.balancer ? 'on' : 'off'}`;
    process.stderr.write(
      `replay the first failure: npm run sim -- --seed ${firstFailure}${members}${unsafe}${churn}${balancer}\n`,
    );
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

/**
 * Every unsafe variant over the sweep's seeds: how many seeds catch it and the first one, as a
 * Markdown table. Exit 0 when every variant is caught at least once.
 */
async function mutationTable(o: CliOptions): Promise<number> {
  const last = o.fromSeed + o.seedCount - 1;
  process.stdout.write(
    `| unsafe variant | seeds ${o.fromSeed}..${last} that catch it | first seed | first failure |\n`,
  );
  process.stdout.write('|---|---|---|---|\n');
  let uncaught = 0;
  for (const fault of unsafeFaultNames) {
    let caught = 0;
    let first: SimulationResult | null = null;
    const companions = unsafeFaultCompanions[fault] ?? {};
    for (let seed = o.fromSeed; seed <= last; seed++) {
      // As in the test's table: churn only for the membership faults (unless --membership says).
      const membership = o.membership ?? unsafeFaultOptions[fault]?.membership ?? false;
      const r = await runSeed(
        seed,
        { ...o, unsafe: fault, with: companions, membership },
        sweepTraceLines,
      );
      if (r.ok) continue;
      caught++;
      first ??= r;
    }
    if (caught === 0) uncaught++;
    const failure = first?.failure?.replace(/\|/g, '/').slice(0, 90) ?? '';
    const name = [fault, ...Object.keys(companions)].join(' + ');
    process.stdout.write(`| ${name} | ${caught} | ${first?.seed ?? '—'} | ${failure} |\n`);
    process.stderr.write(`sim: ${fault}: ${caught} of ${o.seedCount}\n`);
  }
  return uncaught === 0 ? 0 : 1;
}

function main(argv: readonly string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`sim: ${e.message}\n${usage}\n`);
    return Promise.resolve(2);
  }
  if (o.mode === 'help') {
    process.stdout.write(`${usage}\n`);
    return Promise.resolve(0);
  }
  if (o.mode === 'mutations') return mutationTable(o);
  return o.mode === 'replay' ? replay(o) : sweep(o);
}

process.exitCode = await main(process.argv.slice(2));
