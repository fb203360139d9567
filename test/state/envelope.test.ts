// The command envelope (lib/state/envelope.ts): every kind reads back as written, for random and
// boundary numbers; empty, truncated, overlong and unknown envelopes are an `EnvelopeError` each;
// random bytes give an envelope or an `EnvelopeError`, never anything else; and a failed decode
// leaves nothing behind for the next one (the reader keeps its position in the module).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
  EnvelopeError,
} from '../../lib/state/envelope.ts';
import { generator } from '../support/random.ts';

const random = generator(7);
const numbers = [0, 1, 127, 128, 16_383, 16_384, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
const natural = () =>
  random(3) === 0 ? numbers[random(numbers.length)]! : random(2 ** 31) * (1 + random(1000));
const data = () => Uint8Array.from({ length: random(40) }, () => random(256));

function randomEnvelope(): Envelope {
  switch (random(5)) {
    case 0:
      return { kind: 'plain', data: data() };
    case 1:
      return { kind: 'command', session: natural(), sequence: natural(), data: data() };
    case 2:
      return { kind: 'register', timeoutMs: natural() };
    case 3:
      return { kind: 'keepAlive', session: natural(), commandAck: natural(), eventAck: natural() };
    default:
      return { kind: 'unregister', session: natural() };
  }
}

/** The envelope with its data as a plain array, so that views compare by content. */
function plain(e: Envelope): unknown {
  return 'data' in e ? { ...e, data: Array.from(e.data) } : e;
}

test('every kind reads back as written', () => {
  for (let i = 0; i < 5_000; i++) {
    const e = randomEnvelope();
    assert.equal(plain(decodeEnvelope(encodeEnvelope(e))), plain(e));
  }
});

test('bad envelopes are an EnvelopeError, and the next decode is unaffected', () => {
  const good = encodeEnvelope({ kind: 'command', session: 300, sequence: 2 ** 40, data: data() });
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /Empty/],
    [good.subarray(0, 2), /Truncated/],
    [Uint8Array.of(3, 1, 2), /Truncated/],
    [Uint8Array.of(2, ...new Array(9).fill(0x80)), /too long/],
    [Uint8Array.of(9, 1), /Unknown command envelope kind 9/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => decodeEnvelope(bytes),
      (e: unknown) => e instanceof EnvelopeError && message.test(e.message),
    );
    const after = decodeEnvelope(good);
    assert.equal(after.kind === 'command' && [after.session, after.sequence], [300, 2 ** 40]);
  }
});

test('random bytes give an envelope or an EnvelopeError', () => {
  for (let i = 0; i < 20_000; i++) {
    const bytes = Uint8Array.from(
      { length: random(12) },
      () => (random(4) === 0 ? random(6) : random(256)),
    );
    try {
      const e = decodeEnvelope(bytes);
      assert.ok(['plain', 'command', 'register', 'keepAlive', 'unregister'].includes(e.kind));
    } catch (error) {
      assert.ok(error instanceof EnvelopeError, String(error));
    }
  }
});

test.run();
