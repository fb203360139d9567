/**
 * edgeraft: a lean Raft consensus library for Node, Bun and Deno. The log lives in LMDB, members
 * and clients talk over TCP in length-prefixed CBOR frames, every message from the network is
 * validated, and a deterministic simulator checks the protocol over thousands of seeded runs.
 *
 * This module only re-exports. The simulator and scripted clusters are under `./testing`
 * (`lib/testing/mod.ts`); the wire-level transport pieces under `lib/transport/mod.ts`.
 *
 * @example
 * ```ts
 * import { KvStateMachine, RaftServer } from 'edgeraft';
 *
 * const server = await RaftServer.start({
 *   id: 'a',
 *   cluster: 'single',
 *   dataDir: './data/single',
 *   peerAddress: '127.0.0.1:7001',
 *   clientAddress: '127.0.0.1:8001',
 *   members: [{ id: 'a', type: 'ACTIVE', address: '127.0.0.1:7001', clientAddress: '127.0.0.1:8001' }],
 *   stateMachine: new KvStateMachine(),
 * });
 * await server.ready({ timeoutMs: 10_000 }); // a one-member cluster: it elects itself
 * const put = await server.propose({ op: 'put', key: 'greeting', value: 'hello' });
 * const got = await server.query({ op: 'get', key: 'greeting' }, 'linearizable');
 * console.log(JSON.stringify({ put, got })); // prints: {"put":{"previous":null},"got":{"value":"hello"}}
 * await server.stop();
 * ```
 * @module
 */

// The running member, its client and its events.
export { RaftServer, type ServerStatus } from './lib/server/server.ts';
export type {
  RaftServerOptions,
  RaftServerOptionsInput,
  ServerLogger,
} from './lib/server/options.ts';
export type { ServerEvent } from './lib/member/events.ts';
export type { LogFields } from './lib/base/logger.ts';
export type { LogFormat, LogLevel } from './lib/server/log.ts';
export {
  ClientError,
  type ClientEvent,
  type KvClient,
  RaftClient,
  type RaftClientOptions,
} from './lib/client/client.ts';
export {
  type ClientErrorCode,
  type Consistency,
  retryableCodes,
} from './lib/base/client-protocol.ts';

// Errors: a closed set, each with a code and whether retrying is safe.
export {
  AssertionError,
  CommandError,
  CompactedError,
  ConfigChangeInProgressError,
  ConfigChangeInvalidError,
  DataDirectoryInUseError,
  EdgeraftError,
  type ErrorCode,
  LeadershipTransferError,
  NotLeaderError,
  OutcomeUnknownError,
  ProposalDroppedError,
  ShutdownError,
  StorageError,
  TimeoutError,
  TransferInvalidError,
  UnknownSessionError,
} from './lib/base/errors.ts';
export { ApplicationError, QueryError } from './lib/base/errors.ts';

// The state-machine API and the built-in key-value machine.
export type { Commit, StateMachine } from './lib/state/state-machine.ts';
export type { ApplyContext, ScheduledTimer, TimerCallback } from './lib/state/context.ts';
export { cborCodec, cborOptions, type CommandCodec } from './lib/state/codec.ts';
export {
  type ApplyResult,
  type ExecutorOptions,
  StateMachineExecutor,
  type StateSnapshot,
  type StateSnapshotMeta,
} from './lib/state/executor.ts';
export {
  encodeKvCommand,
  type KvChange,
  type KvCommand,
  kvCommand,
  KvCommandSchema,
  type KvOutput,
  type KvQuery,
  kvQuery,
  type KvQueryOutput,
  KvQuerySchema,
  KvStateMachine,
  kvWatchesPerSessionMax,
  kvWatchingSessionsMax,
  parseKvCommand,
} from './lib/state/kv.ts';
export type { SessionEvent } from './lib/state/sessions.ts';

// State machines on disk, in the member's LMDB environment (sessions and applied index beside them).
export {
  type AnyStateMachine,
  type AppliedState,
  diskKeyBytesMax,
  type DiskPair,
  type DiskRange,
  type DiskStateMachine,
  type DiskStore,
  diskValueBytesMax,
  isDiskStateMachine,
  type MachineStore,
} from './lib/state/disk-state-machine.ts';
export { LmdbKvStateMachine } from './lib/state/lmdb-kv.ts';
export type { MemberRecovery } from './lib/member/driver.ts';

// The pure core, for custom drivers.
export {
  Raft,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Role,
  type StateChange,
} from './lib/core/raft.ts';
export type { RaftOptions, RaftOptionsInput } from './lib/core/options.ts';
export type { LogReader } from './lib/base/log-reader.ts';
export * from './lib/base/messages.ts';

// Storage.
export type { Storage, WriteBatch } from './lib/storage/storage.ts';
export { LmdbStorage, type LmdbStorageOptions } from './lib/storage/lmdb.ts';
export { LmdbMachineStore } from './lib/storage/lmdb-machine-store.ts';
export { MemoryStorage } from './lib/storage/memory.ts';
export { LmdbSnapshotStore, type SnapshotInfo } from './lib/storage/snapshot-store.ts';

// Transport.
export type { Transport, TransportCounters } from './lib/transport/transport.ts';
export { TcpTransport } from './lib/transport/tcp.ts';
