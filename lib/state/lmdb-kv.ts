/**
 * `LmdbKvStateMachine`: the key-value machine of `kv.ts` on disk, in the member's LMDB
 * environment: the same commands, queries, outputs and watch events (it applies commands through
 * the same `applyKvCommand`), with its keys, values, key count and watches in its own database
 * (layout in `lmdb-kv-layout.ts`). Nothing is rebuilt on restart: applying goes on from the
 * applied index the store holds, and snapshots are the store's.
 *
 * @example
 * ```ts
 * const server = await RaftServer.start({ ...options, stateMachine: new LmdbKvStateMachine() });
 * await server.propose({ op: 'put', key: 'k', value: 'v' }); // { previous: null }
 * ```
 * @module
 */
import { assert } from '../base/errors.ts';
import { cborCodec } from './codec.ts';
import type { ApplyContext } from './context.ts';
import type { DiskStateMachine, DiskStore } from './disk-state-machine.ts';
import {
  applyKvCommand,
  type KvOutput,
  type KvQueryOutput,
  type KvStore,
  parseKvQuery,
  parseWatchTable,
} from './kv.ts';
import {
  concatBytes,
  dataPrefix,
  decodeUnits,
  encodeUnits,
  kvDiskKeyPrefixBytes,
  kvDiskLongKeyBytes,
  prefixEnd,
  readUint,
  sizeKey,
  startsWithBytes,
  uintBytes,
  watchOrderKey,
  watchPrefix,
} from './lmdb-kv-layout.ts';
import type { Commit } from './state-machine.ts';

const recordCodec = cborCodec<unknown>();

/** Where a key lives: its own record (short) or a group of long keys sharing a prefix. */
type Place = { short: true; key: Uint8Array } | { short: false; group: Uint8Array };

function placeOf(key: string): Place {
  const encoded = encodeUnits(key);
  if (encoded.byteLength < kvDiskKeyPrefixBytes) {
    return { short: true, key: concatBytes(dataPrefix, encoded) };
  }
  return {
    short: false,
    group: concatBytes(dataPrefix, encoded.subarray(0, kvDiskKeyPrefixBytes)),
  };
}

/** A long key's record value: the key's length in bytes, the key, the value. */
function longRecord(key: string, value: string): Uint8Array {
  const k = encodeUnits(key);
  return concatBytes(uintBytes(k.byteLength, 4), k, encodeUnits(value));
}

function parseLongRecord(bytes: Uint8Array): [string, string] {
  const keyBytes = readUint(bytes, 0, 4);
  if (4 + keyBytes > bytes.byteLength) throw new Error('Malformed key-value record');
  return [decodeUnits(bytes.subarray(4, 4 + keyBytes)), decodeUnits(bytes.subarray(4 + keyBytes))];
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The key-value machine on disk; see the module comment. One instance per member. */
export class LmdbKvStateMachine
  implements DiskStateMachine<unknown, KvOutput, unknown, KvQueryOutput> {
  readonly onDisk = true as const;
  #store: DiskStore | null = null;
  /** Watched prefixes by session, in first-watch order (what `applyKvCommand` keeps up to date). */
  #watches = new Map<number, string[]>();
  /** Each watching session's order number, as stored. */
  #watchOrders = new Map<number, number>();
  readonly #kv: KvStore = {
    get: (key) => this.#get(key),
    set: (key, value) => this.#set(key, value),
    delete: (key) => this.#delete(key),
  };

  /** Load the watch table; everything else is read from the store as needed. */
  open(store: DiskStore, _context?: ApplyContext): void {
    this.#store = store;
    const rows: { session: number; order: number; prefixes: unknown }[] = [];
    for (
      const { key, value } of store.range({ start: watchPrefix, end: prefixEnd(watchPrefix)! })
    ) {
      const record = recordCodec.decode(value);
      if (
        !Array.isArray(record) || record.length !== 2 || !Number.isSafeInteger(record[0]) ||
        !Array.isArray(record[1]) || !record[1].every((p) => p instanceof Uint8Array)
      ) {
        throw new Error('Malformed watch record');
      }
      rows.push({
        session: readUint(key, watchPrefix.byteLength, 8),
        order: record[0],
        prefixes: (record[1] as Uint8Array[]).map(decodeUnits),
      });
    }
    rows.sort((a, b) => a.order - b.order);
    this.#watches = parseWatchTable(rows.map((r) => [r.session, r.prefixes]));
    this.#watchOrders = new Map(rows.map((r) => [r.session, r.order]));
  }

  /**
   * Apply one command (see `KvStateMachine`); throws `TypeError` (malformed, or a watch without a
   * session) or `RangeError` (append too long, too many watches).
   */
  apply(commit: Commit<unknown>, context: ApplyContext): KvOutput {
    return applyKvCommand(this.#kv, this.#watches, commit, context, (s) => this.#saveWatches(s));
  }

  /** Answer a query from the committed state; throws `TypeError` for a malformed one. */
  query(input: unknown): KvQueryOutput {
    const query = parseKvQuery(input);
    switch (query.op) {
      case 'get':
        return { value: this.#get(query.key) };
      case 'size':
        return { size: this.#size() };
      case 'scan':
        return { entries: this.#scan(query.prefix, query.limit) };
    }
  }

  get #db(): DiskStore {
    assert(this.#store !== null, 'LmdbKvStateMachine used before open');
    return this.#store;
  }

  #size(): number {
    const bytes = this.#db.get(sizeKey);
    return bytes === undefined ? 0 : recordCodec.decode(bytes) as number;
  }

  #addSize(delta: number): void {
    this.#db.put(sizeKey, recordCodec.encode(this.#size() + delta));
  }

  /** The records of the long-key group `group`: record key, key and value. */
  *#group(group: Uint8Array): Generator<{ recordKey: Uint8Array; key: string; value: string }> {
    for (const { key, value } of this.#db.range({ start: group, end: prefixEnd(group)! })) {
      const [k, v] = parseLongRecord(value);
      yield { recordKey: key, key: k, value: v };
    }
  }

  #get(key: string): string | null {
    const place = placeOf(key);
    if (place.short) {
      const bytes = this.#db.get(place.key);
      return bytes === undefined ? null : decodeUnits(bytes);
    }
    for (const r of this.#group(place.group)) if (r.key === key) return r.value;
    return null;
  }

  #set(key: string, value: string): void {
    const place = placeOf(key);
    if (place.short) {
      if (this.#db.get(place.key) === undefined) this.#addSize(1);
      this.#db.put(place.key, encodeUnits(value));
      return;
    }
    let next = 0;
    for (const r of this.#group(place.group)) {
      if (r.key === key) return this.#db.put(r.recordKey, longRecord(key, value));
      next = Math.max(next, readUint(r.recordKey, 1 + kvDiskKeyPrefixBytes, 4) + 1);
    }
    this.#db.put(concatBytes(place.group, uintBytes(next, 4)), longRecord(key, value));
    this.#addSize(1);
  }

  #delete(key: string): void {
    const place = placeOf(key);
    let recordKey: Uint8Array | null = null;
    if (place.short) recordKey = this.#db.get(place.key) === undefined ? null : place.key;
    else {
      for (const r of this.#group(place.group)) if (r.key === key) recordKey = r.recordKey;
    }
    if (recordKey === null) return;
    this.#db.remove(recordKey);
    this.#addSize(-1);
  }

  /** The first `limit` keys with `prefix`, in code-unit order, with their values. */
  #scan(prefix: string, limit: number): [string, string][] {
    const encoded = encodeUnits(prefix);
    const start = concatBytes(
      dataPrefix,
      encoded.subarray(0, Math.min(encoded.byteLength, kvDiskKeyPrefixBytes)),
    );
    const out: [string, string][] = [];
    let group: [string, string][] = [];
    let groupKey = null as Uint8Array | null;
    const flushGroup = () => {
      group.sort((a, b) => compareText(a[0], b[0]));
      for (const pair of group) {
        if (out.length < limit && pair[0].startsWith(prefix)) out.push(pair);
      }
      group = [];
      groupKey = null;
    };
    for (const { key, value } of this.#db.range({ start, end: prefixEnd(start)! })) {
      const long = key.byteLength === kvDiskLongKeyBytes;
      const head = long ? key.subarray(0, 1 + kvDiskKeyPrefixBytes) : null;
      if (groupKey !== null && (head === null || !startsWithBytes(head, groupKey))) flushGroup();
      if (out.length >= limit) break;
      if (head !== null) {
        groupKey ??= head;
        group.push(parseLongRecord(value));
        continue;
      }
      const k = decodeUnits(key.subarray(1));
      if (k.startsWith(prefix)) out.push([k, decodeUnits(value)]);
    }
    if (groupKey !== null) flushGroup();
    return out;
  }

  /** Store `session`'s watches as `#watches` holds them now (none: remove the record). */
  #saveWatches(session: number): void {
    const key = concatBytes(watchPrefix, uintBytes(session, 8));
    const prefixes = this.#watches.get(session);
    if (prefixes === undefined) {
      if (this.#watchOrders.delete(session)) this.#db.remove(key);
      return;
    }
    let order = this.#watchOrders.get(session);
    if (order === undefined) {
      const stored = this.#db.get(watchOrderKey);
      order = stored === undefined ? 1 : recordCodec.decode(stored) as number;
      this.#db.put(watchOrderKey, recordCodec.encode(order + 1));
      this.#watchOrders.set(session, order);
    }
    this.#db.put(key, recordCodec.encode([order, prefixes.map(encodeUnits)]));
  }
}
