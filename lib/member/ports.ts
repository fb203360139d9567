/**
 * The narrow interfaces the member driver sees the world through. A real member (`RaftServer`)
 * wires them to real timers, TCP and LMDB; the simulator wires them to virtual time, a simulated
 * network and memory storage that loses what was not yet durable. The driver imports nothing
 * else that touches I/O, so the simulator runs exactly the code users run.
 *
 * @module
 */
import type { RaftMessage } from '../base/messages.ts';
import type { ApplyResult } from '../state/executor.ts';
import type { Entry, SnapshotMeta } from '../base/messages.ts';
import type { Ready } from '../core/raft.ts';
import type { Logger } from '../base/logger.ts';

/**
 * Time, as the driver may use it. Threading: callbacks run on the caller's event loop (or the
 * simulator's), never re-entrantly inside the call that registered them.
 *
 * @example
 * ```ts
 * const realClock: Clock = {
 *   nowMs: () => Date.now(),
 *   setTimer: (ms, f) => { const t = setTimeout(f, ms); return () => clearTimeout(t); },
 *   defer: (f) => void setImmediate(f),
 * };
 * ```
 */
export interface Clock {
  /**
   * Milliseconds since some epoch: the wall clock on a real member (it stamps log time into new
   * entries and measures deadlines), virtual time in the simulator.
   */
  nowMs(): number;
  /** Run `callback` once, `delayMs` from now; the returned function cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
  /** Run `callback` soon, after the current turn and what it queued (setImmediate on a real member). */
  defer(callback: () => void): void;
}

/**
 * Sending to peers. Contract as `Transport` (`lib/transport/transport.ts`): `send` never blocks
 * or throws for network reasons, delivery is at most once; inbound messages reach the driver
 * through `MemberDriver.receive`, called by whoever owns the transport.
 */
export interface MemberTransport {
  /** Send `message` to `message.to`, fire-and-forget. */
  send(message: RaftMessage): void;
  /** The members to keep connections to: id to peer address (the latest configuration). */
  setPeers(peers: ReadonlyMap<string, string>): void;
  /**
   * Optional: tell `handler` when the connection to a peer is lost, so a leader stops streaming
   * appends into the void and probes the peer again once it is back (etcd's `ReportUnreachable`).
   */
  onPeerDown?(handler: (member: string) => void): void;
  /**
   * Optional: hand what `send` queued to the network now instead of at the end of this turn; the
   * driver calls it before a storage write, which may block the loop while it syncs.
   */
  flush?(): void;
}

/**
 * Where the driver reports what an operator should see: a message, with structured fields where
 * the line is about something (see `lib/base/logger.ts`).
 */
export type MemberLogger = Logger;

/**
 * Observation points for checkers (the simulator's safety checks, scripted tests). Each is called
 * synchronously at the moment it names; none may change anything.
 */
export type DriverProbe = {
  /** A ready was taken from the core (before anything of it is carried out). */
  ready?(ready: Ready): void;
  /** The writes of `ready` are durable (its entries are stored). */
  persisted?(ready: Ready): void;
  /** Committed entries handed to the state machine, in order. */
  committed?(entries: readonly Entry[]): void;
  /** A command entry's result, as the state machine produced it. */
  applied?(result: ApplyResult<unknown>): void;
  /** A snapshot from the leader was installed: the state machine now stands at `meta.index`. */
  installed?(meta: SnapshotMeta): void;
  /** A local snapshot was taken and stored at `meta.index`. */
  snapshotTaken?(meta: SnapshotMeta): void;
};
