import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LogClock } from '../../lib/state/context.ts';
import { ApplicationError, QueryError } from '../../lib/base/errors.ts';
import { StateMachineExecutor } from '../../lib/state/executor.ts';
import {
  encodeKvCommand,
  kvCommand,
  KvCommandSchema,
  kvKeyLengthMax,
  kvQuery,
  kvScanLimitMax,
  KvStateMachine,
  kvValueLengthMax,
  parseKvCommand,
} from '../../lib/state/kv.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { commandEntry } from './entries.ts';

const context = new LogClock().context;
let nextIndex = 1;
function apply(kv: KvStateMachine, command: unknown) {
  const index = nextIndex++;
  return kv.apply({ index, term: 1, timeMs: index, command }, context);
}

// put stores a value and returns the value it replaced.
test('put returns the previous value', () => {
  const kv = new KvStateMachine();
  assert.equal(apply(kv, kvCommand.put('a', '1')), { previous: null });
  assert.equal(apply(kv, kvCommand.put('a', '2')), { previous: '1' });
  assert.equal(kv.query(kvQuery.get('a')), { value: '2' });
});

// get as a command reads the value (or null) without changing anything.
test('get command returns the value or null', () => {
  const kv = new KvStateMachine();
  assert.equal(apply(kv, kvCommand.get('a')), { value: null });
  apply(kv, kvCommand.put('a', 'x'));
  assert.equal(apply(kv, kvCommand.get('a')), { value: 'x' });
  assert.equal(kv.query(kvQuery.size()), { size: 1 });
});

// delete removes the key and returns what it held; deleting an absent key returns null.
test('delete returns the previous value and removes the key', () => {
  const kv = new KvStateMachine();
  apply(kv, kvCommand.put('a', '1'));
  assert.equal(apply(kv, kvCommand.delete('a')), { previous: '1' });
  assert.equal(apply(kv, kvCommand.delete('a')), { previous: null });
  assert.equal(kv.query(kvQuery.get('a')), { value: null });
  assert.equal(kv.query(kvQuery.size()), { size: 0 });
});

// cas sets only when the current value matches expected (null meaning absent) and reports the value after.
test('cas compares then sets', () => {
  const kv = new KvStateMachine();
  assert.equal(apply(kv, kvCommand.cas('a', 'x', '1')), { ok: false, current: null });
  assert.equal(kv.query(kvQuery.get('a')), { value: null });
  assert.equal(apply(kv, kvCommand.cas('a', null, '1')), { ok: true, current: '1' });
  assert.equal(apply(kv, kvCommand.cas('a', null, '2')), { ok: false, current: '1' });
  assert.equal(apply(kv, kvCommand.cas('a', '1', '2')), { ok: true, current: '2' });
  assert.equal(kv.query(kvQuery.get('a')), { value: '2' });
  assert.equal(apply(kv, kvCommand.cas('a', '', '3')), { ok: false, current: '2' });
});

// append concatenates (absent counts as empty) and refuses to pass the value length limit.
test('append concatenates and enforces the value limit', () => {
  const kv = new KvStateMachine();
  assert.equal(apply(kv, kvCommand.append('a', 'x')), { value: 'x' });
  assert.equal(apply(kv, kvCommand.append('a', 'yz')), { value: 'xyz' });
  apply(kv, kvCommand.put('big', 'b'.repeat(kvValueLengthMax)));
  assert.throws(
    () => apply(kv, kvCommand.append('big', 'c')),
    (e: unknown) => e instanceof RangeError,
  );
  assert.equal(kv.query(kvQuery.get('big')), { value: 'b'.repeat(kvValueLengthMax) });
});

// Malformed commands are refused before any change: bad op, missing field, extra field, oversize key.
test('malformed commands are refused', () => {
  const kv = new KvStateMachine();
  for (
    const bad of [
      null,
      'put',
      { op: 'nope', key: 'a' },
      { op: 'put', key: 'a' },
      { op: 'put', key: 'a', value: 1 },
      { op: 'put', key: '', value: '1' },
      { op: 'put', key: 'k'.repeat(kvKeyLengthMax + 1), value: '1' },
      { op: 'put', key: 'a', value: '1', extra: true },
      { op: 'cas', key: 'a', value: '1' },
    ]
  ) {
    assert.throws(
      () => apply(kv, bad),
      (e: unknown) => e instanceof TypeError,
      JSON.stringify(bad),
    );
  }
  assert.equal(kv.query(kvQuery.size()), { size: 0 });
  assert.throws(
    () => encodeKvCommand({ op: 'get' } as never),
    (e: unknown) => e instanceof TypeError,
  );
});

// Queries: get, size and a prefix scan in key order with a limit; malformed queries throw.
test('queries get, size and scan', () => {
  const kv = new KvStateMachine();
  for (const key of ['b/2', 'a/1', 'b/1', 'b/3', 'c']) {
    apply(kv, kvCommand.put(key, key.toUpperCase()));
  }
  assert.equal(kv.query(kvQuery.size()), { size: 5 });
  assert.equal(kv.query(kvQuery.scan('b/', 2)), { entries: [['b/1', 'B/1'], ['b/2', 'B/2']] });
  assert.equal(kv.query(kvQuery.scan('', 10)), {
    entries: [['a/1', 'A/1'], ['b/1', 'B/1'], ['b/2', 'B/2'], ['b/3', 'B/3'], ['c', 'C']],
  });
  assert.throws(
    () => kv.query({ op: 'scan', prefix: '', limit: kvScanLimitMax + 1 }),
    (e: unknown) => e instanceof TypeError,
  );
  assert.throws(() => kv.query({ op: 'drop' }), (e: unknown) => e instanceof TypeError);
});

// Through the executor: commands round-trip through the CBOR codec, a malformed one fails only its index.
test('through the executor a malformed command is an application error for its index only', async () => {
  const executor = new StateMachineExecutor(new KvStateMachine());
  const results = await executor.applyEntries([
    commandEntry(1, kvCommand.put('a', '1')),
    commandEntry(2, { op: 'put', key: 'a' }),
    commandEntry(3, kvCommand.append('a', '2')),
  ]);
  assert.equal(results[0], { index: 1, ok: true, output: { previous: null } });
  assert.is(results[1]!.index, 2);
  assert.is(results[1]!.ok, false);
  if (!results[1]!.ok) {
    assert.instance(results[1]!.error, ApplicationError);
    assert.is(results[1]!.error.code, 'APPLICATION_ERROR');
    assert.match(results[1]!.error.message, /Invalid key-value command/);
  }
  assert.equal(results[2], { index: 3, ok: true, output: { value: '12' } });
  assert.equal(executor.query(kvQuery.get('a')), { value: '12' });
  assert.throws(
    () => executor.query({ op: 'nope' }),
    (e: unknown) => e instanceof QueryError && !e.retryable,
  );
});

// encodeKvCommand produces bytes the default codec decodes back to an equal, valid command.
test('encodeKvCommand round-trips through the default codec', () => {
  const codec = cborCodec<unknown>();
  for (
    const command of [
      kvCommand.put('k', 'v'),
      kvCommand.get('k'),
      kvCommand.delete('k'),
      kvCommand.cas('k', null, 'v'),
      kvCommand.cas('k', 'é', '😀'),
      kvCommand.append('k', ''),
    ]
  ) {
    const decoded = codec.decode(encodeKvCommand(command));
    assert.equal(decoded, command);
    assert.equal(parseKvCommand(decoded), command);
  }
  assert.ok(KvCommandSchema);
});

test.run();
