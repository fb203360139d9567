/**
 * The client side of `bench/cluster.bench.ts`, run as its own process so the servers' CPU and the
 * client's are not the same event loop: connects to a system (`--target`: edgeraft, etcd or the
 * ceiling, see `bench/support/target-*.ts`), waits until a write succeeds (a leader is known),
 * warms up, then for each in-flight setting keeps exactly that many commands outstanding for a
 * fixed time (`bench/support/load.ts`) and prints one `RESULT <json>` line on stdout per setting
 * and mode (`bench/support/cluster-result.ts`). edgeraft has two modes: every command in an
 * exactly-once session (`on`, the client's default) and plain commands (`off`), from two clients;
 * per setting the modes alternate in two halves each (on, off, on, off), so a drift of the machine
 * affects both alike. Each command's latency is `performance.now()` around its promise. edgeraft's
 * commands are KV `put`s whose CBOR encoding is exactly `--command-bytes` bytes; etcd's are puts
 * of `--command-bytes`-byte values; the ceiling's are `--command-bytes` opaque bytes; all over
 * `--keys` keys in turn.
 *
 * With `--watch n1=PID,...`, each result also carries the CPU time each watched process (and this
 * client) used during the setting's spans per committed command, and their peak resident memory
 * so far (`bench/support/proc-stats.ts`). Progress goes to stderr.
 *
 * Usage: `tsx bench/support/cluster-client.ts --servers H:P,H:P,H:P [--target edgeraft]
 * [--inflight 1,16,256] [--duration-ms 3000] [--warmup-ms 1000] [--keys 10000] [--command-bytes
 * 100] [--sessions on,off] [--watch n1=PID,n2=PID,n3=PID] [--times FILE]` (`--times`: the wall-clock
 * send and answer time of every measured command, as JSON, for `cluster-trace.ts`)
 *
 * @example
 * ```ts
 * const child = spawnTs('bench/support/cluster-client.ts', ['--servers', addresses.join(',')]);
 * ```
 * @module
 */
import { writeFileSync } from 'node:fs';
import process from 'node:process';
import { type ClusterClientResult, resultPrefix, type TargetName } from './cluster-result.ts';
import {
  type CommandTimes,
  keepInflight,
  type LoadPart,
  type LoadTarget,
  summarize,
} from './load.ts';
import { CpuMeter, parseWatched, peakKbOf } from './proc-stats.ts';
import { ceilingTarget } from './target-ceiling.ts';
import { edgeraftTarget } from './target-edgeraft.ts';
import { etcdTarget } from './target-etcd.ts';

/** Longest wait for the first successful write (the cluster electing a leader), in ms. */
const leaderWaitMsMax = 30_000;

function textFlag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  const value = at === -1 ? undefined : process.argv[at + 1];
  return value ?? fallback;
}
function numberFlag(name: string, fallback: number): number {
  const value = Number(textFlag(name, String(fallback)));
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`Flag ${name}: ${value}`);
  return value;
}

async function connect(
  name: TargetName,
  servers: string[],
  keyCount: number,
  commandBytes: number,
): Promise<LoadTarget> {
  switch (name) {
    case 'edgeraft':
      return await edgeraftTarget({
        servers,
        modes: textFlag('--sessions', 'on,off').split(','),
        keyCount,
        commandBytes,
        tlsCa: textFlag('--tls-ca', ''),
        tokenFile: textFlag('--token-file', ''),
      });
    case 'etcd':
      return etcdTarget({ servers, keyCount, valueBytes: commandBytes });
    case 'ceiling':
      return await ceilingTarget({ leader: servers[0]!, commandBytes });
  }
}

async function main(): Promise<void> {
  const servers = textFlag('--servers', '').split(',').filter((s) => s !== '');
  if (servers.length === 0) throw new TypeError('Flag --servers is required');
  const targetName = textFlag('--target', 'edgeraft');
  if (targetName !== 'edgeraft' && targetName !== 'etcd' && targetName !== 'ceiling') {
    throw new RangeError(`Flag --target: ${targetName} (edgeraft, etcd, ceiling)`);
  }
  const inflightList = textFlag('--inflight', '1,16,256').split(',').map(Number);
  const durationMs = numberFlag('--duration-ms', 3000);
  const warmupMs = numberFlag('--warmup-ms', 1000);
  const keyCount = numberFlag('--keys', 10_000);
  const commandBytes = numberFlag('--command-bytes', 100);
  const watched = { ...parseWatched(textFlag('--watch', '')), client: process.pid };
  const timesFile = textFlag('--times', '');
  const times: CommandTimes | undefined = timesFile === ''
    ? undefined
    : { sentMs: [], answeredMs: [] };
  const target = await connect(targetName, servers, keyCount, commandBytes);
  const next = { at: 0 };
  try {
    const waitEnd = Date.now() + leaderWaitMsMax;
    for (;;) {
      try {
        await target.ready();
        break;
      } catch (error) {
        if (Date.now() > waitEnd) {
          throw new Error(`No write succeeded in ${leaderWaitMsMax} ms: ${error}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    process.stderr.write(`client: first write committed, warming up ${warmupMs} ms\n`);
    for (const mode of target.modes) {
      await keepInflight(
        target,
        mode,
        Math.max(...inflightList),
        warmupMs / target.modes.length,
        next,
      );
    }
    for (const inflight of inflightList) {
      const parts = new Map<string, LoadPart[]>(target.modes.map((m) => [m, []]));
      const meters = new Map(target.modes.map((m) => [m, new CpuMeter(watched)]));
      for (let half = 0; half < 2; half++) {
        for (const mode of target.modes) {
          process.stderr.write(
            `client: ${targetName}, ${inflight} in flight, mode ${mode}, for ${
              durationMs / 2
            } ms\n`,
          );
          const meter = meters.get(mode)!;
          meter.start();
          parts.get(mode)!.push(
            await keepInflight(target, mode, inflight, durationMs / 2, next, times),
          );
          meter.stop();
        }
      }
      const peakKb = peakKbOf(watched);
      for (const mode of target.modes) {
        const figures = summarize(parts.get(mode)!);
        const usedUs = meters.get(mode)!.usedUs();
        const result: ClusterClientResult = {
          target: targetName,
          inflight,
          mode,
          sessions: mode === 'on',
          commandBytes,
          ...figures,
          leader: target.leader(),
          cpuUsPerCommand: Object.fromEntries(
            Object.entries(usedUs).map(([name, us]) => [name, Math.round(us / figures.commands)]),
          ),
          cpuShare: Object.fromEntries(
            Object.entries(usedUs).map((
              [name, us],
            ) => [name, Math.round((100 * us) / (figures.elapsedMs * 1000)) / 100]),
          ),
          peakRssKb: peakKb,
        };
        process.stdout.write(`${resultPrefix}${JSON.stringify(result)}\n`);
      }
    }
  } finally {
    await target.close();
    if (times !== undefined) writeFileSync(timesFile, JSON.stringify(times));
  }
}

await main();
process.exit(0);
