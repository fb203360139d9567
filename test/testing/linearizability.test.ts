// The linearizability checker: recorded Jepsen histories (etcd, and a many-key store) get their
// known verdicts in bounded time; hand-written histories pin down unknown and failed outcomes,
// stale reads, compare-and-set, user models, partitioning, the time budget and bad input; and
// the pruned search agrees with brute force on random small histories.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkLinearizability,
  type KeyValueInput,
  keyValueModel,
  type KeyValueOutput,
  type Model,
  type Operation,
  operationsFromEvents,
  type RegisterInput,
  registerModel,
  type RegisterOutput,
  seededRandom,
  unobserved,
  type Verdict,
} from '../../lib/testing/mod.ts';
import { repoRoot } from '../support/child.ts';
import { parseEdnHistory } from '../support/edn-history.ts';
import { parseJepsenLog } from '../support/jepsen-log.ts';

type RegisterOp = Operation<RegisterInput<number>, RegisterOutput<number>>;
type KvOp = Operation<KeyValueInput, KeyValueOutput>;

const fixturesDir = join(repoRoot, '..', 'shared', 'fixtures', 'linearizability');
/** Per fixture; the slowest takes well under a second, so this only bounds a regression. */
const fixtureTimeBudgetMs = 10_000;

function fixtureVerdicts(folder: string): [string, boolean][] {
  const expectedPath = join(fixturesDir, 'expected.json');
  if (!existsSync(expectedPath)) {
    assert.unreachable(
      `Linearizability fixtures missing: ${expectedPath} not found (the folder ${fixturesDir} should hold README.md, expected.json, jepsen-etcd/*.log and kv/*.txt)`,
    );
  }
  const expected = JSON.parse(readFileSync(expectedPath, 'utf8')) as Record<
    string,
    Record<string, boolean>
  >;
  return Object.entries(expected[folder] ?? {});
}

type Checked = { verdict: Verdict; elapsedMs: number; reason: string | null };

function checkFixtures(folder: string, check: (text: string) => Checked): void {
  const verdicts = fixtureVerdicts(folder);
  let totalMs = 0;
  let slowest = { file: '', ms: 0 };
  const wrong: string[] = [];
  for (const [file, linearizable] of verdicts) {
    const path = join(fixturesDir, folder, file);
    if (!existsSync(path)) assert.unreachable(`Linearizability fixture missing: ${path}`);
    const r = check(readFileSync(path, 'utf8'));
    totalMs += r.elapsedMs;
    if (r.elapsedMs > slowest.ms) slowest = { file, ms: r.elapsedMs };
    const want = linearizable ? 'linearizable' : 'not linearizable';
    if (r.verdict !== want) wrong.push(`${file}: ${r.verdict}, expected ${want} ${r.reason ?? ''}`);
  }
  assert.equal(wrong, [], `${wrong.length} wrong verdicts`);
  console.log(
    `  ${folder}: ${verdicts.length}/${verdicts.length} verdicts in ${
      totalMs.toFixed(0)
    } ms, slowest ${slowest.file} ${slowest.ms.toFixed(0)} ms`,
  );
}

// All 102 Jepsen etcd register histories (79 not linearizable) get their expected verdict.
test('jepsen-etcd fixtures: every verdict as expected, none unknown', () => {
  const verdicts = fixtureVerdicts('jepsen-etcd');
  assert.is(verdicts.length, 102, 'expected.json lists 102 etcd histories');
  assert.is(verdicts.filter(([, ok]) => !ok).length, 79);
  checkFixtures(
    'jepsen-etcd',
    (text) =>
      checkLinearizability(registerModel<number>(), parseJepsenLog(text), {
        timeBudgetMs: fixtureTimeBudgetMs,
      }),
  );
});

// The six many-key histories (up to 50 clients) get their expected verdict, thanks to per-key
// partitioning.
test('kv fixtures: every verdict as expected, none unknown', () => {
  assert.is(fixtureVerdicts('kv').length, 6, 'expected.json lists 6 kv histories');
  checkFixtures(
    'kv',
    (text) =>
      checkLinearizability(keyValueModel({ initialValue: '' }), parseEdnHistory(text), {
        timeBudgetMs: fixtureTimeBudgetMs,
      }),
  );
});

// --- Hand-written register histories ------------------------------------------------------

/** Shorthands: an operation of client `client` over [callMs, returnMs]. */
function write(client: number, value: number, callMs: number, returnMs: number | null): RegisterOp {
  return {
    client,
    callMs,
    returnMs,
    input: { f: 'write', value },
    outcome: returnMs === null ? 'unknown' : 'ok',
  };
}
function read(client: number, value: number | null, callMs: number, returnMs: number): RegisterOp {
  return { client, callMs, returnMs, input: { f: 'read' }, output: value, outcome: 'ok' };
}
function cas(
  client: number,
  from: number | null,
  to: number,
  ok: boolean | null,
  callMs: number,
  returnMs: number | null,
): RegisterOp {
  return ok === null
    ? { client, callMs, returnMs, input: { f: 'cas', from, to }, outcome: 'unknown' }
    : { client, callMs, returnMs, input: { f: 'cas', from, to }, output: ok, outcome: 'ok' };
}
const register = registerModel<number>();
const verdictOf = (history: RegisterOp[]): Verdict =>
  checkLinearizability(register, history).verdict;

// Overlapping operations may take effect in either order; a witness order is returned.
test('a concurrent register history is linearizable, with a witness order', () => {
  const history = [write(1, 1, 0, 10), read(2, null, 1, 3), read(3, 1, 2, 12), write(2, 2, 11, 20)];
  const r = checkLinearizability(register, history);
  assert.is(r.verdict, 'linearizable');
  assert.is(r.partitions.length, 1);
  assert.equal(r.partitions[0]!.linearization, [history[1], history[0], history[2], history[3]]);
  assert.is(r.failure, null);
});

// A read that sees an overwritten value after the overwrite completed is caught.
test('a register history with an impossible read is not linearizable', () => {
  const history = [write(1, 1, 0, 10), write(2, 2, 11, 20), read(3, 1, 21, 30)];
  assert.is(verdictOf(history), 'not linearizable');
  // The same read overlapping the second write is fine.
  assert.is(
    verdictOf([write(1, 1, 0, 10), write(2, 2, 11, 20), read(3, 1, 15, 30)]),
    'linearizable',
  );
});

// A stale read (nil after a completed write) is reported with the stuck point as evidence.
test('a stale read is caught, and the evidence names it', () => {
  const stale = read(2, null, 20, 30);
  const r = checkLinearizability(register, [write(1, 1, 0, 10), stale]);
  assert.is(r.verdict, 'not linearizable');
  const f = r.failure!;
  assert.is(f.key, null);
  assert.is(f.blocked, stale);
  assert.equal(f.longestPrefix.map((op) => op.input), [{ f: 'write', value: 1 }]);
  assert.is(f.state, 1);
  assert.equal(f.candidates, [{ operation: stale, rejected: true }]);
  assert.match(f.explanation, 'client 2: read → null  [20, 30]: not allowed in state 1');
});

// An unknown write may have happened (a later read sees it) or not (no read ever does).
test('an unknown-outcome write may or may not have taken effect', () => {
  assert.is(verdictOf([write(1, 5, 0, null), read(2, 5, 100, 110)]), 'linearizable');
  assert.is(verdictOf([write(1, 5, 0, null), read(2, null, 100, 110)]), 'linearizable');
  // Both at once: it happened between the two reads.
  assert.is(
    verdictOf([write(1, 5, 0, null), read(2, null, 1, 2), read(2, 5, 3, 4)]),
    'linearizable',
  );
  // Once seen it stays: it cannot be undone.
  assert.is(
    verdictOf([write(1, 5, 0, null), read(2, 5, 1, 2), read(2, null, 3, 4)]),
    'not linearizable',
  );
  // It cannot take effect before it was called.
  assert.is(verdictOf([read(2, 5, 0, 10), write(1, 5, 20, null)]), 'not linearizable');
  // An unknown outcome with a recorded return time may still take effect later.
  const late: RegisterOp = { ...write(1, 5, 0, 10), outcome: 'unknown' };
  assert.is(verdictOf([late, read(2, null, 20, 30), read(2, 5, 40, 50)]), 'linearizable');
});

// A failed operation certainly had no effect: it is dropped.
test('a failed write is dropped', () => {
  const failed: RegisterOp = { ...write(1, 5, 0, 10), outcome: 'fail' };
  assert.is(verdictOf([failed, read(2, 5, 20, 30)]), 'not linearizable');
  assert.is(verdictOf([failed, read(2, null, 20, 30)]), 'linearizable');
  assert.is(checkLinearizability(register, [failed]).operationCount, 0);
});

// A cas that returned false had no effect and claims the value differed; an unknown one may
// have taken effect.
test('compare-and-set: false is checked, unknown is either', () => {
  assert.is(verdictOf([cas(1, null, 1, false, 0, 10)]), 'not linearizable');
  assert.is(verdictOf([cas(1, 3, 1, false, 0, 10), read(2, null, 20, 30)]), 'linearizable');
  assert.is(verdictOf([cas(1, null, 1, true, 0, 10), read(2, 1, 20, 30)]), 'linearizable');
  assert.is(verdictOf([write(1, 2, 0, 10), cas(1, 1, 3, true, 20, 30)]), 'not linearizable');
  assert.is(verdictOf([cas(1, null, 7, null, 0, null), read(2, 7, 20, 30)]), 'linearizable');
  assert.is(verdictOf([cas(1, null, 7, null, 0, null), read(2, null, 20, 30)]), 'linearizable');
  // The unknown cas met 2, not null, so it could not have set 7.
  assert.is(
    verdictOf([write(1, 2, 0, 10), cas(2, null, 7, null, 20, null), read(3, 7, 30, 40)]),
    'not linearizable',
  );
});

// --- Models of one's own -----------------------------------------------------------------

type QueueInput = { f: 'enqueue'; value: number } | { f: 'dequeue' };
/** A FIFO queue; `dequeue` returns the head or null when empty. */
const queueModel: Model<readonly number[], QueueInput, number | null | undefined> = {
  name: 'queue',
  init: () => [],
  step: (items, input, output) => {
    if (input.f === 'enqueue') return [...items, input.value];
    const head = items[0] ?? null;
    if (output !== unobserved && output !== head) return undefined;
    return items.slice(1);
  },
  describeState: (items) => `[${items.join(', ')}]`,
};

// A user-defined queue model: FIFO order is enforced, concurrency allows either order.
test('a user-defined queue model', () => {
  const enq = (client: number, value: number, callMs: number, returnMs: number) => ({
    client,
    callMs,
    returnMs,
    input: { f: 'enqueue', value } as QueueInput,
    outcome: 'ok' as const,
  });
  const deq = (client: number, value: number | null, callMs: number, returnMs: number) => ({
    client,
    callMs,
    returnMs,
    input: { f: 'dequeue' } as QueueInput,
    output: value,
    outcome: 'ok' as const,
  });
  const inOrder = [enq(1, 1, 0, 10), enq(1, 2, 11, 20), deq(2, 1, 21, 30), deq(2, 2, 31, 40)];
  assert.is(checkLinearizability(queueModel, inOrder).verdict, 'linearizable');
  const swapped = [enq(1, 1, 0, 10), enq(1, 2, 11, 20), deq(2, 2, 21, 30)];
  const r = checkLinearizability(queueModel, swapped);
  assert.is(r.verdict, 'not linearizable');
  assert.match(r.failure!.explanation, 'the state is [1, 2]');
  const concurrent = [enq(1, 1, 0, 10), enq(3, 2, 5, 15), deq(2, 2, 21, 30)];
  assert.is(checkLinearizability(queueModel, concurrent).verdict, 'linearizable');
});

// --- Partitions, budgets, bad input ------------------------------------------------------

function kv(client: number, input: KeyValueInput, output: KeyValueOutput, at: number): KvOp {
  return { client, callMs: at, returnMs: at + 5, input, output, outcome: 'ok' };
}

// Each key is checked alone, keys in order; the failing key is named; by default the check
// stops at the first failure, and with allPartitions it reports every failing key.
test('a key-value history is partitioned by key', () => {
  const history = [
    kv(1, { f: 'put', key: 'b', value: 'x' }, undefined, 0),
    kv(2, { f: 'append', key: 'a', value: '1' }, undefined, 0),
    kv(1, { f: 'get', key: 'b' }, 'x', 10),
    kv(2, { f: 'get', key: 'a' }, '1', 10),
    kv(3, { f: 'cas', key: 'a', from: '1', to: '2' }, true, 20),
    kv(3, { f: 'get', key: 'c' }, 'ghost', 20),
    kv(4, { f: 'get', key: 'd' }, 'ghost', 20),
  ];
  const r = checkLinearizability(keyValueModel(), history.slice(0, 5));
  assert.is(r.verdict, 'linearizable');
  assert.equal(r.partitions.map((p) => [p.key, p.operationCount, p.verdict]), [
    ['a', 3, 'linearizable'],
    ['b', 2, 'linearizable'],
  ]);
  const bad = checkLinearizability(keyValueModel(), history);
  assert.is(bad.verdict, 'not linearizable');
  assert.is(bad.failure!.key, 'c');
  assert.match(bad.failure!.explanation, 'key "c"');
  const all = checkLinearizability(keyValueModel(), history, { allPartitions: true });
  assert.equal(
    all.partitions.filter((p) => p.verdict === 'not linearizable').map((p) => p.key),
    ['c', 'd'],
  );
});

/** 40 concurrent writes and a read of a value none wrote: about 2^40 orders to rule out. */
function pathological(): RegisterOp[] {
  const writes = Array.from({ length: 40 }, (_, i) => write(i, i, 0, 100));
  return [...writes, read(40, 999, 0, 100)];
}

// A hopeless search ends promptly with verdict unknown when the time budget runs out.
test('the time budget gives unknown on a pathological history, promptly', () => {
  const startMs = performance.now();
  const r = checkLinearizability(register, pathological(), { timeBudgetMs: 50 });
  const tookMs = performance.now() - startMs;
  assert.is(r.verdict, 'unknown');
  assert.match(r.reason!, 'time budget ran out');
  assert.ok(tookMs < 1_000, `took ${tookMs.toFixed(0)} ms for a 50 ms budget`);
  assert.ok(r.partitions[0]!.steps > 0);
});

// The memory bound gives unknown too, rather than exhausting the process.
test('the memory budget gives unknown on a pathological history', () => {
  const r = checkLinearizability(register, pathological(), { cacheBytesMax: 2 ** 20 });
  assert.is(r.verdict, 'unknown');
  assert.match(r.reason!, 'memory budget ran out');
});

// Bad options and malformed histories are errors naming what is wrong.
test('bad options and malformed histories throw, naming the culprit', () => {
  const ok = [read(1, null, 0, 1)];
  assert.throws(
    () => checkLinearizability(register, ok, { timeBudgetMs: -1 }),
    (e: unknown) => e instanceof RangeError && e.message.includes('timeBudgetMs'),
  );
  assert.throws(
    () => checkLinearizability(register, ok, { timeBudget: 5 } as never),
    (e: unknown) => e instanceof TypeError && e.message.includes('timeBudget'),
  );
  assert.throws(
    () => checkLinearizability(register, [read(1, null, 10, 5)]),
    (e: unknown) => e instanceof RangeError && e.message.includes('history[0].returnMs'),
  );
  assert.throws(
    () => checkLinearizability(register, [{ ...read(1, null, 0, 1), outcome: 'maybe' } as never]),
    (e: unknown) => e instanceof TypeError && e.message.includes('history[0].outcome'),
  );
  assert.throws(
    () => checkLinearizability(register, [{ ...cas(1, 1, 2, true, 0, 1), output: 3 }]),
    (e: unknown) => e instanceof TypeError && e.message.includes('cas output'),
  );
});

// Flat event lists: positions are times, info and never-completed invocations are unknown.
test('operationsFromEvents pairs invocations with completions', () => {
  const ops = operationsFromEvents<string, number>([
    { client: 0, type: 'invoke', input: 'get' },
    { client: 1, type: 'invoke', input: 'inc' },
    { client: 0, type: 'ok', output: 0 },
    { client: 1, type: 'info' },
    { client: 2, type: 'invoke', input: 'inc' },
    { client: 0, type: 'invoke', input: 'reset' },
    { client: 0, type: 'fail' },
  ]);
  assert.equal(ops, [
    { client: 0, callMs: 0, returnMs: 2, input: 'get', output: 0, outcome: 'ok' },
    { client: 1, callMs: 1, returnMs: null, input: 'inc', outcome: 'unknown' },
    { client: 2, callMs: 4, returnMs: null, input: 'inc', outcome: 'unknown' },
    { client: 0, callMs: 5, returnMs: 6, input: 'reset', outcome: 'fail' },
  ]);
  assert.throws(() => operationsFromEvents([{ client: 0, type: 'ok' }]), /events\[0\]/);
  assert.throws(
    () => operationsFromEvents([{ client: 0, type: 'done' } as never]),
    (e: unknown) => e instanceof TypeError && e.message.includes('events[0].type'),
  );
  assert.throws(
    () =>
      operationsFromEvents([
        { client: 0, type: 'invoke', input: 1 },
        { client: 0, type: 'invoke', input: 2 },
      ]),
    /events\[1\].*outstanding/,
  );
});

// The fixture parsers read the README's line shapes: tabs or spaces, failed cas as a checked
// false, timed-out reads dropped, info unknown, noise ignored.
test('the fixture parsers follow the README', () => {
  const log = [
    'INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]',
    'INFO  jepsen.util - 1   :invoke :read   nil',
    'some other line',
    'INFO  jepsen.util - 0\t:fail\t:cas\t[1 2]',
    'INFO  jepsen.util - 1   :fail   :read   :timed-out',
    'INFO  jepsen.util - 2\t:invoke\t:write\t3',
    'INFO  jepsen.util - 2\t:info\t:write\t:timed-out',
    'INFO  jepsen.util - 3\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 3\t:ok\t:read\tnil',
  ].join('\n');
  assert.equal(parseJepsenLog(log).map((op) => [op.input, op.output, op.outcome]), [
    [{ f: 'cas', from: 1, to: 2 }, false, 'ok'],
    [{ f: 'read' }, undefined, 'fail'],
    [{ f: 'write', value: 3 }, undefined, 'unknown'],
    [{ f: 'read' }, null, 'ok'],
  ]);
  const edn = [
    '{:process 0, :type :invoke, :f :append, :key "k", :value "x \\"0\\" y"}',
    '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
    '{:process 0, :type :ok, :f :append, :key "k", :value "x \\"0\\" y"}',
    'not a map',
    '{:process 1, :type :ok, :f :get, :key "k", :value ""}',
    '{:process 2, :type :invoke, :f :put, :key "j", :value "v"}',
  ].join('\n');
  assert.equal(parseEdnHistory(edn).map((op) => [op.input, op.output, op.outcome]), [
    [{ f: 'append', key: 'k', value: 'x "0" y' }, undefined, 'ok'],
    [{ f: 'get', key: 'k' }, '', 'ok'],
    [{ f: 'put', key: 'j', value: 'v' }, undefined, 'unknown'],
  ]);
});

// --- The pruned search against brute force -----------------------------------------------

/** Linearizable by trying every order of every subset of the unknown operations. */
function bruteForce(history: RegisterOp[]): boolean {
  const ops = history.filter((op) => op.outcome !== 'fail');
  const known = (op: RegisterOp) => op.outcome === 'ok' && op.returnMs !== null;
  const used = ops.map(() => false);
  const go = (state: number | null): boolean => {
    if (ops.every((op, i) => used[i] || !known(op))) return true;
    return ops.some((op, i) => {
      if (used[i]) return false;
      // Not before an operation that returned before this one was called.
      if (ops.some((o, j) => !used[j] && known(o) && o.returnMs! < op.callMs)) return false;
      const next = register.step(state, op.input, known(op) ? op.output : unobserved);
      if (next === undefined) return false;
      used[i] = true;
      const found = go(next);
      used[i] = false;
      return found;
    });
  };
  return go(null);
}

// On 1500 random small histories (unknown and failed outcomes, cas, ties) the checker agrees
// with an exhaustive search, both ways.
test('the search agrees with brute force on random small histories', () => {
  const random = seededRandom(2024);
  const pick = (n: number) => Math.floor(random() * n);
  const counts = { linearizable: 0, 'not linearizable': 0 };
  for (let round = 0; round < 1500; round++) {
    const history: RegisterOp[] = [];
    for (let i = 0, n = 2 + pick(6); i < n; i++) {
      const callMs = pick(10);
      const returnMs = callMs + pick(4);
      const outcome = (['ok', 'ok', 'ok', 'unknown', 'fail'] as const)[pick(5)]!;
      const kind = pick(3);
      const input: RegisterInput<number> = kind === 0
        ? { f: 'read' }
        : kind === 1
        ? { f: 'write', value: pick(3) }
        : { f: 'cas', from: pick(3), to: pick(3) };
      const output = kind === 0
        ? [null, 0, 1, 2][pick(4)]!
        : kind === 1
        ? undefined
        : pick(2) === 0;
      history.push({ client: i, callMs, returnMs, input, output, outcome });
    }
    const expected = bruteForce(history) ? 'linearizable' : 'not linearizable';
    const r = checkLinearizability(register, history);
    assert.is(r.verdict, expected, `round ${round}: ${JSON.stringify(history)}`);
    counts[expected]++;
  }
  // Both verdicts were exercised plenty.
  assert.ok(counts.linearizable > 300 && counts['not linearizable'] > 300, JSON.stringify(counts));
});

test.run();
