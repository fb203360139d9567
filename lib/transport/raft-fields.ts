/**
 * The shape of every Raft message as the hand-written codec sees it: each key, the kind of value it
 * holds, and which keys each message type has. One table for the encoder (raft-encode.ts) and the
 * decoder (raft-decode.ts); `test/transport/raft-codec.test.ts` checks it against
 * `RaftMessageSchema` field by field, so a schema change that the table misses fails a test
 * instead of letting the fast path disagree with valibot.
 *
 * @example
 * ```ts
 * import { messageFieldKinds, messageFields } from './raft-fields.ts';
 * messageFields.heartbeat; // ['commitIndex', 'readSeq'] after type, from, to, term
 * messageFieldKinds.commitIndex; // FieldKind.natural
 * ```
 * @module
 */
import type { RaftMessage } from '../base/messages.ts';

/** What a field holds: decides how its value is written and checked. */
export const FieldKind = {
  /** Text: `type` (a literal); every other text field (`from`, `to`, `leaderId`, `member`) a member id. */
  text: 0,
  /** An integer in [0, 2^53). */
  natural: 1,
  bool: 2,
  /** A byte string (`Uint8Array`). */
  bytes: 3,
  /** The entries of an append. */
  entries: 4,
  /** A configuration's member list. */
  members: 5,
} as const;
export type FieldKind = (typeof FieldKind)[keyof typeof FieldKind];

/**
 * Every key of every Raft message with its kind. The order numbers the fields: a field's number
 * is its bit in the decoder's two 31-bit masks (fewer than 62 fields, asserted by the decoder).
 */
export const messageFieldKinds = {
  type: FieldKind.text,
  from: FieldKind.text,
  to: FieldKind.text,
  term: FieldKind.natural,
  lastLogIndex: FieldKind.natural,
  lastLogTerm: FieldKind.natural,
  preVote: FieldKind.bool,
  transfer: FieldKind.bool,
  granted: FieldKind.bool,
  prevLogIndex: FieldKind.natural,
  prevLogTerm: FieldKind.natural,
  entries: FieldKind.entries,
  commitIndex: FieldKind.natural,
  globalIndex: FieldKind.natural,
  success: FieldKind.bool,
  matchIndex: FieldKind.natural,
  hintIndex: FieldKind.natural,
  hintTerm: FieldKind.natural,
  readSeq: FieldKind.natural,
  index: FieldKind.natural,
  snapshotTerm: FieldKind.natural,
  snapshotTimeMs: FieldKind.natural,
  members: FieldKind.members,
  totalBytes: FieldKind.natural,
  offset: FieldKind.natural,
  data: FieldKind.bytes,
  done: FieldKind.bool,
  nextOffset: FieldKind.natural,
  ok: FieldKind.bool,
  requestId: FieldKind.natural,
  leaderId: FieldKind.text,
  member: FieldKind.text,
  configIndex: FieldKind.natural,
  configTerm: FieldKind.natural,
} as const satisfies Record<string, FieldKind>;
export type FieldName = keyof typeof messageFieldKinds;

/** The keys every Raft message has, first in each schema. */
export const headFields = ['type', 'from', 'to', 'term'] as const;

/** Each message type's keys after the head, in the schema's order; all are required. */
export const messageFields: Record<RaftMessage['type'], readonly FieldName[]> = {
  vote: ['lastLogIndex', 'lastLogTerm', 'preVote', 'transfer'],
  voteResponse: ['granted', 'preVote'],
  append: ['prevLogIndex', 'prevLogTerm', 'entries', 'commitIndex', 'globalIndex'],
  appendResponse: ['success', 'matchIndex', 'hintIndex', 'hintTerm'],
  heartbeat: ['commitIndex', 'readSeq'],
  heartbeatResponse: ['readSeq'],
  snapshot: ['index', 'snapshotTerm', 'snapshotTimeMs', 'members'],
  timeoutNow: [],
  snapshotChunk: [
    'index',
    'snapshotTerm',
    'snapshotTimeMs',
    'members',
    'totalBytes',
    'offset',
    'data',
    'done',
  ],
  snapshotChunkResponse: ['index', 'nextOffset', 'ok'],
  forward: ['requestId', 'data'],
  forwardResponse: ['requestId', 'data'],
  assign: ['members'],
  feed: ['leaderId', 'prevLogIndex', 'prevLogTerm', 'entries', 'commitIndex'],
  feedResponse: ['success', 'matchIndex', 'hintIndex'],
  feedReport: ['member', 'matchIndex'],
  configure: ['commitIndex', 'configIndex', 'configTerm', 'members'],
  configureResponse: ['configIndex'],
};

/** Entry keys with their kinds (`type` is the literal noop, command or config). */
export const entryFieldKinds = {
  type: FieldKind.text,
  index: FieldKind.natural,
  term: FieldKind.natural,
  timeMs: FieldKind.natural,
  data: FieldKind.bytes,
  members: FieldKind.members,
} as const satisfies Record<string, FieldKind>;

/** Member keys, all text: `id`, the `type` picklist, and the optional addresses. */
export const memberFields = ['id', 'type', 'address', 'clientAddress'] as const;
