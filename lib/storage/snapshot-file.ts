/**
 * The snapshot file of `snapshot save` and `snapshot restore` (etcdctl's snapshot db file): one
 * member's snapshot (its metadata and its bytes) in a self-describing, checksummed file.
 *
 * Layout (integers big-endian):
 * - 8 bytes: the magic `EDGESNAP`;
 * - 2 bytes: the format version (`snapshotFileVersion`, 1);
 * - 4 bytes: the header's length H in bytes (at most `snapshotFileHeaderBytesMax`);
 * - H bytes: the header, one CBOR map: `index`, `term`, `timeMs` (log time), `members` (the
 *   configuration at the snapshot), `dataBytes` (the data's length), `savedAtMs` (wall clock),
 *   `savedFrom` (the member it came from);
 * - `dataBytes` bytes: the snapshot data, as the member's state machine wrote it;
 * - 32 bytes: the SHA-256 of every byte before it.
 *
 * The digest comes last so that a save can stream the data without holding it. A file is written
 * as `FILE.part` and renamed to `FILE` only once complete and synced, so `FILE` is never a half
 * file; `verifySnapshotFile` refuses anything else with a `SnapshotFileError` that says what is
 * wrong (not a snapshot file, another version, truncated, corrupted).
 *
 * @example
 * ```ts
 * const writer = SnapshotFileWriter.create('backup.snap', header);
 * writer.append(bytes);
 * const { sha256 } = writer.finish(); // backup.snap now exists, complete
 * const verified = verifySnapshotFile('backup.snap'); // { header, dataOffsetBytes, sha256 }
 * for (const chunk of readSnapshotFileData('backup.snap', verified)) use(chunk);
 * ```
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import * as v from 'valibot';
import { MemberIdSchema, MembersSchema, NaturalSchema } from '../base/messages.ts';
import { cborDecoder, cborEncoder } from './codec.ts';

/** The first 8 bytes of every snapshot file. */
export const snapshotFileMagic: Uint8Array = new TextEncoder().encode('EDGESNAP');
/** The format version this code writes and reads. */
export const snapshotFileVersion = 1;
/** Largest header accepted, in bytes: 1 MiB (a configuration of many members fits many times). */
export const snapshotFileHeaderBytesMax = 1024 * 1024;
/** Bytes of the fixed prefix: magic, version, header length. */
const prefixBytes = 8 + 2 + 4;
/** Bytes of the SHA-256 digest at the end. */
const digestBytes = 32;
/** Bytes read at once while checking or reading a file: 1 MiB. */
export const snapshotFileReadBytesMax = 1024 * 1024;

/** The header's fields, validated on read like any input from outside. */
export const SnapshotFileHeaderSchema = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  timeMs: NaturalSchema,
  members: MembersSchema,
  dataBytes: NaturalSchema,
  savedAtMs: NaturalSchema,
  savedFrom: MemberIdSchema,
});
export type SnapshotFileHeader = v.InferOutput<typeof SnapshotFileHeaderSchema>;

/** A snapshot file that cannot be used: not one, another version, truncated or corrupted. */
export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFileError';
  }
}

/**
 * Writes a snapshot file as `path + '.part'`, renamed to `path` by `finish`; see the module
 * comment. Not for concurrent use.
 */
export class SnapshotFileWriter {
  readonly path: string;
  readonly partPath: string;
  readonly header: SnapshotFileHeader;
  readonly #fd: number;
  readonly #hash: Hash = createHash('sha256');
  /** Data bytes appended so far. Invariant: at most `header.dataBytes`. */
  #dataBytes = 0;
  #closed = false;

  private constructor(path: string, header: SnapshotFileHeader, fd: number) {
    this.path = path;
    this.partPath = `${path}.part`;
    this.header = header;
    this.#fd = fd;
  }

  /** Start `path + '.part'` (replacing any left by an earlier attempt) with the header. */
  static create(path: string, header: SnapshotFileHeader): SnapshotFileWriter {
    const checked = v.parse(SnapshotFileHeaderSchema, header);
    const encoded = cborEncoder.encode(checked) as Uint8Array;
    if (encoded.byteLength > snapshotFileHeaderBytesMax) {
      throw new RangeError(
        `Snapshot file header too large: ${encoded.byteLength} bytes, limit ${snapshotFileHeaderBytesMax}`,
      );
    }
    const writer = new SnapshotFileWriter(path, checked, openSync(`${path}.part`, 'w'));
    const prefix = new Uint8Array(prefixBytes);
    prefix.set(snapshotFileMagic, 0);
    const view = new DataView(prefix.buffer);
    view.setUint16(8, snapshotFileVersion);
    view.setUint32(10, encoded.byteLength);
    writer.#write(prefix);
    writer.#write(encoded);
    return writer;
  }

  /** Data bytes written so far. */
  get dataBytes(): number {
    return this.#dataBytes;
  }

  #write(bytes: Uint8Array, hashed = true): void {
    if (hashed) this.#hash.update(bytes);
    let offset = 0;
    while (offset < bytes.byteLength) {
      offset += writeSync(this.#fd, bytes, offset, bytes.byteLength - offset);
    }
  }

  /** Append the next data bytes. More than the header's `dataBytes` in all is a RangeError. */
  append(data: Uint8Array): void {
    if (this.#dataBytes + data.byteLength > this.header.dataBytes) {
      throw new RangeError(
        `Snapshot data longer than announced: ${
          this.#dataBytes + data.byteLength
        } bytes, header says ${this.header.dataBytes}`,
      );
    }
    this.#write(data);
    this.#dataBytes += data.byteLength;
  }

  /** Write the digest, sync, close and rename to `path`. Resolves with the digest, in hex. */
  finish(): { sha256: string; fileBytes: number } {
    if (this.#dataBytes !== this.header.dataBytes) {
      throw new RangeError(
        `Snapshot data shorter than announced: ${this.#dataBytes} bytes, header says ${this.header.dataBytes}`,
      );
    }
    const digest = new Uint8Array(this.#hash.digest());
    this.#write(digest, false);
    fsyncSync(this.#fd);
    const fileBytes = fstatSync(this.#fd).size;
    this.#closed = true;
    closeSync(this.#fd);
    renameSync(this.partPath, this.path);
    return { sha256: hex(digest), fileBytes };
  }

  /** Close and remove the `.part` file. Idempotent; nothing under `path` is touched. */
  abort(): void {
    if (!this.#closed) {
      this.#closed = true;
      closeSync(this.#fd);
    }
    rmSync(this.partPath, { force: true });
  }
}

/** A verified snapshot file: its header, where its data starts, and its digest in hex. */
export type VerifiedSnapshotFile = {
  path: string;
  header: SnapshotFileHeader;
  dataOffsetBytes: number;
  sha256: string;
};

/** Read exactly `length` bytes at `position` (fewer only at the end of the file). */
function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Check the file at `path` completely (magic, version, length, SHA-256, header) and return its
 * header; throws `SnapshotFileError` saying what is wrong. Reads the file in chunks of
 * `snapshotFileReadBytesMax`.
 */
export function verifySnapshotFile(path: string): VerifiedSnapshotFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new SnapshotFileError(`Cannot open snapshot file ${path}: ${(error as Error).message}`);
  }
  try {
    const sizeBytes = fstatSync(fd).size;
    const prefix = readAt(fd, 0, prefixBytes);
    const magic = prefix.subarray(0, 8);
    if (magic.byteLength < 8 || !magic.every((b, i) => b === snapshotFileMagic[i])) {
      throw new SnapshotFileError(
        `Not an edgeraft snapshot file: ${path} does not start with EDGESNAP`,
      );
    }
    if (prefix.byteLength < prefixBytes) {
      throw new SnapshotFileError(
        `Snapshot file truncated: ${path} is ${sizeBytes} bytes, shorter than its fixed prefix`,
      );
    }
    const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
    const version = view.getUint16(8);
    if (version !== snapshotFileVersion) {
      throw new SnapshotFileError(
        `Unsupported snapshot file version ${version}: this edgeraft reads version ${snapshotFileVersion}`,
      );
    }
    const headerBytes = view.getUint32(10);
    if (headerBytes > snapshotFileHeaderBytesMax) {
      throw new SnapshotFileError(
        `Snapshot file corrupted: header of ${headerBytes} bytes, limit ${snapshotFileHeaderBytesMax}`,
      );
    }
    const dataOffsetBytes = prefixBytes + headerBytes;
    // The header says how long the file must be: a truncated file is named as such.
    const header = dataOffsetBytes <= sizeBytes
      ? decodeHeader(readAt(fd, prefixBytes, headerBytes))
      : null;
    if (header === null && dataOffsetBytes + digestBytes > sizeBytes) {
      throw new SnapshotFileError(
        `Snapshot file truncated: ${path} is ${sizeBytes} bytes, its header alone needs ${dataOffsetBytes}`,
      );
    }
    if (header !== null) {
      const expectedBytes = dataOffsetBytes + header.dataBytes + digestBytes;
      if (sizeBytes < expectedBytes) {
        throw new SnapshotFileError(
          `Snapshot file truncated: ${path} is ${sizeBytes} bytes, expected ${expectedBytes}`,
        );
      }
      if (sizeBytes > expectedBytes) {
        throw new SnapshotFileError(
          `Snapshot file corrupted: ${path} is ${sizeBytes} bytes, expected ${expectedBytes}`,
        );
      }
    }
    const hash = createHash('sha256');
    const hashedBytes = sizeBytes - digestBytes;
    for (let at = 0; at < hashedBytes; at += snapshotFileReadBytesMax) {
      hash.update(readAt(fd, at, Math.min(snapshotFileReadBytesMax, hashedBytes - at)));
    }
    const computed = hex(new Uint8Array(hash.digest()));
    const stored = hex(readAt(fd, hashedBytes, digestBytes));
    if (computed !== stored) {
      throw new SnapshotFileError(
        `Snapshot file corrupted: SHA-256 mismatch (stored ${stored}, computed ${computed})`,
      );
    }
    if (header === null) {
      throw new SnapshotFileError(`Snapshot file corrupted: its header is not a valid header`);
    }
    return { path, header, dataOffsetBytes, sha256: computed };
  } finally {
    closeSync(fd);
  }
}

/** The header decoded and validated, or null when it is not one. */
function decodeHeader(bytes: Uint8Array): SnapshotFileHeader | null {
  try {
    const result = v.safeParse(SnapshotFileHeaderSchema, cborDecoder.decode(bytes));
    return result.success ? result.output : null;
  } catch {
    return null;
  }
}

/** The data of a verified file, in chunks of at most `snapshotFileReadBytesMax`. */
export function* readSnapshotFileData(file: VerifiedSnapshotFile): Iterable<Uint8Array> {
  const fd = openSync(file.path, 'r');
  try {
    const end = file.dataOffsetBytes + file.header.dataBytes;
    for (let at = file.dataOffsetBytes; at < end; at += snapshotFileReadBytesMax) {
      const wantedBytes = Math.min(snapshotFileReadBytesMax, end - at);
      const chunk = readAt(fd, at, wantedBytes);
      if (chunk.byteLength !== wantedBytes) {
        throw new SnapshotFileError(`Snapshot file truncated while reading: ${file.path}`);
      }
      yield chunk;
    }
  } finally {
    closeSync(fd);
  }
}
