/**
 * A small, strict flag parser for the command line: `--name value` or `--name=value`, boolean
 * flags, positionals. Unknown flags and bad values are errors naming the flag.
 *
 * @module
 */
import { addressError } from '../base/address.ts';

/** How one flag is read. */
export type FlagSpec = {
  kind: 'string' | 'int' | 'bool';
  help: string;
  default?: string | number | boolean;
  min?: number;
  max?: number;
};

/** Thrown for bad command-line input: the CLI prints it and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parse `argv` against `specs`; returns the flags (with defaults) and the positionals.
 *
 * @example
 * ```ts
 * parseArgs(['--size', '3', 'x'], { size: { kind: 'int', help: 'members', default: 3 } });
 * // { flags: { size: 3 }, positionals: ['x'] }
 * ```
 */
export function parseArgs(
  argv: readonly string[],
  specs: Record<string, FlagSpec>,
): {
  flags: Record<string, string | number | boolean | undefined>;
  positionals: string[];
  help: boolean;
} {
  const flags: Record<string, string | number | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) flags[name] = spec.default;
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    // A one-letter flag may be given with one dash (`-o json`).
    const arg = /^-[A-Za-gi-z]$/.test(argv[i]!) ? `-${argv[i]}` : argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`Unknown flag: --${name}`);
    if (spec.kind === 'bool') {
      flags[name] = eq === -1 ? true : arg.slice(eq + 1) !== 'false';
      continue;
    }
    const raw = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (raw === undefined) throw new UsageError(`Flag --${name} needs a value`);
    if (spec.kind === 'int') {
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) {
        throw new UsageError(`Flag --${name}: expected an integer, got ${raw}`);
      }
      if (spec.min !== undefined && n < spec.min) {
        throw new UsageError(`Flag --${name}: ${n} is below the minimum ${spec.min}`);
      }
      if (spec.max !== undefined && n > spec.max) {
        throw new UsageError(`Flag --${name}: ${n} is above the maximum ${spec.max}`);
      }
      flags[name] = n;
    } else flags[name] = raw;
  }
  return { flags, positionals, help };
}

/** Help text listing `specs`. */
export function describeFlags(specs: Record<string, FlagSpec>): string {
  return Object.entries(specs)
    .map(([name, s]) =>
      `  ${name.length === 1 ? '-' : '--'}${name}${
        s.kind === 'bool' ? '' : ` <${s.kind === 'int' ? 'n' : 'value'}>`
      }`.padEnd(30) +
      s.help + (s.default !== undefined && s.default !== false ? ` (default ${s.default})` : '')
    )
    .join('\n');
}

/** A member as the command line names it: `id=peerHost:port/clientHost:port`. */
export type MemberSpec = { id: string; address: string; clientAddress: string };

/** Parse `a=127.0.0.1:7001/127.0.0.1:8001,b=...`. */
export function parseMembers(text: string, flag: string): MemberSpec[] {
  const out: MemberSpec[] = [];
  for (const part of text.split(',').filter((p) => p !== '')) {
    const m = /^([A-Za-z0-9_.-]+)=([^/\s]+:\d+)\/([^/\s]+:\d+)$/.exec(part);
    if (m === null) {
      throw new UsageError(
        `Flag --${flag}: expected id=peerHost:port/clientHost:port, got ${part}`,
      );
    }
    for (const address of [m[2]!, m[3]!]) {
      const problem = addressError(address, false);
      if (problem !== null) throw new UsageError(`Flag --${flag}: ${part}: ${problem}`);
    }
    out.push({ id: m[1]!, address: m[2]!, clientAddress: m[3]! });
  }
  if (out.length === 0) throw new UsageError(`Flag --${flag}: no members given`);
  if (new Set(out.map((m) => m.id)).size !== out.length) {
    throw new UsageError(`Flag --${flag}: a member id is listed twice`);
  }
  return out;
}
