/**
 * Clients' requests at a member, whichever member they reached (Copycat's command flow):
 *
 * - On the leader, a session's commands are put in the log in sequence order
 *   (`LeaderState.sequenceCommand`): one that arrives ahead of the next expected sequence waits in
 *   a bounded per-session queue (`sessionCommandsAheadMax`; further ahead is refused with a
 *   retryable COMMAND_ERROR); one whose sequence is already in the log is not logged again (it
 *   waits for that entry's result); one already applied is answered from the session's kept
 *   result. A new leader sequences nothing until it has applied its own no-op, so that it knows
 *   every sequence its predecessors logged.
 * - On any other member, commands, session requests and strong queries go to the leader in
 *   `forward` peer messages and the leader's answer is relayed, once this member has itself
 *   applied the command's index (so the client's next sequential read here sees its write, and
 *   the command's events, published as this member applies it, leave before its answer). With no
 *   leader the answer is NO_LEADER (retryable). Sequential queries are answered here, once the
 *   state covers the index the client last saw.
 *
 * @module
 */
import {
  CommandError,
  EdgeraftError,
  NotLeaderError,
  TimeoutError,
  UnknownSessionError,
} from '../base/errors.ts';
import {
  type MemberReply,
  MemberReplySchema,
  type MemberRequest,
  MemberRequestSchema,
  type ReconfigureRequest,
} from '../base/member-requests.ts';
import type { ForwardMessage, ForwardResponseMessage, RaftMessage } from '../base/messages.ts';
import { cborCodec } from '../state/codec.ts';
import { encodeEnvelope } from '../state/envelope.ts';
import type { SessionTable } from '../state/sessions.ts';
import * as v from 'valibot';
import type { Clock } from './ports.ts';

/** A command's outcome: the index it was applied at and its output. */
export type Reply = { index: number; output: unknown; duplicate?: boolean };

/** What the request handling needs from its driver. */
export type RequestHost = {
  id: string;
  clock: Clock;
  /** The leader's id if this member is it, for the current term. */
  leaderTerm(): number | null;
  leaderId(): string | null;
  /** The index of the current leader term's no-op (meaningful on the leader). */
  termStartIndex(): number;
  appliedIndex(): number;
  waitForApplied(index: number): Promise<void>;
  sessions(): SessionTable;
  /**
   * Append one envelope to the leader's log: its index at once, and its result once applied.
   * Throws the core's refusal synchronously (then nothing was appended).
   */
  append(entry: Uint8Array): { index: number; result: Promise<Reply> };
  /** Confirm a read at `consistency`; resolves with the index it covers (applied here). */
  read(consistency: 'linearizable' | 'lease' | 'sequential'): Promise<number>;
  query(query: unknown): unknown;
  send(message: RaftMessage): void;
  /** Longest session timeout granted, and the shortest, in ms. */
  sessionTimeoutMsMin: number;
  sessionTimeoutMsMax: number;
  sessionCommandsAheadMax: number;
  /** A forwarded request unanswered this long fails with TIMEOUT. */
  forwardTimeoutMs: number;
  // Membership (lib/member/reconfigure.ts): carried out by the leader, forwarded like commands.
  /** Make a configuration change as the leader; resolves once it is committed. */
  reconfigure(request: ReconfigureRequest): Promise<Reply>;
  /** The leader's view of the members. */
  members(): Reply;
  /**
   * As the leader, hand leadership to `to`: resolves once `to` leads, with `{ leaderId, term }`;
   * rejects with `TransferInvalidError` (not a member, not ACTIVE) or `TimeoutError`.
   */
  transferLeadership(to: string): Promise<Reply>;
  /** The current term. */
  term(): number;
  /** Deliberate bugs, for tests only. */
  unsafeFaults?: RequestsUnsafeFaults;
};

/**
 * Deliberate bugs of the request handling, for the simulator's mutation table only. Never set
 * them in production.
 */
export type RequestsUnsafeFaults = {
  /** The leader logs a retried command again instead of waiting for (or answering) its entry. */
  relogRetries?: boolean;
  /** A member relays the leader's answer at once, before it has applied the answer's index. */
  relayBeforeApplied?: boolean;
};

/** The names of every request-handling fault, for command lines and mutation tables. */
export const requestsUnsafeFaultNames = [
  'relogRetries',
  'relayBeforeApplied',
] as const satisfies ReadonlyArray<keyof RequestsUnsafeFaults>;

type Sequencer = {
  /** The next sequence to put in the log. */
  next: number;
  /** Sequences this leader put in the log this term and not yet applied, with their indexes. */
  logged: Map<number, number>;
  /** Commands ahead of `next`, waiting for their predecessors. */
  ahead: Map<number, { data: Uint8Array; resolve: (p: Promise<Reply>) => void }>;
};

type Forwarded = {
  /** The leader it was handed to. */
  to: string;
  request: MemberRequest;
  resolve: (reply: MemberReply) => void;
  cancelTimer: () => void;
};

const valueCodec = cborCodec<unknown>();

/** A client request's outcome as a `MemberReply` (errors by code; nothing thrown). */
export function replyOf(result: Reply): MemberReply {
  return result.duplicate === true
    ? { ok: true, index: result.index, output: result.output, duplicate: true }
    : { ok: true, index: result.index, output: result.output };
}

/** A failure as a `MemberReply`. Unknown errors are INTERNAL_ERROR. */
export function errorReply(error: unknown, leaderId: string | null): MemberReply {
  if (error instanceof NotLeaderError) {
    return {
      ok: false,
      code: error.leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      message: error.message,
      leaderId: error.leaderId,
    };
  }
  const message = (error instanceof Error ? error.message : String(error)).slice(0, 4096);
  const code = error instanceof EdgeraftError ? error.code : 'INTERNAL_ERROR';
  return { ok: false, code, message, leaderId };
}

/** See the module comment. One per driver. */
export class Requests {
  readonly #h: RequestHost;
  readonly #sequencers = new Map<number, Sequencer>();
  #sequencersTerm = -1;
  readonly #forwarded = new Map<number, Forwarded>();
  /**
   * The last forwarded request's id. Ids start from the clock (in microseconds) at each start, so
   * that a restarted member never reuses an id of its previous incarnation: the leader's answers
   * to those may still arrive, and would be taken for answers to new requests.
   */
  #forwardCounter: number;

  constructor(host: RequestHost) {
    this.#h = host;
    this.#forwardCounter = Math.floor(host.clock.nowMs() * 1000);
  }

  /** Handle a client's request here: locally when this member can, else through the leader. */
  async handle(request: MemberRequest): Promise<MemberReply> {
    try {
      if (request.kind === 'query' && request.consistency === 'sequential') {
        await this.#h.waitForApplied(request.minIndex);
        const index = this.#h.appliedIndex();
        return replyOf({ index, output: this.#h.query(valueCodec.decode(request.data)) });
      }
      if (this.#h.leaderTerm() === null) return await this.#forward(request);
      const reply = replyOf(await this.#lead(request));
      return reply;
    } catch (error) {
      return errorReply(error, this.#h.leaderId());
    }
  }

  /** A `forward` or `forwardResponse` peer message. */
  receive(m: ForwardMessage | ForwardResponseMessage): void {
    if (m.type === 'forwardResponse') {
      const pending = this.#forwarded.get(m.requestId);
      if (pending === undefined) return;
      this.#forwarded.delete(m.requestId);
      pending.cancelTimer();
      let reply: MemberReply;
      try {
        reply = v.parse(MemberReplySchema, valueCodec.decode(m.data));
      } catch {
        reply = {
          ok: false,
          code: 'INTERNAL_ERROR',
          message: 'Malformed forwarded answer',
          leaderId: null,
        };
      }
      pending.resolve(reply);
      return;
    }
    const answer = (reply: MemberReply) =>
      this.#h.send({
        type: 'forwardResponse',
        from: this.#h.id,
        to: m.from,
        term: m.term,
        requestId: m.requestId,
        data: valueCodec.encode(reply),
      });
    let request: MemberRequest;
    try {
      request = v.parse(MemberRequestSchema, valueCodec.decode(m.data));
    } catch (error) {
      return answer({
        ok: false,
        code: 'INTERNAL_ERROR',
        message: `Malformed forwarded request: ${(error as Error).message}`,
        leaderId: null,
      });
    }
    if (this.#h.leaderTerm() === null) {
      // Not (or no longer) the leader: say so; the sender tries again or tells its client.
      return answer(errorReply(new NotLeaderError(this.#h.leaderId()), this.#h.leaderId()));
    }
    this.#lead(request).then(
      (r) => answer(replyOf(r)),
      (e) => answer(errorReply(e, this.#h.leaderId())),
    );
  }

  /** Leadership changed (or the member stopped): queued commands were never logged. */
  reset(): void {
    for (const s of this.#sequencers.values()) {
      for (const waiting of s.ahead.values()) {
        waiting.resolve(Promise.reject(new NotLeaderError(this.#h.leaderId())));
      }
    }
    this.#sequencers.clear();
  }

  /** The member stopped: forwarded requests get no answer; fail them (outcome unknown). */
  close(): void {
    this.reset();
    for (const [id, f] of this.#forwarded) {
      f.cancelTimer();
      f.resolve(errorReply(new TimeoutError(`forwarded request ${id}: the member stopped`), null));
    }
    this.#forwarded.clear();
  }

  /**
   * The leader this member knows changed, or the connection to a member was lost: requests
   * forwarded to a member that is no longer the leader, or to `lost`, will get no answer. They
   * end now with OUTCOME_UNKNOWN (the old leader may have logged them): a session's client sends
   * its command again, which is safe; a command outside a session has an unknown outcome. Reads
   * (queries, the members view) end with NOT_LEADER instead: they had no effect to be unsure of.
   */
  leaderChanged(lost: string | null = null): void {
    const leader = this.#h.leaderId();
    for (const [id, f] of this.#forwarded) {
      if (f.request.kind === 'transferLeader') {
        this.#transferSeen(id, f, f.request.id, leader);
        continue;
      }
      if (f.to === leader && f.to !== lost) continue;
      this.#forwarded.delete(id);
      f.cancelTimer();
      if (f.request.kind === 'query' || f.request.kind === 'members') {
        // A read changes nothing: whatever became of it, asking again is safe (retryable).
        f.resolve(errorReply(new NotLeaderError(leader), leader));
        continue;
      }
      f.resolve(errorReply(
        new EdgeraftError(
          'OUTCOME_UNKNOWN',
          f.to === lost
            ? `Outcome unknown: forwarded to ${f.to}, whose connection was lost`
            : `Outcome unknown: forwarded to ${f.to}, which is no longer the leader`,
          false,
        ),
        leader,
      ));
    }
  }

  /**
   * The leader changed while a leadership transfer to `target` was forwarded: the change is what
   * was asked for, so it is not an unknown outcome. The target took office: success (perhaps
   * before the old leader's answer arrives; that answer is then dropped, its id forgotten). No
   * leader yet (the target campaigns), or the old leader still: wait, bounded by the forward
   * timer. Another member took office: NOT_LEADER naming it (nothing to undo; the client asks the
   * new leader to make the transfer).
   */
  #transferSeen(id: number, f: Forwarded, target: string, leader: string | null): void {
    if (leader === null || (leader === f.to && leader !== target)) return;
    this.#forwarded.delete(id);
    f.cancelTimer();
    if (leader === target) {
      f.resolve({
        ok: true,
        index: 0,
        output: { leaderId: leader, term: this.#h.term() },
        forwardedTo: leader,
      });
    } else f.resolve(errorReply(new NotLeaderError(leader), leader));
  }

  /** A session expired: forget its sequencing. */
  forget(session: number): void {
    this.#sequencers.delete(session);
  }

  /** Carry out `request` as the leader. */
  async #lead(request: MemberRequest): Promise<Reply> {
    switch (request.kind) {
      case 'command':
        if (request.session === 0) {
          return await this.#h.append(encodeEnvelope({ kind: 'plain', data: request.data })).result;
        }
        return await this.#sequence(request.session, request.sequence, request.data);
      case 'register': {
        const timeoutMs = Math.min(
          this.#h.sessionTimeoutMsMax,
          Math.max(this.#h.sessionTimeoutMsMin, request.timeoutMs),
        );
        return await this.#h.append(encodeEnvelope({ kind: 'register', timeoutMs })).result;
      }
      case 'keepAlive':
        return await this.#h.append(encodeEnvelope({
          kind: 'keepAlive',
          session: request.session,
          commandAck: request.commandAck,
          eventAck: request.eventAck,
        })).result;
      case 'unregister':
        return await this.#h.append(
          encodeEnvelope({ kind: 'unregister', session: request.session }),
        ).result;
      case 'query': {
        await this.#h.read(request.consistency);
        // The index of the state that answers, which may be past the read index: a client's later
        // sequential reads must not go back behind what this answer showed.
        const index = this.#h.appliedIndex();
        return { index, output: this.#h.query(valueCodec.decode(request.data)) };
      }
      // Membership (lib/member/reconfigure.ts).
      case 'reconfigure':
        return await this.#h.reconfigure(request);
      case 'members':
        return this.#h.members();
      case 'transferLeader':
        return await this.#h.transferLeadership(request.id);
    }
  }

  /** Put a session's command in the log in sequence order (see the module comment). */
  async #sequence(session: number, sequence: number, data: Uint8Array): Promise<Reply> {
    const term = this.#h.leaderTerm();
    if (term === null) throw new NotLeaderError(this.#h.leaderId());
    // A new leader first applies its own no-op: then it knows every sequence already logged.
    if (this.#h.appliedIndex() < this.#h.termStartIndex()) {
      await this.#h.waitForApplied(this.#h.termStartIndex());
      if (this.#h.leaderTerm() !== term) throw new NotLeaderError(this.#h.leaderId());
    }
    if (this.#sequencersTerm !== term) {
      this.reset();
      this.#sequencersTerm = term;
    }
    let s = this.#sequencers.get(session);
    if (s === undefined) {
      const applied = this.#h.sessions().get(session);
      if (applied === undefined) throw new UnknownSessionError(session);
      s = { next: applied.nextSequence, logged: new Map(), ahead: new Map() };
      this.#sequencers.set(session, s);
    }
    if (sequence < s.next) {
      if (this.#h.unsafeFaults?.relogRetries === true) {
        // A planted bug: the retry goes into the log again (only the executor's dedup is left).
        return await this.#h.append(encodeEnvelope({ kind: 'command', session, sequence, data }))
          .result;
      }
      // Already in the log: wait for that entry, never log it again.
      const index = s.logged.get(sequence);
      if (index !== undefined) {
        await this.#h.waitForApplied(index);
        s.logged.delete(sequence);
      }
      return this.#kept(session, sequence);
    }
    if (sequence > s.next) {
      if (sequence - s.next > this.#h.sessionCommandsAheadMax) {
        throw new CommandError(
          `sequence ${sequence} is more than sessionCommandsAheadMax ${this.#h.sessionCommandsAheadMax} ahead of ${s.next}`,
        );
      }
      const waiting = s.ahead.get(sequence);
      const turn = new Promise<Promise<Reply>>((resolve) => {
        if (waiting === undefined) s!.ahead.set(sequence, { data, resolve });
        else {
          // The same early command again: both copies get the one outcome.
          const first = waiting.resolve;
          waiting.resolve = (p) => (first(p), resolve(p));
        }
      });
      return await (await turn);
    }
    return await this.#logNext(session, s, data);
  }

  /** Log the command at `s.next`, then any that waited for it. */
  #logNext(session: number, s: Sequencer, data: Uint8Array): Promise<Reply> {
    const sequence = s.next;
    let appended: { index: number; result: Promise<Reply> };
    try {
      appended = this.#h.append(encodeEnvelope({ kind: 'command', session, sequence, data }));
    } catch (error) {
      // Refused: nothing logged, the sequence stays free for the retry; those waiting behind it
      // stay queued (they will be refused too, or logged after the retry).
      return Promise.reject(error);
    }
    s.next++;
    s.logged.set(sequence, appended.index);
    const applied = () => s.logged.delete(sequence);
    appended.result.then(applied, () => {});
    for (;;) {
      const next = s.ahead.get(s.next);
      if (next === undefined) break;
      s.ahead.delete(s.next);
      next.resolve(this.#logNext(session, s, next.data));
    }
    return appended.result;
  }

  /** The kept result of an applied command of `session`. */
  #kept(session: number, sequence: number): Reply {
    const applied = this.#h.sessions().get(session);
    if (applied === undefined) throw new UnknownSessionError(session);
    if (sequence >= applied.nextSequence) {
      // Its entry was lost to another leader's: not applied, and the retry may log it again.
      throw new CommandError(`sequence ${sequence} of session ${session} was not applied`);
    }
    const kept = applied.results.get(sequence);
    if (kept === undefined) {
      throw new EdgeraftError(
        'RESULT_EVICTED',
        `sequence ${sequence} of session ${session} was applied once; its output is no longer kept (acknowledged, or past sessionResultsMax)`,
        false,
      );
    }
    if (!kept.ok) {
      throw kept.code === 'UNKNOWN_SESSION'
        ? new UnknownSessionError(session)
        : new EdgeraftError('APPLICATION_ERROR', kept.message, false);
    }
    return { index: kept.index, output: kept.output, duplicate: true };
  }

  /** Hand `request` to the leader and relay its answer (after applying its index here). */
  async #forward(request: MemberRequest): Promise<MemberReply> {
    const leader = this.#h.leaderId();
    if (leader === null || leader === this.#h.id) throw new NotLeaderError(null);
    const requestId = ++this.#forwardCounter;
    const reply = await new Promise<MemberReply>((resolve) => {
      const cancelTimer = this.#h.clock.setTimer(this.#h.forwardTimeoutMs, () => {
        if (this.#forwarded.delete(requestId)) {
          resolve(errorReply(
            new TimeoutError(
              `forwarded request not answered within ${this.#h.forwardTimeoutMs} ms`,
            ),
            leader,
          ));
        }
      });
      this.#forwarded.set(requestId, { to: leader, request, resolve, cancelTimer });
      this.#h.send({
        type: 'forward',
        from: this.#h.id,
        to: leader,
        term: 0,
        requestId,
        data: valueCodec.encode(request),
      });
    });
    if (!reply.ok) return reply;
    // Membership and leadership answers are not state-machine results: nothing to apply here
    // first (a RESERVE member never applies anything).
    const applies = request.kind !== 'query' && request.kind !== 'reconfigure' &&
      request.kind !== 'members' && request.kind !== 'transferLeader';
    const early = this.#h.unsafeFaults?.relayBeforeApplied === true; // a planted bug
    if (applies && !early) await this.#h.waitForApplied(reply.index);
    return { ...reply, forwardedTo: reply.forwardedTo ?? leader };
  }
}
