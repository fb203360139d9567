/**
 * The handshake: the first frame each way on a connection. The dialer sends `hello` naming its
 * cluster and member; the acceptor answers with its own `hello`, or with `refused` and a reason,
 * then closes. Messages follow only after the dialer's `hello`.
 *
 * @example
 * ```ts
 * import * as v from 'valibot';
 * import { HelloSchema, protocolVersion } from './handshake.ts';
 * v.parse(HelloSchema, { type: 'hello', cluster: 'c1', member: 'a', version: protocolVersion });
 * ```
 * @module
 */
import * as v from 'valibot';
import { MemberIdSchema, RaftMessageSchema } from '../base/messages.ts';

/** The wire protocol version carried in `hello`; a peer with another version is refused. */
export const protocolVersion = 1;

/** The first frame each way: who is speaking, in which cluster. */
export const HelloSchema = v.strictObject({
  type: v.literal('hello'),
  cluster: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  member: MemberIdSchema,
  version: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
});
export type Hello = v.InferOutput<typeof HelloSchema>;

/** The acceptor's answer to an unacceptable `hello`, sent just before it closes. */
export const RefusedSchema = v.strictObject({
  type: v.literal('refused'),
  reason: v.pipe(v.string(), v.maxLength(1024)),
});
export type Refused = v.InferOutput<typeof RefusedSchema>;

/** What a dialer may receive: only the acceptor's handshake answer. */
export const DialerInboundSchema = v.variant('type', [HelloSchema, RefusedSchema]);
export type DialerInbound = v.InferOutput<typeof DialerInboundSchema>;

/** What an acceptor may receive: `hello` first, then Raft messages. */
export const AcceptorInboundSchema = v.variant('type', [HelloSchema, RaftMessageSchema]);
export type AcceptorInbound = v.InferOutput<typeof AcceptorInboundSchema>;

/**
 * Why `hello` is unacceptable to a member of `cluster`, or `null` when it is fine.
 *
 * @example
 * ```ts
 * checkHello({ type: 'hello', cluster: 'other', member: 'b', version: 1 }, 'c1');
 * // 'Cluster mismatch: peer b is in cluster other, this member is in c1'
 * ```
 */
export function checkHello(hello: Hello, cluster: string): string | null {
  if (hello.cluster !== cluster) {
    return `Cluster mismatch: peer ${hello.member} is in cluster ${hello.cluster}, this member is in ${cluster}`;
  }
  if (hello.version !== protocolVersion) {
    return `Protocol version mismatch: peer ${hello.member} speaks ${hello.version}, this member ${protocolVersion}`;
  }
  return null;
}
