/**
 * The key-value machine's operations on the command line besides `put`, `get` and `watch`: `del`,
 * `cas`, `append` (commands, through the log, in a session: exactly once) and `scan` (a query).
 * Commands print what `put` prints, `{"index":...,"output":...}`, the machine's output at the
 * command's log index (see `lib/state/kv.ts`).
 *
 * @example
 * ```ts
 * // edgeraft cas lock "" owner-1 --servers 127.0.0.1:8001   (expected: the empty value)
 * // edgeraft cas lock owner-1 --expect-absent                 (expected: no value at all)
 * const code = await kvCommands.cas.run({ servers: '127.0.0.1:8001', 'expect-absent': true }, ['lock', 'owner-1']);
 * ```
 * @module
 */
import * as v from 'valibot';
import {
  type KvCommand,
  type KvQuery,
  KvQuerySchema,
  kvScanLimitMax,
  parseKvCommand,
} from '../state/kv.ts';
import { UsageError } from './args.ts';
import {
  clientFlags,
  type Command,
  formatTable,
  oneOf,
  outputFlag,
  outputFormat,
  withClient,
} from './command.ts';

/** `scan --limit` when not given. */
export const scanLimitDefault = 1000;

/** Check `command` here, before it costs a round trip (a `UsageError` naming the problem). */
function checked(command: KvCommand): KvCommand {
  try {
    return parseKvCommand(command);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Send `command` through the log; print `{index, output}` as `put` does. */
function runCommand(flags: Record<string, unknown>, command: KvCommand): Promise<number> {
  const valid = checked(command);
  return withClient(flags, async (c) => {
    console.log(JSON.stringify(await c.commandWithIndex(valid)));
  });
}

/** A value for the table: as it is, or JSON-quoted when it is empty or has spaces or quotes. */
function cell(text: string): string {
  return text === '' || /[\s"\\]/.test(text) ? JSON.stringify(text) : text;
}

/** The key-value commands, by name. */
export const kvCommands: Record<'del' | 'cas' | 'append' | 'scan', Command> = {
  del: {
    summary: 'delete KEY (output: the value it held, null when absent)',
    usage: 'del KEY [--servers ...] [--timeout MS]',
    flags: clientFlags(),
    run: (flags, pos) => {
      if (pos.length !== 1) throw new UsageError('del takes KEY');
      return runCommand(flags, { op: 'delete', key: pos[0]! });
    },
  },
  cas: {
    summary:
      'compare-and-set: KEY to NEW only if it holds EXPECTED (--expect-absent: only if absent); exit 1 if not set',
    usage: 'cas KEY EXPECTED NEW | cas KEY NEW --expect-absent [--servers ...] [--timeout MS]',
    flags: clientFlags({
      'expect-absent': {
        kind: 'bool',
        help: 'set only if KEY holds no value (then cas takes KEY and NEW)',
      },
    }),
    run: async (flags, pos) => {
      const absent = flags['expect-absent'] === true;
      if (absent && pos.length !== 2) {
        throw new UsageError('cas --expect-absent takes KEY and NEW');
      }
      if (!absent && pos.length !== 3) {
        throw new UsageError(
          'cas takes KEY, EXPECTED and NEW (or KEY and NEW with --expect-absent)',
        );
      }
      const [key, expected, value] = absent
        ? [pos[0]!, null, pos[1]!]
        : [pos[0]!, pos[1]!, pos[2]!];
      const valid = checked({ op: 'cas', key, expected, value });
      let set = true;
      const code = await withClient(flags, async (c) => {
        const answer = await c.commandWithIndex(valid);
        console.log(JSON.stringify(answer));
        const output = answer.output as { ok: boolean; current: string | null };
        if (!output.ok) {
          console.error(
            `edgeraft cas: not set: ${JSON.stringify(key)} holds ${
              output.current === null ? 'no value' : JSON.stringify(output.current)
            }, expected ${expected === null ? 'no value' : JSON.stringify(expected)}`,
          );
          set = false;
        }
      });
      return code === 0 && !set ? 1 : code;
    },
  },
  append: {
    summary: 'append VALUE to the value of KEY (an absent key counts as empty)',
    usage: 'append KEY VALUE [--servers ...] [--timeout MS]',
    flags: clientFlags(),
    run: (flags, pos) => {
      if (pos.length !== 2) throw new UsageError('append takes KEY and VALUE');
      return runCommand(flags, { op: 'append', key: pos[0]!, value: pos[1]! });
    },
  },
  scan: {
    summary: 'list the keys that start with --prefix, with their values, in key order',
    usage:
      'scan [--prefix P] [--limit N] [--consistency linearizable|lease|sequential] [-o table|json] [--servers ...]',
    flags: clientFlags({
      prefix: { kind: 'string', help: 'only keys that start with this (default: every key)' },
      limit: {
        kind: 'int',
        help: 'at most this many keys',
        default: scanLimitDefault,
        min: 1,
        max: kvScanLimitMax,
      },
      consistency: {
        kind: 'string',
        help: 'linearizable, lease or sequential',
        default: 'linearizable',
      },
      o: outputFlag,
    }),
    run: (flags, pos) => {
      if (pos.length !== 0) throw new UsageError('scan takes no KEY: use --prefix');
      const format = outputFormat(flags);
      const consistency = oneOf(flags, 'consistency', ['linearizable', 'lease', 'sequential']);
      const limit = Number(flags['limit']);
      const query: KvQuery = { op: 'scan', prefix: String(flags['prefix'] ?? ''), limit };
      const parsed = v.safeParse(KvQuerySchema, query);
      if (!parsed.success) {
        throw new UsageError(`Flag --prefix: ${parsed.issues[0].message}`);
      }
      return withClient(flags, async (c) => {
        const { entries } = await c.query(parsed.output, consistency) as {
          entries: [string, string][];
        };
        if (format === 'json') {
          console.log(JSON.stringify({ entries }, null, 2));
          return;
        }
        if (entries.length > 0) {
          console.log(
            formatTable([['KEY', 'VALUE'], ...entries.map(([k, val]) => [cell(k), cell(val)])]),
          );
        }
        const more = entries.length === limit
          ? ` (the limit: --limit ${limit}; there may be more)`
          : '';
        console.log(`${entries.length} ${entries.length === 1 ? 'key' : 'keys'}${more}`);
      });
    },
  },
};
