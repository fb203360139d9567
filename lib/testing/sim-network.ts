/**
 * The simulated network: seeded drop, delay, duplication and reordering, with symmetric and
 * one-way partitions. It only decides *whether* and *when* a message arrives; the simulator's
 * event queue does the delivering.
 *
 * @module
 */
import type { RandomSource } from '../core/random.ts';

/** How hostile the network is. Probabilities are per message, in [0, 1]. */
export type NetworkFaults = {
  dropProbability: number;
  duplicateProbability: number;
  /** Usual one-way delay range, in virtual milliseconds. */
  delayMsMin: number;
  delayMsMax: number;
  /** Probability that a message is held back much longer (reordering it behind later ones). */
  longDelayProbability: number;
  longDelayMsMax: number;
};

/** A perfect network: no loss, no duplication, 1–3 ms delays. */
export const calmNetwork: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayMsMin: 1,
  delayMsMax: 3,
  longDelayProbability: 0,
  longDelayMsMax: 0,
};

/**
 * Decides the fate of each message.
 *
 * @example
 * ```ts
 * const net = new SimNetwork(seededRandom(1), calmNetwork);
 * net.partition([['a'], ['b', 'c']]);
 * net.deliveryDelays('a', 'b'); // [] : cut off
 * ```
 */
export class SimNetwork {
  readonly #random: RandomSource;
  faults: NetworkFaults;
  /** Group number per member; members in different groups cannot talk. Absent: group 0. */
  #group = new Map<string, number>();
  /** Blocked directions, as `from>to`. */
  #blocked = new Set<string>();

  constructor(random: RandomSource, faults: NetworkFaults) {
    this.#random = random;
    this.faults = faults;
  }

  /** Split members into groups that cannot reach each other. */
  partition(groups: string[][]): void {
    this.#group.clear();
    groups.forEach((g, i) => g.forEach((id) => this.#group.set(id, i + 1)));
  }

  /** Drop every message from `from` to `to` (the reverse direction still works). */
  blockOneWay(from: string, to: string): void {
    this.#blocked.add(`${from}>${to}`);
  }

  /** Remove every partition and one-way block. */
  heal(): void {
    this.#group.clear();
    this.#blocked.clear();
  }

  /** True when `from` can currently reach `to`. */
  connected(from: string, to: string): boolean {
    if (this.#blocked.has(`${from}>${to}`)) return false;
    return (this.#group.get(from) ?? 0) === (this.#group.get(to) ?? 0);
  }

  /**
   * The delays after which copies of one message arrive: none when it is dropped or cut off,
   * two when it is duplicated.
   */
  deliveryDelays(from: string, to: string): number[] {
    if (!this.connected(from, to)) return [];
    const f = this.faults;
    if (this.#random() < f.dropProbability) return [];
    const copies = this.#random() < f.duplicateProbability ? 2 : 1;
    const out: number[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = f.delayMsMin + this.#random() * (f.delayMsMax - f.delayMsMin);
      if (this.#random() < f.longDelayProbability) delay += this.#random() * f.longDelayMsMax;
      out.push(delay);
    }
    return out;
  }

  describe(): string {
    const groups = [...this.#group.entries()].map(([id, g]) => `${id}:${g}`).join(',');
    const blocked = [...this.#blocked].join(',');
    return `groups[${groups}] blocked[${blocked}]`;
  }
}
