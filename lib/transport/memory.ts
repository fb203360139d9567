/**
 * `MemoryNetwork` and `MemoryTransport`: the `Transport` interface in one process, for unit tests.
 * Every message is encoded and decoded with the same codec and schema as on TCP (so a test cannot
 * pass with a message the wire would refuse) and delivered on a later macrotask, never
 * re-entrantly. Links can be cut to simulate partitions; cut links drop messages.
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork();
 * const a = network.transport('a');
 * const b = network.transport('b');
 * b.onMessage((message) => console.log(message.type)); // 'heartbeat', on a later turn
 * a.send({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commitIndex: 0, readSeq: 0 });
 * ```
 * @module
 */
import { setImmediate } from 'node:timers';
import { type RaftMessage, RaftMessageSchema } from '../base/messages.ts';
import { assert } from '../base/errors.ts';
import { MessageCodec } from './codec.ts';
import type { Transport, TransportCounters } from './transport.ts';

/** Deepest nesting the in-memory codec accepts: the TCP default. */
const nestingDepthMax = 16;

/**
 * An in-process network of `MemoryTransport`s, keyed by member id.
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork();
 * network.cut('a', 'b'); // a's messages to b are dropped until network.heal('a', 'b')
 * ```
 */
export class MemoryNetwork {
  readonly #transports = new Map<string, MemoryTransport>();
  readonly #cut = new Set<string>();
  readonly #codec = new MessageCodec(RaftMessageSchema, { nestingDepthMax });

  /** The transport of `member`, created on first use. */
  transport(member: string): MemoryTransport {
    let transport = this.#transports.get(member);
    if (transport === undefined) {
      transport = new MemoryTransport(this, member);
      this.#transports.set(member, transport);
    }
    return transport;
  }

  /** Drop messages from `from` to `to` (one direction) until `heal`. */
  cut(from: string, to: string): void {
    this.#cut.add(`${from}\u0000${to}`);
  }

  /** Deliver messages from `from` to `to` again. */
  heal(from: string, to: string): void {
    this.#cut.delete(`${from}\u0000${to}`);
  }

  /** Route one message; returns false when it is dropped. */
  deliver(message: RaftMessage): boolean {
    const target = this.#transports.get(message.to);
    if (
      target === undefined || target.closed || this.#cut.has(`${message.from}\u0000${message.to}`)
    ) return false;
    const result = this.#codec.decode(this.#codec.encode(message));
    assert(
      result.ok,
      `MemoryNetwork: a sent message fails its schema: ${result.ok ? '' : result.reason}`,
    );
    setImmediate(() => target.receive(result.value));
    return true;
  }
}

/** One member's endpoint on a `MemoryNetwork`. Peers' addresses are ignored. */
export class MemoryTransport implements Transport {
  readonly member: string;
  readonly counters: TransportCounters = {
    sentCount: 0,
    droppedCount: 0,
    receivedCount: 0,
    rejectedCount: 0,
  };
  readonly #network: MemoryNetwork;
  readonly #peers = new Set<string>();
  #handler: (message: RaftMessage) => void = () => {};
  #closed = false;

  /** Use `MemoryNetwork.transport(member)`. */
  constructor(network: MemoryNetwork, member: string) {
    this.#network = network;
    this.member = member;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  send(message: RaftMessage): void {
    if (this.#closed || !this.#peers.has(message.to) || !this.#network.deliver(message)) {
      this.counters.droppedCount += 1;
      return;
    }
    this.counters.sentCount += 1;
  }

  onMessage(handler: (message: RaftMessage) => void): void {
    this.#handler = handler;
  }

  setPeers(peers: ReadonlyMap<string, string>): void {
    this.#peers.clear();
    for (const member of peers.keys()) this.#peers.add(member);
  }

  addPeer(member: string, _address: string): void {
    this.#peers.add(member);
  }

  removePeer(member: string): void {
    this.#peers.delete(member);
  }

  /** Called by the network on a later macrotask. */
  receive(message: RaftMessage): void {
    if (this.#closed) return;
    this.counters.receivedCount += 1;
    this.#handler(message);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
