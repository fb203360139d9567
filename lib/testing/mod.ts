/**
 * `edgeraft/testing`: the deterministic simulator, the safety checkers and the scripted cluster,
 * for testing code built on the core (and the core itself) with seeded, replayable runs.
 *
 * @example
 * ```ts
 * import { runSimulation } from './mod.ts';
 * const result = runSimulation({ seed: 7, memberCount: 3 });
 * if (!result.ok) console.log(`seed 7: ${result.failure}\n${result.trace.join('\n')}`);
 * ```
 * @module
 */
export { runSimulation, Simulation } from './simulator.ts';
export type { SimulationOptions, SimulationResult } from './simulator.ts';
export { fingerprint, SafetyChecker, SafetyViolation } from './checkers.ts';
export { ScriptedCluster } from './scripted-cluster.ts';
export type { ScriptedClusterOptions } from './scripted-cluster.ts';
export { calmNetwork, SimNetwork } from './sim-network.ts';
export type { NetworkFaults } from './sim-network.ts';
export { seededRandom } from '../core/random.ts';
export type { RandomSource } from '../core/random.ts';
export type { UnsafeFaults } from '../core/options.ts';
export { checkLinearizability } from './linearizability/check.ts';
export type {
  CheckOptions,
  LinearizabilityFailure,
  LinearizabilityResult,
  PartitionResult,
  Verdict,
} from './linearizability/check.ts';
export { operationsFromEvents } from './linearizability/history.ts';
export type { HistoryEvent, Operation, Outcome } from './linearizability/history.ts';
export { unobserved } from './linearizability/model.ts';
export type { Model, Unobserved } from './linearizability/model.ts';
export { keyValueModel, registerModel } from './linearizability/models.ts';
export type {
  KeyValueInput,
  KeyValueOutput,
  RegisterInput,
  RegisterOutput,
} from './linearizability/models.ts';
