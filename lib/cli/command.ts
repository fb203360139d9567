/**
 * What every command of the command line shares: the `Command` shape, the flags of the commands
 * that talk to a cluster (`--servers`, `--timeout`, `-o`), the client they use and a plain-text
 * table.
 *
 * @example
 * ```ts
 * const status: Command = {
 *   summary: 'print the status of the member the client reaches',
 *   usage: 'status [--servers ...]',
 *   flags: clientFlags(),
 *   run: (flags) => withClient(flags, async (c) => console.log(JSON.stringify(await c.status()))),
 * };
 * ```
 * @module
 */
import * as v from 'valibot';
import { DialAddressSchema } from '../base/address.ts';
import { RaftClient } from '../client/client.ts';
import { type FlagSpec, UsageError } from './args.ts';
import { clientTlsFlags, clientTlsOptions } from './tls-flags.ts';

/**
 * One command: its help, its flags, and what it does (resolves to the exit code). A command with
 * `subcommands` (`snapshot save`, `snapshot restore`) hands its arguments to the one named first;
 * its own `flags` and `run` are then unused.
 */
export type Command = {
  summary: string;
  flags: Record<string, FlagSpec>;
  usage: string;
  run: (flags: Record<string, unknown>, positionals: string[]) => Promise<number>;
  subcommands?: Record<string, Command>;
};

/** Longest `--timeout` accepted, in milliseconds (an hour). */
export const timeoutMsMax = 3_600_000;
/** `--timeout` when not given, in milliseconds: `RaftClient`'s own `requestTimeoutMs`. */
export const timeoutMsDefault = 10_000;
/** A connection attempt waits at most this long (`RaftClient`'s `connectTimeoutMs` default). */
const connectTimeoutMsMax = 1_000;

/** `--servers`: the client addresses to reach the cluster through. */
export const serversFlag: FlagSpec = {
  kind: 'string',
  help: 'client addresses of the members, comma-separated (host:port,...)',
  default: '127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003',
};

/** `--timeout`: how long the command's request may take, retries included. */
export function timeoutFlag(defaultMs = timeoutMsDefault): FlagSpec {
  return {
    kind: 'int',
    help: 'milliseconds the request may take, retries included',
    default: defaultMs,
    min: 1,
    max: timeoutMsMax,
  };
}

/** `-o`: table (for people) or json (for programs). */
export const outputFlag: FlagSpec = {
  kind: 'string',
  help: 'output: table or json',
  default: 'table',
};

/** `--servers` and `--timeout`, plus `extra`: the flags of a command that talks to a cluster. */
export function clientFlags(
  extra: Record<string, FlagSpec> = {},
  timeoutDefaultMs = timeoutMsDefault,
): Record<string, FlagSpec> {
  return {
    servers: serversFlag,
    timeout: timeoutFlag(timeoutDefaultMs),
    ...clientTlsFlags,
    ...extra,
  };
}

/** How a flag is written on the command line: `-o`, `--servers`. */
export function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** The value of string flag `name`, which must be one of `allowed` (else a `UsageError`). */
export function oneOf<T extends string>(
  flags: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
): T {
  const value = String(flags[name]);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(
      `Flag ${flagName(name)}: expected ${allowed.slice(0, -1).join(', ')} or ${
        allowed.at(-1)
      }, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** `-o`, checked. */
export function outputFormat(flags: Record<string, unknown>): 'table' | 'json' {
  return oneOf(flags, 'o', ['table', 'json'] as const);
}

/** The addresses of `--servers`: at least one, each `host:port` (else a `UsageError`). */
export function serverList(flags: Record<string, unknown>): string[] {
  const servers = String(flags['servers']).split(',').filter((s) => s !== '');
  if (servers.length === 0) throw new UsageError('Flag --servers: no address given');
  for (const address of servers) {
    if (!v.is(DialAddressSchema, address)) {
      throw new UsageError(`Flag --servers: expected host:port, got ${JSON.stringify(address)}`);
    }
  }
  return servers;
}

/**
 * The client options of a command: its `--timeout`, and fail fast when nobody listens at any
 * address (a command line must not wait out its deadline against a cluster that is not there).
 */
export function clientOptions(flags: Record<string, unknown>, servers = serverList(flags)) {
  const timeoutMs = Number(flags['timeout'] ?? timeoutMsDefault);
  return {
    servers,
    requestTimeoutMs: timeoutMs,
    connectTimeoutMs: Math.min(connectTimeoutMsMax, timeoutMs),
    failFastUnreachable: true,
    ...clientTlsOptions(flags),
  };
}

/** Run `body` with a client of `--servers`, closed afterwards; resolves to exit code 0. */
export async function withClient(
  flags: Record<string, unknown>,
  body: (c: RaftClient) => Promise<void>,
): Promise<number> {
  const client = await RaftClient.connect(clientOptions(flags));
  try {
    await body(client);
    return 0;
  } finally {
    await client.close();
  }
}

/** `rows` (the first one the header) as left-aligned columns two spaces apart. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd())
    .join('\n');
}
