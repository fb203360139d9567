#!/usr/bin/env node
/**
 * The `edgeraft` command line. Bun is the primary way to run it (`bun lib/cli.ts serve ...`); it
 * also runs under Node (`tsx lib/cli.ts`) and Deno (`deno run -A lib/cli.ts`).
 *
 * Commands: `serve` (one member), `cluster` (a local N-member cluster of child processes), `put`,
 * `get`, `del`, `cas`, `append`, `scan`, `watch` (the key-value machine), `status`, `health`,
 * `members`, `join`, `leave`, `promote`, `demote`, `transfer-leader` (talk to a running cluster),
 * `snapshot save` / `snapshot restore` (disaster recovery), `demo` (the guided tour), `torture`
 * (fault injection on real processes). `--help` on each, `--version` at the top.
 *
 * @module
 */
import process from 'node:process';
import { parseAddress } from './base/address.ts';
import { RaftServer } from './server/server.ts';
import type { MembersView } from './member/reconfigure.ts';
import { logFormats, logLevels } from './server/log.ts';
import { KvStateMachine } from './state/kv.ts';
import { LmdbKvStateMachine } from './state/lmdb-kv.ts';
import { describeFlags, parseArgs, parseMembers, UsageError } from './cli/args.ts';
import {
  clientFlags,
  type Command,
  formatTable,
  oneOf,
  outputFlag,
  outputFormat,
  withClient,
} from './cli/command.ts';
import { runDemo } from './cli/demo.ts';
import { kvCommands } from './cli/kv.ts';
import { operatorCommands, probe } from './cli/operator.ts';
import { snapshotCommand } from './cli/snapshot.ts';
import { tortureCommand } from './cli/torture.ts';
import { describeExit, LocalCluster, localMembers } from './cli/processes.ts';
import { packageVersion } from './cli/version.ts';
import { serveTlsFlags, serveTlsOptions } from './cli/tls-flags.ts';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const commands: Record<string, Command> = {
  serve: {
    summary: 'run one member with the built-in key-value state machine',
    usage:
      'serve --id ID --data DIR (--members ID=PEER/CLIENT,... | --join CLIENT,... --peer-address HOST:PORT --client-address HOST:PORT) [flags]',
    flags: {
      id: { kind: 'string', help: 'this member id (must appear in --members)' },
      data: { kind: 'string', help: 'data directory (LMDB), created if missing' },
      members: { kind: 'string', help: 'founding members: id=peerHost:port/clientHost:port,...' },
      join: {
        kind: 'string',
        help:
          'join an existing cluster: client addresses of its members (host:port,...); the member joins as --join-as and catches up before it can be promoted',
      },
      'join-as': { kind: 'string', help: 'passive or reserve (with --join)', default: 'passive' },
      'peer-address': { kind: 'string', help: 'peer listen address (with --join)' },
      'client-address': { kind: 'string', help: 'client listen address (with --join)' },
      'peer-listen': {
        kind: 'string',
        help:
          'with --members: listen for peers here instead of at its own --members address (a proxy in front forwards there, as edgeraft torture does)',
      },
      'balancer-active': {
        kind: 'int',
        help:
          'ACTIVE members the leader keeps: a member silent for --balancer-failure-timeouts election timeouts is replaced by the most caught-up PASSIVE one (0: no balancer)',
        default: 0,
        min: 0,
        max: 1024,
      },
      'balancer-passive': {
        kind: 'int',
        help: 'PASSIVE members the balancer keeps, promoting RESERVE members',
        default: 0,
        min: 0,
        max: 1024,
      },
      'balancer-failure-timeouts': {
        kind: 'int',
        help: 'election timeouts of silence after which the balancer counts a member failed',
        default: 3,
        min: 1,
      },
      'active-members-min': {
        kind: 'int',
        help: 'a change that would leave fewer ACTIVE members is refused',
        default: 1,
        min: 1,
      },
      cluster: {
        kind: 'string',
        help: 'cluster name (peers of another cluster are refused)',
        default: 'edgeraft',
      },
      'tick-ms': {
        kind: 'int',
        help: 'milliseconds per Raft tick',
        default: 10,
        min: 1,
        max: 60_000,
      },
      'election-ticks': {
        kind: 'int',
        help: 'election timeout in ticks (randomized up to twice that)',
        default: 15,
        min: 3,
      },
      'heartbeat-ticks': { kind: 'int', help: 'ticks between heartbeats', default: 3, min: 1 },
      'snapshot-entries': {
        kind: 'int',
        help: 'take a snapshot after this many applied entries',
        default: 100_000,
        min: 1,
      },
      'trailing-entries': {
        kind: 'int',
        help: 'entries kept below a snapshot when compacting',
        default: 5_000,
        min: 0,
      },
      'state-machine': {
        kind: 'string',
        help:
          "memory-kv (the key-value machine in memory, restored from the snapshot and the log at start) or lmdb-kv (on disk in the member's LMDB environment: a restart replays nothing)",
        default: 'memory-kv',
      },
      'snapshot-chunk-bytes': {
        kind: 'int',
        help: 'bytes of snapshot data per InstallSnapshot chunk',
        default: 1024 * 1024,
        min: 1,
        max: 1024 * 1024,
      },
      'metrics-address': {
        kind: 'string',
        help: 'serve /metrics, /health and /ready over HTTP at host:port (port 0 picks one)',
      },
      'log-level': { kind: 'string', help: 'debug, info, warn or error', default: 'info' },
      'log-format': { kind: 'string', help: 'text or json (one object a line)', default: 'text' },
      ...serveTlsFlags,
    },
    run: serve,
  },
  cluster: {
    summary:
      'run a local cluster of N members as child processes until Ctrl-C; reports a member that dies',
    usage: 'cluster [--size N] [--data DIR]',
    flags: {
      size: { kind: 'int', help: 'number of members', default: 3, min: 1, max: 9 },
      data: {
        kind: 'string',
        help:
          'data root (one folder per member), kept; default: a fresh temporary folder, removed at the end',
      },
      cluster: { kind: 'string', help: 'cluster name', default: 'edgeraft' },
    },
    run: cluster,
  },
  put: {
    summary: 'write KEY=VALUE through the log',
    usage: 'put KEY VALUE [--servers ...] [--timeout MS]',
    flags: clientFlags(),
    run: (flags, pos) => {
      if (pos.length !== 2) throw new UsageError('put takes KEY and VALUE');
      return withClient(
        flags,
        async (c) =>
          console.log(
            JSON.stringify(await c.commandWithIndex({ op: 'put', key: pos[0], value: pos[1] })),
          ),
      );
    },
  },
  get: {
    summary: 'read KEY',
    usage: 'get KEY [--consistency linearizable|lease|sequential] [--servers ...] [--timeout MS]',
    flags: clientFlags({
      consistency: {
        kind: 'string',
        help: 'linearizable, lease or sequential',
        default: 'linearizable',
      },
    }),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError('get takes KEY');
      const consistency = oneOf(flags, 'consistency', ['linearizable', 'lease', 'sequential']);
      return withClient(
        flags,
        async (c) =>
          console.log(JSON.stringify(await c.query({ op: 'get', key: pos[0] }, consistency))),
      );
    },
  },
  ...kvCommands,
  watch: {
    summary: 'print every change of KEY (or of the keys under it, --prefix) until Ctrl-C',
    usage: 'watch KEY [--prefix] [--servers ...] [--timeout MS]',
    flags: clientFlags({ prefix: { kind: 'bool', help: 'watch every key that starts with KEY' } }),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError('watch takes KEY');
      const key = pos[0]!;
      const prefix = flags['prefix'] === true;
      return withClient(flags, async (c) => {
        c.onEvent((event) => {
          const change = event.payload as { key?: unknown };
          if (event.name !== 'change' || (!prefix && change?.key !== key)) return;
          console.log(JSON.stringify(event.payload));
        });
        await c.command({ op: 'watch', prefix: key });
        console.error(`watching ${prefix ? 'keys under ' : ''}${JSON.stringify(key)}; Ctrl-C ends`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
      });
    },
  },
  join: {
    summary: 'add a member to the cluster as passive (default) or reserve',
    usage:
      'join ID --peer-address HOST:PORT --client-address HOST:PORT [--as passive|reserve] [--servers ...]',
    flags: clientFlags({
      'peer-address': { kind: 'string', help: "the new member's peer address" },
      'client-address': { kind: 'string', help: "the new member's client address" },
      as: { kind: 'string', help: 'passive or reserve', default: 'passive' },
    }),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError("join takes the new member's ID");
      if (flags['peer-address'] === undefined) throw new UsageError('join needs --peer-address');
      const as = oneOf(flags, 'as', ['passive', 'reserve']);
      return withClient(flags, async (c) => {
        const members = await c.join({
          id: pos[0]!,
          type: as === 'passive' ? 'PASSIVE' : 'RESERVE',
          address: String(flags['peer-address']),
          ...(flags['client-address'] === undefined
            ? {}
            : { clientAddress: String(flags['client-address']) }),
        });
        console.log(JSON.stringify({ members }));
      });
    },
  },
  leave: memberChange(
    'leave',
    'remove member ID from the cluster (a leader that leaves steps down)',
  ),
  promote: memberChange('promote', 'member ID one type up (to ACTIVE only once caught up)'),
  demote: memberChange('demote', 'member ID one type down'),
  members: {
    summary:
      'every member: type, role, its own term, commit and applied index, who feeds it, lag, last contact, addresses',
    usage: 'members [--servers ...] [--timeout MS] [-o table|json]',
    flags: clientFlags({ o: outputFlag }),
    run: (flags) => {
      const format = outputFormat(flags);
      return withClient(flags, async (c) => {
        const view = await c.members() as MembersView;
        // Each member's own term, commit and applied index, asked of it directly (a member that
        // cannot be reached shows its error instead).
        const own = await Promise.all(view.members.map(async (m) => {
          if (m.clientAddress === undefined) return null;
          return await probe(flags, m.clientAddress);
        }));
        const members = view.members.map((m, i) => {
          const p = own[i];
          if (p === null || p === undefined) return m;
          return p.status === undefined ? { ...m, self: { error: p.error } } : {
            ...m,
            self: {
              role: p.status.role,
              term: p.status.term,
              commitIndex: p.status.commitIndex,
              appliedIndex: p.status.lastAppliedIndex,
            },
          };
        });
        const full = { ...view, members };
        if (format === 'json') console.log(JSON.stringify(full, null, 2));
        else console.log(membersTable(full));
      });
    },
  },
  status: {
    summary: 'print the status of the member the client reaches',
    usage: 'status [--servers ...] [--timeout MS]',
    flags: clientFlags(),
    run: (flags) =>
      withClient(flags, async (c) => console.log(JSON.stringify(await c.status(), null, 2))),
  },
  ...operatorCommands,
  snapshot: snapshotCommand,
  torture: tortureCommand,
  demo: {
    summary:
      'start a 3-member cluster, drive a workload, kill the leader half-way, verify nothing acknowledged was lost',
    usage: 'demo [--seconds S] [--size N] [--workers W] [--keep]',
    flags: {
      seconds: { kind: 'int', help: 'length of the workload', default: 10, min: 2, max: 3600 },
      size: { kind: 'int', help: 'members', default: 3, min: 3, max: 7 },
      workers: {
        kind: 'int',
        help: 'requests in flight from the client',
        default: 64,
        min: 1,
        max: 4096,
      },
      keep: { kind: 'bool', help: 'keep the data directory afterwards' },
    },
    run: (flags) =>
      runDemo({
        seconds: Number(flags['seconds']),
        size: Number(flags['size']),
        workers: Number(flags['workers']),
        keep: flags['keep'] === true,
      }),
  },
};

/** Where `serve` listens and how it finds its cluster: `--members` (founding) or `--join`. */
function placement(flags: Record<string, unknown>) {
  const id = String(flags['id']);
  if (flags['members'] !== undefined && flags['join'] !== undefined) {
    throw new UsageError(
      'serve takes --members (a new cluster) or --join (an existing one), not both',
    );
  }
  if (flags['join'] !== undefined) {
    const joinAs = String(flags['join-as']);
    if (joinAs !== 'passive' && joinAs !== 'reserve') {
      throw new UsageError(
        `Flag --join-as: expected passive or reserve, got ${JSON.stringify(joinAs)}`,
      );
    }
    for (const f of ['peer-address', 'client-address']) {
      if (flags[f] === undefined) throw new UsageError(`serve --join needs --${f}`);
    }
    return {
      peerAddress: String(flags['peer-address']),
      clientAddress: String(flags['client-address']),
      join: String(flags['join']).split(',').filter((a) => a !== ''),
      joinAs: joinAs === 'passive' ? 'PASSIVE' as const : 'RESERVE' as const,
    };
  }
  if (flags['members'] === undefined) throw new UsageError('serve needs --members or --join');
  const members = parseMembers(String(flags['members']), 'members');
  const self = members.find((m) => m.id === id);
  if (self === undefined) throw new UsageError(`Flag --id: ${id} is not in --members`);
  return {
    peerAddress: flags['peer-listen'] === undefined ? self.address : String(flags['peer-listen']),
    clientAddress: self.clientAddress,
    members: members.map((m) => ({
      id: m.id,
      type: 'ACTIVE' as const,
      address: m.address,
      clientAddress: m.clientAddress,
    })),
  };
}

async function serve(flags: Record<string, unknown>): Promise<number> {
  for (const f of ['id', 'data']) {
    if (flags[f] === undefined) throw new UsageError(`serve needs --${f}`);
  }
  const machineName = String(flags['state-machine']);
  if (machineName !== 'memory-kv' && machineName !== 'lmdb-kv') {
    throw new UsageError(
      `Flag --state-machine: expected memory-kv or lmdb-kv, got ${JSON.stringify(machineName)}`,
    );
  }
  const logLevel = oneOf(flags, 'log-level', logLevels);
  const logFormat = oneOf(flags, 'log-format', logFormats);
  const metricsAddress = flags['metrics-address'] === undefined
    ? undefined
    : String(flags['metrics-address']);
  if (metricsAddress !== undefined) {
    try {
      parseAddress(metricsAddress, { portZero: true });
    } catch (error) {
      throw new UsageError(`Flag --metrics-address: ${(error as Error).message}`);
    }
  }
  const place = placement(flags);
  const tls = serveTlsOptions(flags);
  const server = await RaftServer.start({
    ...tls,
    id: String(flags['id']),
    cluster: String(flags['cluster']),
    dataDir: String(flags['data']),
    ...place,
    balancerActiveMembers: Number(flags['balancer-active']),
    balancerPassiveMembers: Number(flags['balancer-passive']),
    balancerFailureElectionTimeouts: Number(flags['balancer-failure-timeouts']),
    activeMembersMin: Number(flags['active-members-min']),
    stateMachine: machineName === 'lmdb-kv' ? new LmdbKvStateMachine() : new KvStateMachine(),
    tickMs: Number(flags['tick-ms']),
    electionTicks: Number(flags['election-ticks']),
    heartbeatTicks: Number(flags['heartbeat-ticks']),
    snapshotEntriesThreshold: Number(flags['snapshot-entries']),
    compactionTrailingEntries: Number(flags['trailing-entries']),
    snapshotChunkBytes: Number(flags['snapshot-chunk-bytes']),
    logLevel,
    logFormat,
    ...(metricsAddress === undefined ? {} : { metricsAddress }),
  });
  console.log(
    JSON.stringify({
      ready: true,
      id: server.id,
      peer: server.peerAddress,
      client: server.clientAddress,
      ...(server.metricsAddress === null ? {} : { metrics: server.metricsAddress }),
      pid: process.pid,
      stateMachine: machineName,
      recovery: server.recovery,
    }),
  );
  // Certificate rotation without a restart (the files are also polled).
  if (tls.peerTls !== undefined || tls.clientTls !== undefined) {
    process.on('SIGHUP', () => void server.reloadTls());
  }
  const signal = await untilSignalled();
  await server.stop();
  return await endBySignal(signal);
}

/**
 * `cluster`: start `--size` members, report any that dies (which, and its exit code or signal),
 * and on Ctrl-C stop them all; a data folder the user did not name is removed at the end.
 */
async function cluster(flags: Record<string, unknown>): Promise<number> {
  const size = Number(flags['size']);
  const ownData = typeof flags['data'] !== 'string';
  const dataRoot = ownData
    ? mkdtempSync(join(tmpdir(), 'edgeraft-cluster-'))
    : String(flags['data']);
  const removeData = () => {
    if (!ownData) return;
    rmSync(dataRoot, { recursive: true, force: true });
    console.log(`data in ${dataRoot} removed`);
  };
  let running = size;
  let allDied: () => void = () => {};
  const everyMemberDied = new Promise<'died'>((resolve) => (allDied = () => resolve('died')));
  let local: LocalCluster;
  try {
    const members = await localMembers(size);
    local = await LocalCluster.start({
      members,
      dataRoot,
      cluster: String(flags['cluster']),
      inheritStderr: true,
      onMemberExit: (exit) => {
        console.error(
          `edgeraft cluster: member ${exit.id} (pid ${exit.pid}) died: ${describeExit(exit)}`,
        );
        if (--running === 0) allDied();
      },
    });
  } catch (error) {
    removeData();
    throw error;
  }
  console.log(`cluster of ${size} running, data in ${dataRoot}`);
  for (const m of local.options.members) {
    console.log(
      `  ${m.id}: peer ${m.address}, client ${m.clientAddress}, pid ${
        local.processes.get(m.id)?.child.pid
      }`,
    );
  }
  console.log(`try: ${invocation()} put k v --servers ${local.clientAddresses().join(',')}`);
  console.log('Ctrl-C stops every member');
  const ended = await Promise.race([untilSignalled(), everyMemberDied]);
  await local.stopAll();
  removeData();
  if (ended === 'died') {
    console.error('edgeraft cluster: every member has died');
    return 1;
  }
  return await endBySignal(ended);
}

/**
 * Resolves with the first SIGTERM or SIGINT. The handlers stay installed until the process ends
 * (`once` would remove them as they fire, and then tsx's signal relay under Node, or the
 * runtime's default action under Bun, ends the process before the graceful stop finishes).
 */
function untilSignalled(): Promise<'SIGTERM' | 'SIGINT'> {
  return new Promise((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });
}

/**
 * After a graceful stop caused by `signal`, end the process by that same signal, as Unix
 * convention asks (the parent sees "terminated by SIGTERM", exit status 143 in a shell): the same
 * on Node, Bun and Deno. Resolves only if the signal did not end the process.
 */
async function endBySignal(signal: 'SIGTERM' | 'SIGINT'): Promise<number> {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  await new Promise((r) => setTimeout(r, 1000));
  return 128 + (signal === 'SIGTERM' ? 15 : 2);
}

/** `leave`, `promote` or `demote` ID. */
function memberChange(op: 'leave' | 'promote' | 'demote', summary: string): Command {
  return {
    summary,
    usage: `${op} ID [--servers ...] [--timeout MS]`,
    flags: clientFlags(),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError(`${op} takes a member ID`);
      return withClient(flags, async (c) => {
        const members = await c[op](pos[0]!);
        console.log(JSON.stringify({ members }));
      });
    },
  };
}

/** One member of the members view, with what it said of itself when asked directly. */
type MemberRow = MembersView['members'][number] & {
  self?:
    | { role: string; term: number; commitIndex: number; appliedIndex: number; error?: undefined }
    | {
      error: string;
      role?: undefined;
      term?: undefined;
      commitIndex?: undefined;
      appliedIndex?: undefined;
    };
};

/** The members view as a table, one member per line. */
export function membersTable(view: MembersView & { members: MemberRow[] }): string {
  const rows = [[
    'ID',
    'TYPE',
    'ROLE',
    'TERM',
    'COMMIT',
    'APPLIED',
    'FED BY',
    'LAG',
    'LAST CONTACT',
    'PEER',
    'CLIENT',
  ]];
  for (const m of view.members) {
    const self = m.self;
    const known = self !== undefined && self.error === undefined;
    rows.push([
      m.id,
      m.type,
      m.id === view.leaderId ? 'leader' : m.type === 'ACTIVE' ? 'follower' : '-',
      known ? String(self.term) : self?.error === undefined ? '-' : 'unreachable',
      known ? String(self.commitIndex) : '-',
      known ? String(self.appliedIndex) : '-',
      m.fedBy ?? '-',
      m.lagEntries === undefined ? '-' : String(m.lagEntries),
      m.heardMsAgo === null ? 'never' : `${m.heardMsAgo} ms ago`,
      m.address ?? '-',
      m.clientAddress ?? '-',
    ]);
  }
  return `${
    formatTable(rows)
  }\nterm ${view.term}, commit index ${view.commitIndex}, configuration at ${view.configurationIndex}${
    view.committed ? '' : ' (not yet committed)'
  }`;
}

/** How a user runs this command line: the npm package's bin, or the sources in a checkout. */
function invocation(): string {
  return import.meta.url.endsWith('.js') ? 'npx edgeraft' : 'bun lib/cli.ts';
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) =>
    `  ${name.padEnd(width)}  ${c.summary}`
  );
  return `edgeraft: a Raft cluster with a key-value state machine\n\nUsage: edgeraft <command> [flags]   (${invocation()} <command> ...)\n\nCommands:\n${
    lines.join('\n')
  }\n\nRun edgeraft <command> --help for its flags; edgeraft --version prints the version.`;
}

/** Run the command line with `argv` (without the runtime and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    console.log(packageVersion());
    return 0;
  }
  let command = commands[name];
  if (command === undefined) {
    console.error(`Unknown command: ${name}\n\n${usage()}`);
    return 2;
  }
  let label = name;
  let args = rest;
  if (command.subcommands !== undefined) {
    const [sub, ...subRest] = rest;
    const width = Math.max(...Object.keys(command.subcommands).map((n) => n.length));
    const list = Object.entries(command.subcommands).map(([n, c]) =>
      `  ${n.padEnd(width)}  ${c.summary}`
    );
    const help = `${command.summary}\n\nUsage: edgeraft ${command.usage}\n\nSubcommands:\n${
      list.join('\n')
    }\n\nRun edgeraft ${name} <subcommand> --help for its flags.`;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      (sub === undefined ? console.error : console.log)(help);
      return sub === undefined ? 2 : 0;
    }
    const chosen = command.subcommands[sub];
    if (chosen === undefined) {
      console.error(`Unknown subcommand: ${name} ${sub}\n\n${help}`);
      return 2;
    }
    command = chosen;
    label = `${name} ${sub}`;
    args = subRest;
  }
  try {
    const { flags, positionals, help } = parseArgs(args, command.flags);
    if (help) {
      console.log(
        `${command.summary}\n\nUsage: edgeraft ${command.usage}\n\nFlags:\n${
          describeFlags(command.flags)
        }`,
      );
      return 0;
    }
    return await command.run(flags, positionals);
  } catch (error) {
    if (error instanceof UsageError || error instanceof TypeError || error instanceof RangeError) {
      console.error(`edgeraft ${label}: ${error.message}`);
      return 2;
    }
    console.error(`edgeraft ${label}: ${(error as Error)?.message ?? String(error)}`);
    return 1;
  }
}

/** True when this module is the program being run (not imported): by Bun, Deno, tsx or Node. */
function isMain(): boolean {
  if ((import.meta as unknown as { main?: boolean }).main === true) return true;
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    // `npx edgeraft` runs a symlink in node_modules/.bin: compare real paths.
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
    console.error(error);
    process.exit(1);
  });
}
