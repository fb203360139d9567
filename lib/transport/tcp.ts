/**
 * `TcpTransport`: Raft messages over TCP on `node:net`, one implementation for Node, Bun and Deno.
 *
 * Direction: each member dials every peer and sends only on its own outbound connections; it
 * receives only on inbound connections that peers dialled. So each pair of members holds two
 * connections, each carrying traffic one way (apart from the handshake answer), and a restart on
 * either side heals by itself: the dialer reconnects with jittered exponential backoff, capped at
 * `reconnectDelayMsMax` (about one election timeout), so a peer that was down for long is found
 * within the cap once it is back. A peer that comes back dials us too: when its handshake on our
 * listener completes and our own connection to it is down, we redial it at once (backoff reset),
 * because Raft traffic to it (the appends that catch it up) flows only on our connection. A peer
 * that refuses our handshake (another cluster or version) is redialled only after
 * `refusedRedialDelayMs`.
 *
 * Inbound connections must send `hello` (cluster, member, version) within `handshakeDeadlineMs`;
 * another cluster or version is refused with a `refused` frame and a logged reason. After that
 * every frame must be a valid Raft message from that member to this one. Any violation, a frame
 * over `frameBytesMax`, or a frame not completed within `frameDeadlineMs` closes that one
 * connection with a logged reason; more than `connectionsMax` inbound connections are refused.
 *
 * @example
 * ```ts
 * const a = await TcpTransport.start({ cluster: 'c1', member: 'a' });
 * const b = await TcpTransport.start({ cluster: 'c1', member: 'b' });
 * b.onMessage((message) => console.log(message.type));
 * a.addPeer('b', b.address);
 * a.send({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commitIndex: 0, readSeq: 0 });
 * ```
 * @module
 */
import { listenRetrying } from './listen.ts';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { formatAddress, parseAddress } from '../base/address.ts';
import type { RaftMessage } from '../base/messages.ts';
import { MessageCodec } from './codec.ts';
import { FramedConnection, type Traffic } from './connection.ts';
import {
  type AcceptorInbound,
  AcceptorInboundSchema,
  checkHello,
  type DialerInbound,
  DialerInboundSchema,
  type Hello,
  protocolVersion,
} from './handshake.ts';
import {
  parseTransportOptions,
  refusedRedialDelayMs,
  type TransportOptions,
  type TransportOptionsInput,
} from './options.ts';
import { laneOf, type Transport, type TransportCounters } from './transport.ts';
import { acceptTls, checkPeerCertificate, looksLikeTls, TlsReloader } from './tls.ts';

type Peer = {
  member: string;
  address: string;
  host: string;
  port: number;
  socket: net.Socket | null;
  /** When the connect on `socket` started (`Date.now()`), while it is pending. */
  dialStartedMs: number;
  /** When `connection` was established (`Date.now()`). */
  connectedMs: number;
  connection: FramedConnection<DialerInbound> | null;
  /** Failed attempts since the last accepted handshake: drives the backoff. */
  attemptCount: number;
  /** The peer refused our last handshake: the next dial waits `refusedRedialDelayMs`. */
  refused: boolean;
  /** An unanswered heartbeat closed the connection and was logged: later ones log at debug. */
  silenceLogged: boolean;
  timer: ReturnType<typeof setTimeout> | null;
};

/**
 * An inbound connection: `names` are the member ids its TLS certificate names (null on a
 * plaintext port); its `hello` must claim one of them.
 */
type Inbound = { sinceMs: number; member: string | null; names: string[] | null };

/**
 * Members whose traffic is counted at most (the configured peers and the members that completed
 * a handshake on our listener): bytes of further members are not attributed, so a stream of made-up
 * member ids cannot grow the table without bound.
 */
export const trafficMembersMax = 1024;
/**
 * A heartbeat whose answer has not come within this many milliseconds no longer stands for the
 * round trip to its peer (it or its answer was lost): the next heartbeat is timed instead.
 */
export const roundTripProbeTimeoutMs = 10_000;

/**
 * One member's traffic, and the heartbeat being timed to it: `probeSeq` is that heartbeat's
 * `readSeq` (0: none), `probeSentMs` when it was sent (`performance.now()`).
 */
type PeerTraffic = Traffic & { probeSeq: number; probeSentMs: number };

/** See the module comment. Create with `TcpTransport.start`. */
export class TcpTransport implements Transport {
  readonly member: string;
  readonly counters: TransportCounters = {
    sentCount: 0,
    droppedCount: 0,
    receivedCount: 0,
    rejectedCount: 0,
  };
  readonly #options: TransportOptions;
  readonly #server: net.Server;
  readonly #acceptorCodec: MessageCodec<typeof AcceptorInboundSchema>;
  readonly #dialerCodec: MessageCodec<typeof DialerInboundSchema>;
  readonly #peers = new Map<string, Peer>();
  readonly #inbound = new Map<FramedConnection<AcceptorInbound>, Inbound>();
  readonly #sweep: ReturnType<typeof setInterval>;
  #handler: (message: RaftMessage) => void = () => {};
  #onPeerDown: (member: string) => void = () => {};
  #onRoundTrip: (member: string, durationMs: number) => void = () => {};
  readonly #traffic = new Map<string, PeerTraffic>();
  /** The peer port's TLS material (null: plain TCP), and whether this transport made it. */
  readonly #tls: TlsReloader | null;
  readonly #ownsTls: boolean;
  /**
   * Accepted sockets whose first bytes (plaintext port) or TLS handshake (TLS port) are awaited,
   * with when they were accepted: held to `handshakeDeadlineMs` and counted in `connectionsMax`.
   */
  readonly #pending = new Map<net.Socket, number>();
  #closed = false;
  #port = 0;

  private constructor(options: TransportOptions) {
    this.#options = options;
    this.member = options.member;
    const codecOptions = { nestingDepthMax: options.nestingDepthMax };
    this.#acceptorCodec = new MessageCodec(AcceptorInboundSchema, codecOptions);
    this.#dialerCodec = new MessageCodec(DialerInboundSchema, codecOptions);
    this.#server = net.createServer((socket) => this.#accept(socket));
    const tlsOption = options.tls;
    this.#ownsTls = tlsOption !== undefined && !(tlsOption instanceof TlsReloader);
    this.#tls = tlsOption === undefined
      ? null
      : tlsOption instanceof TlsReloader
      ? tlsOption
      : new TlsReloader(
        tlsOption,
        { ca: 'tls.ca', cert: 'tls.cert', key: 'tls.key' },
        options.logger,
        options.tlsReloadMs,
      );
    // One timer checks every deadline, instead of one timer per connection or per frame.
    const sweepMs = Math.max(
      10,
      Math.min(
        1_000,
        Math.floor(
          Math.min(
            options.frameDeadlineMs,
            options.handshakeDeadlineMs,
            options.answerDeadlineMs === 0 ? Infinity : options.answerDeadlineMs,
          ) / 4,
        ),
      ),
    );
    this.#sweep = setInterval(() => this.#checkDeadlines(), sweepMs);
    this.#sweep.unref();
  }

  /**
   * Validate `options` (TypeError/RangeError naming the option) and start listening.
   *
   * @example
   * ```ts
   * const transport = await TcpTransport.start({ cluster: 'c1', member: 'a', port: 0 });
   * console.log(transport.port); // the bound port
   * ```
   */
  static async start(options: TransportOptionsInput): Promise<TcpTransport> {
    const transport = new TcpTransport(parseTransportOptions(options));
    await transport.#listen();
    return transport;
  }

  /** The port the listener is bound to (useful with `port: 0`). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` that peers can dial. */
  get address(): string {
    return formatAddress(this.#options.host, this.#port);
  }

  /** Inbound connections currently held (handshaken or not). */
  get inboundCount(): number {
    return this.#inbound.size + this.#pending.size;
  }

  /** True when the peer port speaks TLS. */
  get tls(): boolean {
    return this.#tls !== null;
  }

  /**
   * Re-read the TLS files now (certificate rotation, e.g. on SIGHUP): new connections, both ways,
   * use them; established ones keep theirs. False (and logged) when they could not be read; the
   * previous ones stay. Without TLS, false.
   */
  reloadTls(): boolean {
    return this.#tls?.reload() ?? false;
  }

  /** Bytes queued or socket-buffered towards `member`, 0 when not connected. */
  inflightBytes(member: string): number {
    return this.#peers.get(member)?.connection?.inflightBytes ?? 0;
  }

  /** True when the outbound connection to `member` is established. */
  connected(member: string): boolean {
    const connection = this.#peers.get(member)?.connection;
    return connection !== undefined && connection !== null && !connection.closed;
  }

  send(message: RaftMessage): void {
    const connection = this.#peers.get(message.to)?.connection;
    if (
      connection === undefined || connection === null || !connection.send(message, laneOf(message))
    ) {
      this.counters.droppedCount += 1;
      return;
    }
    this.counters.sentCount += 1;
    if (message.type === 'heartbeat') this.#startProbe(message.to, message.readSeq);
  }

  /** Write what `send` queued to every peer now (see `Transport.flush`). */
  flush(): void {
    for (const peer of this.#peers.values()) peer.connection?.flush();
  }

  /**
   * Bytes sent to and received from each member since the transport started, frames with their
   * length prefixes (they only grow; at most `trafficMembersMax` members).
   */
  peerTraffic(): ReadonlyMap<string, Readonly<Traffic>> {
    return this.#traffic;
  }

  /** Bytes sent to each member since the transport started, by member id (see `peerTraffic`). */
  sentBytesByPeer(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, t] of this.#traffic) out[id] = t.sentBytes;
    return out;
  }

  /**
   * Set the one handler told each measured round trip to a peer: from a heartbeat leaving to its
   * answer arriving, in milliseconds. One heartbeat per peer is timed at a time (a leader's).
   */
  onRoundTrip(handler: (member: string, durationMs: number) => void): void {
    this.#onRoundTrip = handler;
  }

  #trafficOf(member: string): PeerTraffic | null {
    let t = this.#traffic.get(member);
    if (t === undefined) {
      if (this.#traffic.size >= trafficMembersMax) return null;
      t = { sentBytes: 0, receivedBytes: 0, probeSeq: 0, probeSentMs: 0 };
      this.#traffic.set(member, t);
    }
    return t;
  }

  #startProbe(member: string, readSeq: number): void {
    const t = this.#traffic.get(member);
    if (t === undefined || readSeq === 0) return;
    const nowMs = performance.now();
    if (t.probeSeq !== 0 && nowMs - t.probeSentMs < roundTripProbeTimeoutMs) return;
    t.probeSeq = readSeq;
    t.probeSentMs = nowMs;
  }

  #endProbe(member: string, readSeq: number): void {
    const t = this.#traffic.get(member);
    if (t === undefined || t.probeSeq === 0 || t.probeSeq !== readSeq) return;
    t.probeSeq = 0;
    const peer = this.#peers.get(member);
    if (peer !== undefined && peer.silenceLogged) {
      peer.silenceLogged = false;
      this.#options.logger.info(`Heartbeats to ${member} are answered again`);
    }
    this.#onRoundTrip(member, performance.now() - t.probeSentMs);
  }

  /**
   * Set the one handler told when an established connection to a peer closes (the peer died or
   * the network cut it): a leader stops streaming to it and probes it again once it is back.
   */
  onPeerDown(handler: (member: string) => void): void {
    this.#onPeerDown = handler;
  }

  onMessage(handler: (message: RaftMessage) => void): void {
    this.#handler = handler;
  }

  setPeers(peers: ReadonlyMap<string, string>): void {
    for (const member of [...this.#peers.keys()]) if (!peers.has(member)) this.removePeer(member);
    for (const [member, address] of peers) this.addPeer(member, address);
  }

  addPeer(member: string, address: string): void {
    if (this.#closed) return;
    const existing = this.#peers.get(member);
    if (existing?.address === address) return;
    if (existing !== undefined) this.removePeer(member);
    const { host, port } = parseAddress(address);
    const peer: Peer = {
      member,
      address,
      host,
      port,
      socket: null,
      dialStartedMs: 0,
      connectedMs: 0,
      connection: null,
      attemptCount: 0,
      refused: false,
      silenceLogged: false,
      timer: null,
    };
    this.#peers.set(member, peer);
    this.#dial(peer);
  }

  removePeer(member: string): void {
    const peer = this.#peers.get(member);
    if (peer === undefined) return;
    this.#peers.delete(member);
    this.#dropPeer(peer);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const peer of this.#peers.values()) this.#dropPeer(peer);
    this.#peers.clear();
    for (const connection of [...this.#inbound.keys()]) connection.close(null);
    for (const socket of this.#pending.keys()) socket.destroy();
    this.#pending.clear();
    if (this.#ownsTls) this.#tls?.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #listen(): Promise<void> {
    await listenRetrying(
      this.#server,
      this.#options.port,
      this.#options.host,
      (m) => this.#options.logger.warn(m),
    );
    this.#server.on(
      'error',
      (error) => this.#options.logger.warn(`Listener error: ${error.message}`),
    );
    const bound = this.#server.address();
    this.#port = typeof bound === 'object' && bound !== null ? bound.port : this.#options.port;
  }

  #hello(): Hello {
    return {
      type: 'hello',
      cluster: this.#options.cluster,
      member: this.member,
      version: protocolVersion,
    };
  }

  #accept(socket: net.Socket): void {
    const label = `inbound connection from ${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#closed || this.inboundCount >= this.#options.connectionsMax) {
      this.counters.rejectedCount += 1;
      if (!this.#closed) {
        this.#options.logger.warn(
          `Refusing ${label}: ${this.inboundCount} connections, limit ${this.#options.connectionsMax}`,
        );
      }
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    const sinceMs = Date.now();
    const material = this.#tls;
    // A plaintext port: the connection starts at once (a TLS ClientHello on it is refused by
    // `checkFirstChunk`, before frame parsing would misread it as a huge length).
    if (material === null) return this.#startInbound(socket, label, sinceMs, null);
    this.#pending.set(socket, sinceMs);
    socket.once('close', () => this.#pending.delete(socket));
    const refuse = (reason: string) => {
      this.#pending.delete(socket);
      if (this.#closed) return;
      this.counters.rejectedCount += 1;
      this.#options.logger.warn(`Refusing ${label}: ${reason}`);
    };
    acceptTls(socket, () => material.current, (secure) => {
      this.#pending.delete(socket);
      if (this.#closed) return void secure.destroy();
      const check = checkPeerCertificate(secure, material.current, null);
      if (!check.ok) {
        refuse(`Peer certificate refused: ${check.reason}`);
        secure.destroy();
        return;
      }
      this.#startInbound(secure, label, sinceMs, check.names);
    }, refuse);
  }

  #startInbound(socket: net.Socket, label: string, sinceMs: number, names: string[] | null): void {
    const state: Inbound = { sinceMs, member: null, names };
    const connection = new FramedConnection(socket, this.#acceptorCodec, {
      frameBytesMax: this.#options.frameBytesMax,
      inflightBytesMax: this.#options.inflightBytesMax,
      frameDeadlineMs: this.#options.frameDeadlineMs,
      logger: this.#options.logger,
      label,
      checkFirstChunk: (chunk) =>
        names === null && looksLikeTls(chunk)
          ? 'TLS handshake on a plaintext port: this member does not use TLS on its peer port'
          : null,
      onMessage: (message, c) => this.#onInbound(message, c, state),
      onClose: (reason, c) => {
        this.#inbound.delete(c);
        if (reason !== null) this.counters.rejectedCount += 1;
      },
    });
    this.#inbound.set(connection, state);
  }

  #onInbound(
    message: AcceptorInbound,
    connection: FramedConnection<AcceptorInbound>,
    state: Inbound,
  ): void {
    if (state.member === null) {
      if (message.type !== 'hello') {
        return connection.close(`Handshake expected: first frame is ${message.type}`);
      }
      let refusal = checkHello(message, this.#options.cluster);
      if (refusal === null && state.names !== null && !state.names.includes(message.member)) {
        refusal =
          `Certificate mismatch: peer claims to be ${message.member}, its certificate names ${
            state.names.length === 0 ? 'no member' : state.names.join(', ')
          }`;
      }
      if (refusal !== null) return connection.refuse({ type: 'refused', reason: refusal }, refusal);
      state.member = message.member;
      const traffic = this.#trafficOf(message.member);
      if (traffic !== null) {
        // The handshake's bytes were counted on the connection's own record: move them over.
        traffic.sentBytes += connection.traffic.sentBytes;
        traffic.receivedBytes += connection.traffic.receivedBytes;
        connection.traffic = traffic;
      }
      connection.send(this.#hello(), 'control');
      this.#redialReturned(message.member);
      return;
    }
    if (message.type === 'hello') return connection.close('Unexpected hello after the handshake');
    if (message.from !== state.member) {
      return connection.close(
        `Sender mismatch: message from ${message.from} on the connection of ${state.member}`,
      );
    }
    if (message.to !== this.member) {
      return connection.close(
        `Recipient mismatch: message to ${message.to} delivered to ${this.member}`,
      );
    }
    this.counters.receivedCount += 1;
    if (message.type === 'heartbeatResponse') this.#endProbe(message.from, message.readSeq);
    this.#handler(message);
  }

  #dial(peer: Peer): void {
    if (this.#closed || this.#peers.get(peer.member) !== peer) return;
    peer.timer = null;
    const material = this.#tls?.current ?? null;
    const socket = material === null
      ? net.connect({ host: peer.host, port: peer.port })
      : tls.connect({
        host: peer.host,
        port: peer.port,
        secureContext: material.context,
        servername: peer.member,
        rejectUnauthorized: true,
        // The member name is checked below, on the certificate's DNS entries, not on the host.
        checkServerIdentity: () => undefined,
      });
    peer.socket = socket;
    peer.dialStartedMs = Date.now();
    let tcpConnected = false;
    socket.once('connect', () => (tcpConnected = true));
    const onError = (error: Error & { code?: string }) => {
      socket.destroy();
      if (peer.socket !== socket) return; // replaced by a redial (#redialReturned)
      peer.socket = null;
      const why = `${peer.member} at ${peer.address}: ${error.code ?? error.message}`;
      // Reached but the TLS handshake failed: a misconfiguration an operator must see.
      if (material !== null && tcpConnected) {
        this.#options.logger.warn(`TLS handshake with ${why}`);
      } else this.#options.logger.debug(`Cannot connect to ${why}`);
      this.#scheduleDial(peer);
    };
    socket.once('error', onError);
    socket.once(material === null ? 'connect' : 'secureConnect', () => {
      socket.off('error', onError);
      if (this.#closed || this.#peers.get(peer.member) !== peer || peer.socket !== socket) {
        return void socket.destroy();
      }
      if (material !== null) {
        // The dialer checks that it reached the member it dialled.
        const check = checkPeerCertificate(socket as tls.TLSSocket, material, peer.member);
        if (!check.ok) {
          this.#options.logger.warn(
            `Refusing connection to ${peer.member} at ${peer.address}: peer certificate refused: ${check.reason}`,
          );
          socket.destroy();
          peer.socket = null;
          peer.refused = true;
          this.#scheduleDial(peer);
          return;
        }
      }
      const connection = new FramedConnection(socket, this.#dialerCodec, {
        frameBytesMax: this.#options.frameBytesMax,
        inflightBytesMax: this.#options.inflightBytesMax,
        frameDeadlineMs: this.#options.frameDeadlineMs,
        logger: this.#options.logger,
        label: `connection to ${peer.member} at ${peer.address}`,
        onMessage: (message, c) => this.#onDialerInbound(peer, message, c),
        onClose: (_reason, c) => {
          if (peer.connection === c) peer.connection = null;
          peer.socket = null;
          this.#scheduleDial(peer);
          if (!this.#closed) this.#onPeerDown(peer.member);
        },
      });
      peer.connection = connection;
      peer.connectedMs = Date.now();
      const traffic = this.#trafficOf(peer.member);
      if (traffic !== null) connection.traffic = traffic;
      connection.send(this.#hello(), 'control');
    });
  }

  #onDialerInbound(
    peer: Peer,
    message: DialerInbound,
    connection: FramedConnection<DialerInbound>,
  ): void {
    if (message.type === 'refused') {
      peer.refused = true;
      return connection.close(`Refused by ${peer.member}: ${message.reason}`);
    }
    const refusal = checkHello(message, this.#options.cluster);
    if (refusal !== null) {
      peer.refused = true;
      return connection.close(refusal);
    }
    if (message.member !== peer.member) {
      this.#options.logger.warn(
        `Peer at ${peer.address} is ${message.member}, expected ${peer.member}`,
      );
    }
    peer.attemptCount = 0;
  }

  #scheduleDial(peer: Peer): void {
    if (this.#closed || this.#peers.get(peer.member) !== peer || peer.timer !== null) return;
    const { reconnectDelayMsMin: min, reconnectDelayMsMax: max } = this.#options;
    const ceiling = Math.min(max, min * 2 ** Math.min(peer.attemptCount, 30));
    // Full jitter between min and the exponential ceiling: restarted peers do not reconnect in step.
    let delayMs = min + Math.random() * (ceiling - min);
    if (peer.refused) {
      // Up but incompatible: it will not change within an election timeout (see the constant).
      peer.refused = false;
      delayMs = refusedRedialDelayMs * (0.5 + Math.random() / 2);
    }
    peer.attemptCount += 1;
    peer.timer = setTimeout(() => this.#dial(peer), delayMs);
    peer.timer.unref();
  }

  /**
   * Member `member` completed a handshake on our listener, so it is up: typically it restarted
   * and dialled us. If our connection to it is down, dial now instead of waiting out the backoff
   * (reset: it is a fresh start). A connect pending for longer than `reconnectDelayMsMin` is
   * replaced too: it may be a SYN to a host that was down, retransmitted on the kernel's slow
   * schedule (a younger one is left to finish, so hellos in quick succession cannot keep
   * restarting it). A connection that is up is replaced only when it is older than
   * `answerDeadlineMs`: the peer dialling us again means its connection to us failed (its
   * heartbeats went unanswered, say), and ours may be dead the same way, without a word (an IP
   * cut in one direction also stops TCP's acknowledgements in the other). A younger one is left
   * alone, so two members that both redial stop after one round instead of triggering each
   * other in a loop.
   */
  #redialReturned(member: string): void {
    const peer = this.#peers.get(member);
    if (this.#closed || peer === undefined) return;
    const nowMs = Date.now();
    const connection = peer.connection;
    if (connection !== null && !connection.closed) {
      const upMs = nowMs - peer.connectedMs;
      const deadlineMs = this.#options.answerDeadlineMs;
      if (deadlineMs === 0 || upMs <= deadlineMs) return;
      connection.close(
        `${member} dialled us again while our connection to it has been up ${upMs} ms: it may be dead one way, redialling`,
        'info',
      );
    } else {
      const pendingMs = nowMs - peer.dialStartedMs;
      if (peer.socket !== null && pendingMs < this.#options.reconnectDelayMsMin) return;
    }
    if (peer.timer !== null) clearTimeout(peer.timer);
    peer.timer = null;
    peer.socket?.destroy();
    peer.socket = null;
    peer.attemptCount = 0;
    peer.refused = false;
    this.#options.logger.debug(`Peer ${member} dialled us: redialling it now`);
    this.#dial(peer);
  }

  #dropPeer(peer: Peer): void {
    if (peer.timer !== null) clearTimeout(peer.timer);
    peer.timer = null;
    peer.connection?.close(null);
    peer.connection = null;
    peer.socket?.destroy();
    peer.socket = null;
  }

  #checkDeadlines(): void {
    const nowMs = Date.now();
    for (const [socket, sinceMs] of this.#pending) {
      if (nowMs - sinceMs <= this.#options.handshakeDeadlineMs) continue;
      this.#pending.delete(socket);
      this.counters.rejectedCount += 1;
      this.#options.logger.warn(
        `Closing inbound connection from ${socket.remoteAddress}:${socket.remotePort}: ` +
          `Handshake deadline exceeded: no ${
            this.#tls === null ? 'hello' : 'TLS handshake'
          } within ${this.#options.handshakeDeadlineMs} ms`,
      );
      socket.destroy();
    }
    for (const [connection, state] of this.#inbound) {
      if (state.member === null && nowMs - state.sinceMs > this.#options.handshakeDeadlineMs) {
        connection.close(
          `Handshake deadline exceeded: no hello within ${this.#options.handshakeDeadlineMs} ms`,
        );
      } else connection.checkDeadline(nowMs);
    }
    for (const peer of this.#peers.values()) {
      peer.connection?.checkDeadline(nowMs);
      this.#checkAnswered(peer, nowMs);
    }
  }

  /**
   * Close a connection to `peer` whose heartbeat has gone unanswered for `answerDeadlineMs`, or a
   * connect attempt pending three times as long, and redial (see the option). A peer that is
   * paused or stalled is redialled too: that costs a connection, and its messages would have
   * waited anyway.
   */
  #checkAnswered(peer: Peer, nowMs: number): void {
    const deadlineMs = this.#options.answerDeadlineMs;
    if (deadlineMs === 0) return;
    const connection = peer.connection;
    if (connection === null || connection.closed) {
      // A connect (with TLS, its handshake too) gets three deadlines: a lost SYN is resent by
      // the kernel after 1 s, and a loaded member's TLS handshake must not be cut short forever.
      const connectMsMax = 3 * deadlineMs;
      if (peer.socket === null || nowMs - peer.dialStartedMs <= connectMsMax) return;
      this.#options.logger.debug(
        `Connect to ${peer.member} at ${peer.address} not done in ${connectMsMax} ms: dialling again`,
      );
      peer.socket.destroy();
      peer.socket = null;
      this.#scheduleDial(peer);
      return;
    }
    const t = this.#traffic.get(peer.member);
    if (t === undefined || t.probeSeq === 0) return;
    const waitedMs = performance.now() - t.probeSentMs;
    if (waitedMs <= deadlineMs) return;
    t.probeSeq = 0;
    const reason = `no answer to a heartbeat in ${
      Math.round(waitedMs)
    } ms (answerDeadlineMs ${deadlineMs}): closing it to redial, as the network may have dropped it`;
    if (peer.silenceLogged) {
      connection.close(reason, 'debug');
    } else {
      peer.silenceLogged = true;
      connection.close(reason);
    }
  }
}
