/**
 * What a member is asked on behalf of a client, whichever member the client reached: a command
 * (in a session or not), a session's registration, keep-alive or unregistration, a query at a
 * consistency level, a configuration change, the members view, or a leadership transfer. A member that is not the leader forwards commands, session requests and
 * strong queries to the leader in `forward` peer messages (the request CBOR-encoded in `data`) and
 * relays the leader's `MemberReply`; it answers sequential queries itself.
 *
 * @example
 * ```ts
 * const request: MemberRequest = { kind: 'command', session: 7, sequence: 3, data: commandBytes };
 * const reply: MemberReply = { ok: true, index: 42, output: { previous: null } };
 * ```
 * @module
 */
import * as v from 'valibot';
import {
  BytesSchema,
  memberAddressLengthMax,
  MemberIdSchema,
  MemberTypeSchema,
  NaturalSchema,
} from './messages.ts';

/** A member's address as a change names it: a string of at most `memberAddressLengthMax`. */
type AddressSchema = v.SchemaWithPipe<
  readonly [
    v.StringSchema<undefined>,
    v.MaxLengthAction<string, typeof memberAddressLengthMax, undefined>,
  ]
>;

/** The configuration changes any member takes and hands to the leader. */
export const MembershipOpSchema: v.PicklistSchema<
  ['join', 'leave', 'promote', 'demote'],
  undefined
> = v.picklist(['join', 'leave', 'promote', 'demote']);
export type MembershipOp = v.InferOutput<typeof MembershipOpSchema>;

/**
 * A configuration change: `join` (as `type`, PASSIVE by default, with its addresses), `leave`,
 * `promote` or `demote` (one type up or down) of member `id`.
 */
export const ReconfigureRequestSchema: v.StrictObjectSchema<{
  readonly kind: v.LiteralSchema<'reconfigure', undefined>;
  readonly op: typeof MembershipOpSchema;
  readonly id: typeof MemberIdSchema;
  readonly type: v.OptionalSchema<typeof MemberTypeSchema, undefined>;
  readonly address: v.OptionalSchema<AddressSchema, undefined>;
  readonly clientAddress: v.OptionalSchema<AddressSchema, undefined>;
}, undefined> = v.strictObject({
  kind: v.literal('reconfigure'),
  op: MembershipOpSchema,
  id: MemberIdSchema,
  type: v.optional(MemberTypeSchema),
  address: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
  clientAddress: v.optional(v.pipe(v.string(), v.maxLength(memberAddressLengthMax))),
});
export type ReconfigureRequest = v.InferOutput<typeof ReconfigureRequestSchema>;

/** How current a read must be; see `lib/base/client-protocol.ts`. */
export const ReadConsistencySchema: v.PicklistSchema<
  ['linearizable', 'lease', 'sequential'],
  undefined
> = v.picklist(['linearizable', 'lease', 'sequential']);

type Natural = typeof NaturalSchema;
type Bytes = typeof BytesSchema;
/** A strict object schema whose `K` is the literal `T`, with the entries `E` besides. */
type KindSchema<K extends string, T extends string | boolean, E extends v.ObjectEntries> =
  v.StrictObjectSchema<{ readonly [k in K]: v.LiteralSchema<T, undefined> } & E, undefined>;

/** A client's request as members pass it on. Command and query bytes are the client's encoding. */
export const MemberRequestSchema: v.VariantSchema<
  'kind',
  [
    KindSchema<'kind', 'command', {
      /** The client session (0: none, the command is not deduplicated). */
      readonly session: Natural;
      readonly sequence: Natural;
      readonly data: Bytes;
    }>,
    KindSchema<'kind', 'register', { readonly timeoutMs: Natural }>,
    KindSchema<'kind', 'keepAlive', {
      readonly session: Natural;
      readonly commandAck: Natural;
      readonly eventAck: Natural;
    }>,
    KindSchema<'kind', 'unregister', { readonly session: Natural }>,
    KindSchema<'kind', 'query', {
      readonly consistency: typeof ReadConsistencySchema;
      /** A sequential read waits until the member has applied at least this index. */
      readonly minIndex: Natural;
      readonly data: Bytes;
    }>,
    typeof ReconfigureRequestSchema,
    KindSchema<'kind', 'members', Record<never, never>>,
    KindSchema<'kind', 'transferLeader', { readonly id: typeof MemberIdSchema }>,
  ],
  undefined
> = v.variant('kind', [
  v.strictObject({
    kind: v.literal('command'),
    session: NaturalSchema,
    sequence: NaturalSchema,
    data: BytesSchema,
  }),
  v.strictObject({ kind: v.literal('register'), timeoutMs: NaturalSchema }),
  v.strictObject({
    kind: v.literal('keepAlive'),
    session: NaturalSchema,
    commandAck: NaturalSchema,
    eventAck: NaturalSchema,
  }),
  v.strictObject({ kind: v.literal('unregister'), session: NaturalSchema }),
  v.strictObject({
    kind: v.literal('query'),
    consistency: ReadConsistencySchema,
    minIndex: NaturalSchema,
    data: BytesSchema,
  }),
  ReconfigureRequestSchema,
  /** The leader's view of the members: types, who feeds whom, each passive member's lag. */
  v.strictObject({ kind: v.literal('members') }),
  /**
   * The leader hands leadership to ACTIVE member `id`; answered once `id` leads, with
   * `{ leaderId, term }` (see `TransferLeaderRequestSchema` in client-protocol.ts).
   */
  v.strictObject({ kind: v.literal('transferLeader'), id: MemberIdSchema }),
]);
export type MemberRequest = v.InferOutput<typeof MemberRequestSchema>;

/**
 * The answer: the log index it was applied at (for a query, the index the read covers) and the
 * output; or an error code (see `clientErrorCodes`) with the leader hint.
 */
export const MemberReplySchema: v.VariantSchema<
  'ok',
  [
    KindSchema<'ok', true, {
      readonly index: Natural;
      /** The state machine's output (any CBOR value). */
      readonly output: v.UnknownSchema;
      /** A session command answered from the session's kept result (it was applied before). */
      readonly duplicate: v.OptionalSchema<v.BooleanSchema<undefined>, undefined>;
      /** Set by the member that forwarded the request: the leader that answered it. */
      readonly forwardedTo: v.OptionalSchema<typeof MemberIdSchema, undefined>;
    }>,
    KindSchema<'ok', false, {
      readonly code: v.SchemaWithPipe<
        readonly [v.StringSchema<undefined>, v.MaxLengthAction<string, 64, undefined>]
      >;
      readonly message: v.SchemaWithPipe<
        readonly [v.StringSchema<undefined>, v.MaxLengthAction<string, 4096, undefined>]
      >;
      readonly leaderId: v.NullableSchema<typeof MemberIdSchema, undefined>;
    }>,
  ],
  undefined
> = v.variant('ok', [
  v.strictObject({
    ok: v.literal(true),
    index: NaturalSchema,
    output: v.unknown(),
    duplicate: v.optional(v.boolean()),
    forwardedTo: v.optional(MemberIdSchema),
  }),
  v.strictObject({
    ok: v.literal(false),
    code: v.pipe(v.string(), v.maxLength(64)),
    message: v.pipe(v.string(), v.maxLength(4096)),
    leaderId: v.nullable(MemberIdSchema),
  }),
]);
export type MemberReply = v.InferOutput<typeof MemberReplySchema>;
