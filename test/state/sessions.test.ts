// Client sessions in the executor, as every member applies them from the log: a session's command
// takes effect once whatever number of times it is logged, a retry gets the original output, the
// kept outputs are trimmed by keep-alives, sessions expire by log time but never for time without
// a leader, and all of it survives a snapshot. Events published during apply reach the session.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry } from '../../lib/base/messages.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { encodeEnvelope, type Envelope } from '../../lib/state/envelope.ts';
import { type ApplyResult, StateMachineExecutor } from '../../lib/state/executor.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import type { SessionEvent } from '../../lib/state/sessions.ts';
import type { Commit, StateMachine } from '../../lib/state/state-machine.ts';
import type { ApplyContext } from '../../lib/state/context.ts';
import { noopEntry } from './entries.ts';

const codec = cborCodec<unknown>();

function entry(index: number, envelope: Envelope, timeMs = index * 10): Entry {
  return { type: 'command', index, term: 1, timeMs, data: encodeEnvelope(envelope) };
}
const cmd = (session: number, sequence: number, command: unknown) =>
  ({ kind: 'command', session, sequence, data: codec.encode(command) }) as const;

// Registration answers with the session id (the entry's index); each sequence applies once, a
// retry logged again gets the first output, and an early sequence is refused (retryable).
test('a session command applies once; a retry gets the original output', async () => {
  const x = new StateMachineExecutor(new KvStateMachine());
  const [reg] = await x.applyEntries([entry(1, { kind: 'register', timeoutMs: 10_000 })]);
  assert.equal(reg, { index: 1, ok: true, output: { session: 1, timeoutMs: 10_000 } });
  const results = await x.applyEntries([
    entry(2, cmd(1, 1, { op: 'append', key: 'k', value: 'x' })),
    entry(3, cmd(1, 1, { op: 'append', key: 'k', value: 'x' })), // the same command, logged twice
    entry(4, cmd(1, 3, { op: 'append', key: 'k', value: 'z' })), // ahead of sequence 2
    entry(5, cmd(1, 2, { op: 'append', key: 'k', value: 'y' })),
  ]);
  assert.equal(results[0], { index: 2, ok: true, output: { value: 'x' } });
  assert.equal(results[1], { index: 3, ok: true, output: { value: 'x' }, duplicate: true });
  assert.is(results[2]!.ok, false);
  const early = results[2] as Extract<ApplyResult<unknown>, { ok: false }>;
  assert.is(early.error.code, 'COMMAND_ERROR');
  assert.is(early.error.retryable, true, 'not applied: retryable');
  assert.equal(results[3], { index: 5, ok: true, output: { value: 'xy' } });
  assert.equal(x.query({ op: 'get', key: 'k' }), { value: 'xy' }, 'x applied once, z not at all');
});

// Keep-alives trim the kept outputs the client has; unknown sessions are refused (not retryable).
test('keep-alives trim outputs; an unknown session is refused', async () => {
  const x = new StateMachineExecutor(new KvStateMachine());
  await x.applyEntries([entry(1, { kind: 'register', timeoutMs: 10_000 })]);
  await x.applyEntries([
    entry(2, cmd(1, 1, { op: 'put', key: 'a', value: '1' })),
    entry(3, cmd(1, 2, { op: 'put', key: 'b', value: '2' })),
    entry(4, { kind: 'keepAlive', session: 1, commandAck: 1, eventAck: 0 }),
  ]);
  assert.equal([...x.sessions.get(1)!.results.keys()], [2], 'the output of 1 was acknowledged');
  const [gone] = await x.applyEntries([entry(5, cmd(1, 1, { op: 'put', key: 'a', value: '1' }))]);
  assert.is((gone as { error: { code: string } }).error.code, 'COMMAND_ERROR');
  const [unknown] = await x.applyEntries([
    entry(6, cmd(99, 1, { op: 'put', key: 'c', value: 'x' })),
  ]);
  const e = (unknown as { error: { code: string; retryable: boolean } }).error;
  assert.equal([e.code, e.retryable], ['UNKNOWN_SESSION', false]);
  assert.equal(x.query({ op: 'get', key: 'c' }), { value: null });
});

// A session that misses its timeout (by log time) expires; a new leader's no-op renews every
// session first, so time without a leader never expires anyone.
test('sessions expire by log time, but not for time without a leader', async () => {
  const expired: number[] = [];
  const x = new StateMachineExecutor(new KvStateMachine(), {
    onSessionExpired: (s) => expired.push(s),
  });
  await x.applyEntries([
    entry(1, { kind: 'register', timeoutMs: 1_000 }, 0),
    entry(2, { kind: 'register', timeoutMs: 1_000 }, 0),
    entry(3, { kind: 'keepAlive', session: 2, commandAck: 0, eventAck: 0 }, 900),
  ]);
  // Two minutes without a leader: the next leader's no-op renews both.
  await x.applyEntries([noopEntry(4, 120_000)]);
  assert.equal(expired, [], 'no session expires for time without a leader');
  await x.applyEntries([
    entry(5, { kind: 'keepAlive', session: 2, commandAck: 0, eventAck: 0 }, 120_600),
  ]);
  await x.applyEntries([noopEntry(6, 121_500, 2)]);
  assert.equal(expired, [], 'a no-op renews too');
  await x.applyEntries([entry(7, cmd(2, 1, { op: 'put', key: 'a', value: '1' }), 122_400)]);
  await x.applyEntries([entry(8, cmd(2, 2, { op: 'put', key: 'a', value: '2' }), 123_000)]);
  assert.equal(expired, [1], 'session 1 expired a timeout after the last renewal');
  assert.ok(x.sessions.get(2) !== undefined, 'session 2 kept itself alive with commands');
});

/** A machine that publishes an event to the calling session for each command. */
class Echo implements StateMachine<string, string, null, null> {
  apply(commit: Commit<string>, context: ApplyContext): string {
    context.publish(context.session, 'echo', { said: commit.command, at: commit.index });
    return commit.command;
  }
  query(): null {
    return null;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    return (async function* () {})();
  }
  async restore(): Promise<void> {}
}

// Events published during apply reach the session in order, are kept until acknowledged, and the
// session table (outputs, events, sequences) survives a snapshot.
test('events are kept until acknowledged, and sessions survive a snapshot', async () => {
  const events: Array<[number, SessionEvent]> = [];
  const x = new StateMachineExecutor(new Echo(), { onEvent: (s, e) => events.push([s, e]) });
  await x.applyEntries([
    entry(1, { kind: 'register', timeoutMs: 60_000 }),
    entry(2, cmd(1, 1, 'a')),
    entry(3, cmd(1, 2, 'b')),
  ]);
  assert.equal(events.map(([s, e]) => [s, e.eventIndex, e.index]), [[1, 1, 2], [1, 2, 3]]);
  await x.applyEntries([entry(4, { kind: 'keepAlive', session: 1, commandAck: 0, eventAck: 1 })]);
  assert.equal(x.sessions.get(1)!.events.map((e) => e.eventIndex), [2]);
  const snap = x.takeSnapshot();
  const restored = new StateMachineExecutor(new Echo());
  await restored.restore(snap.meta, snap.chunks);
  const s = restored.sessions.get(1)!;
  assert.equal([s.nextSequence, [...s.results.keys()], s.events.map((e) => e.eventIndex)], [
    3,
    [1, 2],
    [2],
  ]);
  const [retry] = await restored.applyEntries([entry(5, cmd(1, 2, 'b'))]);
  assert.equal(retry, { index: 5, ok: true, output: 'b', duplicate: true });
});

// The batched path (applyBatch) keeps the same exactly-once rules.
test('applyBatch machines get the same exactly-once rules', async () => {
  const applied: string[] = [];
  const machine: StateMachine<string, string, null, null> = {
    apply: () => {
      throw new Error('applyBatch only');
    },
    applyBatch: (commits) => commits.map((c) => (applied.push(c.command), c.command.toUpperCase())),
    query: () => null,
    snapshot: () => (async function* () {})(),
    restore: async () => {},
  };
  const x = new StateMachineExecutor(machine);
  const results = await x.applyEntries([
    entry(1, { kind: 'register', timeoutMs: 60_000 }),
    entry(2, cmd(1, 1, 'a')),
    entry(3, cmd(1, 2, 'b')),
    entry(4, cmd(1, 2, 'b')),
    entry(5, { kind: 'plain', data: codec.encode('c') }),
  ]);
  assert.equal(applied, ['a', 'b', 'c']);
  assert.equal(results.map((r) => r.ok && r.output), [
    { session: 1, timeoutMs: 60_000 },
    'A',
    'B',
    'B',
    'C',
  ]);
  assert.is(results[3]!.duplicate, true);
});

// The key-value machine's watch: every change of a watched key reaches the watching session as a
// 'change' event with its index; a session that ends loses its watches; watches are state that a
// snapshot carries; a watch needs a session.
test('kv watch: changes of watched keys are published; snapshots keep the watches', async () => {
  const events: Array<[number, SessionEvent]> = [];
  const x = new StateMachineExecutor(new KvStateMachine(), {
    onEvent: (s, e) => events.push([s, e]),
  });
  const results = await x.applyEntries([
    entry(1, { kind: 'register', timeoutMs: 60_000 }),
    entry(2, { kind: 'register', timeoutMs: 60_000 }),
    entry(3, cmd(1, 1, { op: 'watch', prefix: 'user/' })),
    entry(4, cmd(2, 1, { op: 'watch', prefix: '' })),
    entry(5, { kind: 'plain', data: codec.encode({ op: 'put', key: 'user/a', value: '1' }) }),
    entry(6, { kind: 'plain', data: codec.encode({ op: 'put', key: 'other', value: '2' }) }),
    entry(7, { kind: 'plain', data: codec.encode({ op: 'delete', key: 'user/a' }) }),
    entry(8, {
      kind: 'plain',
      data: codec.encode({ op: 'cas', key: 'x', expected: 'no', value: '3' }),
    }),
    entry(9, { kind: 'plain', data: codec.encode({ op: 'watch', prefix: 'a' }) }),
  ]);
  assert.equal(results[2], { index: 3, ok: true, output: { watching: ['user/'] } });
  assert.is(results[8]!.ok, false, 'a watch needs a session');
  const seen = events.map(([s, e]) => [s, e.name, e.payload]);
  assert.equal(seen, [
    [1, 'change', { key: 'user/a', value: '1', index: 5 }],
    [2, 'change', { key: 'user/a', value: '1', index: 5 }],
    [2, 'change', { key: 'other', value: '2', index: 6 }],
    [1, 'change', { key: 'user/a', value: null, index: 7 }],
    [2, 'change', { key: 'user/a', value: null, index: 7 }],
  ], 'a failed compare-and-set changes nothing and publishes nothing');
  const snap = x.takeSnapshot();
  const restored = new StateMachineExecutor(new KvStateMachine(), {
    onEvent: (s, e) => events.push([s, e]),
  });
  await restored.restore(snap.meta, snap.chunks);
  events.length = 0;
  await restored.applyEntries([
    entry(10, { kind: 'unregister', session: 2 }),
    entry(11, { kind: 'plain', data: codec.encode({ op: 'append', key: 'user/b', value: 'z' }) }),
  ]);
  assert.equal(events.map(([s, e]) => [s, e.eventIndex, e.payload]), [
    [1, 3, { key: 'user/b', value: 'z', index: 11 }],
  ], 'the restored machine still watches for session 1 and not for the closed session 2');
});

test.run();
