/**
 * A simulated client's connection to one member, modelling the client-port side of a real server:
 * requests reach the member's `handle` after a little latency, answers and session events come
 * back in one FIFO stream (as on one TCP connection), events reach the client only from the member
 * it is connected to (its `onSessionEvent`, for the sessions bound to the connection), and binding
 * a session (on connecting, or registering one) resends the events the member keeps for it
 * (`sessionEvents`). A crash of the member, or the client moving away, closes the connection: what
 * was in flight on it is lost.
 *
 * What a real port must also do (the simulator found it): a member that installs a snapshot never
 * publishes the events of the entries the snapshot covers, yet keeps them (unacknowledged) in its
 * session table. So the port remembers, per bound session, the last event index it sent, and
 * before it sends a session's event or an answer to one of its requests it first sends the kept
 * events past that (`#catchUp`); it also catches up when the member reports a snapshot installed.
 * Without it, an answer overtakes events published at or below its index, or events go missing.
 *
 * @example
 * ```ts
 * const port = new SimPort(time, random, member, (session, event) => client.onEvent(session, event));
 * port.bind(session);
 * const reply = await port.request({ kind: 'keepAlive', session, commandAck, eventAck }, 200);
 * if (reply === 'lost' || reply === 'timeout') port.close();
 * ```
 * @module
 */
import type { MemberReply, MemberRequest } from '../base/member-requests.ts';
import type { RandomSource } from '../core/random.ts';
import type { MemberDriver } from '../member/driver.ts';
import type { SessionEvent } from '../state/sessions.ts';
import type { VirtualTime } from './sim-time.ts';

/** What a request on a connection ends with: the member's answer, or nothing. */
export type PortOutcome = MemberReply | 'lost' | 'timeout';

/**
 * The member end of a connection: one incarnation of a member (`alive` turns false when it
 * crashes: from then on nothing of it reaches the client, as a dead process sends nothing).
 */
export type PortMember = {
  id: string;
  incarnation: number;
  driver: MemberDriver;
  alive: () => boolean;
};

/** Longest one-way latency between a client and a member, in virtual ms. */
const latencyMsMax = 1.5;

/** See the module comment. */
export class SimPort {
  readonly memberId: string;
  readonly incarnation: number;
  readonly #time: VirtualTime;
  readonly #random: RandomSource;
  readonly #driver: MemberDriver;
  readonly #alive: () => boolean;
  readonly #onEvent: (session: number, event: SessionEvent) => void;
  /** Bound sessions, with the last event index sent to the client for each. */
  readonly #bound = new Map<number, number>();
  readonly #unsubscribe: () => void;
  readonly #unsubscribeInstalls: () => void;
  readonly #pending = new Set<(outcome: PortOutcome) => void>();
  #open = true;
  /** The latest arrival time scheduled in each direction (FIFO, like TCP). */
  #toMemberAtMs = 0;
  #toClientAtMs = 0;

  constructor(
    time: VirtualTime,
    random: RandomSource,
    member: PortMember,
    onEvent: (session: number, event: SessionEvent) => void,
  ) {
    this.#time = time;
    this.#random = random;
    this.memberId = member.id;
    this.incarnation = member.incarnation;
    this.#driver = member.driver;
    this.#alive = member.alive;
    this.#onEvent = onEvent;
    this.#unsubscribe = member.driver.onSessionEvent((session, event) => {
      if (!this.#bound.has(session)) return;
      this.#catchUp(session);
      this.#send(session, event);
    });
    this.#unsubscribeInstalls = member.driver.onEvent((event) => {
      if (event.type !== 'snapshotInstalled') return;
      for (const session of this.#bound.keys()) this.#catchUp(session);
    });
  }

  get open(): boolean {
    return this.#open;
  }

  /**
   * From now on, `session`'s events on this member come down this connection; first the ones
   * the member keeps unacknowledged (the resend after a reconnect).
   */
  bind(session: number): void {
    if (!this.#open || this.#bound.has(session)) return;
    this.#bound.set(session, 0);
    this.#catchUp(session);
  }

  unbind(session: number): void {
    this.#bound.delete(session);
  }

  /** Send `request`; its answer, or `'lost'` (connection closed), or `'timeout'` after `timeoutMs`. */
  request(request: MemberRequest, timeoutMs: number): Promise<PortOutcome> {
    if (!this.#open) return Promise.resolve('lost');
    return new Promise<PortOutcome>((resolve) => {
      let done = false;
      const finish = (outcome: PortOutcome) => {
        if (done) return;
        done = true;
        this.#pending.delete(finish);
        cancelTimer();
        resolve(outcome);
      };
      this.#pending.add(finish);
      const cancelTimer = this.#time.schedule(timeoutMs, () => finish('timeout'));
      const session = request.kind === 'command' || request.kind === 'keepAlive'
        ? request.session
        : 0;
      this.#toMember(() => {
        this.#driver.handle(request).then((reply) => {
          if (this.#bound.has(session)) this.#catchUp(session);
          this.#toClient(() => finish(reply));
        });
      });
    });
  }

  /** Close the connection: nothing more arrives on it; requests in flight are lost. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#unsubscribe();
    this.#unsubscribeInstalls();
    this.#bound.clear();
    for (const finish of [...this.#pending]) finish('lost');
  }

  /** Send the events the member keeps for `session` past the last one sent. */
  #catchUp(session: number): void {
    const sent = this.#bound.get(session) ?? 0;
    const kept = this.#driver.sessionEvents(session);
    if (kept.length === 0 || kept.at(-1)!.eventIndex <= sent) return;
    for (const event of kept) if (event.eventIndex > sent) this.#send(session, event);
  }

  #send(session: number, event: SessionEvent): void {
    if ((this.#bound.get(session) ?? Infinity) >= event.eventIndex) return;
    this.#bound.set(session, event.eventIndex);
    this.#toClient(() => this.#onEvent(session, event));
  }

  #latencyMs(): number {
    return 0.05 + this.#random() * latencyMsMax;
  }

  #toMember(f: () => void): void {
    const at = Math.max(this.#time.nowMs + this.#latencyMs(), this.#toMemberAtMs);
    this.#toMemberAtMs = at;
    // The member takes the request synchronously (what it then awaits runs on the next turn, as
    // after a message delivery): no turn of its own needed.
    this.#time.schedule(at - this.#time.nowMs, () => {
      if (this.#open && this.#alive()) f();
    }, false);
  }

  #toClient(f: () => void): void {
    if (!this.#open || !this.#alive()) return;
    const at = Math.max(this.#time.nowMs + this.#latencyMs(), this.#toClientAtMs);
    this.#toClientAtMs = at;
    this.#time.schedule(at - this.#time.nowMs, () => {
      if (this.#open) f();
    });
  }
}
