/**
 * How `LmdbKvStateMachine` lays its keys and values out in its database, so that byte order is
 * the key-value machine's order (UTF-16 code units, as `Array.prototype.sort` compares strings)
 * and every string round-trips exactly, lone surrogates included.
 *
 * Strings are encoded one code unit at a time, order-preserving and prefix-free: a unit below
 * 0x80 is one byte; below 0x4000, two (`10xxxxxx xxxxxxxx`); else three (`110000xx 00xxxxxx
 * xxxxxxxx`). So ASCII costs a byte per character, a key prefix is a byte prefix, and comparing
 * bytes compares code units.
 *
 * Records, by first byte:
 * - `0x00 0x01`: the number of keys; `0x00 0x02`: the next watch order number; `0x00 0x03` and
 *   the session as 8 bytes: that session's watches, `[order, prefixes]` (sessions in order of
 *   their first watch, as the in-memory machine iterates them).
 * - `0x01` and the key's encoding, when shorter than `kvDiskKeyPrefixBytes`: the value's encoding.
 * - Longer keys (up to 3 bytes × `kvKeyLengthMax` code units, past LMDB's key limit): a group per
 *   first `kvDiskKeyPrefixBytes` bytes, `0x01`, those bytes and a 4-byte number unique in the
 *   group; the value holds the key's length in bytes (4 bytes), the key and the value. A group is
 *   read whole and sorted by key, so the order stays exact.
 *
 * @module
 */

/** Bytes of a key's encoding kept in the record key of a long key (the rest goes in the value). */
export const kvDiskKeyPrefixBytes = 1000;
/** Record keys of long keys: `0x01`, the prefix, a 4-byte number. */
export const kvDiskLongKeyBytes = 1 + kvDiskKeyPrefixBytes + 4;

export const sizeKey: Uint8Array = Uint8Array.of(0, 1);
export const watchOrderKey: Uint8Array = Uint8Array.of(0, 2);
export const watchPrefix: Uint8Array = Uint8Array.of(0, 3);
export const dataPrefix: Uint8Array = Uint8Array.of(1);

/** Bytes of the encoding of `text` (see the module comment). */
export function encodeUnits(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 3);
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    if (u < 0x80) out[at++] = u;
    else if (u < 0x4000) {
      out[at++] = 0x80 | (u >> 8);
      out[at++] = u & 0xff;
    } else {
      out[at++] = 0xc0 | (u >> 14);
      out[at++] = (u >> 8) & 0x3f;
      out[at++] = u & 0xff;
    }
  }
  return out.slice(0, at);
}

/** The text `encodeUnits` encoded; throws `Error` on bytes it cannot have written. */
export function decodeUnits(bytes: Uint8Array): string {
  const units: number[] = [];
  let text = '';
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    if (b < 0x80) {
      units.push(b);
      i += 1;
    } else if (b < 0xc0) {
      if (i + 1 >= bytes.length) throw new Error('Truncated key-value record');
      units.push(((b & 0x3f) << 8) | bytes[i + 1]!);
      i += 2;
    } else {
      if (b > 0xc3 || i + 2 >= bytes.length) throw new Error('Malformed key-value record');
      units.push(((b & 0x03) << 14) | ((bytes[i + 1]! & 0x3f) << 8) | bytes[i + 2]!);
      i += 3;
    }
    if (units.length >= 8192) {
      text += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return text + String.fromCharCode(...units);
}

/** `a` followed by `b`. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** The smallest key after every key that starts with `prefix` (undefined: none). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.byteLength - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]!++;
      return end;
    }
  }
  return undefined;
}

/** True when `bytes` starts with `prefix`. */
export function startsWithBytes(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** A big-endian unsigned number of `bytes` bytes (4 or 8) at `at`. */
export function readUint(bytes: Uint8Array, at: number, width: 4 | 8): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return width === 4 ? view.getUint32(at) : view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

/** `n` (a safe integer ≥ 0) as `width` big-endian bytes. */
export function uintBytes(n: number, width: 4 | 8): Uint8Array {
  const out = new Uint8Array(width);
  const view = new DataView(out.buffer);
  if (width === 4) view.setUint32(0, n);
  else {
    view.setUint32(0, Math.floor(n / 2 ** 32));
    view.setUint32(4, n % 2 ** 32);
  }
  return out;
}
