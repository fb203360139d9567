import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LogClock } from '../../lib/state/context.ts';
import { kvCommand, kvQuery, KvStateMachine, kvValueLengthMax } from '../../lib/state/kv.ts';
import {
  decodeKvFrames,
  kvSnapshotChunkBytesTarget,
  utf8Length,
} from '../../lib/state/kv-snapshot.ts';
import { collect, rechunk, rejects } from './entries.ts';

const context = new LogClock().context;

function fill(kv: KvStateMachine, count: number, value: (i: number) => string): void {
  for (let i = 0; i < count; i++) {
    kv.apply(
      { index: i + 1, term: 1, timeMs: i, command: kvCommand.put(`key/${i}`, value(i)) },
      context,
    );
  }
}

async function* from(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

// 100k keys: snapshot then restore into a fresh machine gives identical state, in chunks bounded by the target.
test('snapshot and restore of 100k keys round-trips with bounded chunks', async () => {
  const source = new KvStateMachine();
  const count = 100_000;
  fill(source, count, (i) => `value-${i * 7}${i % 10 === 0 ? 'é😀' : ''}`);
  const chunks = await collect(source.snapshot());
  assert.ok(chunks.length > 10, `expected many chunks, got ${chunks.length}`);
  for (const chunk of chunks) {
    assert.ok(chunk.byteLength <= kvSnapshotChunkBytesTarget, `chunk of ${chunk.byteLength} bytes`);
  }
  const target = new KvStateMachine();
  target.apply({ index: 1, term: 1, timeMs: 0, command: kvCommand.put('stale', 'gone') }, context);
  await target.restore(from(chunks), context);
  assert.equal(target.query(kvQuery.size()), { size: count });
  assert.equal(target.query(kvQuery.get('stale')), { value: null });
  for (let i = 0; i < count; i++) {
    const expected = source.query(kvQuery.get(`key/${i}`));
    assert.equal(target.query(kvQuery.get(`key/${i}`)), expected);
  }
  // And through an arbitrary re-chunking (as a transport may deliver it).
  const third = new KvStateMachine();
  await third.restore(rechunk(chunks, 1000), context);
  assert.equal(third.query(kvQuery.size()), { size: count });
  assert.equal(third.query(kvQuery.get('key/99990')), source.query(kvQuery.get('key/99990')));
});

// A restore does not depend on chunk boundaries: 1-, 3- and 7-byte pieces all parse.
test('restore accepts any re-chunking', async () => {
  const source = new KvStateMachine();
  fill(source, 300, (i) => 'v'.repeat(i));
  const chunks = await collect(source.snapshot());
  for (const pieceBytes of [1, 3, 7]) {
    const target = new KvStateMachine();
    await target.restore(rechunk(chunks, pieceBytes), context);
    assert.equal(target.query(kvQuery.scan('', 10_000)), source.query(kvQuery.scan('', 10_000)));
  }
});

// The snapshot is the state at the call: commands applied while it streams do not leak into it.
test('a snapshot captures the state at the call while applying goes on', async () => {
  const kv = new KvStateMachine();
  fill(kv, 1000, () => 'before');
  const stream = kv.snapshot();
  kv.apply({ index: 2000, term: 1, timeMs: 0, command: kvCommand.put('key/0', 'after') }, context);
  kv.apply({ index: 2001, term: 1, timeMs: 0, command: kvCommand.put('new', 'after') }, context);
  const target = new KvStateMachine();
  await target.restore(stream, context);
  assert.equal(target.query(kvQuery.get('key/0')), { value: 'before' });
  assert.equal(target.query(kvQuery.get('new')), { value: null });
  assert.equal(target.query(kvQuery.size()), { size: 1000 });
});

// A pair larger than the chunk target travels alone in one frame and restores intact.
test('an oversize value goes alone in its frame', async () => {
  const kv = new KvStateMachine();
  const big = '€'.repeat(kvValueLengthMax); // 3 bytes per code unit in UTF-8
  kv.apply({ index: 1, term: 1, timeMs: 0, command: kvCommand.put('small', 's') }, context);
  kv.apply({ index: 2, term: 1, timeMs: 0, command: kvCommand.put('big', big) }, context);
  kv.apply({ index: 3, term: 1, timeMs: 0, command: kvCommand.put('tail', 't') }, context);
  const chunks = await collect(kv.snapshot());
  // The watch table (empty here) leads, then small, big alone, tail.
  assert.is(chunks.length, 4);
  assert.ok(chunks[2]!.byteLength > 3 * kvValueLengthMax);
  const target = new KvStateMachine();
  await target.restore(from(chunks), context);
  assert.equal(target.query(kvQuery.get('big')), { value: big });
  assert.equal(target.query(kvQuery.size()), { size: 3 });
});

// A corrupt snapshot (truncated, oversize prefix, wrong shape) throws and the old state stays.
test('a corrupt snapshot is refused and keeps the previous state', async () => {
  const source = new KvStateMachine();
  fill(source, 50, () => 'x');
  const chunks = await collect(source.snapshot());
  const [watches, whole] = [chunks[0]!, chunks[1]!];
  const kv = new KvStateMachine();
  kv.apply({ index: 1, term: 1, timeMs: 0, command: kvCommand.put('keep', 'me') }, context);
  await rejects(
    kv.restore(from([watches, whole.subarray(0, whole.byteLength - 1)]), context),
    /truncated/,
  );
  await rejects(kv.restore(from([whole.subarray(0, 3)]), context), /ends before its watch table/);
  for (const head of [new Uint8Array(0), watches]) {
    await rejects(
      kv.restore(from([head, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0])]), context),
      /too large/,
    );
  }
  // A frame holding [1, 2]: numbers, not strings.
  await rejects(
    kv.restore(from([watches, new Uint8Array([0, 0, 0, 3, 0x82, 0x01, 0x02])]), context),
    /not a string/,
  );
  // A watch table entry that is not [session, prefixes].
  await rejects(
    kv.restore(from([new Uint8Array([0, 0, 0, 2, 0x81, 0x01]), whole]), context),
    /malformed/,
  );
  assert.equal(kv.query(kvQuery.scan('', 10)), { entries: [['keep', 'me']] });
});

// utf8Length agrees with TextEncoder on ASCII, 2-, 3- and 4-byte characters and lone surrogates.
test('utf8Length matches TextEncoder', () => {
  const encoder = new TextEncoder();
  for (const s of ['', 'abc', 'é', '€uro', '😀x', '\ud800', 'a\udc00b', '\ud83d']) {
    assert.is(utf8Length(s), encoder.encode(s).byteLength, JSON.stringify(s));
  }
  assert.ok(decodeKvFrames);
});

test.run();
