/**
 * The guided tour (`edgeraft demo`, the README's first command): a local cluster of `serve`
 * processes with LMDB data in a fresh folder, a workload through a real TCP client with a live
 * progress line, the leader SIGKILLed half-way, a new leader taking over, the killed member
 * restarted and caught up, then a check that every acknowledged write is readable, and a summary.
 * It stops every process it started, and only those.
 *
 * @module
 */
import type { MemberHealthStatus } from './operator.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { ClientError, RaftClient } from '../client/client.ts';
import { currentRuntime } from '../runtime.ts';
import { LocalCluster, localMembers } from './processes.ts';

/** Settings of the demo. */
export type DemoOptions = { seconds: number; size: number; workers: number; keep: boolean };

type Status = Omit<MemberHealthStatus, 'stopped' | 'members'>;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Run the demo; resolves to the exit code (0 when no acknowledged write was lost). */
export async function runDemo(o: DemoOptions): Promise<number> {
  const dataRoot = mkdtempSync(join(tmpdir(), 'edgeraft-demo-'));
  const members = await localMembers(o.size);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`edgeraft demo: ${o.size} members under ${currentRuntime()}, LMDB data in ${dataRoot}`);
  const cluster = await LocalCluster.start({ members, dataRoot, cluster: 'demo' });
  for (const m of members) {
    say(
      `  started ${m.id} (pid ${
        cluster.processes.get(m.id)?.child.pid
      }): peer ${m.address}, client ${m.clientAddress}`,
    );
  }
  const client = await RaftClient.connect({
    servers: cluster.clientAddresses(),
    requestTimeoutMs: 5_000,
  });
  const statusClients = new Map<string, RaftClient>();
  for (const m of members) {
    statusClients.set(
      m.id,
      await RaftClient.connect({ servers: [m.clientAddress], requestTimeoutMs: 1_000 }),
    );
  }
  const statusOf = async (id: string): Promise<Status | null> => {
    try {
      return (await statusClients.get(id)!.status()) as Status;
    } catch {
      return null;
    }
  };
  const findLeader = async (): Promise<Status | null> => {
    for (const m of members) {
      if (!cluster.processes.has(m.id)) continue;
      const s = await statusOf(m.id);
      if (s?.role === 'leader') return s;
    }
    return null;
  };

  let exitCode = 1;
  const acknowledged = new Map<string, string>();
  let errors = 0;
  let unknown = 0;
  const started = performance.now();
  const durationMs = o.seconds * 1000;
  let killedId: string | null = null;
  let killedAtMs = 0;
  let failoverMs = -1;
  let newLeader: string | null = null;
  let lastCommit = 0;
  let lastCommits = 0;
  let lastProgressAt = started;
  let progressLine = '';
  try {
    // Wait for a leader.
    let leader: Status | null = null;
    while ((leader = await findLeader()) === null) await sleep(50);
    say(
      `  leader elected: ${leader.id} in term ${leader.term} after ${
        fmt(performance.now() - started)
      } ms`,
    );

    // The workload: unique keys, so every acknowledged write must be readable afterwards.
    let next = 0;
    const worker = async () => {
      while (performance.now() - started < durationMs) {
        const key = `k${next++}`;
        const value = `v${key}-${'x'.repeat(64)}`;
        try {
          await client.command({ op: 'put', key, value });
          acknowledged.set(key, value);
        } catch (error) {
          if (error instanceof ClientError && error.code === 'TIMEOUT') unknown++;
          else errors++;
          await sleep(20);
        }
      }
    };
    let reporting = false;
    const progress = setInterval(() => {
      if (reporting) return; // one report at a time, or two would share one interval
      reporting = true;
      void (async () => {
        const now = performance.now();
        const l = await findLeader();
        if (l !== null) lastCommit = l.commitIndex;
        const rate = (acknowledged.size - lastCommits) / ((now - lastProgressAt) / 1000);
        lastCommits = acknowledged.size;
        lastProgressAt = now;
        progressLine = `  [${((now - started) / 1000).toFixed(1).padStart(5)} s] ${
          fmt(rate).padStart(7)
        } commits/s  leader ${l?.id ?? '(none)'}  term ${l?.term ?? '-'}  commit index ${
          fmt(lastCommit)
        }  acknowledged ${fmt(acknowledged.size)}`;
        if (process.stdout.isTTY) process.stdout.write(`\r${progressLine}\x1b[K`);
        else say(progressLine);
      })().finally(() => (reporting = false));
    }, 500);
    const killer = (async () => {
      await sleep(durationMs / 2);
      const l = await findLeader();
      if (l === null) return;
      killedId = l.id;
      killedAtMs = performance.now();
      await cluster.kill(l.id);
      if (process.stdout.isTTY) process.stdout.write('\n');
      say(
        `  killed the leader ${l.id} with SIGKILL (term ${l.term}, commit index ${
          fmt(l.commitIndex)
        })`,
      );
      for (;;) {
        const n = await findLeader();
        if (n !== null && n.id !== l.id) {
          failoverMs = performance.now() - killedAtMs;
          newLeader = n.id;
          say(`  ${n.id} took over in term ${n.term}, ${fmt(failoverMs)} ms after the kill`);
          return;
        }
        await sleep(20);
      }
    })();
    await Promise.all([...Array.from({ length: o.workers }, worker), killer]);
    clearInterval(progress);
    if (process.stdout.isTTY) process.stdout.write('\n');
    const elapsedS = (performance.now() - started) / 1000;

    // Bring the killed member back and let it catch up.
    if (killedId !== null) {
      await cluster.startMember(killedId);
      say(`  restarted ${killedId}; waiting for it to catch up`);
      // The commit index of a leader (right after the restart there may be none for a moment).
      let leaderNow = await findLeader();
      for (let i = 0; leaderNow === null && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        leaderNow = await findLeader();
      }
      const target = leaderNow?.commitIndex ?? 0;
      const deadline = performance.now() + 30_000;
      for (;;) {
        const s = await statusOf(killedId);
        if (s !== null && s.lastAppliedIndex >= target) {
          say(`  ${killedId} caught up: applied ${fmt(s.lastAppliedIndex)} of ${fmt(target)}`);
          break;
        }
        if (performance.now() > deadline) {
          say(
            `  ${killedId} did not catch up within 30 s (applied ${
              s?.lastAppliedIndex ?? '?'
            } of ${target})`,
          );
          break;
        }
        await sleep(100);
      }
    }

    // Every acknowledged write must be there.
    say(`  verifying ${fmt(acknowledged.size)} acknowledged writes with linearizable reads`);
    let lost = 0;
    const keys = [...acknowledged.keys()];
    for (let i = 0; i < keys.length; i += 256) {
      const slice = keys.slice(i, i + 256);
      const values = await Promise.all(
        slice.map((k) => client.query({ op: 'get', key: k }) as Promise<{ value: string | null }>),
      );
      values.forEach((v, j) => {
        if (v.value !== acknowledged.get(slice[j]!)) lost++;
      });
    }
    say('');
    say('summary');
    say(`  runtime                  ${currentRuntime()}`);
    say(`  members                  ${o.size}, client requests in flight ${o.workers}`);
    say(
      `  acknowledged writes      ${fmt(acknowledged.size)} in ${elapsedS.toFixed(1)} s (${
        fmt(acknowledged.size / elapsedS)
      }/s average)`,
    );
    say(`  refused (retryable)      ${fmt(errors)}; outcome unknown at the kill ${fmt(unknown)}`);
    say(
      `  leader killed            ${killedId ?? '(none)'}; new leader ${
        newLeader ?? '(none)'
      } after ${failoverMs < 0 ? '-' : `${fmt(failoverMs)} ms`}`,
    );
    say(`  acknowledged writes lost ${lost}`);
    exitCode = lost === 0 && newLeader !== null ? 0 : 1;
  } finally {
    await client.close();
    for (const c of statusClients.values()) await c.close();
    await cluster.stopAll();
    say(`  stopped every member (${o.size} processes)`);
    if (o.keep) say(`  data kept in ${dataRoot}`);
    else rmSync(dataRoot, { recursive: true, force: true });
  }
  return exitCode;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
