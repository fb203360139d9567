/**
 * What PASSIVE members cost, in this runtime: three ACTIVE `serve` members on loopback and 0, 2
 * and 4 PASSIVE members that joined with `serve --join` (fed by followers, not by the leader), a
 * client process keeping `--inflight` KV puts of 100 bytes in flight for `--duration-ms` (sessions
 * on and off, alternating). Per setting: committed commands per second, and each member's
 * outbound peer bytes per committed command (the leader's, the busiest follower's, the busiest
 * passive's), from the transport counters in each member's status. The leader's figure must not
 * grow with the passive count: followers carry the fan-out.
 *
 * Usage: `tsx bench/passive.bench.ts [--passives 0,2,4] [--inflight 16] [--duration-ms 3000]`;
 * `npm run bench:passive` runs it under Node, Bun and Deno. Prints a table on stderr and one ROW
 * line per setting on stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { RaftClient } from '../lib/client/client.ts';
import { LocalCluster, localMembers } from '../lib/cli/processes.ts';
import { currentRuntime } from '../lib/runtime.ts';
import type { ServerStatus } from '../lib/server/server.ts';
import { runClusterClient } from './support/run-cluster-client.ts';
import { printRow, progress } from './support/rows.ts';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return (at === -1 ? undefined : process.argv[at + 1]) ?? fallback;
}
const passiveCounts = flag('--passives', '0,2,4').split(',').map(Number);
const inflight = Number(flag('--inflight', '16'));
const durationMs = Number(flag('--duration-ms', '3000'));
const warmupMs = 1000;
const runtime = currentRuntime();
/** Most the passive members may lag, in entries, before the measurement starts. */
const caughtUpLagMax = 100;

/** Each member's own status, by client address (answered locally). */
async function statuses(addresses: string[]): Promise<ServerStatus[]> {
  return await Promise.all(addresses.map(async (address) => {
    const c = await RaftClient.connect({ servers: [address], session: false });
    try {
      return (await c.status()) as ServerStatus;
    } finally {
      await c.close();
    }
  }));
}

async function measure(passives: number): Promise<void> {
  const specs = await localMembers(3 + passives);
  const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-bench-passive-'));
  let cluster: LocalCluster | null = null;
  try {
    progress(`${runtime}: 3 ACTIVE + ${passives} PASSIVE members in ${dataRoot}`);
    cluster = await LocalCluster.start({
      members: specs.slice(0, 3),
      joiners: specs.slice(3).map((s) => ({ ...s, as: 'passive' as const })),
      dataRoot,
      cluster: 'bench-passive',
      runtime,
    });
    const addresses = specs.map((s) => s.clientAddress);
    const admin = await RaftClient.connect({ servers: addresses.slice(0, 3), session: false });
    const startedMs = Date.now();
    for (;;) {
      const view = (await admin.members().catch(() => null)) as
        | { committed: boolean; members: Array<{ type: string; lagEntries?: number }> }
        | null;
      const fed = view?.members.filter((m) => m.type === 'PASSIVE') ?? [];
      if (
        view?.committed === true && fed.length === passives &&
        fed.every((m) => (m.lagEntries ?? Infinity) <= caughtUpLagMax)
      ) break;
      if (Date.now() - startedMs > 60_000) throw new Error('Passive members did not catch up');
      await new Promise((r) => setTimeout(r, 100));
    }
    await admin.close();
    const before = await statuses(addresses);
    const results = await runClusterClient(addresses.slice(0, 3), {
      inflight: String(inflight),
      durationMs,
      warmupMs,
      runtime,
    });
    const after = await statuses(addresses);
    const leader = after.find((s) => s.role === 'leader');
    if (leader === undefined) throw new Error('No leader at the end');
    const committed = leader.commitIndex - before.find((s) => s.id === leader.id)!.commitIndex;
    const sent = (s: ServerStatus) =>
      Object.values(s.transport.sentBytesByPeer).reduce((n, b) => n + b, 0);
    const perCommand = (i: number) => Math.round((sent(after[i]!) - sent(before[i]!)) / committed);
    const leaderAt = after.indexOf(leader);
    const followers = after.map((_, i) => i).filter((i) => i < 3 && i !== leaderAt);
    const fedMembers = after.map((_, i) => i).filter((i) => i >= 3);
    const maxOf = (ids: number[]) => (ids.length === 0 ? 0 : Math.max(...ids.map(perCommand)));
    const withSessions = results.find((r) => r.sessions)!;
    const fedIds = specs.slice(3).map((s) => s.id);
    const toPassives = (i: number) =>
      fedIds.reduce(
        (n, id) =>
          n + (after[i]!.transport.sentBytesByPeer[id] ?? 0) -
          (before[i]!.transport.sentBytesByPeer[id] ?? 0),
        0,
      );
    const row = {
      bench: 'passive',
      runtime,
      passives: String(passives),
      inflight: String(inflight),
      commandsPerSec: withSessions.commandsPerSec,
      p99Ms: withSessions.p99Ms,
      leaderBytesPerCmd: perCommand(leaderAt),
      leaderToPassivesBytesPerCmd: Math.round(toPassives(leaderAt) / committed),
      followerBytesPerCmdMax: maxOf(followers),
      passiveBytesPerCmdMax: maxOf(fedMembers),
      errors: results.reduce((n, r) => n + r.errors, 0),
    };
    progress(
      `${runtime}: ${passives} passive: ${row.commandsPerSec} commands/s, bytes out per committed command: leader ${row.leaderBytesPerCmd} (to passives ${row.leaderToPassivesBytesPerCmd}), followers up to ${row.followerBytesPerCmdMax}, passives up to ${row.passiveBytesPerCmdMax}`,
    );
    printRow(row);
  } finally {
    await cluster?.stopAll();
    rmSync(dataRoot, { recursive: true, force: true });
  }
}

for (const p of passiveCounts) await measure(p);
process.exit(0);
