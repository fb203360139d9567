/**
 * `LmdbMachineStore`: the `MachineStore` of a state machine on disk, in the member's own LMDB
 * environment (made by `LmdbStorage.openMachineStore`). Two generations of two databases each:
 * `machine.data.G` (the machine's records, binary keys in byte order) and `machine.meta.G` (the
 * applied index under `['a']` and the session records, see `session-journal.ts`). The storage's
 * `meta` database names the current generation (`machineGeneration`); the other one is where a
 * snapshot is staged, so that an install switches over in one small transaction.
 *
 * Commits: `commit` queues one lmdb `childTransaction`, which lmdb runs in the environment's next
 * write batch, on the main thread, together with whatever else that batch holds (the log's
 * appends of the same turn): one LMDB commit, one sync, and a throw from the body aborts only
 * this child. It does not wait for its own sync: `committed` resolves when the commit is visible,
 * `durable` when lmdb's `flushed` says it is synced (see `lmdb.ts` on overlapping sync). LMDB
 * commits in order, so whatever the log commits after it is never durable without it.
 *
 * @example
 * ```ts
 * const store = storage.openMachineStore();
 * const { applied } = store.load(); // { index: 0, term: 0, timeMs: 0 } when fresh
 * await store.commit((txn) => { store.data.put(key, value); txn.applied({ index: 1, term: 1, timeMs }); }).committed;
 * ```
 * @module
 */
import type { Database, RootDatabase, Transaction } from 'lmdb';
import * as v from 'valibot';
import { assert, StorageError } from '../base/errors.ts';
import { NaturalSchema } from '../base/messages.ts';
import {
  type AppliedState,
  diskKeyBytesMax,
  type DiskPair,
  type DiskRange,
  type DiskStore,
  diskValueBytesMax,
  type MachineStore,
  type MachineTransaction,
  type MachineView,
} from '../state/disk-state-machine.ts';
import { recordsOfSessions, sessionsOfRecords } from '../state/session-journal.ts';
import type { SessionTableData } from '../state/sessions.ts';
import { decodeRecord, encodeRecord } from './codec.ts';
import { commitDurably } from './commit.ts';

/** Bytes of staged snapshot records queued before waiting for their commit. */
export const installQueuedBytesMax = 8 * 1024 ** 2;

const AppliedSchema = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  timeMs: NaturalSchema,
});
const GenerationSchema = v.picklist([0, 1]);
const generationKey = 'machineGeneration';
const appliedKey: MetaKey = ['a'];
const fresh: AppliedState = { index: 0, term: 0, timeMs: 0 };

type Generation = 0 | 1;
type MetaKey = (string | number)[];

/** Plain LMDB for the machine's databases, as `lmdb.ts` spells it out for the log. */
const dbSettings = { encoding: 'binary', cache: false, compression: false } as const;

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.byteLength < 1 || key.byteLength > diskKeyBytesMax) {
    throw new RangeError(
      `Key of a state machine on disk out of bounds: ${
        key instanceof Uint8Array ? `${key.byteLength} bytes` : 'not bytes'
      }, 1 to diskKeyBytesMax ${diskKeyBytesMax}`,
    );
  }
}

function checkValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array) || value.byteLength > diskValueBytesMax) {
    throw new RangeError(
      `Value of a state machine on disk out of bounds: ${
        value instanceof Uint8Array ? `${value.byteLength} bytes` : 'not bytes'
      }, limit diskValueBytesMax ${diskValueBytesMax}`,
    );
  }
}

/** `getBinary` (a copy) in `transaction`, or in the current state; lmdb takes the option untyped. */
function readBinary<K extends string | MetaKey>(
  db: Database<Uint8Array, K>,
  key: K,
  transaction: Transaction | undefined,
): Uint8Array | undefined {
  const get = db.getBinary as (key: K, options?: { transaction: Transaction }) => Uint8Array;
  return get.call(db, key, transaction === undefined ? undefined : { transaction }) ?? undefined;
}

/** A commit failure as the `StorageError` it is (a throw from a commit body stays what it is). */
async function asStorageError(what: string, error: unknown): Promise<never> {
  const commitError = (error as { commitError?: Promise<unknown> }).commitError;
  if (!(commitError instanceof Promise)) throw error;
  const cause = await commitError.catch((e: unknown) => e);
  throw new StorageError(`${what} failed: ${(cause as Error)?.message ?? String(cause)}`, {
    cause,
  });
}

/** See the module comment. */
export class LmdbMachineStore implements MachineStore {
  readonly data: DiskStore;
  readonly #root: RootDatabase;
  readonly #meta: Database<Uint8Array, string>;
  readonly #dataDbs: readonly [Database<Uint8Array, Uint8Array>, Database<Uint8Array, Uint8Array>];
  readonly #metaDbs: readonly [Database<Uint8Array, MetaKey>, Database<Uint8Array, MetaKey>];
  #generation: Generation;
  /** Inside a commit body: the machine may write. */
  #writing = false;
  #installing = false;
  #failure: StorageError | null = null;

  /** Made by `LmdbStorage.openMachineStore`. */
  constructor(root: RootDatabase) {
    this.#root = root;
    this.#meta = root.openDB<Uint8Array, string>({
      name: 'meta',
      keyEncoding: 'ordered-binary',
      ...dbSettings,
    });
    const data = (g: Generation) =>
      root.openDB<Uint8Array, Uint8Array>({
        name: `machine.data.${g}`,
        keyEncoding: 'binary',
        ...dbSettings,
      });
    const meta = (g: Generation) =>
      root.openDB<Uint8Array, MetaKey>({
        name: `machine.meta.${g}`,
        keyEncoding: 'ordered-binary',
        ...dbSettings,
      });
    this.#dataDbs = [data(0), data(1)];
    this.#metaDbs = [meta(0), meta(1)];
    this.#generation = this.#readGeneration();
    const current = () => this.#dataDbs[this.#generation];
    this.data = {
      get: (key) => {
        checkKey(key);
        return current().getBinary(key);
      },
      range: (range = {}) => this.#range(current(), range, undefined),
      put: (key, value) => {
        assert(this.#writing, 'A state machine on disk wrote outside apply');
        checkKey(key);
        checkValue(value);
        current().put(key, value);
      },
      remove: (key) => {
        assert(this.#writing, 'A state machine on disk wrote outside apply');
        checkKey(key);
        current().remove(key);
      },
    };
  }

  #readGeneration(transaction?: Transaction): Generation {
    const bytes = readBinary(this.#meta, generationKey, transaction);
    return bytes === undefined
      ? 0
      : decodeRecord(bytes, GenerationSchema, 'machine generation record');
  }

  *#range(
    db: Database<Uint8Array, Uint8Array>,
    range: DiskRange,
    transaction: Transaction | undefined,
  ): Generator<DiskPair> {
    if (range.start !== undefined) checkKey(range.start);
    if (range.end !== undefined) checkKey(range.end);
    const options: Record<string, unknown> = {};
    if (range.start !== undefined) options.start = range.start;
    if (range.end !== undefined) options.end = range.end;
    if (range.limit !== undefined) options.limit = range.limit;
    if (transaction !== undefined) options.transaction = transaction;
    for (const { key, value } of db.getRange(options)) yield { key, value };
  }

  #readApplied(g: Generation, transaction?: Transaction): AppliedState {
    const bytes = readBinary(this.#metaDbs[g], appliedKey, transaction);
    return bytes === undefined ? fresh : decodeRecord(bytes, AppliedSchema, 'applied index record');
  }

  #readSessions(g: Generation, transaction?: Transaction): SessionTableData {
    const records: { key: unknown; value: unknown }[] = [];
    const options = transaction === undefined ? {} : { transaction };
    for (const { key, value } of this.#metaDbs[g].getRange(options)) {
      if (key.length === 1 && key[0] === appliedKey[0]) continue;
      records.push({ key: [...key], value: decodeRecord(value, v.unknown(), 'session record') });
    }
    try {
      return sessionsOfRecords(records);
    } catch (error) {
      throw new StorageError(`Corrupted session records: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  load(): { applied: AppliedState; sessions: SessionTableData } {
    this.#generation = this.#readGeneration();
    return {
      applied: this.#readApplied(this.#generation),
      sessions: this.#readSessions(this.#generation),
    };
  }

  commit(body: (txn: MachineTransaction) => void): {
    committed: Promise<void>;
    durable: Promise<void>;
  } {
    if (this.#failure !== null) {
      const failed = Promise.reject(this.#failure);
      failed.catch(() => {});
      return { committed: failed, durable: failed };
    }
    assert(!this.#installing, 'A batch was committed during a snapshot install');
    const meta = this.#metaDbs[this.#generation];
    const txn: MachineTransaction = {
      sessions: (ops) => {
        for (const op of ops) {
          if (op.value === null) meta.remove([...op.key]);
          else meta.put([...op.key], encodeRecord(op.value));
        }
      },
      applied: (state) => void meta.put(appliedKey, encodeRecord(state)),
    };
    const committed = this.#root.childTransaction(() => {
      this.#writing = true;
      try {
        body(txn);
      } finally {
        this.#writing = false;
      }
    }).then(() => {}, (error: unknown) => asStorageError('State machine commit', error))
      .catch((error: unknown) => {
        if (error instanceof StorageError) this.#failure = error;
        throw error;
      });
    // Taken now: the flush of the batch this transaction just joined (see `commit.ts`).
    const durable = new Promise<void>((resolve, reject) =>
      this.#root.flushed.then(() => resolve(), reject)
    ).then(() => committed);
    durable.catch(() => {});
    return { committed, durable };
  }

  view(): MachineView {
    const transaction = this.#root.useReadTransaction();
    let open = true;
    try {
      const g = this.#readGeneration(transaction);
      const applied = this.#readApplied(g, transaction);
      const sessions = this.#readSessions(g, transaction);
      const db = this.#dataDbs[g];
      return {
        applied,
        sessions,
        pairs: () => {
          assert(open, 'A closed machine view was read');
          return this.#range(db, {}, transaction);
        },
        close: () => {
          if (!open) return;
          open = false;
          transaction.done();
        },
      };
    } catch (error) {
      transaction.done();
      throw error;
    }
  }

  async install(
    applied: AppliedState,
    sessions: SessionTableData,
    pairs: AsyncIterable<readonly DiskPair[]>,
  ): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    assert(!this.#installing, 'Two snapshot installs at once');
    this.#installing = true;
    const target: Generation = this.#generation === 0 ? 1 : 0;
    const data = this.#dataDbs[target];
    const meta = this.#metaDbs[target];
    try {
      // What an interrupted install left there, if anything.
      await Promise.all([data.clearAsync(), meta.clearAsync()]);
      let queued: Promise<unknown>[] = [];
      let queuedBytes = 0;
      for await (const batch of pairs) {
        for (const { key, value } of batch) {
          checkKey(key);
          checkValue(value);
          queuedBytes += key.byteLength + value.byteLength;
        }
        queued.push(this.#root.transaction(() => {
          for (const { key, value } of batch) data.put(key, value);
        }));
        if (queuedBytes >= installQueuedBytesMax) {
          await Promise.all(queued);
          queued = [];
          queuedBytes = 0;
        }
      }
      await Promise.all(queued);
      // The switch: sessions, applied index and the generation, in one synced transaction.
      await commitDurably(this.#root, 'Snapshot install', () => {
        for (const op of recordsOfSessions(sessions)) meta.put([...op.key], encodeRecord(op.value));
        meta.put(appliedKey, encodeRecord(applied));
        this.#meta.put(generationKey, encodeRecord(target));
      });
      const old = this.#generation;
      this.#generation = target;
      // Space back; a view still reading the old generation keeps its own snapshot of it.
      await Promise.all([this.#dataDbs[old].clearAsync(), this.#metaDbs[old].clearAsync()]);
    } catch (error) {
      if (error instanceof StorageError) this.#failure = error;
      throw error;
    } finally {
      this.#installing = false;
    }
  }
}
