/**
 * Investigation helper for `bench/support/cluster-trace.ts`: one cluster member like `lib/cli.ts
 * serve` (KV state machine, durable LMDB, the same defaults), with timestamps recorded around the
 * stages of the commit path by wrapping public prototype methods (nothing in lib/ is edited):
 * `MemberDriver.handle` of client commands (start and settle, with the index), `LmdbStorage.write`,
 * `StateMachineExecutor.applyEntries`, `TcpTransport.send` and the message handler, the pump's
 * `Raft.ready`/`advance`, and every `net.Socket.write` (`socket:write`, its bytes in `a`). Timestamps are `performance.timeOrigin + performance.now()` in ms so the
 * members' traces line up. On SIGTERM the events are written as JSON to `--trace FILE`.
 *
 * Usage: `tsx bench/support/traced-serve.ts --id n1 --data DIR --members n1=H:P/H:P,... --cluster
 * bench --trace FILE [--snapshot-entries N]`
 *
 * @example
 * ```ts
 * spawnTs('bench/support/traced-serve.ts', ['--id', 'n1', '--data', dir, '--members', m, '--trace', f]);
 * ```
 * @module
 */
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import process from 'node:process';
import type { MemberReply, MemberRequest } from '../../lib/base/member-requests.ts';
import type { RaftMessage } from '../../lib/base/messages.ts';
import { MemberDriver } from '../../lib/member/driver.ts';
import { Raft } from '../../lib/core/raft.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { StateMachineExecutor } from '../../lib/state/executor.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import type { WriteBatch } from '../../lib/storage/storage.ts';
import { TcpTransport } from '../../lib/transport/tcp.ts';

/** One recorded event: kind, time in ms, and numbers describing it. */
export type TraceEvent = { k: string; t: number; a?: number; b?: number; s?: string };

/** Most events kept (about 100 bytes each). */
const eventsMax = 3_000_000;
const events: TraceEvent[] = [];
const now = () => performance.timeOrigin + performance.now();
const note = (e: TraceEvent) => void (events.length < eventsMax && events.push(e));

function flag(name: string): string {
  const at = process.argv.indexOf(name);
  const value = at === -1 ? undefined : process.argv[at + 1];
  if (value === undefined) throw new TypeError(`Flag ${name} is required`);
  return value;
}

type Proto = Record<string, (...args: unknown[]) => unknown>;
function wrap(
  proto: unknown,
  name: string,
  around: (original: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown,
): void {
  const p = proto as Proto;
  const original = p[name]!;
  p[name] = around(original);
}

// Client commands reach the driver through `handle` (the client port), not `proposeBytes`.
wrap(
  MemberDriver.prototype,
  'handle',
  (original) =>
    function (this: unknown, ...args: unknown[]) {
      const t = now();
      const promise = original.apply(this, args) as Promise<MemberReply>;
      if ((args[0] as MemberRequest).kind === 'command') {
        promise.then((r) => {
          if (r.ok && 'index' in r && typeof r.index === 'number') {
            note({ k: 'proposed', t, a: r.index, b: now() });
          }
        }, () => {});
      }
      return promise;
    },
);
wrap(LmdbStorage.prototype, 'write', (original) =>
  function (this: unknown, ...args: unknown[]) {
    const batch = args[0] as WriteBatch;
    const first = batch.entries?.[0]?.index ?? 0;
    const last = batch.entries?.[batch.entries.length - 1]?.index ?? 0;
    const t = now();
    const promise = original.apply(this, args) as Promise<void>;
    promise.then(() => note({ k: 'write', t, a: first, b: last, s: String(now()) }), () => {});
    return promise;
  });
wrap(
  StateMachineExecutor.prototype,
  'applyEntries',
  (original) =>
    function (this: unknown, ...args: unknown[]) {
      const entries = args[0] as { index: number }[];
      note({
        k: 'apply',
        t: now(),
        a: entries[0]?.index ?? 0,
        b: entries[entries.length - 1]?.index ?? 0,
      });
      return original.apply(this, args);
    },
);
wrap(net.Socket.prototype, 'write', (original) =>
  function (this: unknown, ...args: unknown[]) {
    const chunk = args[0] as { byteLength?: number; length: number };
    note({ k: 'socket:write', t: now(), a: chunk.byteLength ?? chunk.length });
    return original.apply(this, args);
  });
// Event-loop stalls: a 5 ms timer that ran more than 50 ms after the previous run (`loop:gap`,
// the gap in ms in `a`), so a member that went silent can be told from one that was never asked.
let loopLast = now();
setInterval(() => {
  const t = now();
  if (t - loopLast > 50) note({ k: 'loop:gap', t, a: t - loopLast });
  loopLast = t;
}, 5).unref();
// Garbage-collection pauses over 20 ms (`gc`, the pause in ms in `a`, V8's kind in `b`).
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    if (e.duration > 20) {
      note({ k: 'gc', t: performance.timeOrigin + e.startTime, a: e.duration, b: kind });
    }
  }
}).observe({ entryTypes: ['gc'] });
function describe(m: RaftMessage): { a: number; b: number } {
  if (m.type === 'append') {
    return { a: m.entries[m.entries.length - 1]?.index ?? m.prevLogIndex, b: m.commitIndex };
  }
  if (m.type === 'appendResponse') return { a: m.matchIndex, b: 0 };
  return { a: 0, b: 0 };
}
wrap(TcpTransport.prototype, 'send', (original) =>
  function (this: unknown, ...args: unknown[]) {
    const m = args[0] as RaftMessage;
    note({ k: `send:${m.type}`, t: now(), ...describe(m), s: m.to });
    return original.apply(this, args);
  });
wrap(
  TcpTransport.prototype,
  'onMessage',
  (original) =>
    function (this: unknown, ...args: unknown[]) {
      const handler = args[0] as (m: RaftMessage) => void;
      return original.call(this, (m: RaftMessage) => {
        note({ k: `recv:${m.type}`, t: now(), ...describe(m), s: m.from });
        handler(m);
      });
    },
);
wrap(Raft.prototype, 'ready', (original) =>
  function (this: unknown, ...args: unknown[]) {
    note({ k: 'ready', t: now() });
    return original.apply(this, args);
  });
wrap(Raft.prototype, 'advance', (original) =>
  function (this: unknown, ...args: unknown[]) {
    note({ k: 'advance', t: now() });
    return original.apply(this, args);
  });

const members = flag('--members').split(',').map((spec) => {
  const [id, addresses] = spec.split('=') as [string, string];
  const [address, clientAddress] = addresses.split('/') as [string, string];
  return { id, type: 'ACTIVE' as const, address, clientAddress };
});
const id = flag('--id');
const self = members.find((m) => m.id === id)!;
const server = await RaftServer.start({
  id,
  cluster: flag('--cluster'),
  dataDir: flag('--data'),
  peerAddress: self.address,
  clientAddress: self.clientAddress,
  members,
  stateMachine: new KvStateMachine(),
  ...(process.argv.includes('--snapshot-entries')
    ? { snapshotEntriesThreshold: Number(flag('--snapshot-entries')) }
    : {}),
});
console.log(JSON.stringify({ ready: true, id, pid: process.pid }));
await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
const role = server.role;
await server.stop();
const cpu = process.cpuUsage();
writeFileSync(
  flag('--trace'),
  JSON.stringify({
    id,
    role,
    events,
    cpuMs: (cpu.user + cpu.system) / 1000,
    upMs: performance.now(),
  }),
);
process.exit(0);
