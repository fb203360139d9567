/**
 * Investigation probe: where one command's time goes in a 3-member cluster. Starts three
 * `bench/support/traced-serve.ts` members (durable LMDB in a fresh temporary folder, deleted after),
 * runs `bench/support/cluster-client.ts` against them at one in-flight setting, stops the members
 * (SIGTERM, by pid) so they write their traces, and prints, per stage of the commit path, the
 * median and p90 time from the leader receiving the command (`proposeBytes`) to that stage.
 *
 * Per member it also prints its event-loop stalls over 50 ms, GC pauses over 20 ms and the votes
 * it sent, in ms after the first proposal: a stall every member has at once is their own work.
 *
 * Usage: `tsx bench/support/cluster-trace.ts [--inflight 1] [--duration-ms 3000] [--size 3]
 * [--sessions on,off] [--snapshot-entries N] [--cpu-prof DIR]` (`--cpu-prof`: run the members
 * under `node --cpu-prof`, profiles in DIR/ID/)
 *
 * @example
 * ```sh
 * node_modules/.bin/tsx bench/support/cluster-trace.ts --inflight 256
 * ```
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { type ChildProcess, spawn } from 'node:child_process';
import { localMembers, signalAndWait } from '../../lib/cli/processes.ts';
import { repoRoot, spawnTs } from '../../lib/runtime.ts';
import { watchChild } from './children.ts';
import type { TraceEvent } from './traced-serve.ts';
import type { CommandTimes } from './load.ts';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return (at === -1 ? undefined : process.argv[at + 1]) ?? fallback;
}
const inflight = flag('--inflight', '1');
const durationMs = flag('--duration-ms', '3000');
const profileDir = flag('--cpu-prof', '');
const size = Number(flag('--size', '3'));
const snapshotEntries = flag('--snapshot-entries', '');

const dir = mkdtempSync(join(tmpdir(), 'edgeraft-trace-'));
const children: ChildProcess[] = [];
try {
  const members = await localMembers(size);
  const membersFlag = members.map((m) => `${m.id}=${m.address}/${m.clientAddress}`).join(',');
  for (const m of members) {
    const serveArgs = [
      '--id',
      m.id,
      '--data',
      join(dir, m.id),
      '--members',
      membersFlag,
      '--cluster',
      'bench',
      '--trace',
      join(dir, `${m.id}.json`),
      ...(snapshotEntries === '' ? [] : ['--snapshot-entries', snapshotEntries]),
    ];
    // With --cpu-prof DIR, each member runs under `node --cpu-prof` (Node only).
    const child = profileDir === ''
      ? spawnTs('bench/support/traced-serve.ts', serveArgs)
      : spawn(process.execPath, [
        `--cpu-prof`,
        `--cpu-prof-dir=${join(profileDir, m.id)}`,
        '--import',
        `${repoRoot}node_modules/tsx/dist/loader.mjs`,
        `${repoRoot}bench/support/traced-serve.ts`,
        ...serveArgs,
      ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
  }
  await Promise.all(children.map((c, i) => watchChild(members[i]!.id, c).readyLine(30_000)));
  const client = spawnTs('bench/support/cluster-client.ts', [
    '--servers',
    members.map((m) => m.clientAddress).join(','),
    '--inflight',
    inflight,
    '--duration-ms',
    durationMs,
    '--warmup-ms',
    '500',
    '--sessions',
    flag('--sessions', 'on,off'),
    '--times',
    join(dir, 'client.json'),
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  await new Promise((r) => client.once('close', r));
  await Promise.all(children.map((c) => signalAndWait(c, 'SIGTERM', 15_000)));
  const traces = members.map((m) =>
    JSON.parse(readFileSync(join(dir, `${m.id}.json`), 'utf8')) as Trace
  );
  const times = JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')) as CommandTimes;
  analyse(traces, times);
} finally {
  for (const c of children) await signalAndWait(c, 'SIGKILL', 5_000);
  rmSync(dir, { recursive: true, force: true });
}

/** For events of `kind` in time order, the first time each index up to the event's `a` is covered. */
function firstCover(
  events: TraceEvent[],
  kind: string,
  at: (e: TraceEvent) => number,
): Map<number, number> {
  const out = new Map<number, number>();
  let covered = 0;
  for (const e of events) {
    if (e.k !== kind || (e.a ?? 0) <= covered) continue;
    for (let i = covered + 1; i <= e.a!; i++) out.set(i, at(e));
    covered = e.a!;
  }
  return out;
}
/** For range events (`a`..`b`) of `kind`, the time each index is covered. */
function rangeCover(
  events: TraceEvent[],
  kind: string,
  at: (e: TraceEvent) => number,
): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of events) {
    if (e.k !== kind || e.b === undefined || e.a === undefined || e.a === 0) continue;
    for (let i = e.a; i <= e.b; i++) if (!out.has(i)) out.set(i, at(e));
  }
  return out;
}

type Trace = { id: string; role: string; events: TraceEvent[]; cpuMs: number; upMs: number };

function analyse(traces: Trace[], times: CommandTimes): void {
  // Times of stalls, GC pauses and votes are in ms after the first proposal any member made.
  const origin = Math.min(
    ...traces.map((t) => t.events.find((e) => e.k === 'proposed')?.t ?? Infinity),
  );
  const since = (ms: number) => (ms - origin).toFixed(0);
  for (const t of traces) {
    process.stdout.write(
      `  ${t.id}: CPU ${t.cpuMs.toFixed(0)} ms over ${t.upMs.toFixed(0)} ms up\n`,
    );
    // Event-loop stalls over 50 ms (start + length), GC pauses over 20 ms, votes sent.
    const stalls = t.events.filter((e) => e.k === 'loop:gap').map((e) =>
      `${since(e.t - e.a!)}+${e.a!.toFixed(0)}`
    );
    const gcs = t.events.filter((e) => e.k === 'gc').map((e) =>
      `${since(e.t)}+${e.a!.toFixed(0)} (kind ${e.b})`
    );
    const votes = t.events.filter((e) => e.k === 'send:vote').map((e) => since(e.t));
    process.stdout.write(
      `  ${t.id}: ms after the first proposal: event loop stalled at ${
        stalls.join(', ') || '-'
      }; GC paused at ${gcs.join(', ') || '-'}; votes sent at ${votes.join(', ') || '-'}\n`,
    );
  }
  // The leader proposed the most (a follower's few are the client's first commands, forwarded).
  const proposedCount = (t: Trace) => t.events.filter((e) => e.k === 'proposed').length;
  const leader = traces.reduce((a, b) => (proposedCount(b) > proposedCount(a) ? b : a));
  const followers = traces.filter((t) => t !== leader);
  const proposed = leader.events.filter((e) => e.k === 'proposed').sort((x, y) => x.a! - y.a!);
  const L = leader.events;
  const stages: [string, Map<number, number>][] = [
    ['leader: append sent to first follower', firstCover(L, 'send:append', (e) => e.t)],
    ['leader: own write started', rangeCover(L, 'write', (e) => e.t)],
    ['leader: own write durable', rangeCover(L, 'write', (e) => Number(e.s))],
  ];
  for (const f of followers) {
    const F = f.events;
    stages.push(
      [`${f.id}: append received`, firstCover(F, 'recv:append', (e) => e.t)],
      [`${f.id}: write started`, rangeCover(F, 'write', (e) => e.t)],
      [`${f.id}: write durable`, rangeCover(F, 'write', (e) => Number(e.s))],
      [`${f.id}: ack sent`, firstCover(F, 'send:appendResponse', (e) => e.t)],
    );
  }
  for (const f of followers) {
    const acks = L.filter((e) => e.k === 'recv:appendResponse' && e.s === f.id);
    stages.push([
      `leader: ack from ${f.id} received`,
      firstCover(acks, 'recv:appendResponse', (e) => e.t),
    ]);
  }
  stages.push(
    ['leader: handed to executor (committed)', rangeCover(L, 'apply', (e) => e.t)],
    ['leader: proposeBytes settled', new Map(proposed.map((e) => [e.a!, e.b!]))],
  );
  const q = (xs: number[], f: number) => {
    const s = Float64Array.from(xs).sort();
    return s[Math.min(s.length - 1, Math.ceil(f * s.length) - 1)] ?? NaN;
  };
  // Skip the warm-up third.
  const sample = proposed.slice(Math.floor(proposed.length / 3));
  process.stdout.write(
    `\n${sample.length} commands, leader ${leader.id}, inflight ${inflight}; ms after proposeBytes:\n`,
  );
  for (const [name, times] of stages) {
    const deltas: number[] = [];
    for (const p of sample) {
      const t = times.get(p.a!);
      if (t !== undefined) deltas.push(t - p.t);
    }
    process.stdout.write(
      `  ${name.padEnd(42)} p50 ${q(deltas, 0.5).toFixed(3).padStart(8)}  p90 ${
        q(deltas, 0.9).toFixed(3).padStart(8)
      }  (n ${deltas.length})\n`,
    );
  }
  // The client's side, matched at 1 in flight only (one command at a time: the leader's next
  // proposal after a send is that command): from the client's send to the leader's receipt, and
  // from the leader's answer to the client's receipt (both include the client's own work).
  if (inflight === '1') {
    const settledAt = new Map(proposed.map((e) => [e.t, e.b!]));
    const starts = proposed.map((e) => e.t);
    const toLeader: number[] = [];
    const back: number[] = [];
    const whole: number[] = [];
    let j = 0;
    for (let i = 0; i < times.sentMs.length; i++) {
      const sent = times.sentMs[i]!;
      const answered = times.answeredMs[i]!;
      while (j < starts.length && starts[j]! < sent) j++;
      const at = starts[j];
      if (at === undefined || at > answered) continue;
      toLeader.push(at - sent);
      back.push(answered - settledAt.get(at)!);
      whole.push(answered - sent);
    }
    const line = (name: string, xs: number[]) =>
      process.stdout.write(
        `  ${name.padEnd(42)} p50 ${q(xs, 0.5).toFixed(3).padStart(8)}  p90 ${
          q(xs, 0.9).toFixed(3).padStart(8)
        }  (n ${xs.length})\n`,
      );
    process.stdout.write(`client side (ms):\n`);
    line('client send -> leader proposeBytes', toLeader);
    line('leader settled -> client has the answer', back);
    line('client send -> client has the answer', whole);
  }
  const writes = L.filter((e) => e.k === 'write' && e.a! > 0);
  const sizes = writes.map((e) => e.b! - e.a! + 1);
  const durs = writes.map((e) => Number(e.s) - e.t);
  process.stdout.write(
    `  leader writes: ${writes.length}, entries per write p50 ${q(sizes, 0.5)} max ${
      Math.max(...sizes)
    }, write ms p50 ${q(durs, 0.5).toFixed(3)} p90 ${q(durs, 0.9).toFixed(3)}\n`,
  );
  for (const t of traces) {
    const kinds = new Map<string, number>();
    for (const e of t.events) {
      const k = e.k === 'write' ? (e.a === 0 ? 'write(no entries)' : 'write(entries)') : e.k;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    process.stdout.write(
      `  ${t.id} counts: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}\n`,
    );
  }
  for (const f of followers) {
    const fw = f.events.filter((e) => e.k === 'write' && e.a! > 0);
    const fd = fw.map((e) => Number(e.s) - e.t);
    const fs = fw.map((e) => e.b! - e.a! + 1);
    process.stdout.write(
      `  ${f.id} writes: ${fw.length}, entries per write p50 ${q(fs, 0.5)}, write ms p50 ${
        q(fd, 0.5).toFixed(3)
      } p90 ${q(fd, 0.9).toFixed(3)}\n`,
    );
  }
}
