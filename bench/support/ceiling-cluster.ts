/**
 * Start the ceiling of `bench/cluster.bench.ts` (`bench/support/ceiling-member.ts`): two followers,
 * then the leader connected to them, each in its own process under `runtime`, on free loopback
 * ports, with their LMDB files in a fresh folder under `dataRoot`. Clients connect to the leader
 * only (the first and only client address).
 *
 * @example
 * ```ts
 * const ceiling = await startCeilingCluster(tmpdir(), 'node');
 * await ceiling.stop();
 * ```
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../lib/cli/processes.ts';
import { type Runtime, spawnTs } from '../../lib/runtime.ts';
import { type Child, type RunningCluster, stopChildren, watchChild } from './children.ts';

/** Longest wait for a ceiling member to listen, in ms. */
const readyTimeoutMs = 30_000;

/** Start the ceiling's three members; `stop` stops them by pid and removes their folder. */
export async function startCeilingCluster(
  dataRoot: string,
  runtime: Runtime,
): Promise<RunningCluster> {
  const dir = mkdtempSync(join(dataRoot, 'edgeraft-bench-ceiling-'));
  const children: Child[] = [];
  const start = async (name: string, args: string[]) => {
    const child = watchChild(
      name,
      spawnTs('bench/support/ceiling-member.ts', [...args, '--data', join(dir, name)], {
        runtime,
        exitWithParent: true,
      }),
    );
    children.push(child);
    await child.readyLine(readyTimeoutMs);
  };
  const stop = async () => {
    await stopChildren(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const leaderAddress = `127.0.0.1:${await freePort()}`;
    const followerAddresses = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    await Promise.all(
      followerAddresses.map((a, i) => start(`n${i + 2}`, ['--role', 'follower', '--listen', a])),
    );
    await start('n1', [
      '--role',
      'leader',
      '--listen',
      leaderAddress,
      '--followers',
      followerAddresses.join(','),
    ]);
    return {
      clientAddresses: [leaderAddress],
      watched: Object.fromEntries(children.map((c) => [c.name, c.child.pid!])),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
