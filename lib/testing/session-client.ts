/**
 * A simulated client with sessions, as a real one would use a cluster through any member
 * (`MemberDriver.handle`, over a `SimPort` connection): it registers a session wherever it is
 * connected, keeps several commands in flight with increasing sequence numbers, retries an
 * unanswered or refused command with the same sequence (after a timeout, a lost connection or a
 * retryable error), moves to another member when one fails it or at random, keeps the session
 * alive (acknowledging the outputs and events it has), watches a prefix, reads sequentially with
 * the highest index it has seen (and linearizably, and on the lease), and opens a new session when
 * its own expired (its unanswered commands then have an unknown outcome).
 *
 * What it is told is checked as it arrives, against the `SessionOracle`:
 * - an answer is the first application's own index and output (a retry answered from the cache
 *   returns what the first application returned), and it contains its append exactly once;
 * - answers come in sequence order at increasing indexes; every event published to the session
 *   at an index up to an answer's arrives before that answer; events arrive in order, once (the
 *   client drops what it already has, by event index), with no gap but a documented drop; events
 *   published after an answer are delivered after it (the client holds them while an earlier
 *   command is unanswered);
 * - a result the client never acknowledged is never evicted;
 * - a sequential read is answered at an index at least the client's, with exactly the state at
 *   that index; every read sees the client's acknowledged appends and never goes back in time;
 * - an UNKNOWN_SESSION answer is about a session that really ended.
 * Appends and linearizable reads go to the history for the linearizability checker, and the final
 * state is checked for exactly-once effects (`checkExactlyOnce`).
 *
 * @example
 * ```ts
 * const client = new SessionClient(host, { client: 1, keys: ['s0'], watchPrefix: 's',
 *   timeoutMs: 300, attemptTimeoutMs: 100, inflightMax: 3, pauseMsMax: 10 });
 * void client.run();
 * ```
 * @module
 */
import type { MemberReply, MemberRequest } from '../base/member-requests.ts';
import { randomInt, type RandomSource } from '../core/random.ts';
import { cborCodec } from '../state/codec.ts';
import { encodeEnvelope } from '../state/envelope.ts';
import type { SessionEvent } from '../state/sessions.ts';
import type { Operation } from './linearizability/history.ts';
import type { SessionOracle } from './session-oracle.ts';
import { type PortMember, type PortOutcome, SimPort } from './sim-port.ts';
import type { VirtualTime } from './sim-time.ts';

/** What session clients count, for a run's statistics. */
export type SessionStats = {
  sessionsRegistered: number;
  sessionCommands: number;
  sessionRetries: number;
  /** Answers from a session's kept result (the command had been applied before). */
  sessionDuplicates: number;
  sessionEvents: number;
  sequentialReads: number;
  reconnects: number;
};

/** Statistics of session clients that have not run. */
export function emptySessionStats(): SessionStats {
  return {
    sessionsRegistered: 0,
    sessionCommands: 0,
    sessionRetries: 0,
    sessionDuplicates: 0,
    sessionEvents: 0,
    sequentialReads: 0,
    reconnects: 0,
  };
}

/** What a session client needs from its simulation. */
export type SessionClientHost = {
  readonly time: VirtualTime;
  readonly random: RandomSource;
  readonly oracle: SessionOracle;
  readonly stats: SessionStats;
  /** The members up now (one incarnation each), in id order. */
  up(): PortMember[];
  /** Requests that write to the log wait until then (a quiet log for a lease fault). */
  quietUntilMs(): number;
  /** The workload stopped: nothing new; what is in flight is finished. */
  stopped(): boolean;
  /** Add an operation to the history the linearizability checker reads. */
  record(op: Operation): void;
  /** A command was answered by `memberId` at `index`; `entry` is its log entry's bytes. */
  acknowledged(memberId: string, index: number, entry: Uint8Array, output: unknown): void;
  log(line: string): void;
  /** A broken rule: the run fails with `message`. */
  fail(message: string): void;
};

/** One client's shape, drawn per seed. */
export type SessionClientOptions = {
  /** Its number, in tokens and the history. */
  client: number;
  /** Keys it appends to (appends only, shared with the other session clients). */
  keys: readonly string[];
  /** The prefix it watches (in most sessions). */
  watchPrefix: string;
  /** The session timeout it asks for, in ms. */
  timeoutMs: number;
  /** How long it waits for one answer before trying again, in ms. */
  attemptTimeoutMs: number;
  /** Commands in flight at most. */
  inflightMax: number;
  /** Longest pause between two steps, in ms. */
  pauseMsMax: number;
};

/** What became of an append, for the exactly-once check. */
export type TokenState = {
  readonly key: string;
  readonly session: number;
  readonly sequence: number;
  status: 'pending' | 'acknowledged' | 'unknown';
};

type Reply = {
  index: number;
  output: unknown;
  duplicate: boolean;
  memberId: string;
  atMs: number;
};

type Command = {
  readonly sequence: number;
  readonly key: string | null;
  readonly token: string | null;
  readonly data: Uint8Array;
  readonly callMs: number;
  sends: number;
  reply: Reply | null;
};

type Session = {
  readonly id: number;
  readonly timeoutMs: number;
  nextSequence: number;
  /** Sent, answer not yet delivered; in sequence order. */
  readonly pending: Map<number, Command>;
  /** Every sequence up to it was answered and delivered: the keep-alive's `commandAck`. */
  deliveredSequence: number;
  /** The highest `commandAck` any keep-alive carried. */
  ackSent: number;
  /** The last event delivered: the keep-alive's `eventAck`. */
  lastEventIndex: number;
  /** Events received, held until the answers before them are delivered. */
  readonly held: SessionEvent[];
  lastAnswerIndex: number;
  live: boolean;
  watch: boolean;
};

const codec = cborCodec<unknown>();

/** See the module comment. */
export class SessionClient {
  readonly #h: SessionClientHost;
  readonly #o: SessionClientOptions;
  readonly #name: string;
  #port: SimPort | null = null;
  #session: Session | null = null;
  /** The highest index of any answer: what sequential reads must cover. */
  #indexSeen = 0;
  readonly #lastRead = new Map<string, string>();
  readonly #own = new Map<string, string[]>();
  /** Every append it issued, by token. */
  readonly tokens = new Map<string, TokenState>();
  #done = false;
  /** Wakes the main loop when an answer frees a place in the window. */
  #wake: (() => void) | null = null;

  constructor(host: SessionClientHost, options: SessionClientOptions) {
    this.#h = host;
    this.#o = options;
    this.#name = `session client ${options.client}`;
  }

  /** True once it has stopped (the workload stopped and nothing is left in flight). */
  get done(): boolean {
    return this.#done;
  }

  /** Commands sent and not answered (what keeps it from stopping). */
  get unanswered(): number {
    return this.#session?.pending.size ?? 0;
  }

  /** The member `id` crashed: its connection resets. */
  memberDown(id: string, incarnation: number): void {
    const port = this.#port;
    if (port !== null && port.memberId === id && port.incarnation === incarnation) port.close();
  }

  /** Run until the workload stops and what is in flight is answered. */
  async run(): Promise<void> {
    const h = this.#h;
    for (;;) {
      const s = this.#session;
      if (s === null) {
        if (h.stopped()) break;
        await this.#register();
        continue;
      }
      if (h.stopped()) {
        if (s.pending.size === 0) break;
        await this.#sleep(5);
        continue;
      }
      const roll = h.random();
      if (roll < 0.02) this.#move();
      else if (roll < 0.04 && s.pending.size === 0 && s.nextSequence > 12) {
        // Done with this session: close it, or walk away from it (it expires).
        if (h.random() < 0.6) await this.#unregister(s);
        else this.#end(s, 'abandoned');
      } else if (roll < 0.7) {
        if (h.time.nowMs < h.quietUntilMs()) await this.#untilLogWritable();
        else if (s.pending.size < this.#o.inflightMax) this.#issue(s);
        else await this.#room(); // the window is full: wait for an answer
      } else await this.#read();
      await this.#sleep(randomInt(h.random, 1, this.#o.pauseMsMax + 1));
    }
    this.#done = true;
    if (this.#session !== null) this.#end(this.#session, 'finished');
    this.#port?.close();
  }

  // ---- Connection -------------------------------------------------------------------------

  /** The open connection, or a new one to `preferred` or any member up (null: none is up). */
  #connection(preferred: string | null = null): SimPort | null {
    if (this.#port?.open === true) return this.#port;
    const up = this.#h.up();
    if (up.length === 0) return null;
    const member = up.find((m) => m.id === preferred) ??
      up[randomInt(this.#h.random, 0, up.length)]!;
    if (this.#port !== null) this.#h.stats.reconnects++;
    const port = new SimPort(
      this.#h.time,
      this.#h.random,
      member,
      (session, event) => this.#onEvent(session, event),
    );
    this.#port = port;
    if (this.#session?.live === true) port.bind(this.#session.id);
    return port;
  }

  /** Leave the current member (the next request connects elsewhere, maybe to `hint`). */
  #move(hint: string | null = null): void {
    this.#port?.close();
    if (hint !== null) this.#connection(hint);
  }

  /** One request on the current connection (none up: a short wait, then `'lost'`). */
  async #request(request: MemberRequest, timeoutMs = this.#o.attemptTimeoutMs): Promise<
    { outcome: PortOutcome; memberId: string }
  > {
    const port = this.#connection();
    if (port === null) {
      await this.#sleep(5);
      return { outcome: 'lost', memberId: '' };
    }
    return { outcome: await port.request(request, timeoutMs), memberId: port.memberId };
  }

  /** After a failed attempt: sometimes move, then wait a little before the next. */
  async #backOff(outcome: PortOutcome): Promise<void> {
    const r = this.#h.random;
    if (outcome === 'lost') return await this.#sleep(randomInt(r, 1, 5));
    if (outcome === 'timeout') {
      if (r() < 0.5) this.#move();
      return await this.#sleep(randomInt(r, 2, 15));
    }
    if (outcome.ok) return;
    const leaderless = outcome.code === 'NO_LEADER' || outcome.code === 'NOT_LEADER';
    if (leaderless && r() < 0.5) this.#move(outcome.leaderId);
    await this.#sleep(outcome.code === 'NO_LEADER' ? randomInt(r, 20, 50) : randomInt(r, 2, 15));
  }

  /** Until an answer is delivered or the session ends (at most a while). */
  #room(): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.#h.time.schedule(100, () => {
        this.#wake = null;
        resolve();
      });
      this.#wake = () => {
        this.#wake = null;
        cancel();
        resolve();
      };
    });
  }

  async #untilLogWritable(): Promise<void> {
    const waitMs = this.#h.quietUntilMs() - this.#h.time.nowMs;
    if (waitMs > 0) await this.#sleep(waitMs);
  }

  // ---- Session ----------------------------------------------------------------------------

  async #register(): Promise<void> {
    const h = this.#h;
    while (!h.stopped()) {
      await this.#untilLogWritable();
      const { outcome } = await this.#request({ kind: 'register', timeoutMs: this.#o.timeoutMs });
      if (outcome !== 'lost' && outcome !== 'timeout' && outcome.ok) {
        const granted = outcome.output as { session: number; timeoutMs: number };
        if (granted.session !== outcome.index) {
          h.fail(`Register answered session ${granted.session} at index ${outcome.index}`);
        }
        this.#seen(outcome.index);
        const s: Session = {
          id: outcome.index,
          timeoutMs: granted.timeoutMs,
          nextSequence: 1,
          pending: new Map(),
          deliveredSequence: 0,
          ackSent: 0,
          lastEventIndex: 0,
          held: [],
          lastAnswerIndex: 0,
          live: true,
          watch: h.random() < 0.7,
        };
        this.#session = s;
        h.stats.sessionsRegistered++;
        h.log(`${this.#name}: session ${s.id} (timeout ${s.timeoutMs} ms)`);
        this.#port?.bind(s.id);
        if (s.watch) this.#issue(s);
        void this.#keepAlive(s);
        return;
      }
      // A lost or timed-out registration may have made a session nobody uses: it expires.
      await this.#backOff(outcome);
    }
  }

  async #keepAlive(s: Session): Promise<void> {
    const h = this.#h;
    const intervalMs = Math.max(1, Math.floor(s.timeoutMs / 3));
    const attemptMs = Math.max(1, Math.min(this.#o.attemptTimeoutMs, intervalMs));
    let failed = false;
    while (s.live) {
      const pauseMs = failed
        ? randomInt(h.random, 5, Math.max(6, Math.floor(intervalMs / 4)))
        : randomInt(h.random, Math.ceil(intervalMs / 2), intervalMs + 1);
      await this.#sleep(pauseMs);
      if (!s.live || (h.stopped() && s.pending.size === 0)) return;
      if (h.time.nowMs < h.quietUntilMs()) continue;
      const commandAck = s.deliveredSequence;
      s.ackSent = Math.max(s.ackSent, commandAck);
      const { outcome, memberId } = await this.#request({
        kind: 'keepAlive',
        session: s.id,
        commandAck,
        eventAck: s.lastEventIndex,
      }, attemptMs);
      if (!s.live) return;
      failed = true;
      if (outcome === 'lost' || outcome === 'timeout') {
        if (outcome === 'timeout' && h.random() < 0.5) this.#move();
      } else if (outcome.ok) {
        failed = false;
        this.#seen(outcome.index);
      } else if (outcome.code === 'UNKNOWN_SESSION') return this.#unknownSession(s, memberId);
    }
  }

  async #unregister(s: Session): Promise<void> {
    await this.#untilLogWritable();
    const { outcome } = await this.#request({ kind: 'unregister', session: s.id });
    if (outcome !== 'lost' && outcome !== 'timeout' && outcome.ok) this.#seen(outcome.index);
    // Answered or not, the client is done with it (unanswered, it expires).
    this.#end(s, 'closed');
  }

  #unknownSession(s: Session, memberId: string): void {
    if (!s.live) return;
    this.#h.oracle.checkUnknownSession(s.id, `${memberId} (to ${this.#name})`);
    this.#end(s, 'expired');
  }

  /**
   * The session is over: answered commands are delivered in order, unanswered ones have an
   * unknown outcome (they may have been applied before it ended).
   */
  #end(s: Session, why: string): void {
    if (!s.live) return;
    s.live = false;
    for (const [sequence, cmd] of s.pending) {
      if (cmd.reply !== null) continue;
      s.pending.delete(sequence);
      if (cmd.token === null) continue;
      this.tokens.get(cmd.token)!.status = 'unknown';
      this.#h.record({
        client: this.#name,
        callMs: cmd.callMs,
        returnMs: null,
        input: { f: 'append', key: cmd.key!, value: cmd.token },
        outcome: 'unknown',
      });
    }
    this.#flush(s);
    this.#port?.unbind(s.id);
    if (this.#session === s) this.#session = null;
    this.#wake?.();
    this.#h.log(`${this.#name}: session ${s.id} ${why}`);
  }

  // ---- Commands ---------------------------------------------------------------------------

  #issue(s: Session): void {
    const h = this.#h;
    const sequence = s.nextSequence++;
    const watch = sequence === 1 && s.watch;
    const key = watch ? null : this.#o.keys[randomInt(h.random, 0, this.#o.keys.length)]!;
    const token = key === null ? null : `${this.#o.client}.${s.id}.${sequence};`;
    const data = codec.encode(
      key === null
        ? { op: 'watch', prefix: this.#o.watchPrefix }
        : { op: 'append', key, value: token },
    );
    const cmd: Command = {
      sequence,
      key,
      token,
      data,
      callMs: h.time.nowMs,
      sends: 0,
      reply: null,
    };
    s.pending.set(sequence, cmd);
    if (token !== null) {
      this.tokens.set(token, { key: key!, session: s.id, sequence, status: 'pending' });
    }
    void this.#send(s, cmd).catch((error: unknown) => h.fail(String(error)));
  }

  /** Send `cmd` until it is answered (the same sequence every time) or the session ends. */
  async #send(s: Session, cmd: Command): Promise<void> {
    const h = this.#h;
    while (s.live && cmd.reply === null) {
      await this.#untilLogWritable();
      if (!s.live) return;
      if (++cmd.sends > 1) h.stats.sessionRetries++;
      const { outcome, memberId } = await this.#request({
        kind: 'command',
        session: s.id,
        sequence: cmd.sequence,
        data: cmd.data,
      });
      if (!s.live || cmd.reply !== null) return;
      if (outcome !== 'lost' && outcome !== 'timeout') {
        if (outcome.ok) return this.#answered(s, cmd, outcome, memberId);
        if (outcome.code === 'UNKNOWN_SESSION') return this.#unknownSession(s, memberId);
        if (outcome.code === 'RESULT_EVICTED' || outcome.code === 'APPLICATION_ERROR') {
          const acked = outcome.code === 'RESULT_EVICTED'
            ? ` (the client acknowledged only up to ${s.ackSent})`
            : '';
          return h.fail(
            `Session ${s.id} sequence ${cmd.sequence}, never answered to the client, was refused ${outcome.code} by ${memberId}${acked}: ${outcome.message}`,
          );
        }
        // Anything else (refused, or an unknown outcome): the same sequence again is safe.
      }
      await this.#backOff(outcome);
    }
  }

  /** An answer arrived: check it now, deliver it in sequence order. */
  #answered(
    s: Session,
    cmd: Command,
    reply: Extract<MemberReply, { ok: true }>,
    memberId: string,
  ): void {
    const h = this.#h;
    cmd.reply = {
      index: reply.index,
      output: reply.output,
      duplicate: reply.duplicate === true,
      memberId,
      atMs: h.time.nowMs,
    };
    const what = `Session ${s.id} sequence ${cmd.sequence}`;
    const first = h.oracle.firstApplication(s.id, cmd.sequence);
    if (first === undefined) {
      h.fail(`${what} was answered by ${memberId} at index ${reply.index}, but was never applied`);
    } else if (
      first.index !== reply.index || JSON.stringify(first.output) !== JSON.stringify(reply.output)
    ) {
      h.fail(
        `${what} was answered by ${memberId} at index ${reply.index} with ${
          JSON.stringify(reply.output)
        }, but its first application, at ${first.index}, returned ${JSON.stringify(first.output)}`,
      );
    }
    if (cmd.token !== null) {
      const value = (reply.output as { value?: unknown }).value;
      if (
        typeof value !== 'string' || !value.endsWith(cmd.token) || count(value, cmd.token) !== 1
      ) {
        h.fail(
          `${what}: the append's output ${
            JSON.stringify(value)
          } does not end with its ${cmd.token} once`,
        );
      }
    }
    const entry = encodeEnvelope({
      kind: 'command',
      session: s.id,
      sequence: cmd.sequence,
      data: cmd.data,
    });
    h.acknowledged(memberId, reply.index, entry, reply.output);
    if (reply.duplicate === true) h.stats.sessionDuplicates++;
    this.#flush(s);
  }

  /**
   * Deliver, in order: answers by sequence, and before each one the events published at or
   * below its index; events past every delivered answer wait while an earlier command is out.
   */
  #flush(s: Session): void {
    for (;;) {
      const head = s.pending.values().next().value as Command | undefined;
      const upTo = head === undefined
        ? Infinity
        : Math.max(s.lastAnswerIndex, head.reply?.index ?? 0);
      while (s.held.length > 0 && s.held[0]!.index <= upTo) this.#deliverEvent(s, s.held.shift()!);
      if (head === undefined || head.reply === null) return;
      this.#deliverAnswer(s, head, head.reply);
    }
  }

  #deliverAnswer(s: Session, cmd: Command, reply: Reply): void {
    const h = this.#h;
    const what = `Session ${s.id} sequence ${cmd.sequence}`;
    for (let e = s.lastEventIndex + 1;; e++) {
      const event = h.oracle.event(s.id, e);
      if (event === undefined || event.index > reply.index) break;
      if (h.oracle.mayHaveDropped(s.id, e)) continue;
      h.fail(
        `${what}: its answer (index ${reply.index}, from ${reply.memberId}) reached the client before event ${e}, published at index ${event.index}`,
      );
      break;
    }
    if (reply.index <= s.lastAnswerIndex) {
      h.fail(
        `${what} was answered at index ${reply.index}, not after the previous answer's ${s.lastAnswerIndex}`,
      );
    }
    s.lastAnswerIndex = reply.index;
    s.pending.delete(cmd.sequence);
    this.#wake?.();
    s.deliveredSequence = cmd.sequence;
    this.#seen(reply.index);
    h.stats.sessionCommands++;
    if (cmd.token === null) return;
    this.tokens.get(cmd.token)!.status = 'acknowledged';
    let own = this.#own.get(cmd.key!);
    if (own === undefined) this.#own.set(cmd.key!, own = []);
    own.push(cmd.token);
    h.record({
      client: this.#name,
      callMs: cmd.callMs,
      returnMs: reply.atMs,
      input: { f: 'append', key: cmd.key!, value: cmd.token },
      output: (reply.output as { value: string }).value,
      outcome: 'ok',
    });
  }

  // ---- Events -----------------------------------------------------------------------------

  /** An event came down the connection: keep it unless the client has it already. */
  #onEvent(session: number, event: SessionEvent): void {
    const s = this.#session;
    if (s === null || s.id !== session || !s.live) return;
    const last = s.held.at(-1)?.eventIndex ?? s.lastEventIndex;
    if (event.eventIndex <= last) return;
    s.held.push(event);
    this.#flush(s);
  }

  #deliverEvent(s: Session, event: SessionEvent): void {
    const h = this.#h;
    for (let missing = s.lastEventIndex + 1; missing < event.eventIndex; missing++) {
      if (h.oracle.mayHaveDropped(s.id, missing)) continue;
      h.fail(
        `Session ${s.id}: event ${missing} was never delivered (event ${event.eventIndex} came next, and it was not dropped)`,
      );
      break;
    }
    const known = h.oracle.event(s.id, event.eventIndex);
    if (
      known === undefined || known.index !== event.index ||
      JSON.stringify(known.payload) !== JSON.stringify(event.payload)
    ) {
      h.fail(`Session ${s.id}: event ${event.eventIndex} was delivered unlike it was published`);
    }
    s.lastEventIndex = event.eventIndex;
    h.stats.sessionEvents++;
  }

  // ---- Reads ------------------------------------------------------------------------------

  async #read(): Promise<void> {
    const h = this.#h;
    const key = this.#o.keys[randomInt(h.random, 0, this.#o.keys.length)]!;
    const roll = h.random();
    let consistency: 'sequential' | 'linearizable' | 'lease' = roll < 0.55
      ? 'sequential'
      : roll < 0.85
      ? 'linearizable'
      : 'lease';
    // While the log is kept quiet (a lease fault), a read-index round would defeat the fault.
    if (consistency === 'linearizable' && h.time.nowMs < h.quietUntilMs()) consistency = 'lease';
    const minIndex = this.#indexSeen;
    const own = [...(this.#own.get(key) ?? [])];
    const before = this.#lastRead.get(key) ?? '';
    const callMs = h.time.nowMs;
    const { outcome, memberId } = await this.#request({
      kind: 'query',
      consistency,
      minIndex,
      data: codec.encode({ op: 'get', key }),
    });
    if (outcome === 'lost' || outcome === 'timeout' || !outcome.ok) {
      return await this.#backOff(outcome);
    }
    const value = (outcome.output as { value: string | null }).value;
    const read =
      `${consistency} read of ${key} on ${memberId} by ${this.#name} at index ${outcome.index}`;
    if (consistency === 'sequential') {
      h.stats.sequentialReads++;
      if (outcome.index < minIndex) {
        h.fail(`Sequential read went back in time: ${read}, below the client's ${minIndex}`);
      }
      const expected = h.oracle.valueAt(key, outcome.index);
      if (value !== expected) {
        h.fail(
          `${read} returned ${JSON.stringify(value)}, the state there is ${
            JSON.stringify(expected)
          }`,
        );
      }
    } else {
      h.record({
        client: this.#name,
        callMs,
        returnMs: h.time.nowMs,
        input: { f: 'get', key },
        output: value,
        outcome: 'ok',
      });
    }
    const text = value ?? '';
    const missing = own.find((token) => count(text, token) === 0);
    if (missing !== undefined) {
      h.fail(`Read your writes: ${read} misses the client's acknowledged append ${missing}`);
    }
    if (!text.startsWith(before)) {
      h.fail(
        `Read went back in time: ${read} returned ${JSON.stringify(text)}, after ${
          JSON.stringify(before)
        }`,
      );
    }
    if (text.length > before.length) this.#lastRead.set(key, text);
    this.#seen(outcome.index);
  }

  #seen(index: number): void {
    if (index > this.#indexSeen) this.#indexSeen = index;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#h.time.schedule(ms, resolve));
  }
}

/**
 * Exactly once, in the final state: every acknowledged append appears exactly once, none twice,
 * none unknown to the clients, each on its own key, and a session's appends in sequence order.
 * Returns how many appends of unknown outcome took effect.
 */
export function checkExactlyOnce(
  clients: readonly SessionClient[],
  keys: readonly string[],
  valueOf: (key: string) => string | null,
  fail: (message: string) => void,
): { unknownApplied: number; unknownLost: number } {
  const all = new Map<string, TokenState>();
  for (const c of clients) for (const [token, state] of c.tokens) all.set(token, state);
  const seen = new Set<string>();
  for (const key of keys) {
    const lastBySession = new Map<number, number>();
    for (const part of (valueOf(key) ?? '').split(';')) {
      if (part === '') continue;
      const token = `${part};`;
      const state = all.get(token);
      if (state === undefined || state.key !== key) {
        return fail(`Exactly once: ${key} holds ${token}, which no client appended there`), none();
      }
      if (seen.has(token)) {
        return fail(
          `Exactly once: ${token} (session ${state.session} sequence ${state.sequence}) took effect twice in ${key}`,
        ),
          none();
      }
      seen.add(token);
      const last = lastBySession.get(state.session) ?? 0;
      if (state.sequence <= last) {
        return fail(
          `Sequence order: in ${key}, session ${state.session}'s sequence ${state.sequence} took effect after ${last}`,
        ),
          none();
      }
      lastBySession.set(state.session, state.sequence);
    }
  }
  let unknownApplied = 0;
  let unknownLost = 0;
  for (const [token, state] of all) {
    if (state.status === 'acknowledged' && !seen.has(token)) {
      fail(
        `Exactly once: ${token} (session ${state.session} sequence ${state.sequence}) was acknowledged but is not in ${state.key}`,
      );
      return none();
    }
    if (state.status !== 'acknowledged') {
      if (seen.has(token)) unknownApplied++;
      else unknownLost++;
    }
  }
  return { unknownApplied, unknownLost };
}

function none(): { unknownApplied: number; unknownLost: number } {
  return { unknownApplied: 0, unknownLost: 0 };
}

/** How many times `token` (which ends with `;`) is one of the `;`-ended parts of `text`. */
function count(text: string, token: string): number {
  const all = `;${text}`;
  const part = `;${token}`;
  let n = 0;
  for (let at = all.indexOf(part); at >= 0; at = all.indexOf(part, at + part.length - 1)) n++;
  return n;
}
