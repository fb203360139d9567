/**
 * The session table as records, for state machines on disk: what changed in the table while a
 * batch was applied (`SessionChangeLog`, fed by `SessionTable`), written in the batch's own
 * transaction, and the whole table as records and back (to load it at open, to stream or install
 * it with a snapshot).
 *
 * One record per thing that changes on its own, so that a batch writes what it changed and no
 * more: a session's header (`['s', id]`: timeout, last activity, next sequence, event counters),
 * each kept result (`['r', id, sequence]`) and each unacknowledged event (`['e', id, eventIndex]`).
 * A session with thousands of kept results costs one small write per command, not a rewrite of
 * all of them.
 *
 * @example
 * ```ts
 * const changes = new SessionChangeLog();
 * table.journal = changes;
 * // ... apply a batch ...
 * for (const op of changes.drain(table)) op.value === null ? remove(op.key) : put(op.key, op.value);
 * ```
 * @module
 */
import * as v from 'valibot';
import type {
  CachedResult,
  Session,
  SessionEvent,
  SessionTable,
  SessionTableData,
} from './sessions.ts';
import { SessionTableDataSchema } from './sessions.ts';

/** The key of one session record. */
export type SessionRecordKey =
  | readonly ['s', number]
  | readonly ['r', number, number]
  | readonly ['e', number, number];

/** A record to write (`value` not null) or remove (`value` null). */
export type SessionRecordOp = { readonly key: SessionRecordKey; readonly value: unknown };

/** What a `SessionTable` reports as it changes (see `SessionTable.journal`). */
export interface SessionJournal {
  /** A session was registered or one of its header fields changed. */
  header(session: Session): void;
  /** A result was kept (`result`) or dropped (`null`). */
  result(session: number, sequence: number, result: CachedResult | null): void;
  /** An event was published (`event`) or dropped (`null`). */
  event(session: number, event: SessionEvent | null, eventIndex: number): void;
  /** A session is gone, with every result and event it held. */
  removed(session: Session): void;
}

type Header = {
  timeoutMs: number;
  lastActiveMs: number;
  nextSequence: number;
  nextEventIndex: number;
  eventsDropped: number;
};

/**
 * Collects a batch's changes to the session table; `drain` turns them into record operations
 * (the last change of each record wins) and starts afresh.
 */
export class SessionChangeLog implements SessionJournal {
  /** Sessions whose header is written from the table's state at `drain`. */
  readonly #headers = new Set<number>();
  /** Result and event records by `kind:id:n`, in first-change order. */
  readonly #records = new Map<string, SessionRecordOp>();

  /** True when nothing changed since the last `drain`. */
  get empty(): boolean {
    return this.#headers.size === 0 && this.#records.size === 0;
  }

  header(session: Session): void {
    this.#headers.add(session.id);
  }

  result(session: number, sequence: number, result: CachedResult | null): void {
    this.#records.set(`r:${session}:${sequence}`, {
      key: ['r', session, sequence],
      value: result === null ? null : { ...result },
    });
  }

  event(session: number, event: SessionEvent | null, eventIndex: number): void {
    this.#records.set(`e:${session}:${eventIndex}`, {
      key: ['e', session, eventIndex],
      value: event === null
        ? null
        : { index: event.index, name: event.name, payload: event.payload },
    });
  }

  removed(session: Session): void {
    this.#headers.add(session.id); // gone from the table by `drain`: its header is removed
    for (const sequence of session.results.keys()) this.result(session.id, sequence, null);
    for (const e of session.events) this.event(session.id, null, e.eventIndex);
  }

  /** The record operations for every change since the last call, then forget them. */
  drain(table: SessionTable): SessionRecordOp[] {
    const ops: SessionRecordOp[] = [];
    for (const id of this.#headers) {
      const s = table.get(id);
      ops.push({ key: ['s', id], value: s === undefined ? null : headerOf(s) });
    }
    for (const op of this.#records.values()) ops.push(op);
    this.#headers.clear();
    this.#records.clear();
    return ops;
  }
}

function headerOf(s: Session | SessionTableData[number]): Header {
  return {
    timeoutMs: s.timeoutMs,
    lastActiveMs: s.lastActiveMs,
    nextSequence: s.nextSequence,
    nextEventIndex: s.nextEventIndex,
    eventsDropped: s.eventsDropped,
  };
}

/** Every record of a whole table (as `SessionTable.toData()` gives it), headers first per session. */
export function* recordsOfSessions(data: SessionTableData): Generator<SessionRecordOp> {
  for (const s of data) {
    yield { key: ['s', s.id], value: headerOf(s) };
    for (const [sequence, result] of s.results) {
      yield { key: ['r', s.id, sequence], value: result };
    }
    for (const e of s.events) {
      yield {
        key: ['e', s.id, e.eventIndex],
        value: { index: e.index, name: e.name, payload: e.payload },
      };
    }
  }
}

const Natural = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const KeySchema = v.union([
  v.tuple([v.literal('s'), Natural]),
  v.tuple([v.literal('r'), Natural, Natural]),
  v.tuple([v.literal('e'), Natural, Natural]),
]);

/**
 * Assemble a table from its records, in any order (a store reads them in key order); the result
 * is validated like a snapshot's table. Throws `Error` naming a malformed record.
 */
export function sessionsOfRecords(
  records: Iterable<{ key: unknown; value: unknown }>,
): SessionTableData {
  type Draft = {
    header: Header | null;
    results: [number, unknown][];
    events: { eventIndex: number; value: unknown }[];
  };
  const drafts = new Map<number, Draft>();
  const draft = (id: number): Draft => {
    let d = drafts.get(id);
    if (d === undefined) drafts.set(id, d = { header: null, results: [], events: [] });
    return d;
  };
  for (const { key, value } of records) {
    const k = v.safeParse(KeySchema, key);
    if (!k.success) throw new Error(`Malformed session record key: ${JSON.stringify(key)}`);
    const [kind, id] = k.output;
    if (kind === 's') draft(id).header = value as Header;
    else if (kind === 'r') draft(id).results.push([k.output[2]!, value]);
    else draft(id).events.push({ eventIndex: k.output[2]!, value });
  }
  const data: unknown[] = [];
  for (const id of [...drafts.keys()].sort((a, b) => a - b)) {
    const d = drafts.get(id)!;
    if (d.header === null) throw new Error(`Session ${id} has records but no header`);
    d.results.sort((a, b) => a[0] - b[0]);
    d.events.sort((a, b) => a.eventIndex - b.eventIndex);
    data.push({
      id,
      ...d.header,
      results: d.results,
      events: d.events.map((e) => ({ eventIndex: e.eventIndex, ...(e.value as object) })),
    });
  }
  return v.parse(SessionTableDataSchema, data);
}
