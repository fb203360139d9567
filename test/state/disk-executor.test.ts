// A state machine on disk through the executor, on real LMDB files: a retried session command is
// applied once and answered from its kept result; a restart opens at the applied index the store
// holds and applies nothing again; sessions and watches survive it; a snapshot carries the whole
// state to another member's environment; an interrupted install leaves the old state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AssertionError } from '../../lib/base/errors.ts';
import { StateMachineExecutor } from '../../lib/state/executor.ts';
import type { DiskStateMachine, DiskStore } from '../../lib/state/disk-state-machine.ts';
import { kvCommand, kvQuery, KvStateMachine } from '../../lib/state/kv.ts';
import { LmdbKvStateMachine } from '../../lib/state/lmdb-kv.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { collect, rejects } from './entries.ts';
import { EntryMaker, openDiskMember, tempDir } from './disk-support.ts';

test('a retried session command is applied once and answered from its kept result', async () => {
  const dir = tempDir('disk-once');
  const m = await openDiskMember(dir.path);
  try {
    assert.is(m.openedAt, 0, 'a fresh store opens at applied index 0');
    const e = new EntryMaker();
    const [registered] = await m.executor.applyEntries([e.register()]);
    assert.equal(registered, { index: 1, ok: true, output: { session: 1, timeoutMs: 3_600_000 } });
    const first = await m.executor.applyEntries([e.command(1, 1, kvCommand.append('k', 'x'))]);
    // The retry, logged again (a client that did not hear the answer), even in the same batch.
    const retries = await m.executor.applyEntries([
      e.command(1, 1, kvCommand.append('k', 'x')),
      e.command(1, 2, kvCommand.append('k', 'y')),
      e.command(1, 2, kvCommand.append('k', 'y')),
    ]);
    assert.equal(first, [{ index: 2, ok: true, output: { value: 'x' } }]);
    // A duplicate is answered at its own entry's index, with the kept output.
    assert.equal(retries, [
      { index: 3, ok: true, output: { value: 'x' }, duplicate: true },
      { index: 4, ok: true, output: { value: 'xy' } },
      { index: 5, ok: true, output: { value: 'xy' }, duplicate: true },
    ]);
    assert.equal(m.machine.appliedIndexes, [2, 4], 'each sequence reached the machine once');
    assert.equal(m.executor.query(kvQuery.get('k')), { value: 'xy' });
    assert.is(m.executor.lastAppliedIndex, 5);
  } finally {
    await m.close();
    dir.remove();
  }
});

test('a restart opens at the applied index and applies nothing again', async () => {
  const dir = tempDir('disk-restart');
  try {
    const e = new EntryMaker();
    let m = await openDiskMember(dir.path);
    const entries = [e.register()];
    let sequence = 0;
    for (let i = 0; i < 300; i++) {
      entries.push(
        i % 7 === 0 ? e.noop() : e.command(1, ++sequence, kvCommand.put(`k${i % 50}`, `v${i}`)),
      );
    }
    const results = await m.executor.applyEntries(entries);
    assert.ok(results.every((r) => r.ok));
    const applied = m.machine.appliedIndexes.length;
    const before = m.executor.query(kvQuery.scan('', 100));
    const k1 = m.executor.query(kvQuery.get('k1'));
    await m.close();

    m = await openDiskMember(dir.path);
    assert.is(m.openedAt, 301, 'open() reports the applied index the store holds');
    assert.is(m.executor.lastAppliedIndex, 301);
    assert.equal(m.executor.query(kvQuery.scan('', 100)), before);
    assert.equal(m.executor.query(kvQuery.size()), { size: 50 });
    // The log goes on from 302: nothing before it is handed over, nothing is applied twice.
    assert.throws(() => m.executor.applyEntries([new EntryMaker(301).plain(kvCommand.get('k1'))]));
    await m.close();
    m = await openDiskMember(dir.path);
    const [next] = await m.executor.applyEntries([
      e.command(1, sequence + 1, kvCommand.put('k1', 'new')),
    ]);
    assert.equal(next, {
      index: 302,
      ok: true,
      output: { previous: (k1 as { value: string }).value },
    });
    assert.equal(m.machine.appliedIndexes, [302], 'only the new entry was applied after restart');
    assert.is(applied, sequence);
    await m.close();
  } finally {
    dir.remove();
  }
});

test('sessions, kept results and watches survive a restart', async () => {
  const dir = tempDir('disk-sessions');
  try {
    const e = new EntryMaker();
    let m = await openDiskMember(dir.path);
    await m.executor.applyEntries([
      e.register(), // session 1
      e.register(), // session 2
      e.command(2, 1, kvCommand.watch('w/')),
      e.command(1, 1, kvCommand.put('w/a', '1')),
      e.command(1, 2, kvCommand.put('w/b', '2')),
      e.keepAlive(1, 1), // the output of sequence 1 is acknowledged: dropped
    ]);
    const sessionsBefore = m.executor.sessions.toData();
    assert.is(m.events.length, 2);
    await m.close();

    m = await openDiskMember(dir.path);
    assert.equal(m.executor.sessions.toData(), sessionsBefore);
    const results = await m.executor.applyEntries([
      e.command(1, 2, kvCommand.put('w/b', 'again')), // a retry after the restart
      e.command(1, 1, kvCommand.put('w/a', 'again')), // acknowledged, so no longer kept
      e.command(1, 3, kvCommand.put('w/c', '3')), // still watched by session 2
    ]);
    assert.equal(results[0], { index: 7, ok: true, output: { previous: null }, duplicate: true });
    assert.is(results[1]!.ok, false);
    assert.is(results[1]!.duplicate, true);
    assert.equal(results[2], { index: 9, ok: true, output: { previous: null } });
    assert.equal(m.machine.appliedIndexes, [9]);
    assert.equal(m.events.map((x) => [x.session, x.event.eventIndex, x.event.payload]), [
      [2, 3, { key: 'w/c', value: '3', index: 9 }],
    ]);
    assert.equal(m.executor.query(kvQuery.get('w/b')), { value: '2' });
    await m.close();
  } finally {
    dir.remove();
  }
});

/** Commands that exercise every kind of key and command, with sessions and watches. */
function workload(e: EntryMaker): ReturnType<EntryMaker['plain']>[] {
  const long = 'L'.repeat(1200);
  const entries = [e.register(), e.register()];
  entries.push(e.command(2, 1, kvCommand.watch('')));
  let seq = 1;
  for (let i = 0; i < 100; i++) {
    entries.push(e.command(1, seq++, kvCommand.put(`big${i}`, 'b'.repeat(2_000 + i))));
  }
  for (let i = 0; i < 400; i++) {
    const key = i % 5 === 0
      ? `${long}${i % 7}`
      : i % 3 === 0
      ? `\u{1F600}k${i % 40}`
      : `k${i % 60}`;
    const command = i % 11 === 0
      ? kvCommand.delete(key)
      : i % 4 === 0
      ? kvCommand.append(key, `+${i}`)
      : kvCommand.put(key, `v${i}`.repeat(1 + (i % 30)));
    entries.push(e.command(1, seq++, command));
  }
  return entries;
}

test('a snapshot carries data, sessions and watches to another member and restarts there', async () => {
  const a = tempDir('disk-snap-a');
  const b = tempDir('disk-snap-b');
  try {
    const e = new EntryMaker();
    const ma = await openDiskMember(a.path);
    await ma.executor.applyEntries(workload(e));
    const snap = ma.executor.takeSnapshot();
    // Applying goes on while the snapshot streams: the stream is the state at its index.
    const stateAtSnapshot = ma.executor.query(kvQuery.scan('', 10_000));
    await ma.executor.applyEntries([e.command(1, 501, kvCommand.put('after', 'x'))]);
    const chunks = await collect(snap.chunks);
    assert.ok(chunks.length > 3, `bounded chunks (${chunks.length})`);
    // After the session table, frames of records within their bound.
    assert.ok(chunks.slice(1).every((c) => c.byteLength <= 65_536), 'each chunk within its bound');
    assert.is(snap.meta.index, 503);

    let mb = await openDiskMember(b.path);
    await mb.executor.applyEntries([new EntryMaker().plain(kvCommand.put('old', 'gone'))]);
    await mb.executor.restore(
      snap.meta,
      (async function* () {
        yield* chunks;
      })(),
    );
    assert.is(mb.executor.lastAppliedIndex, 503);
    assert.equal(mb.executor.query(kvQuery.scan('', 10_000)), stateAtSnapshot);
    assert.equal(mb.executor.query(kvQuery.get('old')), { value: null });
    await mb.close();

    mb = await openDiskMember(b.path);
    assert.is(mb.openedAt, 503);
    assert.equal(mb.executor.query(kvQuery.scan('', 10_000)), stateAtSnapshot);
    // Both go on alike, watches included: the same outputs and events for the same entries.
    const next = new EntryMaker(504);
    const rb = await mb.executor.applyEntries([next.command(1, 501, kvCommand.put('after', 'x'))]);
    assert.equal(rb, [{ index: 504, ok: true, output: { previous: null } }]);
    assert.equal(mb.events.map((x) => x.event.payload), [{ key: 'after', value: 'x', index: 504 }]);
    assert.equal(
      mb.executor.sessions.toData().map((s) => s.nextSequence),
      ma.executor.sessions.toData().map((s) => s.nextSequence),
    );
    await mb.close();
    await ma.close();
  } finally {
    a.remove();
    b.remove();
  }
});

test('an interrupted install keeps the old state, and the next install completes', async () => {
  const a = tempDir('disk-install-a');
  const b = tempDir('disk-install-b');
  try {
    const ma = await openDiskMember(a.path);
    await ma.executor.applyEntries(workload(new EntryMaker()));
    const snap = ma.executor.takeSnapshot();
    const chunks = await collect(snap.chunks);
    let mb = await openDiskMember(b.path);
    await mb.executor.applyEntries([new EntryMaker().plain(kvCommand.put('old', 'kept'))]);
    const broken = (async function* () {
      yield* chunks.slice(0, 3);
      throw new Error('connection lost');
    })();
    await rejects(mb.executor.restore(snap.meta, broken), /connection lost/);
    assert.equal(mb.executor.query(kvQuery.get('old')), { value: 'kept' });
    assert.is(mb.executor.lastAppliedIndex, 1);
    await mb.close();
    mb = await openDiskMember(b.path);
    assert.is(mb.openedAt, 1);
    assert.equal(mb.executor.query(kvQuery.scan('', 10)), { entries: [['old', 'kept']] });
    await mb.executor.restore(
      snap.meta,
      (async function* () {
        yield* chunks;
      })(),
    );
    assert.equal(
      mb.executor.query(kvQuery.scan('', 10_000)),
      ma.executor.query(kvQuery.scan('', 10_000)),
    );
    await mb.close();
    await ma.close();
  } finally {
    a.remove();
    b.remove();
  }
});

test('the executor takes a store for a machine on disk, and only for one', async () => {
  const dir = tempDir('disk-options');
  const storage = await LmdbStorage.open({ path: dir.path });
  try {
    assert.throws(
      () => new StateMachineExecutor(new LmdbKvStateMachine()),
      (e: unknown) => e instanceof TypeError && /option store/.test(e.message),
    );
    assert.throws(
      () => new StateMachineExecutor(new KvStateMachine(), { store: storage.openMachineStore() }),
      (e: unknown) => e instanceof TypeError && /option store/.test(e.message),
    );
  } finally {
    await storage.close();
    dir.remove();
  }
});

test('a machine on disk writes only while applying; a bad key fails only its command', async () => {
  const dir = tempDir('disk-writes');
  const storage = await LmdbStorage.open({ path: dir.path });
  let held: DiskStore | null = null;
  const machine: DiskStateMachine<unknown, string, null, null> = {
    onDisk: true,
    open: (store) => void (held = store),
    apply: (commit) => {
      const size = commit.command as number;
      held!.put(new Uint8Array(size), Uint8Array.of(1));
      return 'ok';
    },
    query: () => null,
  };
  const executor = new StateMachineExecutor(machine, { store: storage.openMachineStore() });
  try {
    executor.open();
    const e = new EntryMaker();
    const results = await executor.applyEntries([e.plain(8), e.plain(2000), e.plain(0)]);
    assert.equal(results.map((r) => r.ok), [true, false, false]);
    assert.match(
      results[1]!.ok ? '' : results[1]!.error.message,
      /diskKeyBytesMax 1024/,
    );
    assert.throws(
      () => held!.put(Uint8Array.of(1), Uint8Array.of(1)),
      (e: unknown) => e instanceof AssertionError,
    );
    assert.equal([...held!.get(new Uint8Array(8))!], [1]);
  } finally {
    executor.close();
    await storage.close();
    dir.remove();
  }
});

test.run();
