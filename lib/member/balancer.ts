/**
 * The balancer: rapid replacement of failed members, run by the leader's driver (optional: on
 * when `balancerActiveMembers` is set). It keeps target counts of ACTIVE and PASSIVE members by
 * one ordinary configuration change at a time, decided from the leader's status alone:
 *
 * 1. it never acts unless a majority of the ACTIVE members was heard from within an election
 *    timeout, nor while the latest configuration is uncommitted;
 * 2. fewer live ACTIVE members than the target: the most caught-up live PASSIVE member (within
 *    `promotionLagEntriesMax`) is promoted to ACTIVE;
 * 3. more ACTIVE members than the target and one of them failed (silent for
 *    `balancerFailureElectionTimeouts` election timeouts): the failed one is demoted to PASSIVE.
 *    Promotion comes first, so the cluster never has fewer live voters than before: the balancer
 *    never removes quorum;
 * 4. fewer live PASSIVE members than the target: a live RESERVE member is promoted to PASSIVE;
 * 5. more PASSIVE members than the target and one of them failed: it is demoted to RESERVE;
 * 6. more live PASSIVE members than a target above 0: the least caught-up one is demoted to
 *    RESERVE (a passive that only looked failed, on a loaded machine, comes back after a RESERVE
 *    member took its place: without this rule the cluster stays one PASSIVE member over).
 *
 * A failed ACTIVE member thus ends as a RESERVE member (two demotions), its place taken by a
 * PASSIVE member, whose place is taken by a RESERVE member. The leader never acts on itself.
 *
 * @example
 * ```ts
 * const change = balance(facts, { activeMembers: 3, passiveMembers: 2, failureTicks: 450 });
 * if (change !== null) await driver.changeMembership(change);
 * ```
 * @module
 */
import { type Member, MemberType } from '../base/messages.ts';
import type { MembershipChange } from '../core/membership.ts';
import { majority } from '../core/quorum.ts';

/** The balancer's targets and its patience. */
export type BalancerOptions = {
  /** ACTIVE members to keep (0: the balancer is off). */
  activeMembers: number;
  /** PASSIVE members to keep. */
  passiveMembers: number;
  /** Ticks of silence after which a member counts as failed. */
  failureTicks: number;
  /** Ticks within which a member counts as reachable (for the majority rule): an election timeout. */
  reachableTicks: number;
  /** A PASSIVE member further behind the commit index is not promoted. */
  promotionLagEntriesMax: number;
};

/** What the balancer decides from: the leader's latest configuration and what it heard. */
export type BalancerFacts = {
  selfId: string;
  members: readonly Member[];
  /** True when the latest configuration is committed (no change under way). */
  committed: boolean;
  commitIndex: number;
  /** Ticks since the leader last heard of `id` (`Infinity`: never this term). */
  silentTicks(id: string): number;
  /** The last index a PASSIVE member reported (`null`: none). */
  passiveMatch(id: string): number | null;
};

/** Deliberate balancer bugs, for proving that the tests catch them. */
export type BalancerFaults = {
  /** Demote a failed ACTIVE member before promoting its replacement (loses quorum headroom). */
  balancerDemotesFirst?: boolean;
};

/** The one change to make now, or `null`. See the module comment for the rules and their order. */
export function balance(
  facts: BalancerFacts,
  o: BalancerOptions,
  faults: BalancerFaults = {},
): MembershipChange | null {
  if (o.activeMembers === 0 || !facts.committed) return null;
  const { selfId } = facts;
  const silent = (id: string) => (id === selfId ? 0 : facts.silentTicks(id));
  const failed = (id: string) => silent(id) > o.failureTicks;
  const ofType = (type: MemberType) => facts.members.filter((m) => m.type === type);
  const active = ofType(MemberType.ACTIVE);
  const reachable = active.filter((m) => silent(m.id) <= o.reachableTicks).length;
  if (reachable < majority(active.length)) return null;
  const activeFailed = active.filter((m) => failed(m.id))
    .sort((a, b) => silent(b.id) - silent(a.id) || (a.id < b.id ? -1 : 1));
  const activeLive = active.length - activeFailed.length;
  const demoteFailedActive = (): MembershipChange | null =>
    activeFailed[0] === undefined ? null : { op: 'demote', id: activeFailed[0].id };
  if (faults.balancerDemotesFirst === true && activeLive < o.activeMembers) {
    const change = demoteFailedActive();
    if (change !== null) return change;
  }
  if (activeLive < o.activeMembers) {
    const candidates = ofType(MemberType.PASSIVE)
      .filter((m) => !failed(m.id) && silent(m.id) <= o.reachableTicks)
      .map((m) => ({ id: m.id, match: facts.passiveMatch(m.id) }))
      .filter((c): c is { id: string; match: number } =>
        c.match !== null && facts.commitIndex - c.match <= o.promotionLagEntriesMax
      )
      .sort((a, b) => b.match - a.match || (a.id < b.id ? -1 : 1));
    if (candidates[0] !== undefined) return { op: 'promote', id: candidates[0].id };
  }
  if (active.length > o.activeMembers) {
    const change = demoteFailedActive();
    if (change !== null) return change;
  }
  const passive = ofType(MemberType.PASSIVE);
  const passiveFailed = passive.filter((m) => failed(m.id))
    .sort((a, b) => silent(b.id) - silent(a.id) || (a.id < b.id ? -1 : 1));
  if (passive.length - passiveFailed.length < o.passiveMembers) {
    const reserve = ofType(MemberType.RESERVE)
      .filter((m) => silent(m.id) <= o.reachableTicks)
      .sort((a, b) => silent(a.id) - silent(b.id) || (a.id < b.id ? -1 : 1));
    if (reserve[0] !== undefined) return { op: 'promote', id: reserve[0].id };
  }
  if (passive.length > o.passiveMembers && passiveFailed[0] !== undefined) {
    return { op: 'demote', id: passiveFailed[0].id };
  }
  if (o.passiveMembers > 0 && passive.length > o.passiveMembers) {
    const behind = passive
      .map((m) => ({ id: m.id, match: facts.passiveMatch(m.id) ?? -1 }))
      .sort((a, b) => a.match - b.match || (a.id < b.id ? 1 : -1));
    if (behind[0] !== undefined) return { op: 'demote', id: behind[0].id };
  }
  return null;
}
