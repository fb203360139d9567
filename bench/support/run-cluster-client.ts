/**
 * Run `bench/support/cluster-client.ts` as a child process under `runtime` and collect its result
 * lines: one per in-flight setting and mode (edgeraft: sessions on, off; etcd and the ceiling have
 * one mode). Its stderr goes to `onProgress`
 * line by line; it is killed (by its pid) if it outlives its planned time by a minute.
 *
 * @example
 * ```ts
 * const results = await runClusterClient(addresses, { inflight: '16', durationMs: 3000, warmupMs: 1000, runtime });
 * ```
 * @module
 */
import { signalAndWait } from '../../lib/cli/processes.ts';
import { type Runtime, spawnTs } from '../../lib/runtime.ts';
import { type ClusterClientResult, parseClusterResult, type TargetName } from './cluster-result.ts';
import { formatWatched, type Watched } from './proc-stats.ts';

/** The client gets this long beyond its planned running time before it is killed, in ms. */
const clientSlackMs = 60_000;

export type ClusterClientRun = {
  /** The system the client drives (default edgeraft). */
  target?: TargetName;
  /** Processes whose CPU and memory the client measures per setting (see `proc-stats.ts`). */
  watched?: Watched;
  /** Comma-separated in-flight settings, e.g. `'1,16,256'`. */
  inflight: string;
  durationMs: number;
  warmupMs: number;
  /** Encoded bytes of each command (the client's default when omitted). */
  commandBytes?: number;
  runtime: Runtime;
  onProgress?: (line: string) => void;
  /** edgeraft over TLS: the CA file the client trusts, and the bearer token's file. */
  tls?: { ca: string; tokenFile: string };
};

export function runClusterClient(
  servers: string[],
  o: ClusterClientRun,
): Promise<ClusterClientResult[]> {
  const target = o.target ?? 'edgeraft';
  const modes = target === 'edgeraft' ? 2 : 1; // sessions on and off
  const settings = o.inflight.split(',').length * modes;
  const child = spawnTs('bench/support/cluster-client.ts', [
    '--servers',
    servers.join(','),
    '--target',
    target,
    ...(o.watched === undefined ? [] : ['--watch', formatWatched(o.watched)]),
    '--inflight',
    o.inflight,
    '--duration-ms',
    String(o.durationMs),
    '--warmup-ms',
    String(o.warmupMs),
    ...(o.commandBytes === undefined ? [] : ['--command-bytes', String(o.commandBytes)]),
    ...(o.tls === undefined ? [] : ['--tls-ca', o.tls.ca, '--token-file', o.tls.tokenFile]),
  ], { runtime: o.runtime });
  const results: ClusterClientResult[] = [];
  let out = '';
  let errTail = '';
  child.stdout!.on('data', (chunk: Uint8Array) => {
    out += new TextDecoder().decode(chunk);
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      const result = parseClusterResult(line);
      if (result !== null) results.push(result);
    }
  });
  child.stderr!.on('data', (chunk: Uint8Array) => {
    const text = new TextDecoder().decode(chunk);
    errTail = (errTail + text).slice(-4000);
    for (const line of text.split('\n')) if (line.trim() !== '') o.onProgress?.(line);
  });
  const limitMs = o.warmupMs + settings * o.durationMs + clientSlackMs;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void signalAndWait(child, 'SIGKILL', 5_000);
      reject(new Error(`Client did not finish in ${limitMs} ms: ${errTail}`));
    }, limitMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && results.length === settings) resolve(results);
      else reject(new Error(`Client failed (code ${code}, signal ${signal}): ${errTail}`));
    });
  });
}
