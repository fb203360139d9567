/**
 * `edgeraft/testing`: the deterministic simulator, the safety checkers and the scripted cluster,
 * for testing code built on the core (and the core itself) with seeded, replayable runs; and a
 * linearizability checker for histories recorded against a running cluster (or anything else); and
 * the torture harness behind `edgeraft torture` (`runTorture`, and `TortureTarget` for an adapter to
 * a cluster of one's own).
 *
 * @example
 * ```ts
 * import { runSimulation } from './mod.ts';
 * const result = await runSimulation({ seed: 7, memberCount: 3 });
 * if (!result.ok) console.log(`seed 7: ${result.failure}\n${result.trace.join('\n')}`);
 * ```
 *
 * @example
 * ```ts
 * import { checkLinearizability, registerModel } from './mod.ts';
 * const r = checkLinearizability(registerModel<number>(), [
 *   { client: 1, callMs: 0, returnMs: 10, input: { f: 'write', value: 1 }, outcome: 'ok' },
 *   { client: 2, callMs: 20, returnMs: 30, input: { f: 'read' }, output: null, outcome: 'ok' },
 * ]);
 * console.log(r.verdict, r.failure?.explanation); // not linearizable: a stale read
 * ```
 * @module
 */
export { runSimulation, Simulation } from './simulator.ts';
export type { SimulationFaults, SimulationOptions, SimulationResult } from './simulator.ts';
export { kvWorkload } from './sim-workload.ts';
export type { SimOperation, Workload } from './sim-workload.ts';
export { fingerprint, SafetyChecker, SafetyViolation } from './checkers.ts';
export { ScriptedCluster } from './scripted-cluster.ts';
export type { ScriptedClusterOptions } from './scripted-cluster.ts';
export { calmNetwork, SimNetwork } from './sim-network.ts';
export type { NetworkFaults } from './sim-network.ts';
export { seededRandom } from '../core/random.ts';
export type { RandomSource } from '../core/random.ts';
export type { UnsafeFaults } from '../core/options.ts';
export type { DriverUnsafeFaults } from '../member/options.ts';
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
export {
  createNamespaceHosts,
  namespaceHostsMax,
  namespacesUnavailable,
  removeStaleHosts,
} from './netns.ts';
export type { NamespaceHost, NamespaceHosts } from './netns.ts';
export { runTorture } from './torture/harness.ts';
export type { TortureOptions, TortureResult } from './torture/harness.ts';
export { startLocalTarget } from './torture/target.ts';
export type { MemberControl, TortureTarget } from './torture/target.ts';
export { ProxyNetwork } from './torture/network.ts';
export type { Network, PartitionMode } from './torture/network.ts';
export { faultKinds } from './torture/nemesis.ts';
export type { FaultKind, FaultRecord } from './torture/nemesis.ts';
export { writeReport } from './torture/report.ts';
