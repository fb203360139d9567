/**
 * Configuration and progress tracking (etcd-io/raft `tracker/` is the model): which
 * configurations are in effect, who votes, whom a leader replicates to, and how far each of them
 * is. The step machine asks it quorum questions (what is committed, is a majority alive, where does
 * every member's log reach) and never does the arithmetic itself.
 *
 * Configurations: the newest committed one and every one after it, oldest first. A member uses the
 * latest in its log, committed or not (single-server changes make that safe); entries truncated
 * away take their configurations with them.
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
  #configs: Configuration[];
  /** ACTIVE members of the latest configuration: they vote and count toward quorums. */
  voters: string[] = [];
  /** Members a leader sends entries to: ACTIVE and PASSIVE ones other than itself. */
  targets: string[] = [];
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
    this.#configs = configs.map(copyConfiguration);
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

  /** Replace every configuration by one (a snapshot installed, or bootstrap). */
  reset(config: Configuration): void {
    this.#configs = [copyConfiguration(config)];
    this.#recompute();
  }

  /** A configuration entry was appended at `config.index`. */
  push(config: Configuration): void {
    this.#configs.push(copyConfiguration(config));
    this.#recompute();
  }

  /** Entries from `index` on were truncated: forget the configurations they set. True if any. */
  truncateFrom(index: number): boolean {
    let changed = false;
    while (this.#configs.length > 0 && this.#configs[this.#configs.length - 1]!.index >= index) {
      this.#configs.pop();
      changed = true;
    }
    if (changed) this.#recompute();
    return changed;
  }

  /** The log is committed to `index`: keep only the newest committed configuration and later ones. */
  commitTo(index: number): void {
    let keepFrom = 0;
    for (let i = 0; i < this.#configs.length; i++) {
      if (this.#configs[i]!.index <= index) keepFrom = i;
    }
    if (keepFrom > 0) this.#configs = this.#configs.slice(keepFrom);
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

  /** Track new targets (probed from `nextIndex`) and forget removed ones. */
  syncProgress(nextIndex: number): void {
    for (const id of this.targets) {
      if (!this.progress.has(id)) {
        this.progress.set(
          id,
          new Progress(nextIndex, this.#inflightMessagesMax, this.#inflightBytesMax),
        );
      }
    }
    for (const id of [...this.progress.keys()]) {
      if (!this.targets.includes(id)) this.progress.delete(id);
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

  /** The highest index every tracked member (and this one, at `selfIndex`) has stored. */
  globalIndex(selfIndex: number): number {
    let min = selfIndex;
    for (const pr of this.progress.values()) if (pr.matchIndex < min) min = pr.matchIndex;
    return min;
  }

  /**
   * Check that `next` is a safe successor of the latest configuration: member ids unique, at least
   * one ACTIVE member, and at most one voter added or removed (single-server changes: any two
   * majorities of the old and new voter sets then overlap). Throws `ConfigChangeInvalidError`.
   */
  checkChange(next: readonly Member[]): void {
    const ids = new Set<string>();
    for (const m of next) {
      if (ids.has(m.id)) throw new ConfigChangeInvalidError(`member ${m.id} is listed twice`);
      ids.add(m.id);
    }
    const nextVoters = next.filter((m) => m.type === MemberType.ACTIVE).map((m) => m.id);
    if (nextVoters.length === 0) {
      throw new ConfigChangeInvalidError('no ACTIVE member would remain');
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
  }

  #recompute(): void {
    const members = this.latest()?.members ?? [];
    this.voters = members.filter((m) => m.type === MemberType.ACTIVE).map((m) => m.id);
    // PASSIVE members are fed by the leader for now; follower fan-out comes with membership.
    this.targets = members.filter((m) =>
      m.id !== this.#self && (m.type === MemberType.ACTIVE || m.type === MemberType.PASSIVE)
    ).map((m) => m.id);
  }
}

function copyConfiguration(c: Configuration): Configuration {
  return { index: c.index, term: c.term, members: c.members.map((m) => ({ ...m })) };
}
