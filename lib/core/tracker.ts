/**
 * Configuration and progress tracking (etcd-io/raft `tracker/` is the model): which
 * configurations are in effect, who votes, whom a leader replicates to, and how far each of them
 * is. The step machine asks it quorum questions (what is committed, is a majority alive, where does
 * every member's log reach) and never does the arithmetic itself.
 *
 * Configurations: the newest committed one and every one after it, in index order. A member uses
 * the latest in its log, committed or not (single-server changes make that safe); entries truncated
 * away take their configurations with them. A RESERVE or INACTIVE member keeps no log: the
 * committed configuration the leader pushes to it is tracked too (`adoptPushed`), in index order
 * among the log's, and no truncation removes it.
 *
 * @module
 */
import { ConfigChangeInvalidError } from '../base/errors.ts';
import { type Configuration, type Member, MemberType } from '../base/messages.ts';
import { Progress } from './progress.ts';
import { committedIndex, majority } from './quorum.ts';

/**
 * The configurations and, on a leader, the progress of every member it replicates to.
 *
 * Invariants: `voters` and `targets` always describe `latest()`; `progress` holds exactly the
 * targets while this member leads, and nothing otherwise.
 *
 * @example
 * ```ts
 * const t = new Tracker('a', [{ index: 1, term: 1, members: [{ id: 'a', type: 'ACTIVE' }] }], 256, 1 << 26);
 * t.voters; // ['a']
 * ```
 */
export class Tracker {
  readonly #self: string;
  readonly #inflightMessagesMax: number;
  readonly #inflightBytesMax: number;
  #configs: TrackedConfiguration[];
  /** The commit index as last told (`commitTo`): which configurations are committed. */
  #commitIndex = 0;
  /** ACTIVE members of the latest configuration: they vote and count toward quorums. */
  voters: string[] = [];
  /**
   * Members a leader sends entries to: every other member that is ACTIVE in any tracked
   * configuration (the newest committed one or a later one). A member being demoted or removed
   * stays one until that change commits, and one being promoted is one from its change on.
   * PASSIVE members are fed by followers (`fan-out.ts`), not by the leader.
   */
  targets: string[] = [];
  /** PASSIVE members of the latest configuration, other than this one. */
  passives: string[] = [];
  /** Replication progress per target, while leading. */
  readonly progress: Map<string, Progress> = new Map();

  constructor(
    self: string,
    configs: Configuration[],
    inflightMessagesMax: number,
    inflightBytesMax: number,
  ) {
    this.#self = self;
    this.#inflightMessagesMax = inflightMessagesMax;
    this.#inflightBytesMax = inflightBytesMax;
    this.#configs = configs.map(copyConfiguration).sort((a, b) => a.index - b.index);
    this.#recompute();
  }

  /** The configuration in effect: the latest in the log, committed or not. */
  latest(): Configuration | null {
    return this.#configs[this.#configs.length - 1] ?? null;
  }

  /** True when this member may campaign and vote: it is ACTIVE in the latest configuration. */
  selfVotes(): boolean {
    return this.voters.includes(this.#self);
  }

  /**
   * True when this member may campaign: it is ACTIVE in the latest configuration, or that
   * configuration is not known to be committed and this member is ACTIVE in an earlier tracked
   * one. A member being removed or demoted may be needed to commit that change: when the leader
   * that logged it restarts, it may hold the only copy a majority of the new configuration lacks
   * (Raft thesis, 4.2.2). Its own vote is not counted (`voters` leaves it out), and members that
   * stored the change refuse it, so it cannot win once a majority of the new configuration has.
   */
  mayCampaign(): boolean {
    if (this.selfVotes()) return true;
    const latest = this.#configs[this.#configs.length - 1];
    if (latest === undefined || latest.index <= this.#commitIndex || latest.pushed === true) {
      return false;
    }
    return this.#configs.some((c) =>
      c !== latest && c.members.some((m) => m.id === this.#self && m.type === MemberType.ACTIVE)
    );
  }

  /** The newest configuration known to be committed (at or below the commit index), or `null`. */
  committed(): Configuration | null {
    let found: Configuration | null = null;
    for (const c of this.#configs) if (c.index <= this.#commitIndex) found = c;
    return found;
  }

  /**
   * Replace every configuration by one (a snapshot installed, or bootstrap). Pushed ones past it
   * stay (they are committed and come from no log).
   */
  reset(config: Configuration): void {
    this.#configs = [
      copyConfiguration(config),
      ...this.#configs.filter((c) => c.pushed === true && c.index > config.index),
    ];
    this.#recompute();
  }

  /** A configuration entry was appended at `config.index`. */
  push(config: Configuration): void {
    this.#insert(copyConfiguration(config));
    this.#recompute();
  }

  /**
   * The leader pushed its committed configuration (this member keeps no log of it): track it if
   * it is newer than the latest. False (and nothing changes) otherwise.
   */
  adoptPushed(config: Configuration): boolean {
    const latest = this.latest();
    if (latest !== null && latest.index >= config.index) return false;
    this.#insert({ ...copyConfiguration(config), pushed: true });
    this.#recompute();
    return true;
  }

  #insert(config: TrackedConfiguration): void {
    const at = this.#configs.findIndex((c) => c.index >= config.index);
    if (at < 0) this.#configs.push(config);
    else if (this.#configs[at]!.index === config.index) this.#configs[at] = config;
    else this.#configs.splice(at, 0, config);
  }

  /** Entries from `index` on were truncated: forget the configurations they set. True if any. */
  truncateFrom(index: number): boolean {
    const kept = this.#configs.filter((c) => c.index < index || c.pushed === true);
    const changed = kept.length !== this.#configs.length;
    if (changed) {
      this.#configs = kept;
      this.#recompute();
    }
    return changed;
  }

  /**
   * The log is committed to `index`: keep only the newest committed configuration and later ones.
   * True when that dropped one (the targets may have changed).
   */
  commitTo(index: number): boolean {
    if (index > this.#commitIndex) this.#commitIndex = index;
    let keepFrom = 0;
    for (let i = 0; i < this.#configs.length; i++) {
      if (this.#configs[i]!.index <= index) keepFrom = i;
    }
    if (keepFrom === 0) return false;
    this.#configs = this.#configs.slice(keepFrom);
    this.#recompute();
    return true;
  }

  /** The type of `id` in the latest configuration, or `null` when it is not listed (or none is known). */
  typeOf(id: string): MemberType | null {
    return this.latest()?.members.find((m) => m.id === id)?.type ?? null;
  }

  /**
   * For a member being promoted (ACTIVE in a tracked configuration but not in the committed one):
   * the index of the configuration that makes it ACTIVE; 0 otherwise.
   */
  joiningIndex(id: string): number {
    const committed = this.committed();
    if (committed?.members.some((m) => m.id === id && m.type === MemberType.ACTIVE) ?? false) {
      return 0;
    }
    for (const c of this.#configs) {
      if (committed !== null && c.index <= committed.index) continue;
      if (c.members.some((m) => m.id === id && m.type === MemberType.ACTIVE)) return c.index;
    }
    return 0;
  }

  /** Start tracking every target afresh (a new leader), each probed from `nextIndex`. */
  resetProgress(nextIndex: number): void {
    this.progress.clear();
    this.syncProgress(nextIndex);
  }

  /** Stop tracking progress (no longer leading). */
  clearProgress(): void {
    this.progress.clear();
  }

  /**
   * Track new targets (probed from `nextIndex`) and forget those no longer targets, unless `keep`
   * says to keep one a while (it is marked `departing`: still sent entries, counted nowhere).
   */
  syncProgress(nextIndex: number, keep: (id: string, pr: Progress) => boolean = () => false): void {
    for (const id of this.targets) {
      const known = this.progress.get(id);
      if (known === undefined) {
        this.progress.set(
          id,
          new Progress(nextIndex, this.#inflightMessagesMax, this.#inflightBytesMax),
        );
      } else known.departing = false;
    }
    for (const [id, pr] of [...this.progress]) {
      if (this.targets.includes(id)) continue;
      if (keep(id, pr)) pr.departing = true;
      else this.progress.delete(id);
    }
  }

  /** The highest index stored by a majority of voters, counting this member at `selfIndex`. */
  committedIndex(selfIndex: number): number {
    return committedIndex(
      this.voters.map((id) =>
        id === this.#self ? selfIndex : this.progress.get(id)?.matchIndex ?? 0
      ),
    );
  }

  /** True when a majority of voters (this member included, if it votes) was heard from recently. */
  quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === this.#self || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= majority(this.voters.length);
  }

  /**
   * The highest index every target that `counts` (and this member, at `selfIndex`, and each of
   * `others`) has stored. Departing members are not counted.
   */
  globalIndex(
    selfIndex: number,
    others: Iterable<number> = [],
    counts: (pr: Progress) => boolean = () => true,
  ): number {
    let min = selfIndex;
    for (const pr of this.progress.values()) {
      if (!pr.departing && counts(pr) && pr.matchIndex < min) min = pr.matchIndex;
    }
    for (const index of others) if (index < min) min = index;
    return min;
  }

  /**
   * Check that `next` is a safe successor of the latest configuration: member ids unique, at least
   * one ACTIVE member, and at most one voter added or removed (single-server changes: any two
   * majorities of the old and new voter sets then overlap). Throws `ConfigChangeInvalidError`.
   */
  checkChange(next: readonly Member[], activeMembersMin = 1): void {
    const ids = new Set<string>();
    for (const m of next) {
      if (ids.has(m.id)) throw new ConfigChangeInvalidError(`member ${m.id} is listed twice`);
      ids.add(m.id);
    }
    const nextVoters = next.filter((m) => m.type === MemberType.ACTIVE).map((m) => m.id);
    if (nextVoters.length === 0) {
      throw new ConfigChangeInvalidError('no ACTIVE member would remain');
    }
    if (nextVoters.length < activeMembersMin && nextVoters.length < this.voters.length) {
      throw new ConfigChangeInvalidError(
        `it would leave ${nextVoters.length} ACTIVE members, fewer than activeMembersMin ${activeMembersMin}`,
      );
    }
    const added = nextVoters.filter((id) => !this.voters.includes(id));
    const removed = this.voters.filter((id) => !nextVoters.includes(id));
    if (added.length + removed.length > 1) {
      throw new ConfigChangeInvalidError(
        `it changes ${added.length + removed.length} voters at once (added ${
          added.join(', ') || 'none'
        }; removed ${removed.join(', ') || 'none'}); one at a time`,
      );
    }
    for (const id of added) {
      const was = this.typeOf(id);
      if (was !== MemberType.PASSIVE && this.latest() !== null) {
        throw new ConfigChangeInvalidError(
          `${id} is ${
            was ?? 'not a member'
          }: a member becomes ACTIVE only from PASSIVE, once caught up`,
        );
      }
    }
  }

  #recompute(): void {
    const members = this.latest()?.members ?? [];
    this.voters = members.filter((m) => m.type === MemberType.ACTIVE).map((m) => m.id);
    const targets = new Set<string>();
    for (const c of this.#configs) {
      for (const m of c.members) {
        if (m.id !== this.#self && m.type === MemberType.ACTIVE) targets.add(m.id);
      }
    }
    this.targets = [...targets];
    this.passives = members.filter((m) => m.id !== this.#self && m.type === MemberType.PASSIVE)
      .map((m) => m.id);
  }
}

/** A configuration as tracked: `pushed` when it came from the leader rather than from the log. */
type TrackedConfiguration = Configuration & { pushed?: boolean };

function copyConfiguration(c: Configuration): Configuration {
  return { index: c.index, term: c.term, members: c.members.map((m) => ({ ...m })) };
}
