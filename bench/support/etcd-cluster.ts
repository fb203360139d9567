/**
 * A 3-member etcd on loopback for `bench/cluster.bench.ts --against etcd`: the `etcd` binary found
 * on the PATH (the bench never installs it), free ports, data in a fresh folder under `dataRoot`,
 * etcd's default durability (an fsync per commit of its WAL and backend). Stopped by the pids
 * started here; the folder is removed.
 *
 * @example
 * ```ts
 * const binary = findOnPath('etcd');
 * if (binary !== null) {
 *   const etcd = await startEtcdCluster(binary, tmpdir());
 *   await etcd.stop();
 * }
 * ```
 * @module
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import process from 'node:process';
import { freePort } from '../../lib/cli/processes.ts';
import {
  type Child,
  type RunningCluster,
  stopChildren,
  waitForPort,
  watchChild,
} from './children.ts';

/** Longest wait for a member's client port to open, in ms. */
const listenTimeoutMs = 30_000;

/** The first executable `name` in a folder of the PATH, or `null`. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** The version line of `binary --version`, e.g. `etcd Version: 3.4.23`, or `null`. */
export function versionOf(binary: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (chunk: Uint8Array) => out += new TextDecoder().decode(chunk));
    child.once('error', () => resolve(null));
    child.once('close', () => resolve(out.split('\n')[0]?.trim() || null));
  });
}

/** Start three etcd members of `binary`; `stop` stops them by pid and removes their folder. */
export async function startEtcdCluster(binary: string, dataRoot: string): Promise<RunningCluster> {
  const dir = mkdtempSync(join(dataRoot, 'edgeraft-bench-etcd-'));
  const members = [];
  for (const name of ['n1', 'n2', 'n3']) {
    members.push({
      name,
      peer: `127.0.0.1:${await freePort()}`,
      client: `127.0.0.1:${await freePort()}`,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://${m.peer}`).join(',');
  const children: Child[] = [];
  const stop = async () => {
    await stopChildren(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const m of members) {
      const child = spawn(binary, [
        '--name',
        m.name,
        '--data-dir',
        join(dir, m.name),
        '--listen-peer-urls',
        `http://${m.peer}`,
        '--initial-advertise-peer-urls',
        `http://${m.peer}`,
        '--listen-client-urls',
        `http://${m.client}`,
        '--advertise-client-urls',
        `http://${m.client}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `edgeraft-bench-${process.pid}`,
        '--logger',
        'zap',
        '--log-level',
        'warn',
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(watchChild(m.name, child));
    }
    await Promise.all(
      members.map((m, i) =>
        Promise.race([
          waitForPort(m.client, listenTimeoutMs),
          new Promise((_, reject) =>
            children[i]!.child.once('exit', (code) =>
              reject(
                new Error(`etcd ${m.name} exited (code ${code}): ${children[i]!.tail.join(' | ')}`),
              ))
          ),
        ])
      ),
    );
    return {
      clientAddresses: members.map((m) => m.client),
      watched: Object.fromEntries(children.map((c) => [c.name, c.child.pid!])),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
