import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '../../lib/base/messages.ts';
import { type ApplyContext, LogClock, type ScheduledTimer } from '../../lib/state/context.ts';
import { StateMachineExecutor } from '../../lib/state/executor.ts';
import type { Commit, StateMachine } from '../../lib/state/state-machine.ts';
import { commandEntry, configEntry, noopEntry } from './entries.ts';

type TimerCommand =
  | { op: 'timer'; label: string; delayMs: number }
  | { op: 'repeat'; label: string; times: number }
  | { op: 'cancel'; label: string };

/**
 * Schedules timers on command; every firing is appended to `trace` as `label@index/timeMs`. It
 * keeps its pending timers (label, due time) in its state so that `restore` can re-create them,
 * in registration order, as the state-machine contract asks.
 */
class TimerMachine implements StateMachine<TimerCommand, number, null, string[]> {
  readonly trace: string[] = [];
  #pending = new Map<string, { dueTimeMs: number; handle: ScheduledTimer }>();

  apply(commit: Commit<TimerCommand>, context: ApplyContext): number {
    const command = commit.command;
    if (command.op === 'timer') this.#arm(command.label, context.timeMs + command.delayMs, context);
    else if (command.op === 'cancel') {
      const timer = this.#pending.get(command.label);
      this.#pending.delete(command.label);
      return timer?.handle.cancel() === true ? 1 : 0;
    } else {
      let left = command.times;
      const tick = (ctx: ApplyContext) => {
        this.trace.push(`${command.label}@${ctx.index}/${ctx.timeMs}`);
        if (--left > 0) ctx.schedule(0, tick);
      };
      context.schedule(0, tick);
    }
    return this.#pending.size;
  }

  #arm(label: string, dueTimeMs: number, context: ApplyContext): void {
    const handle = context.schedule(dueTimeMs - context.timeMs, (ctx) => {
      this.#pending.delete(label);
      this.trace.push(`${label}@${ctx.index}/${ctx.timeMs}`);
    });
    this.#pending.set(label, { dueTimeMs, handle });
  }

  query(): string[] {
    return this.trace;
  }

  snapshot(): AsyncIterable<Uint8Array> {
    // Map iteration order is registration order: keep it.
    const json = JSON.stringify([...this.#pending].map(([label, t]) => [label, t.dueTimeMs]));
    return (async function* () {
      yield new TextEncoder().encode(json);
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>, context: ApplyContext): Promise<void> {
    let text = '';
    for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
    this.#pending.clear();
    for (const [label, dueTimeMs] of JSON.parse(text) as [string, number][]) {
      this.#arm(label, dueTimeMs, context);
    }
  }
}

/** Entries at log times far from any wall clock, with noop and config entries advancing time too. */
function scenario(): Entry[] {
  return [
    commandEntry(1, { op: 'timer', label: 'b', delayMs: 50 }, 1_000),
    commandEntry(2, { op: 'timer', label: 'a', delayMs: 20 }, 1_010), // due 1030
    commandEntry(3, { op: 'timer', label: 'c', delayMs: 40 }, 1_010), // due 1050, same as b, registered later
    commandEntry(4, { op: 'timer', label: 'x', delayMs: 10 }, 1_020), // cancelled below
    commandEntry(5, { op: 'cancel', label: 'x' }, 1_025),
    noopEntry(6, 1_040), // fires a
    configEntry(7, 1_050), // fires b then c
    commandEntry(8, { op: 'repeat', label: 'r', times: 3 }, 1_060),
    noopEntry(9, 1_060), // r once: its re-schedule waits for the next entry
    noopEntry(10, 1_055), // an earlier stamp: log time stays 1060; r again
    commandEntry(11, { op: 'timer', label: 'late', delayMs: 1_000_000 }, 1_070), // r a third time
    noopEntry(12, 2_000_000),
  ];
}
const expectedTrace = [
  'a@6/1040',
  'b@7/1050',
  'c@7/1050',
  'r@9/1060',
  'r@10/1060',
  'r@11/1070',
  'late@12/2000000',
];

// Two executors fed the same entries fire the same timers at the same index, whatever their wall clocks and batching.
test('timers fire by log time identically on two members', async () => {
  const one = new TimerMachine();
  const two = new TimerMachine();
  let wallOne = 0;
  const first = new StateMachineExecutor<TimerCommand, number, null, string[]>(one, {
    applyBatchEntriesMax: 1,
    nowMs: () => (wallOne += 1e9),
  });
  const second = new StateMachineExecutor<TimerCommand, number, null, string[]>(two, {
    applyBatchEntriesMax: 1000,
  });
  const entries = scenario();
  for (const entry of entries) await first.applyEntries([entry]);
  await Promise.all([
    second.applyEntries(entries.slice(0, 5)),
    second.applyEntries(entries.slice(5)),
  ]);
  assert.equal(one.trace, expectedTrace);
  assert.equal(two.trace, expectedTrace);
  assert.is(first.pendingTimerCount, 0);
  assert.is(first.logTimeMs, 2_000_000);
});

// A timer registered with delay 0 fires at the next entry, never inside the entry that registered it.
test('a delay-0 timer waits for the next entry', () => {
  const clock = new LogClock();
  const fired: number[] = [];
  clock.advance(1, 100);
  assert.is(clock.fireDue(() => {}), 0);
  // As the executor does: fire what the entry made due, then apply it (which schedules).
  clock.context.schedule(0, (ctx) => {
    fired.push(ctx.index);
    ctx.schedule(0, () => fired.push(-1)); // re-registered while firing: waits for entry 3
  });
  clock.advance(2, 100);
  assert.is(clock.fireDue(() => {}), 1);
  assert.equal(fired, [2]);
  clock.advance(3, 100);
  assert.is(clock.fireDue(() => {}), 1);
  assert.equal(fired, [2, -1]);
});

// A throwing callback is reported with its index and the other due timers still fire.
test('a throwing timer callback is reported and does not stop the others', () => {
  const clock = new LogClock();
  const errors: string[] = [];
  const fired: string[] = [];
  clock.context.schedule(5, () => {
    throw new Error('bad');
  });
  clock.context.schedule(5, () => fired.push('after'));
  clock.advance(1, 5);
  assert.is(clock.fireDue((e, index) => errors.push(`${(e as Error).message}@${index}`)), 2);
  assert.equal(errors, ['bad@1']);
  assert.equal(fired, ['after']);
});

// Bad delays are refused; cancel reports whether it removed a pending timer.
test('schedule refuses bad delays and cancel is idempotent', () => {
  const clock = new LogClock();
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => clock.context.schedule(bad, () => {}),
      (e: unknown) => e instanceof RangeError,
    );
  }
  const timer = clock.context.schedule(10, () => assert.unreachable('cancelled timer fired'));
  assert.is(timer.dueTimeMs, 10);
  assert.is(clock.pendingCount, 1);
  assert.is(timer.cancel(), true);
  assert.is(timer.cancel(), false);
  assert.is(clock.pendingCount, 0);
  clock.advance(1, 100);
  assert.is(clock.fireDue(() => {}), 0);
});

// Restore drops the old timers and the machine re-creates its own from its state: the same firings follow.
test('timers survive a snapshot when the machine re-creates them in restore', async () => {
  const entries = scenario();
  const reference = new TimerMachine();
  const full = new StateMachineExecutor<TimerCommand, number, null, string[]>(reference);
  await full.applyEntries(entries.slice(0, 4));
  const snapshot = full.takeSnapshot();
  await full.applyEntries(entries.slice(4));

  const restored = new TimerMachine();
  const member = new StateMachineExecutor<TimerCommand, number, null, string[]>(restored);
  // A stale timer from before the restore must not fire afterwards.
  await member.applyEntries([commandEntry(1, { op: 'timer', label: 'stale', delayMs: 1 }, 0)]);
  await member.restore(snapshot.meta, snapshot.chunks);
  assert.is(member.pendingTimerCount, 4);
  await member.applyEntries(entries.slice(4));
  assert.equal(restored.trace, expectedTrace);
  assert.equal(reference.trace, expectedTrace);
});

test.run();
