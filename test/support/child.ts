/**
 * Spawning TypeScript children under a runtime, for tests: re-exported from `lib/runtime.ts`, the
 * one place that knows how each runtime runs a `.ts` file.
 *
 * @module
 */
export {
  currentRuntime,
  repoRoot,
  type Runtime,
  runtimes,
  spawnTs,
  type SpawnTsOptions,
  tsCommand,
} from '../../lib/runtime.ts';
