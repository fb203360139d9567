/**
 * The core's options: every limit named with its unit, validated once at construction.
 *
 * @module
 */
import * as v from 'valibot';
import { MemberIdSchema } from '../base/messages.ts';
import type { RandomSource } from './random.ts';
import { parseOptions } from '../base/validate.ts';

const positiveInt = (max: number) =>
  v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(max));

/**
 * Deliberate protocol bugs, for proving that the simulator's checkers catch them. Never set these
 * outside tests.
 */
export type UnsafeFaults = {
  /**
   * Commit an entry of an older term as soon as a majority stores it, and skip the no-op a new
   * leader writes (the Figure 8 bug as the paper describes it: the no-op would mostly hide it).
   */
  commitOlderTermByCount?: boolean;
  /** Grant a vote to every candidate that asks, even after voting in the term. */
  voteTwiceInTerm?: boolean;
  /** Grant votes without comparing logs (breaks leader completeness). */
  voteWithoutLogCheck?: boolean;
};

const OptionsSchema = v.strictObject({
  id: MemberIdSchema,
  /**
   * T, in ticks: a follower that hears no leader for a random time in [T, 2T) polls for an
   * election; a leader that has not heard from a majority for T steps down. Size it to several
   * network round trips plus a disk sync: with a 10 ms tick, 10 ticks is 100-200 ms.
   */
  electionTicks: v.optional(positiveInt(1_000_000), 10),
  /** Ticks between heartbeats; must be below `electionTicks` (at most a third is sensible). */
  heartbeatTicks: v.optional(positiveInt(1_000_000), 1),
  /** Bytes of entries in one AppendEntries message (at least one entry is always sent). */
  messageBytesMax: v.optional(positiveInt(2 ** 30), 1024 * 1024),
  /** AppendEntries messages in flight to one member before the leader waits for answers. */
  inflightMessagesMax: v.optional(positiveInt(65_536), 256),
  /** Bytes of entries in flight to one member; at least `messageBytesMax`. */
  inflightBytesMax: v.optional(positiveInt(2 ** 40), 64 * 1024 * 1024),
  /** Bytes of proposed but uncommitted entries before the leader drops new proposals. */
  uncommittedBytesMax: v.optional(positiveInt(2 ** 40), 256 * 1024 * 1024),
  /** Bytes of committed entries handed out in one ready batch (at least one entry). */
  committedBytesMax: v.optional(positiveInt(2 ** 40), 16 * 1024 * 1024),
  /** Read-index requests waiting at once on the leader. */
  readsPendingMax: v.optional(positiveInt(1_000_000), 65_536),
  /**
   * Ticks of a leader lease given up for clock drift: a lease read is served only until
   * `electionTicks - leaseDriftTicks` after the heartbeat round a majority answered was sent.
   */
  leaseDriftTicks: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0)), 2),
  /**
   * Ticks after start during which this member refuses real votes (polls are still answered).
   * A member whose storage was lost has forgotten whom it voted for; waiting two election
   * timeouts lets any election it may have voted in end, so it cannot vote twice in one term.
   * The server sets it when it opens an empty data directory. Default 0.
   */
  voteEmbargoTicks: v.optional(
    v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(10_000_000)),
    0,
  ),
  /**
   * Ticks a member may stay in snapshot state (the driver sending it a snapshot) before the leader
   * probes it again: the answer to an installed snapshot may have been lost. A transfer still
   * under way resumes from the follower's offset, so size this to a few election timeouts.
   */
  snapshotSendTicksMax: v.optional(positiveInt(100_000_000), 100),
  /** The index the state machine has applied at start (its snapshot's index). */
  appliedIndex: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0)), 0),
  /** Randomness for election timeouts (inject a seeded generator for deterministic runs). */
  random: v.function(),
  /** Test-only protocol bugs; see `UnsafeFaults`. */
  unsafeFaults: v.optional(
    v.strictObject({
      commitOlderTermByCount: v.optional(v.boolean()),
      voteTwiceInTerm: v.optional(v.boolean()),
      voteWithoutLogCheck: v.optional(v.boolean()),
    }),
  ),
});

/** Options of a `Raft` core, as given by the caller. */
export type RaftOptionsInput =
  & Omit<v.InferInput<typeof OptionsSchema>, 'random' | 'unsafeFaults'>
  & {
    random: RandomSource;
    unsafeFaults?: UnsafeFaults;
  };

/** Options after validation, with every default filled in. */
export type RaftOptions = Omit<v.InferOutput<typeof OptionsSchema>, 'random' | 'unsafeFaults'> & {
  random: RandomSource;
  unsafeFaults: UnsafeFaults;
};

/**
 * Validate `input` once. A wrong type is a `TypeError`, a value out of range a `RangeError`;
 * both name the option.
 *
 * @example
 * ```ts
 * parseRaftOptions({ id: 'a', random: Math.random, electionTicks: 0 }); // RangeError: electionTicks ...
 * ```
 */
export function parseRaftOptions(input: RaftOptionsInput): RaftOptions {
  const o = parseOptions(OptionsSchema, input, 'Raft');
  if (o.heartbeatTicks >= o.electionTicks) {
    throw new RangeError(
      `Invalid Raft option heartbeatTicks: ${o.heartbeatTicks} must be below electionTicks ${o.electionTicks}`,
    );
  }
  if (o.inflightBytesMax < o.messageBytesMax) {
    throw new RangeError(
      `Invalid Raft option inflightBytesMax: ${o.inflightBytesMax} must be at least messageBytesMax ${o.messageBytesMax}`,
    );
  }
  if (o.leaseDriftTicks >= o.electionTicks) {
    throw new RangeError(
      `Invalid Raft option leaseDriftTicks: ${o.leaseDriftTicks} must be below electionTicks ${o.electionTicks}`,
    );
  }
  return { ...o, random: input.random, unsafeFaults: input.unsafeFaults ?? {} };
}
