/**
 * The member driver's share of membership (the core's is `lib/core/fan-out.ts` and
 * `lib/core/membership.ts`): configuration changes carried out by the leader and answered once
 * committed (`reconfigure`), the leader's members view (`members`), the balancer's ticks, the
 * membership events (configuration, who feeds whom, passive lag), the compaction point the global
 * index allows, and the redirect of clients away from members that keep no state machine.
 *
 * @example
 * ```ts
 * const duties = new MembershipDuties(host);
 * duties.tick(ticks); // every tick of the driver
 * const reply = await duties.reconfigure({ kind: 'reconfigure', op: 'promote', id: 'd' });
 * ```
 * @module
 */
import type { MemberReply, MemberRequest, ReconfigureRequest } from '../base/member-requests.ts';
import { type Member, MemberType } from '../base/messages.ts';
import { changeMembers, type MembershipChange } from '../core/membership.ts';
import type { Raft } from '../core/raft.ts';
import { balance, type BalancerFaults } from './balancer.ts';
import type { EventLog } from './events.ts';
import type { DriverOptions } from './options.ts';
import type { MemberLogger } from './ports.ts';
import { changeOf, membersView } from './reconfigure.ts';
import type { Reply } from './requests.ts';
import { progressLine, snapshotProgressIntervalMs } from './snapshot-transfer.ts';

/**
 * A member further behind the leader's commit index than this, in entries, is reported as
 * catching up (its progress logged every `snapshotProgressIntervalMs`).
 */
export const catchUpLagEntriesMin = 1_000;

/** What the duties need from their driver. */
export type MembershipHost = {
  raft: Raft;
  options: DriverOptions;
  events: EventLog;
  log: MemberLogger;
  nowMs(): number;
  /** Refuse when stopping (throws the driver's refusal). */
  assertRunning(): void;
  /** Track a configuration entry proposed at (`index`, `term`): settles once committed. */
  track(index: number, term: number): Promise<unknown>;
  /** Carry out what the core now has to do. */
  pump(): void;
  faults: BalancerFaults;
  /** Promotion lag the core enforces (the balancer picks only such members). */
  promotionLagEntriesMax: number;
};

/** See the module comment. */
export class MembershipDuties {
  readonly #h: MembershipHost;
  #balancing = false;
  /** The driver's tick count when this member last became leader. */
  #leaderSinceTick = 0;
  #ticks = 0;
  #feedingKey = '';
  #assignmentKey = '';
  readonly #caughtUp = new Map<string, boolean>();
  /** Members catching up (see `#reportCatchUps`), by id. */
  readonly #catchUps = new Map<
    string,
    { fromMatch: number; startedAtMs: number; reportedAtMs: number }
  >();
  /** `id:TYPE` to the tick at which this leader first saw the member with that type. */
  readonly #typeSince = new Map<string, number>();

  constructor(host: MembershipHost) {
    this.#h = host;
  }

  /** This member became leader (the balancer's patience starts now). */
  becameLeader(): void {
    this.#leaderSinceTick = this.#ticks;
    this.#caughtUp.clear();
    this.#catchUps.clear();
    this.#assignmentKey = '';
  }

  /**
   * A request this member cannot take because it keeps no state machine (RESERVE, INACTIVE, or
   * not a member): answered NOT_LEADER with the leader hint (nothing was proposed: retryable).
   * Membership requests are forwarded as usual. `null`: handle it normally.
   */
  redirect(request: MemberRequest): MemberReply | null {
    if (
      request.kind === 'reconfigure' || request.kind === 'members' ||
      request.kind === 'transferLeader'
    ) return null;
    const type = this.#h.raft.memberType;
    const raft = this.#h.raft;
    if (raft.configuration() === null) return null; // a new member: it forwards, as it will apply
    if (type === MemberType.ACTIVE || type === MemberType.PASSIVE) return null;
    const leaderId = raft.leaderId === raft.id ? null : raft.leaderId;
    return {
      ok: false,
      code: leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      message: `This member is ${
        type ?? 'not a member'
      } and keeps no state machine: ask the leader${leaderId === null ? '' : ` (${leaderId})`}`,
      leaderId,
    };
  }

  /** As the leader: make the change; resolves once it is committed, with the new members. */
  async reconfigure(r: ReconfigureRequest): Promise<Reply> {
    return await this.#apply(changeOf(r));
  }

  async #apply(change: MembershipChange): Promise<Reply> {
    this.#h.assertRunning();
    const raft = this.#h.raft;
    const latest = raft.configuration();
    const next = changeMembers(latest?.members ?? [], change);
    if (next === null || latest === null) {
      return { index: latest?.index ?? 0, output: { members: latest?.members ?? [] } };
    }
    const { index, term } = raft.proposeConfiguration(next, this.#h.nowMs());
    this.#h.log.info(`configuration change at index ${index}: ${describe(change)}`);
    this.#h.pump();
    await this.#h.track(index, term);
    return { index, output: { members: next } };
  }

  /** As the leader: the members view. */
  members(): Reply {
    const raft = this.#h.raft;
    return { index: raft.commitIndex, output: membersView(raft.status(), this.#h.options.tickMs) };
  }

  /** Every driver tick: events, and the balancer on the leader (each heartbeat interval). */
  tick(): void {
    this.#ticks++;
    const o = this.#h.options;
    if (this.#ticks % o.heartbeatTicks !== 0) return;
    const raft = this.#h.raft;
    const feeding = [...raft.feeding].sort();
    const feedingKey = feeding.join(',');
    if (feedingKey !== this.#feedingKey) {
      this.#feedingKey = feedingKey;
      this.#h.events.emit({ type: 'feeding', passives: feeding });
    }
    if (raft.role !== 'leader') return;
    const status = raft.status();
    const assignmentKey = JSON.stringify(status.membership.assignment);
    if (assignmentKey !== this.#assignmentKey) {
      this.#assignmentKey = assignmentKey;
      this.#h.events.emit({ type: 'assignment', assignment: status.membership.assignment });
    }
    for (const [id, p] of Object.entries(status.membership.passives)) {
      const caughtUp = p.reportedTicksAgo !== null && p.lag <= this.#h.promotionLagEntriesMax;
      if (this.#caughtUp.get(id) !== caughtUp) {
        this.#caughtUp.set(id, caughtUp);
        this.#h.events.emit({ type: 'passiveLag', member: id, lagEntries: p.lag, caughtUp });
      }
    }
    this.#reportCatchUps(status);
    if (o.balancerActiveMembers > 0 && !this.#balancing) this.#balance(status);
  }

  /**
   * On the leader, every heartbeat interval: a member more than `catchUpLagEntriesMin` entries
   * behind is catching up; every `snapshotProgressIntervalMs` its progress is logged (entries,
   * rate, time left), and once it is within the bound again, how long it took.
   */
  #reportCatchUps(status: ReturnType<Raft['status']>): void {
    const now = this.#h.nowMs();
    const commit = status.commitIndex;
    const matches = new Map<string, number>();
    for (const [id, p] of Object.entries(status.progress)) matches.set(id, p.matchIndex);
    for (const [id, p] of Object.entries(status.membership.passives)) {
      if (p.reportedTicksAgo !== null) matches.set(id, p.matchIndex);
    }
    for (const id of [...this.#catchUps.keys()]) {
      if (!matches.has(id)) this.#catchUps.delete(id);
    }
    for (const [id, match] of matches) {
      const lag = commit - match;
      const c = this.#catchUps.get(id);
      if (c === undefined) {
        if (lag > catchUpLagEntriesMin) {
          this.#catchUps.set(id, { fromMatch: match, startedAtMs: now, reportedAtMs: now });
          this.#h.log.info(`${id} is catching up: ${lag} entries behind`);
        }
        continue;
      }
      const done = Math.max(0, match - c.fromMatch);
      if (lag <= catchUpLagEntriesMin) {
        this.#catchUps.delete(id);
        this.#h.log.info(
          `${id} caught up: ${done} entries in ${
            Math.round(now - c.startedAtMs)
          } ms, ${lag} behind`,
        );
      } else if (now - c.reportedAtMs >= snapshotProgressIntervalMs) {
        c.reportedAtMs = now;
        this.#h.log.info(
          `${id} catching up: ${progressLine(done, done + lag, 'entries', now - c.startedAtMs)}`,
        );
      }
    }
  }

  #balance(status: ReturnType<Raft['status']>): void {
    const o = this.#h.options;
    const leading = this.#ticks - this.#leaderSinceTick;
    const m = status.membership;
    // Since when each member has had its current type: one never heard of since is silent only
    // that long (a passive that just joined, or was just promoted from RESERVE, and is still
    // being sent its first snapshot, has not failed).
    const typeKeys = new Set(status.members.map((x) => `${x.id}:${x.type}`));
    for (const key of [...this.#typeSince.keys()]) {
      if (!typeKeys.has(key)) this.#typeSince.delete(key);
    }
    for (const key of typeKeys) {
      if (!this.#typeSince.has(key)) this.#typeSince.set(key, this.#ticks);
    }
    const silentTicks = (id: string): number => {
      const known = status.progress[id]?.heardTicksAgo ?? m.passives[id]?.reportedTicksAgo ??
        m.pushed[id]?.heardTicksAgo ?? null;
      const type = status.members.find((x) => x.id === id)?.type;
      const since = this.#typeSince.get(`${id}:${type}`);
      const typed = since === undefined ? leading : this.#ticks - since;
      return known === null ? Math.min(leading, typed) : Math.min(known, leading);
    };
    const change = balance({
      selfId: status.id,
      members: status.members,
      committed: status.configurationIndex <= status.commitIndex,
      commitIndex: status.commitIndex,
      silentTicks,
      passiveMatch: (id) =>
        m.passives[id]?.reportedTicksAgo == null ? null : m.passives[id]!.matchIndex,
    }, {
      activeMembers: o.balancerActiveMembers,
      passiveMembers: o.balancerPassiveMembers,
      failureTicks: o.balancerFailureElectionTimeouts * o.electionTicks,
      reachableTicks: o.electionTicks,
      promotionLagEntriesMax: this.#h.promotionLagEntriesMax,
    }, this.#h.faults);
    if (change === null) return;
    this.#balancing = true;
    this.#h.log.info(`balancer: ${describe(change)}`);
    this.#apply(change).then(
      () => {
        if (change.op !== 'join') {
          this.#h.events.emit({ type: 'balancer', op: change.op, member: change.id });
        }
      },
      (error: unknown) =>
        this.#h.log.info(`balancer: ${describe(change)} not made: ${(error as Error).message}`),
    ).finally(() => {
      this.#balancing = false;
    });
  }

  /**
   * Where a snapshot at `snapshotIndex` may compact the log: `compactionTrailingEntries` below
   * it, but not past the global index unless that lags by more than `compactionLagEntriesMax`.
   */
  compactionPoint(snapshotIndex: number): number {
    const o = this.#h.options;
    const to = snapshotIndex - o.compactionTrailingEntries;
    const global = this.#h.raft.globalIndex;
    if (
      o.compactionLagEntriesMax > 0 && global > 0 && global < to &&
      snapshotIndex - global <= o.compactionLagEntriesMax
    ) return global;
    return to;
  }

  /** The configuration event for a new configuration in effect. */
  configurationChanged(index: number, members: readonly Member[]): void {
    this.#h.events.emit({ type: 'configuration', index, members: members.map((m) => ({ ...m })) });
  }
}

function describe(change: MembershipChange): string {
  return change.op === 'join'
    ? `join ${change.member.id} as ${change.member.type}`
    : `${change.op} ${change.id}`;
}
