/**
 * The simulator's membership rules (with `membership` churn on): what every configuration the
 * cluster commits, every entry a PASSIVE member stores and every message a non-voter sends is held
 * to. The simulator calls it from its probes and after every step; it keeps the cluster's
 * committed configuration, which the liveness and final checks use to know who must have caught
 * up (members that left are excluded, joined ones included).
 *
 * Rules (each violation is a `SafetyViolation` naming the member and the indexes):
 * - no configuration with zero ACTIVE members is ever committed; with the balancer on (and the
 *   simulator leaving ACTIVE members to it) none with fewer ACTIVE members than its target;
 * - a leader appends a configuration only when the one before it is committed and it has committed
 *   an entry of its own term (at most one uncommitted configuration at a time);
 * - a member that is PASSIVE (or lower) in a committed configuration never stores an entry past
 *   the cluster's highest commit index, never holds one past its own commit index, and every entry
 *   it stores is the committed log's entry at that index;
 * - a feed carries committed entries only (at or below the feeder's commit index, and the
 *   cluster's);
 * - a vote request from a member that is not ACTIVE in the receiver's configuration never raises
 *   the receiver's term; nor does any message a member sends once its removal is committed and it
 *   stored that configuration.
 *
 * @example
 * ```ts
 * const rules = new MembershipChecker({ activeTarget: 0 });
 * rules.observeCommitted({ type: 'config', index: 1, term: 0, timeMs: 0, members });
 * rules.latestMembers(); // the committed configuration
 * ```
 * @module
 */
import type { Entry, Member, RaftMessage } from '../base/messages.ts';
import { fingerprint, SafetyViolation } from './checkers.ts';

type ConfigEntry = Extract<Entry, { type: 'config' }>;

/** What membership churn did in one run (committed changes, as the committed log shows them). */
export type MembershipStats = {
  configurationsCommitted: number;
  joined: number;
  promoted: number;
  demoted: number;
  left: number;
  /** Requests to change the membership made by the simulator, and those answered ok. */
  changesRequested: number;
  changesAnswered: number;
};

/** All zero. */
export function emptyMembershipStats(): MembershipStats {
  return {
    configurationsCommitted: 0,
    joined: 0,
    promoted: 0,
    demoted: 0,
    left: 0,
    changesRequested: 0,
    changesAnswered: 0,
  };
}

const typeRank = { INACTIVE: 0, RESERVE: 1, PASSIVE: 2, ACTIVE: 3 } as const;

/** Entries a passive member stored before anyone applied their index, checked once someone does. */
type Pending = { id: string; index: number; fp: string };

/** Passive entries awaiting their committed counterpart, at most (a run stores far fewer). */
const pendingEntriesMax = 100_000;

/** See the module comment. */
export class MembershipChecker {
  /** With the balancer on: the fewest ACTIVE members a committed configuration may have (0: off). */
  readonly #activeTarget: number;
  #committedIndex = 0;
  #committed: Member[] = [];
  /** Members that were listed in a committed configuration and then left it: id -> its index. */
  readonly #left = new Map<string, number>();
  /** Per term: the index of the last configuration its leader appended. */
  readonly #configOfTerm = new Map<number, number>();
  #pending: Pending[] = [];
  readonly stats = emptyMembershipStats();

  constructor(o: { activeTarget: number }) {
    this.#activeTarget = o.activeTarget;
  }

  /** The latest committed configuration's members (as far as any member applied). */
  latestMembers(): readonly Member[] {
    return this.#committed;
  }

  /** `id`'s type in the latest committed configuration (`null`: not a member). */
  typeOf(id: string): Member['type'] | null {
    return this.#committed.find((m) => m.id === id)?.type ?? null;
  }

  /** True once `id`'s removal is committed. */
  hasLeft(id: string): boolean {
    return this.#left.has(id) && this.typeOf(id) === null;
  }

  /** A committed entry seen on any member: configurations are checked and become the latest. */
  observeCommitted(entry: Entry): void {
    if (entry.type !== 'config' || entry.index <= this.#committedIndex) return;
    const actives = entry.members.filter((m) => m.type === 'ACTIVE').length;
    if (actives === 0) {
      throw new SafetyViolation(
        `Configuration with no ACTIVE member committed at ${entry.index}: ${describe(entry)}`,
      );
    }
    if (this.#activeTarget > 0 && this.#committedIndex > 0 && actives < this.#activeTarget) {
      throw new SafetyViolation(
        `Balancer: configuration committed at ${entry.index} has ${actives} ACTIVE members, below its target ${this.#activeTarget}: ${
          describe(entry)
        }`,
      );
    }
    if (this.#committedIndex > 0) this.#countChanges(this.#committed, entry.members);
    for (const m of this.#committed) {
      if (!entry.members.some((x) => x.id === m.id)) this.#left.set(m.id, entry.index);
    }
    for (const m of entry.members) this.#left.delete(m.id);
    this.#committedIndex = entry.index;
    this.#committed = entry.members.map((m) => ({ ...m }));
  }

  #countChanges(before: readonly Member[], after: readonly Member[]): void {
    this.stats.configurationsCommitted++;
    for (const m of after) {
      const was = before.find((x) => x.id === m.id);
      if (was === undefined) this.stats.joined++;
      else if (typeRank[m.type] > typeRank[was.type]) this.stats.promoted++;
      else if (typeRank[m.type] < typeRank[was.type]) this.stats.demoted++;
    }
    for (const m of before) if (!after.some((x) => x.id === m.id)) this.stats.left++;
  }

  /**
   * A leader is about to store `entries` it appended in `term`, with `commitIndex` and the term of
   * the entry there: a configuration among them needs the previous one of its term committed and
   * an entry of its term committed.
   */
  observeLeaderAppends(
    id: string,
    term: number,
    entries: readonly Entry[],
    commitIndex: number,
    commitTerm: number | undefined,
  ): void {
    for (const e of entries) {
      if (e.type !== 'config' || e.term !== term) continue;
      const previous = this.#configOfTerm.get(term) ?? 0;
      if (previous >= e.index) continue; // the same entry, handed out again after a restart
      if (previous > commitIndex) {
        throw new SafetyViolation(
          `Two uncommitted configurations: ${id}, leader of term ${term}, appends one at ${e.index} while the one at ${previous} is uncommitted (commit ${commitIndex})`,
        );
      }
      if (previous === 0 && e.index > 1 && commitTerm !== term) {
        throw new SafetyViolation(
          `Configuration appended at ${e.index} by ${id}, leader of term ${term}, before it committed an entry of its term (commit ${commitIndex} of term ${commitTerm})`,
        );
      }
      this.#configOfTerm.set(term, e.index);
    }
  }

  /**
   * `id`, PASSIVE (or lower) in a configuration it knows is committed, is about to store
   * `entries`: each must be at or below the cluster's highest commit index `committedMax`, and be
   * the committed entry there (`appliedAt`: the fingerprint applied at an index, if any).
   */
  observePassiveStores(
    id: string,
    entries: readonly Entry[],
    committedMax: number,
    appliedAt: (index: number) => string | undefined,
  ): void {
    for (const e of entries) {
      if (e.index > committedMax) {
        throw new SafetyViolation(
          `PASSIVE member ${id} stores entry ${e.index} (term ${e.term}), past the highest commit index ${committedMax}`,
        );
      }
      const fp = fingerprint(e);
      const applied = appliedAt(e.index);
      if (applied === undefined) {
        if (this.#pending.length < pendingEntriesMax) {
          this.#pending.push({ id, index: e.index, fp });
        }
      } else if (applied !== fp) {
        throw notCommitted(id, e.index, fp, applied);
      }
    }
  }

  /** Check the passive entries stored before their index was applied anywhere. */
  checkPending(appliedAt: (index: number) => string | undefined): void {
    if (this.#pending.length === 0) return;
    const still: Pending[] = [];
    for (const p of this.#pending) {
      const applied = appliedAt(p.index);
      if (applied === undefined) still.push(p);
      else if (applied !== p.fp) throw notCommitted(p.id, p.index, p.fp, applied);
    }
    this.#pending = still;
  }

  /** A passive (or lower) member's log, after a step: nothing past its own commit index. */
  checkPassiveLog(id: string, lastIndex: number, commitIndex: number): void {
    if (lastIndex > commitIndex) {
      throw new SafetyViolation(
        `PASSIVE member ${id} holds entries up to ${lastIndex}, past its commit index ${commitIndex}`,
      );
    }
  }

  /** A feed leaving its feeder, whose commit index is `feederCommit`. */
  checkFeed(
    msg: Extract<RaftMessage, { type: 'feed' }>,
    feederCommit: number,
    committedMax: number,
  ): void {
    const limit = Math.min(msg.commitIndex, Math.max(feederCommit, committedMax));
    for (const e of msg.entries) {
      if (e.index > limit) {
        throw new SafetyViolation(
          `Feed from ${msg.from} to ${msg.to} carries entry ${e.index}, past the commit index ${
            Math.min(msg.commitIndex, feederCommit)
          }`,
        );
      }
    }
  }

  /**
   * `msg` from `from` raised `to`'s term from `before` to `after`. `senderType` is the sender's type
   * in the receiver's configuration before delivery (`undefined`: the receiver knows none);
   * `senderRemoved`: the sender's removal was committed and it stored it when it sent this.
   * `termMax`: the highest term of any member that has not left, before delivery.
   */
  observeTermRaised(
    msg: RaftMessage,
    before: number,
    after: number,
    senderType: Member['type'] | null | undefined,
    senderRemoved: boolean,
    termMax: number,
  ): void {
    if (after <= before) return;
    // A member that left too matters to no one: a removed member that does not know its removal
    // committed still polls its old peers (it may be needed to commit that change, see
    // `Tracker.mayCampaign`), and another removed one may answer it with the term it was given.
    if (this.hasLeft(msg.to)) return;
    // A removed member that answers a lagging member with the term the cluster's leader gave it
    // brings it up to date, as any member would: it disrupts only with a term of its own making.
    if (senderRemoved && after > termMax) {
      throw new SafetyViolation(
        `Removed member ${msg.from} raised ${msg.to}'s term from ${before} to ${after} (${msg.type}) after its removal committed`,
      );
    }
    if (msg.type === 'vote' && senderType !== undefined && senderType !== 'ACTIVE') {
      throw new SafetyViolation(
        `Vote request from ${msg.from}, ${
          senderType ?? 'not a member'
        } in ${msg.to}'s configuration, raised ${msg.to}'s term from ${before} to ${after}`,
      );
    }
  }

  /** Whether `id`'s removal is committed and `ownMembers` (its own latest configuration) says so. */
  knowsRemoved(id: string, ownMembers: readonly Member[] | undefined, ownIndex: number): boolean {
    const at = this.#left.get(id);
    if (at === undefined || ownMembers === undefined || ownIndex < at) return false;
    return !ownMembers.some((m) => m.id === id) && this.hasLeft(id);
  }
}

function notCommitted(id: string, index: number, fp: string, applied: string): SafetyViolation {
  return new SafetyViolation(
    `PASSIVE member ${id} stored ${fp.slice(0, 60)} at ${index}, not the committed entry ${
      applied.slice(0, 60)
    }`,
  );
}

function describe(entry: ConfigEntry): string {
  return entry.members.map((m) => `${m.id}=${m.type}`).join(',');
}
