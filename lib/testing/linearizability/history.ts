/**
 * Histories: what clients did and saw, as operations (the primary form) or as a flat list of
 * Jepsen-style invoke / complete events, and the validation that turns them into what the search
 * works on.
 *
 * What each outcome means to the checker:
 * - `ok`: the operation took effect exactly once, at some instant between `callMs` and
 *   `returnMs`, and returned `output`. It must be linearized.
 * - `fail`: it certainly took no effect (the server refused it before doing anything). It is
 *   dropped. An operation that ran and reported "no" (a compare-and-set whose comparison failed)
 *   is *not* a failure in this sense: record it as `ok` with output `false`, so that the checker
 *   also holds the "no" to account.
 * - `unknown` (or `returnMs` null): it may have taken effect at any instant after `callMs`, even
 *   long after the client gave up, or never. Its output is not used.
 *
 * @example
 * ```ts
 * const history: Operation<RegisterInput<number>, RegisterOutput<number>>[] = [
 *   { client: 1, callMs: 0, returnMs: 10, input: { f: 'write', value: 1 }, outcome: 'ok' },
 *   { client: 2, callMs: 5, returnMs: 8, input: { f: 'read' }, output: 1, outcome: 'ok' },
 * ];
 * ```
 * @module
 */
import { type Unobserved, unobserved } from './model.ts';

/** How an operation ended, as the client saw it. See the module comment for what each means. */
export type Outcome = 'ok' | 'fail' | 'unknown';

/**
 * One operation of one client, with the times it was called and returned. Times are in any one
 * clock shared by all clients (milliseconds by convention; only their order matters). An
 * operation whose call comes after another's return is ordered after it; operations whose
 * intervals overlap (or touch: a call at the very instant of another's return) are concurrent.
 *
 * @example
 * ```ts
 * const read: Operation<{ f: 'read' }, number | null> = {
 *   client: 'c2', callMs: 5, returnMs: 8, input: { f: 'read' }, output: null, outcome: 'ok',
 * };
 * ```
 */
export type Operation<Input = unknown, Output = unknown> = {
  /** Who ran it; for messages only (the checker does not require one operation per client). */
  client: number | string;
  /** When the client invoked it. */
  callMs: number;
  /**
   * When the client got its answer; `null` when it never did (the outcome is then unknown,
   * whatever `outcome` says). For an unknown outcome it is ignored: the operation may still take
   * effect after the client gave up on it.
   */
  returnMs: number | null;
  input: Input;
  /** What it returned, when the outcome is `ok`; omit it for operations that return nothing. */
  output?: Output;
  outcome: Outcome;
};

/**
 * One event of a flat history, in the order they happened: a client invokes an operation, then
 * the same client completes it (`ok` with its output, `fail`: it had no effect, `info`: the
 * outcome is unknown). Jepsen's vocabulary. A client has at most one operation outstanding.
 *
 * @example
 * ```ts
 * const events: HistoryEvent<{ f: 'read' }, number>[] = [
 *   { client: 0, type: 'invoke', input: { f: 'read' } },
 *   { client: 0, type: 'ok', output: 3 },
 * ];
 * ```
 */
export type HistoryEvent<Input = unknown, Output = unknown> =
  | { client: number | string; type: 'invoke'; input: Input }
  | { client: number | string; type: 'ok'; output?: Output }
  | { client: number | string; type: 'fail' | 'info' };

/**
 * Operations from a flat list of events. Each event's position in the list is its time, so
 * `callMs` and `returnMs` are event indexes. An invocation never completed is an unknown outcome.
 * Throws a `RangeError` naming the event for a completion without an invocation, or an invocation
 * while the client still has one outstanding; a `TypeError` for an unknown event type.
 *
 * @example
 * ```ts
 * operationsFromEvents([
 *   { client: 0, type: 'invoke', input: 'get' },
 *   { client: 1, type: 'invoke', input: 'inc' },
 *   { client: 0, type: 'ok', output: 0 },
 * ]);
 * // [{ client: 0, callMs: 0, returnMs: 2, input: 'get', output: 0, outcome: 'ok' },
 * //  { client: 1, callMs: 1, returnMs: null, input: 'inc', outcome: 'unknown' }]
 * ```
 */
export function operationsFromEvents<Input, Output>(
  events: readonly HistoryEvent<Input, Output>[],
): Operation<Input, Output>[] {
  const operations: Operation<Input, Output>[] = [];
  /** Per client: its outstanding operation, and the index of the event that invoked it. */
  const open = new Map<number | string, { op: Operation<Input, Output>; eventIndex: number }>();
  events.forEach((event, i) => {
    if (!['invoke', 'ok', 'fail', 'info'].includes(event?.type)) {
      throw new TypeError(
        `Invalid history event events[${i}].type: expected 'invoke', 'ok', 'fail' or 'info'`,
      );
    }
    const outstanding = open.get(event.client);
    if (event.type === 'invoke') {
      if (outstanding !== undefined) {
        throw new RangeError(
          `Invalid history event events[${i}]: client ${event.client} invokes while its operation from events[${outstanding.eventIndex}] is outstanding`,
        );
      }
      const op: Operation<Input, Output> = {
        client: event.client,
        callMs: i,
        returnMs: null,
        input: event.input,
        outcome: 'unknown',
      };
      operations.push(op);
      open.set(event.client, { op, eventIndex: i });
      return;
    }
    if (outstanding === undefined) {
      throw new RangeError(
        `Invalid history event events[${i}]: client ${event.client} completes an operation it never invoked`,
      );
    }
    open.delete(event.client);
    const op = outstanding.op;
    if (event.type === 'info') return; // Unknown: leave returnMs null, as if it never returned.
    op.returnMs = i;
    op.outcome = event.type;
    if (event.type === 'ok' && 'output' in event) op.output = event.output as Output;
  });
  return operations;
}

/** An operation as the search sees it (built by {@link prepareHistory}). */
export type PreparedOperation<Input, Output> = {
  /** The caller's operation, for reports. */
  operation: Operation<Input, Output>;
  /** Its index in the caller's history. */
  historyIndex: number;
  /** The output the model is given: {@link unobserved} for an unknown outcome. */
  output: Output | Unobserved;
  callMs: number;
  /** `Infinity` for an unknown outcome: it may take effect at any time after its call. */
  returnMs: number;
  /** True for an `ok` operation, which must be linearized; an unknown one may be left out. */
  required: boolean;
};

/**
 * Validate a history and prepare it for the search: failed operations are dropped, unknown ones
 * return at infinity with an unobserved output. Throws a `TypeError` or `RangeError` naming the
 * first bad field (`history[3].returnMs`).
 *
 * @example
 * ```ts
 * prepareHistory([{ client: 1, callMs: 0, returnMs: null, input: 'inc', outcome: 'ok' }]);
 * // [{ ..., returnMs: Infinity, output: unobserved, required: false }]
 * ```
 */
export function prepareHistory<Input, Output>(
  history: readonly Operation<Input, Output>[],
): PreparedOperation<Input, Output>[] {
  if (!Array.isArray(history)) {
    throw new TypeError(`Invalid history: expected an array of operations, got ${typeof history}`);
  }
  const prepared: PreparedOperation<Input, Output>[] = [];
  history.forEach((op, i) => {
    const where = `history[${i}]`;
    if (typeof op !== 'object' || op === null) {
      throw new TypeError(`Invalid operation ${where}: expected an object`);
    }
    if (typeof op.client !== 'number' && typeof op.client !== 'string') {
      throw new TypeError(`Invalid operation ${where}.client: expected a number or a string`);
    }
    if (typeof op.callMs !== 'number' || !Number.isFinite(op.callMs)) {
      throw new TypeError(`Invalid operation ${where}.callMs: expected a finite number`);
    }
    if (op.outcome !== 'ok' && op.outcome !== 'fail' && op.outcome !== 'unknown') {
      throw new TypeError(`Invalid operation ${where}.outcome: expected 'ok', 'fail' or 'unknown'`);
    }
    if (op.returnMs !== null) {
      if (typeof op.returnMs !== 'number' || !Number.isFinite(op.returnMs)) {
        throw new TypeError(
          `Invalid operation ${where}.returnMs: expected a finite number or null`,
        );
      }
      if (op.returnMs < op.callMs) {
        throw new RangeError(
          `Invalid operation ${where}.returnMs: ${op.returnMs} is before callMs ${op.callMs}`,
        );
      }
    }
    if (op.outcome === 'fail') return; // Certainly no effect: nothing to linearize.
    const known = op.outcome === 'ok' && op.returnMs !== null;
    prepared.push({
      operation: op,
      historyIndex: i,
      output: known ? op.output as Output : unobserved,
      callMs: op.callMs,
      returnMs: known ? op.returnMs as number : Infinity,
      required: known,
    });
  });
  return prepared;
}
