/**
 * The Raft messages and log entries, as valibot schemas. These schemas are the single source of
 * the message types: the TypeScript types below are inferred from them, the transport validates
 * every inbound message against them before it reaches the core, and the storage validates
 * entries when it writes and reads them.
 *
 * Numbers are log indexes, terms and times: integers in [0, 2^53). A BigInt (what a CBOR decoder
 * produces for a larger integer) fails validation instead of being coerced.
 *
 * @example
 * ```ts
 * import * as v from 'valibot';
 * import { RaftMessageSchema } from './messages.ts';
 * const result = v.safeParse(RaftMessageSchema, { type: 'heartbeat', from: 'a', to: 'b', term: 1, commitIndex: 0, readSeq: 0 });
 * console.log(result.success); // true
 * ```
 * @module
 */
import * as v from 'valibot';

// The schemas carry explicit types (JSR's "no slow types": a published module's API is typed
// without inference); each is exactly what valibot infers, spelled with the aliases below.

/** A string of at least `M` and at most `L` characters. */
type BoundedStringSchema<M extends number, L extends number> = v.SchemaWithPipe<
  readonly [
    v.StringSchema<undefined>,
    v.MinLengthAction<string, M, undefined>,
    v.MaxLengthAction<string, L, undefined>,
  ]
>;
/** An optional address string of at most `memberAddressLengthMax` characters. */
type AddressSchema = v.OptionalSchema<
  v.SchemaWithPipe<
    readonly [
      v.StringSchema<undefined>,
      v.MaxLengthAction<string, typeof memberAddressLengthMax, undefined>,
    ]
  >,
  undefined
>;
/** A strict object schema (unknown keys are refused) with the entries `E`. */
type StrictSchema<E extends v.ObjectEntries> = v.StrictObjectSchema<E, undefined>;

/** Longest member id, in UTF-16 code units. */
export const memberIdLengthMax = 128;
/** Longest member address, in UTF-16 code units. */
export const memberAddressLengthMax = 256;
/** Most members in one configuration. */
export const configurationMembersMax = 1024;
/** Most entries in one AppendEntries message (the byte limit normally binds first). */
export const appendEntriesCountMax = 65_536;

/** A log index, term, count or time in milliseconds: an integer in [0, 2^53). */
export const NaturalSchema: v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, 0, undefined>,
  ]
> = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/** A member id: a short non-empty string. */
export const MemberIdSchema: BoundedStringSchema<1, typeof memberIdLengthMax> = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(memberIdLengthMax),
);

/**
 * Member types, lowest to highest. Only ACTIVE members vote and count toward quorums; PASSIVE
 * members keep a full log and state machine; RESERVE members learn only configurations;
 * INACTIVE members only accept configuration pushes.
 */
export const MemberType = {
  INACTIVE: 'INACTIVE',
  RESERVE: 'RESERVE',
  PASSIVE: 'PASSIVE',
  ACTIVE: 'ACTIVE',
} as const;
/** One of the member types. */
export const MemberTypeSchema: v.PicklistSchema<
  ['INACTIVE', 'RESERVE', 'PASSIVE', 'ACTIVE'],
  undefined
> = v.picklist([
  MemberType.INACTIVE,
  MemberType.RESERVE,
  MemberType.PASSIVE,
  MemberType.ACTIVE,
]);
export type MemberType = v.InferOutput<typeof MemberTypeSchema>;

/** One member of a configuration: its id, type and (optional) `host:port` address. */
export const MemberSchema: StrictSchema<{
  readonly id: typeof MemberIdSchema;
  readonly type: typeof MemberTypeSchema;
  readonly address: AddressSchema;
  /** Where clients reach this member (`host:port`), for leader hints. */
  readonly clientAddress: AddressSchema;
}> = v.strictObject({
  id: MemberIdSchema,
  type: MemberTypeSchema,
  address: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
  clientAddress: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
});
export type Member = v.InferOutput<typeof MemberSchema>;

/** A configuration's member list: at most `configurationMembersMax` members. */
export const MembersSchema: v.SchemaWithPipe<
  readonly [
    v.ArraySchema<typeof MemberSchema, undefined>,
    v.MaxLengthAction<Member[], typeof configurationMembersMax, undefined>,
  ]
> = v.pipe(v.array(MemberSchema), v.maxLength(configurationMembersMax));

/** A byte string (any `Uint8Array`, including Node's `Buffer`). */
export const BytesSchema: v.CustomSchema<Uint8Array, v.ErrorMessage<v.CustomIssue> | undefined> = v
  .custom<Uint8Array>(
    (x) => x instanceof Uint8Array,
    'Expected bytes (Uint8Array)',
  );

/** The fields every log entry has. */
type EntryHead = {
  readonly index: typeof NaturalSchema;
  readonly term: typeof NaturalSchema;
  readonly timeMs: typeof NaturalSchema;
};
const entryHead: EntryHead = { index: NaturalSchema, term: NaturalSchema, timeMs: NaturalSchema };
/** The schema of an entry of type `T` with the fields `E` besides the head. */
type EntryKindSchema<T extends string, E extends v.ObjectEntries> = StrictSchema<
  { readonly type: v.LiteralSchema<T, undefined> } & EntryHead & E
>;

/** A no-op entry, written by every new leader so that it can commit entries of its term. */
export const NoopEntrySchema: EntryKindSchema<'noop', Record<never, never>> = v.strictObject({
  type: v.literal('noop'),
  ...entryHead,
});
/** A user command: opaque bytes for the state machine. */
export const CommandEntrySchema: EntryKindSchema<'command', {
  readonly data: typeof BytesSchema;
}> = v.strictObject({
  type: v.literal('command'),
  ...entryHead,
  data: BytesSchema,
});
/** A configuration: the full member list that takes effect as soon as it is appended. */
export const ConfigEntrySchema: EntryKindSchema<'config', {
  readonly members: typeof MembersSchema;
}> = v.strictObject({
  type: v.literal('config'),
  ...entryHead,
  members: MembersSchema,
});
/**
 * A log entry. `index` starts at 1; `timeMs` is the leader's clock when it appended the entry,
 * never decreasing along the log: the log-derived time a state machine sees.
 */
export const EntrySchema: v.VariantSchema<
  'type',
  [typeof NoopEntrySchema, typeof CommandEntrySchema, typeof ConfigEntrySchema],
  undefined
> = v.variant('type', [
  NoopEntrySchema,
  CommandEntrySchema,
  ConfigEntrySchema,
]);
export type Entry = v.InferOutput<typeof EntrySchema>;
export type CommandEntry = v.InferOutput<typeof CommandEntrySchema>;
export type ConfigEntry = v.InferOutput<typeof ConfigEntrySchema>;

/** The fields every message has: sender, receiver and the sender's term. */
type Head = {
  readonly from: typeof MemberIdSchema;
  readonly to: typeof MemberIdSchema;
  readonly term: typeof NaturalSchema;
};
const head: Head = { from: MemberIdSchema, to: MemberIdSchema, term: NaturalSchema };
/** The schema of a message of type `T` with the fields `E` besides the head. */
type MessageSchema<T extends string, E extends v.ObjectEntries> = StrictSchema<
  { readonly type: v.LiteralSchema<T, undefined> } & Head & E
>;
type Natural = typeof NaturalSchema;
type Bool = v.BooleanSchema<undefined>;
/** The entries of one AppendEntries message: at most `appendEntriesCountMax`. */
type EntriesSchema = v.SchemaWithPipe<
  readonly [
    v.ArraySchema<typeof EntrySchema, undefined>,
    v.MaxLengthAction<Entry[], typeof appendEntriesCountMax, undefined>,
  ]
>;

/**
 * RequestVote, or a poll (pre-vote) when `preVote` is true. For a poll `term` is the term the
 * sender would campaign at; nobody adopts it. `transfer` is set by a leadership-transfer target,
 * whose request voters grant even while they still hear from the old leader.
 */
export const VoteSchema: MessageSchema<'vote', {
  readonly lastLogIndex: Natural;
  readonly lastLogTerm: Natural;
  readonly preVote: Bool;
  readonly transfer: Bool;
}> = v.strictObject({
  type: v.literal('vote'),
  ...head,
  lastLogIndex: NaturalSchema,
  lastLogTerm: NaturalSchema,
  preVote: v.boolean(),
  transfer: v.boolean(),
});
/** The answer to a vote or poll. `term` is the request's term when granted. */
export const VoteResponseSchema: MessageSchema<'voteResponse', {
  readonly granted: Bool;
  readonly preVote: Bool;
}> = v.strictObject({
  type: v.literal('voteResponse'),
  ...head,
  granted: v.boolean(),
  preVote: v.boolean(),
});
/**
 * AppendEntries. `entries` follow `prevLogIndex`; `commitIndex` is the leader's; `globalIndex`
 * is the highest index stored by every member (compaction prefers to keep what lies above it).
 */
export const AppendSchema: MessageSchema<'append', {
  readonly prevLogIndex: Natural;
  readonly prevLogTerm: Natural;
  readonly entries: EntriesSchema;
  readonly commitIndex: Natural;
  readonly globalIndex: Natural;
}> = v.strictObject({
  type: v.literal('append'),
  ...head,
  prevLogIndex: NaturalSchema,
  prevLogTerm: NaturalSchema,
  entries: v.pipe(v.array(EntrySchema), v.maxLength(appendEntriesCountMax)),
  commitIndex: NaturalSchema,
  globalIndex: NaturalSchema,
});
/**
 * The answer to AppendEntries. On success `matchIndex` is the last index known to match the
 * leader's log. On refusal `matchIndex` echoes the refused `prevLogIndex`, and the hint tells the
 * leader where to resume: `hintIndex` is the follower's last index when its log is too short, or
 * the first index of the conflicting term `hintTerm` (0 when the log was too short).
 */
export const AppendResponseSchema: MessageSchema<'appendResponse', {
  readonly success: Bool;
  readonly matchIndex: Natural;
  readonly hintIndex: Natural;
  readonly hintTerm: Natural;
}> = v.strictObject({
  type: v.literal('appendResponse'),
  ...head,
  success: v.boolean(),
  matchIndex: NaturalSchema,
  hintIndex: NaturalSchema,
  hintTerm: NaturalSchema,
});
/**
 * A heartbeat. `commitIndex` is capped at what the follower is known to store; `readSeq`
 * numbers the round so that read-index requests can count acknowledgements.
 */
export const HeartbeatSchema: MessageSchema<'heartbeat', {
  readonly commitIndex: Natural;
  readonly readSeq: Natural;
}> = v.strictObject({
  type: v.literal('heartbeat'),
  ...head,
  commitIndex: NaturalSchema,
  readSeq: NaturalSchema,
});
export const HeartbeatResponseSchema: MessageSchema<'heartbeatResponse', {
  readonly readSeq: Natural;
}> = v.strictObject({
  type: v.literal('heartbeatResponse'),
  ...head,
  readSeq: NaturalSchema,
});
/**
 * InstallSnapshot, as the core sees it: the snapshot's index, term and configuration. The server
 * streams the snapshot's bytes in chunks before it hands this message to the receiving core.
 */
export const SnapshotSchema: MessageSchema<'snapshot', {
  readonly index: Natural;
  readonly snapshotTerm: Natural;
  readonly snapshotTimeMs: Natural;
  readonly members: typeof MembersSchema;
}> = v.strictObject({
  type: v.literal('snapshot'),
  ...head,
  index: NaturalSchema,
  snapshotTerm: NaturalSchema,
  snapshotTimeMs: NaturalSchema,
  members: MembersSchema,
});
/** Sent by a leader to a caught-up transfer target: campaign now, skipping the poll. */
export const TimeoutNowSchema: MessageSchema<'timeoutNow', Record<never, never>> = v.strictObject({
  type: v.literal('timeoutNow'),
  ...head,
});

/**
 * One chunk of a snapshot's bytes, leader to follower, sent by the server (not the core) after
 * the core asked for a snapshot to be sent. `offset` is the chunk's first byte in the snapshot.
 */
export const SnapshotChunkSchema: MessageSchema<'snapshotChunk', {
  readonly index: Natural;
  readonly snapshotTerm: Natural;
  readonly snapshotTimeMs: Natural;
  readonly members: typeof MembersSchema;
  readonly totalBytes: Natural;
  readonly offset: Natural;
  readonly data: typeof BytesSchema;
  readonly done: Bool;
}> = v.strictObject({
  type: v.literal('snapshotChunk'),
  ...head,
  index: NaturalSchema,
  snapshotTerm: NaturalSchema,
  snapshotTimeMs: NaturalSchema,
  members: MembersSchema,
  totalBytes: NaturalSchema,
  offset: NaturalSchema,
  data: BytesSchema,
  done: v.boolean(),
});
/**
 * The answer to a snapshot chunk: the offset the follower wants next (so a broken transfer
 * resumes where it stopped), or `ok: false` to abandon the transfer.
 */
export const SnapshotChunkResponseSchema: MessageSchema<'snapshotChunkResponse', {
  readonly index: Natural;
  readonly nextOffset: Natural;
  readonly ok: Bool;
}> = v.strictObject({
  type: v.literal('snapshotChunkResponse'),
  ...head,
  index: NaturalSchema,
  nextOffset: NaturalSchema,
  ok: v.boolean(),
});

/**
 * A client's request that a member which is not the leader hands to the leader (its command,
 * session registration, keep-alive or strong read), by the member driver, not the core. `data` is
 * the request as `MemberRequestSchema` describes it, CBOR-encoded; `requestId` pairs the answer.
 */
export const ForwardSchema: MessageSchema<'forward', {
  readonly requestId: Natural;
  readonly data: typeof BytesSchema;
}> = v.strictObject({
  type: v.literal('forward'),
  ...head,
  requestId: NaturalSchema,
  data: BytesSchema,
});
/** The leader's answer to a forwarded request: `data` is a `MemberReplySchema` value, CBOR-encoded. */
export const ForwardResponseSchema: MessageSchema<'forwardResponse', {
  readonly requestId: Natural;
  readonly data: typeof BytesSchema;
}> = v.strictObject({
  type: v.literal('forwardResponse'),
  ...head,
  requestId: NaturalSchema,
  data: BytesSchema,
});

/**
 * Membership messages (see `lib/core/fan-out.ts` and `lib/core/membership.ts`): the leader tells
 * each follower which PASSIVE members it feeds (`assign`); a feeder sends its passives committed
 * entries only (`feed`) and they answer it (`feedResponse`); a feeder reports its passives'
 * progress to the leader (`feedReport`); the leader pushes the committed configuration, its term
 * and commit index to RESERVE and INACTIVE members (`configure`), which acknowledge it
 * (`configureResponse`). None of them ever raises a voter's term.
 */
/**
 * Leader to follower: the PASSIVE members this follower feeds from now on (replacing any earlier
 * assignment of this term), with their addresses.
 */
export const AssignSchema: MessageSchema<'assign', {
  readonly members: typeof MembersSchema;
}> = v.strictObject({
  type: v.literal('assign'),
  ...head,
  members: MembersSchema,
});
/**
 * Feeder to passive: entries that are all committed (at or below `commitIndex`), after
 * `prevLogIndex`/`prevLogTerm`. `leaderId` is the leader the feeder follows. `term` is the
 * feeder's: a passive adopts it when higher, and feeds are accepted at any term (committed
 * entries are the same on every member).
 */
export const FeedSchema: MessageSchema<'feed', {
  readonly leaderId: typeof MemberIdSchema;
  readonly prevLogIndex: Natural;
  readonly prevLogTerm: Natural;
  readonly entries: EntriesSchema;
  readonly commitIndex: Natural;
}> = v.strictObject({
  type: v.literal('feed'),
  ...head,
  leaderId: MemberIdSchema,
  prevLogIndex: NaturalSchema,
  prevLogTerm: NaturalSchema,
  entries: v.pipe(v.array(EntrySchema), v.maxLength(appendEntriesCountMax)),
  commitIndex: NaturalSchema,
});
/**
 * Passive to feeder: on success `matchIndex` is the passive's last stored index matching the
 * feeder's log; on refusal `matchIndex` echoes the refused `prevLogIndex` and `hintIndex` is where
 * the passive's log ends.
 */
export const FeedResponseSchema: MessageSchema<'feedResponse', {
  readonly success: Bool;
  readonly matchIndex: Natural;
  readonly hintIndex: Natural;
}> = v.strictObject({
  type: v.literal('feedResponse'),
  ...head,
  success: v.boolean(),
  matchIndex: NaturalSchema,
  hintIndex: NaturalSchema,
});
/** Feeder to leader: `member`, a passive it feeds and heard from recently, stores up to `matchIndex`. */
export const FeedReportSchema: MessageSchema<'feedReport', {
  readonly member: typeof MemberIdSchema;
  readonly matchIndex: Natural;
}> = v.strictObject({
  type: v.literal('feedReport'),
  ...head,
  member: MemberIdSchema,
  matchIndex: NaturalSchema,
});
/**
 * Leader to a RESERVE or INACTIVE member: the committed configuration (`configIndex`,
 * `configTerm`, `members`) and the leader's commit index. RESERVE members get one every heartbeat
 * interval (their heartbeat); INACTIVE ones until they acknowledge the configuration.
 */
export const ConfigureSchema: MessageSchema<'configure', {
  readonly commitIndex: Natural;
  readonly configIndex: Natural;
  readonly configTerm: Natural;
  readonly members: typeof MembersSchema;
}> = v.strictObject({
  type: v.literal('configure'),
  ...head,
  commitIndex: NaturalSchema,
  configIndex: NaturalSchema,
  configTerm: NaturalSchema,
  members: MembersSchema,
});
/** The answer to `configure`: the configuration index now known. */
export const ConfigureResponseSchema: MessageSchema<'configureResponse', {
  readonly configIndex: Natural;
}> = v.strictObject({
  type: v.literal('configureResponse'),
  ...head,
  configIndex: NaturalSchema,
});

/** Every message Raft members exchange. */
export const RaftMessageSchema: v.VariantSchema<
  'type',
  [
    typeof ForwardSchema,
    typeof ForwardResponseSchema,
    typeof SnapshotChunkSchema,
    typeof SnapshotChunkResponseSchema,
    typeof VoteSchema,
    typeof VoteResponseSchema,
    typeof AppendSchema,
    typeof AppendResponseSchema,
    typeof HeartbeatSchema,
    typeof HeartbeatResponseSchema,
    typeof SnapshotSchema,
    typeof TimeoutNowSchema,
    typeof AssignSchema,
    typeof FeedSchema,
    typeof FeedResponseSchema,
    typeof FeedReportSchema,
    typeof ConfigureSchema,
    typeof ConfigureResponseSchema,
  ],
  undefined
> = v.variant('type', [
  ForwardSchema,
  ForwardResponseSchema,
  SnapshotChunkSchema,
  SnapshotChunkResponseSchema,
  VoteSchema,
  VoteResponseSchema,
  AppendSchema,
  AppendResponseSchema,
  HeartbeatSchema,
  HeartbeatResponseSchema,
  SnapshotSchema,
  TimeoutNowSchema,
  AssignSchema,
  FeedSchema,
  FeedResponseSchema,
  FeedReportSchema,
  ConfigureSchema,
  ConfigureResponseSchema,
]);
export type RaftMessage = v.InferOutput<typeof RaftMessageSchema>;
export type VoteMessage = v.InferOutput<typeof VoteSchema>;
export type VoteResponseMessage = v.InferOutput<typeof VoteResponseSchema>;
export type AppendMessage = v.InferOutput<typeof AppendSchema>;
export type AppendResponseMessage = v.InferOutput<typeof AppendResponseSchema>;
export type HeartbeatMessage = v.InferOutput<typeof HeartbeatSchema>;
export type HeartbeatResponseMessage = v.InferOutput<typeof HeartbeatResponseSchema>;
export type SnapshotMessage = v.InferOutput<typeof SnapshotSchema>;
export type TimeoutNowMessage = v.InferOutput<typeof TimeoutNowSchema>;
export type SnapshotChunkMessage = v.InferOutput<typeof SnapshotChunkSchema>;
export type SnapshotChunkResponseMessage = v.InferOutput<typeof SnapshotChunkResponseSchema>;
export type ForwardMessage = v.InferOutput<typeof ForwardSchema>;
export type ForwardResponseMessage = v.InferOutput<typeof ForwardResponseSchema>;
export type AssignMessage = v.InferOutput<typeof AssignSchema>;
export type FeedMessage = v.InferOutput<typeof FeedSchema>;
export type FeedResponseMessage = v.InferOutput<typeof FeedResponseSchema>;
export type FeedReportMessage = v.InferOutput<typeof FeedReportSchema>;
export type ConfigureMessage = v.InferOutput<typeof ConfigureSchema>;
export type ConfigureResponseMessage = v.InferOutput<typeof ConfigureResponseSchema>;

/** Durable per-member state: written before any reply that depends on it. */
export const HardStateSchema: StrictSchema<{
  readonly term: Natural;
  readonly vote: v.NullableSchema<typeof MemberIdSchema, undefined>;
  readonly commitIndex: Natural;
}> = v.strictObject({
  term: NaturalSchema,
  vote: v.nullable(MemberIdSchema),
  commitIndex: NaturalSchema,
});
export type HardState = v.InferOutput<typeof HardStateSchema>;

/** What a snapshot covers: the last index and term it includes, its time and configuration. */
export const SnapshotMetaSchema: StrictSchema<{
  readonly index: Natural;
  readonly term: Natural;
  readonly timeMs: Natural;
  readonly members: typeof MembersSchema;
}> = v.strictObject({
  index: NaturalSchema,
  term: NaturalSchema,
  timeMs: NaturalSchema,
  members: MembersSchema,
});
export type SnapshotMeta = v.InferOutput<typeof SnapshotMetaSchema>;

/** A configuration as the core tracks it: the members and the index of the entry that set it. */
export type Configuration = { index: number; term: number; members: Member[] };

/**
 * What `entryBytes` counts for an entry's fixed fields (type, index, term, log time) in bytes: an
 * upper bound of their CBOR encoding, so byte limits err on the safe side.
 */
export const entryHeaderBytes = 24;
/** What `entryBytes` counts per member of a configuration entry, in bytes (id, type, addresses). */
export const configMemberBytes = 64;

/** Approximate encoded size of an entry in bytes, for the byte limits on messages and windows. */
export function entryBytes(entry: Entry): number {
  switch (entry.type) {
    case 'command':
      return entry.data.byteLength + entryHeaderBytes;
    case 'config':
      return entryHeaderBytes + entry.members.length * configMemberBytes;
    default:
      return entryHeaderBytes;
  }
}
