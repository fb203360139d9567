/**
 * A lone ACTIVE member `a` on the given storage, for member tests: the key-value machine, real
 * timers, no peers, quiet logs; started and given up to 5 s to become leader (the caller checks
 * `driver.role`). `options` go to `parseDriverOptions` after the test defaults (5 ms ticks,
 * election after 10, heartbeat every 2).
 *
 * @example
 * ```ts
 * const driver = await startLoneDriver(storage, { snapshotEntriesThreshold: 100 });
 * assert.is(driver.role, 'leader');
 * ```
 * @module
 */
import { seededRandom } from '../../lib/core/random.ts';
import { MemberDriver } from '../../lib/member/driver.ts';
import { parseDriverOptions } from '../../lib/member/options.ts';
import { realClock } from '../../lib/server/clock.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import type { Storage } from '../../lib/storage/storage.ts';

export async function startLoneDriver(storage: Storage, options: Record<string, unknown> = {}) {
  const driver = await MemberDriver.open({
    id: 'a',
    storage,
    transport: { send: () => {}, setPeers: () => {} },
    clock: realClock,
    random: seededRandom(1),
    stateMachine: new KvStateMachine(),
    options: parseDriverOptions({ tickMs: 5, electionTicks: 10, heartbeatTicks: 2, ...options }),
    logger: { info: () => {}, warn: () => {}, debug: () => {} },
    members: [{ id: 'a', type: 'ACTIVE' }],
    voteEmbargoTicks: 0,
  });
  driver.start();
  const deadline = Date.now() + 5_000;
  while (driver.role !== 'leader' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return driver;
}
