/**
 * Helpers shared by the server, client and command-line tests: polling with a deadline, and a
 * per-member status reader over the real client port.
 *
 * @module
 */
import { setTimeout as sleepMs } from 'node:timers/promises';
import { RaftClient } from '../../lib/client/client.ts';
import type { ServerStatus } from '../../lib/server/server.ts';

/** Sleep `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => sleepMs(ms).then(() => {});

/**
 * Poll `probe` every `intervalMs` until it returns a value other than `undefined`; throws with
 * `what` and the last probe error after `timeoutMs`.
 *
 * @example
 * ```ts
 * const leader = await waitFor('a leader', () => servers.find((s) => s.role === 'leader'), 5_000);
 * ```
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === null ? '' : `: ${(lastError as Error).message}`;
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * One client per member, each bound to that member only, to read its own status and answer
 * sequential reads from its own state.
 *
 * @example
 * ```ts
 * const probes = new MemberProbes();
 * const s = await probes.status('n1', '127.0.0.1:8001');
 * await probes.close();
 * ```
 */
export class MemberProbes {
  readonly #clients = new Map<string, RaftClient>();

  async #client(address: string): Promise<RaftClient> {
    let c = this.#clients.get(address);
    if (c === undefined) {
      c = await RaftClient.connect({
        servers: [address],
        requestTimeoutMs: 1_000,
        retryDelayMs: 20,
      });
      this.#clients.set(address, c);
    }
    return c;
  }

  /** The status of the member at client `address`. */
  async status(address: string): Promise<ServerStatus> {
    return (await (await this.#client(address)).status()) as ServerStatus;
  }

  /** A sequential read of KV key `key` from the member at `address`'s own state. */
  async get(address: string, key: string): Promise<string | null> {
    const c = await this.#client(address);
    return ((await c.query({ op: 'get', key }, 'sequential')) as { value: string | null }).value;
  }

  async close(): Promise<void> {
    for (const c of this.#clients.values()) await c.close();
    this.#clients.clear();
  }
}
