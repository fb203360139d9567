/**
 * The processes a cluster bench starts, whatever the system (edgeraft's `serve`, the ceiling's
 * members, etcd): the one place that waits for them to be ready, keeps the tail of what they
 * said, and stops them. Only processes started here are signalled, by their own pid
 * (`signalAndWait` of `lib/cli/processes.ts`).
 *
 * @example
 * ```ts
 * const member = watchChild('n1', spawnTs('bench/support/ceiling-member.ts', args));
 * await member.readyLine(10_000);
 * await stopChildren([member]);
 * ```
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { signalAndWait } from '../../lib/cli/processes.ts';
import type { Watched } from './proc-stats.ts';

/** Lines of a child's stderr kept for error messages. */
const tailLinesMax = 20;

/** `host:port` as its two parts. */
export function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new RangeError(`Bad address: ${address} (expected host:port)`);
  }
  return { host: address.slice(0, at), port };
}

/** A started child with the tail of its stderr. */
export type Child = {
  name: string;
  child: ChildProcess;
  /** Last lines of stderr and stdout. */
  tail: string[];
  /** Resolve once stdout has had a line with `"ready":true`; reject if the child exits first. */
  readyLine(timeoutMs: number): Promise<void>;
};

/** Keep `child`'s output tail (piped streams are drained, so the child never blocks on them). */
export function watchChild(name: string, child: ChildProcess): Child {
  const tail: string[] = [];
  const keep = (chunk: Uint8Array) => {
    tail.push(...new TextDecoder().decode(chunk).split('\n').filter((l) => l.trim() !== ''));
    if (tail.length > tailLinesMax) tail.splice(0, tail.length - tailLinesMax);
  };
  child.stderr?.on('data', keep);
  // Stdout is scanned for the ready line from the start, so it is seen whenever `readyLine` is called.
  let stdout = '';
  let ready = false;
  let onReady: (() => void) | null = null;
  child.stdout?.on('data', (chunk: Uint8Array) => {
    keep(chunk);
    if (ready) return;
    stdout += new TextDecoder().decode(chunk);
    if (stdout.includes('"ready":true')) {
      ready = true;
      stdout = '';
      onReady?.();
    }
  });
  const described = () => `${name}: ${tail.slice(-5).join(' | ')}`;
  return {
    name,
    child,
    tail,
    readyLine: (timeoutMs) =>
      new Promise((resolve, reject) => {
        if (ready) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`Not ready in ${timeoutMs} ms: ${described()}`)),
          timeoutMs,
        );
        onReady = () => {
          clearTimeout(timer);
          resolve();
        };
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`Exited before ready (code ${code}, signal ${signal}): ${described()}`));
        });
      }),
  };
}

/** Resolve once `address` accepts TCP connections (polled every 50 ms), or reject after `timeoutMs`. */
export async function waitForPort(address: string, timeoutMs: number): Promise<void> {
  const { host, port } = hostPort(address);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > end) throw new Error(`Nothing listening on ${address} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM each child, SIGKILL any still running after `graceMs`, and wait for them all to exit. */
export async function stopChildren(children: readonly Child[], graceMs = 10_000): Promise<void> {
  await Promise.all(children.map(async ({ child }) => {
    const stopped = await signalAndWait(child, 'SIGTERM', graceMs);
    if (!stopped) await signalAndWait(child, 'SIGKILL', 5_000);
  }));
}

/** A 3-member system running for a bench: where clients connect, which pids to watch, how to stop. */
export type RunningCluster = {
  /** Client addresses (`host:port`), in member order. */
  clientAddresses: string[];
  /** Member name to pid, e.g. `{ n1: 4242, n2: 4243, n3: 4244 }`. */
  watched: Watched;
  /** Stop every process it started (by pid) and remove its folder. */
  stop(): Promise<void>;
};
