/**
 * A deterministic simulator of a Raft cluster: N cores over a simulated network (seeded drop,
 * delay, duplication, reordering, symmetric and one-way partitions), in virtual time, with
 * crashes that lose every write not yet durable, and restarts. After every step the safety
 * checkers run; at the end the network heals and every acknowledged proposal must be applied on
 * every member within a bounded time. One seed replays one run exactly.
 *
 * @example
 * ```ts
 * const result = runSimulation({ seed: 7, memberCount: 3 });
 * if (!result.ok) console.log(result.failure, result.trace.join('\n'));
 * ```
 * @module
 */
import type { Entry, Member, RaftMessage } from '../base/messages.ts';
import type { UnsafeFaults } from '../core/options.ts';
import { Raft, type Ready } from '../core/raft.ts';
import { randomInt, type RandomSource, seededRandom } from '../core/random.ts';
import { MinHeap } from '../state/heap.ts';
import { MemoryStorage } from '../storage/memory.ts';
import type { WriteBatch } from '../storage/storage.ts';
import { fingerprint, SafetyChecker, SafetyViolation } from './checkers.ts';
import { calmNetwork, type NetworkFaults, SimNetwork } from './sim-network.ts';

/** What to simulate. Every field but `seed` has a default. */
export type SimulationOptions = {
  seed: number;
  /** Members in the cluster (all ACTIVE). Default: 3 for even seeds, 5 for odd ones. */
  memberCount?: number;
  /** Virtual milliseconds of faults (partitions, crashes, loss). */
  chaosMs?: number;
  /** Virtual milliseconds allowed, after healing, for every acknowledged proposal to be applied everywhere. */
  settleMsMax?: number;
  /** Virtual milliseconds per tick. */
  tickMs?: number;
  electionTicks?: number;
  /** Deliberate protocol bugs, to prove the checkers catch them. */
  unsafeFaults?: UnsafeFaults;
  /** Lines of trace kept for a failure report. */
  traceLinesMax?: number;
};

/** The outcome of one run. */
export type SimulationResult = {
  seed: number;
  ok: boolean;
  failure: string | null;
  /** The last events before the end (or the failure). */
  trace: string[];
  stats: {
    virtualMs: number;
    events: number;
    elections: number;
    acknowledged: number;
    applied: number;
    crashes: number;
    partitions: number;
  };
};

type SimMember = {
  id: string;
  storage: MemoryStorage;
  raft: Raft | null;
  /** Ready batches being written, oldest first; their writes complete in this order. */
  writing: Ready[];
  /** When the newest queued write completes (writes never overtake each other). */
  writeDoneAtMs: number;
  incarnation: number;
  random: RandomSource;
  wasLeaderInTerm: number;
  /** The last index its (simulated) state machine applied, and its latest snapshot's index. */
  appliedIndex: number;
  snapshotIndex: number;
};

type Event =
  | { kind: 'deliver'; message: RaftMessage }
  | { kind: 'tick'; id: string; incarnation: number }
  | { kind: 'writeDone'; id: string; incarnation: number }
  | { kind: 'client' }
  | { kind: 'fault' }
  | { kind: 'restart'; id: string }
  | { kind: 'crash'; id: string; incarnation: number }
  | { kind: 'snapshotFailed'; from: string; to: string; incarnation: number }
  | { kind: 'heal' };

type Scheduled = { at: number; seq: number; event: Event };

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The statistics of a run that has not started (all zero). */
export function emptyStats(): SimulationResult['stats'] {
  return {
    virtualMs: 0,
    events: 0,
    elections: 0,
    acknowledged: 0,
    applied: 0,
    crashes: 0,
    partitions: 0,
  };
}

/** Run one seeded simulation to the end. Never throws for a protocol failure: it reports it. */
export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

/** One simulated cluster. Prefer `runSimulation`; the class is exported for scripted tests. */
export class Simulation {
  readonly seed: number;
  readonly #random: RandomSource;
  readonly #net: SimNetwork;
  readonly #checker = new SafetyChecker();
  readonly #members = new Map<string, SimMember>();
  /** Events ordered by time, then by scheduling order. */
  readonly #queue = new MinHeap<Scheduled>(before);
  readonly #o: Required<Omit<SimulationOptions, 'unsafeFaults'>> & { unsafeFaults: UnsafeFaults };
  /** Raw trace events, rendered only when a report is made. */
  readonly #trace: Array<{ at: number; what: string | RaftMessage }> = [];
  #now = 0;
  #seq = 0;
  #healed = false;
  /** Per-seed replication limits: some seeds send one entry per message, some many. */
  readonly #messageBytesMax: number;
  readonly #inflightMessagesMax: number;
  /** Per-seed: snapshot after this many applied entries (0: never), keeping this many below it. */
  readonly #snapshotEntries: number;
  readonly #compactionTrailingEntries: number;
  /** Per-seed: ready batches a member may have being written at once (1, or pipelined). */
  readonly #writePipelineDepth: number;
  /** Per-seed client pace: the longest pause between proposals, in virtual milliseconds. */
  readonly #clientPauseMsMax: number;
  /** Crash the next member elected leader, a few milliseconds after its election. */
  #crashNextLeader = false;
  #proposalCounter = 0;
  /** Proposals not yet acknowledged: index -> what was proposed there. */
  #pending = new Map<number, { term: number; fp: string; leader: string }>();
  /** Acknowledged proposals: index -> fingerprint. */
  #acknowledged = new Map<number, string>();
  #ackedIndexMax = 0;
  /** Proposals acknowledged after the network healed: the healed cluster must make progress. */
  #ackedAfterHeal = 0;
  #reads = new Map<number, number>();
  #readCounter = 0;
  #stats = emptyStats();

  constructor(options: SimulationOptions) {
    this.seed = options.seed;
    this.#o = {
      seed: options.seed,
      memberCount: options.memberCount ?? (options.seed % 2 === 0 ? 3 : 5),
      chaosMs: options.chaosMs ?? 3000,
      settleMsMax: options.settleMsMax ?? 4000,
      tickMs: options.tickMs ?? 10,
      electionTicks: options.electionTicks ?? 10,
      unsafeFaults: options.unsafeFaults ?? {},
      traceLinesMax: options.traceLinesMax ?? 60,
    };
    this.#random = seededRandom(options.seed);
    const r = this.#random;
    const faults: NetworkFaults = {
      dropProbability: r() * 0.1,
      duplicateProbability: r() * 0.05,
      delayMsMin: 0.5,
      delayMsMax: 2 + r() * 8,
      longDelayProbability: r() * 0.05,
      longDelayMsMax: 60,
    };
    this.#messageBytesMax = [1, 64, 512, 4096][randomInt(r, 0, 4)]!;
    this.#inflightMessagesMax = [1, 4, 64][randomInt(r, 0, 3)]!;
    this.#clientPauseMsMax = [25, 120][randomInt(r, 0, 2)]!;
    this.#writePipelineDepth = [1, 3][randomInt(r, 0, 2)]!;
    this.#snapshotEntries = this.#random() < 0.5 ? 0 : randomInt(r, 10, 60);
    this.#compactionTrailingEntries = randomInt(r, 0, 8);
    this.#net = new SimNetwork(seededRandom(randomInt(r, 1, 2 ** 31)), faults);
    const members: Member[] = [];
    for (let i = 0; i < this.#o.memberCount; i++) members.push({ id: `n${i + 1}`, type: 'ACTIVE' });
    for (const m of members) {
      const member: SimMember = {
        id: m.id,
        storage: new MemoryStorage(),
        raft: null,
        writing: [],
        writeDoneAtMs: 0,
        incarnation: 0,
        random: seededRandom(randomInt(r, 1, 2 ** 31)),
        wasLeaderInTerm: 0,
        appliedIndex: 0,
        snapshotIndex: 0,
      };
      this.#members.set(m.id, member);
      this.#start(member);
      member.raft!.bootstrap(members, 0);
    }
  }

  /** Run to the end: chaos, heal, settle, final check. */
  run(): SimulationResult {
    try {
      this.#schedule(randomInt(this.#random, 1, 20), { kind: 'client' });
      this.#schedule(randomInt(this.#random, 50, 300), { kind: 'fault' });
      this.#schedule(this.#o.chaosMs, { kind: 'heal' });
      const end = this.#o.chaosMs + this.#o.settleMsMax;
      for (const m of this.#members.values()) this.#drain(m);
      while (this.#queue.size > 0) {
        const next = this.#queue.pop()!;
        if (next.at > end) break;
        this.#now = next.at;
        this.#stats.events++;
        this.#handle(next.event);
        this.#checkAfterStep();
        if (this.#healed && this.#stats.events % 64 === 0 && this.#settled()) break;
      }
      this.#stats.virtualMs = Math.round(this.#now);
      const unsettled = this.#unsettled();
      if (unsettled !== null) {
        return this.#result(
          `Liveness: ${unsettled} ${
            Math.round(this.#now - this.#o.chaosMs)
          } ms after the network healed`,
        );
      }
      return this.#result(null);
    } catch (e) {
      this.#stats.virtualMs = Math.round(this.#now);
      if (e instanceof SafetyViolation) return this.#result(e.message);
      if (e instanceof Error && e.name === 'AssertionError') {
        return this.#result(`Core assertion: ${e.message}`);
      }
      throw e;
    }
  }

  // ---- Events -------------------------------------------------------------------------------

  #handle(event: Event): void {
    switch (event.kind) {
      case 'deliver': {
        const m = this.#members.get(event.message.to);
        if (m === undefined || m.raft === null) {
          if (event.message.type === 'snapshot') this.#snapshotLost(event.message);
          return;
        }
        this.#log(event.message);
        m.raft.step(event.message);
        this.#drain(m);
        return;
      }
      case 'tick': {
        const m = this.#members.get(event.id)!;
        if (m.raft === null || m.incarnation !== event.incarnation) return;
        m.raft.tick(this.#now);
        this.#schedule(this.#o.tickMs, event);
        this.#drain(m);
        return;
      }
      case 'writeDone': {
        const m = this.#members.get(event.id)!;
        if (m.raft === null || m.incarnation !== event.incarnation || m.writing.length === 0) {
          return;
        }
        this.#completeWrite(m);
        this.#drain(m);
        return;
      }
      case 'client':
        this.#clientStep();
        this.#schedule(randomInt(this.#random, 2, this.#clientPauseMsMax), event);
        return;
      case 'fault':
        if (!this.#healed) {
          this.#injectFault();
          this.#schedule(randomInt(this.#random, 50, 400), event);
        }
        return;
      case 'restart': {
        const m = this.#members.get(event.id)!;
        if (m.raft === null) this.#start(m);
        return;
      }
      case 'crash': {
        const m = this.#members.get(event.id)!;
        if (m.raft !== null && m.incarnation === event.incarnation && !this.#healed) {
          this.#crash(m);
          this.#schedule(randomInt(this.#random, 20, 400), { kind: 'restart', id: m.id });
        }
        return;
      }
      case 'snapshotFailed': {
        const m = this.#members.get(event.from)!;
        if (m.raft === null || m.incarnation !== event.incarnation) return;
        m.raft.reportSnapshotFailed(event.to);
        this.#drain(m);
        return;
      }
      case 'heal':
        this.#healed = true;
        this.#net.heal();
        this.#net.faults = calmNetwork;
        for (const m of this.#members.values()) if (m.raft === null) this.#start(m);
        this.#log('heal: network calm, all members up');
        return;
    }
  }

  #start(m: SimMember): void {
    m.incarnation++;
    m.writing = [];
    m.raft = new Raft(m.storage, {
      id: m.id,
      random: m.random,
      electionTicks: this.#o.electionTicks,
      heartbeatTicks: 2,
      messageBytesMax: this.#messageBytesMax,
      inflightMessagesMax: this.#inflightMessagesMax,
      inflightBytesMax: 1 << 20,
      snapshotSendTicksMax: 3 * this.#o.electionTicks,
      appliedIndex: m.storage.snapshotMeta()?.index ?? 0,
      unsafeFaults: this.#o.unsafeFaults,
    });
    m.wasLeaderInTerm = 0;
    // The state machine is rebuilt from the snapshot (if any), then from the log.
    m.snapshotIndex = m.storage.snapshotMeta()?.index ?? 0;
    m.appliedIndex = m.snapshotIndex;
    this.#checker.resetApplied(m.id, m.snapshotIndex);
    this.#checker.resetCommit(m.id, m.storage.hardState().commitIndex);
    this.#schedule(randomInt(this.#random, 1, this.#o.tickMs + 1), {
      kind: 'tick',
      id: m.id,
      incarnation: m.incarnation,
    });
    if (m.incarnation > 1) this.#log(`restart ${m.id}`);
    this.#drain(m);
  }

  #crash(m: SimMember): void {
    m.raft = null;
    m.writing = []; // the writes in progress never reach the disk
    this.#stats.crashes++;
    this.#log(`crash ${m.id}`);
  }

  /**
   * Hand the member's ready batches to the simulated disk and network until it has none, keeping
   * up to `#writePipelineDepth` writes in progress (they complete in order).
   */
  #drain(m: SimMember): void {
    while (m.raft !== null && m.writing.length < this.#writePipelineDepth && m.raft.hasReady()) {
      const rd = m.raft.ready();
      for (const msg of rd.messages) this.#send(msg);
      if (rd.snapshot !== null) {
        // A snapshot from the leader replaces the state machine (the transfer itself is modelled
        // as the one `snapshot` message).
        this.#checker.observeSnapshot(m.id, rd.snapshot.index, rd.snapshot.term);
        this.#checker.resetApplied(m.id, rd.snapshot.index);
        m.appliedIndex = rd.snapshot.index;
        m.snapshotIndex = rd.snapshot.index;
        this.#log(`${m.id} installs snapshot ${rd.snapshot.index}/${rd.snapshot.term}`);
      }
      for (const e of rd.committed) this.#apply(m, e);
      for (const r of rd.readStates) this.#readDone(m, r.requestId, r.index);
      for (const id of rd.readsFailed) this.#reads.delete(id);
      const persists = rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null;
      m.writing.push(rd);
      if (!persists && m.writing.length === 1) {
        this.#completeWrite(m);
        continue;
      }
      const doneAt = Math.max(this.#now, m.writeDoneAtMs) +
        (persists ? 0.05 + this.#random() * 2 : 0);
      m.writeDoneAtMs = doneAt;
      this.#schedule(doneAt - this.#now, {
        kind: 'writeDone',
        id: m.id,
        incarnation: m.incarnation,
      });
    }
  }

  #completeWrite(m: SimMember): void {
    const rd = m.writing.shift()!;
    const batch: WriteBatch = {};
    if (rd.snapshot !== null) batch.snapshot = rd.snapshot;
    if (rd.entries.length > 0) batch.entries = rd.entries;
    if (rd.hardState !== null) batch.hardState = rd.hardState;
    // MemoryStorage applies a write before its promise settles; check that it took effect.
    void m.storage.write(batch).catch(() => {});
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined && m.storage.term(last.index) !== last.term) {
      throw new SafetyViolation(`Storage write of ${m.id} failed at entry ${last.index}`);
    }
    for (const e of rd.entries) {
      this.#checker.observeStored(m.id, e, m.storage.term(e.index - 1) ?? 0);
    }
    for (const msg of rd.messagesAfterPersist) this.#send(msg);
    m.raft!.advance(rd);
  }

  #send(msg: RaftMessage): void {
    const delays = this.#net.deliveryDelays(msg.from, msg.to);
    for (const delay of delays) this.#schedule(delay, { kind: 'deliver', message: msg });
    if (msg.type === 'snapshot' && delays.length === 0) this.#snapshotLost(msg);
  }

  /** A snapshot transfer failed: the sender's driver notices (after a while) and tells its core. */
  #snapshotLost(msg: RaftMessage): void {
    const sender = this.#members.get(msg.from)!;
    this.#schedule(randomInt(this.#random, 20, 200), {
      kind: 'snapshotFailed',
      from: msg.from,
      to: msg.to,
      incarnation: sender.incarnation,
    });
  }

  #apply(m: SimMember, e: Entry): void {
    this.#checker.observeApplied(m.id, e);
    this.#stats.applied++;
    m.appliedIndex = e.index;
    if (this.#snapshotEntries > 0 && e.index - m.snapshotIndex >= this.#snapshotEntries) {
      this.#takeSnapshot(m, e);
    }
    const p = this.#pending.get(e.index);
    if (p !== undefined && p.leader === m.id) {
      this.#pending.delete(e.index);
      if (p.term === e.term && p.fp === fingerprint(e)) {
        this.#acknowledged.set(e.index, p.fp);
        this.#stats.acknowledged++;
        if (this.#healed) this.#ackedAfterHeal++;
        if (e.index > this.#ackedIndexMax) this.#ackedIndexMax = e.index;
      }
    }
  }

  /** Snapshot the (simulated) state machine at `e` and compact the log below it. */
  #takeSnapshot(m: SimMember, e: Entry): void {
    const configs = m.storage.configurations().filter((c) => c.index <= e.index);
    const members = configs[configs.length - 1]?.members ?? [];
    void m.storage.write({ snapshot: { index: e.index, term: e.term, timeMs: e.timeMs, members } });
    const compactTo = e.index - this.#compactionTrailingEntries;
    if (compactTo >= m.storage.firstIndex()) void m.storage.compact(compactTo);
    if (m.storage.snapshotMeta()?.index !== e.index) {
      throw new SafetyViolation(`Snapshot of ${m.id} at ${e.index} failed`);
    }
    m.snapshotIndex = e.index;
  }

  #readDone(m: SimMember, requestId: number, index: number): void {
    const floor = this.#reads.get(requestId);
    if (floor === undefined) return;
    this.#reads.delete(requestId);
    if (index < floor) {
      throw new SafetyViolation(
        `Stale read on ${m.id}: read index ${index} below acknowledged write ${floor}`,
      );
    }
  }

  // ---- Workload and faults ------------------------------------------------------------------

  #clientStep(): void {
    const leaders = [...this.#members.values()].filter((m) => m.raft?.role === 'leader');
    if (leaders.length === 0) return;
    const m = leaders[randomInt(this.#random, 0, leaders.length)]!;
    const raft = m.raft!;
    const roll = this.#random();
    try {
      if (roll < 0.02 && !this.#healed) {
        const others = raft.status().members.filter((x) => x.id !== m.id);
        const to = others[randomInt(this.#random, 0, others.length)]!.id;
        this.#log(`transfer ${m.id} -> ${to}`);
        raft.transferLeadership(to);
      } else if (roll < 0.12) {
        const id = ++this.#readCounter;
        this.#reads.set(id, this.#ackedIndexMax);
        raft.readIndex(id);
      } else {
        const count = randomInt(this.#random, 1, 4);
        const commands: Uint8Array[] = [];
        for (let i = 0; i < count; i++) {
          commands.push(new TextEncoder().encode(`s${this.seed}c${++this.#proposalCounter}`));
        }
        const { firstIndex, term } = raft.proposeBatch(commands, this.#now);
        commands.forEach((c, i) =>
          this.#pending.set(firstIndex + i, {
            term,
            fp: fingerprint({ type: 'command', index: 0, term: 0, timeMs: 0, data: c }),
            leader: m.id,
          })
        );
      }
    } catch (e) {
      if (!(e instanceof Error) || !('code' in e)) throw e; // expected API errors only
    }
    this.#drain(m);
  }

  #injectFault(): void {
    const ids = [...this.#members.keys()];
    const roll = this.#random();
    if (roll < 0.3) {
      // Symmetric partition into two random groups.
      // Fisher-Yates: a sort with a random comparator orders differently on each engine.
      const shuffled = ids.slice();
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = randomInt(this.#random, 0, i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const cut = randomInt(this.#random, 1, ids.length);
      this.#net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      this.#stats.partitions++;
      this.#log(`partition ${this.#net.describe()}`);
    } else if (roll < 0.4) {
      // Isolate the leader: it goes on accepting proposals it cannot commit (a divergent tail).
      const leader = ids.find((id) => this.#members.get(id)!.raft?.role === 'leader');
      if (leader !== undefined) {
        this.#net.partition([[leader], ids.filter((x) => x !== leader)]);
        this.#stats.partitions++;
        this.#log(`isolate leader ${leader}`);
      }
    } else if (roll < 0.55) {
      this.#crashNextLeader = true;
    } else if (roll < 0.6) {
      const from = ids[randomInt(this.#random, 0, ids.length)]!;
      const to = ids.filter((x) => x !== from)[randomInt(this.#random, 0, ids.length - 1)]!;
      this.#net.blockOneWay(from, to);
      this.#stats.partitions++;
      this.#log(`block ${from} -> ${to}`);
    } else if (roll < 0.75) {
      this.#net.heal();
      this.#log('partitions healed');
    } else if (roll < 0.9) {
      // Crash a member (often the leader), restart it a little later.
      const leaders = ids.filter((id) => this.#members.get(id)!.raft?.role === 'leader');
      const pool = leaders.length > 0 && this.#random() < 0.6 ? leaders : ids;
      const m = this.#members.get(pool[randomInt(this.#random, 0, pool.length)]!)!;
      if (m.raft !== null) {
        this.#crash(m);
        this.#schedule(randomInt(this.#random, 20, 400), { kind: 'restart', id: m.id });
      }
    }
  }

  // ---- Checks -------------------------------------------------------------------------------

  #checkAfterStep(): void {
    for (const m of this.#members.values()) {
      const raft = m.raft;
      if (raft === null) continue;
      this.#checker.observeCommit(m.id, raft.commitIndex);
      if (raft.role === 'leader') {
        this.#checker.observeLeader(m.id, raft.term);
        if (m.wasLeaderInTerm !== raft.term) {
          m.wasLeaderInTerm = raft.term;
          this.#stats.elections++;
          this.#log(`${m.id} leader of term ${raft.term}`);
          this.#checker.checkLeaderCompleteness(
            m.id,
            raft.term,
            (i) => raft.termAt(i),
            raft.status().firstIndex,
          );
          if (this.#crashNextLeader) {
            this.#crashNextLeader = false;
            this.#schedule(this.#random() * 30, {
              kind: 'crash',
              id: m.id,
              incarnation: m.incarnation,
            });
          }
        }
      }
    }
  }

  /**
   * Null when the healed cluster has acknowledged a new proposal and every acknowledged proposal
   * is applied on every member; else what is missing.
   */
  #unsettled(): string | null {
    if (this.#ackedAfterHeal === 0) return 'no proposal acknowledged after the network healed';
    for (const m of this.#members.values()) {
      const raft = m.raft;
      if (raft === null) return `${m.id} is down`;
      const st = raft.status();
      if (st.appliedIndex < this.#ackedIndexMax) {
        return `${m.id} applied ${st.appliedIndex} of acknowledged ${this.#ackedIndexMax} (commit ${st.commitIndex}, last ${st.lastIndex}, role ${st.role}, term ${st.term})`;
      }
    }
    for (const [index, fp] of this.#acknowledged) {
      const applied = this.#checker.appliedAt(index);
      if (applied !== fp) {
        throw new SafetyViolation(
          `Acknowledged ${fp} at ${index} but ${applied ?? 'nothing'} was applied there`,
        );
      }
    }
    return null;
  }

  #settled(): boolean {
    if (this.#ackedAfterHeal === 0) return false;
    for (const m of this.#members.values()) {
      if (m.raft === null || m.raft.status().appliedIndex < this.#ackedIndexMax) return false;
    }
    return true;
  }

  // ---- Plumbing -----------------------------------------------------------------------------

  #schedule(delayMs: number, event: Event): void {
    this.#queue.push({ at: this.#now + delayMs, seq: this.#seq++, event });
  }

  #log(what: string | RaftMessage): void {
    this.#trace.push({ at: this.#now, what });
    if (this.#trace.length > this.#o.traceLinesMax * 2) {
      this.#trace.splice(0, this.#trace.length - this.#o.traceLinesMax);
    }
  }

  #result(failure: string | null): SimulationResult {
    return {
      seed: this.seed,
      ok: failure === null,
      failure,
      trace: this.#trace.slice(-this.#o.traceLinesMax).map(({ at, what }) =>
        `${at.toFixed(2).padStart(9)} ${typeof what === 'string' ? what : fmt(what)}`
      ),
      stats: { ...this.#stats },
    };
  }
}

/** A one-line rendering of a message for traces. */
export function fmt(m: RaftMessage): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'vote':
      return `${head}${m.preVote ? ' poll' : ''}${
        m.transfer ? ' transfer' : ''
      } last=${m.lastLogIndex}/${m.lastLogTerm}`;
    case 'voteResponse':
      return `${head}${m.preVote ? ' poll' : ''} ${m.granted ? 'granted' : 'refused'}`;
    case 'append':
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} n=${m.entries.length} commit=${m.commitIndex}`;
    case 'appendResponse':
      return `${head} ${
        m.success ? 'ok' : 'refused'
      } match=${m.matchIndex} hint=${m.hintIndex}/${m.hintTerm}`;
    case 'heartbeat':
      return `${head} commit=${m.commitIndex} seq=${m.readSeq}`;
    case 'heartbeatResponse':
      return `${head} seq=${m.readSeq}`;
    case 'snapshot':
      return `${head} index=${m.index}/${m.snapshotTerm}`;
    case 'timeoutNow':
      return head;
    case 'snapshotChunk':
      return `${head} index=${m.index} offset=${m.offset} bytes=${m.data.byteLength}${
        m.done ? ' done' : ''
      }`;
    case 'snapshotChunkResponse':
      return `${head} index=${m.index} next=${m.nextOffset} ${m.ok ? 'ok' : 'abandon'}`;
  }
}
