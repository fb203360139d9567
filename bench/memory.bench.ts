/**
 * Whether each member's resident memory stays bounded under load, in this runtime: three `serve`
 * members on loopback (KV machine, durable LMDB in a fresh temporary folder), a client process
 * keeping `--inflight` 100-byte puts in flight the whole time (sessions on and off alternating),
 * and three phases: `--steady-s` seconds of plain load, then `--pause-s` seconds with one follower
 * stopped (SIGSTOP, by its pid) under the same load, then `--recover-s` seconds after SIGCONT.
 * Every second it reads each member's RSS from `/proc/PID/status`. Per member and phase it prints
 * the peak, the mean of the phase's first and last fifth (a bound holds when the last is not far
 * above the first: growth that does not level off would show there), and the peak over the whole
 * run (`VmHWM`). What should bound a member: the leader's uncommitted-bytes quota and the client
 * port's in-flight limits for proposals, the per-peer in-flight window and byte bound of each
 * connection for a stopped follower's share (its log entries wait in LMDB, not in memory).
 *
 * Usage: `tsx bench/memory.bench.ts [--inflight 256] [--steady-s 60] [--pause-s 30]
 * [--recover-s 10]`; `npm run bench:memory` runs it under Node, Bun and Deno (Linux only: it
 * reads `/proc`). Prints a table on stderr and one ROW line per member and phase on stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { LocalCluster, localMembers } from '../lib/cli/processes.ts';
import { currentRuntime } from '../lib/runtime.ts';
import { cpuUs, memoryKb } from './support/proc-stats.ts';
import { runClusterClient } from './support/run-cluster-client.ts';
import { printRow, progress } from './support/rows.ts';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  const value = at === -1 ? fallback : Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`Flag ${name}: ${value}`);
  return value;
}
const inflight = flag('--inflight', 256);
const steadyS = flag('--steady-s', 60);
const pauseS = flag('--pause-s', 30);
const recoverS = flag('--recover-s', 10);
const runtime = currentRuntime();
if (process.platform !== 'linux') throw new Error('bench:memory reads /proc: Linux only');

type Phase = 'steady' | 'paused' | 'recovered';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-bench-memory-'));
progress(`${runtime}: starting 3 members in ${dataRoot}`);
const cluster = await LocalCluster.start({
  members: await localMembers(3),
  dataRoot,
  cluster: 'bench-memory',
  runtime,
});
const pids = new Map([...cluster.processes].map(([id, p]) => [id, p.child.pid!]));
let stopped: number | null = null;
try {
  const warmupMs = 2_000;
  const totalMs = (steadyS + pauseS + recoverS) * 1000;
  const load = runClusterClient(cluster.clientAddresses(), {
    inflight: String(inflight),
    durationMs: totalMs + 2_000,
    warmupMs,
    commandBytes: 100,
    runtime,
    onProgress: (line) => progress(`${runtime}: ${line}`),
  });
  await sleep(warmupMs + 1_000);
  const samples = new Map<string, { phase: Phase; rssKb: number }[]>();
  for (const id of pids.keys()) samples.set(id, []);
  const sample = (phase: Phase) => {
    for (const [id, pid] of pids) {
      const m = memoryKb(pid);
      if (m !== null) samples.get(id)!.push({ phase, rssKb: m.rssKb });
    }
  };
  // The leader works hardest: pick a follower as the one that used the least CPU in a second.
  const cpuBefore = new Map([...pids].map(([id, pid]) => [id, cpuUs(pid) ?? 0]));
  for (let s = 0; s < steadyS; s++) {
    sample('steady');
    await sleep(1_000);
  }
  const used = [...pids].map(([id, pid]) => [id, (cpuUs(pid) ?? 0) - cpuBefore.get(id)!] as const)
    .sort((a, b) => a[1] - b[1]);
  const paused = used[0]![0];
  stopped = pids.get(paused)!;
  progress(`${runtime}: SIGSTOP follower ${paused} (pid ${stopped}) for ${pauseS} s`);
  process.kill(stopped, 'SIGSTOP');
  for (let s = 0; s < pauseS; s++) {
    sample('paused');
    await sleep(1_000);
  }
  process.kill(stopped, 'SIGCONT');
  stopped = null;
  progress(`${runtime}: SIGCONT ${paused}`);
  for (let s = 0; s < recoverS; s++) {
    sample('recovered');
    await sleep(1_000);
  }
  const results = await load;
  const mib = (kb: number) => Math.round(kb / 102.4) / 10;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  progress(
    `${runtime}: member   role      phase       RSS first 1/5  last 1/5  peak (MiB)  VmHWM`,
  );
  for (const [id, list] of samples) {
    const peakKb = memoryKb(pids.get(id)!)?.peakKb ?? NaN;
    const role = id === paused ? 'paused' : 'active';
    for (const phase of ['steady', 'paused', 'recovered'] as const) {
      const rss = list.filter((s) => s.phase === phase).map((s) => s.rssKb);
      if (rss.length === 0) continue;
      const fifth = Math.max(1, Math.floor(rss.length / 5));
      const row = {
        bench: 'memory',
        runtime,
        member: id,
        role,
        phase,
        inflight: String(inflight),
        rssFirstMb: mib(mean(rss.slice(0, fifth))),
        rssLastMb: mib(mean(rss.slice(-fifth))),
        rssPeakMb: mib(Math.max(...rss)),
        vmHwmMb: mib(peakKb),
      };
      printRow(row);
      progress(
        `${runtime}: ${id.padEnd(8)} ${role.padEnd(9)} ${phase.padEnd(11)} ${
          String(row.rssFirstMb).padStart(14)
        } ${String(row.rssLastMb).padStart(9)} ${String(row.rssPeakMb).padStart(11)} ${
          String(row.vmHwmMb).padStart(6)
        }`,
      );
    }
  }
  for (const r of results) {
    progress(
      `${runtime}: load: ${r.commandsPerSec} commands/s (sessions ${
        r.sessions ? 'on' : 'off'
      }), ${r.errors} errors${r.firstError === null ? '' : ` (first: ${r.firstError})`}`,
    );
  }
} finally {
  if (stopped !== null) process.kill(stopped, 'SIGCONT');
  await cluster.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
}
