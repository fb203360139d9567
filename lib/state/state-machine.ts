/**
 * What a user implements: a deterministic state machine that the executor feeds committed
 * commands, in log order, exactly once, on every member that keeps a state machine.
 *
 * Determinism is the whole contract. Given the same commits (and the same snapshot to start
 * from), every member must reach the same state and the same outputs: no wall clock (use
 * `commit.timeMs` and `context.timeMs`, the leader's timestamps carried in the log), no
 * randomness, no I/O whose result feeds the state, no iteration order that depends on anything
 * but the data.
 *
 * @example
 * ```ts
 * import type { StateMachine } from './state-machine.ts';
 * class Counter implements StateMachine<number, number, null, number> {
 *   #total = 0;
 *   apply(commit) { this.#total += commit.command; return this.#total; }
 *   query() { return this.#total; }
 *   snapshot() { const total = this.#total; return (async function* () { yield new Uint8Array(new Float64Array([total]).buffer); })(); }
 *   async restore(chunks) { for await (const c of chunks) this.#total = new Float64Array(c.slice().buffer)[0] ?? 0; }
 * }
 * ```
 * @module
 */
import type { ApplyContext } from './context.ts';
import type { ApplicationError } from '../base/errors.ts';

/**
 * One committed command as the state machine sees it. `timeMs` is the log time: the leader's
 * clock when it appended the entry (never decreasing along the log), identical on every member.
 *
 * Sessions (exactly-once commands, next issue) will reach the state machine as plain commits: the
 * session layer unwraps its (session, sequence) envelope and answers duplicates from its cache
 * before a commit is built, so this type stays what the user sees.
 */
export type Commit<Command> = {
  /** The entry's log index (from 1). */
  readonly index: number;
  /** The term of the leader that appended the entry. */
  readonly term: number;
  /** Log time in milliseconds: the leader's timestamp in the entry, never the local clock. */
  readonly timeMs: number;
  /** The command, decoded by the executor's `CommandCodec`. */
  readonly command: Command;
};

/**
 * A user's state machine.
 *
 * Threading contract: `apply`, `applyBatch` and `query` are synchronous and are never called
 * while another of them runs (JavaScript is single threaded and the executor never interleaves).
 * Synchronous on purpose: the executor, not the state machine, decides when to yield to the
 * event loop, so a batch is a deterministic run of applies with nothing in between.
 *
 * Errors: a throw from `apply` fails that command only (an `ApplicationError` for its index,
 * identical on every member because the machine is deterministic). Whatever the throwing apply
 * had already mutated stays mutated, on every member alike: validate first, then mutate.
 */
export interface StateMachine<Command, Output, Query, QueryOutput> {
  /**
   * Apply one committed command and return its output. The context's `index` and `timeMs` are
   * the commit's, and `context.schedule` registers timers fired by log time.
   */
  apply(commit: Commit<Command>, context: ApplyContext): Output;
  /**
   * Optional: apply a run of consecutive commands at once (for throughput) and return their
   * outputs in the same order, same length. When present the executor calls only `applyBatch`,
   * never `apply`. It must have exactly the effect of applying the commands one by one, because
   * batch boundaries differ between members (they depend on arrival and on the apply time
   * budget). A command that fails gets an `ApplicationError` in its slot; a throw out of
   * `applyBatch` is a bug (the executor cannot know how far it got) and stops the executor.
   *
   * There is no context and so no `schedule` here: a timer registered in the middle of a batch
   * would have to fire before the next command of the same batch, which one call cannot do.
   * A state machine that needs timers implements `apply` only.
   */
  applyBatch?(commits: readonly Commit<Command>[]): (Output | ApplicationError)[];
  /**
   * Answer a read-only query against the current state. Queries never go through the log; a
   * throw becomes a `QueryError`. Must not change the state.
   */
  query(query: Query): QueryOutput;
  /**
   * Capture a consistent view of the state synchronously, at the call, and return it as a stream
   * of byte chunks. The executor calls it between applies; `apply` goes on while the stream is
   * being consumed, so the machine must stream the captured view (a copy, a persistent data
   * structure, copy-on-write), never the live state. Keep chunks bounded (say 64 KiB) so that a
   * large state is never one buffer. The stream may be re-chunked in transit: `restore` must not
   * depend on chunk boundaries.
   */
  snapshot(): AsyncIterable<Uint8Array>;
  /**
   * Discard all state and load a snapshot's chunks. Timers are not part of snapshots (a callback
   * is code, not data): the executor cancels every pending timer before calling `restore`, and a
   * machine that uses timers keeps what it needs in its state (an expiry time, say) and
   * re-creates them here through `context.schedule`, whose `index` and `timeMs` are the
   * snapshot's. Timers with equal due times fire in registration order, so re-create them in the
   * order they were first registered (keep a sequence number in the state) or keep due times
   * distinct.
   */
  restore(chunks: AsyncIterable<Uint8Array>, context: ApplyContext): Promise<void>;
}
