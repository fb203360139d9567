// Proves that the storage codec uses cbor-x without its native extension under this runtime, that
// its hand-written encoder and entry check agree with cbor-x and valibot, and that bad bytes fail
// with an error naming the index.
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as v from 'valibot';
import { isNativeAccelerationEnabled } from 'cbor-x/decode';
import { StorageError } from '../../lib/base/errors.ts';
import { type Entry, EntrySchema } from '../../lib/base/messages.ts';
import { cborEncoder, decodeEntry, encodeEntry, isEntry } from '../../lib/storage/codec.ts';
import { encodeEntryWithCborX } from '../support/reference-encoders.ts';
import { command, membersAB, plain } from './contract.ts';
import { seededRandom as seeded } from '../../lib/core/random.ts';

// cbor-x turns native acceleration on only through `setExtractor`, called by its root module
// (node-index.js) after loading cbor-extract; the flag below is that module state.
test('cbor-x native acceleration stays off and decoding works', () => {
  const entries: Entry[] = [
    command(1, 1, 300),
    { type: 'noop', index: 2, term: 1, timeMs: 5 },
    { type: 'config', index: 3, term: 2, timeMs: 6, members: membersAB },
  ];
  for (const entry of entries) {
    assert.equal(plain([decodeEntry(encodeEntry(entry), entry.index)]), plain([entry]));
  }
  // Long strings are where the native extractor would be used.
  const long = {
    type: 'config' as const,
    index: 4,
    term: 2,
    timeMs: 7,
    members: [{ id: 'x'.repeat(128), type: 'ACTIVE' as const, address: 'y'.repeat(256) }],
  };
  assert.equal(decodeEntry(encodeEntry(long), 4), long);
  assert.is(isNativeAccelerationEnabled, false);
  // Where the runtime exposes a CommonJS cache, cbor-extract is not in it.
  const cache = (createRequire((import.meta as unknown as { url: string }).url) as {
    cache?: Record<string, unknown>;
  }).cache ?? {};
  assert.equal(Object.keys(cache).filter((path) => path.includes('cbor-extract')), []);
});

function randomNatural(random: () => number): number {
  const boundaries = [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
  const pick = random();
  if (pick < 0.5) return boundaries[Math.floor(random() * boundaries.length)]!;
  return Math.floor(random() * 2 ** (1 + Math.floor(random() * 53)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

test('the hand-written encoder writes exactly what cbor-x writes', () => {
  const random = seeded(42);
  const sizes = [0, 1, 23, 24, 255, 256, 1000, 65535, 65536, 70000];
  for (let i = 0; i < 3000; i++) {
    const index = randomNatural(random);
    const head = { index, term: randomNatural(random), timeMs: randomNatural(random) };
    const entry: Entry = random() < 0.2
      ? { type: 'noop', ...head }
      : { type: 'command', ...head, data: new Uint8Array(sizes[i % sizes.length]!).fill(i & 0xff) };
    const ours = encodeEntry(entry);
    assert.ok(sameBytes(ours, encodeEntryWithCborX(entry)), `entry ${JSON.stringify(head)}`);
    const back = decodeEntry(ours, index);
    assert.equal({ ...back, data: undefined }, { ...entry, data: undefined });
    if (entry.type === 'command' && back.type === 'command') {
      assert.ok(sameBytes(back.data, entry.data));
    }
  }
});

// Proves results stay valid while later entries fill and replace the shared buffer (LMDB's
// asynchronous put holds them until its commit), including an entry larger than a whole buffer.
test('encoded entries survive buffer turnover', () => {
  const kept: [Entry, Uint8Array][] = [];
  const sizes = [100, 1024, 60_000, 300_000, 0, 7];
  for (let i = 0; i < 200; i++) {
    const entry: Entry = i % 9 === 0
      ? { type: 'noop', index: i + 1, term: 3, timeMs: i }
      : command(i + 1, 3, sizes[i % sizes.length]!);
    kept.push([entry, encodeEntry(entry)]);
  }
  for (const [entry, bytes] of kept) {
    assert.ok(sameBytes(bytes, encodeEntryWithCborX(entry)), `entry ${entry.index} intact`);
  }
});

test('the hand-written entry check agrees with EntrySchema', () => {
  const data = new Uint8Array(3);
  const base = { type: 'command', index: 1, term: 2, timeMs: 3, data };
  const inherited = Object.create({ extra: 1 });
  Object.assign(inherited, base);
  const protoFields = Object.create({ index: 1, term: 2, timeMs: 3 });
  Object.assign(protoFields, { type: 'noop' });
  const values: unknown[] = [
    base,
    { ...base, type: 'noop' },
    { type: 'noop', index: 1, term: 2, timeMs: 3 },
    { ...base, extra: undefined },
    { ...base, data: [1, 2] },
    { ...base, data: undefined },
    { type: 'command', index: 1, term: 2, timeMs: 3 },
    { ...base, index: -1 },
    { ...base, index: 1.5 },
    { ...base, index: 2 ** 53 },
    { ...base, index: Number.NaN },
    { ...base, index: Infinity },
    { ...base, index: '1' },
    { ...base, index: 10n },
    { ...base, term: null },
    { ...base, timeMs: undefined },
    { ...base, type: 'other' },
    { ...base, type: 'config', members: [] },
    { ...base, type: 'config' },
    null,
    undefined,
    1,
    'noop',
    [],
    [1],
    Object.assign([], { type: 'noop', index: 1, term: 1, timeMs: 1 }),
    inherited,
    protoFields,
    { type: 'noop', index: 1, term: 2, timeMs: 3, data },
    { ...base, data: new Uint16Array(2) },
  ];
  const random = seeded(7);
  const keys = ['type', 'index', 'term', 'timeMs', 'data', 'members', 'other'];
  const pool: unknown[] = [
    'noop',
    'command',
    'config',
    0,
    1,
    -1,
    0.5,
    2 ** 53,
    2 ** 53 - 1,
    null,
    undefined,
    data,
    [],
    {},
    'x',
    true,
  ];
  for (let i = 0; i < 3000; i++) {
    const value: Record<string, unknown> = { ...base };
    for (let k = 0; k < 1 + Math.floor(random() * 2); k++) {
      const key = keys[Math.floor(random() * keys.length)]!;
      if (random() < 0.2) delete value[key];
      else value[key] = pool[Math.floor(random() * pool.length)];
    }
    values.push(value);
  }
  for (const value of values) {
    assert.is(
      isEntry(value),
      v.is(EntrySchema, value),
      `disagreement on ${
        String(JSON.stringify(value, (_k, x) => (typeof x === 'bigint' ? String(x) : x)))
      }`,
    );
  }
});

test('bad bytes are a StorageError naming the index', () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0xff, 0x00, 0x13]), /index 9: /],
    [cborEncoder.encode([1, 9, 1]), /index 9: not a valid entry/],
    [
      cborEncoder.encode({ type: 'noop', index: 9, term: 1, timeMs: 0 }),
      /index 9: not a valid entry/,
    ],
    [encodeEntry(command(8, 1)), /index 9: it holds index 8/],
    [cborEncoder.encode([0, 9, -1, 0]), /index 9: not a valid entry/],
  ];
  for (const [bytes, pattern] of cases) {
    assert.throws(
      () => decodeEntry(bytes, 9),
      (e: unknown) => e instanceof StorageError && pattern.test(e.message),
    );
  }
});

test.run();
