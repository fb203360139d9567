/**
 * The torture harness's nemesis: one fault at a time, each held for a bounded time and then
 * healed, with a quiet gap between faults, chosen from the kinds asked for by a seeded generator.
 * Everything is healed before `run` resolves. What each kind does, and how it is made:
 *
 * - `kill`: SIGKILL a member (the leader, half of the time), restart it at the heal.
 * - `stop`: SIGSTOP a member (the leader, half of the time), SIGCONT at the heal.
 * - `partition`: cut one member off from every other, both ways (the network's `both` mode).
 * - `one-way`: lose one member's traffic to the others only (it still hears them), or the
 *   others' traffic to it only.
 * - `clock`: the member's clock (testing hook `EDGERAFT_CLOCK_FILE`) jumps forward (10 to 40 s)
 *   and runs fast or slow (rates 1.1 or 0.9, within the drift a lease allows): its log time, its
 *   deadlines and its ticks. Healed to offset 0, rate 1 (a jump back; what the rate gained or
 *   lost meanwhile, at most half a second, stays, as on a real drifting clock).
 * - `disk-full`: a file-size limit (`prlimit --fsize`) at the member's current LMDB file size; a
 *   write that grows the file fails with EFBIG (SIGXFSZ is ignored through the testing hook), the
 *   storage fails, the member stops serving. Healed by lifting the limit and, if it failed,
 *   restarting it.
 * - `slow-sync`: every durable commit of the member waits 100 to 400 ms more before it resolves
 *   (testing hook `EDGERAFT_SYNC_DELAY_FILE`).
 *
 * @module
 */
import type { Network } from './network.ts';

/** The kinds of fault. */
export const faultKinds = [
  'kill',
  'stop',
  'partition',
  'one-way',
  'clock',
  'disk-full',
  'slow-sync',
] as const;

/** One kind of fault. */
export type FaultKind = (typeof faultKinds)[number];

/** A fault as it happened, times in the run's clock (milliseconds since its start). */
export type FaultRecord = {
  kind: FaultKind;
  /** The members it hit. */
  targets: string[];
  /** Whether the target was the leader when the fault began. */
  leader: boolean;
  startMs: number;
  endMs: number;
  /** What was done, in words. */
  how: string;
  /** What the heal found, if anything worth saying. */
  note?: string;
};

/** What the nemesis needs of the members. */
export interface Members {
  readonly ids: readonly string[];
  leader(): string | null;
  kill(id: string): Promise<void>;
  restart(id: string): Promise<void>;
  pause(id: string): void;
  resume(id: string): void;
  setClock(id: string, skew: { offsetMs: number; rate: number }): void;
  setSyncDelay(id: string, ms: number): void;
  /** Limit the member's file size to its data file's current size; null lifts it. */
  limitFileSize(id: string, on: boolean): Promise<string>;
  /** Whether the member answers its status within a short time. */
  answers(id: string): Promise<boolean>;
}

/** How the nemesis runs. */
export type NemesisOptions = {
  kinds: readonly FaultKind[];
  members: Members;
  network: Network;
  nowMs: () => number;
  random: () => number;
  /** No fault begins after this (run clock); each ends by `endMs` at the latest. */
  lastStartMs: number;
  holdMsMin: number;
  holdMsMax: number;
  gapMsMin: number;
  gapMsMax: number;
  log?: (line: string) => void;
};

/** See the module comment. */
export class Nemesis {
  readonly faults: FaultRecord[] = [];
  readonly #o: NemesisOptions;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(options: NemesisOptions) {
    if (options.kinds.length === 0) throw new RangeError('Nemesis: no fault kinds');
    this.#o = options;
  }

  /** Stop early: the fault under way is healed at once. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Inject faults until `lastStartMs`; resolves once the last one is healed. */
  async run(): Promise<void> {
    const o = this.#o;
    while (!this.#stopped) {
      await this.#sleep(between(o.random, o.gapMsMin, o.gapMsMax));
      if (this.#stopped || o.nowMs() > o.lastStartMs) break;
      const kind = o.kinds[Math.floor(o.random() * o.kinds.length)]!;
      const holdMs = between(o.random, o.holdMsMin, o.holdMsMax);
      await this.#inject(kind, holdMs);
    }
  }

  async #inject(kind: FaultKind, holdMs: number): Promise<void> {
    const o = this.#o;
    const m = o.members;
    const leaderId = m.leader();
    const pickLeader = leaderId !== null && o.random() < 0.5;
    const target = pickLeader ? leaderId : m.ids[Math.floor(o.random() * m.ids.length)]!;
    const others = m.ids.filter((id) => id !== target);
    const record: FaultRecord = {
      kind,
      targets: [target],
      leader: target === leaderId,
      startMs: o.nowMs(),
      endMs: 0,
      how: '',
    };
    let heal: () => Promise<string | undefined>;
    switch (kind) {
      case 'kill':
        await m.kill(target);
        record.how = `SIGKILL ${target}; restarted at the heal`;
        heal = async () => {
          await m.restart(target);
          return undefined;
        };
        break;
      case 'stop':
        m.pause(target);
        record.how = `SIGSTOP ${target}; SIGCONT at the heal`;
        heal = () => {
          m.resume(target);
          return Promise.resolve(undefined);
        };
        break;
      case 'partition':
        for (const other of others) o.network.partition(target, other, 'both');
        record.how = `${target} cut off from ${others.join(', ')} both ways (proxy blackhole)`;
        heal = () => {
          o.network.heal();
          return Promise.resolve(undefined);
        };
        break;
      case 'one-way': {
        const outbound = o.random() < 0.5;
        for (const other of others) {
          if (outbound) o.network.partition(target, other, 'one-way');
          else o.network.partition(other, target, 'one-way');
        }
        record.how = outbound
          ? `${target}'s messages to ${others.join(', ')} lost (it still hears them)`
          : `messages from ${others.join(', ')} to ${target} lost (it is still heard)`;
        heal = () => {
          o.network.heal();
          return Promise.resolve(undefined);
        };
        break;
      }
      case 'clock': {
        const offsetMs = Math.round(between(o.random, 10_000, 40_000));
        const rate = o.random() < 0.5 ? 1.1 : 0.9;
        m.setClock(target, { offsetMs, rate });
        record.how = `${target}'s clock jumps +${offsetMs} ms and runs at ${rate}x (ticks too)`;
        heal = () => {
          m.setClock(target, { offsetMs: 0, rate: 1 });
          return Promise.resolve(undefined);
        };
        break;
      }
      case 'disk-full': {
        const how = await m.limitFileSize(target, true);
        record.how = how;
        heal = async () => {
          const lifted = await m.limitFileSize(target, false);
          if (await m.answers(target)) return 'it kept serving';
          await m.kill(target);
          await m.restart(target);
          return `it had stopped serving (${
            lifted === 'limit lifted' ? 'storage failed' : lifted
          }): restarted`;
        };
        break;
      }
      case 'slow-sync': {
        const ms = Math.round(between(o.random, 100, 400));
        m.setSyncDelay(target, ms);
        record.how = `${target}'s durable commits wait ${ms} ms more`;
        heal = () => {
          m.setSyncDelay(target, 0);
          return Promise.resolve(undefined);
        };
        break;
      }
    }
    this.faults.push(record);
    o.log?.(`${(record.startMs / 1000).toFixed(1)} s: ${kind}: ${record.how}`);
    await this.#sleep(holdMs);
    let note: string | undefined;
    try {
      note = await heal();
    } catch (error) {
      // A heal that failed is said so; the run goes on (the end checks show what it cost).
      note = `heal failed: ${(error as Error).message}`;
    }
    record.endMs = o.nowMs();
    if (note !== undefined) record.note = note;
    o.log?.(
      `${(record.endMs / 1000).toFixed(1)} s: healed ${kind} on ${target}${
        note === undefined ? '' : `: ${note}`
      }`,
    );
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function between(random: () => number, min: number, max: number): number {
  return min + random() * (max - min);
}
