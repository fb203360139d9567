/**
 * What a linearizability check needs to know about the system under test: a sequential
 * specification (a model) of the object the history was recorded against. The checker asks the
 * model one question, over and over: "from this state, may this operation return this output, and
 * if so, what is the state after it?"
 *
 * @example
 * ```ts
 * // A counter: `inc` adds one and returns nothing, `get` returns the count.
 * const counter: Model<number, 'inc' | 'get', number | undefined> = {
 *   name: 'counter',
 *   init: () => 0,
 *   step: (count, input, output) => {
 *     if (input === 'inc') return count + 1;
 *     return output === unobserved || output === count ? count : undefined;
 *   },
 * };
 * ```
 * @module
 */

/**
 * The output of an operation whose outcome is unknown (timed out, connection lost): the checker
 * passes this to {@link Model.step} instead of an output, and the model must then accept the
 * operation from every state (it did whatever it does; nobody saw its answer).
 *
 * @example
 * ```ts
 * const step = (state: number, input: 'get', output: number | Unobserved) =>
 *   output === unobserved || output === state ? state : undefined;
 * ```
 */
export const unobserved: unique symbol = Symbol('edgeraft.unobserved');

/** The type of {@link unobserved}. */
export type Unobserved = typeof unobserved;

/**
 * A sequential specification: the object as if one client at a time used it.
 *
 * Contract, which the checker relies on for soundness:
 * - `step` is pure and deterministic: it never mutates `state` (return a new value instead), and
 *   the same arguments always give the same answer. The search applies and undoes steps millions
 *   of times, and memoises on `key(state)`.
 * - `step` with output {@link unobserved} returns a state (never `undefined`) from every state:
 *   an operation whose answer nobody saw cannot be caught lying. The checker does not need this
 *   for soundness (it never forces an unknown operation to take effect), but a model that
 *   rejects one only makes the search slower.
 * - A state is never `undefined` (that is the "not allowed" answer); use `null` for "nothing".
 * - `key` is injective on the states that can occur: two states with the same key behave the same
 *   from then on. The default, `JSON.stringify`, is right for JSON-like states whose objects are
 *   always built with their keys in one order.
 * - With `partitionKey`, operations with different keys never affect one another (each key is an
 *   independent object, as the registers of a key-value map are), so each partition is checked
 *   alone from `init()` (P-compositionality: Herlihy & Wing, section 3.3; porcupine's
 *   `Partition`). A history is linearizable if and only if every partition is.
 *
 * @example
 * ```ts
 * // A FIFO queue of numbers: `enqueue` returns nothing, `dequeue` the head or null when empty.
 * type QueueInput = { f: 'enqueue'; value: number } | { f: 'dequeue' };
 * const queue: Model<readonly number[], QueueInput, number | null | undefined> = {
 *   name: 'queue',
 *   init: () => [],
 *   step: (items, input, output) => {
 *     if (input.f === 'enqueue') return [...items, input.value];
 *     const head = items[0] ?? null;
 *     if (output !== unobserved && output !== head) return undefined;
 *     return items.slice(1);
 *   },
 *   describeState: (items) => `[${items.join(', ')}]`,
 * };
 * ```
 */
export type Model<State, Input, Output> = {
  /** Shown in messages. Default: `model`. */
  name?: string;
  /** The state before any operation (of each partition). */
  init(): State;
  /**
   * The state after `input` ran in `state` and returned `output`, or `undefined` when that is not
   * possible (the output is wrong for this state, or the operation cannot run in it).
   * `output` is {@link unobserved} when the operation's outcome is unknown.
   */
  step(state: State, input: Input, output: Output | Unobserved): State | undefined;
  /**
   * The independent part of the object an operation touches (the key of a key-value map). The
   * history is split by it and each part checked alone, which is what makes many-key histories
   * quick. Absent: the whole history is one partition.
   */
  partitionKey?(input: Input): string;
  /** A string equal for equal states and different for different ones. Default: JSON. */
  key?(state: State): string;
  /** One operation, for messages: `write 3`, `read → 3`. */
  describeOperation?(input: Input, output: Output | Unobserved): string;
  /** One state, for messages. */
  describeState?(state: State): string;
};

/**
 * The default state key: `JSON.stringify` (a string state comes out quoted, so `'undefined'`, the
 * key of the one value JSON has no text for, cannot collide with it).
 *
 * @example
 * ```ts
 * defaultStateKey({ a: 1 }); // '{"a":1}'
 * ```
 */
export function defaultStateKey(state: unknown): string {
  return JSON.stringify(state) ?? 'undefined';
}

/**
 * The default description of an operation: its input and output as JSON, `?` for an unobserved
 * output.
 *
 * @example
 * ```ts
 * defaultDescribeOperation({ f: 'read' }, 3); // '{"f":"read"} → 3'
 * ```
 */
export function defaultDescribeOperation(input: unknown, output: unknown): string {
  if (output === unobserved) return `${show(input)} → ?`;
  if (output === undefined) return show(input);
  return `${show(input)} → ${show(output)}`;
}

/**
 * A short text for any value: JSON where it has one, `String` otherwise.
 *
 * @example
 * ```ts
 * show(null); // 'null'
 * ```
 */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // Cycles and BigInts have no JSON; their String form is still something to read.
    return String(value);
  }
}
