/**
 * A cluster of cores driven step by step by a test script, in the manner of etcd-io/raft's
 * interaction tests: nothing happens unless the script says so. Messages queue in a mailbox until
 * `deliver()`; `stabilize()` delivers until the cluster is quiet. Writes go to `MemoryStorage`
 * at once, and every step is held to the same safety checkers as the random simulator.
 *
 * @example
 * ```ts
 * const c = new ScriptedCluster(['a', 'b', 'c']);
 * c.raft('a').campaign();
 * c.stabilize();
 * c.raft('a').role; // 'leader'
 * ```
 * @module
 */
import type { Entry, Member, RaftMessage } from '../base/messages.ts';
import type { UnsafeFaults } from '../core/options.ts';
import { Raft, type ReadState } from '../core/raft.ts';
import { seededRandom } from '../core/random.ts';
import { MemoryStorage } from '../storage/memory.ts';
import type { WriteBatch } from '../storage/storage.ts';
import { SafetyChecker } from './checkers.ts';

/** Options of a scripted cluster. */
export type ScriptedClusterOptions = {
  electionTicks?: number;
  heartbeatTicks?: number;
  messageBytesMax?: number;
  unsafeFaults?: UnsafeFaults;
  /** Bootstrap every member with the same configuration (default true). */
  bootstrap?: boolean;
};

type Node = {
  storage: MemoryStorage;
  raft: Raft | null;
  applied: Entry[];
  reads: ReadState[];
  readsFailed: number[];
};

/** See the module comment. */
export class ScriptedCluster {
  readonly ids: string[];
  readonly checker = new SafetyChecker();
  /** Every message delivered so far, in order (for assertions about round trips). */
  readonly delivered: RaftMessage[] = [];
  readonly #nodes = new Map<string, Node>();
  readonly #o: ScriptedClusterOptions;
  #mailbox: RaftMessage[] = [];
  #cut = new Set<string>();
  #leaderTerms = new Set<string>();
  #seed = 1;
  #timeMs = 0;

  constructor(ids: string[], options: ScriptedClusterOptions = {}) {
    this.ids = ids;
    this.#o = options;
    const members: Member[] = ids.map((id) => ({ id, type: 'ACTIVE' }));
    for (const id of ids) {
      const node: Node = {
        storage: new MemoryStorage(),
        raft: null,
        applied: [],
        reads: [],
        readsFailed: [],
      };
      this.#nodes.set(id, node);
      // The founding members start together with no embargo, so that scripts can elect at once.
      this.#start(id, 0);
      if (options.bootstrap !== false) node.raft!.bootstrap(members, 0);
    }
    this.process();
  }

  /** The core of a running member. */
  raft(id: string): Raft {
    const raft = this.#node(id).raft;
    if (raft === null) throw new Error(`Member ${id} is down`);
    return raft;
  }

  storage(id: string): MemoryStorage {
    return this.#node(id).storage;
  }

  /** Entries the member's state machine has applied since it last started. */
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

  /** Carry out every member's ready batches: persist, queue messages, apply. */
  process(): void {
    for (const id of this.ids) {
      const node = this.#node(id);
      while (node.raft !== null && node.raft.hasReady()) {
        const rd = node.raft.ready();
        const batch: WriteBatch = {};
        if (rd.snapshot !== null) batch.snapshot = rd.snapshot;
        if (rd.entries.length > 0) batch.entries = rd.entries;
        if (rd.hardState !== null) batch.hardState = rd.hardState;
        void node.storage.write(batch); // applied synchronously by MemoryStorage
        for (const e of rd.entries) {
          this.checker.observeStored(id, e, node.storage.term(e.index - 1) ?? 0);
        }
        this.#mailbox.push(...rd.messages, ...rd.messagesAfterPersist);
        for (const e of rd.committed) {
          this.checker.observeApplied(id, e);
          node.applied.push(e);
        }
        node.reads.push(...rd.readStates);
        node.readsFailed.push(...rd.readsFailed);
        node.raft.advance(rd);
      }
      if (node.raft !== null) {
        this.checker.observeCommit(id, node.raft.commitIndex);
        const raft = node.raft;
        if (raft.role === 'leader' && !this.#leaderTerms.has(`${id}@${raft.term}`)) {
          this.#leaderTerms.add(`${id}@${raft.term}`);
          this.checker.observeLeader(id, raft.term);
          this.checker.checkLeaderCompleteness(id, raft.term, (i) => raft.termAt(i));
        }
      }
    }
  }

  /**
   * Deliver the queued messages that `filter` accepts (all by default), dropping those to or from
   * a cut-off or stopped member. Returns how many were delivered.
   */
  deliver(filter: (m: RaftMessage) => boolean = () => true): number {
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
      if (target?.raft == null) continue;
      this.delivered.push(m);
      target.raft.step(m);
      count++;
    }
    this.process();
    return count;
  }

  /** Discard queued messages that `filter` accepts (all by default): they are lost. */
  drop(filter: (m: RaftMessage) => boolean = () => true): void {
    this.#mailbox = this.#mailbox.filter((m) => !filter(m));
  }

  /** Let the listed members' view of a leader lapse (an election timeout passes), discarding what they send meanwhile. */
  expireLeases(ids: string[]): void {
    this.tick(this.#o.electionTicks ?? 10, ids);
    this.drop((m) => ids.includes(m.from));
  }

  /** Deliver and process until no message is left (bounded). */
  stabilize(roundsMax = 1000): void {
    for (let i = 0; i < roundsMax; i++) {
      this.process();
      if (this.#mailbox.length === 0) return;
      this.deliver();
    }
    throw new Error(`Cluster did not stabilize in ${roundsMax} rounds`);
  }

  /** Advance each listed member's clock (all running members by default) by `count` ticks. */
  tick(count = 1, ids: string[] = this.ids): void {
    for (let i = 0; i < count; i++) {
      this.#timeMs += 10;
      for (const id of ids) this.#node(id).raft?.tick(this.#timeMs);
    }
    this.process();
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
    this.#node(id).raft = null;
    this.#mailbox = this.#mailbox.filter((m) => m.from !== id && m.to !== id);
  }

  /**
   * Stop `id` and start it again with empty storage, bootstrapped with the founding members (as
   * a member whose data directory was wiped comes back). `voteEmbargoTicks` as the server sets it.
   */
  wipe(id: string, voteEmbargoTicks = 0): void {
    this.crash(id);
    const node = this.#node(id);
    node.storage = new MemoryStorage();
    this.#start(id, voteEmbargoTicks);
    node.raft!.bootstrap(this.ids.map((x) => ({ id: x, type: 'ACTIVE' })), 0);
    this.process();
  }

  /**
   * Start `id` again from its storage, with an empty state machine. Like every start of a real
   * member, it refuses real votes for an election timeout (the core's default `voteEmbargoTicks`)
   * unless `voteEmbargoTicks` says otherwise.
   */
  restart(id: string, voteEmbargoTicks?: number): void {
    this.#start(id, voteEmbargoTicks);
    this.process();
  }

  /** Make `id` start an election now (it polls first), and queue its messages. */
  campaign(id: string): void {
    this.raft(id).campaign();
    this.process();
  }

  /** Propose commands (strings) on `id`; returns the first index. */
  propose(id: string, ...commands: string[]): number {
    const r = this.raft(id).proposeBatch(
      commands.map((c) => new TextEncoder().encode(c)),
      this.#timeMs,
    );
    this.process();
    return r.firstIndex;
  }

  /** The terms of the member's log, index 1 first (undefined where compacted). */
  logTerms(id: string): Array<number | undefined> {
    const raft = this.raft(id);
    const out: Array<number | undefined> = [];
    for (let i = 1; i <= raft.lastIndex; i++) out.push(raft.termAt(i));
    return out;
  }

  /** Start `id` from its storage; `voteEmbargoTicks` undefined means the core's default. */
  #start(id: string, voteEmbargoTicks?: number): void {
    const node = this.#node(id);
    node.raft = new Raft(node.storage, {
      id,
      ...(voteEmbargoTicks === undefined ? {} : { voteEmbargoTicks }),
      random: seededRandom(this.#seed++),
      electionTicks: this.#o.electionTicks ?? 10,
      heartbeatTicks: this.#o.heartbeatTicks ?? 1,
      messageBytesMax: this.#o.messageBytesMax ?? 1024 * 1024,
      ...(this.#o.unsafeFaults === undefined ? {} : { unsafeFaults: this.#o.unsafeFaults }),
    });
    node.applied = [];
    this.checker.resetApplied(id, 0);
    this.checker.resetCommit(id, node.storage.hardState().commitIndex);
  }

  #node(id: string): Node {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`No member ${id}`);
    return node;
  }
}
