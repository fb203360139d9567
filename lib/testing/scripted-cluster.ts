/**
 * A cluster of members driven step by step by a test script, in the manner of etcd-io/raft's
 * interaction tests: nothing happens unless the script says so. Each member is the real member
 * driver (the loop a `RaftServer` runs) over `MemoryStorage`, with a clock of its own that moves
 * only when the script ticks it. Messages queue in a mailbox until `deliver()`; `stabilize()`
 * delivers until the cluster is quiet. Writes complete at once, and every step is held to the same
 * safety checkers as the random simulator.
 *
 * @example
 * ```ts
 * const c = await ScriptedCluster.start(['a', 'b', 'c']);
 * await c.campaign('a');
 * await c.stabilize();
 * c.raft('a').role; // 'leader'
 * ```
 * @module
 */
import type { Entry, Member, RaftMessage } from '../base/messages.ts';
import type { MembershipUnsafeFaults, UnsafeFaults } from '../core/options.ts';
import type { Raft, ReadState } from '../core/raft.ts';
import { seededRandom } from '../core/random.ts';
import { MemberDriver } from '../member/driver.ts';
import { parseDriverOptions } from '../member/options.ts';
import type { Clock } from '../member/ports.ts';
import type { CommandCodec } from '../state/codec.ts';
import type { StateMachine } from '../state/state-machine.ts';
import { MemoryStorage } from '../storage/memory.ts';
import { SafetyChecker } from './checkers.ts';
import { settle } from './sim-time.ts';

/** Options of a scripted cluster. */
export type ScriptedClusterOptions = {
  electionTicks?: number;
  heartbeatTicks?: number;
  messageBytesMax?: number;
  unsafeFaults?: UnsafeFaults & MembershipUnsafeFaults;
  /** Bootstrap every member with the same configuration (default true). */
  bootstrap?: boolean;
  /** Snapshot after this many applied entries (default: never). */
  snapshotEntriesThreshold?: number;
  /** Entries kept below a snapshot when compacting (default 0). */
  compactionTrailingEntries?: number;
  /** Entries a live passive member may lag before compaction stops waiting for it (default 10,000). */
  compactionLagEntriesMax?: number;
  /** Member types by id for the founding configuration (default: every member ACTIVE). */
  types?: Record<string, Member['type']>;
};

/** Milliseconds a scripted tick moves a member's clock. */
const tickMs = 10;
/** Rounds of deferred work and promise continuations `process` runs before it gives up. */
const processRoundsMax = 10_000;

type Timer = { dueMs: number; seq: number; run: () => void; cancelled: boolean };

type Node = {
  storage: MemoryStorage;
  driver: MemberDriver<Uint8Array, null> | null;
  incarnation: number;
  timeMs: number;
  timers: Timer[];
  applied: Entry[];
  reads: ReadState[];
  readsFailed: number[];
};

/** Commands stay bytes (the script writes strings); applying one does nothing. */
const bytesCodec: CommandCodec<Uint8Array> = { encode: (b) => b, decode: (b) => b };
function inertMachine(): StateMachine<Uint8Array, null, unknown, null> {
  return {
    apply: () => null,
    query: () => null,
    snapshot: () => (async function* () {})(),
    restore: async () => {},
  };
}

/** See the module comment. Create with `ScriptedCluster.start`. */
export class ScriptedCluster {
  readonly ids: string[];
  readonly checker: SafetyChecker = new SafetyChecker();
  /** Every message delivered so far, in order (for assertions about round trips). */
  readonly delivered: RaftMessage[] = [];
  readonly #nodes = new Map<string, Node>();
  readonly #o: ScriptedClusterOptions;
  readonly #members: Member[];
  #mailbox: RaftMessage[] = [];
  #cut = new Set<string>();
  #leaderTerms = new Set<string>();
  #deferred: Array<() => void> = [];
  #timerSeq = 0;
  #seed = 1;

  private constructor(ids: string[], options: ScriptedClusterOptions) {
    this.ids = ids;
    this.#o = options;
    this.#members = ids.map((id) => ({ id, type: options.types?.[id] ?? 'ACTIVE' }));
  }

  /** Start every member (bootstrapped with the same members unless `bootstrap: false`). */
  static async start(
    ids: string[],
    options: ScriptedClusterOptions = {},
  ): Promise<ScriptedCluster> {
    const c = new ScriptedCluster(ids, options);
    for (const id of ids) {
      c.#nodes.set(id, {
        storage: new MemoryStorage(),
        driver: null,
        incarnation: 0,
        timeMs: 0,
        timers: [],
        applied: [],
        reads: [],
        readsFailed: [],
      });
      // The founding members start together with no embargo, so that scripts can elect at once.
      await c.#start(id, 0, options.bootstrap !== false);
    }
    await c.process();
    return c;
  }

  /** The core of a running member (to inspect, or to poke: call `process()` after). */
  raft(id: string): Raft {
    const driver = this.#node(id).driver;
    if (driver === null) throw new Error(`Member ${id} is down`);
    return driver.core;
  }

  /** The driver of a running member. */
  driver(id: string): MemberDriver<Uint8Array, null> {
    const driver = this.#node(id).driver;
    if (driver === null) throw new Error(`Member ${id} is down`);
    return driver;
  }

  storage(id: string): MemoryStorage {
    return this.#node(id).storage;
  }

  /** Entries the member handed to its state machine since it last started. */
  applied(id: string): Entry[] {
    return this.#node(id).applied;
  }

  /** Read states the member's core has released (safe once applied up to their index). */
  reads(id: string): ReadState[] {
    return this.#node(id).reads;
  }

  /** Read requests the member's core gave up on (it lost leadership). */
  readsFailed(id: string): number[] {
    return this.#node(id).readsFailed;
  }

  /** Messages waiting in the mailbox. */
  get pending(): readonly RaftMessage[] {
    return this.#mailbox;
  }

  /**
   * Let every member carry out what it has to do (readies, writes, applies) until all are quiet.
   * Messages they send queue in the mailbox.
   */
  async process(): Promise<void> {
    for (const node of this.#nodes.values()) node.driver?.nudge();
    for (let round = 0; round < processRoundsMax; round++) {
      await settle();
      if (this.#deferred.length === 0) {
        await settle();
        if (this.#deferred.length === 0) break;
      }
      const work = this.#deferred;
      this.#deferred = [];
      for (const run of work) run();
    }
    for (const id of this.ids) {
      const driver = this.#node(id).driver;
      if (driver === null) continue;
      if (driver.failure !== null) throw driver.failure;
      const raft = driver.core;
      this.checker.observeCommit(id, raft.commitIndex);
      if (raft.role === 'leader' && !this.#leaderTerms.has(`${id}@${raft.term}`)) {
        this.#leaderTerms.add(`${id}@${raft.term}`);
        this.checker.observeLeader(id, raft.term);
        this.checker.checkLeaderCompleteness(id, raft.term, (i) => raft.termAt(i));
      }
    }
  }

  /**
   * Deliver the queued messages that `filter` accepts (all by default), dropping those to or from
   * a cut-off or stopped member. Returns how many were delivered.
   */
  async deliver(filter: (m: RaftMessage) => boolean = () => true): Promise<number> {
    const now = this.#mailbox;
    this.#mailbox = [];
    let count = 0;
    for (const m of now) {
      if (!filter(m)) {
        this.#mailbox.push(m);
        continue;
      }
      if (this.#cut.has(m.from) || this.#cut.has(m.to)) continue;
      const target = this.#nodes.get(m.to);
      if (target?.driver == null) continue;
      this.delivered.push(m);
      target.driver.receive(m);
      count++;
    }
    await this.process();
    return count;
  }

  /** Discard queued messages that `filter` accepts (all by default): they are lost. */
  drop(filter: (m: RaftMessage) => boolean = () => true): void {
    this.#mailbox = this.#mailbox.filter((m) => !filter(m));
  }

  /** Let the listed members' view of a leader lapse (an election timeout passes), discarding what they send meanwhile. */
  async expireLeases(ids: string[]): Promise<void> {
    await this.tick(this.#o.electionTicks ?? 10, ids);
    this.drop((m) => ids.includes(m.from));
  }

  /** Deliver and process until no message is left (bounded). */
  async stabilize(roundsMax = 1000): Promise<void> {
    for (let i = 0; i < roundsMax; i++) {
      await this.process();
      if (this.#mailbox.length === 0) return;
      await this.deliver();
    }
    throw new Error(`Cluster did not stabilize in ${roundsMax} rounds`);
  }

  /** Advance each listed member's clock (all running members by default) by `count` ticks. */
  async tick(count = 1, ids: string[] = this.ids): Promise<void> {
    for (let i = 0; i < count; i++) {
      for (const id of ids) {
        const node = this.#node(id);
        node.timeMs += tickMs;
        this.#fireTimers(node);
      }
      await this.process();
    }
  }

  /** Drop every message to and from `id` until `heal()`. */
  isolate(id: string): void {
    this.#cut.add(id);
  }

  heal(): void {
    this.#cut.clear();
  }

  /** Stop `id`, losing everything not in its storage, and its queued messages. */
  crash(id: string): void {
    const node = this.#node(id);
    node.incarnation++;
    node.driver?.crash();
    node.driver = null;
    node.timers = [];
    this.#mailbox = this.#mailbox.filter((m) => m.from !== id && m.to !== id);
  }

  /**
   * Stop `id` and start it again with empty storage, bootstrapped with the founding members (as
   * a member whose data directory was wiped comes back). `voteEmbargoTicks` as the driver sets it
   * when omitted (two election timeouts for an empty storage).
   */
  async wipe(id: string, voteEmbargoTicks?: number): Promise<void> {
    this.crash(id);
    this.#node(id).storage = new MemoryStorage();
    await this.#start(id, voteEmbargoTicks, true);
    await this.process();
  }

  /**
   * Start `id` again from its storage. Like every start of a real member, it refuses real votes
   * for an election timeout (the driver's default) unless `voteEmbargoTicks` says otherwise.
   */
  async restart(id: string, voteEmbargoTicks?: number): Promise<void> {
    this.crash(id);
    await this.#start(id, voteEmbargoTicks, false);
    await this.process();
  }

  /** Make `id` start an election now (it polls first), and queue its messages. */
  async campaign(id: string): Promise<void> {
    this.raft(id).campaign();
    await this.process();
  }

  /** Propose commands (strings) on `id`; returns the first index. */
  async propose(id: string, ...commands: string[]): Promise<number> {
    const node = this.#node(id);
    const r = this.raft(id).proposeBatch(
      commands.map((c) => new TextEncoder().encode(c)),
      node.timeMs,
    );
    await this.process();
    return r.firstIndex;
  }

  /** The terms of the member's log, index 1 first (undefined where compacted). */
  logTerms(id: string): Array<number | undefined> {
    const raft = this.raft(id);
    const out: Array<number | undefined> = [];
    for (let i = 1; i <= raft.lastIndex; i++) out.push(raft.termAt(i));
    return out;
  }

  #clock(node: Node, incarnation: number): Clock {
    const alive = () => node.incarnation === incarnation;
    return {
      nowMs: () => node.timeMs,
      setTimer: (delayMs, run) => {
        const timer: Timer = {
          dueMs: node.timeMs + delayMs,
          seq: this.#timerSeq++,
          run,
          cancelled: false,
        };
        node.timers.push(timer);
        return () => {
          timer.cancelled = true;
        };
      },
      defer: (run) => {
        this.#deferred.push(() => {
          if (alive()) run();
        });
      },
    };
  }

  #fireTimers(node: Node): void {
    const due = node.timers.filter((t) => !t.cancelled && t.dueMs <= node.timeMs);
    node.timers = node.timers.filter((t) => !t.cancelled && t.dueMs > node.timeMs);
    due.sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq);
    for (const t of due) t.run();
  }

  async #start(
    id: string,
    voteEmbargoTicks: number | undefined,
    bootstrap: boolean,
  ): Promise<void> {
    const node = this.#node(id);
    const incarnation = ++node.incarnation;
    const live = () => node.incarnation === incarnation;
    node.storage.reopen();
    node.applied = [];
    node.timers = [];
    this.checker.resetApplied(id, node.storage.snapshotMeta()?.index ?? 0);
    this.checker.resetCommit(id, node.storage.hardState().commitIndex);
    const options = parseDriverOptions({
      tickMs,
      electionTicks: this.#o.electionTicks ?? 10,
      heartbeatTicks: this.#o.heartbeatTicks ?? 1,
      messageBytesMax: this.#o.messageBytesMax ?? 1024 * 1024,
      inflightBytesMax: Math.max(this.#o.messageBytesMax ?? 1024 * 1024, 64 * 1024 * 1024),
      stopGraceMs: 0,
      snapshotEntriesThreshold: this.#o.snapshotEntriesThreshold ?? 2 ** 40,
      compactionTrailingEntries: this.#o.compactionTrailingEntries ?? 0,
      ...(this.#o.compactionLagEntriesMax === undefined
        ? {}
        : { compactionLagEntriesMax: this.#o.compactionLagEntriesMax }),
    }, 'ScriptedCluster');
    const driver = await MemberDriver.open<Uint8Array, null, unknown, null>({
      id,
      storage: node.storage,
      transport: {
        send: (m) => {
          if (live()) this.#mailbox.push(m);
        },
        setPeers: () => {},
      },
      clock: this.#clock(node, incarnation),
      random: seededRandom(this.#seed++),
      stateMachine: inertMachine(),
      codec: bytesCodec,
      options,
      logger: { info: () => {}, warn: () => {}, debug: () => {} },
      ...(bootstrap ? { members: this.#members } : {}),
      ...(voteEmbargoTicks === undefined ? {} : { voteEmbargoTicks }),
      ...(this.#o.unsafeFaults === undefined ? {} : { unsafeFaults: this.#o.unsafeFaults }),
      probe: {
        ready: (rd) => {
          if (!live()) return;
          node.reads.push(...rd.readStates);
          node.readsFailed.push(...rd.readsFailed);
          if (rd.snapshot !== null) this.checker.resetApplied(id, rd.snapshot.index);
        },
        persisted: (rd) => {
          if (!live()) return;
          for (const e of rd.entries) {
            this.checker.observeStored(id, e, node.storage.term(e.index - 1) ?? 0);
          }
        },
        committed: (entries) => {
          if (!live()) return;
          for (const e of entries) {
            this.checker.observeApplied(id, e);
            node.applied.push(e);
          }
        },
      },
    });
    node.driver = driver;
    driver.start();
  }

  #node(id: string): Node {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`No member ${id}`);
    return node;
  }
}
