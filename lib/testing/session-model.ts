/**
 * The model the session clients' history is checked against: keys that only ever get appends,
 * where an append answers the whole value after it (as the key-value machine's `append` does) and
 * a read answers the value. Holding appends to their answers is what the clients saw, and it
 * keeps the search small even when a retried append stays in flight for a long time: each
 * answered append fixes where it goes.
 *
 * @example
 * ```ts
 * const r = checkLinearizability(appendModel(), [
 *   { client: 1, callMs: 0, returnMs: 5, input: { f: 'append', key: 'a', value: 'x;' }, output: 'x;', outcome: 'ok' },
 *   { client: 2, callMs: 6, returnMs: 9, input: { f: 'get', key: 'a' }, output: null, outcome: 'ok' },
 * ]);
 * r.verdict; // 'not linearizable': the read began after the append was answered
 * ```
 * @module
 */
import { type Model, show, unobserved } from './linearizability/model.ts';

/** An append of `value` to `key`, or a read of `key`. */
export type AppendInput = { f: 'append'; key: string; value: string } | { f: 'get'; key: string };

/** The value after an append, or the value read (null: never appended to). */
export type AppendOutput = string | null;

/** See the module comment. The state is one key's value ('' before any append). */
export function appendModel(): Model<string, AppendInput, AppendOutput> {
  return {
    name: 'append-only keys',
    init: () => '',
    step: (state, input, output) => {
      if (input.f === 'append') {
        const after = state + input.value;
        return output === unobserved || output === after ? after : undefined;
      }
      return output === unobserved || (output ?? '') === state ? state : undefined;
    },
    partitionKey: (input) => input.key,
    key: (state) => state,
    describeOperation: (input, output) => {
      const result = output === unobserved ? ' → ?' : ` → ${show(output)}`;
      return input.f === 'append'
        ? `append ${show(input.key)} ${show(input.value)}${result}`
        : `get ${show(input.key)}${result}`;
    },
    describeState: (state) => show(state),
  };
}
