/**
 * Membership, as pure functions: member types one step up or down, the configuration changes
 * `join`, `leave`, `promote` and `demote` as new member lists, and the assignment of PASSIVE
 * members to the followers that feed them.
 *
 * The design (Copycat's, made explicit):
 *
 * - Types, lowest to highest: INACTIVE, RESERVE, PASSIVE, ACTIVE. Only ACTIVE members vote and
 *   count in quorums. Every change is one configuration entry; one change at a time (the core
 *   refuses a second while one is uncommitted, retryably). A member uses the latest
 *   configuration in its log (its configuration entries are its durable record of it).
 * - A member becomes ACTIVE only from PASSIVE, and only once the leader's last report of it is
 *   within `promotionLagEntriesMax` of the commit index: a new member therefore joins as PASSIVE
 *   (or RESERVE), catches up from followers, and is promoted afterwards.
 * - Who feeds whom: the leader computes the assignment (`assignPassives`) from its latest
 *   configuration and the followers it heard from within `feederSilenceHeartbeats` heartbeat
 *   intervals that it is not sending a snapshot (one far behind cannot feed anyone), and sends each follower its share in an `assign` message (when it changes, and
 *   again every election timeout). The leader computes it, rather than every member from shared
 *   facts, because which followers are alive is known only to the leader (every follower answers
 *   it); followers computing it from their own, differing views could leave a passive member with
 *   no feeder. The function itself is deterministic (rendezvous hashing with a capacity of
 *   ceil(passives / feeders) each), so a failed follower moves only its own passives and every
 *   passive has exactly one feeder. With no live follower the leader feeds them itself.
 * - Feeding (`fan-out.ts`): a feeder sends each of its passives committed entries only, at every
 *   heartbeat interval and whenever its commit index advances, and a snapshot (its own latest)
 *   when the passive needs entries it has compacted. A passive appends only entries at or below
 *   the commit index it was sent; its log is always a prefix of the committed log, so it never
 *   rolls anything back. A member that finds itself a non-voter in a committed configuration
 *   (demoted, or removed) truncates its uncommitted entries at once.
 * - Progress: the passive answers its feeder (`feedResponse`); the feeder reports each passive it
 *   heard from to the leader (`feedReport`) every heartbeat interval. The leader's global index
 *   (the lowest index every ACTIVE member and every recently reported PASSIVE member stores) is
 *   sent with appends and keeps compaction from discarding entries a live passive member still
 *   needs, within the driver's `compactionLagEntriesMax`.
 * - RESERVE members keep no log and no state machine of their own: the leader sends them its
 *   committed configuration, term and commit index every heartbeat interval (`configure`), which
 *   they acknowledge; INACTIVE members get the configuration until they acknowledge it. They
 *   learn their peers from it, so they keep nothing on disk but their term.
 * - A leader that removes or demotes itself steps down once the change commits. A member that is
 *   removed (or demoted) stays a replication target until it has stored the configuration that
 *   says so (for at most two election timeouts), so that it knows and never campaigns. A vote
 *   request from a member that is not ACTIVE in the receiver's configuration is refused without
 *   adopting its term, and feeds, reports and pushes never raise a voter's term: a removed
 *   member cannot disrupt anyone.
 *
 * @example
 * ```ts
 * const next = changeMembers(members, { op: 'promote', id: 'd' }); // d one type up
 * assignPassives(['p1', 'p2', 'p3'], ['b', 'c']); // Map { 'b' => [...], 'c' => [...] }
 * ```
 * @module
 */
import { ConfigChangeInvalidError } from '../base/errors.ts';
import { type Member, MemberType } from '../base/messages.ts';

/** Member types from lowest to highest. */
export const memberTypeOrder: readonly MemberType[] = [
  MemberType.INACTIVE,
  MemberType.RESERVE,
  MemberType.PASSIVE,
  MemberType.ACTIVE,
];

/** A configuration change as an operator or the balancer asks for it. */
export type MembershipChange =
  | { op: 'join'; member: Member }
  | { op: 'leave'; id: string }
  | { op: 'promote'; id: string }
  | { op: 'demote'; id: string };

/**
 * The member list after `change`, or `null` when nothing changes (a join of a member already
 * there with the same type and addresses: a retried join succeeds). Throws
 * `ConfigChangeInvalidError` for a change that cannot be made: a join as ACTIVE, a member that
 * joins again with other addresses, a leave, promotion or demotion of an unknown member, a
 * promotion past ACTIVE or a demotion below INACTIVE. Whether the result is safe (quorum,
 * `activeMembersMin`, catch-up) is the core's to check when it is proposed.
 */
export function changeMembers(
  members: readonly Member[],
  change: MembershipChange,
): Member[] | null {
  const copy = members.map((m) => ({ ...m }));
  if (change.op === 'join') {
    const joining = change.member;
    if (joining.type === MemberType.ACTIVE) {
      throw new ConfigChangeInvalidError(
        `${joining.id} cannot join as ACTIVE: a member joins as PASSIVE (or lower), catches up, and is promoted`,
      );
    }
    const known = copy.find((m) => m.id === joining.id);
    if (known !== undefined) {
      if (
        known.type === joining.type && known.address === joining.address &&
        known.clientAddress === joining.clientAddress
      ) return null;
      throw new ConfigChangeInvalidError(
        `${joining.id} is already a member (${known.type} at ${
          known.address ?? 'no address'
        }); it must leave first`,
      );
    }
    copy.push({ ...joining });
    return copy;
  }
  const at = copy.findIndex((m) => m.id === change.id);
  if (at < 0) throw new ConfigChangeInvalidError(`${change.id} is not a member`);
  const member = copy[at]!;
  if (change.op === 'leave') {
    copy.splice(at, 1);
    return copy;
  }
  const rank = memberTypeOrder.indexOf(member.type);
  const next = memberTypeOrder[change.op === 'promote' ? rank + 1 : rank - 1];
  if (next === undefined) {
    throw new ConfigChangeInvalidError(
      `${change.id} is ${member.type}: it cannot be ${
        change.op === 'promote' ? 'promoted' : 'demoted'
      } further`,
    );
  }
  member.type = next;
  return copy;
}

/** FNV-1a over the UTF-16 code units of `text`: a stable 32-bit hash, the same on every engine. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Which feeder feeds which passive member: a pure function of the two sets (order does not
 * matter). Every passive gets exactly one feeder; no feeder gets more than
 * ceil(passives / feeders); each passive goes to its highest-ranked feeder (by `hash32` of the
 * pair) that still has room, so removing a feeder moves only the passives it had (and, at the
 * capacity edge, few others). With no feeders the map is empty.
 *
 * @example
 * ```ts
 * assignPassives(['p1', 'p2'], ['b', 'c']); // each of b and c feeds one of p1, p2
 * ```
 */
export function assignPassives(
  passives: readonly string[],
  feeders: readonly string[],
): Map<string, string[]> {
  const sortedFeeders = [...new Set(feeders)].sort();
  const out = new Map<string, string[]>(sortedFeeders.map((f) => [f, []]));
  if (sortedFeeders.length === 0) return out;
  const sortedPassives = [...new Set(passives)].sort();
  const capacity = Math.ceil(sortedPassives.length / sortedFeeders.length);
  for (const p of sortedPassives) {
    const ranked = sortedFeeders
      .map((f) => ({ f, w: hash32(`${p}\u0000${f}`) }))
      .sort((a, b) => b.w - a.w || (a.f < b.f ? -1 : a.f > b.f ? 1 : 0));
    const chosen = ranked.find(({ f }) => out.get(f)!.length < capacity)!;
    out.get(chosen.f)!.push(p);
  }
  return out;
}

/** The members of `type` in `members`, by id. */
export function idsOfType(members: readonly Member[], type: MemberType): string[] {
  return members.filter((m) => m.type === type).map((m) => m.id);
}
