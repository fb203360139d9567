/**
 * Throughput of a member without I/O, two ways. `driver` (the figure that matters): three
 * `MemberDriver`s, the very loop a `RaftServer` runs, with memory storage, an in-process message
 * queue, a clock that runs deferred work at once, and a state machine that does nothing; the
 * leader proposes through `MemberDriver.propose`, so every proposal is tracked and answered with
 * its own index's output. `core`: three bare `Raft` cores whose readies the bench carries out
 * itself (the core's own cost, as this bench measured it before the driver existed). The leader proposes batches of 64
 * commands of 100 bytes (`proposeBatch`); each turn of the loop proposes one batch, carries out
 * every member's `Ready` (persist to memory, queue messages, `advance`) and delivers the queued
 * messages once, so replication is pipelined one hop per turn. The figure is entries committed
 * (applied) on the leader per second. After a warm-up, `rounds` rounds of `roundMs` each; the
 * best and the median round are reported (the machine is shared). Storage is compacted as the
 * cores apply, so memory stays flat. At the end the three logs must agree.
 *
 * The goal: the core is never the bottleneck of the durable cluster, whose LMDB appends reach
 * about 1 M entries/s; at least 500,000 entries/s on Node on a 2-core machine.
 *
 * Usage: `tsx bench/core.bench.ts [--round-ms 1000] [--rounds 3] [--warmup-ms 500]`;
 * `npm run bench:core`; `tsx bench/run.ts core` runs it under Node, Bun and Deno. Prints a
 * human line on stderr and one `ROW {...}` line on stdout (see bench/support/rows.ts).
 */
import process from 'node:process';
import { CompactedError } from '../lib/base/errors.ts';
import type { LogReader } from '../lib/base/log-reader.ts';
import {
  type Configuration,
  type Entry,
  entryBytes,
  type HardState,
  type Member,
  type RaftMessage,
  type SnapshotMeta,
} from '../lib/base/messages.ts';
import { Raft, type Ready } from '../lib/core/raft.ts';
import { seededRandom } from '../lib/core/random.ts';
import { MemberDriver } from '../lib/member/driver.ts';
import { parseDriverOptions } from '../lib/member/options.ts';
import type { Clock } from '../lib/member/ports.ts';
import type { StateMachine } from '../lib/state/state-machine.ts';
import { MemorySnapshotStore } from '../lib/storage/memory-snapshots.ts';
import { MemoryStorage } from '../lib/storage/memory.ts';
import type { Storage, WriteBatch } from '../lib/storage/storage.ts';
import { settle } from '../lib/testing/sim-time.ts';
import { currentRuntime } from '../test/support/child.ts';
import { printRow, progress } from './support/rows.ts';

function flag(name: string, fallback: number, min: number): number {
  const at = process.argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < min) {
    process.stderr.write(`${name} must be a whole number of at least ${min}\n`);
    process.exit(2);
  }
  return value;
}

type StorageKind = 'memory' | 'shared';

/** `--storage memory|shared|both` (default both): which storage the cores read. */
function storageFlag(): StorageKind[] {
  const at = process.argv.indexOf('--storage');
  const value = at === -1 ? 'both' : process.argv[at + 1];
  if (value === 'both') return ['shared', 'memory'];
  if (value !== 'memory' && value !== 'shared') {
    process.stderr.write(`--storage must be memory, shared or both, got ${value}\n`);
    process.exit(2);
  }
  return [value];
}

const roundMs = flag('--round-ms', 1000, 1);
const rounds = flag('--rounds', 3, 1);
const warmupMs = flag('--warmup-ms', 500, 0);
/** Commands per `proposeBatch` call, and bytes per command. */
const batch = 64;
const commandBytes = 100;
/** Entries proposed but not yet committed on the leader: a full pipeline, and a bound on it. */
const uncommittedEntriesMax = batch * 64;
/** Compact each member's storage once it has applied this many entries past the last compaction. */
const compactEveryEntries = 1 << 16;
const runtime = currentRuntime();
const storageKinds = storageFlag();

/**
 * A log in memory that shares entries with the core instead of copying them (MemoryStorage
 * copies every entry in and out, so a caller's mutation cannot reach the stored log). With it
 * the figure is the core's own cost. Only what this bench needs: appends with truncation,
 * compaction, hard state; configurations from stored config entries.
 */
class SharedLog implements LogReader, Storage {
  readonly snapshots = new MemorySnapshotStore();
  #entries: Entry[] = [];
  #offset = 0;
  #compactIndex = 0;
  #compactTerm = 0;
  #hardState: HardState = { term: 0, vote: null, commitIndex: 0 };
  #configs: Configuration[] = [];
  #snapshot: SnapshotMeta | null = null;

  firstIndex(): number {
    return this.#compactIndex + 1;
  }
  lastIndex(): number {
    return this.#compactIndex + this.#entries.length - this.#offset;
  }
  term(index: number): number | undefined {
    if (index === this.#compactIndex) return this.#compactTerm;
    if (index < this.#compactIndex) return undefined;
    return this.#entries[this.#offset + index - this.#compactIndex - 1]?.term;
  }
  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    if (fromIndex <= this.#compactIndex) throw new CompactedError(fromIndex, this.firstIndex());
    const end = Math.min(toIndex, this.lastIndex() + 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = fromIndex; index < end; index++) {
      const entry = this.#entries[this.#offset + index - this.#compactIndex - 1]!;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }
  hardState(): HardState {
    return { ...this.#hardState };
  }
  configurations(): Configuration[] {
    return this.#configs.map((c) => ({ ...c, members: [...c.members] }));
  }
  snapshotMeta(): SnapshotMeta | null {
    return this.#snapshot;
  }
  logBytes(): number {
    return 0;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  write(batch: WriteBatch): Promise<void> {
    if (batch.snapshot !== undefined) this.#snapshot = batch.snapshot;
    if (batch.snapshotData !== undefined) {
      this.snapshots.commit(batch.snapshotData, batch.snapshot!.index, batch.snapshot!.term);
    }
    const entries = batch.entries ?? [];
    if (entries.length > 0) {
      const first = entries[0]!.index;
      if (first <= this.#compactIndex || first > this.lastIndex() + 1) {
        throw new RangeError(
          `SharedLog: append at ${first}, log ${this.firstIndex()}..${this.lastIndex()}`,
        );
      }
      this.#entries.length = this.#offset + first - this.#compactIndex - 1;
      this.#configs = this.#configs.filter((c) => c.index < first);
      for (const e of entries) {
        this.#entries.push(e);
        if (e.type === 'config') {
          this.#configs.push({ index: e.index, term: e.term, members: e.members });
        }
      }
    }
    if (batch.hardState !== undefined) this.#hardState = batch.hardState;
    return Promise.resolve();
  }
  compact(index: number): Promise<void> {
    const term = this.term(index)!;
    this.#offset += index - this.#compactIndex;
    this.#compactIndex = index;
    this.#compactTerm = term;
    if (this.#offset > 1 << 16) {
      this.#entries = this.#entries.slice(this.#offset);
      this.#offset = 0;
    }
    return Promise.resolve();
  }
}

type BenchMember = {
  id: string;
  raft: Raft;
  storage: MemoryStorage | SharedLog;
  compactedTo: number;
};

const ids = ['a', 'b', 'c'];
const config: Member[] = ids.map((id) => ({ id, type: 'ACTIVE' }));
const commands: Uint8Array[] = [];
for (let i = 0; i < batch; i++) commands.push(new Uint8Array(commandBytes).fill(i));

/** Three cores and the in-process network between them. */
class Cluster {
  readonly members: BenchMember[];
  readonly leader: BenchMember;
  readonly #byId: Map<string, BenchMember>;
  #queue: RaftMessage[] = [];
  /** Command entries the leader has applied (committed and durable). */
  leaderApplied = 0;
  /** The last index each member has applied, to check they agree at the end. */
  readonly appliedIndex = new Map(ids.map((id) => [id, 0]));
  #timeMs = 0;

  constructor(kind: StorageKind) {
    this.members = ids.map((id, i) => {
      const storage = kind === 'memory' ? new MemoryStorage() : new SharedLog();
      const raft = new Raft(storage, { id, random: seededRandom(i + 1), voteEmbargoTicks: 0 });
      raft.bootstrap(config, 0);
      return { id, raft, storage, compactedTo: 0 };
    });
    this.#byId = new Map(this.members.map((m) => [m.id, m]));
    this.leader = this.members[0]!;
    this.leader.raft.campaign();
    this.settle();
    if (this.leader.raft.role !== 'leader') {
      throw new Error(`${this.leader.id} did not become leader`);
    }
  }

  /** The driver's half of the Ready contract, in memory: persist, send, apply, advance. */
  #carryOut(m: BenchMember, rd: Ready): void {
    const write: WriteBatch = {};
    if (rd.snapshot !== null) write.snapshot = rd.snapshot;
    if (rd.entries.length > 0) write.entries = rd.entries;
    if (rd.hardState !== null) write.hardState = rd.hardState;
    if (
      write.snapshot !== undefined || write.entries !== undefined || write.hardState !== undefined
    ) {
      void m.storage.write(write); // both storages apply the write before returning
      const last = rd.entries[rd.entries.length - 1];
      if (last !== undefined && m.storage.term(last.index) !== last.term) {
        throw new Error(`Write of ${m.id} failed at entry ${last.index}`);
      }
    }
    for (const msg of rd.messages) this.#queue.push(msg);
    for (const msg of rd.messagesAfterPersist) this.#queue.push(msg);
    const lastApplied = rd.committed[rd.committed.length - 1];
    if (lastApplied !== undefined) {
      if (m === this.leader) {
        for (const e of rd.committed) if (e.type === 'command') this.leaderApplied++;
      }
      this.appliedIndex.set(m.id, lastApplied.index);
      this.#maybeCompact(m, lastApplied);
    }
    m.raft.advance(rd);
  }

  /** Keep memory flat: snapshot (metadata only, the state machine is empty) and compact. */
  #maybeCompact(m: BenchMember, applied: Entry): void {
    if (applied.index - m.compactedTo < compactEveryEntries) return;
    // Keep a margin of entries so a member a little behind is still fed from the log.
    const index = applied.index - batch * 4;
    const term = m.storage.term(index)!;
    void m.storage.write({ snapshot: { index, term, timeMs: 0, members: config } });
    void m.storage.compact(index);
    m.compactedTo = index;
  }

  /** One turn: carry out every member's ready batches, then deliver what they sent, once. */
  turn(): number {
    let work = 0;
    for (const m of this.members) {
      while (m.raft.hasReady()) {
        this.#carryOut(m, m.raft.ready());
        work++;
      }
    }
    const delivering = this.#queue;
    this.#queue = [];
    for (const msg of delivering) this.#byId.get(msg.to)!.raft.step(msg);
    return work + delivering.length;
  }

  settle(): void {
    for (let i = 0; i < 10_000; i++) if (this.turn() === 0) return;
    throw new Error('The cluster did not settle in 10,000 turns');
  }

  /** Propose and replicate for `ms`; returns entries committed on the leader per second. */
  measure(ms: number): number {
    const raft = this.leader.raft;
    const appliedBefore = this.leaderApplied;
    const started = performance.now();
    let elapsed = 0;
    let turns = 0;
    while (elapsed < ms) {
      if (raft.lastIndex - raft.commitIndex < uncommittedEntriesMax) {
        raft.proposeBatch(commands, ++this.#timeMs);
      }
      this.turn();
      // Reading the clock costs as much as a turn: read it every 16 turns.
      if (++turns % 16 === 0) elapsed = performance.now() - started;
    }
    elapsed = performance.now() - started;
    return (this.leaderApplied - appliedBefore) / (elapsed / 1000);
  }

  /** The three members agree: everything proposed was replicated, committed and applied. */
  verify(): number {
    // The commit index reaches followers with the next append or heartbeat: send heartbeats.
    for (let i = 0; i < 10; i++) {
      this.settle();
      if (this.members.every((m) => m.raft.commitIndex === this.leader.raft.commitIndex)) break;
      this.leader.raft.tick();
    }
    this.settle();
    const leader = this.leader.raft;
    const lastIndex = leader.lastIndex;
    if (leader.role !== 'leader') throw new Error('Leadership changed during the run');
    for (const m of this.members) {
      if (m.raft.commitIndex !== lastIndex || this.appliedIndex.get(m.id) !== lastIndex) {
        throw new Error(
          `${m.id}: commit ${m.raft.commitIndex}, applied ${
            this.appliedIndex.get(m.id)
          }, leader last ${lastIndex}`,
        );
      }
      if (m.raft.termAt(lastIndex) !== leader.termAt(lastIndex)) {
        throw new Error(`${m.id} diverged`);
      }
    }
    return lastIndex;
  }
}

/** A state machine that does nothing: the figure is the member's own cost. */
const inertMachine: StateMachine<Uint8Array, null, unknown, null> = {
  apply: () => null,
  query: () => null,
  snapshot: () => (async function* () {})(),
  restore: async () => {},
};

/** Three member drivers over zero-copy logs and an in-process message queue. */
class DriverCluster {
  drivers: MemberDriver<Uint8Array, null>[] = [];
  #deferred: Array<() => void> = [];
  #queue: RaftMessage[] = [];
  #timers: Array<() => void> = [];
  #nowMs = 0;
  /** Proposals the leader answered (each with its own index's output). */
  answered = 0;

  static async start(): Promise<DriverCluster> {
    const c = new DriverCluster();
    const clock: Clock = {
      nowMs: () => c.#nowMs,
      // Ticks run only when `tick()` asks (heartbeats at the end); nothing else waits on a timer.
      setTimer: (_ms, run) => {
        c.#timers.push(run);
        return () => {};
      },
      defer: (run) => void c.#deferred.push(run),
    };
    const options = parseDriverOptions({
      snapshotEntriesThreshold: compactEveryEntries,
      compactionTrailingEntries: batch * 4,
      proposalTimeoutMs: 3_600_000,
    }, 'core bench');
    for (const [i, id] of ids.entries()) {
      c.drivers.push(
        await MemberDriver.open<Uint8Array, null, unknown, null>({
          id,
          storage: new SharedLog(),
          transport: { send: (m) => void c.#queue.push(m), setPeers: () => {} },
          clock,
          random: seededRandom(i + 1),
          stateMachine: inertMachine,
          codec: { encode: (b) => b, decode: (b) => b },
          options,
          logger: { info: () => {}, warn: () => {}, debug: () => {} },
          members: config,
          voteEmbargoTicks: 0,
        }),
      );
    }
    for (const d of c.drivers) d.start();
    c.drivers[0]!.core.campaign();
    c.drivers[0]!.nudge();
    for (let i = 0; i < 100 && c.drivers[0]!.role !== 'leader'; i++) await c.turn();
    if (c.drivers[0]!.role !== 'leader') throw new Error('a did not become leader');
    return c;
  }

  /** Run deferred work (the pumps), let writes complete, deliver what was sent, once. */
  async turn(): Promise<number> {
    const work = this.#deferred;
    this.#deferred = [];
    for (const run of work) run();
    await settle();
    const delivering = this.#queue;
    this.#queue = [];
    for (const m of delivering) this.drivers[ids.indexOf(m.to)]!.receive(m);
    return work.length + delivering.length;
  }

  /** One tick on every member (heartbeats carry the commit index). */
  tick(): void {
    this.#nowMs += 10;
    const timers = this.#timers;
    this.#timers = [];
    for (const run of timers) run();
  }

  async measure(ms: number): Promise<number> {
    const leader = this.drivers[0]!;
    const before = this.answered;
    let proposed = this.answered;
    const started = performance.now();
    let elapsed = 0;
    let turns = 0;
    while (elapsed < ms) {
      if (proposed - this.answered < uncommittedEntriesMax) {
        for (const c of commands) {
          void leader.propose(c).then(() => void this.answered++);
          proposed++;
        }
      }
      await this.turn();
      if (++turns % 16 === 0) elapsed = performance.now() - started;
    }
    elapsed = performance.now() - started;
    return (this.answered - before) / (elapsed / 1000);
  }

  /** Every member applied everything the leader holds. */
  async verify(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      this.tick();
      while ((await this.turn()) > 0) { /* settle */ }
    }
    const last = this.drivers[0]!.core.lastIndex;
    for (const d of this.drivers) {
      if (d.lastAppliedIndex !== last) {
        throw new Error(
          `${d.id}: applied ${d.lastAppliedIndex}, commit ${d.core.commitIndex}, last ${d.core.lastIndex}, leader last ${last} commit ${
            this.drivers[0]!.core.commitIndex
          } ${JSON.stringify(this.drivers[0]!.core.status().progress)}`,
        );
      }
    }
    return last;
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** `--path driver|core|both` (default both): through the member driver, or the bare core. */
function pathFlag(): Array<'driver' | 'core'> {
  const at = process.argv.indexOf('--path');
  const value = at === -1 ? 'both' : process.argv[at + 1];
  if (value === 'both') return ['driver', 'core'];
  if (value !== 'driver' && value !== 'core') {
    process.stderr.write(`--path must be driver, core or both, got ${value}\n`);
    process.exit(2);
  }
  return [value];
}

if (pathFlag().includes('driver')) {
  const cluster = await DriverCluster.start();
  const label = `member driver (${runtime}, zero-copy log)`;
  progress(`${label}: 3 members in memory, ${batch} x ${commandBytes} B per batch`);
  await cluster.measure(warmupMs);
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    perRound.push(await cluster.measure(roundMs));
    progress(`${label}: round ${r + 1}/${rounds}: ${fmt(perRound[r]!)} entries/s`);
  }
  const replicated = await cluster.verify();
  const sorted = [...perRound].sort((x, y) => x - y);
  const best = Math.round(sorted[sorted.length - 1]!);
  const median = Math.round(sorted[Math.floor(sorted.length / 2)]!);
  progress(
    `${label}: ${fmt(best)} entries/s best, ${fmt(median)} median of ${rounds} x ${roundMs} ms ` +
      `(${fmt(replicated)} entries replicated to 3 members)`,
  );
  printRow({
    bench: 'core',
    runtime,
    storage: 'driver',
    batch,
    commandBytes,
    entriesPerSec: best,
    entriesPerSecMedian: median,
  });
}

for (const kind of pathFlag().includes('core') ? storageKinds : []) {
  const cluster = new Cluster(kind);
  const label = `core (${runtime}, ${kind === 'shared' ? 'zero-copy log' : 'MemoryStorage'})`;
  progress(`${label}: 3 members in memory, ${batch} x ${commandBytes} B per batch`);
  cluster.measure(warmupMs);
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    perRound.push(cluster.measure(roundMs));
    progress(`${label}: round ${r + 1}/${rounds}: ${fmt(perRound[r]!)} entries/s`);
  }
  const replicated = cluster.verify();
  const sorted = [...perRound].sort((x, y) => x - y);
  const best = Math.round(sorted[sorted.length - 1]!);
  const median = Math.round(sorted[Math.floor(sorted.length / 2)]!);
  progress(
    `${label}: ${fmt(best)} entries/s best, ${fmt(median)} median of ${rounds} x ${roundMs} ms ` +
      `(${fmt(replicated)} entries replicated to 3 members)`,
  );
  printRow({
    bench: 'core',
    runtime,
    storage: kind,
    batch,
    commandBytes,
    entriesPerSec: best,
    entriesPerSecMedian: median,
  });
}
