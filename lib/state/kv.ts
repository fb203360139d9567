/**
 * The built-in example state machine: a string key-value map with put, get, delete,
 * compare-and-set and append. The command line, the tests and the benchmarks use it.
 *
 * Commands arrive decoded from the log (by the executor's codec) and are validated here with
 * valibot: a malformed command is an `ApplicationError` for its index, identically on every member.
 *
 * Outputs, per command:
 * - `put` → `{ previous: string | null }` (the value it replaced)
 * - `get` → `{ value: string | null }` (a read through the log: linearizable, but costs an entry)
 * - `delete` → `{ previous: string | null }` (null when the key was absent)
 * - `cas` → `{ ok: boolean, current: string | null }`: sets `value` only when the key holds
 *   `expected` (`expected: null`: only when absent); `current` is the value after the command.
 * - `append` → `{ value: string }`: the concatenation (an absent key counts as '').
 * - `watch` / `unwatch` → `{ watching: prefixes[] }`: the command's session (it needs one) starts
 *   or stops watching the keys with `prefix`; from then on every change of such a key is published
 *   to the session as a `change` event with a `KvChange` payload, in log order, until it unwatches
 *   or the session ends. Watches are state: every member keeps them, and snapshots carry them.
 *
 * Queries (never through the log): `get` → `{ value }`, `size` → `{ size }`, `scan` →
 * `{ entries: [key, value][] }`, the first `limit` keys with `prefix` in code-unit order.
 *
 * @example
 * ```ts
 * const kv = new KvStateMachine();
 * const executor = new StateMachineExecutor(kv);
 * await executor.applyEntries([{ type: 'command', index: 1, term: 1, timeMs: 0, data: encodeEnvelope({ kind: 'plain', data: encodeKvCommand(kvCommand.put('a', '1')) }) }]);
 * executor.query(kvQuery.get('a')); // { value: '1' }
 * ```
 * @module
 */
import * as v from 'valibot';
import { cborCodec, type CommandCodec } from './codec.ts';
import type { ApplyContext } from './context.ts';
import { splitLeadingFrame, withLeadingFrame } from './frames.ts';
import { decodeKvFrames, encodeKvFrames, kvSnapshotChunkBytesTarget } from './kv-snapshot.ts';
import type { Commit, StateMachine } from './state-machine.ts';

/** Longest key, in UTF-16 code units. */
export const kvKeyLengthMax = 1024;
/** Longest value, in UTF-16 code units (an append that would pass it fails). */
export const kvValueLengthMax = 1_048_576;
/** Most prefixes one session watches at once (a further `watch` fails). */
export const kvWatchesPerSessionMax = 64;
/** Most sessions watching at once (a further session's first `watch` fails). */
export const kvWatchingSessionsMax = 4096;
/** Largest watch-table frame a snapshot may lead with, in bytes (the limits above bound it). */
export const kvWatchFrameBytesMax = kvWatchingSessionsMax * kvWatchesPerSessionMax *
  (3 * kvKeyLengthMax + 16);
/** Most entries one `scan` query returns. */
export const kvScanLimitMax = 10_000;
/**
 * Largest snapshot frame body restore accepts, in bytes: a frame of small pairs stays under the
 * chunk target, and one oversize pair needs at most 3 bytes per code unit plus headers.
 */
export const kvSnapshotFrameBytesMax = Math.max(
  kvSnapshotChunkBytesTarget,
  3 * (kvKeyLengthMax + kvValueLengthMax) + 64,
);

/** A string of at most `L` characters. */
type StringMaxSchema<L extends number> = v.SchemaWithPipe<
  readonly [v.StringSchema<undefined>, v.MaxLengthAction<string, L, undefined>]
>;
/** A strict object schema whose `op` is `Op`, with the entries `E` besides. */
type OpSchema<Op extends string, E extends v.ObjectEntries> = v.StrictObjectSchema<
  { readonly op: v.LiteralSchema<Op, undefined> } & E,
  undefined
>;

const KeySchema: v.SchemaWithPipe<
  readonly [
    v.StringSchema<undefined>,
    v.MinLengthAction<string, 1, undefined>,
    v.MaxLengthAction<string, typeof kvKeyLengthMax, undefined>,
  ]
> = v.pipe(v.string(), v.minLength(1), v.maxLength(kvKeyLengthMax));
const ValueSchema: StringMaxSchema<typeof kvValueLengthMax> = v.pipe(
  v.string(),
  v.maxLength(kvValueLengthMax),
);
const PrefixSchema: StringMaxSchema<typeof kvKeyLengthMax> = v.pipe(
  v.string(),
  v.maxLength(kvKeyLengthMax),
);
type Key = { readonly key: typeof KeySchema };
type KeyValue = { readonly key: typeof KeySchema; readonly value: typeof ValueSchema };
type Prefix = { readonly prefix: typeof PrefixSchema };

/** Every command the key-value state machine accepts, as a valibot schema. */
export const KvCommandSchema: v.VariantSchema<
  'op',
  [
    OpSchema<'put', KeyValue>,
    OpSchema<'get', Key>,
    OpSchema<'delete', Key>,
    OpSchema<
      'cas',
      KeyValue & { readonly expected: v.NullableSchema<typeof ValueSchema, undefined> }
    >,
    OpSchema<'append', KeyValue>,
    OpSchema<'watch', Prefix>,
    OpSchema<'unwatch', Prefix>,
  ],
  undefined
> = v.variant('op', [
  v.strictObject({ op: v.literal('put'), key: KeySchema, value: ValueSchema }),
  v.strictObject({ op: v.literal('get'), key: KeySchema }),
  v.strictObject({ op: v.literal('delete'), key: KeySchema }),
  v.strictObject({
    op: v.literal('cas'),
    key: KeySchema,
    expected: v.nullable(ValueSchema),
    value: ValueSchema,
  }),
  v.strictObject({ op: v.literal('append'), key: KeySchema, value: ValueSchema }),
  /** Watch every key that starts with `prefix` (the empty prefix: every key); needs a session. */
  v.strictObject({ op: v.literal('watch'), prefix: PrefixSchema }),
  v.strictObject({ op: v.literal('unwatch'), prefix: PrefixSchema }),
]);
export type KvCommand = v.InferOutput<typeof KvCommandSchema>;

/** Every query the key-value state machine answers, as a valibot schema. */
export const KvQuerySchema: v.VariantSchema<
  'op',
  [
    OpSchema<'get', Key>,
    OpSchema<'size', Record<never, never>>,
    OpSchema<'scan', {
      readonly prefix: typeof PrefixSchema;
      readonly limit: v.SchemaWithPipe<
        readonly [
          v.NumberSchema<undefined>,
          v.SafeIntegerAction<number, undefined>,
          v.MinValueAction<number, 1, undefined>,
          v.MaxValueAction<number, typeof kvScanLimitMax, undefined>,
        ]
      >;
    }>,
  ],
  undefined
> = v.variant('op', [
  v.strictObject({ op: v.literal('get'), key: KeySchema }),
  v.strictObject({ op: v.literal('size') }),
  v.strictObject({
    op: v.literal('scan'),
    prefix: v.pipe(v.string(), v.maxLength(kvKeyLengthMax)),
    limit: v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(kvScanLimitMax)),
  }),
]);
export type KvQuery = v.InferOutput<typeof KvQuerySchema>;

/** The output of each command, by `op`. */
export type KvOutput =
  | { previous: string | null } // put, delete
  | { value: string | null } // get, append (append's value is never null)
  | { ok: boolean; current: string | null } // cas
  | { watching: string[] }; // watch, unwatch: the session's prefixes after the command

/**
 * What a watching session receives, as the payload of a `change` event, for every put, delete,
 * successful compare-and-set and append of a key it watches: the key, the value after the command
 * (null: deleted) and the command's log index.
 */
export type KvChange = { key: string; value: string | null; index: number };

/** The output of each query, by `op`. */
export type KvQueryOutput =
  | { value: string | null }
  | { size: number }
  | { entries: [string, string][] };

/**
 * Builders for commands, so that the client and the command line never spell the shapes by hand.
 *
 * @example
 * ```ts
 * encodeKvCommand(kvCommand.cas('lock', null, 'owner-1'));
 * ```
 */
export const kvCommand = {
  put: (key: string, value: string): KvCommand => ({ op: 'put', key, value }),
  get: (key: string): KvCommand => ({ op: 'get', key }),
  delete: (key: string): KvCommand => ({ op: 'delete', key }),
  cas: (key: string, expected: string | null, value: string): KvCommand => ({
    op: 'cas',
    key,
    expected,
    value,
  }),
  append: (key: string, value: string): KvCommand => ({ op: 'append', key, value }),
  watch: (prefix: string): KvCommand => ({ op: 'watch', prefix }),
  unwatch: (prefix: string): KvCommand => ({ op: 'unwatch', prefix }),
} as const;

/**
 * Builders for queries.
 *
 * @example
 * ```ts
 * executor.query(kvQuery.scan('user/', 100));
 * ```
 */
export const kvQuery = {
  get: (key: string): KvQuery => ({ op: 'get', key }),
  size: (): KvQuery => ({ op: 'size' }),
  scan: (prefix: string, limit: number): KvQuery => ({ op: 'scan', prefix, limit }),
} as const;

const kvCodec: CommandCodec<KvCommand> = cborCodec<KvCommand>();

/**
 * Encode a key-value command into log bytes (CBOR, the executor's default codec). Validates
 * first, so a client learns of a malformed command before it costs a log entry.
 *
 * @example
 * ```ts
 * const data = encodeKvCommand(kvCommand.put('a', '1'));
 * ```
 */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  return kvCodec.encode(parseKvCommand(command));
}

/**
 * Validate an untrusted value as a `KvCommand`; throws `TypeError` naming the problem.
 *
 * @example
 * ```ts
 * parseKvCommand({ op: 'put', key: 'a', value: '1' }); // ok
 * ```
 */
export function parseKvCommand(input: unknown): KvCommand {
  const result = v.safeParse(KvCommandSchema, input);
  if (!result.success) {
    throw new TypeError(`Invalid key-value command: ${describe(result.issues[0])}`);
  }
  return result.output;
}

function describe(issue: v.BaseIssue<unknown>): string {
  const path = issue.path?.map((p) => String(p.key)).join('.');
  return path === undefined ? issue.message : `${path}: ${issue.message}`;
}

/**
 * The key-value state machine. Its command type is `unknown` because commands come from the
 * log, decoded but untrusted; `apply` validates them.
 *
 * Snapshots copy the keys and values into two arrays (O(n) and synchronous, but no serialization:
 * about 5 ms for 200k keys) and stream the copy in frames of at most `kvSnapshotChunkBytesTarget`
 * bytes while applying goes on.
 *
 * @example
 * ```ts
 * const kv = new KvStateMachine();
 * kv.apply({ index: 1, term: 1, timeMs: 0, command: kvCommand.put('a', '1') }, context); // { previous: null }
 * kv.query(kvQuery.get('a')); // { value: '1' }
 * ```
 */
export class KvStateMachine implements StateMachine<unknown, KvOutput, unknown, KvQueryOutput> {
  #map = new Map<string, string>();
  /** Watched prefixes by session, in the order the sessions first watched (deterministic). */
  #watches = new Map<number, string[]>();

  /** The map as the shared command semantics see it (`applyKvCommand`). */
  readonly #store: KvStore = {
    get: (key) => this.#map.get(key) ?? null,
    set: (key, value) => void this.#map.set(key, value),
    delete: (key) => void this.#map.delete(key),
  };

  /**
   * Apply one command; throws `TypeError` (malformed, or a watch without a session) or
   * `RangeError` (append too long, too many watches).
   */
  apply(commit: Commit<unknown>, context?: ApplyContext): KvOutput {
    return applyKvCommand(this.#store, this.#watches, commit, context);
  }

  /** Answer a query; throws `TypeError` for a malformed one. */
  query(input: unknown): KvQueryOutput {
    const query = parseKvQuery(input);
    switch (query.op) {
      case 'get':
        return { value: this.#map.get(query.key) ?? null };
      case 'size':
        return { size: this.#map.size };
      case 'scan': {
        // O(n) over the keys, then a sort of the matches: fine for an example, not an index.
        const keys: string[] = [];
        for (const key of this.#map.keys()) if (key.startsWith(query.prefix)) keys.push(key);
        keys.sort();
        return { entries: keys.slice(0, query.limit).map((k) => [k, this.#map.get(k)!]) };
      }
    }
  }

  /** Capture the map and the watches now (copies) and stream them in bounded frames. */
  snapshot(): AsyncIterable<Uint8Array> {
    // Two preallocated arrays filled by forEach: several times faster to capture than `new Map`
    // on V8 (5 ms against 45-90 ms for 200k keys), and the capture blocks the event loop.
    const keys = new Array<string>(this.#map.size);
    const values = new Array<string>(this.#map.size);
    let i = 0;
    this.#map.forEach((value, key) => {
      keys[i] = key;
      values[i++] = value;
    });
    // The watch table leads, as one frame: [session, [prefix, ...]] pairs, in watch order.
    const watches = watchCodec.encode([...this.#watches].map(([id, p]) => [id, [...p]]));
    return withLeadingFrame(watches, encodeKvFrames(keys, values));
  }

  /** Replace the state with a snapshot's; on a corrupt snapshot throws and keeps the old state. */
  async restore(chunks: AsyncIterable<Uint8Array>, _context?: ApplyContext): Promise<void> {
    const { frame, rest } = await splitLeadingFrame(chunks, kvWatchFrameBytesMax, 'watch table');
    const watches = parseWatchTable(watchCodec.decode(frame));
    const map = new Map<string, string>();
    await decodeKvFrames(rest, kvSnapshotFrameBytesMax, (key, value) => {
      if (key.length < 1 || key.length > kvKeyLengthMax || value.length > kvValueLengthMax) {
        throw new Error(`Snapshot holds a key or value out of bounds: key length ${key.length}`);
      }
      map.set(key, value);
    });
    this.#map = map;
    this.#watches = watches;
  }
}

const watchCodec = cborCodec<unknown>();

/**
 * Validate an untrusted value as a `KvQuery`; throws `TypeError` naming the problem. Shared by
 * every variant of the key-value machine.
 *
 * @example
 * ```ts
 * parseKvQuery({ op: 'size' }); // { op: 'size' }
 * ```
 */
export function parseKvQuery(input: unknown): KvQuery {
  const result = v.safeParse(KvQuerySchema, input);
  if (!result.success) {
    throw new TypeError(`Invalid key-value query: ${describe(result.issues[0])}`);
  }
  return result.output;
}

/**
 * The keys and values as the command semantics need them: the in-memory map, or a database on
 * disk (`LmdbKvStateMachine`). Every variant of the key-value machine applies commands through
 * `applyKvCommand` over one of these, so that they all behave alike.
 */
export interface KvStore {
  /** The value of `key`, or null when absent. */
  get(key: string): string | null;
  set(key: string, value: string): void;
  /** Remove `key` (present). */
  delete(key: string): void;
}

/**
 * Apply one key-value command to `store` and `watches` (see the module comment for the outputs);
 * throws `TypeError` (malformed, or a watch without a session) or `RangeError` (append too long,
 * too many watches), having changed nothing. `watchesChanged` is told of every session whose
 * watches this command changed (a watch, an unwatch, a session found gone while publishing).
 *
 * @example
 * ```ts
 * applyKvCommand(store, watches, { index: 1, term: 1, timeMs: 0, command: kvCommand.put('a', '1') }, context);
 * ```
 */
export function applyKvCommand(
  store: KvStore,
  watches: Map<number, string[]>,
  commit: Commit<unknown>,
  context?: ApplyContext,
  watchesChanged?: (session: number) => void,
): KvOutput {
  const command = parseKvCommand(commit.command);
  if (command.op === 'watch' || command.op === 'unwatch') {
    const watching = updateWatches(watches, command, context);
    watchesChanged?.(context!.session);
    return { watching };
  }
  const current = store.get(command.key);
  let after: string | null;
  let output: KvOutput;
  switch (command.op) {
    case 'put':
      store.set(command.key, command.value);
      after = command.value;
      output = { previous: current };
      break;
    case 'get':
      return { value: current };
    case 'delete':
      if (current === null) return { previous: null };
      store.delete(command.key);
      after = null;
      output = { previous: current };
      break;
    case 'cas':
      if (current !== command.expected) return { ok: false, current };
      store.set(command.key, command.value);
      after = command.value;
      output = { ok: true, current: command.value };
      break;
    case 'append': {
      const lengthAfter = (current?.length ?? 0) + command.value.length;
      if (lengthAfter > kvValueLengthMax) {
        throw new RangeError(
          `Value too long after append: ${lengthAfter} code units, limit ${kvValueLengthMax}`,
        );
      }
      after = (current ?? '') + command.value;
      store.set(command.key, after);
      output = { value: after };
      break;
    }
  }
  if (watches.size > 0 && context !== undefined) {
    const change = { key: command.key, value: after, index: commit.index };
    if (watchesChanged === undefined) publishChange(watches, change, context);
    else {
      // Sessions found gone lose their watches: say which.
      const gone: number[] = [];
      publishChange(watches, change, {
        ...context,
        publish: (session, name, payload) => {
          const delivered = context.publish(session, name, payload);
          if (!delivered) gone.push(session);
          return delivered;
        },
      });
      for (const session of gone) watchesChanged(session);
    }
  }
  return output;
}

/**
 * Carry out `watch` or `unwatch` for the command's session; returns its prefixes after. Shared by
 * every variant of the key-value machine, so that they behave alike.
 */
export function updateWatches(
  watches: Map<number, string[]>,
  command: { op: 'watch' | 'unwatch'; prefix: string },
  context: ApplyContext | undefined,
): string[] {
  const session = context?.session ?? 0;
  if (session === 0) throw new TypeError(`${command.op} needs a client session`);
  const prefixes = watches.get(session) ?? [];
  if (command.op === 'unwatch') {
    const left = prefixes.filter((p) => p !== command.prefix);
    if (left.length === 0) watches.delete(session);
    else watches.set(session, left);
    return left;
  }
  if (prefixes.includes(command.prefix)) return [...prefixes];
  if (prefixes.length >= kvWatchesPerSessionMax) {
    throw new RangeError(
      `Too many watches: session ${session} watches ${prefixes.length} prefixes, limit kvWatchesPerSessionMax ${kvWatchesPerSessionMax}`,
    );
  }
  if (prefixes.length === 0 && watches.size >= kvWatchingSessionsMax) {
    throw new RangeError(
      `Too many watching sessions: ${watches.size}, limit kvWatchingSessionsMax ${kvWatchingSessionsMax}`,
    );
  }
  const after = [...prefixes, command.prefix];
  watches.set(session, after);
  return [...after];
}

/**
 * Publish `change` to every session watching a prefix of its key (once per session); a session
 * that no longer exists (expired or closed) loses its watches.
 */
export function publishChange(
  watches: Map<number, string[]>,
  change: KvChange,
  context: ApplyContext,
): void {
  for (const [session, prefixes] of watches) {
    if (!prefixes.some((p) => change.key.startsWith(p))) continue;
    if (!context.publish(session, 'change', change)) watches.delete(session);
  }
}

/** Validate a snapshot's watch table. */
export function parseWatchTable(input: unknown): Map<number, string[]> {
  const watches = new Map<number, string[]>();
  if (!Array.isArray(input) || input.length > kvWatchingSessionsMax) {
    throw new Error('Snapshot watch table is not a bounded array');
  }
  for (const item of input) {
    const ok = Array.isArray(item) && item.length === 2 && Number.isSafeInteger(item[0]) &&
      item[0] > 0 && Array.isArray(item[1]) && item[1].length <= kvWatchesPerSessionMax &&
      (item[1] as unknown[]).every((p) => typeof p === 'string' && p.length <= kvKeyLengthMax);
    if (!ok) throw new Error('Snapshot watch table holds a malformed entry');
    watches.set(item[0] as number, [...(item[1] as string[])]);
  }
  return watches;
}
