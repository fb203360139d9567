/**
 * `checkLinearizability`: is a recorded history of concurrent operations explained by some
 * sequential order of them that respects real time (each operation took effect at one instant
 * between its call and its return) and the model? The history is split by the model's
 * `partitionKey`, each partition searched alone (see `search.ts`) within one shared time budget,
 * and a failure comes with the longest order the search could build and the operations that could
 * not come next.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(registerModel<number>(), history, { timeBudgetMs: 5_000 });
 * if (result.verdict === 'not linearizable') console.log(result.failure?.explanation);
 * ```
 * @module
 */
import * as v from 'valibot';
import { parseOptions } from '../../base/validate.ts';
import { type Operation, type PreparedOperation, prepareHistory } from './history.ts';
import { defaultDescribeOperation, type Model, show } from './model.ts';
import { searchPartition, type SearchResult, type StuckPoint } from './search.ts';
import type { MemoryBudget } from './visited.ts';

/** The answer: `unknown` when the time budget (or the memory budget) ran out first. */
export type Verdict = 'linearizable' | 'not linearizable' | 'unknown';

/**
 * How long the check may take. Both limits turn into verdict `unknown`, never into a hang or an
 * out-of-memory crash.
 *
 * @example
 * ```ts
 * const options: CheckOptions = { timeBudgetMs: 2_000 };
 * ```
 */
export type CheckOptions = {
  /**
   * Wall-clock milliseconds for the whole check, all partitions together. Default 10 000. A
   * linearizable history of a few thousand operations per key usually takes milliseconds; the
   * search is exponential only in how many operations overlap one another.
   */
  timeBudgetMs?: number;
  /**
   * Bytes the search may use to remember where it has been, all partitions together (each entry
   * takes some 20 bytes plus 4 per 32 operations of its partition, each distinct state some 64
   * plus its key's length). Default 256 MiB.
   */
  cacheBytesMax?: number;
  /**
   * Check every partition even after one is found not linearizable, to report every failing
   * key. Default false: the first failure settles the verdict, and the partitions still being
   * searched are left with verdict `unknown`.
   */
  allPartitions?: boolean;
};

const CheckOptionsSchema = v.strictObject({
  timeBudgetMs: v.optional(
    v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(24 * 3_600_000)),
    10_000,
  ),
  cacheBytesMax: v.optional(
    v.pipe(v.number(), v.safeInteger(), v.minValue(1 << 20), v.maxValue(2 ** 40)),
    256 * 2 ** 20,
  ),
  allPartitions: v.optional(v.boolean(), false),
});

/**
 * Search iterations a partition runs before the next partition gets its turn (a millisecond or
 * so): partitions share the time round-robin, so one hard key cannot starve an easy failing one,
 * and the clock is read between turns.
 */
const sliceSteps = 4096;

/**
 * Why a partition is not linearizable: where the search got furthest.
 *
 * @example
 * ```ts
 * if (result.failure !== null) console.log(result.failure.explanation);
 * ```
 */
export type LinearizabilityFailure<Input, Output> = {
  /** The partition (`null` when the model does not partition). */
  key: string | null;
  /**
   * The longest sequence of operations the search could linearize (counting the completed
   * ones; those of unknown outcome it includes are ones it needed to get there), in order.
   */
  longestPrefix: Operation<Input, Output>[];
  /** The model state after it. */
  state: unknown;
  /** The operation that returned before it, or anything else, could be linearized next. */
  blocked: Operation<Input, Output>;
  /**
   * Everything that could have come next, `blocked` included: `rejected` when the model refuses
   * it in `state`, otherwise it is allowed but nothing after it works out.
   */
  candidates: { operation: Operation<Input, Output>; rejected: boolean }[];
  /** All of the above as text for a test failure message. */
  explanation: string;
};

/**
 * The verdict of one partition.
 *
 * @example
 * ```ts
 * for (const p of result.partitions) console.log(p.key, p.verdict, `${p.elapsedMs} ms`);
 * ```
 */
export type PartitionResult<Input, Output> = {
  /** The `partitionKey` of its operations; `null` when the model does not partition. */
  key: string | null;
  verdict: Verdict;
  /** Operations checked (failed ones are dropped), and how many of them had unknown outcomes. */
  operationCount: number;
  unknownCount: number;
  elapsedMs: number;
  /** Iterations of the search loop: a measure of the work, independent of the machine. */
  steps: number;
  /** For a linearizable partition, one order that explains it (unknown operations left out never took effect). */
  linearization: Operation<Input, Output>[] | null;
  failure: LinearizabilityFailure<Input, Output> | null;
  /** Why the verdict is `unknown`. */
  reason: string | null;
};

/**
 * The verdict on a whole history: `not linearizable` if any partition is, else `unknown` if any
 * partition ran out of budget, else `linearizable`.
 *
 * @example
 * ```ts
 * assert.is(result.verdict, 'linearizable', result.failure?.explanation ?? result.reason ?? '');
 * ```
 */
export type LinearizabilityResult<Input, Output> = {
  verdict: Verdict;
  elapsedMs: number;
  /** Operations checked, all partitions together (failed ones are dropped). */
  operationCount: number;
  /** Every partition, in key order. All are checked, so every failing key is reported. */
  partitions: PartitionResult<Input, Output>[];
  /** The first failing partition's evidence. */
  failure: LinearizabilityFailure<Input, Output> | null;
  /** Why the verdict is `unknown`. */
  reason: string | null;
};

/** Operations listed at most in an explanation (the end of the prefix, the candidates). */
const explanationOperationsMax = 12;

/**
 * Check that `history` is linearizable with respect to `model`. Never hangs: past
 * `timeBudgetMs` the verdict is `unknown`. Throws a `TypeError` or `RangeError` for a malformed
 * history or a bad option, naming it.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(registerModel<number>(), [
 *   { client: 1, callMs: 0, returnMs: 10, input: { f: 'write', value: 1 }, outcome: 'ok' },
 *   { client: 2, callMs: 2, returnMs: 4, input: { f: 'read' }, output: 1, outcome: 'ok' },
 *   { client: 3, callMs: 5, returnMs: null, input: { f: 'write', value: 2 }, outcome: 'unknown' },
 * ]);
 * result.verdict; // 'linearizable'
 * ```
 */
export function checkLinearizability<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): LinearizabilityResult<Input, Output> {
  const startMs = performance.now();
  const o = parseOptions(CheckOptionsSchema, options, 'checkLinearizability');
  if (typeof model?.init !== 'function' || typeof model.step !== 'function') {
    throw new TypeError('Invalid model for checkLinearizability: init and step must be functions');
  }
  const deadlineMs = startMs + o.timeBudgetMs;
  const prepared = prepareHistory(history);
  const budget: MemoryBudget = { bytesMax: o.cacheBytesMax, bytesUsed: 0 };
  type Search = {
    result: PartitionResult<Input, Output>;
    ops: PreparedOperation<Input, Output>[];
    search: Generator<number, SearchResult<State>, void>;
    done: boolean;
  };
  const searches: Search[] = partition(model, prepared).map(([key, ops]) => ({
    result: {
      key,
      verdict: 'unknown',
      operationCount: ops.length,
      unknownCount: ops.filter((op) => !op.required).length,
      elapsedMs: 0,
      steps: 0,
      linearization: null,
      failure: null,
      reason: null,
    },
    ops,
    search: searchPartition(model, ops, budget, sliceSteps),
    done: false,
  }));
  let active = searches;
  let stopReason: string | null = null;
  // Round-robin turns until every search has ended; bounded by the deadline.
  while (active.length > 0 && stopReason === null) {
    for (const s of active) {
      const turnStartMs = performance.now();
      const next = s.search.next();
      const turnEndMs = performance.now();
      s.result.elapsedMs += turnEndMs - turnStartMs;
      if (next.done) {
        s.done = true;
        settle(model, s.result, s.ops, next.value);
        if (next.value.verdict === 'not linearizable' && !o.allPartitions) {
          stopReason = `not checked further: ${describeKey(s.result.key)} is not linearizable`;
        }
      } else {
        s.result.steps = next.value;
      }
      if (turnEndMs >= deadlineMs) stopReason ??= 'time budget ran out';
      if (stopReason !== null) break;
    }
    active = active.filter((s) => !s.done);
  }
  for (const s of active) {
    s.search.return(undefined as never); // Runs its `finally`, which gives its memory back.
    s.result.reason = stopReason;
  }
  const partitions = searches.map((s) => s.result);
  const failed = partitions.find((p) => p.verdict === 'not linearizable');
  const unknown = partitions.find((p) => p.verdict === 'unknown');
  const verdict: Verdict = failed ? 'not linearizable' : unknown ? 'unknown' : 'linearizable';
  return {
    verdict,
    elapsedMs: performance.now() - startMs,
    operationCount: prepared.length,
    partitions,
    failure: failed?.failure ?? null,
    reason: verdict === 'unknown' && unknown ? unknownReason(unknown, o) : null,
  };
}

/** Why the verdict is unknown, with the budgets it had. */
function unknownReason(
  p: { key: string | null; reason: string | null },
  o: { timeBudgetMs: number; cacheBytesMax: number },
): string {
  const budgets = `budgets: ${o.timeBudgetMs} ms, ${o.cacheBytesMax} bytes`;
  return `${describeKey(p.key)}: ${p.reason ?? 'unfinished'} (${budgets})`;
}

/** Record a finished search's result. */
function settle<State, Input, Output>(
  model: Model<State, Input, Output>,
  result: PartitionResult<Input, Output>,
  ops: PreparedOperation<Input, Output>[],
  r: SearchResult<State>,
): void {
  result.verdict = r.verdict;
  result.steps = r.steps;
  if (r.verdict === 'linearizable') result.linearization = r.order.map((i) => ops[i]!.operation);
  else if (r.verdict === 'not linearizable') {
    result.failure = failure(model, result.key, ops, r.stuck);
  } else result.reason = r.reason;
}

/** Split by the model's partition key, keys in sorted order; one partition without one. */
function partition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: PreparedOperation<Input, Output>[],
): [string | null, PreparedOperation<Input, Output>[]][] {
  if (model.partitionKey === undefined) return [[null, ops]];
  const byKey = new Map<string, PreparedOperation<Input, Output>[]>();
  for (const op of ops) {
    const key = model.partitionKey(op.operation.input);
    if (typeof key !== 'string') {
      const where = `history[${op.historyIndex}]`;
      throw new TypeError(
        `Invalid partition key for ${where}: expected a string, got ${show(key)}`,
      );
    }
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [op]);
    else list.push(op);
  }
  return [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The search's stuck point in the caller's terms, with a text explanation. */
function failure<State, Input, Output>(
  model: Model<State, Input, Output>,
  key: string | null,
  ops: PreparedOperation<Input, Output>[],
  stuck: StuckPoint<State>,
): LinearizabilityFailure<Input, Output> {
  const describeOp = (i: number): string => {
    const op = ops[i]!;
    const text = model.describeOperation?.(op.operation.input, op.output) ??
      defaultDescribeOperation(op.operation.input, op.output);
    const returned = Number.isFinite(op.returnMs) ? String(op.returnMs) : '?';
    return `client ${op.operation.client}: ${text}  [${op.callMs}, ${returned}]`;
  };
  const stateText = model.describeState?.(stuck.state) ?? show(stuck.state);
  const where = `${model.name ?? 'model'}, ${describeKey(key)}`;
  const requiredTotal = ops.filter((op) => op.required).length;
  const unknownUsed = stuck.prefix.length - stuck.requiredCount;
  const progress = `after ${stuck.requiredCount} of ${requiredTotal} completed operations` +
    (unknownUsed > 0 ? ` and ${unknownUsed} of unknown outcome` : '');
  const candidatesShown = stuck.candidates.slice(0, explanationOperationsMax);
  const candidatesLeft = stuck.candidates.length - candidatesShown.length;
  const prefixShown = stuck.prefix.slice(-explanationOperationsMax);
  const prefixTail = prefixShown.length < stuck.prefix.length
    ? ` (its last ${prefixShown.length})`
    : '';
  const verdictOn = (rejected: boolean): string =>
    rejected
      ? `not allowed in state ${stateText}`
      : 'allowed, but no linearization goes on from it';
  const lines = [
    `Not linearizable: ${where}: ${progress} the state is ${stateText}, and nothing can be linearized before this one returns:`,
    `  ${describeOp(stuck.blocked)}`,
    `Operations that could have come next (${stuck.candidates.length}):`,
    ...candidatesShown.map((c) => `  ${describeOp(c.index)}: ${verdictOn(c.rejected)}`),
    ...(candidatesLeft > 0 ? [`  (${candidatesLeft} more)`] : []),
    `Longest linearizable prefix${prefixTail}:`,
    ...(prefixShown.length === 0 ? ['  (none)'] : prefixShown.map((i) => `  ${describeOp(i)}`)),
  ];
  return {
    key,
    longestPrefix: stuck.prefix.map((i) => ops[i]!.operation),
    state: stuck.state,
    blocked: ops[stuck.blocked]!.operation,
    candidates: stuck.candidates.map((c) => ({
      operation: ops[c.index]!.operation,
      rejected: c.rejected,
    })),
    explanation: lines.join('\n'),
  };
}

function describeKey(key: string | null): string {
  return key === null ? 'the whole history' : `key ${JSON.stringify(key)}`;
}
