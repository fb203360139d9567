/** Unit tests of framing, the guarded CBOR codec and option validation. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftMessageSchema } from '../../lib/base/messages.ts';
import { MessageCodec, scanCbor } from '../../lib/transport/codec.ts';
import { frameBytes, FrameDecoder, writeFrames } from '../../lib/transport/frame.ts';
import { parseTransportOptions, refusedRedialDelayMs } from '../../lib/transport/options.ts';
import { appendMessage, heartbeat, normalize } from './helpers.ts';

const codec = new MessageCodec(RaftMessageSchema, { nestingDepthMax: 16 });
const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));

// Proves frames are reassembled identically however the stream is split, one and two cuts.
test('frame decoder: split at every byte boundary', () => {
  const bodies = [new Uint8Array([1]), new Uint8Array(300).fill(9), new Uint8Array([2, 3, 4])];
  const wire = new Uint8Array(bodies.reduce((n, b) => n + frameBytes(b.byteLength), 0));
  writeFrames(wire, 0, bodies);
  for (let i = 0; i <= wire.length; i++) {
    for (let j = i; j <= wire.length; j += 7) {
      const got: number[][] = [];
      const decoder = new FrameDecoder(1024, (body) => got.push([...body]));
      for (const part of [wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]) {
        assert.is(decoder.push(part), null);
      }
      assert.equal(got, bodies.map((b) => [...b]), `split at ${i},${j}`);
      assert.is(decoder.partial, false);
    }
  }
});

// Proves several frames in one chunk all come out, and a partial tail is reported as partial.
test('frame decoder: many frames per chunk, partial tail', () => {
  const bodies = Array.from({ length: 50 }, (_, i) => new Uint8Array(i + 1).fill(i));
  const wire = new Uint8Array(bodies.reduce((n, b) => n + frameBytes(b.byteLength), 0) + 3);
  writeFrames(wire, 0, bodies);
  wire.set([0, 0, 0], wire.length - 3);
  let count = 0;
  const decoder = new FrameDecoder(1024, (body) => {
    assert.is(body.byteLength, count + 1);
    count += 1;
  });
  assert.is(decoder.push(wire), null);
  assert.is(count, 50);
  assert.is(decoder.partial, true);
});

// Proves an oversized or empty length prefix is refused with a clear reason, and input after it ignored.
test('frame decoder: oversized and empty frames', () => {
  let frames = 0;
  const decoder = new FrameDecoder(4_194_304, () => frames++);
  assert.is(decoder.push(hex('00900000')), 'Frame too large: 9437184 bytes, limit 4194304');
  assert.is(decoder.push(hex('0000000101')), null);
  assert.is(frames, 0);
  assert.match(new FrameDecoder(10, () => {}).push(hex('00000000')) ?? '', /^Empty frame/);
});

// Proves Raft messages round-trip through the codec with their bytes intact.
test('codec: round trip', () => {
  for (const message of [appendMessage('a', 'b', 3, 8), heartbeat('a', 'b', 5)]) {
    const result = codec.decode(codec.encode(message));
    assert.ok(result.ok);
    if (result.ok) assert.equal(normalize(result.value), normalize(message));
  }
});

// Proves cbor-x quirks are refused before the schema: BigInt, lone break, tags, indefinite
// lengths, deep nesting, trailing bytes, truncation; and wrong shapes fail the schema.
test('codec: hostile bodies are refused with a reason', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['lone break', hex('ff'), /break outside/],
    ['uint64 BigInt', hex('1bffffffffffffffff'), /beyond 2\^53/],
    ['bignum tag', hex('c249010000000000000000'), /tag not allowed/],
    ['indefinite map', hex('bf61610aff'), /Indefinite-length/],
    ['trailing bytes', hex('0101'), /Trailing bytes/],
    ['truncated', hex('a2616101'), /Truncated/],
    ['huge array count', hex('9affffffff'), /Truncated/],
    ['deep nesting', new Uint8Array(100_000).fill(0x81), /nested too deep/],
    ['simple value', hex('f0'), /simple value/],
    ['wrong shape', codec.encode({ hello: 1 } as never), /Invalid message/],
    [
      'unknown type',
      codec.encode({ ...heartbeat('a', 'b', 1), type: 'nope' } as never),
      /Invalid message: type/,
    ],
    [
      'float term',
      codec.encode({ ...heartbeat('a', 'b', 1), term: 1.5 } as never),
      /Invalid message: term/,
    ],
  ];
  for (const [name, body, reason] of cases) {
    const result = codec.decode(body);
    assert.is(result.ok, false, name);
    if (!result.ok) assert.match(result.reason, reason, name);
  }
  assert.is(scanCbor(codec.encode(appendMessage('a', 'b', 1)), 16), null);
});

// Proves options are validated once with errors naming the option and the relationship asserted.
test('options: validated with named errors', () => {
  assert.throws(
    () => parseTransportOptions({ cluster: 'c', member: 'a', frameBytesMax: 0 }),
    (e: Error) => e instanceof RangeError && /frameBytesMax/.test(e.message),
  );
  assert.throws(
    () => parseTransportOptions({ cluster: 'c', member: 'a', frameBytesMax: 'x' }),
    (e: Error) => e instanceof TypeError && /frameBytesMax/.test(e.message),
  );
  assert.throws(
    () =>
      parseTransportOptions({
        cluster: 'c',
        member: 'a',
        frameBytesMax: 1 << 20,
        inflightBytesMax: 1 << 20,
      }),
    (e: Error) => e instanceof RangeError && /inflightBytesMax/.test(e.message),
  );
  assert.throws(
    () =>
      parseTransportOptions({
        cluster: 'c',
        member: 'a',
        reconnectDelayMsMin: 10,
        reconnectDelayMsMax: 5,
      }),
    (e: Error) => e instanceof RangeError && /reconnectDelayMsMin/.test(e.message),
  );
  assert.is(parseTransportOptions({ cluster: 'c', member: 'a' }).frameBytesMax, 4 * 1024 * 1024);
});

// Proves the reconnect cap defaults to at most an election timeout with RaftServer's defaults
// (10 ms × 15 ticks), the floor follows a lower cap, and a refusal backs off well beyond the cap.
test('options: reconnect delays', () => {
  const defaults = parseTransportOptions({ cluster: 'c', member: 'a' });
  assert.ok(defaults.reconnectDelayMsMax <= 10 * 15, `cap ${defaults.reconnectDelayMsMax} ms`);
  assert.ok(defaults.reconnectDelayMsMin <= defaults.reconnectDelayMsMax);
  const low = parseTransportOptions({ cluster: 'c', member: 'a', reconnectDelayMsMax: 3 });
  assert.is(low.reconnectDelayMsMin, 3, 'the default floor is lowered to a lower cap');
  const both = { cluster: 'c', member: 'a', reconnectDelayMsMin: 7, reconnectDelayMsMax: 9 };
  assert.is(parseTransportOptions(both).reconnectDelayMsMin, 7);
  assert.throws(
    () => parseTransportOptions({ cluster: 'c', member: 'a', reconnectDelayMsMax: 0 }),
    (e: Error) => e instanceof RangeError && /reconnectDelayMsMax/.test(e.message),
  );
  assert.ok(refusedRedialDelayMs / 2 >= defaults.reconnectDelayMsMax * 10);
});

test.run();
