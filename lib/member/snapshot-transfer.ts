/**
 * InstallSnapshot, as bytes: when the core asks to send a snapshot to a member behind the
 * compacted log, the leader streams the stored snapshot in chunks (at most `chunkBytes` each),
 * one chunk in flight per follower; the follower answers each with the offset it wants next.
 * Because the follower names the offset, a transfer broken by a lost connection resumes from the
 * last chunk the follower kept, not from zero. Once every byte is there the follower restores its
 * state machine and only then hands the core the finished `snapshot` message.
 *
 * @module
 */
import { clearInterval, setInterval } from 'node:timers';
import type {
  RaftMessage,
  SnapshotChunkMessage,
  SnapshotChunkResponseMessage,
  SnapshotMessage,
  SnapshotMeta,
} from '../base/messages.ts';
import type { LmdbStorage } from '../storage/lmdb.ts';
import type { ServerLogger } from './options.ts';

/** A chunk unanswered this long abandons the transfer (the core then probes again). */
export const snapshotChunkTimeoutMs = 10_000;
/** Largest snapshot a follower accepts, in bytes (it is held in memory until complete). */
export const snapshotReceiveBytesMax = 2 * 1024 ** 3;

type Sending = { meta: SnapshotMessage; offset: number; sentAtMs: number };
type Receiving = {
  from: string;
  meta: SnapshotMeta;
  totalBytes: number;
  chunks: Uint8Array[];
  received: number;
};

/** What the transfers need from their server. */
export type SnapshotTransferHost = {
  id: string;
  storage: LmdbStorage;
  chunkBytes: number;
  send: (m: RaftMessage) => void;
  currentTerm: () => number;
  leaderId: () => string | null;
  reportFailed: (to: string) => void;
  install: (meta: SnapshotMeta, chunks: Uint8Array[]) => Promise<void>;
  log: ServerLogger;
};

/**
 * The snapshot transfers of one member, both directions.
 *
 * @example
 * ```ts
 * const transfers = new SnapshotTransfers(host);
 * transfers.startSending(snapshotMessageFromCore);
 * transport.onMessage((m) => m.type.startsWith('snapshotChunk') && transfers.onMessage(m));
 * ```
 */
export class SnapshotTransfers {
  readonly #h: SnapshotTransferHost;
  readonly #sending = new Map<string, Sending>();
  #receiving: Receiving | null = null;
  readonly #sweep: ReturnType<typeof setInterval>;

  constructor(host: SnapshotTransferHost) {
    this.#h = host;
    this.#sweep = setInterval(() => this.#checkTimeouts(), 1000);
    this.#sweep.unref();
  }

  /** The core asked to send a snapshot to `m.to`: start (or restart) streaming it. */
  startSending(m: SnapshotMessage): void {
    this.#sending.set(m.to, { meta: m, offset: 0, sentAtMs: Date.now() });
    this.#h.log.info(`sending snapshot ${m.index} to ${m.to}`);
    this.#sendChunk(m.to);
  }

  onMessage(m: SnapshotChunkMessage | SnapshotChunkResponseMessage): void {
    if (m.type === 'snapshotChunk') this.#onChunk(m);
    else this.#onResponse(m);
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#sending.clear();
    this.#receiving = null;
  }

  #sendChunk(to: string): void {
    const s = this.#sending.get(to);
    if (s === undefined) return;
    const info = this.#h.storage.snapshots.info();
    if (info === null || info.index !== s.meta.index || s.meta.term !== this.#h.currentTerm()) {
      // The snapshot was replaced or leadership changed: abandon; the core will ask again.
      this.#sending.delete(to);
      this.#h.reportFailed(to);
      return;
    }
    const part = this.#h.storage.snapshots.chunkAt(s.offset)!;
    const data = part.data.subarray(0, this.#h.chunkBytes);
    s.sentAtMs = Date.now();
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
    const total = this.#h.storage.snapshots.info()?.bytes ?? -1;
    if (m.nextOffset >= total) {
      this.#sending.delete(m.from); // complete: the follower's core now answers as usual
      this.#h.log.info(`snapshot ${s.meta.index} delivered to ${m.from}`);
      return;
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
    // Only from the leader of our current term (heartbeats bring us to its term first).
    if (m.term !== this.#h.currentTerm() || this.#h.leaderId() !== m.from) return answer(0, false);
    if (m.totalBytes > snapshotReceiveBytesMax) {
      this.#h.log.warn(
        `refusing snapshot ${m.index} from ${m.from}: ${m.totalBytes} bytes, limit ${snapshotReceiveBytesMax}`,
      );
      return answer(0, false);
    }
    let r = this.#receiving;
    if (
      r === null || r.meta.index !== m.index || r.meta.term !== m.snapshotTerm ||
      r.totalBytes !== m.totalBytes
    ) {
      if (m.offset !== 0) return answer(0, true); // start over from the beginning
      r = {
        from: m.from,
        meta: {
          index: m.index,
          term: m.snapshotTerm,
          timeMs: m.snapshotTimeMs,
          members: m.members,
        },
        totalBytes: m.totalBytes,
        chunks: [],
        received: 0,
      };
      this.#receiving = r;
    }
    if (m.offset !== r.received) return answer(r.received, true); // resume where we are
    r.chunks.push(m.data.slice());
    r.received += m.data.byteLength;
    answer(r.received, true);
    if (r.received >= r.totalBytes) {
      this.#receiving = null;
      this.#h.install(r.meta, r.chunks).catch((error) =>
        this.#h.log.warn(`installing snapshot ${r.meta.index} failed: ${(error as Error).message}`)
      );
    }
  }

  #checkTimeouts(): void {
    const now = Date.now();
    for (const [to, s] of this.#sending) {
      if (now - s.sentAtMs > snapshotChunkTimeoutMs) {
        this.#sending.delete(to);
        this.#h.log.warn(
          `snapshot ${s.meta.index} to ${to}: no answer in ${snapshotChunkTimeoutMs} ms, will retry`,
        );
        this.#h.reportFailed(to);
      }
    }
  }
}
