/**
 * edgeraft as a `LoadTarget` of the bench client: KV `put` commands through `RaftClient`, one
 * client per mode (`on`: every command in an exactly-once session, the client's default; `off`:
 * plain commands). Every command's CBOR encoding is exactly `commandBytes` bytes (the key is
 * fixed-width, the value is padded to fit), over `keyCount` keys in turn.
 *
 * @example
 * ```ts
 * const target = await edgeraftTarget({ servers, modes: ['on', 'off'], keyCount: 10000, commandBytes: 100 });
 * await target.command('on', 0, 0);
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { RaftClient } from '../../lib/client/client.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import type { KvCommand } from '../../lib/state/kv.ts';
import type { LoadTarget } from './load.ts';

/** Make put commands over `keyCount` keys whose encoding is exactly `bytes` bytes. */
function commandsOf(keyCount: number, bytes: number): KvCommand[] {
  const codec = cborCodec<KvCommand>();
  const width = String(keyCount - 1).length;
  const keyOf = (i: number) => `k${String(i).padStart(width, '0')}`;
  // The encoding's overhead is the same for every key (fixed width); find the value length once.
  const overhead = codec.encode({ op: 'put', key: keyOf(0), value: '' }).byteLength;
  let valueLength = Math.max(0, bytes - overhead);
  while (
    valueLength > 0 &&
    codec.encode({ op: 'put', key: keyOf(0), value: 'x'.repeat(valueLength) }).byteLength > bytes
  ) valueLength--;
  const value = 'x'.repeat(valueLength);
  const got = codec.encode({ op: 'put', key: keyOf(0), value }).byteLength;
  if (got !== bytes) throw new RangeError(`Cannot make a ${bytes}-byte put command (got ${got})`);
  return Array.from({ length: keyCount }, (_, i) => ({ op: 'put', key: keyOf(i), value }));
}

/** Connect one `RaftClient` per mode to `servers`; commands are KV puts of `commandBytes` bytes. */
export async function edgeraftTarget(o: {
  servers: string[];
  /** `on` (sessions) and/or `off` (plain commands). */
  modes: readonly string[];
  keyCount: number;
  commandBytes: number;
  /** TLS to the client ports: the CA file ('' for plain TCP). */
  tlsCa?: string;
  /** The bearer token's file ('' for none). */
  tokenFile?: string;
}): Promise<LoadTarget> {
  const tlsCa = o.tlsCa ?? '';
  const tokenFile = o.tokenFile ?? '';
  const token = tokenFile === '' ? undefined : readFileSync(tokenFile, 'utf8').trim();
  const commands = commandsOf(o.keyCount, o.commandBytes);
  const clients = new Map<string, RaftClient>();
  for (const mode of o.modes) {
    if (mode !== 'on' && mode !== 'off') throw new RangeError(`Flag --sessions: ${mode} (on, off)`);
    clients.set(
      mode,
      await RaftClient.connect({
        servers: o.servers,
        requestTimeoutMs: 10_000,
        session: mode === 'on',
        ...(tlsCa === '' ? {} : { tls: { ca: tlsCa } }),
        ...(token === undefined ? {} : { token }),
      }),
    );
  }
  const first = clients.get(o.modes[0]!)!;
  return {
    modes: o.modes,
    ready: async () => void await first.command(commands[0]!),
    command: async (mode, _slot, seq) =>
      void await clients.get(mode)!.command(commands[seq % commands.length]!),
    leader: () => first.leaderId,
    close: async () => {
      for (const c of clients.values()) await c.close();
    },
  };
}
