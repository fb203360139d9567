/**
 * The safety rules every simulated cluster is held to, checked incrementally after every step
 * (TigerBeetle `src/testing/` is the model): at most one leader per term; log matching; leader
 * completeness; state-machine safety (no two members apply different entries at one index);
 * commit and applied indexes never decrease.
 *
 * @module
 */
import type { Entry } from '../base/messages.ts';

/** A broken safety rule: the simulator stops the run and reports it with the seed. */
export class SafetyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetyViolation';
  }
}

/** A short identity of an entry's content (not its position). */
export function fingerprint(entry: Entry): string {
  switch (entry.type) {
    case 'noop':
      return `noop@${entry.term}`;
    case 'config':
      return `config:${entry.members.map((m) => `${m.id}=${m.type}`).join(',')}`;
    case 'command': {
      let s = 'cmd:';
      for (const b of entry.data) s += String.fromCharCode(b);
      return s;
    }
  }
}

/**
 * The cluster-wide record the checkers compare every member against.
 *
 * @example
 * ```ts
 * const c = new SafetyChecker();
 * c.observeLeader('a', 3);
 * c.observeLeader('b', 3); // throws SafetyViolation: two leaders in term 3
 * ```
 */
export class SafetyChecker {
  /** Leader per term. */
  readonly #leaders = new Map<number, string>();
  /** For each stored (index, term): the entry's fingerprint and the term of the entry before it. */
  readonly #stored = new Map<string, { fp: string; prevTerm: number }>();
  /** Fingerprint of the entry applied at each index (index - 1). */
  readonly #applied: string[] = [];
  /** Term of the committed entry at each index (index - 1), as far as anyone applied. */
  readonly #committedTerms: number[] = [];
  readonly #lastCommit = new Map<string, number>();
  readonly #lastApplied = new Map<string, number>();

  /** At most one leader per term. */
  observeLeader(id: string, term: number): void {
    const known = this.#leaders.get(term);
    if (known !== undefined && known !== id) {
      throw new SafetyViolation(`Two leaders in term ${term}: ${known} and ${id}`);
    }
    this.#leaders.set(term, id);
  }

  /**
   * Log matching: entries with the same index and term are the same entry, preceded by the same
   * term (so, inductively, by the same log). `prevTerm` is the term the member stores before it.
   */
  observeStored(id: string, entry: Entry, prevTerm: number): void {
    const key = `${entry.index}:${entry.term}`;
    const fp = fingerprint(entry);
    const known = this.#stored.get(key);
    if (known === undefined) {
      this.#stored.set(key, { fp, prevTerm });
      return;
    }
    if (known.fp !== fp) {
      throw new SafetyViolation(
        `Log matching: ${id} stores ${fp} at ${key}, another member ${known.fp}`,
      );
    }
    if (known.prevTerm !== prevTerm) {
      throw new SafetyViolation(
        `Log matching: at ${key} ${id} has term ${prevTerm} before it, another member ${known.prevTerm}`,
      );
    }
  }

  /** State-machine safety: every member applies the same entry at each index, in order. */
  observeApplied(id: string, entry: Entry): void {
    const last = this.#lastApplied.get(id) ?? 0;
    if (entry.index !== last + 1) {
      throw new SafetyViolation(`${id} applied ${entry.index} after ${last}`);
    }
    this.#lastApplied.set(id, entry.index);
    const fp = fingerprint(entry);
    const known = this.#applied[entry.index - 1];
    if (known === undefined) {
      this.#applied[entry.index - 1] = fp;
      this.#committedTerms[entry.index - 1] = entry.term;
    } else if (known !== fp) {
      throw new SafetyViolation(
        `State machine safety: ${id} applied ${fp} at ${entry.index}, another member ${known}`,
      );
    }
  }

  /** A member restarted with a fresh state machine: its applied index starts again at `from`. */
  resetApplied(id: string, from: number): void {
    this.#lastApplied.set(id, from);
  }

  /** The commit index of a running member never decreases (it is durable across restarts). */
  observeCommit(id: string, commitIndex: number): void {
    const last = this.#lastCommit.get(id) ?? 0;
    if (commitIndex < last) {
      throw new SafetyViolation(`${id} commit index went back from ${last} to ${commitIndex}`);
    }
    this.#lastCommit.set(id, commitIndex);
  }

  /** A member lost its durable commit index only if its storage says so: reset the floor. */
  resetCommit(id: string, commitIndex: number): void {
    this.#lastCommit.set(id, commitIndex);
  }

  /**
   * Leader completeness: a new leader's log holds every entry applied anywhere so far. Entries it
   * compacted into a snapshot (below `firstIndex`) were committed, so they are not looked up.
   */
  checkLeaderCompleteness(
    id: string,
    term: number,
    termAt: (index: number) => number | undefined,
    firstIndex = 1,
  ): void {
    for (let i = Math.max(0, firstIndex - 1); i < this.#committedTerms.length; i++) {
      const t = this.#committedTerms[i];
      if (t === undefined) continue;
      const mine = termAt(i + 1);
      if (mine !== t) {
        throw new SafetyViolation(
          `Leader completeness: ${id}, leader of term ${term}, has term ${mine} at committed index ${
            i + 1
          } (term ${t})`,
        );
      }
    }
  }

  /**
   * A member installs a snapshot up to (`index`, `term`): that entry must be one some member
   * applied (a snapshot holds only committed state).
   */
  observeSnapshot(id: string, index: number, term: number): void {
    const known = this.#committedTerms[index - 1];
    if (known === undefined) {
      throw new SafetyViolation(`${id} installs a snapshot at ${index}, which nobody applied`);
    }
    if (known !== term) {
      throw new SafetyViolation(
        `${id} installs a snapshot at ${index} of term ${term}; the applied entry has term ${known}`,
      );
    }
  }

  /** Fingerprint applied at `index`, if any member applied it. */
  appliedAt(index: number): string | undefined {
    return this.#applied[index - 1];
  }

  /** Highest index any member applied. */
  get appliedMax(): number {
    return this.#applied.length;
  }
}
