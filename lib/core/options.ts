/**
 * The core's options: every limit named with its unit, validated once at construction.
 *
 * @module
 */
import * as v from 'valibot';
import { configurationMembersMax, MemberIdSchema } from '../base/messages.ts';
import type { RandomSource } from './random.ts';
import { parseOptions } from '../base/validate.ts';

/** An integer in [1, max]: the type of `positiveInt`'s schemas. */
type PositiveIntSchema = v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, 1, undefined>,
    v.MaxValueAction<number, number, undefined>,
  ]
>;
/** An integer at least 0. */
type NaturalSchema = v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, 0, undefined>,
  ]
>;
/** An optional tunable whose default is filled in. */
type Tunable<S extends PositiveIntSchema | NaturalSchema = PositiveIntSchema> = v.OptionalSchema<
  S,
  number
>;

const positiveInt = (max: number): PositiveIntSchema =>
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
  /** The leader counts its own entries toward a majority before they are durable. */
  leaderCountsUndurableEntries?: boolean;
  /** A vote (and its term) is answered before it is durable. */
  voteBeforeDurable?: boolean;
  /** A follower acknowledges entries before they are durable. */
  ackBeforeDurable?: boolean;
  /** Serve lease reads while a leadership transfer runs (the etcd-io/raft#99 bug). */
  leaseReadDuringTransfer?: boolean;
};

/**
 * Deliberate membership bugs (`lib/core/fan-out.ts`, `lib/core/membership.ts`), for proving that
 * the membership tests and checkers catch them. Kept apart from `UnsafeFaults`: the simulator's
 * mutation table runs those without membership churn. Never set these outside tests.
 */
export type MembershipUnsafeFaults = {
  /** A feeder sends its passives entries past its commit index. */
  feedUncommittedEntries?: boolean;
  /** A passive member appends the entries of a feed past the commit index it was sent. */
  passiveAcceptsUncommitted?: boolean;
  /** A member that becomes PASSIVE keeps its uncommitted entries. */
  passiveKeepsUncommitted?: boolean;
  /** A vote request from a member that is not ACTIVE in this member's configuration raises its term. */
  adoptTermFromNonVoters?: boolean;
};

/** The names of every membership fault. */
export const membershipFaultNames = [
  'feedUncommittedEntries',
  'passiveAcceptsUncommitted',
  'passiveKeepsUncommitted',
  'adoptTermFromNonVoters',
] as const satisfies ReadonlyArray<keyof MembershipUnsafeFaults>;

/** The names of every unsafe fault, for command lines and mutation tables. */
export const unsafeFaultNames = [
  'commitOlderTermByCount',
  'voteTwiceInTerm',
  'voteWithoutLogCheck',
  'leaderCountsUndurableEntries',
  'voteBeforeDurable',
  'ackBeforeDurable',
  'leaseReadDuringTransfer',
] as const satisfies ReadonlyArray<keyof UnsafeFaults>;

/**
 * The core's limits and timings that an operator may tune: `RaftServer.start` takes exactly these
 * (composing this schema, so each has one name, one range and one default everywhere).
 */
export const RaftTunablesSchema: v.ObjectSchema<{
  /**
   * T, in ticks: a follower that hears no leader for a random time in [T, 2T) polls for an
   * election; a leader that has not heard from a majority for T steps down. Size it to several
   * network round trips plus a disk sync: with a 10 ms tick, 15 ticks is 150-300 ms.
   */
  readonly electionTicks: Tunable;
  /** Ticks between heartbeats; must be below `electionTicks` (at most a third is sensible). */
  readonly heartbeatTicks: Tunable;
  /** Bytes of entries in one AppendEntries message (at least one entry is always sent). */
  readonly messageBytesMax: Tunable;
  /** AppendEntries messages in flight to one member before the leader waits for answers. */
  readonly inflightMessagesMax: Tunable;
  /** Bytes of entries in flight to one member; at least `messageBytesMax`. */
  readonly inflightBytesMax: Tunable;
  /** Bytes of proposed but uncommitted entries before the leader drops new proposals. */
  readonly uncommittedBytesMax: Tunable;
  /** Bytes of committed entries handed out in one ready batch (at least one entry). */
  readonly committedBytesMax: Tunable;
  /** Read-index requests waiting at once on the leader. */
  readonly readsPendingMax: Tunable;
  /**
   * Ticks of a leader lease given up for clock drift: a lease read is served only until
   * `electionTicks - leaseDriftTicks` after the heartbeat round a majority answered was sent.
   * Size it to the worst relative drift of two members' tick rates over an election timeout.
   */
  readonly leaseDriftTicks: Tunable<NaturalSchema>;
  /**
   * Ticks a member may stay in snapshot state (the driver sending it a snapshot) before the leader
   * probes it again: the answer to an installed snapshot may have been lost. A transfer still
   * under way resumes from the follower's offset, so size this to a few election timeouts.
   */
  readonly snapshotSendTicksMax: Tunable;
  /**
   * Heartbeat intervals a leader waits for word from a follower before it stops counting it as a
   * feeder of PASSIVE members (its passives go to the live followers, or to the leader when none
   * is left). A passive member is therefore never left unfed for much longer than this.
   */
  readonly feederSilenceHeartbeats: v.OptionalSchema<
    v.SchemaWithPipe<
      readonly [
        v.NumberSchema<undefined>,
        v.SafeIntegerAction<number, undefined>,
        v.MinValueAction<number, 2, undefined>,
        v.MaxValueAction<number, 1_000, undefined>,
      ]
    >,
    number
  >;
  /**
   * The fewest ACTIVE members a configuration change may leave: a demotion or removal below it is
   * refused (`ConfigChangeInvalidError`). Changes that do not reduce the ACTIVE members are not.
   */
  readonly activeMembersMin: Tunable;
  /**
   * A PASSIVE member is promoted to ACTIVE only when its last reported index is at most this many
   * entries behind the leader's commit index (otherwise the promotion is refused, retryably).
   */
  readonly promotionLagEntriesMax: Tunable<NaturalSchema>;
}, undefined> = v.object({
  electionTicks: v.optional(positiveInt(1_000_000), 15),
  heartbeatTicks: v.optional(positiveInt(1_000_000), 3),
  messageBytesMax: v.optional(positiveInt(2 ** 30), 1024 * 1024),
  inflightMessagesMax: v.optional(positiveInt(65_536), 256),
  inflightBytesMax: v.optional(positiveInt(2 ** 40), 64 * 1024 * 1024),
  uncommittedBytesMax: v.optional(positiveInt(2 ** 40), 256 * 1024 * 1024),
  committedBytesMax: v.optional(positiveInt(2 ** 40), 16 * 1024 * 1024),
  readsPendingMax: v.optional(positiveInt(1_000_000), 65_536),
  leaseDriftTicks: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0)), 2),
  snapshotSendTicksMax: v.optional(positiveInt(100_000_000), 100),
  feederSilenceHeartbeats: v.optional(
    v.pipe(v.number(), v.safeInteger(), v.minValue(2), v.maxValue(1_000)),
    3,
  ),
  activeMembersMin: v.optional(positiveInt(configurationMembersMax), 1),
  promotionLagEntriesMax: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0)), 1_000),
});

const OptionsSchema: v.StrictObjectSchema<
  & { readonly id: typeof MemberIdSchema }
  & typeof RaftTunablesSchema.entries
  & {
    /**
     * Ticks after start during which this member refuses real votes (polls are still answered).
     * Default: `electionTicks`, on every start. A restarted voter has forgotten that it heard from
     * a leader recently, and the leader's lease relies on voters refusing votes for an election
     * timeout after they last heard from it; a member whose storage was lost has also forgotten
     * whom it voted for, and the driver gives it two election timeouts, so that any election it may
     * have voted in ends. Set 0 only in tests that script elections by hand.
     */
    readonly voteEmbargoTicks: v.OptionalSchema<
      v.SchemaWithPipe<
        readonly [
          v.NumberSchema<undefined>,
          v.SafeIntegerAction<number, undefined>,
          v.MinValueAction<number, 0, undefined>,
          v.MaxValueAction<number, 10_000_000, undefined>,
        ]
      >,
      undefined
    >;
    /** The index the state machine has applied at start (its snapshot's index). */
    readonly appliedIndex: v.OptionalSchema<NaturalSchema, 0>;
    /** Randomness for election timeouts (inject a seeded generator for deterministic runs). */
    readonly random: v.FunctionSchema<undefined>;
    /** Test-only protocol bugs; see `UnsafeFaults` and `MembershipUnsafeFaults`. */
    readonly unsafeFaults: v.OptionalSchema<
      v.StrictObjectSchema<
        { [name: string]: v.OptionalSchema<v.BooleanSchema<undefined>, undefined> },
        undefined
      >,
      undefined
    >;
  },
  undefined
> = v.strictObject({
  id: MemberIdSchema,
  ...RaftTunablesSchema.entries,
  voteEmbargoTicks: v.optional(
    v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(10_000_000)),
  ),
  appliedIndex: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0)), 0),
  random: v.function(),
  unsafeFaults: v.optional(
    v.strictObject(
      Object.fromEntries(
        [...unsafeFaultNames, ...membershipFaultNames].map((n) => [n, v.optional(v.boolean())]),
      ),
    ),
  ),
});

/** Options of a `Raft` core, as given by the caller. */
export type RaftOptionsInput =
  & Omit<v.InferInput<typeof OptionsSchema>, 'random' | 'unsafeFaults'>
  & {
    random: RandomSource;
    unsafeFaults?: UnsafeFaults & MembershipUnsafeFaults;
  };

/** Options after validation, with every default filled in. */
export type RaftOptions =
  & Omit<v.InferOutput<typeof OptionsSchema>, 'random' | 'unsafeFaults' | 'voteEmbargoTicks'>
  & {
    voteEmbargoTicks: number;
    random: RandomSource;
    unsafeFaults: UnsafeFaults & MembershipUnsafeFaults;
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
  checkRaftTunables(o, 'Raft');
  return {
    ...o,
    voteEmbargoTicks: o.voteEmbargoTicks ?? o.electionTicks,
    random: input.random,
    unsafeFaults: input.unsafeFaults ?? {},
  };
}

/** The tunables after defaults. */
export type RaftTunables = v.InferOutput<typeof RaftTunablesSchema>;

/**
 * Check the relationships between tunables (each alone was validated by its schema). Throws
 * `RangeError` naming the option; `where` says whose option it is.
 */
export function checkRaftTunables(o: RaftTunables, where: string): void {
  if (o.heartbeatTicks >= o.electionTicks) {
    throw new RangeError(
      `Invalid option heartbeatTicks for ${where}: ${o.heartbeatTicks} must be below electionTicks ${o.electionTicks}`,
    );
  }
  if (o.inflightBytesMax < o.messageBytesMax) {
    throw new RangeError(
      `Invalid option inflightBytesMax for ${where}: ${o.inflightBytesMax} must be at least messageBytesMax ${o.messageBytesMax}`,
    );
  }
  if (o.leaseDriftTicks >= o.electionTicks) {
    throw new RangeError(
      `Invalid option leaseDriftTicks for ${where}: ${o.leaseDriftTicks} must be below electionTicks ${o.electionTicks}`,
    );
  }
}
