/**
 * Test helpers for the state-machine layer: build log entries the way the server will hand them
 * to the executor. Not a test file (no `.test.ts`).
 */
import type { Entry } from '../../lib/base/messages.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { encodeEnvelope } from '../../lib/state/envelope.ts';

const codec = cborCodec<unknown>();

/**
 * A command entry holding `command` encoded with the default CBOR codec, in the envelope of a
 * plain command (as `MemberDriver.propose` writes it).
 */
export function commandEntry(index: number, command: unknown, timeMs = index, term = 1): Entry {
  return { type: 'command', index, term, timeMs, data: plain(codec.encode(command)) };
}

/** Command bytes in the envelope of a plain command. */
export function plain(data: Uint8Array): Uint8Array {
  return encodeEnvelope({ kind: 'plain', data });
}

/** A noop entry. */
export function noopEntry(index: number, timeMs = index, term = 1): Entry {
  return { type: 'noop', index, term, timeMs };
}

/** A configuration entry with one member. */
export function configEntry(index: number, timeMs = index, term = 1): Entry {
  return { type: 'config', index, term, timeMs, members: [{ id: 'a', type: 'ACTIVE' }] };
}

/** Collect an async iterable of chunks. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

/** Re-chunk a stream into pieces of `pieceBytes` (the last may be shorter), as a transport might. */
export async function* rechunk(
  chunks: Iterable<Uint8Array>,
  pieceBytes: number,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for (const c of chunks) total += c.byteLength;
  const all = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  for (let i = 0; i < total; i += pieceBytes) {
    yield all.subarray(i, Math.min(total, i + pieceBytes));
  }
}

/** Assert that `promise` rejects with an error whose message matches `pattern`; returns the error. */
export async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!pattern.test(message)) {
      throw new Error(`Rejected with ${JSON.stringify(message)}, expected ${pattern}`);
    }
    return error;
  }
  throw new Error(`Expected a rejection matching ${pattern}, but it resolved`);
}
