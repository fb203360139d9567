/**
 * Reference encoders for the differential tests: what the hand-written encoders on the shared CBOR
 * writer (`lib/base/cbor-writer.ts`) must reproduce byte for byte, computed by cbor-x alone. They
 * live with the tests because nothing else runs them.
 *
 * @example
 * ```ts
 * import { encodeEntry } from '../../lib/storage/codec.ts';
 * import { encodeEntryWithCborX } from '../support/reference-encoders.ts';
 * const entry = { type: 'noop', index: 7, term: 2, timeMs: 0 } as const;
 * sameBytes(encodeEntry(entry), encodeEntryWithCborX(entry)); // true
 * ```
 * @module
 */
import type { Entry } from '../../lib/base/messages.ts';
import { cborEncoder } from '../../lib/storage/codec.ts';

/** Entry kinds as the storage writes them (its module comment): the first element of the array. */
const storedKinds = { noop: 0, command: 1, config: 2 } as const;

/**
 * An entry as the storage stores it, `[kind, index, term, timeMs]` plus `data` or `members`,
 * encoded by the storage's cbor-x encoder: the reference `encodeEntry` is tested against.
 *
 * @example
 * ```ts
 * encodeEntryWithCborX({ type: 'noop', index: 1, term: 1, timeMs: 0 }); // 84 00 01 01 00
 * ```
 */
export function encodeEntryWithCborX(entry: Entry): Uint8Array {
  const fields: unknown[] = [storedKinds[entry.type], entry.index, entry.term, entry.timeMs];
  if (entry.type === 'command') fields.push(entry.data);
  if (entry.type === 'config') fields.push(entry.members);
  return cborEncoder.encode(fields);
}
