/**
 * The client side of `bench/cluster.bench.ts`, run as its own process so the servers' CPU and the
 * client's are not the same event loop: connects one `RaftClient` to the given client addresses,
 * waits until a write succeeds (a leader is known), warms up, then for each in-flight setting
 * keeps exactly that many `put` commands outstanding for a fixed time and prints one
 * `RESULT <json>` line on stdout per setting and mode: `{ inflight, sessions, commandBytes,
 * commands, commandsPerSec, p50Ms, p99Ms, p999Ms, maxMs, errors, firstError }`. Two modes: every
 * command in an exactly-once session (`sessions: true`, the client's default) and plain commands
 * (`sessions: false`), from two clients; per setting the modes alternate in two halves each
 * (session, plain, session, plain), so a drift of the machine affects both alike. Each command's latency is
 * `performance.now()` around its promise. Every command is a KV `put` whose CBOR encoding is
 * exactly `--command-bytes` bytes (the key is fixed-width, the value is padded to fit), over
 * `--keys` keys in turn. Progress goes to stderr.
 *
 * Usage: `tsx bench/support/cluster-client.ts --servers H:P,H:P,H:P [--inflight 1,16,256]
 * [--duration-ms 3000] [--warmup-ms 1000] [--keys 10000] [--command-bytes 100]`
 *
 * @example
 * ```ts
 * const child = spawnTs('bench/support/cluster-client.ts', ['--servers', addresses.join(',')]);
 * ```
 * @module
 */
import process from 'node:process';
import { RaftClient } from '../../lib/client/client.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import type { KvCommand } from '../../lib/state/kv.ts';
import { type ClusterClientResult, resultPrefix } from './cluster-result.ts';

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

/** Make `count` put commands over `keyCount` keys whose encoding is exactly `bytes` bytes. */
function commandsOf(keyCount: number, bytes: number): KvCommand[] {
  const codec = cborCodec<KvCommand>();
  const width = String(keyCount - 1).length;
  const keyOf = (i: number) => `k${String(i).padStart(width, '0')}`;
  // The encoding's overhead is the same for every key (fixed width); find the value length once.
  const overhead = codec.encode({ op: 'put', key: keyOf(0), value: '' }).byteLength;
  let valueLength = Math.max(0, bytes - overhead);
  while (
    valueLength > 0 &&
    codec.encode({ op: 'put', key: keyOf(0), value: 'x'.repeat(valueLength) }).byteLength > bytes
  ) valueLength--;
  const value = 'x'.repeat(valueLength);
  const got = codec.encode({ op: 'put', key: keyOf(0), value }).byteLength;
  if (got !== bytes) throw new RangeError(`Cannot make a ${bytes}-byte put command (got ${got})`);
  return Array.from({ length: keyCount }, (_, i) => ({ op: 'put', key: keyOf(i), value }));
}

/** The `fraction` quantile of ascending `sorted`, nearest rank. */
function quantile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, rank)]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Keep `inflight` commands outstanding for `durationMs`; latencies of successes only. */
async function runSetting(
  client: RaftClient,
  commands: KvCommand[],
  inflight: number,
  durationMs: number,
  next: { at: number },
): Promise<
  { latenciesMs: number[]; errors: number; firstError: string | null; elapsedMs: number }
> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const end = started + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const command = commands[next.at++ % commands.length]!;
      const t0 = performance.now();
      try {
        await client.command(command);
        latenciesMs.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return { latenciesMs, errors, firstError, elapsedMs: performance.now() - started };
}

async function main(): Promise<void> {
  const servers = textFlag('--servers', '').split(',').filter((s) => s !== '');
  if (servers.length === 0) throw new TypeError('Flag --servers is required');
  const inflightList = textFlag('--inflight', '1,16,256').split(',').map(Number);
  const durationMs = numberFlag('--duration-ms', 3000);
  const warmupMs = numberFlag('--warmup-ms', 1000);
  const keyCount = numberFlag('--keys', 10_000);
  const commandBytes = numberFlag('--command-bytes', 100);
  const commands = commandsOf(keyCount, commandBytes);
  const modes = textFlag('--sessions', 'on,off').split(',').map((m) => {
    if (m !== 'on' && m !== 'off') throw new RangeError(`Flag --sessions: ${m} (on, off)`);
    return m === 'on';
  });
  const clients = new Map<boolean, RaftClient>();
  for (const mode of modes) {
    clients.set(
      mode,
      await RaftClient.connect({ servers, requestTimeoutMs: 10_000, session: mode }),
    );
  }
  const client = clients.get(modes[0]!)!;
  const next = { at: 0 };
  try {
    const waitEnd = Date.now() + leaderWaitMsMax;
    for (;;) {
      try {
        await client.command(commands[0]!);
        break;
      } catch (error) {
        if (Date.now() > waitEnd) {
          throw new Error(`No write succeeded in ${leaderWaitMsMax} ms: ${error}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    process.stderr.write(`client: first write committed, warming up ${warmupMs} ms\n`);
    for (const c of clients.values()) {
      await runSetting(c, commands, Math.max(...inflightList), warmupMs / clients.size, next);
    }
    for (const inflight of inflightList) {
      const byMode = new Map<
        boolean,
        { latenciesMs: number[]; errors: number; firstError: string | null; elapsedMs: number }
      >();
      for (let half = 0; half < 2; half++) {
        for (const mode of modes) {
          process.stderr.write(
            `client: ${inflight} in flight, sessions ${mode ? 'on' : 'off'}, for ${
              durationMs / 2
            } ms\n`,
          );
          const part = await runSetting(
            clients.get(mode)!,
            commands,
            inflight,
            durationMs / 2,
            next,
          );
          const sum = byMode.get(mode);
          if (sum === undefined) byMode.set(mode, part);
          else {
            sum.latenciesMs.push(...part.latenciesMs);
            sum.errors += part.errors;
            sum.firstError ??= part.firstError;
            sum.elapsedMs += part.elapsedMs;
          }
        }
      }
      for (const mode of modes) emit(inflight, mode, byMode.get(mode)!);
    }
  } finally {
    for (const c of clients.values()) await c.close();
  }

  function emit(
    inflight: number,
    sessions: boolean,
    r: { latenciesMs: number[]; errors: number; firstError: string | null; elapsedMs: number },
  ): void {
    {
      const sorted = Float64Array.from(r.latenciesMs).sort();
      const result: ClusterClientResult = {
        inflight,
        sessions,
        commandBytes,
        commands: sorted.length,
        commandsPerSec: Math.round(sorted.length / (r.elapsedMs / 1000)),
        p50Ms: round3(quantile(sorted, 0.5)),
        p99Ms: round3(quantile(sorted, 0.99)),
        p999Ms: round3(quantile(sorted, 0.999)),
        maxMs: round3(sorted.length === 0 ? NaN : sorted[sorted.length - 1]!),
        errors: r.errors,
        firstError: r.firstError,
      };
      process.stdout.write(`${resultPrefix}${JSON.stringify(result)}\n`);
    }
  }
}

await main();
process.exit(0);
