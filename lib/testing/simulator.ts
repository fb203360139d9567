/**
 * A deterministic simulator of a Raft cluster that runs the real member driver (the same
 * `MemberDriver` a `RaftServer` runs) with a real state machine through the real executor, over
 * memory storage whose writes take virtual time and are lost in a crash, a simulated network
 * (seeded drop, delay, duplication, reordering, symmetric and one-way partitions) and virtual
 * time. Simulated clients issue commands and reads at every consistency level, with retries and
 * unknown outcomes, and their history is checked for linearizability at the end.
 *
 * Faults are aimed where ordering matters: on some seeds the disk is slower than the network,
 * and members are crashed right after they send a vote or an acknowledgement while their write
 * is still in flight, and leaders right after they acknowledge a client; leaders transfer
 * leadership and are cut off at once; voters restart while a leader holds its lease.
 *
 * Checked after every step: at most one leader per term; log matching; leader completeness;
 * state-machine safety (no two members apply different entries at one index); commit index
 * never decreasing; snapshots only of committed state; every member produces the same output at
 * every index; a proposal is answered with its own index's output; no read returns an index below
 * a write acknowledged before it began. At the end, once the network healed and the workload
 * stopped: the healed cluster commits a new write; every acknowledged write is applied on every
 * member; every member's state is the same (whether it got there by the log or by snapshots); the
 * history is linearizable. One seed replays one run exactly, on every runtime.
 *
 * With membership churn (`membership`, on by default for every third seed): PASSIVE and RESERVE
 * members beside the ACTIVE ones, joins of members with empty storage, promotions, demotions, leaves, the
 * balancer on some seeds, all through `changeMembership` on a random member, mixed with the faults
 * above; the rules of `sim-membership.ts` are checked throughout, and the end checks cover the
 * ACTIVE and PASSIVE members of the committed configuration.
 *
 * @example
 * ```ts
 * const result = await runSimulation({ seed: 7, memberCount: 3 });
 * if (!result.ok) console.log(result.failure, result.trace.join('\n'));
 * ```
 * @module
 */
import { AssertionError } from '../base/errors.ts';
import { type Entry, type Member, type RaftMessage, RaftMessageSchema } from '../base/messages.ts';
import type { MembershipUnsafeFaults, UnsafeFaults } from '../core/options.ts';
import { randomInt, type RandomSource, seededRandom } from '../core/random.ts';
import type { BalancerFaults } from '../member/balancer.ts';
import { MemberDriver } from '../member/driver.ts';
import { type DriverUnsafeFaults, parseDriverOptions } from '../member/options.ts';
import type { RequestsUnsafeFaults } from '../member/requests.ts';
import type { ExecutorUnsafeFaults } from '../state/executor.ts';
import type { MemberLogger } from '../member/ports.ts';
import { cborCodec } from '../state/codec.ts';
import { encodeEnvelope } from '../state/envelope.ts';
import { KvStateMachine } from '../state/kv.ts';
import type { StateMachine } from '../state/state-machine.ts';
import { MemoryStorage } from '../storage/memory.ts';
import { MessageCodec } from '../transport/codec.ts';
import { fingerprint, SafetyChecker, SafetyViolation } from './checkers.ts';
import { checkLinearizability } from './linearizability/check.ts';
import type { Operation } from './linearizability/history.ts';
import { SimDisk } from './sim-disk.ts';
import { emptyMembershipStats, MembershipChecker, type MembershipStats } from './sim-membership.ts';
import { calmNetwork, type NetworkFaults, SimNetwork } from './sim-network.ts';
import { LivelockError, VirtualTime } from './sim-time.ts';
import { kvWorkload, type SimOperation, type Workload } from './sim-workload.ts';
import {
  checkExactlyOnce,
  emptySessionStats,
  SessionClient,
  type SessionClientHost,
  type SessionStats,
} from './session-client.ts';
import { appendModel } from './session-model.ts';
import { SessionOracle } from './session-oracle.ts';

/** Every deliberate bug the simulator can run against: the core's, the driver's, the sessions'. */
export type SimulationFaults =
  & UnsafeFaults
  & DriverUnsafeFaults
  & RequestsUnsafeFaults
  & ExecutorUnsafeFaults
  & MembershipUnsafeFaults
  & BalancerFaults;

/**
 * Faults that a planted bug needs beside it to show at all. With the leader's sequencing intact a
 * sequence is never logged twice, so the executor's deduplication is never exercised: turning it
 * off (`applyDuplicateSequences`) shows only once retries are logged again (`relogRetries`).
 */
/** How many times `settleMsMax` a cluster that is still converging may take (see the option). */
const settleProgressFactor = 3;

export const unsafeFaultCompanions: Partial<Record<keyof SimulationFaults, SimulationFaults>> = {
  applyDuplicateSequences: { relogRetries: true },
  // A passive member's own filter is what the fault removes; the feeders' filter would hide it.
  passiveAcceptsUncommitted: { feedUncommittedEntries: true },
};

/**
 * Options an unsafe fault needs to show at all, beside its companions: the membership faults need
 * membership churn (and the balancer's, the balancer); a passive member that accepts uncommitted
 * entries shows only when the feeds carry them (`feedUncommittedEntries`, a companion), and only
 * if the check of the feeds themselves, which would catch the companion first, is off.
 */
export const unsafeFaultOptions: Partial<
  Record<keyof SimulationFaults, Pick<SimulationOptions, 'membership' | 'balancer' | 'feedChecks'>>
> = {
  feedUncommittedEntries: { membership: true },
  passiveAcceptsUncommitted: { membership: true, feedChecks: false },
  passiveKeepsUncommitted: { membership: true },
  adoptTermFromNonVoters: { membership: true },
  balancerDemotesFirst: { membership: true, balancer: true },
};

/** What to simulate. Every field but `seed` has a default. */
export type SimulationOptions = {
  seed: number;
  /** ACTIVE members the cluster starts with. Default: 3 for even seeds, 5 for odd ones. */
  memberCount?: number;
  /**
   * Membership churn (default: on for every third seed, `seed % 3 === 0`, with the built-in
   * key-value workload; off with your own `stateMachine` unless set): the cluster starts
   * with 1-2 PASSIVE and 0-1 RESERVE members beside the ACTIVE ones, and the fault loop also joins
   * new members (fresh storage, as PASSIVE or RESERVE), promotes, demotes and removes members
   * (each through `changeMembership` on a random member, retried later when refused retryably),
   * crashes passive members and kills ACTIVE ones for long; on some seeds the balancer runs. The
   * membership rules of `sim-membership.ts` are checked throughout.
   */
  membership?: boolean;
  /**
   * With membership churn: run the balancer (targets: the founding ACTIVE and PASSIVE counts).
   * Default: on for 40% of the churn seeds, by seed.
   */
  balancer?: boolean;
  /**
   * Check that every feed carries committed entries only (default true). Off, only what passive
   * members store is judged: a test turns it off to prove that check bites on its own.
   */
  feedChecks?: boolean;
  /** Virtual milliseconds of faults (partitions, crashes, loss) while clients run. */
  chaosMs?: number;
  /**
   * Virtual milliseconds allowed, after healing, for the cluster to commit and converge. A cluster
   * still converging at the bound (its applied entries rising each second) gets more time, up to
   * 3 times the bound; one that stopped converging fails there.
   */
  settleMsMax?: number;
  /** Virtual milliseconds per tick. */
  tickMs?: number;
  electionTicks?: number;
  /** A fresh state machine for each member start (default: the key-value machine). */
  stateMachine?: () => StateMachine<unknown, unknown, unknown, unknown>;
  /** What the clients do (default: the key-value workload; required with another machine). */
  workload?: () => Workload;
  /**
   * A digest of a state machine's state, compared across members at the end. Default: its
   * snapshot bytes (so equal states must snapshot to equal bytes; the key-value machine's digest
   * is its sorted contents).
   */
  fingerprintState?: (machine: StateMachine<unknown, unknown, unknown, unknown>) => Promise<string>;
  /** Simulated clients. Default: 3 to 8, by seed. */
  clientCount?: number;
  /**
   * Simulated clients with sessions (`session-client.ts`), beside the others; they need the
   * key-value machine. Default: 1 to 3 by seed with the key-value machine, none with another.
   */
  sessionClientCount?: number;
  /** Deliberate protocol bugs, to prove the checks catch them. */
  unsafeFaults?: SimulationFaults;
  /**
   * Check each read's index against the highest commit index and the applied index that answered
   * it (default true). Off, only the linearizability check of the history judges reads: a test
   * turns it off to prove that check bites on its own.
   */
  readIndexChecks?: boolean;
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
  stats:
    & {
      virtualMs: number;
      events: number;
      elections: number;
      acknowledged: number;
      applied: number;
      crashes: number;
      partitions: number;
      reads: number;
      snapshotsInstalled: number;
      historyOperations: number;
      /**
       * Histories (plain, session) whose linearizability check ran out of its time budget: the
       * verdict is `unknown`, which passes; counted so that a sweep shows how much went unchecked.
       */
      linearizabilityUnknown: number;
    }
    & SessionStats
    & {
      /** Sessions expired by log time (as the session rules say they must). */
      sessionsExpired: number;
      /** Sessions said to be unknown while they lived (any fails the run). */
      falseExpiries: number;
    }
    & MembershipStats;
};

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
    reads: 0,
    snapshotsInstalled: 0,
    historyOperations: 0,
    linearizabilityUnknown: 0,
    ...emptySessionStats(),
    sessionsExpired: 0,
    falseExpiries: 0,
    ...emptyMembershipStats(),
  };
}

/** Run one seeded simulation to the end. Never throws for a protocol failure: it reports it. */
export function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).run();
}

type SimMember = {
  id: string;
  memory: MemoryStorage;
  disk: SimDisk | null;
  driver: MemberDriver | null;
  machine: StateMachine<unknown, unknown, unknown, unknown> | null;
  incarnation: number;
  random: RandomSource;
  wasLeaderInTerm: number;
  /** Clock offset in virtual ms (a clock running ahead or behind). */
  skewMs: number;
  /** This member's disk is far slower than the others'. */
  stragglerDisk: boolean;
  /** Tells this member's driver that a peer's connection broke (a peer crashed). */
  onPeerDown: (peer: string) => void;
  /** A founding member (bootstraps the founding configuration); a joined one starts empty. */
  founder: boolean;
  /** It left the cluster and was shut down for good. */
  gone: boolean;
};

/** The moments crashes are aimed at: right after a member sent or promised something. */
type AimKind = 'vote' | 'ack' | 'commit' | 'answer' | 'promote';
/** Most crashes aimed at one kind of moment per run. */
const aimedCrashesMax = 3;

/** One simulated cluster. Prefer `runSimulation`; the class is exported for scripted tests. */
export class Simulation {
  readonly seed: number;
  readonly #random: RandomSource;
  readonly #time = new VirtualTime();
  readonly #net: SimNetwork;
  readonly #checker = new SafetyChecker();
  readonly #members = new Map<string, SimMember>();
  readonly #founders: Member[] = [];
  readonly #o: {
    memberCount: number;
    chaosMs: number;
    settleMsMax: number;
    tickMs: number;
    electionTicks: number;
    clientCount: number;
    sessionClientCount: number;
    traceLinesMax: number;
    unsafeFaults: SimulationFaults;
    readIndexChecks: boolean;
  };
  readonly #makeMachine: () => StateMachine<unknown, unknown, unknown, unknown>;
  readonly #workload: Workload;
  readonly #fingerprintState: (
    m: StateMachine<unknown, unknown, unknown, unknown>,
  ) => Promise<string>;
  readonly #codec = cborCodec<unknown>();
  /** On some seeds every message crosses the real wire codec, so none can pass that TCP would refuse. */
  readonly #wire: MessageCodec<typeof RaftMessageSchema> | null;
  /** Raw trace events, rendered only when a report is made. */
  readonly #trace: Array<{ at: number; what: string | RaftMessage }> = [];
  // Per-seed shape of the run.
  readonly #driverOptions: ReturnType<typeof parseDriverOptions>;
  readonly #slowDisk: boolean;
  /** Per seed: virtual milliseconds a state machine takes between apply batches (a slow machine). */
  readonly #applyYieldMsMax: number;
  /** The highest commit index any member has reached: no read may return less. */
  #committedMax = 0;
  /** Clients hold their commands (reads go on) until then: a quiet log for lease faults. */
  #quietUntilMs = 0;
  /** The lease-after-restart pattern waits for `candidate` to poll, then restarts `voters`. */
  #restartOnPollFrom: { candidate: string; voters: string[] } | null = null;
  /** No new fault until then (a fault pattern is running). */
  #faultsPausedUntilMs = 0;
  readonly #aimProbability: number;
  readonly #clientPauseMsMax: number;
  /** Per seed: how long a client waits for one operation, retries included, in virtual ms. */
  readonly #clientTimeoutMs: number;
  /** Per seed: the session timeout session clients ask for, and how long they wait per attempt. */
  readonly #sessionTimeoutMs: number;
  readonly #sessionAttemptMs: number;
  readonly #aimedCrashes = new Map<AimKind, number>();
  /** The highest commit index each member announced as leader (for aimed crashes). */
  readonly #announcedCommit = new Map<string, number>();
  /** Leaders to cut off right after they send timeoutNow (a transfer fault). */
  readonly #cutAfterTimeoutNow = new Set<string>();
  /** Vote answers (`voter>candidate@term`) whose delivery cuts the candidate off. */
  readonly #isolateOnDelivery = new Set<string>();
  /** The membership rules and the committed configuration (null: no membership churn). */
  readonly #membership: MembershipChecker | null = null;
  readonly #feedChecks: boolean;
  /** Per seed, with churn: the balancer runs (the simulator then leaves ACTIVE members to it). */
  #balancer = false;
  /** Members the churn may still add. */
  #joinsLeft = 0;
  /** When each member that left was first seen gone from the committed configuration. */
  readonly #leftSeenMs = new Map<string, number>();
  #healed = false;
  #workloadStopped = false;
  #violation: Error | null = null;
  #stats = emptyStats();
  /** Acknowledged proposals: index -> fingerprint of the command bytes. */
  readonly #acknowledged = new Map<number, string>();
  #ackedIndexMax = 0;
  #ackedAfterHeal = 0;
  /** The output every member produced at each index (JSON), as first seen. */
  readonly #outputs = new Map<number, string>();
  readonly #history: Operation[] = [];
  /**
   * Commands whose client stopped waiting and whose member has not answered yet: each records
   * its command as of unknown outcome when called (at the end, before the history is checked; a
   * command missing from the history would make its effect look like one from nowhere).
   */
  readonly #unanswered = new Set<() => void>();
  /** What the session clients are checked against (null: no session clients). */
  readonly #sessionOracle: SessionOracle | null;
  readonly #sessionClients: SessionClient[] = [];
  /** The session clients' history (their own keys), checked on its own with `appendModel`. */
  readonly #sessionHistory: Operation[] = [];
  /** Keys only session clients write (appends of unique tokens), all under the watched `s`. */
  static readonly sessionKeys = ['s0', 's1', 's2', 's3'] as const;

  constructor(options: SimulationOptions) {
    this.seed = options.seed;
    this.#random = seededRandom(options.seed);
    const r = this.#random;
    this.#o = {
      memberCount: options.memberCount ?? (options.seed % 2 === 0 ? 3 : 5),
      chaosMs: options.chaosMs ?? 3000,
      settleMsMax: options.settleMsMax ?? 6000,
      tickMs: options.tickMs ?? 10,
      electionTicks: options.electionTicks ?? 10,
      clientCount: options.clientCount ?? randomInt(r, 3, 9),
      sessionClientCount: options.sessionClientCount ??
        (options.stateMachine === undefined ? randomInt(r, 1, 4) : 0),
      traceLinesMax: options.traceLinesMax ?? 60,
      unsafeFaults: options.unsafeFaults ?? {},
      readIndexChecks: options.readIndexChecks ?? true,
    };
    if (options.stateMachine !== undefined && options.workload === undefined) {
      throw new TypeError('Invalid option workload for runSimulation: required with stateMachine');
    }
    if (options.stateMachine !== undefined && this.#o.sessionClientCount > 0) {
      throw new TypeError(
        'Invalid option sessionClientCount for runSimulation: session clients need the key-value machine',
      );
    }
    this.#makeMachine = options.stateMachine ?? (() => new KvStateMachine());
    this.#workload = (options.workload ?? kvWorkload)();
    this.#fingerprintState = options.fingerprintState ?? defaultFingerprint;
    const faults: NetworkFaults = {
      dropProbability: r() * 0.1,
      duplicateProbability: r() * 0.05,
      delayMsMin: 0.5,
      delayMsMax: 2 + r() * 8,
      longDelayProbability: r() * 0.05,
      longDelayMsMax: 60,
    };
    this.#slowDisk = r() < 0.4;
    this.#applyYieldMsMax = r() < 0.3 ? 1 + r() * 8 : 0;
    this.#aimProbability = r() < 0.3 ? 0 : 0.05 + r() * 0.2;
    this.#clientPauseMsMax = [5, 40][randomInt(r, 0, 2)]!;
    this.#clientTimeoutMs = [100, 300, 800][randomInt(r, 0, 3)]!;
    const messageBytesMax = [1, 64, 512, 4096][randomInt(r, 0, 4)]!;
    const snapshotEntries = r() < 0.5 ? 0 : randomInt(r, 10, 60);
    // Sessions: short timeouts (leaderless time then matters), forwards that time out, a small
    // queue for early commands on some seeds, and on some a bound on unacknowledged events so
    // small that events are dropped.
    const sessionEventsMax = r() < 0.2 ? 8 : 65_536;
    const sessionOptions = {
      sessionTimeoutMsMin: 100,
      forwardTimeoutMs: [150, 1000][randomInt(r, 0, 2)]!,
      sessionCommandsAheadMax: [1, 4, 16_384][randomInt(r, 0, 3)]!,
      sessionEventsMax,
    };
    this.#sessionTimeoutMs = [250, 500, 1500][randomInt(r, 0, 3)]!;
    this.#sessionAttemptMs = [40, 120, 400][randomInt(r, 0, 3)]!;
    const driverInput = {
      tickMs: this.#o.tickMs,
      electionTicks: this.#o.electionTicks,
      heartbeatTicks: [2, 3, 4][randomInt(r, 0, 3)]!,
      messageBytesMax,
      inflightMessagesMax: [1, 4, 64][randomInt(r, 0, 3)]!,
      inflightBytesMax: 1 << 20,
      snapshotSendTicksMax: 3 * this.#o.electionTicks,
      proposalTimeoutMs: 1500,
      snapshotEntriesThreshold: snapshotEntries === 0 ? 2 ** 40 : snapshotEntries,
      compactionTrailingEntries: randomInt(r, 0, 8),
      snapshotChunkBytes: [64, 1024, 1 << 20][randomInt(r, 0, 3)]!,
      snapshotChunkTimeoutMs: 300,
      writeBatchesInFlightMax: [1, 3][randomInt(r, 0, 2)]!,
      stopGraceMs: 0,
      applyBatchEntriesMax: [1, 4, 1024][randomInt(r, 0, 3)]!,
      ...sessionOptions,
    };
    this.#sessionOracle = this.#o.sessionClientCount === 0 ? null : new SessionOracle({
      eventsMax: sessionEventsMax,
      fail: (message) => this.#noteViolation(new SafetyViolation(message)),
    });
    this.#net = new SimNetwork(seededRandom(randomInt(r, 1, 2 ** 31)), faults);
    this.#wire = r() < 0.34 ? new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 }) : null;
    for (let i = 0; i < this.#o.memberCount; i++) {
      this.#founders.push({ id: `n${i + 1}`, type: 'ACTIVE' });
    }
    this.#feedChecks = options.feedChecks ?? true;
    let balancerOptions = {};
    const churnByDefault = options.stateMachine === undefined && membershipByDefault(options.seed);
    if (options.membership ?? churnByDefault) {
      // Every draw for churn comes after the others: seeds without churn run as they always did.
      const passives = randomInt(r, 1, 3);
      const reserves = randomInt(r, 0, 2);
      for (let i = 0; i < passives + reserves; i++) {
        const id = `n${this.#founders.length + 1}`;
        this.#founders.push({ id, type: i < passives ? 'PASSIVE' : 'RESERVE' });
      }
      this.#joinsLeft = randomInt(r, 1, 4);
      this.#balancer = options.balancer ?? r() < 0.4;
      balancerOptions = {
        // At most 4 feeds in flight: with 64 of one entry each over a reordering network, a
        // feeder rewinds and refills its window again and again (a storm of feeds that still
        // converges, but costs seconds of CPU per seed; see the report of the churn's commit).
        inflightMessagesMax: Math.min(driverInput.inflightMessagesMax, 4),
        // Small on some seeds, so that promotions are refused (retryably) until caught up.
        promotionLagEntriesMax: [5, 1000][randomInt(r, 0, 2)]!,
        ...(this.#balancer
          ? {
            balancerActiveMembers: this.#o.memberCount,
            balancerPassiveMembers: passives,
            balancerFailureElectionTimeouts: randomInt(r, 2, 4),
          }
          : {}),
      };
      this.#membership = new MembershipChecker({
        activeTarget: this.#balancer ? this.#o.memberCount : 0,
      });
    }
    this.#driverOptions = parseDriverOptions(
      { ...driverInput, ...balancerOptions },
      'runSimulation',
    );
    const stragglers = r() < 0.35 ? randomInt(r, 1, 3) : 0;
    for (const m of this.#founders) this.#addMember(m.id, true);
    for (const m of [...this.#members.values()].slice(0, stragglers)) m.stragglerDisk = true;
  }

  #addMember(id: string, founder: boolean): SimMember {
    const m: SimMember = {
      id,
      memory: new MemoryStorage(),
      disk: null,
      driver: null,
      machine: null,
      incarnation: 0,
      random: seededRandom(randomInt(this.#random, 1, 2 ** 31)),
      wasLeaderInTerm: 0,
      skewMs: 0,
      stragglerDisk: false,
      onPeerDown: () => {},
      founder,
      gone: false,
    };
    this.#members.set(id, m);
    return m;
  }

  /** Run to the end: chaos with clients, heal, settle, final checks. */
  async run(): Promise<SimulationResult> {
    try {
      for (const m of this.#members.values()) this.#start(m);
      for (let c = 1; c <= this.#o.clientCount; c++) {
        this.#time.schedule(
          randomInt(this.#random, 1, 40),
          () => void this.#client(c).catch((error) => this.#noteViolation(error)),
        );
      }
      for (let c = 1; c <= this.#o.sessionClientCount; c++) {
        const client = new SessionClient(this.#sessionHost(), {
          client: 100 + c,
          keys: Simulation.sessionKeys,
          watchPrefix: 's',
          timeoutMs: this.#sessionTimeoutMs,
          attemptTimeoutMs: this.#sessionAttemptMs,
          inflightMax: randomInt(this.#random, 1, 4),
          pauseMsMax: this.#clientPauseMsMax,
        });
        this.#sessionClients.push(client);
        this.#time.schedule(
          randomInt(this.#random, 1, 40),
          () => void client.run().catch((error) => this.#noteViolation(error)),
        );
      }
      this.#time.schedule(randomInt(this.#random, 50, 300), () => this.#faultLoop());
      const check = () => this.#checkAfterStep();
      await this.#time.runUntil(this.#o.chaosMs, check);
      this.#heal();
      let end = this.#o.chaosMs + this.#o.settleMsMax;
      await this.#time.runUntil(end, check, () => this.#settled());
      // A member still catching up, one small message at a time from a slow disk, is slow but
      // live: while the cluster's progress keeps rising each second it gets more time, up to
      // `settleProgressFactor` times the bound. A member that is stuck fails at the bound.
      const cap = this.#o.chaosMs + this.#o.settleMsMax * settleProgressFactor;
      let progress = this.#settleProgress();
      while (this.#unsettled() !== null && end < cap) {
        end = Math.min(cap, end + 1000);
        await this.#time.runUntil(end, check, () => this.#settled());
        const now = this.#settleProgress();
        if (now <= progress) break;
        progress = now;
      }
      this.#stats.virtualMs = Math.round(this.#time.nowMs);
      const unsettled = this.#unsettled();
      if (unsettled !== null) {
        return this.#result(
          `Liveness: ${unsettled} ${
            Math.round(this.#time.nowMs - this.#o.chaosMs)
          } ms after the network healed; ${this.#membersSummary()}`,
        );
      }
      await this.#finalChecks();
      return this.#result(null);
    } catch (e) {
      this.#stats.virtualMs = Math.round(this.#time.nowMs);
      if (e instanceof SafetyViolation) return this.#result(e.message);
      if (e instanceof AssertionError) return this.#result(`Assertion: ${e.message}`);
      if (e instanceof LivelockError) return this.#result(`Liveness: ${e.message}`);
      throw e;
    } finally {
      for (const m of this.#members.values()) this.#halt(m);
    }
  }

  // ---- Members ------------------------------------------------------------------------------

  #start(m: SimMember): void {
    const incarnation = ++m.incarnation;
    const first = incarnation === 1;
    m.memory.reopen();
    // A straggler's disk is many times slower than its peers' (a worn or busy disk): a leader on
    // one learns of its followers' writes long before its own completes.
    const latency = m.stragglerDisk
      ? () => 10 + this.#random() * 20
      : this.#slowDisk
      ? () => 3 + this.#random() * 15
      : () => 0.05 + this.#random() * 2;
    const disk = new SimDisk(m.memory, this.#time, latency);
    m.disk = disk;
    const machine = this.#makeMachine();
    m.machine = machine;
    const alive = () => m.incarnation === incarnation && m.driver !== null;
    const snapshotIndex = m.memory.snapshotMeta()?.index ?? 0;
    this.#checker.resetApplied(m.id, snapshotIndex);
    this.#checker.resetCommit(m.id, m.memory.hardState().commitIndex);
    if (!first) this.#log(`restart ${m.id}`);
    MemberDriver.open({
      id: m.id,
      storage: disk,
      transport: {
        send: (msg) => {
          if (m.incarnation === incarnation) this.#send(m, msg);
        },
        setPeers: () => {},
        onPeerDown: (handler) => {
          m.onPeerDown = (peer) => {
            if (m.incarnation === incarnation) handler(peer);
          };
        },
      },
      clock: this.#memberClock(alive, m.skewMs),
      random: m.random,
      stateMachine: machine,
      options: this.#driverOptions,
      logger: this.#logger(m.id),
      ...(first && m.founder ? { members: this.#founders } : {}),
      unsafeFaults: this.#o.unsafeFaults,
      probe: this.#probe(m, incarnation),
    }).then((driver) => {
      if (m.incarnation !== incarnation) return driver.crash();
      m.driver = driver;
      const oracle = this.#sessionOracle;
      if (oracle !== null) {
        driver.onSessionEvent((session, event) =>
          this.#guard(() => oracle.observeEvent(session, event))
        );
      }
      driver.start();
    }, (error: unknown) => this.#noteViolation(error));
  }

  /**
   * A member's clock. On slow-apply seeds its deferred work (the executor's yield between apply
   * batches, the driver's next pump) takes a little virtual time, as a busy state machine would.
   */
  #memberClock(alive: () => boolean, skewMs: number): ReturnType<VirtualTime['clock']> {
    const clock = this.#time.clock(alive, skewMs);
    if (this.#applyYieldMsMax === 0) return clock;
    return {
      ...clock,
      defer: (callback) => {
        const ms = this.#random() < 0.5 ? 0 : this.#random() * this.#applyYieldMsMax;
        clock.setTimer(ms, callback);
      },
    };
  }

  #probe(
    m: SimMember,
    incarnation: number,
  ): NonNullable<Parameters<typeof MemberDriver.open>[0]['probe']> {
    const live = () => m.incarnation === incarnation;
    return {
      ready: (rd) => {
        if (!live()) return;
        if (this.#membership !== null && rd.entries.length > 0) {
          this.#guard(() => this.#checkStores(m, rd.entries));
        }
        if (rd.snapshot === null) return;
        this.#guard(() => {
          this.#checker.observeSnapshot(m.id, rd.snapshot!.index, rd.snapshot!.term);
          this.#checker.resetApplied(m.id, rd.snapshot!.index);
          this.#log(`${m.id} installs snapshot ${rd.snapshot!.index}/${rd.snapshot!.term}`);
        });
      },
      persisted: (rd) => {
        if (!live()) return;
        this.#guard(() => {
          for (const e of rd.entries) {
            this.#checker.observeStored(m.id, e, m.memory.term(e.index - 1) ?? 0);
          }
        });
      },
      committed: (entries) => {
        if (!live()) return;
        this.#guard(() => {
          for (const e of entries) {
            this.#checker.observeApplied(m.id, e);
            this.#membership?.observeCommitted(e);
            this.#stats.applied++;
          }
          this.#sessionOracle?.observeCommitted(entries);
        });
      },
      applied: (result) => {
        if (!live()) return;
        this.#guard(() => {
          const out = result.ok
            ? `ok:${stableJson(result.output)}`
            : `error:${result.error.message}`;
          const known = this.#outputs.get(result.index);
          if (known === undefined) this.#outputs.set(result.index, out);
          else if (known !== out) {
            throw new SafetyViolation(
              `Outputs differ at index ${result.index}: ${m.id} produced ${out}, another member ${known}`,
            );
          }
          this.#sessionOracle?.observeApplied(result);
        });
      },
      installed: () => {
        if (live()) this.#stats.snapshotsInstalled++;
      },
    };
  }

  #crash(m: SimMember, why: string, downMs = randomInt(this.#random, 20, 400)): void {
    if (m.driver === null || this.#healed) return;
    this.#halt(m);
    this.#stats.crashes++;
    this.#log(`crash ${m.id} (${why})`);
    this.#time.schedule(downMs, () => {
      if (m.driver === null && m.disk === null && !m.gone) this.#start(m);
    });
  }

  #halt(m: SimMember): void {
    // Its peers see their connections to it reset, a moment later.
    if (m.driver !== null) {
      for (const other of this.#members.values()) {
        if (other === m) continue;
        this.#time.schedule(0.5 + this.#random(), () => other.onPeerDown(m.id));
      }
      // So do the clients connected to it.
      const incarnation = m.incarnation;
      for (const client of this.#sessionClients) {
        this.#time.schedule(0.5 + this.#random(), () => client.memberDown(m.id, incarnation));
      }
    }
    m.incarnation++;
    m.disk?.crash();
    m.disk = null;
    m.driver?.crash();
    m.driver = null;
  }

  #up(): SimMember[] {
    return [...this.#members.values()].filter((m) => m.driver !== null);
  }

  // ---- Network ------------------------------------------------------------------------------

  #send(from: SimMember, sent: RaftMessage): void {
    if (this.#aimAfterSend(from, sent)) return;
    let msg = sent;
    if (this.#wire !== null) {
      const result = this.#wire.decode(this.#wire.encode(sent));
      if (!result.ok) {
        throw new SafetyViolation(`${from.id} sent a message the wire refuses: ${result.reason}`);
      }
      msg = result.value;
    }
    const rules = this.#membership;
    let senderRemoved = false;
    if (rules !== null) {
      const core = from.driver?.core;
      const own = core?.configuration() ?? null;
      if (msg.type === 'feed' && this.#feedChecks && core !== undefined) {
        const feed = msg;
        this.#guard(() => rules.checkFeed(feed, core.commitIndex, this.#committedMax));
      }
      senderRemoved = own !== null && rules.knowsRemoved(from.id, own.members, own.index);
    }
    const delays = this.#net.deliveryDelays(msg.from, msg.to);
    // The core steps a message synchronously (and defers its pump): only snapshot chunks, which
    // are staged in storage, set promise continuations going.
    const settles = msg.type === 'snapshotChunk';
    // Like a TCP connection, a message reaches only the incarnation it was sent to: one sent to a
    // member that is down, or that crashes before it arrives, is lost.
    const target = this.#members.get(msg.to);
    if (target?.driver == null) return;
    const incarnation = target.incarnation;
    const senderIncarnation = from.incarnation;
    for (const delay of delays) {
      this.#time.schedule(delay, () => {
        const to = this.#members.get(msg.to);
        if (to?.driver == null || to.incarnation !== incarnation) return;
        // A crash is a power loss: what the sender had not yet delivered may be gone with it.
        if (from.incarnation !== senderIncarnation && this.#random() < 0.5) return;
        // A partition that began while the message was on its way loses it too.
        if (!this.#net.connected(msg.from, msg.to)) return;
        this.#log(msg);
        const driver = to.driver;
        if (rules === null) driver.receive(msg);
        else {
          const before = driver.core.term;
          const config = driver.core.configuration();
          const senderType = config === null
            ? undefined
            : config.members.find((x) => x.id === msg.from)?.type ?? null;
          let termMax = 0;
          for (const m of this.#members.values()) {
            if (m.driver !== null && !rules.hasLeft(m.id)) {
              termMax = Math.max(termMax, m.driver.core.term);
            }
          }
          driver.receive(msg);
          const after = driver.core.term;
          this.#guard(() =>
            rules.observeTermRaised(msg, before, after, senderType, senderRemoved, termMax)
          );
        }
        this.#afterDelivery(msg);
      }, settles);
    }
  }

  /**
   * A member that just sent a granted vote or an acknowledgement, with a write still in flight,
   * is sometimes crashed at once: were the message sent before its write was durable, the crash
   * would lose what it promised.
   */
  #aimAfterSend(from: SimMember, msg: RaftMessage): boolean {
    const pattern = this.#restartOnPollFrom;
    if (
      pattern !== null && msg.type === 'vote' && msg.preVote && from.id === pattern.candidate &&
      pattern.voters.includes(msg.to)
    ) {
      this.#restartOnPollFrom = null;
      this.#quickRestart(pattern.voters.map((id) => this.#members.get(id)!));
      // The poll leaves once the voters are back (on the connection to their new incarnation).
      const incarnation = from.incarnation;
      this.#time.schedule(0.2, () => {
        if (from.incarnation === incarnation) this.#send(from, msg);
      });
      return true;
    }
    if (msg.type === 'voteResponse' && msg.granted && !msg.preVote) {
      // Were the vote sent before it was durable, the restarted voter could vote again in this
      // term: once the candidate has it, the candidate is cut off (its vote requests still on
      // the way are lost), so that the restarted voter may campaign in that same term.
      if (this.#maybeAimedCrash(from, 'vote', `right after granting ${msg.to} its vote`)) {
        this.#isolateOnDelivery.add(`${from.id}>${msg.to}@${msg.term}`);
      }
    } else if (msg.type === 'appendResponse' && msg.success) {
      this.#maybeAimedCrash(
        from,
        'ack',
        `right after acknowledging ${msg.matchIndex} to ${msg.to}`,
      );
    } else if (msg.type === 'append' || msg.type === 'heartbeat') {
      // A leader announcing a commit index above what it has itself made durable (only one that
      // counts itself early does): crashing it now loses an entry others may already apply.
      const persisted = from.driver?.core.status().persistedIndex ?? Infinity;
      if (msg.commitIndex > persisted) {
        // The moment is rare (correct code never has it), so it is aimed at on every seed; the
        // followers that hold the entry are cut off, so that the voters that lack it (and the
        // restarted leader, which lost it) elect a leader of their own.
        const status = from.driver!.core.status();
        const holders = Object.entries(status.progress)
          .filter(([, p]) => p.matchIndex >= msg.commitIndex).map(([id]) => id);
        if (
          this.#maybeAimedCrash(
            from,
            'commit',
            `right after announcing commit ${msg.commitIndex}, stored ${persisted}`,
            0.5,
          ) && holders.length > 0
        ) {
          this.#faultsPausedUntilMs = this.#time.nowMs + 5 * this.#o.tickMs * this.#o.electionTicks;
          // Once the announcement has landed (the holders apply the entry), they are cut off.
          this.#time.schedule(11 + this.#random() * 3, () => {
            if (this.#healed) return;
            const others = [...this.#members.keys()].filter((x) => !holders.includes(x));
            this.#net.partition([holders, others]);
            this.#stats.partitions++;
            this.#log(`cut off ${holders.join(', ')}, which hold ${msg.commitIndex}`);
          });
        }
      }
    }
    return false;
  }

  /** After a delivery: cut off a candidate that just received an aimed vote (see `#aimAfterSend`). */
  #afterDelivery(msg: RaftMessage): void {
    if (msg.type === 'timeoutNow' && this.#cutAfterTimeoutNow.delete(msg.from)) {
      // The target has its timeoutNow (it campaigns now); the old leader is cut off behind it.
      if (this.#healed) return;
      const others = [...this.#members.keys()].filter((x) => x !== msg.from);
      this.#net.partition([[msg.from], others]);
      this.#stats.partitions++;
      this.#log(`isolate ${msg.from} once its timeoutNow arrived`);
      return;
    }
    if (msg.type !== 'voteResponse' || this.#isolateOnDelivery.size === 0) return;
    if (!this.#isolateOnDelivery.delete(`${msg.from}>${msg.to}@${msg.term}`) || this.#healed) {
      return;
    }
    const candidate = msg.to;
    const others = [...this.#members.keys()].filter((x) => x !== candidate);
    this.#net.partition([[candidate], others]);
    this.#stats.partitions++;
    this.#log(`isolate candidate ${candidate} once it has the vote of ${msg.from}`);
  }

  /**
   * Sometimes crash `m` within 0.3 virtual ms, if a write of its is then in flight; true if a
   * crash was planned. Each
   * `kind` of moment has its own budget, so frequent ones (acknowledgements) do not use up the
   * rare ones (votes).
   */
  #maybeAimedCrash(
    m: SimMember,
    kind: AimKind,
    why: string,
    probability = this.#aimProbability,
  ): boolean {
    const used = this.#aimedCrashes.get(kind) ?? 0;
    if (probability === 0 || used >= aimedCrashesMax || this.#healed) return false;
    if (this.#random() >= probability) return false;
    this.#aimedCrashes.set(kind, used + 1);
    // A moment later: the write the message may have run ahead of has been issued by then.
    const delay = this.#random() * 0.3;
    const incarnation = m.incarnation;
    this.#time.schedule(delay, () => {
      if (m.incarnation === incarnation && (m.disk?.inFlight ?? 0) > 0) this.#crash(m, why);
    });
    return true;
  }

  // ---- Clients ------------------------------------------------------------------------------

  /** One simulated client: operations one at a time until the workload stops. */
  async #client(client: number): Promise<void> {
    let seq = 0;
    let preferred: string | null = null;
    while (!this.#workloadStopped && this.#violation === null) {
      let op = this.#workload.next(this.#random, client, ++seq);
      // While commands pause (a lease fault), clients keep reading.
      for (
        let i = 0;
        i < 20 && op.kind === 'command' && this.#time.nowMs < this.#quietUntilMs;
        i++
      ) {
        op = this.#workload.next(this.#random, client, ++seq);
      }
      preferred = await this.#perform(client, op, preferred);
      await this.#sleep(randomInt(this.#random, 1, this.#clientPauseMsMax + 1));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#time.schedule(ms, resolve));
  }

  /**
   * `answer`, or a rejection with an unknown outcome at `deadlineMs` (a client gives up waiting;
   * the operation may still take effect).
   */
  #within<T>(answer: Promise<T>, deadlineMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.#time.schedule(
        deadlineMs - this.#time.nowMs,
        () => reject(clientTimeout),
      );
      answer.then((v) => (cancel(), resolve(v)), (e) => (cancel(), reject(e)));
    });
  }

  /**
   * Carry out one operation, retrying refusals (certainly not carried out) on other members until
   * an attempt deadline; records it in the history. Returns the member the client will try first
   * next time.
   */
  async #perform(
    client: number,
    op: SimOperation,
    preferred: string | null,
  ): Promise<string | null> {
    const callMs = this.#time.nowMs;
    const deadlineMs = callMs + this.#clientTimeoutMs;
    const floor = this.#committedMax;
    let target = preferred;
    for (;;) {
      const m = this.#pickMember(target, op.kind === 'query' && op.consistency === 'sequential');
      if (m === null || m.driver === null) {
        if (this.#time.nowMs >= deadlineMs) return this.#record(client, op, callMs, 'fail');
        await this.#sleep(5);
        target = null;
        continue;
      }
      const driver = m.driver;
      try {
        if (op.kind === 'command') {
          if (this.#time.nowMs < this.#quietUntilMs) {
            await this.#sleep(this.#quietUntilMs - this.#time.nowMs);
            continue;
          }
          const data = this.#codec.encode(op.command);
          const answer = driver.propose(data);
          const settled = answer.then(({ index, output }) => {
            this.#guard(() => {
              this.#log(`client ${client}: write acknowledged by ${m.id} at index ${index}`);
              this.#onAcknowledged(m, index, encodeEnvelope({ kind: 'plain', data }), output);
            });
            return output;
          });
          try {
            await this.#within(settled, deadlineMs);
          } catch (error) {
            if (!isClientTimeout(error)) throw error;
            // The client stops waiting; the member's answer, when it comes, still says what
            // happened (and when, at the latest): record that instead of an unknown outcome (one
            // still unanswered at the end is recorded unknown then).
            const waiting = { recorded: false };
            const recordUnknown = () => {
              if (!waiting.recorded) this.#record(client, op, callMs, 'unknown');
              waiting.recorded = true;
            };
            this.#unanswered.add(recordUnknown);
            settled.then(
              (output) => {
                this.#unanswered.delete(recordUnknown);
                if (!waiting.recorded) this.#record(client, op, callMs, 'ok', output);
                waiting.recorded = true;
              },
              (late) => {
                this.#unanswered.delete(recordUnknown);
                if (waiting.recorded) return;
                waiting.recorded = true;
                this.#log(
                  `client ${client}: late answer from ${m.id}: ${outcomeOf(late)}: ${
                    (late as { code?: string }).code ?? 'error'
                  } (${(late as Error).message})`,
                );
                this.#record(client, op, callMs, outcomeOf(late));
              },
            );
            return null;
          }
          this.#record(client, op, callMs, 'ok', await settled);
        } else {
          this.#stats.reads++;
          // While commands pause for a lease fault, reads ride the lease: a read-index round
          // would tell every voter that the leader is alive.
          const consistency =
            op.consistency === 'linearizable' && this.#time.nowMs < this.#quietUntilMs
              ? 'lease'
              : op.consistency;
          const { index, appliedIndex, output } = await this.#within(
            driver.queryWithIndex(op.query, consistency),
            deadlineMs,
          );
          this.#log(`client ${client}: ${consistency} read on ${m.id} at index ${index}`);
          if (this.#o.readIndexChecks && consistency !== 'sequential' && index < floor) {
            throw new SafetyViolation(
              `Stale ${consistency} read on ${m.id}: index ${index} below ${floor}, committed before the read began`,
            );
          }
          if (this.#o.readIndexChecks && appliedIndex < index) {
            throw new SafetyViolation(
              `${consistency} read on ${m.id} answered at applied index ${appliedIndex}, below its read index ${index}`,
            );
          }
          this.#record(client, op, callMs, 'ok', output);
        }
        return m.id;
      } catch (error) {
        if (error instanceof SafetyViolation) {
          this.#noteViolation(error);
          return null;
        }
        const e = error as { retryable?: boolean; leaderId?: string | null; code?: string };
        if (e.retryable === true && this.#time.nowMs < deadlineMs) {
          // A hint goes straight to the leader; with none (an election), wait a little longer.
          target = e.leaderId ?? null;
          await this.#sleep(target === null ? randomInt(this.#random, 20, 60) : 1);
          continue;
        }
        const outcome = op.kind === 'query' ? 'fail' : outcomeOf(error);
        this.#log(
          `client ${client}: ${op.kind} on ${m.id} ended ${outcome}: ${e.code ?? 'error'} (${
            (error as Error).message
          })`,
        );
        this.#record(client, op, callMs, outcome);
        return null;
      }
    }
  }

  /**
   * The member to try: usually whichever believes it leads (there may be two), else `preferred`,
   * else any; any member for a sequential read.
   */
  #pickMember(preferred: string | null, anyMember: boolean): SimMember | null {
    const up = this.#up();
    if (up.length === 0) return null;
    if (anyMember) return up[randomInt(this.#random, 0, up.length)]!;
    const leaders = up.filter((m) => m.driver!.role === 'leader');
    if (leaders.length > 0 && this.#random() < 0.85) {
      return leaders[randomInt(this.#random, 0, leaders.length)]!;
    }
    const p = preferred === null ? undefined : this.#members.get(preferred);
    if (p?.driver != null) return p;
    return up[randomInt(this.#random, 0, up.length)]!;
  }

  /** A client was answered by `m` at `index`; `entry` is the log entry's bytes (its envelope). */
  #onAcknowledged(m: SimMember, index: number, entry: Uint8Array, output: unknown): void {
    const fp = fingerprint({ type: 'command', index, term: 0, timeMs: 0, data: entry });
    const known = this.#outputs.get(index);
    const mine = `ok:${stableJson(output)}`;
    if (known !== undefined && known !== mine) {
      throw new SafetyViolation(
        `Proposal at index ${index} on ${m.id} answered ${mine}, but the output there is ${known}`,
      );
    }
    this.#acknowledged.set(index, fp);
    this.#stats.acknowledged++;
    if (this.#healed) this.#ackedAfterHeal++;
    if (index > this.#ackedIndexMax) this.#ackedIndexMax = index;
    this.#maybeAimedCrash(m, 'answer', `right after answering a client at index ${index}`);
  }

  /** What session clients see of the simulation. */
  #sessionHost(): SessionClientHost {
    return {
      time: this.#time,
      random: this.#random,
      oracle: this.#sessionOracle!,
      stats: this.#stats,
      up: () =>
        this.#up().map((m) => {
          const incarnation = m.incarnation;
          return {
            id: m.id,
            incarnation,
            driver: m.driver!,
            alive: () => m.incarnation === incarnation && m.driver !== null,
          };
        }),
      quietUntilMs: () => this.#quietUntilMs,
      stopped: () => this.#workloadStopped,
      record: (op) => this.#sessionHistory.push(op),
      acknowledged: (memberId, index, entry, output) =>
        this.#guard(() => {
          const m = this.#members.get(memberId)!;
          this.#onAcknowledged(m, index, entry, output);
        }),
      log: (line) => this.#log(line),
      fail: (message) => this.#noteViolation(new SafetyViolation(message)),
    };
  }

  /** The recorded history (for debugging and tests). */
  get history(): readonly Operation[] {
    return this.#history;
  }

  #record(
    client: number,
    op: SimOperation,
    callMs: number,
    outcome: 'ok' | 'fail' | 'unknown',
    output?: unknown,
  ): null {
    if (op.input === undefined) return null;
    const returnMs = outcome === 'unknown' ? null : this.#time.nowMs;
    const entry: Operation = { client, callMs, returnMs, input: op.input, outcome };
    if (outcome === 'ok') {
      const recorded = this.#workload.output === undefined
        ? output
        : this.#workload.output(op, output);
      if (recorded !== undefined) entry.output = recorded;
    }
    this.#history.push(entry);
    return null;
  }

  // ---- Faults -------------------------------------------------------------------------------

  #faultLoop(): void {
    if (this.#healed) return;
    if (this.#membership !== null) this.#retireLeft();
    if (this.#time.nowMs >= this.#faultsPausedUntilMs) {
      this.#guard(() =>
        this.#membership !== null && this.#random() < 0.35 ? this.#churn() : this.#injectFault()
      );
    }
    this.#time.schedule(randomInt(this.#random, 50, 400), () => this.#faultLoop());
  }

  #injectFault(): void {
    const ids = [...this.#members.keys()];
    const leaders = this.#up().filter((m) => m.driver!.role === 'leader');
    const leader = leaders.reduce<SimMember | undefined>(
      (best, m) => best === undefined || m.driver!.core.term > best.driver!.core.term ? m : best,
      undefined,
    );
    // With churn, transfers and the lease pattern concern the leader's voters only.
    const voters = this.#membership === null || leader === undefined
      ? ids
      : (leader.driver!.core.configuration()?.members ?? [])
        .filter((x) => x.type === 'ACTIVE').map((x) => x.id);
    const roll = this.#random();
    if (roll < 0.25) {
      // Symmetric partition into two random groups (Fisher-Yates: same order on every engine).
      const shuffled = ids.slice();
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = randomInt(this.#random, 0, i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const cut = randomInt(this.#random, 1, ids.length);
      this.#net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      this.#stats.partitions++;
      this.#log(`partition ${this.#net.describe()}`);
    } else if (roll < 0.33 && leader !== undefined) {
      // Isolate the leader: it goes on accepting proposals it cannot commit (a divergent tail).
      this.#net.partition([[leader.id], ids.filter((x) => x !== leader.id)]);
      this.#stats.partitions++;
      this.#log(`isolate leader ${leader.id}`);
    } else if (roll < 0.4 && leader !== undefined) {
      // Transfer leadership, then cut the old leader off at once (etcd-io/raft#99).
      const others = voters.filter((x) => x !== leader.id);
      const to = others[randomInt(this.#random, 0, others.length)];
      if (to === undefined) return;
      this.#log(`transfer ${leader.id} -> ${to}, cut ${leader.id} off once it sent timeoutNow`);
      this.#cutAfterTimeoutNow.add(leader.id);
      this.#faultsPausedUntilMs = this.#time.nowMs + 4 * this.#o.tickMs * this.#o.electionTicks;
      // Commands pause meanwhile (they would hang on the old leader): clients keep reading.
      this.#quietUntilMs = this.#time.nowMs + 3 * this.#o.tickMs * this.#o.electionTicks;
      leader.driver!.transferLeadership(to).catch(() => {});
    } else if (roll < 0.48 && leader !== undefined && voters.length >= 3) {
      this.#leaseAfterRestart(leader, voters);
    } else if (roll < 0.52) {
      const from = ids[randomInt(this.#random, 0, ids.length)]!;
      const to = ids.filter((x) => x !== from)[randomInt(this.#random, 0, ids.length - 1)]!;
      this.#net.blockOneWay(from, to);
      this.#stats.partitions++;
      this.#log(`block ${from} -> ${to}`);
    } else if (roll < 0.68) {
      this.#net.heal();
      this.#log('partitions healed');
    } else if (roll < 0.85) {
      // Crash a member (often the leader), restart it a little later.
      const pool = leaders.length > 0 && this.#random() < 0.6 ? leaders : this.#up();
      if (pool.length > 0) this.#crash(pool[randomInt(this.#random, 0, pool.length)]!, 'fault');
    } else if (roll < 0.92) {
      // Crash a member with writes in flight, if any.
      const busy = this.#up().filter((m) => (m.disk?.inFlight ?? 0) > 0);
      if (busy.length > 0) {
        this.#crash(busy[randomInt(this.#random, 0, busy.length)]!, 'writes in flight');
      }
    }
  }

  /**
   * A follower loses the leader (both directions cut) while other voters restart quickly: the
   * restarted voters must not elect it while the old leader's lease holds. Commands pause first,
   * so that the cut-off follower's log stays as long as the others' (a voter refuses a candidate
   * whose log is behind); other faults wait until the pattern has run.
   */
  #leaseAfterRestart(leader: SimMember, ids: string[]): void {
    const followers = ids.filter((x) => x !== leader.id);
    const lost = followers[randomInt(this.#random, 0, followers.length)]!;
    // With `lost`, these make a majority: they can elect it once they forget the leader.
    const restarted = followers.filter((x) => x !== lost).slice(0, Math.floor(ids.length / 2))
      .map((id) => this.#members.get(id)!);
    const electionMs = this.#o.tickMs * this.#o.electionTicks;
    const settleMs = 60;
    this.#net.heal(); // the pattern needs exactly its own cut
    this.#quietUntilMs = this.#time.nowMs + settleMs + electionMs * (3 + this.#random());
    this.#faultsPausedUntilMs = this.#quietUntilMs;
    this.#log(
      `commands paused; then cut ${leader.id} <-> ${lost}, restart ${
        restarted.map((m) => m.id).join(', ')
      }`,
    );
    const caughtUp = () => {
      const driver = leader.driver;
      if (driver === null || driver.role !== 'leader') return false;
      const st = driver.core.status();
      return ids.every((id) => id === leader.id || st.progress[id]?.matchIndex === st.lastIndex);
    };
    let waitedMs = 0;
    const cut = () => {
      if (this.#healed) return;
      if (!caughtUp() && waitedMs < 500) {
        // Cut only once every follower holds the leader's whole log (commands are paused).
        waitedMs += 10;
        this.#quietUntilMs += 10;
        this.#faultsPausedUntilMs += 10;
        this.#time.schedule(10, cut);
        return;
      }
      this.#net.blockOneWay(leader.id, lost);
      this.#net.blockOneWay(lost, leader.id);
      this.#stats.partitions++;
      this.#log(`cut ${leader.id} <-> ${lost}`);
      // The voters restart as the cut-off follower's next poll reaches them (see `#aimAfterSend`),
      // before the leader's next heartbeat tells them it is alive.
      this.#restartOnPollFrom = { candidate: lost, voters: restarted.map((m) => m.id) };
    };
    this.#time.schedule(settleMs, cut);
  }

  /** Restart `voters` quickly: they forget that they heard from the leader. */
  #quickRestart(voters: SimMember[]): void {
    for (const m of voters) {
      if (m.driver === null || this.#healed) continue;
      this.#halt(m);
      this.#stats.crashes++;
      this.#log(`crash ${m.id} (quick restart)`);
      this.#time.schedule(0.1, () => {
        if (m.driver === null && m.disk === null) this.#start(m);
      });
    }
  }

  #heal(): void {
    this.#healed = true;
    this.#restartOnPollFrom = null;
    this.#cutAfterTimeoutNow.clear();
    this.#workloadStopped = true;
    this.#net.heal();
    this.#net.faults = calmNetwork;
    for (const m of this.#members.values()) {
      if (m.driver === null && m.disk === null && !m.gone) this.#start(m);
    }
    this.#log('heal: network calm, all members up, workload stopped');
    // The healed cluster must commit new work: one write, retried until acknowledged.
    const attempt = () => {
      if (this.#ackedAfterHeal > 0 || this.#violation !== null) return;
      const leader = this.#up().find((m) => m.driver!.role === 'leader');
      if (leader !== undefined) {
        const data = this.#codec.encode({ op: 'put', key: 'final', value: `s${this.seed}` });
        leader.driver!.propose(data).then(
          ({ index, output }) =>
            this.#guard(() =>
              this.#onAcknowledged(leader, index, encodeEnvelope({ kind: 'plain', data }), output)
            ),
          () => {},
        );
      }
      this.#time.schedule(100, attempt);
    };
    this.#time.schedule(10, attempt);
  }

  // ---- Membership churn (see `sim-membership.ts` for the rules checked) --------------------

  /** Entries `m` is about to store: a leader's configurations, a passive member's entries. */
  #checkStores(m: SimMember, entries: readonly Entry[]): void {
    const rules = this.#membership!;
    const raft = m.driver?.core;
    if (raft === undefined) return;
    if (raft.role === 'leader') {
      rules.observeLeaderAppends(
        m.id,
        raft.term,
        entries,
        raft.commitIndex,
        raft.termAt(raft.commitIndex),
      );
      // A leader that proposes a promotion is sometimes crashed at once: the promoted member (and
      // whoever else got the change) then campaigns as ACTIVE among voters that never heard of it.
      const actives = rules.latestMembers().filter((x) => x.type === 'ACTIVE').length;
      const promotes = entries.some((e) =>
        e.type === 'config' && e.members.filter((x) => x.type === 'ACTIVE').length > actives
      );
      if (promotes) this.#maybeAimedCrash(m, 'promote', 'right after proposing a promotion', 0.5);
    } else if (fedPassive(raft)) {
      rules.observePassiveStores(
        m.id,
        entries,
        this.#committedMax,
        (i) => this.#checker.appliedAt(i),
      );
    }
  }

  /** One membership change or membership fault (the fault loop's share for churn). */
  #churn(): void {
    const r = this.#random;
    const rules = this.#membership!;
    const committed = rules.latestMembers();
    const pick = <T>(xs: readonly T[]): T | undefined =>
      xs.length === 0 ? undefined : xs[randomInt(r, 0, xs.length)];
    const roll = r();
    // With the balancer on, ACTIVE and PASSIVE members are its to replace: the simulator demotes
    // and removes only RESERVE and INACTIVE ones, checked again before each attempt (one may have
    // been promoted meanwhile), so that the balancer's ACTIVE target is a floor the checks hold
    // it to.
    const mayReduce = (x: Pick<Member, 'type'>) =>
      !this.#balancer || x.type === 'RESERVE' || x.type === 'INACTIVE';
    if (roll < 0.2 && this.#joinsLeft > 0) {
      this.#joinsLeft--;
      const id = `n${this.#members.size + 1}`;
      const type = r() < 0.7 ? 'PASSIVE' : 'RESERVE';
      const m = this.#addMember(id, false);
      this.#log(`new member ${id} (empty storage)`);
      this.#start(m);
      this.#requestChange({ op: 'join', id, type });
    } else if (roll < 0.45) {
      const x = pick(committed.filter((c) => c.type !== 'ACTIVE'));
      if (x !== undefined) this.#requestChange({ op: 'promote', id: x.id });
    } else if (roll < 0.6) {
      const x = pick(committed.filter((c) => c.type !== 'INACTIVE' && mayReduce(c)));
      if (x !== undefined) this.#requestChange({ op: 'demote', id: x.id }, 1, mayReduce);
    } else if (roll < 0.7) {
      const x = pick(committed.filter(mayReduce));
      if (x !== undefined) this.#requestChange({ op: 'leave', id: x.id }, 1, mayReduce);
    } else if (roll < 0.85) {
      // A passive (or reserve) member crashes and comes back.
      const x = pick(this.#up().filter((m) => rules.typeOf(m.id) !== 'ACTIVE'));
      if (x !== undefined) this.#crash(x, 'passive fault');
    } else {
      // An ACTIVE member is down for long: on balancer seeds, long enough to be replaced.
      const x = pick(
        this.#up().filter((m) => rules.typeOf(m.id) === 'ACTIVE' && m.driver!.role !== 'leader'),
      );
      const electionMs = this.#o.tickMs * this.#o.electionTicks;
      if (x !== undefined) {
        this.#crash(x, 'long kill', electionMs * (3 + r() * 4));
      }
    }
  }

  /**
   * Ask a random running member for `change`; a retryable refusal is retried a little later.
   * `still`: whether the target's committed type still allows the change (checked each attempt).
   */
  #requestChange(
    change: MembershipRequest,
    attempt = 1,
    still: (x: { type: Member['type'] }) => boolean = () => true,
  ): void {
    if (this.#healed) return;
    const type = this.#membership!.typeOf(change.id);
    if (change.op !== 'join' && (type === null || !still({ type }))) return;
    const via = this.#up().filter((m) => !this.#membership!.hasLeft(m.id));
    const m = via[randomInt(this.#random, 0, via.length)];
    if (m === undefined) return;
    if (attempt === 1) this.#membership!.stats.changesRequested++;
    const what = `${change.op} ${change.id}${change.op === 'join' ? ` as ${change.type}` : ''}`;
    this.#log(`membership: ${what} via ${m.id}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    m.driver!.changeMembership(change).then((reply) => {
      if (reply.ok) {
        this.#membership!.stats.changesAnswered++;
        this.#log(`membership: ${what} committed at ${reply.index}`);
      } else if (retryableChange.has(reply.code) && attempt < changeAttemptsMax) {
        this.#time.schedule(
          randomInt(this.#random, 50, 300),
          () => this.#requestChange(change, attempt + 1, still),
        );
      } else this.#log(`membership: ${what} not made: ${reply.code}: ${reply.message}`);
    }, (error: unknown) => this.#noteViolation(error));
  }

  /**
   * Members whose removal is committed run on a while (their messages must not disturb anyone),
   * then are shut down for good, as an operator would.
   */
  #retireLeft(): void {
    const rules = this.#membership!;
    for (const m of this.#members.values()) {
      if (m.gone || !rules.hasLeft(m.id)) continue;
      const since = this.#leftSeenMs.get(m.id);
      if (since === undefined) this.#leftSeenMs.set(m.id, this.#time.nowMs);
      else if (this.#time.nowMs - since > 500) {
        m.gone = true;
        this.#halt(m);
        this.#log(`${m.id} left: shut down`);
      }
    }
  }

  /**
   * Members that must be live and caught up at the end: with churn, the ACTIVE and PASSIVE
   * members of the committed configuration (members that left are excluded, joined ones must
   * have caught up; RESERVE members keep no state machine).
   */
  #appliers(): SimMember[] {
    const rules = this.#membership;
    if (rules === null) return [...this.#members.values()];
    return rules.latestMembers().filter((x) => x.type === 'ACTIVE' || x.type === 'PASSIVE')
      .map((x) => this.#members.get(x.id)!);
  }

  // ---- Checks -------------------------------------------------------------------------------

  /** Run `f`; a violation it throws is kept and ends the run after this step. */
  #guard(f: () => void): void {
    try {
      f();
    } catch (error) {
      this.#noteViolation(error);
    }
  }

  #noteViolation(error: unknown): void {
    if (this.#violation === null) {
      this.#violation = error instanceof Error ? error : new Error(String(error));
    }
  }

  #checkAfterStep(): void {
    if (this.#violation !== null) throw this.#violation;
    for (const m of this.#members.values()) {
      const driver = m.driver;
      if (driver === null) continue;
      const failure = driver.failure;
      if (failure !== null) {
        throw failure instanceof AssertionError
          ? failure
          : new SafetyViolation(`${m.id} failed: ${failure.message}`);
      }
      const raft = driver.core;
      this.#checker.observeCommit(m.id, raft.commitIndex);
      if (raft.commitIndex > this.#committedMax) this.#committedMax = raft.commitIndex;
      if (this.#membership !== null && fedPassive(raft)) {
        this.#membership.checkPassiveLog(m.id, raft.lastIndex, raft.commitIndex);
      }
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
        }
      }
    }
    this.#membership?.checkPending((i) => this.#checker.appliedAt(i));
  }

  /** One line per member for a liveness failure: role, term, leader, log and configuration. */
  #membersSummary(): string {
    const parts: string[] = [];
    for (const m of this.#members.values()) {
      if (m.driver === null) {
        parts.push(`${m.id} down`);
        continue;
      }
      const st = m.driver.core.status();
      const config = st.members.map((x) => `${x.id}:${x.type[0]}`).join(',');
      parts.push(
        `${m.id} ${st.role} t${st.term} leader=${st.leaderId ?? '-'} commit=${st.commitIndex} ` +
          `last=${st.lastIndex} config@${st.configurationIndex}[${config}]`,
      );
    }
    return `members: ${parts.join('; ')}`;
  }

  /** Null once the healed cluster committed a new write and every member applied every acknowledged one. */
  #unsettled(): string | null {
    if (this.#ackedAfterHeal === 0) return 'no write acknowledged after the network healed';
    for (const [i, c] of this.#sessionClients.entries()) {
      if (!c.done) return `session client ${101 + i} still has ${c.unanswered} commands unanswered`;
    }
    for (const m of this.#appliers()) {
      if (m.driver === null) return `${m.id} is down`;
      const st = m.driver.status();
      if (st.lastAppliedIndex < this.#ackedIndexMax) {
        return `${m.id} applied ${st.lastAppliedIndex} of acknowledged ${this.#ackedIndexMax} (commit ${st.commitIndex}, last ${st.lastIndex}, role ${st.role}, term ${st.term})`;
      }
    }
    return null;
  }

  /** What rises while the cluster converges: applied entries and session answers, summed. */
  #settleProgress(): number {
    let sum = 0;
    for (const m of this.#members.values()) sum += m.driver?.status().lastAppliedIndex ?? 0;
    for (const c of this.#sessionClients) sum -= c.unanswered;
    return sum;
  }

  #settled(): boolean {
    return this.#time.events % 128 === 0 && this.#unsettled() === null;
  }

  async #finalChecks(): Promise<void> {
    for (const [index, fp] of this.#acknowledged) {
      const applied = this.#checker.appliedAt(index);
      if (applied !== fp) {
        throw new SafetyViolation(
          `Acknowledged ${fp} at ${index} but ${applied ?? 'nothing'} was applied there`,
        );
      }
    }
    // Every member's state, once all have applied the same index, is the same (passive members'
    // too: with churn, the ACTIVE and PASSIVE members of the committed configuration).
    const appliers = () => this.#appliers().filter((m) => m.driver !== null);
    const target = Math.max(...appliers().map((m) => m.driver!.core.commitIndex));
    await this.#time.runUntil(
      this.#time.nowMs + 2000,
      () => this.#checkAfterStep(),
      () => appliers().every((m) => m.driver!.lastAppliedIndex >= target),
    );
    const applied = new Set(appliers().map((m) => m.driver!.lastAppliedIndex));
    if (applied.size === 1) {
      let first: { id: string; digest: string } | null = null;
      for (const m of appliers()) {
        const digest = await this.#fingerprintState(m.machine!);
        if (first === null) first = { id: m.id, digest };
        else if (digest !== first.digest) {
          throw new SafetyViolation(
            `State differs at index ${
              [...applied][0]
            }: ${m.id} and ${first.id} (one restored from a snapshot, or the machine is not deterministic)`,
          );
        }
      }
    }
    const oracle = this.#sessionOracle;
    if (oracle !== null) {
      oracle.finalCheck();
      const machine = appliers()[0]!.machine!;
      checkExactlyOnce(
        this.#sessionClients,
        Simulation.sessionKeys,
        (key) => (machine.query({ op: 'get', key }) as { value: string | null }).value,
        (message) => this.#noteViolation(new SafetyViolation(message)),
      );
      if (this.#violation !== null) throw this.#violation;
    }
    for (const recordUnknown of this.#unanswered) recordUnknown();
    this.#unanswered.clear();
    const model = this.#workload.model;
    this.#stats.historyOperations = this.#history.length + this.#sessionHistory.length;
    if (model !== undefined && this.#history.length > 0) {
      const verdict = checkLinearizability(model, this.#history, { timeBudgetMs: 10_000 });
      if (verdict.verdict === 'unknown') this.#stats.linearizabilityUnknown++;
      if (verdict.verdict === 'not linearizable') {
        throw new SafetyViolation(
          `History not linearizable: ${verdict.failure?.explanation ?? verdict.reason ?? ''}`,
        );
      }
    }
    if (this.#sessionHistory.length > 0) {
      const verdict = checkLinearizability(appendModel(), this.#sessionHistory, {
        timeBudgetMs: 10_000,
      });
      if (verdict.verdict === 'unknown') this.#stats.linearizabilityUnknown++;
      if (verdict.verdict === 'not linearizable') {
        throw new SafetyViolation(
          `Session history not linearizable: ${
            verdict.failure?.explanation ?? verdict.reason ?? ''
          }`,
        );
      }
    }
  }

  // ---- Plumbing -----------------------------------------------------------------------------

  #logger(id: string): MemberLogger {
    return {
      info: (message) => this.#log(`${id}: ${message}`),
      warn: (message) => this.#log(`${id} warn: ${message}`),
      debug: () => {},
    };
  }

  #log(what: string | RaftMessage): void {
    this.#trace.push({ at: this.#time.nowMs, what });
    if (this.#trace.length > this.#o.traceLinesMax * 2) {
      this.#trace.splice(0, this.#trace.length - this.#o.traceLinesMax);
    }
  }

  #result(failure: string | null): SimulationResult {
    this.#stats.events = this.#time.events;
    this.#stats.sessionsExpired = this.#sessionOracle?.expiries ?? 0;
    this.#stats.falseExpiries = this.#sessionOracle?.falseExpiries ?? 0;
    if (this.#membership !== null) Object.assign(this.#stats, this.#membership.stats);
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

/**
 * A member fed by followers whose configuration says so and is committed in its own view: PASSIVE
 * (or lower, or removed). It must hold committed entries only (`sim-membership.ts`).
 */
function fedPassive(raft: MemberDriver['core']): boolean {
  if (raft.role === 'leader' || raft.memberType === 'ACTIVE') return false;
  const config = raft.configuration();
  return config !== null && config.index <= raft.commitIndex;
}

/** A configuration change as the churn asks a member for it. */
type MembershipRequest = Parameters<MemberDriver['changeMembership']>[0];
/** Refusals of a change that certainly was not made: tried again a little later. */
const retryableChange = new Set([
  'NOT_LEADER',
  'NO_LEADER',
  'CONFIG_CHANGE_IN_PROGRESS',
  'NOT_CAUGHT_UP',
  'SHUTDOWN',
  'LEADERSHIP_TRANSFER',
  'PROPOSAL_DROPPED',
]);
/** Attempts of one change before the churn gives up on it. */
const changeAttemptsMax = 8;

/** What a simulated client's wait ends with when it gives up (not an error of the member's). */
const clientTimeout = { retryable: false, code: 'CLIENT_TIMEOUT' } as const;

function isClientTimeout(error: unknown): boolean {
  return error === clientTimeout;
}

/** Whether a seed runs with membership churn when `membership` is not given: every third one. */
export function membershipByDefault(seed: number): boolean {
  return seed % 3 === 0;
}

/**
 * The history outcome of a command that ended in `error`: a refusal (retryable) was certainly not
 * carried out; an application error was applied (and refused by the machine); anything else
 * (timeout, outcome unknown, the client gave up) may or may not have taken effect.
 */
function outcomeOf(error: unknown): 'ok' | 'fail' | 'unknown' {
  const e = error as { retryable?: boolean; code?: string };
  if (e.retryable === true) return 'fail';
  if (e.code === 'APPLICATION_ERROR') return 'ok';
  return 'unknown';
}

/** JSON with object keys sorted, so equal outputs compare equal as text. */
function stableJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
        ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0
          ),
        )
        : v instanceof Uint8Array
        ? Array.from(v)
        : v,
  ) ?? 'undefined';
}

/** A state machine's state as text: the key-value machine's sorted contents, else its snapshot bytes. */
async function defaultFingerprint(
  machine: StateMachine<unknown, unknown, unknown, unknown>,
): Promise<string> {
  if (machine instanceof KvStateMachine) {
    return stableJson(machine.query({ op: 'scan', prefix: '', limit: 10_000 }));
  }
  let text = '';
  for await (const chunk of machine.snapshot()) {
    for (const b of chunk) text += b.toString(16).padStart(2, '0');
  }
  return text;
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
    case 'forward':
    case 'forwardResponse':
      return `${head} request=${m.requestId} bytes=${m.data.byteLength}`;
    case 'feed':
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} n=${m.entries.length} commit=${m.commitIndex}`;
    case 'feedResponse':
      return `${head} ${m.success ? 'ok' : 'refused'} match=${m.matchIndex} hint=${m.hintIndex}`;
    case 'assign':
      return `${head} [${m.members.map((x) => x.id).join(',')}]`;
    default:
      return head; // the other membership messages (lib/core/fan-out.ts)
  }
}
