/**
 * Test hosts of our own: Linux network namespaces, one per member, each with its own address on a
 * virtual link, as separate machines would have. The namespaces hang off one bridge in the
 * caller's namespace, which also gets an address on that link, so a test (or `edgeraft torture`)
 * reaches every host's ports from outside, as an operator's machine would. A partition is then a
 * property of the network, not of a port: `cut(from, to)` adds a blackhole route on `from` for
 * `to`'s address, so every packet `from` sends to `to` is dropped (TCP answers included: a
 * one-way cut stalls connections in both directions, as a one-way firewall rule does), and
 * `heal()` removes every route it added. Needs root (or CAP_NET_ADMIN) and the `ip` tool
 * (Debian: `iproute2`); `namespacesUnavailable()` says why they cannot be made here, so that a
 * test can fall back and say so.
 *
 * Names carry this process's id (`er<pid>h<n>`, bridge `er<pid>b`), so concurrent runs never
 * collide, and `removeStaleHosts()` deletes those of processes that are gone (a killed test run).
 * The subnet is 10.213.N.0/24 with N from the process id; hosts get .1, .2, ... and the bridge .254.
 *
 * @example
 * ```ts
 * const reason = namespacesUnavailable();
 * if (reason === null) {
 *   const net = createNamespaceHosts(['a', 'b', 'c']);
 *   const { command, args } = net.host('a').wrap('node', ['server.js']); // runs inside host a
 *   net.cut('a', 'b'); // a's packets to b are dropped
 *   net.heal();
 *   net.close();
 * }
 * ```
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import process from 'node:process';

/** One host: a network namespace with one address. */
export type NamespaceHost = {
  /** The name the caller gave (a member id). */
  readonly name: string;
  /** The network namespace's name (`ip netns`). */
  readonly namespace: string;
  /** Its IPv4 address on the link. */
  readonly address: string;
  /** The command line that runs `command args` inside this host (`ip netns exec ...`). */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
};

/** The hosts of one test, their link and the cuts between them. */
export type NamespaceHosts = {
  readonly hosts: readonly NamespaceHost[];
  /** The caller's own address on the link (the bridge's). */
  readonly outsideAddress: string;
  host(name: string): NamespaceHost;
  /** Drop every packet `from` sends to `to` (one way); idempotent. */
  cut(from: string, to: string): void;
  /** Cut both ways between `a` and `b`. */
  cutBoth(a: string, b: string): void;
  /** Cut `name` off from every other host, both ways (the outside still reaches it). */
  isolate(name: string): void;
  /** The cuts in place, as `from>to`. */
  cuts(): string[];
  /** Remove every cut. */
  heal(): void;
  /** Delete the namespaces and the bridge (processes still inside lose their network). */
  close(): void;
};

/** Most hosts one set may have (addresses .1 to .hostsMax on the /24). */
export const namespaceHostsMax = 32;

const prefix = 'er';

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNamespace(ns: string, args: readonly string[]): string {
  return ip(['netns', 'exec', ns, 'ip', ...args]);
}

/**
 * Why network namespaces cannot be made here (not Linux, no `ip`, not root), or `null` when they
 * can: it makes and deletes one to be sure.
 */
export function namespacesUnavailable(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const probe = `${prefix}${process.pid}probe`.slice(0, 15);
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.error !== undefined) return `the ip tool is missing (${made.error.message})`;
  if (made.status !== 0) {
    return `ip netns add failed: ${made.stderr.trim() || `exit ${made.status}`}` +
      (process.getuid?.() === 0 ? '' : ' (needs root)');
  }
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** Delete namespaces and bridges left by runs whose process is gone. */
export function removeStaleHosts(): void {
  const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of namespaces.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^er(\d+)(h\d+|probe)$/.exec(name);
    if (m !== null && !alive(Number(m[1]))) spawnSync('ip', ['netns', 'del', name]);
  }
  const links = spawnSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' })
    .stdout ?? '';
  for (const line of links.split('\n')) {
    const m = /^\d+: (er(\d+)b)[:@]/.exec(line);
    if (m !== null && !alive(Number(m[2]))) spawnSync('ip', ['link', 'del', m[1]!]);
  }
}

/**
 * Make one namespace per name, linked to a new bridge, each with its loopback up and its own
 * address. Throws `RangeError` for no names, too many, or a repeated one; an `Error` naming the
 * failed `ip` command otherwise (after removing what it had made).
 */
export function createNamespaceHosts(names: readonly string[]): NamespaceHosts {
  if (names.length === 0 || names.length > namespaceHostsMax) {
    throw new RangeError(`Namespace hosts: 1 to ${namespaceHostsMax} names, got ${names.length}`);
  }
  if (new Set(names).size !== names.length) {
    throw new RangeError(`Namespace hosts: names repeat (${names.join(', ')})`);
  }
  removeStaleHosts();
  const tag = `${prefix}${process.pid}`;
  const subnet = `10.213.${process.pid % 250}`;
  const bridge = `${tag}b`;
  const hosts: NamespaceHost[] = names.map((name, i) => {
    const namespace = `${tag}h${i}`;
    return {
      name,
      namespace,
      address: `${subnet}.${i + 1}`,
      wrap: (command, args) => ({
        command: 'ip',
        args: ['netns', 'exec', namespace, command, ...args],
      }),
    };
  });
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const cuts = new Set<string>();
  let closed = false;

  const close = () => {
    if (closed) return;
    closed = true;
    // Deleting a namespace deletes its end of the veth pair, and so the pair.
    for (const h of hosts) spawnSync('ip', ['netns', 'del', h.namespace]);
    spawnSync('ip', ['link', 'del', bridge]);
  };

  try {
    if (bridge.length > 15 || `${tag}h${names.length - 1}`.length > 15) {
      throw new RangeError(`Namespace hosts: process id ${process.pid} makes names too long`);
    }
    ip(['link', 'add', bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${subnet}.254/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    hosts.forEach((h, i) => {
      const outside = `${tag}v${i}`;
      const inside = `${tag}i${i}`;
      ip(['netns', 'add', h.namespace]);
      ip(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
      ip(['link', 'set', inside, 'netns', h.namespace]);
      ip(['link', 'set', outside, 'master', bridge]);
      ip(['link', 'set', outside, 'up']);
      inNamespace(h.namespace, ['link', 'set', 'lo', 'up']);
      inNamespace(h.namespace, ['addr', 'add', `${h.address}/24`, 'dev', inside]);
      inNamespace(h.namespace, ['link', 'set', inside, 'up']);
    });
  } catch (error) {
    close();
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`Namespace hosts: ${stderr || (error as Error).message}`, { cause: error });
  }

  const host = (name: string): NamespaceHost => {
    const h = byName.get(name);
    if (h === undefined) throw new RangeError(`Namespace hosts: no host ${name}`);
    return h;
  };
  const cut = (from: string, to: string) => {
    const key = `${from}>${to}`;
    if (cuts.has(key)) return;
    inNamespace(host(from).namespace, ['route', 'add', 'blackhole', `${host(to).address}/32`]);
    cuts.add(key);
  };
  return {
    hosts,
    outsideAddress: `${subnet}.254`,
    host,
    cut,
    cutBoth: (a, b) => {
      cut(a, b);
      cut(b, a);
    },
    isolate: (name) => {
      for (const other of hosts) {
        if (other.name === name) continue;
        cut(name, other.name);
        cut(other.name, name);
      }
    },
    cuts: () => [...cuts],
    heal: () => {
      for (const key of cuts) {
        const [from, to] = key.split('>') as [string, string];
        spawnSync('ip', [
          'netns',
          'exec',
          host(from).namespace,
          'ip',
          'route',
          'del',
          'blackhole',
          `${host(to).address}/32`,
        ]);
      }
      cuts.clear();
    },
    close,
  };
}
