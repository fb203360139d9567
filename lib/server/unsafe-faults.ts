/**
 * Testing hook (off unless set): `EDGERAFT_UNSAFE_FAULTS` names deliberate bugs, comma-separated
 * (`resolveWithNextIndex`, `applyDuplicateSequences,relogRetries`, ...: the driver's, the
 * request handler's and the executor's fault names), that a `RaftServer` plants in its member.
 * It exists so that a harness running real processes (`edgeraft torture`) can show it catches a
 * broken member; nothing else should set it. An unknown name is refused at start.
 *
 * @module
 */
import process from 'node:process';
import { driverUnsafeFaultNames } from '../member/options.ts';
import { requestsUnsafeFaultNames } from '../member/requests.ts';
import { executorUnsafeFaultNames } from '../state/executor.ts';

/** The hook's environment variable. */
export const unsafeFaultsVariable = 'EDGERAFT_UNSAFE_FAULTS';

const known: readonly string[] = [
  ...driverUnsafeFaultNames,
  ...requestsUnsafeFaultNames,
  ...executorUnsafeFaultNames,
];

/** The faults the environment plants (none, unless the hook is set). */
export function unsafeFaultsFromEnvironment(): Record<string, true> | undefined {
  const value = process.env[unsafeFaultsVariable];
  if (value === undefined || value === '') return undefined;
  const faults: Record<string, true> = {};
  for (const name of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!known.includes(name)) {
      throw new RangeError(
        `Invalid ${unsafeFaultsVariable}: unknown fault ${JSON.stringify(name)}, known: ${
          known.join(', ')
        }`,
      );
    }
    faults[name] = true;
  }
  return faults;
}
