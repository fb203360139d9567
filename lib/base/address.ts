/**
 * Network addresses: the one place that parses and prints `host:port`. Hosts are names, IPv4
 * addresses or bracketed IPv6 addresses (`[::1]:7001`). A listen address may use port 0 (the
 * system picks a free port, reported afterwards); an address to dial may not.
 *
 * @example
 * ```ts
 * parseAddress('127.0.0.1:7001'); // { host: '127.0.0.1', port: 7001 }
 * parseAddress('[::1]:0', { portZero: true }); // { host: '::1', port: 0 }
 * formatAddress('::1', 7001); // '[::1]:7001'
 * ```
 * @module
 */
import * as v from 'valibot';

/** Longest address accepted, in characters (a DNS name is at most 253). */
export const addressLengthMax = 256;

const addressPattern = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/;

/** A `host:port` to listen on: port 0 allowed. */
export const ListenAddressSchema: v.GenericSchema<string> = v.pipe(
  v.string(),
  v.maxLength(addressLengthMax, `Expected at most ${addressLengthMax} characters`),
  v.check((s) => addressError(s, true) === null, 'Expected host:port (port 0-65535)'),
);

/** A `host:port` to dial: port 1-65535. */
export const DialAddressSchema: v.GenericSchema<string> = v.pipe(
  v.string(),
  v.maxLength(addressLengthMax, `Expected at most ${addressLengthMax} characters`),
  v.check((s) => addressError(s, false) === null, 'Expected host:port (port 1-65535)'),
);

/** Why `address` is not a valid `host:port`, or `null` when it is. */
export function addressError(address: string, portZero: boolean): string | null {
  if (address.length > addressLengthMax) return `longer than ${addressLengthMax} characters`;
  const match = addressPattern.exec(address);
  if (match === null) return 'expected host:port';
  const port = Number(match[2]);
  if (port > 65_535 || (port === 0 && !portZero)) {
    return `port ${match[2]} out of range ${portZero ? 0 : 1}-65535`;
  }
  return null;
}

/**
 * Split `host:port` (or `[v6]:port`). Throws `RangeError` naming the address when malformed.
 * `portZero: true` accepts port 0 (a listen address).
 */
export function parseAddress(
  address: string,
  options: { portZero?: boolean } = {},
): { host: string; port: number } {
  const error = addressError(address, options.portZero === true);
  if (error !== null) throw new RangeError(`Invalid address ${address}: ${error}`);
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}

/** Print `host` and `port` as an address `parseAddress` reads back (IPv6 in brackets). */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
