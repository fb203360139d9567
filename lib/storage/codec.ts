/**
 * How the storage turns entries and records into bytes and back: binary CBOR, with cbor-x's
 * encoder and decoder imported from its pure subpaths ('cbor-x/encode', 'cbor-x/decode'), never
 * from the package root, whose optional native extension (cbor-extract) crashes Bun and Deno
 * while decoding. `test/storage/codec.test.ts` proves under each runtime that it stays unloaded.
 *
 * An entry is stored as a CBOR array, positional so that it is small and quick to encode:
 * `[kind, index, term, timeMs]` plus `data` (a byte string) for a command or `members` for a
 * configuration, where kind is 0 noop, 1 command, 2 config. Noop and command entries, the hot path
 * of every append, are written by `encodeEntry` itself into a shared buffer, byte for byte what
 * cbor-x's encoder produces for the same array (the codec test proves it on random and boundary
 * values): cbor-x's `encode` costs more per 100-byte entry than LMDB's own put, and the append
 * benchmark's goal is 0.8 of raw LMDB. They are written by the project's one CBOR writer
 * (`lib/base/cbor-writer.ts`), shared with the transport. Configuration entries and records go
 * through cbor-x. The log stores runs of consecutive entries as one value (`encodeRun`,
 * `decodeRun`): their encodings one after another, a CBOR sequence, so a run of one entry is
 * exactly `encodeEntry`'s bytes.
 *
 * @example
 * ```ts
 * const bytes = encodeEntry({ type: 'noop', index: 7, term: 2, timeMs: 0 });
 * decodeEntry(bytes, 7); // { type: 'noop', index: 7, term: 2, timeMs: 0 }
 * ```
 * @module
 */
import { Encoder } from 'cbor-x/encode';
import { Decoder } from 'cbor-x/decode';
import * as v from 'valibot';
import { cborHeadBytesMax, cborNumberBytesMax, CborWriter } from '../base/cbor-writer.ts';
import { StorageError } from '../base/errors.ts';
import { type Entry, EntrySchema, type MemberSchema } from '../base/messages.ts';

/**
 * cbor-x options, all spelled out: plain CBOR maps and arrays (no records, no shared structures),
 * byte strings untagged, and copied out of the source on decode because LMDB's read buffers are
 * reused once the read transaction moves on.
 */
const cborOptions = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  copyBuffers: true,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  useTimestamp32: false,
  useFloat32: 0,
  alwaysUseFloat: false,
  largeBigIntToFloat: false,
  variableMapSize: false,
  useSelfDescribedHeader: false,
} as const;

/** The encoder for records and configuration entries. */
export const cborEncoder = new Encoder(cborOptions);
/** The decoder for everything the storage reads. */
export const cborDecoder = new Decoder(cborOptions);

/** Entry kinds as stored: the first element of an entry's array. */
const kindNoop = 0;
const kindCommand = 1;
const kindConfig = 2;

/** Size of each shared buffer that noop and command entries are encoded into. */
const encodeBufferBytes = 256 * 1024;
/** Worst-case bytes an entry adds beyond its data: array and kind, three 9-byte numbers, 5-byte length. */
const entryHeaderBytesMax = 2 + 3 * cborNumberBytesMax + cborHeadBytesMax;

/** The project's one CBOR writer (lib/base/cbor-writer.ts), shared with the transport. */
const writer = new CborWriter(encodeBufferBytes);

/**
 * Encode a valid entry. The result is a view of a shared buffer that is never overwritten: a
 * full buffer is replaced, not reused, so earlier results stay valid for as long as LMDB holds
 * them (its asynchronous put keeps a pointer until the commit).
 */
export function encodeEntry(entry: Entry): Uint8Array {
  if (entry.type === 'config') return encodeConfigEntry(entry);
  writer.begin();
  writeEntry(entry);
  return writer.finish();
}

/**
 * Encode a run of valid, consecutive entries as one value: their encodings one after another (a
 * CBOR sequence), so that a run of one is byte for byte `encodeEntry`'s encoding. The result is a
 * view of the shared buffer, as `encodeEntry`'s.
 */
export function encodeRun(entries: readonly Entry[]): Uint8Array {
  writer.begin();
  for (const entry of entries) {
    if (entry.type === 'config') writer.raw(encodeConfigEntry(entry));
    else writeEntry(entry);
  }
  return writer.finish();
}

function encodeConfigEntry(entry: Entry & { type: 'config' }): Uint8Array {
  return cborEncoder.encode([kindConfig, entry.index, entry.term, entry.timeMs, entry.members]);
}

/** Append a noop or command entry to the item the writer is writing. */
function writeEntry(entry: Entry & { type: 'noop' | 'command' }): void {
  const command = entry.type === 'command';
  writer.ensure(entryHeaderBytesMax + (command ? entry.data.byteLength : 0));
  // The array head and the kind, each one byte (arrays of 4 or 5, kinds below 24).
  writer.byte(command ? 0x85 : 0x84);
  writer.byte(command ? kindCommand : kindNoop);
  // Naturals as cbor-x writes numbers: an unsigned integer below 2^32, a float64 above (exact,
  // since the schema keeps them below 2^53).
  writer.number(entry.index);
  writer.number(entry.term);
  writer.number(entry.timeMs);
  if (command) writer.bytes(entry.data);
}

function isNatural(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Whether `value` passes `EntrySchema`: a hand-written check for noop and command entries (the
 * hot path; valibot's check costs about as much as the LMDB put), valibot for configurations.
 * `test/storage/codec.test.ts` holds it to `v.is(EntrySchema, ...)` on crafted and random values.
 */
export function isEntry(value: unknown): value is Entry {
  // Mirrors valibot: any non-null object (arrays too), required keys read through the prototype
  // chain, and every enumerable key (inherited ones too, as `for in` sees them) must be known.
  if (!value || typeof value !== 'object') return false;
  const e = value as Record<string, unknown>;
  const type = e['type'];
  if (type === 'config') return v.is(EntrySchema, value);
  if (type !== 'noop' && type !== 'command') return false;
  for (const key in e) {
    if (
      key !== 'type' && key !== 'index' && key !== 'term' && key !== 'timeMs' &&
      (type !== 'command' || key !== 'data')
    ) return false;
  }
  return isNatural(e['index']) && isNatural(e['term']) && isNatural(e['timeMs']) &&
    (type === 'noop' || e['data'] instanceof Uint8Array);
}

/**
 * Decode and validate the entry stored under `index`. Any failure (undecodable bytes, a shape
 * that fails the schema, a stored index other than the key) is a `StorageError` naming the index.
 */
export function decodeEntry(bytes: Uint8Array, index: number): Entry {
  let decoded: unknown;
  try {
    decoded = cborDecoder.decode(bytes);
  } catch (error) {
    throw new StorageError(`Corrupted entry at index ${index}: undecodable CBOR`, { cause: error });
  }
  const entry = entryFromArray(decoded);
  if (entry === null || !isEntry(entry)) {
    throw new StorageError(`Corrupted entry at index ${index}: not a valid entry`);
  }
  if (entry.index !== index) {
    throw new StorageError(`Corrupted entry at index ${index}: it holds index ${entry.index}`);
  }
  return entry;
}

/**
 * Decode and validate the run of entries stored under `firstIndex` (see `encodeRun`): the entries
 * at `firstIndex`, `firstIndex + 1`, ... up to the end of the value, or only those below
 * `toIndex`. Any failure (undecodable bytes, an item that is not a valid entry, an entry holding
 * another index than its place, an empty value) is a `StorageError` naming the entry's index.
 */
export function decodeRun(bytes: Uint8Array, firstIndex: number, toIndex = Infinity): Entry[] {
  const out: Entry[] = [];
  let invalid: StorageError | null = null;
  try {
    cborDecoder.decodeMultiple(bytes, (decoded: unknown) => {
      const index = firstIndex + out.length;
      const entry = entryFromArray(decoded);
      if (entry === null || !isEntry(entry)) {
        invalid = new StorageError(`Corrupted entry at index ${index}: not a valid entry`);
        return false;
      }
      if (entry.index !== index) {
        invalid = new StorageError(
          `Corrupted entry at index ${index}: it holds index ${entry.index}`,
        );
        return false;
      }
      out.push(entry);
      return index + 1 < toIndex;
    });
  } catch (error) {
    throw new StorageError(
      `Corrupted entry at index ${firstIndex + out.length}: undecodable CBOR`,
      { cause: error },
    );
  }
  if (invalid !== null) throw invalid;
  if (out.length === 0) throw new StorageError(`Corrupted entry at index ${firstIndex}: empty`);
  return out;
}

function entryFromArray(decoded: unknown): Entry | null {
  if (!Array.isArray(decoded)) return null;
  const [kind, index, term, timeMs, body] = decoded as unknown[];
  const head = { index, term, timeMs } as { index: number; term: number; timeMs: number };
  if (kind === kindNoop && decoded.length === 4) return { type: 'noop', ...head };
  if (kind === kindCommand && decoded.length === 5) {
    return { type: 'command', ...head, data: body as Uint8Array };
  }
  if (kind === kindConfig && decoded.length === 5) {
    return { type: 'config', ...head, members: body as v.InferOutput<typeof MemberSchema>[] };
  }
  return null;
}

/** Encode a record (hard state, snapshot metadata, configuration) with cbor-x. */
export function encodeRecord(record: unknown): Uint8Array {
  return cborEncoder.encode(record);
}

/**
 * Decode a record and validate it with `schema`; a failure is a `StorageError` naming `what`.
 */
export function decodeRecord<S extends v.GenericSchema>(
  bytes: Uint8Array,
  schema: S,
  what: string,
): v.InferOutput<S> {
  let decoded: unknown;
  try {
    decoded = cborDecoder.decode(bytes);
  } catch (error) {
    throw new StorageError(`Corrupted ${what}: undecodable CBOR`, { cause: error });
  }
  const result = v.safeParse(schema, decoded);
  if (!result.success) {
    throw new StorageError(`Corrupted ${what}: ${result.issues[0]?.message ?? 'invalid'}`);
  }
  return result.output;
}
