/**
 * The expected failures of the library's API: a small closed set of error classes, each with a
 * stable `code`, documented with when it happens and whether retrying is safe.
 *
 * What `retryable` means, everywhere in edgeraft: the request was **certainly not carried out**,
 * so sending it again (possibly to another member) cannot apply it twice. A command that was
 * handed to the core has an unknown outcome until it is applied: it ends in a retryable error
 * only when it is certain it will never be applied (another entry took its index), and otherwise
 * in `OutcomeUnknownError` or `TimeoutError`, which are not retryable (only a client session,
 * same session and sequence, makes retrying such a command safe). Each class below says in one
 * line why its flag is what it is.
 *
 * Broken invariants are not among them: those are bugs, and `assert` throws `AssertionError`.
 *
 * @module
 */

/** Every code an `EdgeraftError` can carry. */
export type ErrorCode =
  | 'NOT_LEADER'
  | 'PROPOSAL_DROPPED'
  | 'COMPACTED'
  | 'LEADERSHIP_TRANSFER'
  | 'CONFIG_CHANGE_IN_PROGRESS'
  | 'CONFIG_CHANGE_INVALID'
  | 'NOT_CAUGHT_UP'
  | 'TRANSFER_INVALID'
  | 'SHUTDOWN'
  | 'OUTCOME_UNKNOWN'
  | 'TIMEOUT'
  | 'STORAGE'
  | 'DATA_DIR_IN_USE'
  | 'APPLICATION_ERROR'
  | 'QUERY_ERROR'
  // Codes only the client protocol carries (see `clientErrorCodes` in client-protocol.ts).
  | 'NO_LEADER'
  | 'UNKNOWN_SESSION'
  | 'COMMAND_ERROR'
  | 'RESULT_EVICTED'
  | 'SNAPSHOT_CHANGED'
  | 'UNAUTHENTICATED'
  | 'INTERNAL_ERROR';

/**
 * Base class of the library's expected errors. `retryable` is true only when the request was
 * certainly not carried out (see the module comment).
 */
export class EdgeraftError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, retryable: boolean) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

/**
 * This member is not the leader. `leaderId` is the leader it last heard from, or `null`.
 * Retryable: the core refuses before appending anything, so nothing was proposed here.
 *
 * @example
 * ```ts
 * try { raft.propose(data, now); } catch (e) { if (e instanceof NotLeaderError) redirect(e.leaderId); }
 * ```
 */
export class NotLeaderError extends EdgeraftError {
  readonly leaderId: string | null;
  constructor(leaderId: string | null) {
    super(
      'NOT_LEADER',
      leaderId === null
        ? 'Not the leader: no leader known'
        : `Not the leader: leader is ${leaderId}`,
      true,
    );
    this.leaderId = leaderId;
  }
}

/**
 * A proposal or read was refused or lost for good: too many bytes uncommitted or reads pending (refused
 * before anything was appended), or its entry was replaced by another leader's entry at the same
 * index (so it can never be applied). Retryable: in every case it certainly was not carried out.
 */
export class ProposalDroppedError extends EdgeraftError {
  constructor(detail: string) {
    super('PROPOSAL_DROPPED', `Proposal dropped: ${detail}`, true);
  }
}

/** The requested entries were compacted into a snapshot. Not retryable: the same range stays compacted. */
export class CompactedError extends EdgeraftError {
  readonly index: number;
  constructor(index: number, firstIndex: number) {
    super('COMPACTED', `Entry compacted: index ${index}, first index ${firstIndex}`, false);
    this.index = index;
  }
}

/** A leadership transfer is under way. Retryable: proposals are refused before anything is appended. */
export class LeadershipTransferError extends EdgeraftError {
  constructor(target: string) {
    super('LEADERSHIP_TRANSFER', `Leadership transfer in progress: to ${target}`, true);
  }
}

/**
 * Another configuration change is not yet committed (one change at a time), or the leader has
 * not committed an entry of its term yet. Retryable: the change was refused before it was appended.
 */
export class ConfigChangeInProgressError extends EdgeraftError {
  constructor(index: number) {
    super(
      'CONFIG_CHANGE_IN_PROGRESS',
      `Configuration change in progress: uncommitted at index ${index}`,
      true,
    );
  }
}

/**
 * A configuration change that must never be made: it would leave no ACTIVE member, change more
 * than one voter at once, or list a member twice. Not retryable: it was refused, and would be again.
 */
export class ConfigChangeInvalidError extends EdgeraftError {
  constructor(detail: string) {
    super('CONFIG_CHANGE_INVALID', `Configuration change refused: ${detail}`, false);
  }
}

/**
 * A PASSIVE member was to be promoted to ACTIVE before it caught up with the leader (its last
 * reported index is more than `promotionLagEntriesMax` behind, or the leader has no recent report
 * of it). Retryable: the change was refused before it was appended; it succeeds once it caught up.
 */
export class NotCaughtUpError extends EdgeraftError {
  constructor(detail: string) {
    super('NOT_CAUGHT_UP', `Member not caught up: ${detail}`, true);
  }
}

/**
 * A leadership transfer that cannot be made: its target is not a member of the configuration, or
 * is not ACTIVE (only a voter can lead). Not retryable: nothing was started, and it would be
 * refused again.
 */
export class TransferInvalidError extends EdgeraftError {
  constructor(detail: string) {
    super('TRANSFER_INVALID', `Leadership transfer refused: ${detail}`, false);
  }
}

/**
 * The member is shutting down or stopped and refused the request. Retryable: it is raised only
 * before a request reaches the core, so nothing was proposed (in-flight proposals end in
 * `OutcomeUnknownError` instead).
 */
export class ShutdownError extends EdgeraftError {
  constructor(detail = 'the member is stopping') {
    super('SHUTDOWN', `Shut down: ${detail}`, true);
  }
}

/**
 * A proposal was appended to the log but this member cannot tell whether it will be applied: it
 * stopped, its storage failed, or a snapshot covering the entry replaced its log. Not retryable:
 * the entry may already be committed on the other members (only a session makes a retry safe).
 */
export class OutcomeUnknownError extends EdgeraftError {
  readonly index: number;
  constructor(index: number, detail: string) {
    super('OUTCOME_UNKNOWN', `Outcome unknown for the entry at index ${index}: ${detail}`, false);
    this.index = index;
  }
}

/** The operation did not finish in time. Not retryable: its outcome is unknown (it may still be applied). */
export class TimeoutError extends EdgeraftError {
  constructor(detail: string) {
    super('TIMEOUT', `Timed out: ${detail}`, false);
  }
}

/** Storage failed (disk full, I/O error); the member stops acknowledging. Not retryable: this member is down for good. */
export class StorageError extends EdgeraftError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('STORAGE', `Storage failed: ${detail}`, false);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * The client session named by a request does not exist: it expired (it missed its timeout) or was
 * never registered. Not retryable under that session (it is gone); the client may open a new one.
 */
export class UnknownSessionError extends EdgeraftError {
  readonly session: number;
  constructor(session: number) {
    super('UNKNOWN_SESSION', `Unknown session: ${session} expired or was never registered`, false);
    this.session = session;
  }
}

/**
 * A session's command was refused before it was applied: out of sequence (its predecessors are
 * not yet applied), too far ahead of the next expected one, or its output no longer kept for a
 * retry. Retryable with the same sequence number: the command was not applied.
 */
export class CommandError extends EdgeraftError {
  constructor(detail: string) {
    super('COMMAND_ERROR', `Command refused: ${detail}`, true);
  }
}

/**
 * Another process (or another opener in this one) holds the data directory's lock, so this one
 * must not run as that member: two processes with one identity could each vote once in the same
 * term, and both would append to one log. Thrown when a data directory is opened (by
 * `LmdbStorage.open`, hence `RaftServer.start`). `directory` is the folder, `holder` what its lock
 * file says (`null` when it was unreadable). Not retryable while the holder runs: stop it first,
 * or, for a lock taken on another host, remove the lock file once sure that host's process is gone.
 *
 * @example
 * ```ts
 * try { await RaftServer.start(options); } catch (e) {
 *   if (e instanceof DataDirectoryInUseError) console.error(e.message); // ...held by pid 1234...
 * }
 * ```
 */
export class DataDirectoryInUseError extends EdgeraftError {
  readonly directory: string;
  readonly holder: DataDirectoryHolder | null;
  constructor(directory: string, detail: string, holder: DataDirectoryHolder | null) {
    super('DATA_DIR_IN_USE', `Data directory ${directory} is in use: ${detail}`, false);
    this.directory = directory;
    this.holder = holder;
  }
}

/** Who holds a data directory, as its lock file records it (see `DataDirectoryInUseError`). */
export type DataDirectoryHolder = {
  readonly pid: number;
  readonly hostname: string;
  /** When the lock was taken, ISO 8601. */
  readonly startedAt: string;
  /** The holder's command line, shortened. */
  readonly command: string;
};

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
 * are already waiting for the applied index. Retryable only for the second kind: the query was
 * refused before it read anything, while a throwing query would throw again.
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

/** A broken invariant: a bug. Never caught by library code. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Throw `AssertionError` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
