/**
 * The search for a linearization of one partition: Wing & Gong's depth-first search with Lowe's
 * memoisation ("Testing for linearizability", 2017), as the porcupine checker does it.
 *
 * The history is a doubly linked list of call and return events in time order. The search walks
 * it from the head: at a call it tries to linearize that operation next (the model must accept
 * it from the current state); if so the operation's call and return are unlinked ("lifted") and
 * the walk restarts at the head. Reaching a return means that operation returned before anything
 * still in the list could be linearized in its place: the last choice is undone (backtracking)
 * and the walk goes on past it. Every (set of linearized operations, model state) reached is
 * remembered; reaching one again is a dead end, since what can follow depends only on those two.
 *
 * Unknown outcomes: such an operation has a call event and no return event (it returns at
 * infinity), so the walk never gets stuck on it, and the search ends as soon as every required
 * (`ok`) operation is linearized; unknown operations not linearized by then never took effect.
 * (Porcupine instead gives them a return at the end and must linearize them all. That is
 * equivalent when the model accepts any operation with an unobserved output from any state,
 * since they can then all go last; this way needs no such assumption.) Because an unknown
 * operation stays a candidate for the rest of the history, each one could double the space
 * searched; three rules, each keeping some linearization whenever there is one, stop that:
 * - Required first: at each point the required candidates are tried before the unknown ones,
 *   so an unknown operation is only applied where nothing else gets further.
 * - No no-ops: an unknown operation that would leave the state as it is is not applied (leaving
 *   it out of that linearization changes nothing).
 * - Twins in call order: of unknown operations with equal inputs (plain data), a later one is
 *   applied only once the earlier ones are (they are interchangeable: neither has a return to
 *   respect, and the earlier was called first).
 *
 * @example
 * ```ts
 * const ops = prepareHistory(history);
 * const search = searchPartition(registerModel(), ops, { bytesMax: 1 << 26, bytesUsed: 0 }, 1024);
 * let r = search.next();
 * while (!r.done && performance.now() < deadlineMs) r = search.next();
 * ```
 * @module
 */
import { assert } from '../../base/errors.ts';
import type { PreparedOperation } from './history.ts';
import type { Model, Unobserved } from './model.ts';
import { type MemoryBudget, memoryFull, StateIds, VisitedSet } from './visited.ts';

/**
 * Where the search got furthest before it had to give up on a history that is not linearizable:
 * the prefix with the most required operations it could linearize, and why nothing could come
 * next.
 */
export type StuckPoint<State> = {
  /** Indexes (into the partition's operations) of the longest linearized prefix, in order. */
  prefix: number[];
  /** How many operations of the prefix are required ones (the rest had unknown outcomes). */
  requiredCount: number;
  /** The model state after that prefix. */
  state: State;
  /** The operation that returned before it, or anything in its place, could be linearized. */
  blocked: number;
  /**
   * The operations that could have come next (called before `blocked` returned, not yet
   * linearized; `blocked` among them), each with whether the model refuses it in `state`
   * (otherwise it is allowed, but nothing that follows it works out).
   */
  candidates: { index: number; rejected: boolean }[];
};

/** What the search found for one partition. */
export type SearchResult<State> =
  | { verdict: 'linearizable'; order: number[]; steps: number }
  | { verdict: 'not linearizable'; stuck: StuckPoint<State>; steps: number }
  | { verdict: 'unknown'; reason: string; steps: number };

type Node<Input, Output> = {
  /** Index of the operation in the partition's list. */
  index: number;
  call: boolean;
  input: Input;
  output: Output | Unobserved;
  required: boolean;
  /**
   * For an unknown operation: the unknown operation with an equal input called just before it
   * (it must be linearized first), or -1.
   */
  twin: number;
  /** On a call: its return, or null when it returns at infinity (unknown outcome). */
  match: Node<Input, Output> | null;
  prev: Node<Input, Output> | null;
  next: Node<Input, Output> | null;
};

/**
 * Search for a linearization of `ops` (one partition) under `model`. A generator, so that the
 * caller can share time between partitions and stop at a deadline: it pauses every `sliceSteps`
 * iterations (yielding the iterations so far) and returns the result. Its memory is counted
 * against `budget` and given back when it ends, or when the caller calls `return()` on it.
 *
 * @example
 * ```ts
 * const search = searchPartition(model, ops, { bytesMax: 1 << 26, bytesUsed: 0 }, 1024);
 * let r = search.next();
 * while (!r.done) r = search.next();
 * if (r.value.verdict === 'linearizable') console.log(r.value.order.map((i) => ops[i]));
 * ```
 */
export function* searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly PreparedOperation<Input, Output>[],
  budget: MemoryBudget,
  sliceSteps: number,
): Generator<number, SearchResult<State>, void> {
  const states = new StateIds(model.key?.bind(model), budget);
  const visited = new VisitedSet(Math.ceil(ops.length / 32), budget);
  try {
    return yield* search(model, ops, states, visited, sliceSteps);
  } finally {
    states.release();
    visited.release();
  }
}

function* search<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly PreparedOperation<Input, Output>[],
  states: StateIds<State>,
  visited: VisitedSet,
  sliceSteps: number,
): Generator<number, SearchResult<State>, void> {
  const head = linkEvents(ops);
  const linearized = new Uint32Array(Math.max(1, Math.ceil(ops.length / 32)));
  const zobrist = zobristValues(ops.length);
  /** XOR of the Zobrist values of the linearized operations: a hash of `linearized`. */
  let linearizedHash = 0;
  /** The choices made, each with what to restore when it is undone. */
  const stack: {
    node: Node<Input, Output>;
    state: State;
    stateId: number;
    requiredPass: boolean;
    unknownSeen: boolean;
  }[] = [];
  const requiredCount = ops.filter((op) => op.required).length;
  let requiredLeft = requiredCount;
  let stuck: StuckPoint<State> | null = null;
  let state = model.init();
  const initialId = states.id(state);
  if (initialId === memoryFull) return full(0);
  let stateId = initialId;
  /** This walk considers required operations (first), then unknown ones. */
  let requiredPass = true;
  /** This walk passed an unknown candidate (so the second pass is worth it). */
  let unknownSeen = false;
  let steps = 0;
  let sliceEndSteps = sliceSteps;
  if (requiredLeft === 0) return { verdict: 'linearizable', order: [], steps };

  let entry = head.next;
  // Bounded by the caller, who stops calling next() at its deadline; and by the memory budget:
  // every iteration linearizes (adding an entry to `visited`), backtracks, or moves along.
  for (;; steps++) {
    if (steps === sliceEndSteps) {
      yield steps;
      sliceEndSteps += sliceSteps;
    }
    // A required operation not yet linearized always has its return ahead of the walk.
    assert(entry !== null, 'Linearizability search walked past the last return');
    if (entry.call) {
      if (entry.required !== requiredPass) {
        if (!entry.required) unknownSeen = true;
        entry = entry.next;
        continue;
      }
      if (entry.twin >= 0 && (linearized[entry.twin >>> 5]! & (1 << (entry.twin & 31))) === 0) {
        entry = entry.next; // Its earlier twin is still a candidate: that one goes first.
        continue;
      }
      const next = model.step(state, entry.input, entry.output);
      if (next !== undefined) {
        const nextId = states.id(next);
        if (nextId === memoryFull) return full(steps);
        if (entry.required || nextId !== stateId) {
          const word = entry.index >>> 5;
          const bit = 1 << (entry.index & 31);
          linearized[word]! |= bit;
          linearizedHash ^= zobrist[entry.index]!;
          const added = visited.add(linearized, linearizedHash, nextId);
          if (added === memoryFull) return full(steps);
          if (added) {
            stack.push({ node: entry, state, stateId, requiredPass, unknownSeen });
            state = next;
            stateId = nextId;
            lift(entry);
            if (entry.required && --requiredLeft === 0) {
              return { verdict: 'linearizable', order: stack.map((s) => s.node.index), steps };
            }
            requiredPass = true;
            unknownSeen = false;
            entry = head.next;
            continue;
          }
          // Seen before: everything that can follow was already explored.
          linearized[word]! &= ~bit;
          linearizedHash ^= zobrist[entry.index]!;
        }
      }
      entry = entry.next;
      continue;
    }
    // A return: this operation returned, and no candidate of this pass before it can be
    // linearized from here. Try the unknown candidates, or else the prefix leads nowhere.
    if (requiredPass && unknownSeen) {
      requiredPass = false;
      entry = head.next;
      continue;
    }
    // The furthest point is the one with the most required operations linearized, and of those
    // the one with the fewest unknown ones: they pad a prefix without explaining anything.
    const requiredDone = requiredCount - requiredLeft;
    if (
      stuck === null || requiredDone > stuck.requiredCount ||
      (requiredDone === stuck.requiredCount && stack.length < stuck.prefix.length)
    ) {
      const prefix = stack.map((s) => s.node.index);
      stuck = stuckPoint(model, head, entry, prefix, requiredDone, state);
    }
    const top = stack.pop();
    if (top === undefined) return { verdict: 'not linearizable', stuck, steps };
    entry = top.node;
    state = top.state;
    stateId = top.stateId;
    requiredPass = top.requiredPass;
    unknownSeen = top.unknownSeen;
    linearized[entry.index >>> 5]! &= ~(1 << (entry.index & 31));
    linearizedHash ^= zobrist[entry.index]!;
    unlift(entry);
    if (entry.required) requiredLeft++;
    entry = entry.next;
  }

  function full(steps: number): SearchResult<State> {
    return {
      verdict: 'unknown',
      reason: `memory budget ran out after ${visited.size} search states`,
      steps,
    };
  }
}

/** The event list: calls and returns by time, a call before a return at the same time. */
function linkEvents<Input, Output>(
  ops: readonly PreparedOperation<Input, Output>[],
): Node<Input, Output> {
  const nodes: { time: number; node: Node<Input, Output> }[] = [];
  const twins = twinsOf(ops);
  ops.forEach((op, index) => {
    const base: Pick<Node<Input, Output>, 'index' | 'input' | 'output' | 'required' | 'twin'> = {
      index,
      input: op.operation.input,
      output: op.output,
      required: op.required,
      twin: twins[index]!,
    };
    const ret: Node<Input, Output> | null = Number.isFinite(op.returnMs)
      ? { ...base, call: false, match: null, prev: null, next: null }
      : null;
    nodes.push({
      time: op.callMs,
      node: { ...base, call: true, match: ret, prev: null, next: null },
    });
    if (ret !== null) nodes.push({ time: op.returnMs, node: ret });
  });
  // Calls first at equal times: operations that touch are concurrent, the permissive reading.
  nodes.sort((a, b) =>
    a.time - b.time || Number(b.node.call) - Number(a.node.call) || a.node.index - b.node.index
  );
  const head: Node<Input, Output> = {
    index: -1,
    call: false,
    input: undefined as Input,
    output: undefined as Output,
    required: false,
    twin: -1,
    match: null,
    prev: null,
    next: null,
  };
  let last = head;
  for (const { node } of nodes) {
    last.next = node;
    node.prev = last;
    last = node;
  }
  return head;
}

/**
 * Per operation, for an unknown one: the unknown operation with an equal input (as plain data)
 * called most recently before it, or -1.
 */
function twinsOf<Input, Output>(ops: readonly PreparedOperation<Input, Output>[]): number[] {
  const twins = ops.map(() => -1);
  const unknown = ops.map((op, index) => ({ op, index })).filter(({ op }) => !op.required);
  unknown.sort((a, b) => a.op.callMs - b.op.callMs || a.index - b.index);
  const lastByInput = new Map<string, number>();
  for (const { op, index } of unknown) {
    const key = plainDataKey(op.operation.input, 0);
    if (key === null) continue;
    const previous = lastByInput.get(key);
    if (previous !== undefined) twins[index] = previous;
    lastByInput.set(key, index);
  }
  return twins;
}

/** How deep {@link plainDataKey} looks into nested data before giving up. */
const plainDataDepthMax = 8;

/**
 * A text equal for equal plain data (primitives, arrays, objects with the plain prototype), or
 * null for anything else (whose equality JSON cannot see: Maps, class instances, functions).
 */
function plainDataKey(value: unknown, depth: number): string | null {
  if (depth > plainDataDepthMax) return null;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? String(value) : null;
    case 'boolean':
      return String(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        const items = value.map((item) => plainDataKey(item, depth + 1));
        return items.includes(null) ? null : `[${items.join(',')}]`;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return null;
      const fields: string[] = [];
      for (const k of Object.keys(value).sort()) {
        const field = plainDataKey((value as Record<string, unknown>)[k], depth + 1);
        if (field === null) return null;
        fields.push(`${JSON.stringify(k)}:${field}`);
      }
      return `{${fields.join(',')}}`;
    }
    default:
      // undefined, bigint, symbol, function: not worth the risk of a wrong equality.
      return null;
  }
}

/** Unlink a call and its return (the operation is linearized). */
function lift<Input, Output>(call: Node<Input, Output>): void {
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.match;
  if (ret === null) return;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Relink what {@link lift} unlinked, in the reverse order (the nodes kept their own links). */
function unlift<Input, Output>(call: Node<Input, Output>): void {
  const ret = call.match;
  if (ret !== null) {
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
  }
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

/** Fixed pseudo-random 32-bit values, one per operation (splitmix32), for hashing sets. */
function zobristValues(count: number): Int32Array {
  const values = new Int32Array(count);
  let seed = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    seed = (seed + 0x9e3779b9) | 0;
    let z = seed;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    values[i] = z ^ (z >>> 16);
  }
  return values;
}

/** The evidence at a return the search could not get past. */
function stuckPoint<State, Input, Output>(
  model: Model<State, Input, Output>,
  head: Node<Input, Output>,
  blocked: Node<Input, Output>,
  prefix: number[],
  requiredCount: number,
  state: State,
): StuckPoint<State> {
  const candidates: { index: number; rejected: boolean }[] = [];
  for (let n = head.next; n !== null && n !== blocked; n = n.next) {
    if (!n.call) continue;
    candidates.push({
      index: n.index,
      rejected: model.step(state, n.input, n.output) === undefined,
    });
  }
  return { prefix, requiredCount, state, blocked: blocked.index, candidates };
}
