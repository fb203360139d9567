/**
 * The session oracle: what the simulator knows about client sessions from the committed log, the
 * results members produced and the events they published, against which the simulated session
 * clients (`session-client.ts`) check what they were told.
 *
 * It follows the committed log in index order (each entry as first seen by any member, with the
 * result of its first application) and holds a model of the session rules, written from their
 * statement rather than from the session table: a session lives from its registration entry
 * (whose index is its id) until its unregistration, or until log time passes its timeout since it
 * was last heard from, where a new leader's no-op counts as hearing from every session (time
 * without a leader never expires anyone). Every keep-alive and command result of every session is
 * held to that model (a false expiry, or a session that outlived its timeout), and so is every
 * UNKNOWN_SESSION a client receives.
 *
 * It also keeps: the first application of each (session, sequence) with its index and output (a
 * retry must be answered with exactly that; a second application is a double effect); the value of
 * each key the session clients append to, index by index (what a sequential read at an index must
 * return); and every event published to each session, by event index (the same on every member).
 *
 * @example
 * ```ts
 * const oracle = new SessionOracle({ eventsMax: 65_536, fail: (m) => { throw new Error(m); } });
 * probe.committed = (entries) => oracle.observeCommitted(entries);
 * probe.applied = (result) => oracle.observeApplied(result);
 * driver.onSessionEvent((session, event) => oracle.observeEvent(session, event));
 * ```
 * @module
 */
import type { Entry } from '../base/messages.ts';
import { cborCodec } from '../state/codec.ts';
import { decodeEnvelope, type Envelope } from '../state/envelope.ts';
import type { ApplyResult } from '../state/executor.ts';
import type { SessionEvent } from '../state/sessions.ts';

/** A session as the model holds it. */
type ModelSession = { timeoutMs: number; lastHeardMs: number; lastHeardIndex: number };

/** The first application of a session's command. */
export type FirstApplication = { index: number; output: unknown };

/** How a session ended in the model. */
type Ended = { how: 'expired' | 'unregistered'; index: number; timeMs: number };

const commandCodec = cborCodec<unknown>();

/** See the module comment. One per simulation. */
export class SessionOracle {
  readonly #eventsMax: number;
  readonly #fail: (message: string) => void;
  readonly #entries = new Map<number, Entry>();
  readonly #results = new Map<number, ApplyResult<unknown>>();
  /** Entries 1..#processedIndex have been followed. */
  #processedIndex = 0;
  #timeMs = 0;
  readonly #alive = new Map<number, ModelSession>();
  readonly #ended = new Map<number, Ended>();
  readonly #first = new Map<string, FirstApplication>();
  readonly #loggedAt = new Map<string, number>();
  /** The first (session, sequence) committed at two indexes: reported at the end. */
  #loggedTwice: string | null = null;
  /** Per key appended to in a session: [index, value after] in index order. */
  readonly #values = new Map<string, Array<[number, string]>>();
  readonly #events = new Map<number, Map<number, SessionEvent>>();
  /** Sessions the model expired (by log time). */
  expiries = 0;
  /** Results or answers that said a live session was unknown (each one also fails the run). */
  falseExpiries = 0;

  constructor(o: { eventsMax: number; fail: (message: string) => void }) {
    this.#eventsMax = o.eventsMax;
    this.#fail = o.fail;
  }

  /** Committed entries handed to a member's state machine (any member, in its order). */
  observeCommitted(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index > this.#processedIndex && !this.#entries.has(e.index)) {
        this.#entries.set(e.index, e);
      }
    }
    this.#advance();
  }

  /** A command entry's result at a member. */
  observeApplied(result: ApplyResult<unknown>): void {
    if (result.index > this.#processedIndex && !this.#results.has(result.index)) {
      this.#results.set(result.index, result);
    }
    this.#advance();
  }

  /** An event a member published to `session` as it applied the entry at `event.index`. */
  observeEvent(session: number, event: SessionEvent): void {
    let events = this.#events.get(session);
    if (events === undefined) this.#events.set(session, events = new Map());
    const known = events.get(event.eventIndex);
    if (known === undefined) {
      events.set(event.eventIndex, event);
      return;
    }
    if (
      known.index !== event.index || known.name !== event.name ||
      JSON.stringify(known.payload) !== JSON.stringify(event.payload)
    ) {
      this.#fail(
        `Session ${session}: event ${event.eventIndex} is ${describeEvent(event)} on one member, ${
          describeEvent(known)
        } on another`,
      );
    }
  }

  /** The event `eventIndex` published to `session`, if any member published it. */
  event(session: number, eventIndex: number): SessionEvent | undefined {
    return this.#events.get(session)?.get(eventIndex);
  }

  /**
   * True when the event may have been dropped by its session's bound on unacknowledged events
   * (`sessionEventsMax` later events were published): the only gap a client may see.
   */
  mayHaveDropped(session: number, eventIndex: number): boolean {
    return this.#events.get(session)?.has(eventIndex + this.#eventsMax) === true;
  }

  /** The first application of `sequence` of `session`, once some member applied it. */
  firstApplication(session: number, sequence: number): FirstApplication | undefined {
    return this.#first.get(`${session}.${sequence}`);
  }

  /** The value of `key` in the state at `index` (null: never appended to by then). */
  valueAt(key: string, index: number): string | null {
    const values = this.#values.get(key);
    if (values === undefined) return null;
    let lo = 0;
    let hi = values.length; // the answer is values[lo - 1]
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid]![0] <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? null : values[lo - 1]![1];
  }

  /** How `session` ended in the followed log (null: it lives, or was never seen). */
  ended(session: number): Ended | null {
    return this.#ended.get(session) ?? null;
  }

  /**
   * A client was told by `where` that `session` is unknown. The member that said so judged from
   * the state it had applied, and the oracle has followed at least that much of the log (every
   * applied result was observed as it was produced): the session must have ended in it.
   */
  checkUnknownSession(session: number, where: string): void {
    this.#advance();
    if (this.#ended.has(session)) return;
    const s = this.#alive.get(session);
    if (s === undefined) return; // registered past what was followed: cannot judge here
    this.falseExpiries++;
    this.#fail(
      `False expiry: ${where} answered that session ${session} is unknown, but it lives (last heard from at log time ${s.lastHeardMs}, index ${s.lastHeardIndex}; timeout ${s.timeoutMs} ms; log followed to index ${this.#processedIndex})`,
    );
  }

  /** Checks that can only be judged once the run is over. */
  finalCheck(): void {
    this.#advance();
    if (this.#loggedTwice !== null) this.#fail(this.#loggedTwice);
  }

  /** Follow the log as far as entries (and the results of command entries) are known. */
  #advance(): void {
    for (;;) {
      const index = this.#processedIndex + 1;
      const entry = this.#entries.get(index);
      if (entry === undefined) return;
      const result = this.#results.get(index);
      if (entry.type === 'command' && result === undefined) return;
      this.#entries.delete(index);
      this.#results.delete(index);
      this.#processedIndex = index;
      this.#follow(entry, result);
    }
  }

  #follow(entry: Entry, result: ApplyResult<unknown> | undefined): void {
    const index = entry.index;
    if (entry.timeMs > this.#timeMs) this.#timeMs = entry.timeMs;
    const t = this.#timeMs;
    // A new leader's no-op: no session could be heard from while there was no leader.
    if (entry.type === 'noop') {
      for (const s of this.#alive.values()) {
        if (t > s.lastHeardMs) [s.lastHeardMs, s.lastHeardIndex] = [t, index];
      }
    }
    for (const [id, s] of this.#alive) {
      if (s.lastHeardMs + s.timeoutMs < t) {
        this.#alive.delete(id);
        this.#ended.set(id, { how: 'expired', index, timeMs: t });
        this.expiries++;
      }
    }
    if (entry.type !== 'command' || result === undefined) return;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(entry.data);
    } catch {
      return;
    }
    switch (envelope.kind) {
      case 'register':
        this.#alive.set(index, {
          timeoutMs: envelope.timeoutMs,
          lastHeardMs: t,
          lastHeardIndex: index,
        });
        return;
      case 'unregister':
        if (this.#alive.delete(envelope.session)) {
          this.#ended.set(envelope.session, { how: 'unregistered', index, timeMs: t });
        }
        return;
      case 'keepAlive':
        this.#heardFrom(envelope.session, index, t, result);
        return;
      case 'command':
        this.#heardFrom(envelope.session, index, t, result);
        this.#command(envelope, index, result);
        return;
      case 'plain':
        return;
    }
  }

  /** A keep-alive or command of `session` at `index`: its result must agree with the model. */
  #heardFrom(session: number, index: number, t: number, result: ApplyResult<unknown>): void {
    const unknown = !result.ok && result.error.code === 'UNKNOWN_SESSION';
    const s = this.#alive.get(session);
    if (s !== undefined) {
      if (unknown) {
        this.falseExpiries++;
        this.#fail(
          `False expiry: session ${session} was unknown at index ${index} (log time ${t}), but it was last heard from at log time ${s.lastHeardMs} (index ${s.lastHeardIndex}; a new leader's no-op counts), within its timeout ${s.timeoutMs} ms`,
        );
      }
      [s.lastHeardMs, s.lastHeardIndex] = [t, index];
      return;
    }
    const ended = this.#ended.get(session);
    if (!unknown && ended !== undefined) {
      this.#fail(
        `Session ${session} outlived its end: ${ended.how} at index ${ended.index} (log time ${ended.timeMs}), yet the entry at ${index} was applied in it`,
      );
    }
  }

  /** A session command's application: once per sequence, a retry answered as the first was. */
  #command(
    e: Extract<Envelope, { kind: 'command' }>,
    index: number,
    result: ApplyResult<unknown>,
  ): void {
    const key = `${e.session}.${e.sequence}`;
    const logged = this.#loggedAt.get(key);
    if (logged === undefined) this.#loggedAt.set(key, index);
    else {
      this.#loggedTwice ??=
        `Sequence logged twice: session ${e.session} sequence ${e.sequence} was committed at index ${logged} and again at ${index}`;
    }
    if (!result.ok) return;
    const first = this.#first.get(key);
    if (result.duplicate === true) {
      if (first === undefined) {
        this.#fail(
          `Session ${e.session} sequence ${e.sequence} at index ${index} was answered as a duplicate, but was never applied`,
        );
      } else if (JSON.stringify(first.output) !== JSON.stringify(result.output)) {
        this.#fail(
          `Session ${e.session} sequence ${e.sequence}: the duplicate at index ${index} was answered ${
            JSON.stringify(result.output)
          }, its first application at ${first.index} returned ${JSON.stringify(first.output)}`,
        );
      }
      return;
    }
    if (first !== undefined) {
      this.#fail(
        `Applied twice: session ${e.session} sequence ${e.sequence} took effect at index ${first.index} and again at ${index}`,
      );
      return;
    }
    this.#first.set(key, { index, output: result.output });
    let command: unknown;
    try {
      command = commandCodec.decode(e.data);
    } catch {
      return;
    }
    const c = command as { op?: unknown; key?: unknown };
    const output = result.output as { value?: unknown };
    if (c.op === 'append' && typeof c.key === 'string' && typeof output.value === 'string') {
      let values = this.#values.get(c.key);
      if (values === undefined) this.#values.set(c.key, values = []);
      values.push([index, output.value]);
    }
  }
}

function describeEvent(e: SessionEvent): string {
  return `${e.name}@${e.index} ${JSON.stringify(e.payload)}`;
}
