/**
 * Committed commands per second and latency of a real cluster, in this runtime: three `serve`
 * members as child processes on loopback (KV state machine, durable LMDB in a fresh temporary
 * folder), and a client in a separate process (`bench/support/cluster-client.ts`) that keeps 1,
 * 16 and 256 `put` commands of 100 encoded bytes in flight for `--duration-ms` each after a
 * warm-up, once with every command in an exactly-once session (the client's default) and once
 * without (the `sessions` column), alternating. A command counts when the leader has applied it
 * and answered. Servers and client run under the runtime this bench runs in.
 *
 * In the same run, under the same load (in-flight settings, durations, 100-byte commands):
 * - the ceiling (always, unless `--ceiling off`): three processes doing only what the
 *   architecture physically needs, with no Raft, validation or state machine
 *   (`bench/support/ceiling-member.ts`); `vsCeiling` is edgeraft's commands/s over the ceiling's.
 * - with `--against etcd`, a 3-member etcd from the `etcd` binary on the PATH
 *   (`bench/support/etcd-cluster.ts`), driven through its HTTP/JSON gateway with 100-byte values
 *   (`bench/support/target-etcd.ts`); `vsEtcd` is edgeraft's commands/s over etcd's, or says
 *   that no etcd was found (nothing fails then) or that etcd failed (the run fails, after
 *   printing edgeraft's rows).
 * - with `--tls on`, edgeraft again with mutual TLS on the peer port and TLS with bearer-token
 *   auth on the client port (certificates made by openssl in a temporary folder; one certificate
 *   naming all three members); its rows say `tls on`, and `vsPlain` is its commands/s over those
 *   of the plaintext run at the same setting: the throughput cost of TLS.
 * The systems run one after the other, each alone on the machine.
 *
 * Per setting and system also: CPU µs per committed command of the leader, of the followers (their
 * mean) and of the client, from `/proc/PID/stat` over the setting's spans; CPU shares (CPU time
 * over wall time, 1 = a whole core) of the client (near 1 would make the client the bottleneck),
 * of the leader, and of all four processes together (the machine's cores bound it); and peak
 * resident memory so far (`VmHWM`) of the leader and of the larger follower, in MiB. Linux only;
 * elsewhere these are blank.
 *
 * Goals on a 2-core machine: at least 2,000/s with p50 at most 0.5 ms at 1 in flight, and at
 * least 65,000/s with p99 at most 10 ms at 256 in flight (etcd 3.4 on such a machine: about
 * 1,000/s at 1 in flight, 6,700/s at 256).
 *
 * After the Node run, with 1 in flight among the settings (unless `--breakdown off`): one
 * command's life stage by stage at 1 in flight (client to leader, leader's write, leader to
 * followers, their writes, acks back, commit, answer, back to the client), p50 and p90 of each,
 * from `bench/support/cluster-trace.ts` (members under Node, instrumented), as `cluster-breakdown`
 * rows.
 *
 * Usage: `tsx bench/cluster.bench.ts [--duration-ms 3000] [--warmup-ms 1000] [--inflight
 * 1,16,256] [--against etcd] [--ceiling on|off] [--tls on|off] [--breakdown on|off]`; `npm run bench:cluster` runs it under Node, Bun
 * and Deno (`npm run bench:cluster -- -- --against etcd`). Prints a human table on stderr and one ROW
 * line per setting and system on stdout (see bench/support/rows.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { LocalCluster, localMembers } from '../lib/cli/processes.ts';
import { currentRuntime, repoRoot, tsCommand } from '../lib/runtime.ts';
import { startCeilingCluster } from './support/ceiling-cluster.ts';
import type { RunningCluster } from './support/children.ts';
import type { ClusterClientResult, TargetName } from './support/cluster-result.ts';
import { findOnPath, startEtcdCluster, versionOf } from './support/etcd-cluster.ts';
import { runClusterClient } from './support/run-cluster-client.ts';
import { printRow, progress, type Row } from './support/rows.ts';
import { makeCerts, opensslMissing } from '../test/support/certs.ts';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return (at === -1 ? undefined : process.argv[at + 1]) ?? fallback;
}
const durationMs = Number(flag('--duration-ms', '3000'));
const warmupMs = Number(flag('--warmup-ms', '1000'));
const inflightList = flag('--inflight', '1,16,256');
const against = flag('--against', '').split(',').filter((a) => a !== '');
for (const a of against) if (a !== 'etcd') throw new RangeError(`Flag --against: ${a} (etcd)`);
const ceiling = flag('--ceiling', 'on');
if (ceiling !== 'on' && ceiling !== 'off') throw new RangeError(`Flag --ceiling: ${ceiling}`);
const breakdown = flag('--breakdown', 'on');
if (breakdown !== 'on' && breakdown !== 'off') {
  throw new RangeError(`Flag --breakdown: ${breakdown}`);
}
const tlsFlag = flag('--tls', 'off');
if (tlsFlag !== 'on' && tlsFlag !== 'off') throw new RangeError(`Flag --tls: ${tlsFlag}`);
if (tlsFlag === 'on' && opensslMissing() !== null) throw new Error(opensslMissing()!);
const commandBytes = 100;
const runtime = currentRuntime();
const etcdMissing = 'etcd not found on PATH';

/** The `serve` flags and client files of the TLS run, made once. */
type TlsSetup = { serveArgs: string[]; client: { ca: string; tokenFile: string } };

function tlsSetup(): TlsSetup & { remove: () => void } {
  const certs = makeCerts([]);
  const files = certs.issue('members', ['n1', 'n2', 'n3']);
  const tokenFile = join(certs.dir, 'token');
  writeFileSync(tokenFile, 'bench-token-0123456789abcdef\n');
  return {
    serveArgs: [
      ...['ca', 'cert', 'key'].flatMap((k) => [`--peer-tls-${k}`, files[k as 'ca']]),
      ...['ca', 'cert', 'key'].flatMap((k) => [`--client-tls-${k}`, files[k as 'ca']]),
      '--client-auth',
      'token',
      '--client-token-file',
      tokenFile,
    ],
    client: { ca: files.ca, tokenFile },
    remove: () => certs.remove(),
  };
}

async function startEdgeraft(tls: TlsSetup | null = null): Promise<RunningCluster> {
  const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-bench-cluster-'));
  progress(`${runtime}: starting 3 edgeraft members in ${dataRoot}`);
  let cluster: LocalCluster | null = null;
  const stop = async () => {
    await cluster?.stopAll();
    rmSync(dataRoot, { recursive: true, force: true });
  };
  try {
    cluster = await LocalCluster.start({
      members: await localMembers(3),
      dataRoot,
      cluster: 'bench',
      runtime,
      ...(tls === null ? {} : { serveArgs: tls.serveArgs }),
    });
    const watched = Object.fromEntries(
      [...cluster.processes].map(([id, p]) => [id, p.child.pid!]),
    );
    return { clientAddresses: cluster.clientAddresses(), watched, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Start a system, drive it with the bench client, stop it. */
async function measure(
  target: TargetName,
  start: () => Promise<RunningCluster>,
  tls: TlsSetup['client'] | null = null,
): Promise<ClusterClientResult[]> {
  const system = await start();
  try {
    return await runClusterClient(system.clientAddresses, {
      target,
      watched: system.watched,
      inflight: inflightList,
      durationMs,
      warmupMs,
      commandBytes,
      runtime,
      onProgress: (line) => progress(`${runtime}: ${line}`),
      ...(tls === null ? {} : { tls }),
    });
  } finally {
    await system.stop();
  }
}

const results: ClusterClientResult[] = await measure('edgeraft', () => startEdgeraft());
/** The TLS run's results (edgeraft with TLS on both ports), when `--tls on`. */
const tlsResults = new Set<ClusterClientResult>();
if (tlsFlag === 'on') {
  progress(`${runtime}: starting 3 edgeraft members with TLS`);
  const setup = tlsSetup();
  try {
    for (const r of await measure('edgeraft', () => startEdgeraft(setup), setup.client)) {
      tlsResults.add(r);
      results.push(r);
    }
  } finally {
    setup.remove();
  }
}
if (ceiling === 'on') {
  progress(`${runtime}: starting the ceiling`);
  results.push(...await measure('ceiling', () => startCeilingCluster(tmpdir(), runtime)));
}
/** What the `vsEtcd` column says instead of a ratio, or `null` when etcd was measured. */
let etcdNote: string | null = null;
let failed = false;
if (against.includes('etcd')) {
  const binary = findOnPath('etcd');
  if (binary === null) etcdNote = etcdMissing;
  else {
    progress(`${runtime}: starting 3 etcd members (${await versionOf(binary) ?? binary})`);
    try {
      results.push(...await measure('etcd', () => startEtcdCluster(binary, tmpdir())));
    } catch (error) {
      // edgeraft's rows are still printed; the run fails.
      etcdNote = 'etcd failed (see stderr)';
      failed = true;
      progress(`${runtime}: etcd failed: ${error}`);
    }
  }
  if (etcdNote !== null) progress(`${runtime}: ${etcdNote}`);
}

const mean = (xs: number[]) => xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
const mib = (kb: number | undefined) => kb === undefined ? NaN : Math.round((10 * kb) / 1024) / 10;

/** The leader's name: as the client reported it, else the member that used the most CPU. */
function leaderOf(r: ClusterClientResult): string | null {
  const members = Object.entries(r.cpuUsPerCommand).filter(([name]) => name !== 'client');
  if (r.leader !== null && members.some(([name]) => name === r.leader)) return r.leader;
  return members.sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

function rowOf(r: ClusterClientResult): Row {
  const peer = (system: TargetName) =>
    results.find((x) =>
      x.target === system && x.inflight === r.inflight && !tlsResults.has(x) &&
      (system !== 'edgeraft' || x.sessions === r.sessions)
    );
  const ratio = (other: ClusterClientResult | undefined) =>
    other === undefined || other.commandsPerSec === 0
      ? NaN
      : Math.round((100 * r.commandsPerSec) / other.commandsPerSec) / 100;
  const leader = leaderOf(r);
  const followers = Object.keys(r.cpuUsPerCommand).filter((n) => n !== 'client' && n !== leader);
  const row: Row = {
    bench: 'cluster',
    runtime,
    system: r.target,
    inflight: String(r.inflight),
    sessions: r.target === 'edgeraft' ? (r.sessions ? 'on' : 'off') : '-',
    tls: tlsResults.has(r) ? 'on' : 'off',
    commandBytes,
    commandsPerSec: r.commandsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    p999Ms: r.p999Ms,
    errors: r.errors,
  };
  if (tlsFlag === 'on' && r.target === 'edgeraft') {
    row['vsPlain'] = tlsResults.has(r) ? ratio(peer('edgeraft')) : '-';
  }
  if (r.target === 'edgeraft') {
    if (against.includes('etcd')) row['vsEtcd'] = etcdNote ?? ratio(peer('etcd'));
    if (ceiling === 'on') row['vsCeiling'] = ratio(peer('ceiling'));
  }
  row['leaderCpuUs'] = leader === null ? NaN : r.cpuUsPerCommand[leader] ?? NaN;
  row['followerCpuUs'] = Math.round(mean(followers.map((n) => r.cpuUsPerCommand[n]!)));
  row['clientCpuUs'] = r.cpuUsPerCommand['client'] ?? NaN;
  row['clientCpuShare'] = r.cpuShare['client'] ?? NaN;
  row['leaderCpuShare'] = leader === null ? NaN : r.cpuShare[leader] ?? NaN;
  row['allCpuShare'] = Math.round(100 * Object.values(r.cpuShare).reduce((a, b) => a + b, 0)) / 100;
  row['leaderRssMb'] = leader === null ? NaN : mib(r.peakRssKb[leader]);
  row['followerRssMb'] = Math.max(...followers.map((n) => mib(r.peakRssKb[n])));
  return row;
}

const order: TargetName[] = ['edgeraft', 'ceiling', 'etcd'];
const rows = results
  .sort((a, b) => a.inflight - b.inflight || order.indexOf(a.target) - order.indexOf(b.target))
  .map(rowOf);
progress(
  `${runtime}: system    tls  inflight  sessions  commands/s   p50 ms   p99 ms  errors  µs/cmd leader follower client  RSS MiB leader follower`,
);
for (const [i, row] of rows.entries()) {
  const r = results[i]!;
  const cell = (value: unknown, width: number) =>
    (typeof value === 'number'
      ? (Number.isInteger(value) ? String(value) : value.toFixed(3))
      : String(value ?? '')).padStart(width);
  progress(
    `${runtime}: ${String(row['system']).padEnd(8)}  ${cell(row['tls'], 3)}  ${
      cell(row['inflight'], 8)
    }  ${cell(row['sessions'], 8)}  ${cell(row['commandsPerSec'], 10)}  ${cell(row['p50Ms'], 7)}  ${
      cell(row['p99Ms'], 7)
    }  ${cell(row['errors'], 6)}  ${cell(row['leaderCpuUs'], 13)} ${
      cell(row['followerCpuUs'], 8)
    } ${cell(row['clientCpuUs'], 6)}  ${cell(row['leaderRssMb'], 14)} ${
      cell(row['followerRssMb'], 8)
    }${
      row['vsPlain'] === undefined || row['vsPlain'] === '-' ? '' : `  vsPlain ${row['vsPlain']}`
    }${r.firstError === null ? '' : `  first error: ${r.firstError}`}`,
  );
  printRow(row);
}

// One command's life at 1 in flight, stage by stage (p50 and p90 of each, from traces the members
// write: bench/support/cluster-trace.ts). Its members are instrumented Node processes whatever
// this bench's runtime, so it is run once, under Node, after the Node run only.
if (breakdown === 'on' && runtime === 'node' && inflightList.split(',').includes('1')) {
  progress(`${runtime}: latency breakdown at 1 in flight (bench/support/cluster-trace.ts)`);
  const { command, args } = tsCommand(
    `${repoRoot}bench/support/cluster-trace.ts`,
    ['--inflight', '1', '--duration-ms', String(durationMs)],
    'node',
  );
  const trace = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 + durationMs });
  for (const line of (trace.stdout ?? '').split('\n')) {
    const m = /^ {2}(.+?)\s+p50\s+([\d.]+)\s+p90\s+([\d.]+)\s+\(n \d+\)$/.exec(line.trimEnd());
    if (m === null) continue;
    progress(`${runtime}: ${line.trimEnd()}`);
    printRow({
      bench: 'cluster-breakdown',
      runtime,
      stage: m[1]!.trim(),
      p50Ms: Number(m[2]),
      p90Ms: Number(m[3]),
    });
  }
  if (trace.status !== 0) progress(`${runtime}: the breakdown failed: ${trace.stderr.slice(-500)}`);
}
process.exit(failed ? 1 : 0);
