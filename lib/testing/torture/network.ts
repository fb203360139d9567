/**
 * The torture harness's network faults. `Network` is the interface the nemesis uses (a network
 * namespace implementation can be plugged in later); `ProxyNetwork` implements it on loopback with
 * one TCP proxy in front of each member's peer port.
 *
 * How the proxy tells directions apart: the peer transport sends Raft traffic one way per
 * connection (each member dials every peer and sends only on its own outbound connections), and
 * a dialer's first frame is its `hello` naming it. So the proxy in front of member `b` reads the
 * hello of each inbound connection, learns it comes from `a`, and carries exactly the traffic
 * `a → b`. Blocking `a → b` blackholes those connections: bytes are read and dropped, nothing is
 * closed, so `a` notices only by its own timeouts (as across a real partition). Healing closes
 * every connection that was blackholed, so that each dialer reconnects at once instead of
 * waiting on a stream whose bytes were thrown away.
 *
 * @example
 * ```ts
 * const net = await ProxyNetwork.start([{ id: 'n1', listen: '127.0.0.1:7001', target: '127.0.0.1:7101' }]);
 * net.partition('n2', 'n1', 'one-way'); // n2's messages to n1 are lost
 * net.heal();
 * await net.close();
 * ```
 * @module
 */
import * as net from 'node:net';
import { decode } from 'cbor-x/decode';

/** `one-way`: traffic from `a` to `b` is lost; `both`: both directions. */
export type PartitionMode = 'one-way' | 'both';

/** What the nemesis needs of a network. */
export interface Network {
  /** Lose traffic from `a` to `b` (and back, for `both`) until `heal`. */
  partition(a: string, b: string, mode: PartitionMode): void;
  /** Undo every partition. */
  heal(): void;
  close(): Promise<void>;
}

/** One proxied member: the address peers dial (`listen`) and the member's own (`target`). */
export type ProxySpec = { id: string; listen: string; target: string };

/** Bytes a proxy buffers for a connection's hello before giving up on it. */
const helloBytesMax = 64 * 1024;

type Link = { from: string; to: string; client: net.Socket; upstream: net.Socket | null };

/** See the module comment. */
export class ProxyNetwork implements Network {
  readonly #servers: net.Server[] = [];
  readonly #links = new Set<Link>();
  /** Blocked directions, `from→to`. */
  readonly #blocked = new Set<string>();

  private constructor() {}

  static async start(specs: readonly ProxySpec[]): Promise<ProxyNetwork> {
    const network = new ProxyNetwork();
    try {
      for (const spec of specs) await network.#listen(spec);
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  partition(a: string, b: string, mode: PartitionMode): void {
    this.#blocked.add(`${a}→${b}`);
    if (mode === 'both') this.#blocked.add(`${b}→${a}`);
  }

  heal(): void {
    const wasBlocked = new Set(this.#blocked);
    this.#blocked.clear();
    for (const link of this.#links) {
      if (wasBlocked.has(`${link.from}→${link.to}`)) this.#drop(link);
    }
  }

  /** Whether traffic from `a` to `b` is lost now. */
  isBlocked(a: string, b: string): boolean {
    return this.#blocked.has(`${a}→${b}`);
  }

  async close(): Promise<void> {
    for (const link of this.#links) this.#drop(link);
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  #drop(link: Link): void {
    link.client.destroy();
    link.upstream?.destroy();
    this.#links.delete(link);
  }

  #listen(spec: ProxySpec): Promise<void> {
    const [host, port] = splitAddress(spec.listen);
    const [targetHost, targetPort] = splitAddress(spec.target);
    const server = net.createServer((client) => {
      client.setNoDelay(true);
      let buffered = Buffer.alloc(0);
      let link: Link | null = null;
      client.on('error', () => {});
      client.on('close', () => {
        if (link !== null) this.#drop(link);
      });
      client.on('data', (chunk: Buffer) => {
        if (link === null) {
          buffered = Buffer.concat([buffered, chunk]);
          const from = helloSender(buffered);
          if (from === undefined) {
            if (buffered.length > helloBytesMax) client.destroy();
            return;
          }
          if (from === null) return client.destroy(); // not a peer's hello
          const l: Link = { from, to: spec.id, client, upstream: null };
          link = l;
          this.#links.add(l);
          const upstream = net.connect(targetPort, targetHost);
          l.upstream = upstream;
          upstream.setNoDelay(true);
          upstream.on('error', () => this.#drop(l));
          upstream.on('close', () => this.#drop(l));
          upstream.on('data', (back: Buffer) => {
            if (!this.isBlocked(l.to, l.from) && !this.isBlocked(l.from, l.to)) client.write(back);
          });
          if (!this.isBlocked(from, spec.id)) upstream.write(buffered);
          buffered = Buffer.alloc(0);
          return;
        }
        // Blackholed: read and dropped, so the dialer's writes never back up into an error.
        if (!this.isBlocked(link.from, link.to)) link.upstream?.write(chunk);
      });
    });
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  }
}

/** `[host, port]` of `host:port`. */
function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/**
 * The member named by the hello frame at the start of `bytes`: undefined while the frame is
 * incomplete, null when it is no hello.
 */
function helloSender(bytes: Buffer): string | null | undefined {
  if (bytes.length < 4) return undefined;
  const length = bytes.readUInt32BE(0);
  if (length > helloBytesMax) return null;
  if (bytes.length < 4 + length) return undefined;
  try {
    const hello = decode(bytes.subarray(4, 4 + length)) as { type?: unknown; member?: unknown };
    return hello?.type === 'hello' && typeof hello.member === 'string' ? hello.member : null;
  } catch {
    return null;
  }
}
