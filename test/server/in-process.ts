/**
 * In-process clusters for the server and client tests: `RaftServer`s on free loopback ports with
 * real LMDB files under one temporary root, started, stopped and found by role.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/cli/processes.ts';
import type { Member } from '../../lib/base/messages.ts';
import type { ServerLogger } from '../../lib/server/options.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { type KvOutput, type KvQueryOutput, KvStateMachine } from '../../lib/state/kv.ts';
import { waitFor } from './support.ts';

/** The temporary root every member's data folder lives under; removed by `cleanUp`. */
export const root: string = mkdtempSync(join(tmpdir(), 'edgeraft-in-process-'));
let dirCount = 0;
/** A server running the built-in key-value machine. */
export type KvServer = RaftServer<unknown, KvOutput, unknown, KvQueryOutput>;
const running = new Set<KvServer>();

/** Stop every server still running and delete the data root. */
export async function cleanUp(): Promise<void> {
  try {
    for (const s of running) await s.stop();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Forget `server` (a test stopped it itself). */
export function forget(server: KvServer): void {
  running.delete(server);
}

/** Drops every log line: the tests assert on state and errors, not on logs. */
export const quiet: ServerLogger = { info: () => {}, warn: () => {}, debug: () => {} };

export type Node = { member: Member; dataDir: string; server: KvServer | null };

/** Founding members on free loopback ports, each with its own fresh data folder. */
export async function members(n: number): Promise<Node[]> {
  const nodes: Node[] = [];
  const prefix = `s${dirCount++}-`;
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}${i}`;
    const member: Member = {
      id,
      type: 'ACTIVE',
      address: `127.0.0.1:${await freePort()}`,
      clientAddress: `127.0.0.1:${await freePort()}`,
    };
    nodes.push({ member, dataDir: join(root, id), server: null });
  }
  return nodes;
}

/** Start (or restart) `node` with the others as founding members. */
export async function startNode(
  node: Node,
  all: Node[],
  extra: Record<string, unknown> = {},
): Promise<KvServer> {
  const server = await RaftServer.start({
    id: node.member.id,
    cluster: 'server-test',
    dataDir: node.dataDir,
    peerAddress: node.member.address!,
    clientAddress: node.member.clientAddress!,
    members: all.map((n) => n.member),
    stateMachine: new KvStateMachine(),
    tickMs: 10,
    electionTicks: 10,
    heartbeatTicks: 2,
    logger: quiet,
    ...extra,
  });
  node.server = server;
  running.add(server);
  return server;
}

export async function stopNode(node: Node): Promise<void> {
  const s = node.server;
  if (s === null) return;
  await s.stop();
  running.delete(s);
  node.server = null;
}

export async function startCluster(
  n: number,
  extra: Record<string, unknown> = {},
): Promise<Node[]> {
  const nodes = await members(n);
  await Promise.all(nodes.map((node) => startNode(node, nodes, extra)));
  return nodes;
}

export async function stopCluster(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map(stopNode));
}

/** The leader all running members agree on. */
export function leaderOf(nodes: Node[], timeoutMs = 10_000): Promise<KvServer> {
  return waitFor('one agreed leader', () => {
    const up = nodes.map((n) => n.server).filter((s) => s !== null);
    const leaders = up.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return undefined;
    const l = leaders[0]!;
    return up.every((s) => s.status().leaderId === l.id) ? l : undefined;
  }, timeoutMs);
}
