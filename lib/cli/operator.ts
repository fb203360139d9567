/**
 * The operator's commands about leadership (etcdctl's `endpoint health` and `move-leader`,
 * Consul's `operator raft`): `health` asks every member named in `--servers` for its own status
 * (answered by each member's client port, locally, without Raft) and says whether the cluster is
 * healthy; `transfer-leader ID` has the leader hand leadership to member ID.
 *
 * Healthy means: every member answered, none has stopped, and all name the same leader. `health`
 * exits 0 then and 1 otherwise, so a script or a probe can act on it.
 *
 * @example
 * ```ts
 * const report = healthOf([
 *   { address: '127.0.0.1:8001', status: { id: 'a', role: 'leader', term: 2, leaderId: 'a', commitIndex: 9, lastAppliedIndex: 9, stopped: false } },
 *   { address: '127.0.0.1:8002', error: 'connection refused' },
 * ]);
 * report.healthy; // false: 127.0.0.1:8002 is unreachable
 * ```
 * @module
 */
import { RaftClient } from '../client/client.ts';
import { UsageError } from './args.ts';
import {
  clientFlags,
  clientOptions,
  type Command,
  formatTable,
  outputFlag,
  outputFormat,
  serverList,
  withClient,
} from './command.ts';

/** `health --timeout` when not given, in milliseconds: a health check should answer quickly. */
export const healthTimeoutMsDefault = 5_000;

/** What `health` reads of a member's status (`RaftServer.status()`). */
export type MemberHealthStatus = {
  id: string;
  role: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  lastAppliedIndex: number;
  stopped: boolean;
  /** The configuration it knows: names the members that did not answer by their address. */
  members?: ReadonlyArray<{ id: string; clientAddress?: string }>;
};

/** One member as `health` asked it: its status, or why it could not be asked. */
export type MemberProbe =
  | { address: string; status: MemberHealthStatus; error?: undefined }
  | { address: string; error: string; status?: undefined };

/** The verdict of `health`. */
export type HealthReport = {
  healthy: boolean;
  /** The leader every member names (null: none, or they disagree). */
  leaderId: string | null;
  /** The highest term any member reported. */
  term: number | null;
  /** What is wrong, one sentence each (empty when healthy). */
  problems: string[];
  members: Array<{
    address: string;
    reachable: boolean;
    error: string | null;
    id: string | null;
    role: string | null;
    term: number | null;
    leaderId: string | null;
    commitIndex: number | null;
    appliedIndex: number | null;
  }>;
};

/** The verdict on the members' answers (pure: the tests call it directly too). */
export function healthOf(probes: readonly MemberProbe[]): HealthReport {
  const problems: string[] = [];
  const unreachable = probes.filter((p) => p.error !== undefined);
  for (const p of unreachable) problems.push(`${p.address} unreachable: ${p.error}`);
  const answered = probes.flatMap((p) => p.status === undefined ? [] : [p.status]);
  for (const s of answered.filter((s) => s.stopped)) problems.push(`${s.id} has stopped`);
  const leaders = new Set(answered.map((s) => s.leaderId));
  let leaderId: string | null = null;
  if (answered.length === 0) problems.push('no member answered');
  else if (leaders.size === 1 && !leaders.has(null)) leaderId = answered[0]!.leaderId;
  else if (leaders.size === 1) problems.push('no leader');
  else {
    const named = [...leaders].map((l) =>
      `${l ?? 'none'} (${answered.filter((s) => s.leaderId === l).map((s) => s.id).join(', ')})`
    );
    problems.push(`members disagree on the leader: ${named.join('; ')}`);
  }
  const terms = answered.map((s) => s.term);
  /** The id of the member at `address`, as the members that answered know it. */
  const idAt = (address: string) =>
    answered.flatMap((s) => s.members ?? []).find((m) => m.clientAddress === address)?.id ?? null;
  return {
    healthy: problems.length === 0,
    leaderId,
    term: terms.length === 0 ? null : Math.max(...terms),
    problems,
    members: probes.map((p) => ({
      address: p.address,
      reachable: p.status !== undefined,
      error: p.error ?? null,
      id: p.status?.id ?? idAt(p.address),
      role: p.status?.role ?? null,
      term: p.status?.term ?? null,
      leaderId: p.status?.leaderId ?? null,
      commitIndex: p.status?.commitIndex ?? null,
      appliedIndex: p.status?.lastAppliedIndex ?? null,
    })),
  };
}

/** The report as a table and a verdict line. */
export function healthTable(report: HealthReport): string {
  const rows = [['ID', 'ADDRESS', 'STATE', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED']];
  const dash = (x: string | number | null) => x === null ? '-' : String(x);
  for (const m of report.members) {
    rows.push([
      dash(m.id),
      m.address,
      m.reachable ? 'reachable' : `unreachable: ${m.error}`,
      dash(m.role),
      dash(m.term),
      m.reachable ? m.leaderId ?? 'none' : '-',
      dash(m.commitIndex),
      dash(m.appliedIndex),
    ]);
  }
  const reachable = report.members.filter((m) => m.reachable).length;
  const verdict = report.healthy
    ? `healthy: ${reachable} of ${report.members.length} members reachable, leader ${report.leaderId} in term ${report.term}`
    : `unhealthy: ${report.problems.join('; ')}`;
  return `${formatTable(rows)}\n${verdict}`;
}

/** Ask the member at `address`, and only it, for its status. */
export async function probe(flags: Record<string, unknown>, address: string): Promise<MemberProbe> {
  const client = await RaftClient.connect({
    ...clientOptions(flags, [address]),
    session: false,
    preferLeader: false,
  });
  try {
    const status = await client.status() as MemberHealthStatus;
    return { address, status };
  } catch (error) {
    // The client names the address itself ("No server reachable: ADDRESS connection refused").
    const message = (error as Error).message.replace(`No server reachable: ${address} `, '');
    return { address, error: message };
  } finally {
    await client.close();
  }
}

/** `health` and `transfer-leader`. */
export const operatorCommands: Record<'health' | 'transfer-leader', Command> = {
  health: {
    summary:
      'ask every member in --servers for its own status; exit 0 if all answer and agree on one leader, else 1',
    usage: 'health [--servers ...] [--timeout MS] [-o table|json]',
    flags: clientFlags({ o: outputFlag }, healthTimeoutMsDefault),
    run: async (flags, pos) => {
      if (pos.length !== 0) throw new UsageError('health takes no arguments');
      const format = outputFormat(flags);
      const servers = [...new Set(serverList(flags))];
      const report = healthOf(await Promise.all(servers.map((a) => probe(flags, a))));
      console.log(format === 'json' ? JSON.stringify(report, null, 2) : healthTable(report));
      return report.healthy ? 0 : 1;
    },
  },
  'transfer-leader': {
    summary: 'make the leader hand leadership to ACTIVE member ID; prints the new leader',
    usage: 'transfer-leader ID [--servers ...] [--timeout MS]',
    flags: clientFlags(),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError('transfer-leader takes a member ID');
      return withClient(flags, async (c) => {
        console.log(JSON.stringify(await c.transferLeader(pos[0]!)));
      });
    },
  },
};
