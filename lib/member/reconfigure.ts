/**
 * Configuration changes as the member driver carries them out, and the members view it reports.
 *
 * Any member takes `join`, `leave`, `promote` and `demote` (as `reconfigure` member requests, see
 * `lib/base/member-requests.ts`) and hands them to the leader like commands; the leader turns the
 * change into the next member list (`changeMembers`, `lib/core/membership.ts`), proposes it as a
 * configuration entry (the core refuses it while another change is uncommitted, retryably, or when
 * it is unsafe) and answers once it is committed, with the new members. A retried `join` of a
 * member already there answers at once.
 *
 * `members` answers with the leader's view: every member's type and addresses, which follower
 * feeds each PASSIVE member, how far each PASSIVE member is behind the commit index, and when
 * the leader last heard of each member.
 *
 * @example
 * ```ts
 * await driver.changeMembership({ kind: 'reconfigure', op: 'promote', id: 'd' });
 * const view = membersView(driver.status(), tickMs);
 * ```
 * @module
 */
import type { ReconfigureRequest } from '../base/member-requests.ts';
import { type Member, MemberType } from '../base/messages.ts';
import type { RaftStatus } from '../core/raft.ts';
import type { MembershipChange } from '../core/membership.ts';

/** The core's change for a request. */
export function changeOf(r: ReconfigureRequest): MembershipChange {
  if (r.op !== 'join') return { op: r.op, id: r.id };
  const member: Member = { id: r.id, type: r.type ?? MemberType.PASSIVE };
  if (r.address !== undefined) member.address = r.address;
  if (r.clientAddress !== undefined) member.clientAddress = r.clientAddress;
  return { op: 'join', member };
}

/** One member as `members` shows it. */
export type MemberView = Member & {
  /** For a PASSIVE member: the member that feeds it (the leader's assignment). */
  fedBy?: string;
  /** For a PASSIVE member: its last reported index, and how far behind the commit index. */
  matchIndex?: number;
  lagEntries?: number;
  /** Milliseconds since the leader last heard of it (`null`: not yet this term; 0: the leader). */
  heardMsAgo: number | null;
};

/** What `members` answers: the leader's view of the configuration. */
export type MembersView = {
  leaderId: string | null;
  term: number;
  commitIndex: number;
  /** The index of the configuration in effect, and whether it is committed. */
  configurationIndex: number;
  committed: boolean;
  members: MemberView[];
  /** Feeder id to the PASSIVE members it feeds. */
  assignment: Record<string, string[]>;
};

/** The members view from a leader's status (`tickMs` turns ticks into milliseconds). */
export function membersView(s: RaftStatus, tickMs: number): MembersView {
  const m = s.membership;
  const fedBy = new Map<string, string>();
  for (const [feeder, ids] of Object.entries(m.assignment)) {
    for (const id of ids) fedBy.set(id, feeder);
  }
  const members = s.members.map((member): MemberView => {
    const view: MemberView = { ...member, heardMsAgo: null };
    if (member.id === s.id) view.heardMsAgo = 0;
    const pr = s.progress[member.id];
    if (pr !== undefined) {
      view.heardMsAgo = pr.heardTicksAgo * tickMs;
      view.matchIndex = pr.matchIndex;
      view.lagEntries = Math.max(0, s.commitIndex - pr.matchIndex);
    }
    const passive = m.passives[member.id];
    if (passive !== undefined) {
      const feeder = fedBy.get(member.id);
      if (feeder !== undefined) view.fedBy = feeder;
      view.matchIndex = passive.matchIndex;
      view.lagEntries = passive.lag;
      view.heardMsAgo = passive.reportedTicksAgo === null
        ? null
        : passive.reportedTicksAgo * tickMs;
    }
    const pushed = m.pushed[member.id];
    if (pushed !== undefined) {
      view.heardMsAgo = pushed.heardTicksAgo === null ? null : pushed.heardTicksAgo * tickMs;
    }
    return view;
  });
  return {
    leaderId: s.leaderId,
    term: s.term,
    commitIndex: s.commitIndex,
    configurationIndex: s.configurationIndex,
    committed: s.configurationIndex <= s.commitIndex,
    members,
    assignment: m.assignment,
  };
}
