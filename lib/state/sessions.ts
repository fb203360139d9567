/**
 * Client sessions, as every member's state machine layer keeps them (Copycat's model): a session
 * is registered by a log entry (its id is that entry's index), kept alive by keep-alive entries and
 * by its commands, and expired by log time when it misses its timeout, identically on every member.
 * Expiry counts only log time that a leader produced: each new leader's first entry (its no-op)
 * renews every session, so that time without a leader, when no keep-alive could be logged, never
 * expires anyone (Copycat issue 70).
 *
 * Per session the table keeps the next sequence number to apply, the outputs of commands applied
 * and not yet acknowledged by the client (so a retried command gets its original output, and is
 * not applied again), and the events published to it and not yet acknowledged. All of it is part
 * of every snapshot.
 *
 * @module
 */
import * as v from 'valibot';
import { MinHeap } from './heap.ts';
import type { SessionJournal } from './session-journal.ts';

/** An event a state machine published to a session while applying the command at `index`. */
export type SessionEvent = {
  /** Numbers the session's events from 1, without gaps. */
  readonly eventIndex: number;
  /** The log index of the command that published it. */
  readonly index: number;
  readonly name: string;
  readonly payload: unknown;
};

/** A command's result as the session keeps it for a retry, with the index it was applied at. */
export type CachedResult =
  | { readonly index: number; readonly ok: true; readonly output: unknown }
  | { readonly index: number; readonly ok: false; readonly code: string; readonly message: string };

/** One session's state. */
export type Session = {
  readonly id: number;
  readonly timeoutMs: number;
  /** Log time of its registration, last keep-alive or last command (renewed by new leaders). */
  lastActiveMs: number;
  /** The sequence number of the next command to apply (the first is 1). */
  nextSequence: number;
  /** Results by sequence number, of commands whose output the client has not acknowledged. */
  readonly results: Map<number, CachedResult>;
  /** Events not yet acknowledged, oldest first. */
  events: SessionEvent[];
  nextEventIndex: number;
  /** Events dropped because `eventsMax` were unacknowledged (the client sees a gap). */
  eventsDropped: number;
};

type Deadline = { atMs: number; id: number; lastActiveMs: number };

/** Limits of a session table; every member must use the same (they shape the state). */
export type SessionLimits = {
  /** Results kept per session for retries; past it the oldest goes (its retry gets COMMAND_ERROR). */
  resultsMax: number;
  /** Unacknowledged events kept per session; past it the oldest goes. */
  eventsMax: number;
};

/** Largest session-table frame a snapshot may lead with, in bytes. */
export const sessionFrameBytesMax = 1024 ** 3;

/** Defaults of `SessionLimits`: generous for a client with thousands of commands in flight. */
export const sessionLimitsDefault: SessionLimits = { resultsMax: 65_536, eventsMax: 65_536 };

/**
 * Every session of one state machine.
 *
 * Invariants: a session's `results` hold only sequences below `nextSequence`; event indexes are
 * consecutive from the oldest kept.
 *
 * @example
 * ```ts
 * const t = new SessionTable(sessionLimitsDefault);
 * t.register(12, 1_000, 5_000); // session 12, registered at log time 1000
 * t.expireUpTo(7_000); // [12]
 * ```
 */
export class SessionTable {
  readonly #limits: SessionLimits;
  readonly #sessions = new Map<number, Session>();
  /**
   * Per session id, a sequence at or below its oldest kept result, so that `keep` finds the
   * oldest without `results.keys().next()`: V8's Map leaves a deleted entry as a hole until it
   * rehashes, and a fresh iterator walks every hole at the front, so trimming a full table of
   * 65,536 results that way cost about 22 µs per command (Node 20, measured 2026-12-04), as much as
   * a leader's whole share of a command at 256 in flight. Results are kept in increasing sequence
   * order, so the floor only moves up.
   */
  readonly #resultsFloor = new Map<number, number>();
  readonly #deadlines = new MinHeap<Deadline>((a, b) =>
    a.atMs < b.atMs || (a.atMs === b.atMs && a.id < b.id)
  );

  /**
   * Told of every change, if set: a state machine on disk writes the changed records in the
   * transaction of the batch that changed them (see `session-journal.ts`). `load` is not reported.
   */
  journal: SessionJournal | null = null;

  constructor(limits: SessionLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(id: number): Session | undefined {
    return this.#sessions.get(id);
  }

  /** Every session, by id. */
  all(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  register(id: number, timeMs: number, timeoutMs: number): Session {
    const session: Session = {
      id,
      timeoutMs,
      lastActiveMs: timeMs,
      nextSequence: 1,
      results: new Map(),
      events: [],
      nextEventIndex: 1,
      eventsDropped: 0,
    };
    this.#sessions.set(id, session);
    this.#resultsFloor.delete(id);
    this.#schedule(session);
    this.journal?.header(session);
    return session;
  }

  /** The session was heard from at log time `timeMs`. */
  touch(session: Session, timeMs: number): void {
    if (timeMs <= session.lastActiveMs) return;
    session.lastActiveMs = timeMs;
    this.#schedule(session);
    this.journal?.header(session);
  }

  /** The command `session.nextSequence` is being applied: expect the next one. */
  advanceSequence(session: Session): void {
    session.nextSequence++;
    this.journal?.header(session);
  }

  /** A keep-alive: the client has the outputs up to `commandAck` and the events up to `eventAck`. */
  acknowledge(session: Session, commandAck: number, eventAck: number): void {
    for (const seq of session.results.keys()) {
      if (seq > commandAck) continue;
      session.results.delete(seq);
      this.journal?.result(session.id, seq, null);
    }
    if (session.events.length > 0 && session.events[0]!.eventIndex <= eventAck) {
      if (this.journal !== null) {
        for (const e of session.events) {
          if (e.eventIndex <= eventAck) this.journal.event(session.id, null, e.eventIndex);
        }
      }
      session.events = session.events.filter((e) => e.eventIndex > eventAck);
    }
  }

  remove(id: number): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    this.journal?.removed(session);
    this.#resultsFloor.delete(id);
    return this.#sessions.delete(id);
  }

  /** Keep the result of the command `sequence` of `session` (it was just applied). */
  keep(session: Session, sequence: number, result: CachedResult): void {
    session.results.set(sequence, result);
    this.journal?.result(session.id, sequence, result);
    let floor = this.#resultsFloor.get(session.id);
    // A result below the floor (never in the executor's order) would be skipped: lower the floor.
    if (floor !== undefined && sequence < floor) floor = sequence;
    if (session.results.size > this.#limits.resultsMax) {
      // Sequences are integers and the floor is at or below the oldest: the first kept one found
      // walking up from it is the oldest (amortized one step per command).
      let oldest = floor ?? session.results.keys().next().value!;
      while (!session.results.has(oldest)) oldest++;
      session.results.delete(oldest);
      this.journal?.result(session.id, oldest, null);
      floor = oldest + 1;
    }
    if (floor !== undefined) this.#resultsFloor.set(session.id, floor);
  }

  /** Record an event published to `session` while applying the entry at `index`. */
  publish(session: Session, index: number, name: string, payload: unknown): SessionEvent {
    const event: SessionEvent = { eventIndex: session.nextEventIndex++, index, name, payload };
    session.events.push(event);
    this.journal?.event(session.id, event, event.eventIndex);
    if (session.events.length > this.#limits.eventsMax) {
      const dropped = session.events.shift()!;
      session.eventsDropped++;
      this.journal?.event(session.id, null, dropped.eventIndex);
    }
    this.journal?.header(session);
    return event;
  }

  /** Sessions whose timeout passed by log time `timeMs`, removed; oldest deadline first. */
  expireUpTo(timeMs: number): number[] {
    const expired: number[] = [];
    for (;;) {
      const top = this.#deadlines.peek();
      if (top === undefined || top.atMs >= timeMs) break;
      this.#deadlines.pop();
      const s = this.#sessions.get(top.id);
      // A later touch left a newer deadline: this one is stale.
      if (s === undefined || s.lastActiveMs !== top.lastActiveMs) continue;
      this.journal?.removed(s);
      this.#sessions.delete(top.id);
      this.#resultsFloor.delete(top.id);
      expired.push(top.id);
    }
    return expired;
  }

  /**
   * A new leader's first entry, at log time `timeMs`: no session could be kept alive while there
   * was no leader, so every session counts as heard from now.
   */
  renewAll(timeMs: number): void {
    for (const s of this.#sessions.values()) this.touch(s, timeMs);
  }

  /** The whole table as plain data (for snapshots). */
  toData(): SessionTableData {
    return [...this.#sessions.values()].map((s) => ({
      id: s.id,
      timeoutMs: s.timeoutMs,
      lastActiveMs: s.lastActiveMs,
      nextSequence: s.nextSequence,
      results: [...s.results.entries()].map(([seq, r]) => [seq, r] as [number, CachedResult]),
      events: s.events.map((e) => ({ ...e })),
      nextEventIndex: s.nextEventIndex,
      eventsDropped: s.eventsDropped,
    }));
  }

  /** Replace the table with one read from a snapshot (validated). */
  load(data: unknown): void {
    const parsed = v.parse(SessionTableDataSchema, data);
    this.#sessions.clear();
    this.#resultsFloor.clear();
    this.#deadlines.filter(() => false);
    for (const d of parsed) {
      const s: Session = {
        id: d.id,
        timeoutMs: d.timeoutMs,
        lastActiveMs: d.lastActiveMs,
        nextSequence: d.nextSequence,
        results: new Map(d.results.map(([seq, r]) => [seq, r as CachedResult])),
        events: d.events.map((e) => ({ ...e, payload: e.payload })),
        nextEventIndex: d.nextEventIndex,
        eventsDropped: d.eventsDropped,
      };
      this.#sessions.set(s.id, s);
      this.#schedule(s);
    }
  }

  #schedule(s: Session): void {
    this.#deadlines.push({
      atMs: s.lastActiveMs + s.timeoutMs,
      id: s.id,
      lastActiveMs: s.lastActiveMs,
    });
    // Stale deadlines are dropped as they surface; rebuild when they dominate the heap.
    if (this.#deadlines.size > 1024 && this.#deadlines.size > this.#sessions.size * 4) {
      this.#deadlines.filter((d) => this.#sessions.get(d.id)?.lastActiveMs === d.lastActiveMs);
    }
  }
}

type NaturalSchema = v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, 0, undefined>,
  ]
>;
type Str = v.StringSchema<undefined>;
type Unknown = v.UnknownSchema;
const Natural: NaturalSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const CachedResultSchema: v.UnionSchema<
  [
    v.ObjectSchema<{
      readonly index: NaturalSchema;
      readonly ok: v.LiteralSchema<true, undefined>;
      readonly output: Unknown;
    }, undefined>,
    v.ObjectSchema<{
      readonly index: NaturalSchema;
      readonly ok: v.LiteralSchema<false, undefined>;
      readonly code: Str;
      readonly message: Str;
    }, undefined>,
  ],
  undefined
> = v.union([
  v.object({ index: Natural, ok: v.literal(true), output: v.unknown() }),
  v.object({ index: Natural, ok: v.literal(false), code: v.string(), message: v.string() }),
]);

/** The session table in a snapshot. */
export const SessionTableDataSchema: v.ArraySchema<
  v.ObjectSchema<{
    readonly id: NaturalSchema;
    readonly timeoutMs: NaturalSchema;
    readonly lastActiveMs: NaturalSchema;
    readonly nextSequence: NaturalSchema;
    readonly results: v.ArraySchema<
      v.TupleSchema<[NaturalSchema, typeof CachedResultSchema], undefined>,
      undefined
    >;
    readonly events: v.ArraySchema<
      v.ObjectSchema<{
        readonly eventIndex: NaturalSchema;
        readonly index: NaturalSchema;
        readonly name: Str;
        readonly payload: Unknown;
      }, undefined>,
      undefined
    >;
    readonly nextEventIndex: NaturalSchema;
    readonly eventsDropped: NaturalSchema;
  }, undefined>,
  undefined
> = v.array(v.object({
  id: Natural,
  timeoutMs: Natural,
  lastActiveMs: Natural,
  nextSequence: Natural,
  results: v.array(v.tuple([Natural, CachedResultSchema])),
  events: v.array(v.object({
    eventIndex: Natural,
    index: Natural,
    name: v.string(),
    payload: v.unknown(),
  })),
  nextEventIndex: Natural,
  eventsDropped: Natural,
}));
/** The session table in a snapshot. */
export type SessionTableData = v.InferOutput<typeof SessionTableDataSchema>;
