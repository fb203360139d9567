import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AssertionError, ShutdownError } from '../../lib/base/errors.ts';
import type { Entry } from '../../lib/base/messages.ts';
import type { CommandCodec } from '../../lib/state/codec.ts';
import { ApplicationError, QueryError } from '../../lib/base/errors.ts';
import { type ApplyResult, StateMachineExecutor } from '../../lib/state/executor.ts';
import { kvCommand, kvQuery, KvStateMachine } from '../../lib/state/kv.ts';
import type { Commit, StateMachine } from '../../lib/state/state-machine.ts';
import { commandEntry, configEntry, noopEntry, plain, rejects } from './entries.ts';

/** Records every commit it is given; output is `${index}:${command}`; throws on command 'boom'. */
class Recorder implements StateMachine<unknown, string, null, number[]> {
  readonly applied: number[] = [];
  apply(commit: Commit<unknown>): string {
    this.applied.push(commit.index);
    if (commit.command === 'boom') throw new Error(`boom at ${commit.index}`);
    return `${commit.index}:${String(commit.command)}`;
  }
  query(): number[] {
    return this.applied;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    return (async function* () {})();
  }
  async restore(): Promise<void> {}
}

/** Same outputs as Recorder but through applyBatch; records the batch sizes it saw. */
class BatchRecorder extends Recorder {
  readonly batchSizes: number[] = [];
  applyBatch(commits: readonly Commit<unknown>[]): (string | ApplicationError)[] {
    this.batchSizes.push(commits.length);
    return commits.map((c) => {
      try {
        return this.apply(c);
      } catch (e) {
        return ApplicationError.from(e);
      }
    });
  }
}

function mixedEntries(count: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = 1; index <= count; index++) {
    if (index % 5 === 0) entries.push(noopEntry(index));
    else if (index % 7 === 0) entries.push(configEntry(index));
    else entries.push(commandEntry(index, `c${index}`));
  }
  return entries;
}

// Commands are applied in order, exactly once; outputs carry their own index even with noop/config in between.
for (
  const [name, make] of [['apply', () => new Recorder()], [
    'applyBatch',
    () => new BatchRecorder(),
  ]] as const
) {
  test(`outputs match their own index across noop and config entries (${name})`, async () => {
    const machine = make();
    const published: ApplyResult<string>[] = [];
    const executor = new StateMachineExecutor(machine, {
      applyBatchEntriesMax: 16,
      onApplied: (r) => published.push(r),
    });
    const entries = mixedEntries(200);
    // Hand them over in uneven pieces, without awaiting in between.
    const pieces = [
      entries.slice(0, 3),
      entries.slice(3, 4),
      entries.slice(4, 150),
      entries.slice(150),
    ];
    const all = (await Promise.all(pieces.map((p) => executor.applyEntries(p)))).flat();
    const commandIndexes = entries.filter((e) => e.type === 'command').map((e) => e.index);
    assert.equal(machine.applied, commandIndexes);
    assert.equal(all.map((r) => r.index), commandIndexes);
    for (const r of all) {
      assert.equal(r, { index: r.index, ok: true, output: `${r.index}:c${r.index}` });
    }
    assert.equal(published, all);
    assert.is(executor.lastAppliedIndex, 200);
    if (machine instanceof BatchRecorder) assert.ok(machine.batchSizes.every((n) => n <= 16));
  });
}

// A gap, a repeat or an out-of-order entry breaks the exactly-once invariant: an assertion, at the call.
test('a gap or a repeated index is refused with an assertion', async () => {
  const executor = new StateMachineExecutor(new Recorder());
  await executor.applyEntries([commandEntry(1, 'a'), commandEntry(2, 'b')]);
  assert.throws(
    () => executor.applyEntries([commandEntry(4, 'd')]),
    (e: unknown) => e instanceof AssertionError,
  );
  assert.throws(
    () => executor.applyEntries([commandEntry(2, 'b')]),
    (e: unknown) => e instanceof AssertionError,
  );
  assert.throws(
    () => executor.applyEntries([commandEntry(3, 'c'), commandEntry(5, 'e')]),
    (e: unknown) => e instanceof AssertionError,
  );
  const [r] = await executor.applyEntries([commandEntry(3, 'c')]);
  assert.equal(r, { index: 3, ok: true, output: '3:c' });
  assert.is(executor.lastAppliedIndex, 3);
});

// An application error (a throw, or undecodable bytes) fails only its index; later commands still apply.
for (
  const [name, make] of [['apply', () => new Recorder()], [
    'applyBatch',
    () => new BatchRecorder(),
  ]] as const
) {
  test(`an application error is isolated to its index (${name})`, async () => {
    const machine = make();
    const executor = new StateMachineExecutor(machine);
    const results = await executor.applyEntries([
      commandEntry(1, 'a'),
      commandEntry(2, 'boom'),
      { type: 'command', index: 3, term: 1, timeMs: 3, data: plain(new Uint8Array([0xff, 0xff])) },
      noopEntry(4),
      commandEntry(5, 'e'),
    ]);
    assert.equal(results.map((r) => [r.index, r.ok]), [[1, true], [2, false], [3, false], [
      5,
      true,
    ]]);
    const [, boom, undecodable] = results;
    assert.ok(boom && !boom.ok && boom.error instanceof ApplicationError);
    if (boom && !boom.ok) assert.is(boom.error.message, 'Application error: boom at 2');
    if (undecodable && !undecodable.ok) {
      assert.match(undecodable.error.message, /^Command could not be decoded/);
    }
    assert.equal(machine.applied, [1, 2, 5]);
    assert.is(executor.lastAppliedIndex, 5);
  });
}

// A long apply yields: timers set before a 50,000-entry apply run before it finishes.
test('a long apply yields to the event loop between batches', async () => {
  const executor = new StateMachineExecutor(new KvStateMachine(), { applyBatchEntriesMax: 1000 });
  const entries: Entry[] = [];
  for (let index = 1; index <= 50_000; index++) {
    entries.push(commandEntry(index, kvCommand.put(`k${index % 100}`, 'v')));
  }
  let seenByTimeout = -1;
  let seenByImmediate = -1;
  setTimeout(() => (seenByTimeout = executor.lastAppliedIndex), 0);
  setImmediate(() => (seenByImmediate = executor.lastAppliedIndex));
  const done = executor.applyEntries(entries);
  const results = await done;
  assert.is(results.length, 50_000);
  assert.ok(seenByTimeout >= 0 && seenByTimeout < 50_000, `setTimeout ran at ${seenByTimeout}`);
  assert.ok(
    seenByImmediate >= 0 && seenByImmediate < 50_000,
    `setImmediate ran at ${seenByImmediate}`,
  );
});

// The time budget bounds a batch too: with a clock that jumps 10 ms per reading, every batch is one entry.
test('the time budget ends a batch', async () => {
  let fakeMs = 0;
  const machine = new BatchRecorder();
  const executor = new StateMachineExecutor(machine, {
    applyBatchMsMax: 5,
    nowMs: () => (fakeMs += 10),
  });
  await executor.applyEntries([commandEntry(1, 'a'), commandEntry(2, 'b'), commandEntry(3, 'c')]);
  assert.equal(machine.batchSizes, [1, 1, 1]);
});

// waitForApplied resolves once the index is applied, at once when it already is; waiters are bounded.
test('waitForApplied resolves at the index and is bounded', async () => {
  const executor = new StateMachineExecutor(new Recorder(), { appliedWaitersMax: 2 });
  const order: string[] = [];
  const w3 = executor.waitForApplied(3).then(() => order.push(`w3@${executor.lastAppliedIndex}`));
  const w1 = executor.waitForApplied(1).then(() => order.push(`w1@${executor.lastAppliedIndex}`));
  const overflow = await rejects(executor.waitForApplied(2), /Too many reads waiting: limit 2/);
  assert.ok(overflow instanceof QueryError && overflow.retryable);
  await executor.applyEntries([commandEntry(1, 'a')]);
  await w1;
  assert.equal(order, ['w1@1']);
  await executor.applyEntries([noopEntry(2), commandEntry(3, 'c')]);
  await w3;
  assert.equal(order, ['w1@1', 'w3@3']);
  await executor.waitForApplied(2); // already applied
  const pending = executor.waitForApplied(10);
  executor.close();
  assert.ok((await rejects(pending, /Shut down/)) instanceof ShutdownError);
  await rejects(executor.applyEntries([commandEntry(4, 'd')]), /Shut down/);
});

// takeSnapshot reports the applied position; restore resumes after it and wakes waiters.
test('takeSnapshot and restore move the applied position', async () => {
  const source = new StateMachineExecutor(new KvStateMachine());
  await source.applyEntries([
    commandEntry(1, kvCommand.put('a', '1'), 100, 2),
    configEntry(2, 150, 3),
  ]);
  const { meta, chunks } = source.takeSnapshot();
  assert.equal(meta, { index: 2, term: 3, timeMs: 150 });
  await source.applyEntries([commandEntry(3, kvCommand.put('a', 'later'), 200, 3)]);

  const target = new StateMachineExecutor(new KvStateMachine());
  const woken = target.waitForApplied(2);
  await target.restore(meta, chunks);
  await woken;
  assert.is(target.lastAppliedIndex, 2);
  assert.is(target.lastAppliedTerm, 3);
  assert.is(target.logTimeMs, 150);
  assert.equal(target.query(kvQuery.get('a')), { value: '1' });
  assert.throws(
    () => target.applyEntries([commandEntry(2, kvCommand.get('a'))]),
    (e: unknown) => e instanceof AssertionError,
  );
  const [r] = await target.applyEntries([commandEntry(3, kvCommand.put('a', 'later'), 200, 3)]);
  assert.equal(r, { index: 3, ok: true, output: { previous: '1' } });
  await rejects(target.restore(meta, source.takeSnapshot().chunks), /Restore would move backwards/);
});

// Options are validated once: the error names the option and is a TypeError or a RangeError.
test('bad options are refused with an error naming the option', () => {
  const make = (options: object) => () => new StateMachineExecutor(new Recorder(), options);
  assert.throws(
    make({ applyBatchEntriesMax: 0 }),
    (e: unknown) => e instanceof RangeError && /applyBatchEntriesMax/.test(e.message),
  );
  assert.throws(
    make({ applyBatchMsMax: -1 }),
    (e: unknown) => e instanceof RangeError && /applyBatchMsMax/.test(e.message),
  );
  assert.throws(
    make({ appliedWaitersMax: '5' }),
    (e: unknown) => e instanceof TypeError && /appliedWaitersMax/.test(e.message),
  );
  assert.throws(
    make({ batchSize: 5 }),
    (e: unknown) => e instanceof TypeError && /batchSize/.test(e.message),
  );
});

// A user codec decodes commands; a contract breach by applyBatch (wrong output count) stops the executor.
test('a custom codec is used and an applyBatch contract breach stops the executor', async () => {
  const text: CommandCodec<string> = {
    encode: (s) => new TextEncoder().encode(s),
    decode: (b) => new TextDecoder().decode(b),
  };
  const machine = new Recorder();
  const executor = new StateMachineExecutor<unknown, string, null, number[]>(machine, {
    codec: text,
  });
  const [r] = await executor.applyEntries([{
    type: 'command',
    index: 1,
    term: 1,
    timeMs: 1,
    data: plain(text.encode('hi')),
  }]);
  assert.equal(r, { index: 1, ok: true, output: '1:hi' });

  const broken = new BatchRecorder();
  broken.applyBatch = () => [];
  const failing = new StateMachineExecutor(broken);
  await rejects(
    failing.applyEntries([commandEntry(1, 'a')]),
    /applyBatch returned 0 outputs for 1 commits/,
  );
  await rejects(failing.applyEntries([commandEntry(2, 'b')]), /applyBatch returned 0 outputs/);
});

test.run();
