/**
 * The narrow interface between a Raft member and the network. Implemented by `TcpTransport`
 * (real sockets); the simulator's network implements the driver's narrower `MemberTransport`.
 *
 * Contract:
 * - Threading: everything runs on the caller's event loop. `send` never blocks and never throws
 *   for network reasons; handlers are called from the event loop, never re-entrantly from `send`.
 * - Delivery: at most once, in order per (sender, receiver) pair while a connection lasts.
 *   Messages may be lost (peer unreachable, connection closed, `inflightBytesMax` reached); Raft
 *   tolerates loss and retries. Every delivered message has passed `RaftMessageSchema`, and its
 *   `from` is the member named in the connection's handshake.
 * - Lifetime: `close()` frees every socket and timer; after it, `send` drops everything.
 *
 * @example
 * ```ts
 * function wire(transport: Transport, core: { step(m: RaftMessage): void }) {
 *   transport.onMessage((message) => core.step(message));
 *   transport.setPeers(new Map([['b', '127.0.0.1:7001']]));
 * }
 * ```
 * @module
 */
import type { RaftMessage } from '../base/messages.ts';

/** Counters every transport keeps; they only grow. */
export type TransportCounters = {
  /** Messages handed to a connection (or the in-memory network) for sending. */
  sentCount: number;
  /** Messages dropped: unknown or unreachable peer, or `inflightBytesMax` reached. */
  droppedCount: number;
  /** Messages delivered to the handler. */
  receivedCount: number;
  /** Connections closed because of bad input, a deadline or a limit. */
  rejectedCount: number;
};

/** See the module comment for the threading and delivery contract. */
export interface Transport {
  /** This member's id. */
  readonly member: string;
  /** Send `message` to `message.to`, fire-and-forget. Dropped (and counted) when unreachable. */
  send(message: RaftMessage): void;
  /** Set the one handler for inbound messages (replacing any earlier one). */
  onMessage(handler: (message: RaftMessage) => void): void;
  /** Replace the peer list: member id to `host:port`. Peers no longer listed are disconnected. */
  setPeers(peers: ReadonlyMap<string, string>): void;
  /** Add or update one peer. */
  addPeer(member: string, address: string): void;
  /** Forget one peer and close its connection. */
  removePeer(member: string): void;
  /**
   * Hand what `send` queued to the sockets now rather than at the end of this event-loop turn:
   * the driver calls it before a storage write that may block the loop (a synchronous commit),
   * so that a leader's appends are on their way while it syncs. Optional.
   */
  flush?(): void;
  /** Counters for monitoring and tests. */
  readonly counters: Readonly<TransportCounters>;
  /** Close every connection and timer; resolves when the listener is closed. */
  close(): Promise<void>;
}

/** Heartbeats, votes and their answers go in the control lane; appends and snapshots in bulk. */
export function laneOf(message: RaftMessage): 'control' | 'bulk' {
  return message.type === 'append' || message.type === 'snapshot' ? 'bulk' : 'control';
}
