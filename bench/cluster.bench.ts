/**
 * Committed commands per second and latency of a real cluster, in this runtime: three `serve`
 * members as child processes on loopback (KV state machine, durable LMDB in a fresh temporary
 * folder), and a client in a separate process (`bench/support/cluster-client.ts`) that keeps 1,
 * 16 and 256 `put` commands of 100 encoded bytes in flight for `--duration-ms` each after a
 * warm-up, once with every command in an exactly-once session (the client's default) and once
 * without (the `sessions` column), alternating. A command counts when the leader has applied it
 * and answered. Servers and client run
 * under the runtime this bench runs in.
 *
 * Goals on a 2-core machine: at least 2,000/s with p50 at most 0.5 ms at 1 in flight, and at
 * least 65,000/s with p99 at most 10 ms at 256 in flight (etcd 3.4 on such a machine: about
 * 1,000/s at 1 in flight, 6,700/s at 256).
 *
 * Usage: `tsx bench/cluster.bench.ts [--duration-ms 3000] [--warmup-ms 1000] [--inflight
 * 1,16,256]`; `npm run bench:cluster` runs it under Node, Bun and Deno. Prints a human table on
 * stderr and one ROW line per setting on stdout (see bench/support/rows.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { LocalCluster, localMembers } from '../lib/cli/processes.ts';
import { currentRuntime } from '../lib/runtime.ts';
import { runClusterClient } from './support/run-cluster-client.ts';
import { printRow, progress } from './support/rows.ts';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return (at === -1 ? undefined : process.argv[at + 1]) ?? fallback;
}
const durationMs = Number(flag('--duration-ms', '3000'));
const warmupMs = Number(flag('--warmup-ms', '1000'));
const inflightList = flag('--inflight', '1,16,256');
const commandBytes = 100;
const runtime = currentRuntime();

const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-bench-cluster-'));
let cluster: LocalCluster | null = null;
try {
  progress(`${runtime}: starting 3 members in ${dataRoot}`);
  cluster = await LocalCluster.start({
    members: await localMembers(3),
    dataRoot,
    cluster: 'bench',
    runtime,
  });
  const results = await runClusterClient(cluster.clientAddresses(), {
    inflight: inflightList,
    durationMs,
    warmupMs,
    commandBytes,
    runtime,
    onProgress: (line) => progress(`${runtime}: ${line}`),
  });
  progress(`${runtime}: inflight  sessions  commands/s   p50 ms   p99 ms  p99.9 ms  errors`);
  for (const r of results) {
    progress(
      `${runtime}: ${String(r.inflight).padStart(8)}  ${(r.sessions ? 'on' : 'off').padStart(8)}  ${
        String(r.commandsPerSec).padStart(10)
      }  ${r.p50Ms.toFixed(3).padStart(7)}  ${r.p99Ms.toFixed(3).padStart(7)}  ${
        r.p999Ms.toFixed(3).padStart(8)
      }  ${String(r.errors).padStart(6)}${
        r.firstError === null ? '' : `  first error: ${r.firstError}`
      }`,
    );
    printRow({
      bench: 'cluster',
      runtime,
      inflight: String(r.inflight),
      sessions: r.sessions ? 'on' : 'off',
      commandBytes,
      commandsPerSec: r.commandsPerSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      p999Ms: r.p999Ms,
      errors: r.errors,
    });
  }
} finally {
  await cluster?.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
}
process.exit(0);
