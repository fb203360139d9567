/**
 * A new member joining an existing cluster (`RaftServer.start({ join })`, `serve --join`): it asks
 * any member it is given, over the client port, to add it (as PASSIVE or RESERVE: a member becomes
 * ACTIVE only by promotion, once it caught up), and retries until the change is committed. The
 * answer lists every member with its addresses, so the new member can answer its feeders before
 * the configuration reaches its own log.
 *
 * Retries: a retryable refusal (another change in progress, no leader yet) or a member that cannot
 * be reached is tried again after `retryDelayMs`, for as long as the server runs; an invalid change
 * (say, the id is a member already, at other addresses) is final and logged.
 *
 * @example
 * ```ts
 * const members = await joinCluster({ servers: ['127.0.0.1:8001'], id: 'd', type: 'PASSIVE',
 *   address: '127.0.0.1:7004', clientAddress: '127.0.0.1:8004', stopped: () => false, log });
 * ```
 * @module
 */
import type { Member } from '../base/messages.ts';
import { ClientError, RaftClient } from '../client/client.ts';
import type { MemberLogger } from '../member/ports.ts';

/** Milliseconds between attempts to join. */
export const joinRetryDelayMs = 500;
/** Milliseconds one attempt may take (connect, forward to the leader, commit). */
export const joinAttemptTimeoutMs = 10_000;

export type JoinOptions = {
  servers: string[];
  id: string;
  type: 'PASSIVE' | 'RESERVE';
  address: string;
  clientAddress: string;
  /** The client port's TLS files: the joiner dials with them (its certificate, if asked). */
  tls?: { ca: string; cert: string; key: string };
  /** The bearer token of the cluster's client ports. */
  token?: string;
  /** True once the server stops: no more attempts. */
  stopped: () => boolean;
  log: MemberLogger;
};

/** Ask to be added until it is committed; resolves with the members, or null if stopped first. */
export async function joinCluster(o: JoinOptions): Promise<Member[] | null> {
  let attempt = 0;
  while (!o.stopped()) {
    attempt++;
    let client: RaftClient | null = null;
    try {
      client = await RaftClient.connect({
        servers: o.servers,
        session: false,
        requestTimeoutMs: joinAttemptTimeoutMs,
        ...(o.tls === undefined ? {} : { tls: o.tls }),
        ...(o.token === undefined ? {} : { token: o.token }),
      });
      const members = await client.join({
        id: o.id,
        type: o.type,
        address: o.address,
        clientAddress: o.clientAddress,
      });
      o.log.info(`joined the cluster as ${o.type} (${members.length} members)`);
      return members;
    } catch (error) {
      if (error instanceof ClientError && error.code === 'CONFIG_CHANGE_INVALID') {
        o.log.warn(`join refused for good: ${error.message}`);
        throw error;
      }
      if (attempt === 1 || attempt % 20 === 0) {
        o.log.warn(`join attempt ${attempt} failed (retrying): ${(error as Error).message}`);
      }
    } finally {
      await client?.close().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, joinRetryDelayMs));
  }
  return null;
}
