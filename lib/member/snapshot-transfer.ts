/**
 * InstallSnapshot, as bytes: when the core asks to send a snapshot to a member behind the
 * compacted log, the leader streams the stored snapshot in chunks (at most `chunkBytes` each),
 * one chunk in flight per follower; the follower answers each with the offset it wants next.
 * Because the follower names the offset, a transfer broken by a lost connection resumes from the
 * last chunk the follower stored, not from zero.
 *
 * The follower stages the chunks in its snapshot store as they arrive (never more than one chunk
 * in memory). Once every byte is there the stage is finished and handed to the driver, which
 * installs it as one step: the core takes the snapshot, and the storage write that discards the
 * log makes the staged data current in the same transaction. A stage that is abandoned (another
 * leader, another snapshot, a timeout) is dropped.
 *
 * @module
 */
import type {
  RaftMessage,
  SnapshotChunkMessage,
  SnapshotChunkResponseMessage,
  SnapshotMessage,
  SnapshotMeta,
} from '../base/messages.ts';
import type { SnapshotStage, SnapshotStore } from '../storage/storage.ts';
import type { Clock, MemberLogger } from './ports.ts';

/**
 * How often a transfer under way says how far it is, in milliseconds: a transfer that ends
 * sooner logs only its start and its end.
 */
export const snapshotProgressIntervalMs = 2_000;

type Sending = {
  meta: SnapshotMessage;
  offset: number;
  sentAtMs: number;
  startedAtMs: number;
  reportedAtMs: number;
};
type Receiving = {
  from: string;
  term: number;
  meta: SnapshotMeta;
  totalBytes: number;
  stage: SnapshotStage;
  /** A chunk is being stored: later chunks wait for its answer. */
  busy: boolean;
  lastChunkAtMs: number;
  startedAtMs: number;
  reportedAtMs: number;
};

/**
 * One line of progress for a long operation: how much of it is done, the rate so far and what
 * remains at that rate.
 *
 * @example
 * ```ts
 * progressLine(12.5e6, 40e6, 'B', 1_500); // '12.5 of 40.0 MB (31%), 8.3 MB/s, about 3 s left'
 * ```
 */
export function progressLine(
  done: number,
  total: number,
  unit: 'B' | 'entries',
  ms: number,
): string {
  const rate = ms > 0 ? (done * 1000) / ms : 0;
  const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
  const left = rate > 0 ? Math.ceil((total - done) / rate) : null;
  const eta = left === null ? 'time left unknown' : `about ${left} s left`;
  if (unit === 'B') {
    const mb = (n: number) => (n / 1e6).toFixed(1);
    return `${mb(done)} of ${mb(total)} MB (${pct}%), ${mb(rate)} MB/s, ${eta}`;
  }
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  return `${n(done)} of ${n(total)} entries (${pct}%), ${n(rate)} entries/s, ${eta}`;
}

/** A complete snapshot received from the leader, staged and ready to install. */
export type ReceivedSnapshot = {
  from: string;
  term: number;
  meta: SnapshotMeta;
  stage: SnapshotStage;
};

/** What the transfers need from their driver. */
export type SnapshotTransferHost = {
  id: string;
  snapshots: SnapshotStore;
  clock: Clock;
  /** Bytes per chunk sent. */
  chunkBytes: number;
  /** A chunk unanswered (sender) or not followed by the next (receiver) this long abandons the transfer. */
  chunkTimeoutMs: number;
  /** Largest snapshot accepted, in bytes. */
  receiveBytesMax: number;
  /** How often a long transfer logs its progress, in ms (`snapshotProgressIntervalMs`). */
  progressIntervalMs: number;
  send: (m: RaftMessage) => void;
  currentTerm: () => number;
  leaderId: () => string | null;
  /**
   * Whether chunks from `from` at `term` may be staged: from the leader of the current term, or
   * on a member fed by followers from its feeder. Default: the leader only.
   */
  accepts?: (from: string, term: number) => boolean;
  /** The transfer to `to` failed or was abandoned: the core probes again later. */
  reportFailed: (to: string) => void;
  /** Every byte arrived and is staged. */
  received: (snapshot: ReceivedSnapshot) => void;
  log: MemberLogger;
};

/**
 * The snapshot transfers of one member, both directions.
 *
 * @example
 * ```ts
 * const transfers = new SnapshotTransfers(host);
 * transfers.startSending(snapshotMessageFromCore);
 * onPeerMessage((m) => m.type.startsWith('snapshotChunk') && transfers.onMessage(m));
 * ```
 */
export class SnapshotTransfers {
  readonly #h: SnapshotTransferHost;
  readonly #sending = new Map<string, Sending>();
  #receiving: Receiving | null = null;
  #cancelSweep: (() => void) | null = null;
  #closed = false;
  /** Snapshots streamed to a follower in full (its last chunk acknowledged). */
  sentCount = 0;

  constructor(host: SnapshotTransferHost) {
    this.#h = host;
    this.#scheduleSweep();
  }

  /** The core asked to send a snapshot to `m.to`: start (or restart) streaming it. */
  startSending(m: SnapshotMessage): void {
    const now = this.#h.clock.nowMs();
    this.#sending.set(m.to, {
      meta: m,
      offset: 0,
      sentAtMs: now,
      startedAtMs: now,
      reportedAtMs: now,
    });
    const bytes = this.#h.snapshots.info()?.bytes;
    this.#h.log.info(
      `sending snapshot ${m.index} to ${m.to}${bytes === undefined ? '' : ` (${bytes} bytes)`}`,
    );
    this.#sendChunk(m.to);
  }

  /** Bytes received so far of the snapshot being received, and its size; `null` when none. */
  receivingProgress(): { index: number; receivedBytes: number; totalBytes: number } | null {
    const r = this.#receiving;
    return r === null
      ? null
      : { index: r.meta.index, receivedBytes: r.stage.bytes, totalBytes: r.totalBytes };
  }

  onMessage(m: SnapshotChunkMessage | SnapshotChunkResponseMessage): void {
    if (this.#closed) return;
    if (m.type === 'snapshotChunk') this.#onChunk(m);
    else this.#onResponse(m);
  }

  /** Stop every transfer; a stage being received is dropped. */
  close(): void {
    this.#closed = true;
    this.#cancelSweep?.();
    this.#sending.clear();
    this.#dropReceiving();
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    const everyMs = Math.max(10, Math.floor(this.#h.chunkTimeoutMs / 4));
    this.#cancelSweep = this.#h.clock.setTimer(everyMs, () => {
      this.#checkTimeouts();
      this.#scheduleSweep();
    });
  }

  #sendChunk(to: string): void {
    const s = this.#sending.get(to);
    if (s === undefined) return;
    const info = this.#h.snapshots.info();
    if (info === null || info.index !== s.meta.index || s.meta.term !== this.#h.currentTerm()) {
      // The snapshot was replaced or leadership changed: abandon; the core will ask again.
      this.#sending.delete(to);
      this.#h.reportFailed(to);
      return;
    }
    const part = this.#h.snapshots.chunkAt(s.offset)!;
    const data = part.data.subarray(0, this.#h.chunkBytes);
    s.sentAtMs = this.#h.clock.nowMs();
    this.#h.send({
      type: 'snapshotChunk',
      from: this.#h.id,
      to,
      term: s.meta.term,
      index: s.meta.index,
      snapshotTerm: s.meta.snapshotTerm,
      snapshotTimeMs: s.meta.snapshotTimeMs,
      members: s.meta.members,
      totalBytes: info.bytes,
      offset: s.offset,
      data,
      done: s.offset + data.byteLength === info.bytes,
    });
  }

  #onResponse(m: SnapshotChunkResponseMessage): void {
    const s = this.#sending.get(m.from);
    if (s === undefined || m.index !== s.meta.index || m.term !== s.meta.term) return;
    if (!m.ok) {
      this.#sending.delete(m.from);
      this.#h.reportFailed(m.from);
      return;
    }
    const total = this.#h.snapshots.info()?.bytes ?? -1;
    const now = this.#h.clock.nowMs();
    if (m.nextOffset >= total) {
      this.#sending.delete(m.from); // complete: the follower's core now answers as usual
      this.sentCount += 1;
      const ms = now - s.startedAtMs;
      this.#h.log.info(
        `snapshot ${s.meta.index} delivered to ${m.from}: ${total} bytes in ${Math.round(ms)} ms`,
      );
      return;
    }
    if (now - s.reportedAtMs >= this.#h.progressIntervalMs) {
      s.reportedAtMs = now;
      this.#h.log.info(
        `sending snapshot ${s.meta.index} to ${m.from}: ${
          progressLine(m.nextOffset, total, 'B', now - s.startedAtMs)
        }`,
      );
    }
    s.offset = m.nextOffset;
    this.#sendChunk(m.from);
  }

  #onChunk(m: SnapshotChunkMessage): void {
    const answer = (nextOffset: number, ok: boolean) =>
      this.#h.send({
        type: 'snapshotChunkResponse',
        from: this.#h.id,
        to: m.from,
        term: m.term,
        index: m.index,
        nextOffset,
        ok,
      });
    // Only from the leader of our current term (heartbeats bring us to its term first), or from
    // a PASSIVE member's feeder.
    const accepted = this.#h.accepts?.(m.from, m.term) ??
      (m.term === this.#h.currentTerm() && this.#h.leaderId() === m.from);
    if (!accepted) return answer(0, false);
    if (m.totalBytes > this.#h.receiveBytesMax) {
      this.#h.log.warn(
        `refusing snapshot ${m.index} from ${m.from}: ${m.totalBytes} bytes, limit snapshotReceiveBytesMax ${this.#h.receiveBytesMax}`,
      );
      return answer(0, false);
    }
    let r = this.#receiving;
    if (
      r !== null && r.from !== m.from && m.term <= r.term &&
      this.#h.clock.nowMs() - r.lastChunkAtMs < this.#h.chunkTimeoutMs
    ) {
      // Another sender's transfer is under way (a leader and a feeder, or two feeders): it goes
      // on, and this one is refused (its sender retries later). Two senders that took turns
      // starting over would never finish.
      return answer(0, false);
    }
    if (
      r === null || r.from !== m.from || r.term !== m.term || r.meta.index !== m.index ||
      r.meta.term !== m.snapshotTerm || r.totalBytes !== m.totalBytes
    ) {
      if (m.offset !== 0) return answer(0, true); // start over from the beginning
      this.#dropReceiving();
      r = {
        from: m.from,
        term: m.term,
        meta: {
          index: m.index,
          term: m.snapshotTerm,
          timeMs: m.snapshotTimeMs,
          members: m.members,
        },
        totalBytes: m.totalBytes,
        stage: this.#h.snapshots.stage(m.index, m.snapshotTerm),
        busy: false,
        lastChunkAtMs: this.#h.clock.nowMs(),
        startedAtMs: this.#h.clock.nowMs(),
        reportedAtMs: this.#h.clock.nowMs(),
      };
      this.#receiving = r;
      this.#h.log.info(`receiving snapshot ${m.index} from ${m.from} (${m.totalBytes} bytes)`);
    }
    if (r.busy) return; // the chunk being stored answers; the leader resends on its timeout
    if (m.offset !== r.stage.bytes) return answer(r.stage.bytes, true); // resume where we are
    r.busy = true;
    r.lastChunkAtMs = this.#h.clock.nowMs();
    const current = r;
    void current.stage.append(m.data).then(async () => {
      current.busy = false;
      if (this.#receiving !== current) return;
      const now = this.#h.clock.nowMs();
      if (current.stage.bytes < current.totalBytes) {
        if (now - current.reportedAtMs >= this.#h.progressIntervalMs) {
          current.reportedAtMs = now;
          this.#h.log.info(
            `receiving snapshot ${current.meta.index} from ${current.from}: ${
              progressLine(current.stage.bytes, current.totalBytes, 'B', now - current.startedAtMs)
            }`,
          );
        }
        return answer(current.stage.bytes, true);
      }
      await current.stage.finish();
      if (this.#receiving !== current) return;
      this.#receiving = null;
      answer(current.stage.bytes, true);
      this.#h.received({
        from: current.from,
        term: current.term,
        meta: current.meta,
        stage: current.stage,
      });
    }).catch((error: unknown) => {
      if (this.#receiving === current) this.#receiving = null;
      this.#h.log.warn(
        `storing snapshot ${current.meta.index} failed: ${(error as Error).message}`,
      );
      void current.stage.abort().catch(() => {});
      answer(0, false);
    });
  }

  #dropReceiving(): void {
    const r = this.#receiving;
    this.#receiving = null;
    if (r !== null) void r.stage.abort().catch(() => {});
  }

  #checkTimeouts(): void {
    const now = this.#h.clock.nowMs();
    for (const [to, s] of this.#sending) {
      if (now - s.sentAtMs > this.#h.chunkTimeoutMs) {
        this.#sending.delete(to);
        this.#h.log.warn(
          `snapshot ${s.meta.index} to ${to}: no answer in ${this.#h.chunkTimeoutMs} ms, will retry`,
        );
        this.#h.reportFailed(to);
      }
    }
    const r = this.#receiving;
    if (r !== null && !r.busy && now - r.lastChunkAtMs > this.#h.chunkTimeoutMs * 2) {
      // The leader gave up (or lost leadership): drop what was staged.
      this.#h.log.info(`snapshot ${r.meta.index} from ${r.from}: abandoned after a silence`);
      this.#dropReceiving();
    }
  }
}
