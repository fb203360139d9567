/**
 * Models shipped with the checker: a register (read / write / compare-and-set) and a key-value
 * map of independent string values (get / put / append / compare-and-set per key), partitioned by
 * key so that each key is checked alone.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(keyValueModel(), [
 *   { client: 1, callMs: 0, returnMs: 5, input: { f: 'put', key: 'a', value: 'x' }, outcome: 'ok' },
 *   { client: 2, callMs: 6, returnMs: 9, input: { f: 'get', key: 'a' }, output: 'x', outcome: 'ok' },
 * ]);
 * result.verdict; // 'linearizable'
 * ```
 * @module
 */
import { defaultStateKey, type Model, show, unobserved } from './model.ts';

/**
 * An operation on a register holding a `V`: `read` returns the value (`null` before any write),
 * `write` returns nothing, `cas` sets `to` if the value is `from` and returns whether it did.
 *
 * @example
 * ```ts
 * const input: RegisterInput<number> = { f: 'cas', from: 1, to: 2 };
 * ```
 */
export type RegisterInput<V> =
  | { f: 'read' }
  | { f: 'write'; value: V }
  | { f: 'cas'; from: V | null; to: V };

/**
 * What a register operation returns: the value (or `null`) for `read`, nothing for `write`, a
 * boolean for `cas`.
 *
 * @example
 * ```ts
 * const output: RegisterOutput<number> = true; // the cas took effect
 * ```
 */
export type RegisterOutput<V> = V | null | boolean | undefined;

/**
 * A register: one value, `null` until the first write (or `initial`). Values are compared as
 * JSON, so numbers, strings and plain data work; `undefined` is not a value.
 *
 * A `cas` that returns `false` had no effect, and also says the value was not `from` at its
 * linearization point: a checked claim. One whose outcome is unknown took effect (or not)
 * according to the value it met. A `cas` the server refused without looking (outcome `fail`) is
 * dropped before the model sees it.
 *
 * @example
 * ```ts
 * const r = checkLinearizability(registerModel<number>(), [
 *   { client: 1, callMs: 0, returnMs: 10, input: { f: 'write', value: 1 }, outcome: 'ok' },
 *   { client: 2, callMs: 20, returnMs: 30, input: { f: 'read' }, output: null, outcome: 'ok' },
 * ]);
 * r.verdict; // 'not linearizable': the read returned after the write and missed it
 * ```
 */
export function registerModel<V = unknown>(
  options: { initial?: V | null } = {},
): Model<V | null, RegisterInput<V>, RegisterOutput<V>> {
  const initial = options.initial ?? null;
  return {
    name: 'register',
    init: () => initial,
    step: (state, input, output) => {
      switch (input.f) {
        case 'read':
          return output === unobserved || sameValue(output, state) ? state : undefined;
        case 'write':
          return input.value;
        case 'cas':
          return casStep(state, input.from, input.to, output);
      }
    },
    key: defaultStateKey,
    describeOperation: (input, output) => {
      const result = output === unobserved
        ? ' → ?'
        : output === undefined
        ? ''
        : ` → ${show(output)}`;
      switch (input.f) {
        case 'read':
          return `read${result}`;
        case 'write':
          return `write ${show(input.value)}${result}`;
        case 'cas':
          return `cas ${show(input.from)}→${show(input.to)}${result}`;
      }
    },
    describeState: (state) => show(state),
  };
}

/**
 * An operation on a map from string keys to string values: `get` returns the key's value (the
 * model's `initialValue` for a key never written), `put` replaces it, `append` concatenates to it,
 * `cas` sets `to` if the value is `from` and returns whether it did. `put` and `append` return
 * nothing.
 *
 * @example
 * ```ts
 * const input: KeyValueInput = { f: 'append', key: 'k1', value: 'x' };
 * ```
 */
export type KeyValueInput =
  | { f: 'get'; key: string }
  | { f: 'put'; key: string; value: string }
  | { f: 'append'; key: string; value: string }
  | { f: 'cas'; key: string; from: string | null; to: string };

/**
 * What a key-value operation returns: the value (or `null` for a missing key) for `get`, a
 * boolean for `cas`, nothing for `put` and `append`.
 *
 * @example
 * ```ts
 * const output: KeyValueOutput = 'xy';
 * ```
 */
export type KeyValueOutput = string | null | boolean | undefined;

/**
 * A key-value map whose keys are independent registers of strings: the history is partitioned by
 * key and each key is checked alone, from `initialValue`. So the model's state is one key's value.
 * `initialValue` is `null` (missing) by default; pass `''` for stores where a missing key reads as
 * the empty string (appending to a missing key then starts from `''` either way).
 *
 * @example
 * ```ts
 * const r = checkLinearizability(keyValueModel({ initialValue: '' }), [
 *   { client: 1, callMs: 0, returnMs: 5, input: { f: 'append', key: 'a', value: 'x' }, outcome: 'ok' },
 *   { client: 2, callMs: 1, returnMs: 4, input: { f: 'get', key: 'a' }, output: '', outcome: 'ok' },
 * ]);
 * r.verdict; // 'linearizable': the get ran before the append took effect
 * ```
 */
export function keyValueModel(
  options: { initialValue?: string | null } = {},
): Model<string | null, KeyValueInput, KeyValueOutput> {
  const initial = options.initialValue ?? null;
  return {
    name: 'key-value map',
    init: () => initial,
    step: (state, input, output) => {
      switch (input.f) {
        case 'get':
          return output === unobserved || output === state ? state : undefined;
        case 'put':
          return input.value;
        case 'append':
          return (state ?? '') + input.value;
        case 'cas':
          return casStep(state, input.from, input.to, output);
      }
    },
    partitionKey: (input) => input.key,
    // `null` cannot collide with a string's key: every string's key starts with `s`.
    key: (state) => state === null ? 'n' : `s${state}`,
    describeOperation: (input, output) => {
      const result = output === unobserved
        ? ' → ?'
        : output === undefined
        ? ''
        : ` → ${show(output)}`;
      switch (input.f) {
        case 'get':
          return `get ${show(input.key)}${result}`;
        case 'put':
        case 'append':
          return `${input.f} ${show(input.key)} ${show(input.value)}${result}`;
        case 'cas':
          return `cas ${show(input.key)} ${show(input.from)}→${show(input.to)}${result}`;
      }
    },
    describeState: (state) => show(state),
  };
}

/** Compare-and-set: shared by both models. A non-boolean output is a malformed history. */
function casStep<V>(state: V, from: V, to: V, output: unknown): V | undefined {
  const matches = sameValue(state, from);
  if (output === unobserved) return matches ? to : state;
  if (output === true) return matches ? to : undefined;
  if (output === false) return matches ? undefined : state;
  throw new TypeError(`Invalid cas output: expected a boolean, got ${show(output)}`);
}

/** Equal values: the same primitive, or plain data with the same JSON. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
