/**
 * `edgeraft torture`: the fault-injection harness on real member processes (see
 * `lib/testing/torture/harness.ts`). Prints the faults as they happen and a summary, writes
 * report.json, timeline.svg and report.html into `--out`, and exits 0 only when the verdict is
 * ok (1: a check failed, 3: undecided within the checker's budget).
 *
 * @module
 */
import process from 'node:process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TortureTarget } from '../testing/torture/target.ts';
import { type Runtime, runtimeMissing, runtimes } from '../runtime.ts';
import { runTorture } from '../testing/torture/harness.ts';
import { type FaultKind, faultKinds } from '../testing/torture/nemesis.ts';
import { summaryText, writeReport } from '../testing/torture/report.ts';
import { UsageError } from './args.ts';
import type { Command } from './command.ts';

/** `90s`, `5m`, `1500ms` or a number of seconds, in milliseconds; else a UsageError naming `flag`. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) {
    throw new UsageError(
      `Flag --${flag}: expected a duration such as 60s, 5m or 1500ms, got ${JSON.stringify(text)}`,
    );
  }
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' ?? 's'] ?? 1_000;
  return Number(m[1]) * unit;
}

/** The `--faults` list, checked. */
export function parseFaults(text: string): FaultKind[] {
  if (text === 'all') return [...faultKinds];
  const kinds = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (kinds.length === 0) throw new UsageError('Flag --faults: no fault kind given');
  for (const k of kinds) {
    if (!(faultKinds as readonly string[]).includes(k)) {
      throw new UsageError(
        `Flag --faults: unknown fault ${JSON.stringify(k)}, expected some of ${
          faultKinds.join(',')
        } or all`,
      );
    }
  }
  return kinds as FaultKind[];
}

/** Shortest and longest `--duration`. */
const durationMsMin = 10_000;
const durationMsMax = 24 * 3_600_000;

export const tortureCommand: Command = {
  summary:
    'fault injection on a local cluster of real processes: kills, pauses, partitions, clock skew, full disk, slow syncs; checks linearizability and lost writes, writes a report',
  usage:
    'torture [--duration 60s] [--members 3] [--clients 4] [--faults kill,stop,...|all] [--seed N] [--out DIR] [--runtime node|bun|deno]',
  flags: {
    duration: { kind: 'string', help: 'how long the workload runs (10s to 24h)', default: '60s' },
    members: { kind: 'int', help: 'members in the cluster', default: 3, min: 1, max: 9 },
    clients: { kind: 'int', help: 'concurrent session clients', default: 4, min: 1, max: 64 },
    faults: {
      kind: 'string',
      help: `fault kinds, comma-separated: ${faultKinds.join(',')} (or all)`,
      default: 'all',
    },
    seed: { kind: 'int', help: 'seed of the nemesis and the workload (default: random)', min: 0 },
    out: {
      kind: 'string',
      help:
        "folder for report.json, timeline.svg, report.html and the members' logs (members/ID.log)",
      default: 'torture-report',
    },
    runtime: {
      kind: 'string',
      help: 'runtime of the members: node, bun or deno (default: this one)',
    },
    'check-budget': {
      kind: 'string',
      help: 'time the linearizability check may take (then the verdict is unknown)',
      default: '60s',
    },
    planted: {
      kind: 'string',
      help:
        'testing only: deliberate member bugs (EDGERAFT_UNSAFE_FAULTS), e.g. resolveWithNextIndex, to see the harness catch them',
    },
    adapter: {
      kind: 'string',
      help:
        'torture your own cluster: a module whose default export resolves to a TortureTarget (lib/testing/torture/target.ts); --members and --runtime are then unused',
    },
    quiet: { kind: 'bool', help: 'print only the summary' },
  },
  run: async (flags) => {
    const durationMs = parseDuration(String(flags['duration']), 'duration');
    if (durationMs < durationMsMin || durationMs > durationMsMax) {
      throw new UsageError(
        `Flag --duration: must be between 10s and 24h, got ${flags['duration']}`,
      );
    }
    const checkBudgetMs = parseDuration(String(flags['check-budget']), 'check-budget');
    const kinds = parseFaults(String(flags['faults']));
    let runtime: Runtime | undefined;
    if (flags['runtime'] !== undefined) {
      const r = String(flags['runtime']);
      if (!(runtimes as readonly string[]).includes(r)) {
        throw new UsageError(
          `Flag --runtime: expected node, bun or deno, got ${JSON.stringify(r)}`,
        );
      }
      runtime = r as Runtime;
      const missing = runtimeMissing(runtime);
      if (missing !== null) throw new UsageError(`Flag --runtime ${r}: ${missing}`);
    }
    const seed = flags['seed'] === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : Number(flags['seed']);
    const quiet = flags['quiet'] === true;
    const planted = flags['planted'] === undefined
      ? []
      : String(flags['planted']).split(',').filter((s) => s !== '');
    const say = (line: string) => process.stdout.write(`${line}\n`);
    let target: TortureTarget | undefined;
    if (flags['adapter'] !== undefined) {
      const file = resolve(String(flags['adapter']));
      let create: unknown;
      try {
        create = (await import(pathToFileURL(file).href)).default;
      } catch (error) {
        throw new UsageError(`Flag --adapter: cannot load ${file}: ${(error as Error).message}`);
      }
      if (typeof create !== 'function') {
        throw new UsageError(`Flag --adapter: ${file} has no default export function`);
      }
      target = await (create as () => Promise<TortureTarget>)();
    }
    if (!quiet) {
      say(
        `edgeraft torture: ${flags['members']} members, ${flags['clients']} clients, ${
          durationMs / 1000
        } s, faults ${kinds.join(',')}, seed ${seed}`,
      );
    }
    const result = await runTorture({
      durationMs,
      members: Number(flags['members']),
      clients: Number(flags['clients']),
      kinds,
      seed,
      checkBudgetMs,
      plantedFaults: planted,
      ...(target === undefined ? { memberLogDir: join(String(flags['out']), 'members') } : {}),
      ...(runtime === undefined ? {} : { runtime }),
      ...(target === undefined ? {} : { target }),
      ...(quiet ? {} : { log: (line: string) => say(`  ${line}`) }),
    });
    const files = writeReport(result, String(flags['out']));
    say(summaryText(result));
    say(`report: ${files.join(', ')}`);
    return result.verdict === 'ok' ? 0 : result.verdict === 'unknown' ? 3 : 1;
  },
};
