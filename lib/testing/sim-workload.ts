/**
 * What the simulator's clients do: a workload hands each client its next operation (a command
 * through the log, or a query at a consistency level) and says how to record it in the history
 * that the linearizability checker reads. The built-in one drives the key-value machine on a few
 * keys with put, append, compare-and-set and get, every value unique, so that a lost or doubled
 * write shows in the history.
 *
 * @module
 */
import type { RandomSource } from '../core/random.ts';
import { randomInt } from '../core/random.ts';
import type { ReadConsistency } from '../member/driver.ts';
import type { Model } from './linearizability/model.ts';
import { type KeyValueInput, keyValueModel } from './linearizability/models.ts';

/**
 * One client operation. `input` is what the history records for the checker's model (omit it to
 * leave the operation out of the history, as for sequential reads, which are not linearizable).
 */
export type SimOperation =
  | { kind: 'command'; command: unknown; input?: unknown }
  | { kind: 'query'; query: unknown; consistency: ReadConsistency; input?: unknown };

/**
 * A workload for simulated clients.
 *
 * @example
 * ```ts
 * const counter: Workload = {
 *   next: (random) => random() < 0.7
 *     ? { kind: 'command', command: { add: 1 } }
 *     : { kind: 'query', query: 'total', consistency: 'linearizable' },
 * };
 * ```
 */
export interface Workload {
  /** The next operation of client `client` (its `seq`-th, from 1). */
  next(random: RandomSource, client: number, seq: number): SimOperation;
  /** The history's output for an operation that completed with the state machine's `output`. */
  output?(op: SimOperation, output: unknown): unknown;
  /** The model histories are checked against; without one, histories are not checked. */
  model?: Model<unknown, unknown, unknown>;
}

/** Keys the built-in workload uses: few, so that operations on one key overlap. */
const kvKeys = ['k0', 'k1', 'k2', 'k3'];

/**
 * The built-in workload on `KvStateMachine`: puts and appends of unique values, compare-and-set
 * from the last value seen, gets through the log, and linearizable, lease and sequential reads.
 */
export function kvWorkload(): Workload {
  const lastSeen = new Map<string, string | null>();
  return {
    next(random, client, seq) {
      const key = kvKeys[randomInt(random, 0, kvKeys.length)]!;
      const unique = `c${client}.${seq}`;
      const roll = random();
      if (roll < 0.25) {
        const input: KeyValueInput = { f: 'put', key, value: unique };
        return { kind: 'command', command: { op: 'put', key, value: unique }, input };
      }
      if (roll < 0.45) {
        const value = `${unique};`;
        const input: KeyValueInput = { f: 'append', key, value };
        return { kind: 'command', command: { op: 'append', key, value }, input };
      }
      if (roll < 0.55) {
        const expected = lastSeen.get(key) ?? null;
        const input: KeyValueInput = { f: 'cas', key, from: expected, to: unique };
        return { kind: 'command', command: { op: 'cas', key, expected, value: unique }, input };
      }
      if (roll < 0.6) {
        const input: KeyValueInput = { f: 'get', key };
        return { kind: 'command', command: { op: 'get', key }, input };
      }
      const consistency: ReadConsistency = roll < 0.72
        ? 'linearizable'
        : roll < 0.95
        ? 'lease'
        : 'sequential';
      const input: KeyValueInput = { f: 'get', key };
      return {
        kind: 'query',
        query: { op: 'get', key },
        consistency,
        ...(consistency === 'sequential' ? {} : { input }),
      };
    },
    output(op, output) {
      const o = (output ?? {}) as { value?: string | null; ok?: boolean; current?: string | null };
      const command = (op.kind === 'command' ? op.command : op.query) as {
        op: string;
        key: string;
      };
      if (command.op === 'get') {
        lastSeen.set(command.key, o.value ?? null);
        return o.value ?? null;
      }
      if (command.op === 'cas') {
        lastSeen.set(command.key, o.current ?? null);
        return o.ok === true;
      }
      return undefined;
    },
    model: keyValueModel() as Model<unknown, unknown, unknown>,
  };
}
