/**
 * A member's event stream: every role, term and leader change, snapshot taken or installed,
 * failure and stop, numbered in order. Listeners are called synchronously, so none is dropped;
 * the most recent events are also kept for `since()`. Times come from the driver's clock.
 *
 * @module
 */
import type { Member } from '../base/messages.ts';
import type { Role } from '../core/raft.ts';

/** One event; `seq` counts from 1 without gaps. */
export type ServerEvent =
  & { seq: number; atMs: number }
  & (
    | { type: 'role'; role: Role; term: number }
    | { type: 'term'; term: number }
    | { type: 'leader'; leaderId: string | null; term: number }
    | { type: 'snapshotTaken'; index: number; term: number }
    | { type: 'snapshotInstalled'; index: number; term: number }
    /** The configuration in effect changed (a configuration entry was appended, or truncated away). */
    | { type: 'configuration'; index: number; members: Member[] }
    /** The PASSIVE members this member feeds changed. */
    | { type: 'feeding'; passives: string[] }
    /** On the leader: who feeds whom changed (feeder id to passive ids). */
    | { type: 'assignment'; assignment: Record<string, string[]> }
    /** On the leader: a PASSIVE member caught up (within `promotionLagEntriesMax`) or fell behind. */
    | { type: 'passiveLag'; member: string; lagEntries: number; caughtUp: boolean }
    /** The leader's balancer made a configuration change. */
    | { type: 'balancer'; op: string; member: string }
    | { type: 'failed'; message: string }
    | { type: 'stopped' }
  );

type EventBody = ServerEvent extends infer E ? E extends unknown ? Omit<E, 'seq' | 'atMs'> : never
  : never;

/**
 * A numbered event log with synchronous listeners.
 *
 * @example
 * ```ts
 * const log = new EventLog(100, () => Date.now());
 * log.subscribe((e) => console.log(e.seq, e.type));
 * log.emit({ type: 'term', term: 2 });
 * ```
 */
export class EventLog {
  readonly #retainedMax: number;
  readonly #nowMs: () => number;
  #retained: ServerEvent[] = [];
  #listeners = new Set<(event: ServerEvent) => void>();
  #seq = 0;

  /** `retainedMax`: events kept for `since`; `nowMs`: the clock that stamps them. */
  constructor(retainedMax: number, nowMs: () => number) {
    this.#retainedMax = retainedMax;
    this.#nowMs = nowMs;
  }

  emit(body: EventBody): void {
    const event = { ...body, seq: ++this.#seq, atMs: this.#nowMs() } as ServerEvent;
    this.#retained.push(event);
    if (this.#retained.length > this.#retainedMax * 2) {
      this.#retained = this.#retained.slice(-this.#retainedMax);
    }
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure must not stop the member or the other listeners.
      }
    }
  }

  subscribe(listener: (event: ServerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  since(seq: number): ServerEvent[] {
    return this.#retained.filter((e) => e.seq > seq);
  }
}
