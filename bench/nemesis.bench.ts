/**
 * Nemesis: what faults cost a real cluster. Three `lib/cli.ts serve` members run as child
 * processes on loopback (durable LMDB in a fresh temporary folder) while a `RaftClient` in this
 * process writes continuously (KV puts, `--writers` in flight; each write's call and answer time
 * recorded). Every few seconds one fault hits the leader or a follower, drawn from a seeded deck
 * so the four kinds come round evenly:
 *
 * - kill: SIGKILL, then restart after a seeded 0.5–1.5 s down (`--down-ms`);
 * - stop: SIGSTOP, then SIGCONT after a seeded 1–3 s (`--pause-ms`).
 *
 * Per fault it prints the longest stretch without an acknowledged write from the fault to the next
 * one (`gapMs`), and for a kill how long the restarted member took to catch up: from its respawn
 * until its applied index, polled through its own status over its client port, reaches the
 * leader's commit index at the respawn (`catchUpMs`; `readyMs` is the part spent booting, and
 * `fedMs` the time until its commit index got there, i.e. until the leader had fed it: the rest
 * is the member applying its log, which a restart replays from its last snapshot). Then
 * p50 and max of each per kind and role. Faults do not overlap: the next waits for the catch-up.
 *
 * A stopped leader also stalls the client on its connection until the request times out (bug 9,
 * a client matter): read the stop-leader row apart from the others.
 *
 * `--repo DIR` runs another checkout's `lib/cli.ts` (its `node_modules` linked), to measure code
 * before a change with this same script. It ends every process it started, by pid, also on Ctrl-C
 * or SIGTERM, and removes its data folder.
 *
 * Usage: `tsx bench/nemesis.bench.ts [--seconds 60] [--runtime node|bun|deno] [--seed 1]
 * [--repo DIR] [--writers 4] [--fault-every-ms 5000] [--down-ms 500-1500] [--pause-ms 1000-3000]
 * [--json FILE]`. Tables on stdout, progress on stderr.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { ClientError, RaftClient } from '../lib/client/client.ts';
import { parseArgs, UsageError } from '../lib/cli/args.ts';
import { localMembers } from '../lib/cli/processes.ts';
import { randomInt, seededRandom } from '../lib/core/random.ts';
import { currentRuntime, repoRoot, type Runtime, runtimes } from '../lib/runtime.ts';
import {
  countBetween,
  type FaultKind,
  type FaultRecord,
  longestGapMs,
  summarize,
  type TargetRole,
} from './support/nemesis-analysis.ts';
import { NemesisCluster } from './support/nemesis-cluster.ts';
import { table } from './support/report.ts';
import type { Row } from './support/rows.ts';

/** Writes before the first fault, in ms: the cluster settles and the client finds the leader. */
const warmupMs = 3_000;
/** A fault starts only if its window can last this long before the end of the run, in ms. */
const faultWindowMsMin = 4_000;
/** After a fault is over (catch-up reached or resumed), this long passes before the next, in ms. */
const settleMs = 1_000;
/** Longest down time or pause a flag may ask for, in ms. */
const outageMsMax = 600_000;
/** Longest wait for a leader before a fault (or for the catch-up target), in ms. */
const leaderWaitMsMax = 10_000;
/** Longest catch-up measured; beyond it the fault records none, in ms. */
const catchUpMsMax = 30_000;
/** How often the restarted member's status is polled, in ms. */
const pollMs = 10;
/** A write that failed waits this long before the next, in ms. */
const failedWritePauseMs = 20;
/** One write's deadline (retries included), in ms. */
const requestTimeoutMs = 3_000;
/** Bytes of each put's value. */
const valueBytes = 64;

/** A `MIN-MAX` flag in ms, 0 <= MIN <= MAX <= `outageMsMax`. */
function rangeFlag(name: string): [number, number] {
  const text = String(flags[name]);
  const match = /^(\d+)-(\d+)$/.exec(text);
  const [min, max] = match === null ? [NaN, NaN] : [Number(match[1]), Number(match[2])];
  if (!(min <= max && max <= outageMsMax)) {
    usage(`Flag --${name}: expected MIN-MAX in ms up to ${outageMsMax}, got ${text}`);
  }
  return [min, max];
}

function usage(message: string, code = 2): never {
  process.stderr.write(
    `${message}\nusage: bench/nemesis.bench.ts [--seconds 60] [--runtime node|bun|deno] [--seed 1] [--repo DIR] [--writers 4] [--fault-every-ms 5000] [--down-ms 500-1500] [--pause-ms 1000-3000] [--json FILE]\n`,
  );
  process.exit(code);
}

let flags: Record<string, string | number | boolean | undefined>;
try {
  const parsed = parseArgs(process.argv.slice(2), {
    seconds: { kind: 'int', help: 'length of the run', default: 60, min: 10, max: 3_600 },
    runtime: { kind: 'string', help: 'runtime of the members', default: 'bun' },
    seed: { kind: 'int', help: 'seed of the fault schedule', default: 1, min: 0 },
    repo: { kind: 'string', help: 'checkout whose lib/cli.ts runs', default: repoRoot },
    writers: { kind: 'int', help: 'writes in flight', default: 4, min: 1, max: 1_024 },
    'down-ms': { kind: 'string', help: 'kill: down time range, MIN-MAX', default: '500-1500' },
    'pause-ms': { kind: 'string', help: 'stop: pause range, MIN-MAX', default: '1000-3000' },
    'fault-every-ms': {
      kind: 'int',
      help: 'mean time between faults',
      default: 5_000,
      min: 2_000,
      max: 600_000,
    },
    json: { kind: 'string', help: 'write faults, summary and writes as JSON' },
  });
  if (parsed.help) usage('Nemesis: faults against a 3-member cluster (see the module comment)', 0);
  flags = parsed.flags;
} catch (error) {
  if (error instanceof UsageError) usage(error.message);
  throw error;
}
const runtime = String(flags['runtime']) as Runtime;
if (!runtimes.includes(runtime)) {
  usage(`Flag --runtime: expected node, bun or deno, got ${runtime}`);
}
const durationMs = Number(flags['seconds']) * 1000;
const seed = Number(flags['seed']);
const repo = resolve(String(flags['repo']));
if (!existsSync(join(repo, 'lib', 'cli.ts'))) usage(`Flag --repo: no lib/cli.ts in ${repo}`);
const writerCount = Number(flags['writers']);
const faultEveryMs = Number(flags['fault-every-ms']);
const jsonPath = flags['json'] === undefined ? null : String(flags['json']);
const [downMsMin, downMsMax] = rangeFlag('down-ms');
const [pauseMsMin, pauseMsMax] = rangeFlag('pause-ms');
const random = seededRandom(seed);

const say = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const fmt = (n: number | null) => n === null ? '-' : String(Math.round(n));

function commitOf(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
      .trim();
  } catch {
    return 'unknown';
  }
}

// Recorded writes: call and answer times (ms since start), whether acknowledged, in answer order.
const callMs: number[] = [];
const answerMs: number[] = [];
const writeOk: boolean[] = [];
const ackMs: number[] = [];
const failMs: number[] = [];
const errorCodes = new Map<string, number>();

const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-nemesis-'));
const members = await localMembers(3);
const cluster = new NemesisCluster({ repo, runtime, dataRoot, members });
let client: RaftClient | null = null;
let writing = false;
let cleaning: Promise<void> | null = null;

/** End every member we started, close the client, remove the data folder. Idempotent. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    writing = false;
    await client?.close().catch(() => {});
    await cluster.stopAll();
    rmSync(dataRoot, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    say(`nemesis: ${signal}: stopping every member (pids ${cluster.pids().join(', ')})`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

const startedMs = performance.now();
const now = () => performance.now() - startedMs;

async function writer(w: number): Promise<void> {
  const value = 'v'.repeat(valueBytes);
  let n = 0;
  while (writing) {
    const key = `w${w}-${n++}`;
    const calledAt = now();
    let ok = true;
    try {
      await client!.command({ op: 'put', key, value });
    } catch (error) {
      ok = false;
      const code = error instanceof ClientError ? error.code : String(error);
      errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
    }
    const answeredAt = now();
    callMs.push(calledAt);
    answerMs.push(answeredAt);
    writeOk.push(ok);
    (ok ? ackMs : failMs).push(answeredAt);
    if (!ok) await sleep(failedWritePauseMs);
  }
}

async function waitForLeader(): Promise<Awaited<ReturnType<NemesisCluster['leader']>>> {
  const deadline = now() + leaderWaitMsMax;
  while (now() < deadline) {
    const leader = await cluster.leader();
    if (leader !== null) return leader;
    await sleep(pollMs * 5);
  }
  return null;
}

/** The four kinds of fault in a seeded order, dealt again when used up. */
function dealer(): () => { kind: FaultKind; role: TargetRole } {
  let deck: { kind: FaultKind; role: TargetRole }[] = [];
  return () => {
    if (deck.length === 0) {
      deck = [
        { kind: 'kill', role: 'leader' },
        { kind: 'kill', role: 'follower' },
        { kind: 'stop', role: 'leader' },
        { kind: 'stop', role: 'follower' },
      ];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = randomInt(random, 0, i + 1);
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
    }
    return deck.pop()!;
  };
}

type Applied = Omit<FaultRecord, 'windowEndMs' | 'gapMs' | 'acked' | 'failed'>;

async function applyFault(
  index: number,
  kind: FaultKind,
  role: TargetRole,
): Promise<Applied | null> {
  const leader = await waitForLeader();
  if (leader === null) {
    say(`nemesis: fault ${index}: no leader within ${leaderWaitMsMax} ms, skipped`);
    return null;
  }
  const followers = cluster.ids.filter((id) => id !== leader.id && cluster.live(id));
  const target = role === 'leader' ? leader.id : followers[randomInt(random, 0, followers.length)];
  if (target === undefined) return null;
  const atMs = now();
  if (kind === 'stop') {
    const pauseMs = randomInt(random, pauseMsMin, pauseMsMax + 1);
    cluster.pause(target);
    await sleep(pauseMs);
    cluster.resume(target);
    return {
      index,
      kind,
      role,
      target,
      atMs,
      outageMs: now() - atMs,
      readyMs: null,
      fedMs: null,
      catchUpMs: null,
      targetIndex: null,
    };
  }
  const downMs = randomInt(random, downMsMin, downMsMax + 1);
  await cluster.kill(target);
  const exitedMs = now();
  await sleep(downMs - (exitedMs - atMs));
  const targetIndex = (await waitForLeader())?.commitIndex ?? null;
  const respawnMs = now();
  await cluster.restart(target);
  const readyMs = now() - respawnMs;
  let fedMs: number | null = null;
  let catchUpMs: number | null = null;
  while (targetIndex !== null && now() - respawnMs < catchUpMsMax) {
    const status = await cluster.status(target);
    if (status !== null && fedMs === null && status.commitIndex >= targetIndex) {
      fedMs = now() - respawnMs;
    }
    if (status !== null && status.lastAppliedIndex >= targetIndex) {
      catchUpMs = now() - respawnMs;
      break;
    }
    await sleep(pollMs);
  }
  return {
    index,
    kind,
    role,
    target,
    atMs,
    outageMs: respawnMs - atMs,
    readyMs,
    fedMs,
    catchUpMs,
    targetIndex,
  };
}

let exitCode = 1;
try {
  say(
    `nemesis: 3 members under ${runtime} from ${repo} (${commitOf(repo)}), seed ${seed}, ${
      durationMs / 1000
    } s, data in ${dataRoot}`,
  );
  await cluster.startAll();
  say(`nemesis: members up, pids ${cluster.pids().join(', ')}`);
  client = await RaftClient.connect({ servers: cluster.clientAddresses(), requestTimeoutMs });
  writing = true;
  const writers = Array.from({ length: writerCount }, (_, w) => writer(w));
  const deal = dealer();
  const applied: Applied[] = [];
  let nextMs = warmupMs;
  while (cleaning === null) {
    await sleep(nextMs - now());
    if (now() + faultWindowMsMin > durationMs || cleaning !== null) break;
    const { kind, role } = deal();
    const fault = await applyFault(applied.length + 1, kind, role);
    if (fault !== null) {
      applied.push(fault);
      say(
        `nemesis: fault ${fault.index} at ${
          (fault.atMs / 1000).toFixed(1)
        } s: ${kind} ${role} ${fault.target}` +
          (kind === 'kill'
            ? `, down ${fmt(fault.outageMs)} ms, fed in ${fmt(fault.fedMs)} ms, caught up in ${
              fmt(fault.catchUpMs)
            } ms`
            : `, paused ${fmt(fault.outageMs)} ms`),
      );
    }
    const spacingMs = randomInt(
      random,
      Math.round(faultEveryMs * 0.8),
      Math.round(faultEveryMs * 1.2),
    );
    nextMs = Math.max((fault?.atMs ?? now()) + spacingMs, now() + settleMs);
  }
  await sleep(durationMs - now());
  writing = false;
  await Promise.all(writers);
  const endMs = now();

  const faults: FaultRecord[] = applied.map((f, i) => {
    const windowEndMs = applied[i + 1]?.atMs ?? endMs;
    return {
      ...f,
      windowEndMs,
      gapMs: longestGapMs(ackMs, f.atMs, windowEndMs),
      acked: countBetween(ackMs, f.atMs, windowEndMs),
      failed: countBetween(failMs, f.atMs, windowEndMs),
    };
  });
  const faultRows: Row[] = faults.map((f) => ({
    fault: String(f.index),
    kind: f.kind,
    role: f.role,
    target: f.target,
    atS: Math.round(f.atMs / 100) / 10,
    outageMs: Math.round(f.outageMs),
    gapMs: Math.round(f.gapMs),
    ...(f.readyMs === null ? {} : { readyMs: Math.round(f.readyMs) }),
    ...(f.kind === 'kill'
      ? {
        fedMs: f.fedMs === null ? -1 : Math.round(f.fedMs),
        catchUpMs: f.catchUpMs === null ? -1 : Math.round(f.catchUpMs),
        targetIndex: f.targetIndex ?? -1,
      }
      : {}),
    acked: f.acked,
    failed: f.failed,
  }));
  const summaryRows: Row[] = summarize(faults).filter((r) => r.faults > 0).map((r) => ({
    kind: r.kind,
    role: r.role,
    faults: r.faults,
    gapMsP50: Math.round(r.gapMsP50 ?? -1),
    gapMsMax: Math.round(r.gapMsMax ?? -1),
    ...(r.kind === 'kill'
      ? {
        fedMsP50: Math.round(r.fedMsP50 ?? -1),
        fedMsMax: Math.round(r.fedMsMax ?? -1),
        catchUpMsP50: Math.round(r.catchUpMsP50 ?? -1),
        catchUpMsMax: Math.round(r.catchUpMsMax ?? -1),
      }
      : {}),
  }));
  const acked = ackMs.length;
  const errors = [...errorCodes].map(([code, n]) => `${code} ${n}`).join(', ') || 'none';
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `nemesis: ${runtime} members from ${repo} (${commitOf(repo)}), seed ${seed}, ${
      (endMs / 1000).toFixed(1)
    } s, ${writerCount} writers: ${acked} writes acknowledged (${
      Math.round(acked / (endMs / 1000))
    }/s), failed: ${errors}`,
  );
  out('');
  out(table(faultRows));
  out('');
  out(table(summaryRows));
  out('');
  out(
    'fedMs: respawn until its commit index reached the target (the leader fed it); catchUpMs: ' +
      'until its applied index did; -1: not within the limit. A stopped leader also stalls the ' +
      'client (bug 9).',
  );
  if (jsonPath !== null) {
    writeFileSync(
      jsonPath,
      JSON.stringify(
        {
          runtime,
          repo,
          commit: commitOf(repo),
          seed,
          seconds: endMs / 1000,
          writers: writerCount,
          faults: faultRows,
          summary: summaryRows,
          writes: callMs.map((c, i) => [
            Math.round(c * 10) / 10,
            Math.round(answerMs[i]! * 10) / 10,
            writeOk[i] ? 1 : 0,
          ]),
        },
      ) + '\n',
    );
  }
  exitCode = 0;
} catch (error) {
  say(`nemesis: failed: ${(error as Error).stack ?? String(error)}`);
  for (const id of cluster.ids) {
    const tail = cluster.stderrTail(id).slice(-5);
    if (tail.length > 0) say(`  ${id} stderr: ${tail.join(' | ')}`);
  }
} finally {
  await cleanup();
}
say(`nemesis: stopped every member, removed ${dataRoot} (${currentRuntime()} driver)`);
process.exit(exitCode);
