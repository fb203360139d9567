/**
 * The expected failures of the state-machine layer, subclasses of the core's `EdgeraftError`
 * (a stable `code` and a `retryable` flag) so that the server and the client treat them alike.
 *
 * @module
 */
import { EdgeraftError } from '../core/errors.ts';

/**
 * The state machine refused one command: its `apply` threw (or, in `applyBatch`, returned an
 * `ApplicationError` in that command's slot), or the command's bytes did not decode. Only that
 * command's index fails; the log and every other command go on. Because the state machine is
 * deterministic, every member reaches the same error for the same index. Not retryable: the
 * command was applied (and refused) exactly once, and resubmitting it would be refused again.
 *
 * @example
 * ```ts
 * const results = await executor.applyEntries(entries);
 * for (const r of results) if (!r.ok) console.log(r.index, r.error.code); // 'APPLICATION_ERROR'
 * ```
 */
export class ApplicationError extends EdgeraftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('APPLICATION_ERROR', message, false);
    if (options?.cause !== undefined) this.cause = options.cause;
  }

  /**
   * Wrap whatever a state machine threw. The message is taken from the thrown value only, never
   * from anything local (stack, time), so that every member reports the same text.
   *
   * @example
   * ```ts
   * ApplicationError.from(new Error('no such key')).message; // 'Application error: no such key'
   * ```
   */
  static from(thrown: unknown): ApplicationError {
    if (thrown instanceof ApplicationError) return thrown;
    const detail = thrown instanceof Error ? thrown.message : String(thrown);
    return new ApplicationError(`Application error: ${detail}`, { cause: thrown });
  }
}

/**
 * A query failed: the state machine's `query` threw (a malformed query, say), or too many reads
 * are already waiting for the applied index. `retryable` is true only for the second kind.
 *
 * @example
 * ```ts
 * try { executor.query({ op: 'nope' }); } catch (e) { if (e instanceof QueryError) console.log(e.message); }
 * ```
 */
export class QueryError extends EdgeraftError {
  constructor(message: string, retryable: boolean, options?: { cause?: unknown }) {
    super('QUERY_ERROR', message, retryable);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
