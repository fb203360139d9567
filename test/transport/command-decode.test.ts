/** The client port's fast path for `command` requests against scanCbor + cbor-x + valibot. */
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { Encoder } from 'cbor-x/encode';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientRequestSchema } from '../../lib/base/client-protocol.ts';
import { cborOptions, MessageCodec } from '../../lib/transport/codec.ts';
import { decodeCommandRequest } from '../../lib/transport/command-decode.ts';
import { describe, prng } from './helpers.ts';

const seed = Number(process.env.EDGERAFT_FUZZ_SEED ?? 20261203);
const cborX = new Encoder(cborOptions);
const fast = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32 });
const slow = new MessageCodec(ClientRequestSchema, { nestingDepthMax: 32, raftFastPath: false });

/** CBOR written by hand: heads as long as asked (`width` 0: in the initial byte). */
function head(out: number[], major: number, n: number, width: number): void {
  if (width === 0) return void out.push((major << 5) | n);
  out.push((major << 5) | (width === 1 ? 24 : width === 2 ? 25 : width === 4 ? 26 : 27));
  for (let i = width - 1; i >= 0; i--) out.push(Math.floor(n / 256 ** i) % 256);
}
function float64(out: number[], value: number): void {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value);
  out.push(0xfb, ...bytes);
}

function makeGenerator(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const natural = () =>
    pick([
      () => int(24),
      () => pick([23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]),
      () => int(2 ** 32),
      () => int(2 ** 53),
    ])();
  const data = () =>
    Uint8Array.from({ length: pick([0, 1, 23, 24, 100, 255, 256, 1000, 70_000]) }, () => int(256));
  /** A valid command request as the client builds it. */
  const valid = () => ({
    type: 'command',
    id: natural(),
    session: natural(),
    sequence: natural(),
    data: data(),
  });
  /** `message` with its keys in a random order. */
  const shuffled = (message: Record<string, unknown>) => {
    const entries = Object.entries(message);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
    return Object.fromEntries(entries);
  };
  /** Valid content in a layout cbor-x does not write: long heads, naturals as float64. */
  const wide = (message: Record<string, unknown>): Uint8Array => {
    const out: number[] = [];
    const entries = Object.entries(message);
    head(out, 5, entries.length, pick([0, 0, 0, 1]));
    for (const [key, value] of entries) {
      head(out, 3, key.length, pick([0, 0, 1]));
      out.push(...Array.from(key, (c) => c.charCodeAt(0)));
      if (typeof value === 'string') {
        head(out, 3, value.length, pick([0, 0, 1]));
        out.push(...Array.from(value, (c) => c.charCodeAt(0)));
      } else if (value instanceof Uint8Array) {
        const length = value.length;
        head(
          out,
          2,
          length,
          length < 24
            ? pick([0, 1, 2, 4])
            : length < 256
            ? pick([1, 2, 4])
            : length < 65_536
            ? pick([2, 4])
            : 4,
        );
        out.push(...value);
      } else if (typeof value === 'number') {
        const n = value;
        const roll = random();
        if (roll < 0.3) float64(out, n);
        else if (n < 24) head(out, 0, n, pick([0, 1, 2, 4, 8]));
        else if (n < 256) head(out, 0, n, pick([1, 2, 4, 8]));
        else if (n < 65_536) head(out, 0, n, pick([2, 4, 8]));
        else if (n < 2 ** 32) head(out, 0, n, pick([4, 8]));
        else if (roll < 0.6) head(out, 0, n, 8);
        else float64(out, n);
      } else return cborX.encode(message);
    }
    return Uint8Array.from(out);
  };
  /** A variant that the schema refuses, or that is valid but unusual. */
  const odd = (message: Record<string, unknown>): Record<string, unknown> => {
    const changed = { ...message };
    const key = pick(['type', 'id', 'session', 'sequence', 'data', 'extra']);
    changed[key] = pick([
      -1,
      -0,
      0.5,
      2 ** 53,
      2 ** 60,
      'command',
      'query',
      '',
      null,
      true,
      [],
      {},
      new Uint8Array(3),
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ]);
    if (random() < 0.2) delete changed[pick(['type', 'id', 'session', 'sequence', 'data'])];
    return changed;
  };
  return { valid, shuffled, wide, odd, int, pick };
}

/** Assert the fast codec, the slow one and the bare fast decoder agree on `body`; returns whether the decoder took it. */
function agree(body: Uint8Array): boolean {
  const reference = slow.decode(body);
  const quick = fast.decode(body);
  const label = Buffer.from(body.subarray(0, 120)).toString('hex');
  assert.is(quick.ok, reference.ok, label);
  if (quick.ok && reference.ok) assert.is(describe(quick.value), describe(reference.value), label);
  if (!quick.ok && !reference.ok) assert.is(quick.reason, reference.reason, label);
  const view = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  const taken = decodeCommandRequest(view);
  if (taken !== null) {
    assert.ok(reference.ok, `taken but refused: ${label}`);
    if (reference.ok) assert.is(describe(taken), describe(reference.value), label);
  }
  return taken !== null;
}

// Proves every command request the client writes (and the same in any key order) takes the fast
// path, with the general path's value: keys in the schema's order, data a plain Uint8Array.
test('valid command requests take the fast path, whatever the key order', () => {
  const { valid, shuffled } = makeGenerator(prng(seed));
  for (let i = 0; i < 3_000; i++) {
    const message = valid();
    assert.ok(agree(cborX.encode(message)), `taken: ${describe(message).slice(0, 200)}`);
    assert.ok(agree(cborX.encode(shuffled(message))), 'taken in another key order');
  }
});

// Proves agreement on long heads, naturals written as float64 or as 8-byte integers, odd values
// (negative, -0, fractions, beyond 2^53, wrong kinds, missing and extra keys), a key twice,
// trailing bytes, truncations and random corruption: accepted alike with the same value, or
// refused alike with the same reason; and that the fast path still takes most valid layouts.
test('the fast path agrees with the general path on odd, wide and corrupted bodies', () => {
  const { valid, shuffled, wide, odd, int, pick } = makeGenerator(prng(seed + 1));
  let validBodies = 0;
  let taken = 0;
  for (let i = 0; i < 6_000; i++) {
    const message = int(3) === 0 ? odd(valid()) : valid();
    let body = pick([() => cborX.encode(message), () => wide(shuffled(message))])();
    const roll = int(10);
    if (roll === 0) body = body.subarray(0, int(body.length));
    else if (roll === 1) body = Uint8Array.from([...body, pick([0x00, 0xff, 0xa0])]);
    else if (roll === 2) {
      body = Uint8Array.from(body);
      body[int(Math.min(body.length, 60))] = int(256);
    } else if (roll === 4) {
      // Five pairs, one key twice: `session` renamed to `id` (the general path refuses it).
      const session = [0x67, ...Array.from('session', (c) => c.charCodeAt(0))];
      const at = Buffer.from(body).indexOf(Buffer.from(session));
      if (at >= 0) {
        body = Uint8Array.from([
          ...body.subarray(0, at),
          0x62,
          0x69,
          0x64,
          ...body.subarray(at + 8),
        ]);
      }
    } else if (roll === 3) {
      // A duplicate key: the map head says six pairs, the last repeats `id`.
      const out = [...body];
      if (out[0] === 0xa5) out[0] = 0xa6;
      body = Uint8Array.from([...out, 0x62, 0x69, 0x64, 0x01]);
    }
    const took = agree(body);
    if (slow.decode(body).ok) {
      validBodies += 1;
      if (took) taken += 1;
    }
  }
  console.log(`  ${validBodies} valid bodies, ${taken} by the fast path`);
  assert.ok(validBodies > 1_500, `${validBodies} valid bodies`);
  assert.ok(taken > validBodies * 0.6, `${taken} of ${validBodies} taken by the fast path`);
});

// Proves other requests are untouched (the general path decodes them) and that the copy owns its
// memory: the frame's buffer may be reused once the request is handled.
test('other requests take the general path; data is a copy of the body', () => {
  for (
    const message of [
      { type: 'ping', id: 1, session: 0, sequence: 0 },
      {
        type: 'query',
        id: 2,
        session: 0,
        sequence: 0,
        consistency: 'lease',
        data: new Uint8Array(2),
      },
      { type: 'status', id: 3, session: 0, sequence: 0 },
    ]
  ) {
    const body = cborX.encode(message);
    assert.is(decodeCommandRequest(new Uint8Array(body)), null, message.type);
    agree(body);
  }
  const body = Buffer.from(
    cborX.encode({ type: 'command', id: 7, session: 1, sequence: 2, data: Uint8Array.of(1, 2, 3) }),
  );
  const result = fast.decode(body);
  assert.ok(result.ok && result.value.type === 'command');
  if (!result.ok || result.value.type !== 'command') return;
  body.fill(0);
  assert.is(Object.getPrototypeOf(result.value.data), Uint8Array.prototype);
  assert.equal([...result.value.data], [1, 2, 3]);
});

test.run();
