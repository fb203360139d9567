/**
 * The simulated disk of one member: a `Storage` over `MemoryStorage` whose writes take virtual
 * time. A write becomes visible and durable only when it completes; writes complete in the order
 * they were issued; a crash loses every write still in progress (their promises never settle, as
 * the process that waited for them is gone). What the `MemoryStorage` holds is exactly what a
 * member finds when it restarts.
 *
 * @module
 */
import type { Configuration, Entry, HardState, SnapshotMeta } from '../base/messages.ts';
import type { MemoryStorage } from '../storage/memory.ts';
import type { SnapshotStore, Storage, WriteBatch } from '../storage/storage.ts';
import type { VirtualTime } from './sim-time.ts';

/** How long a write takes, in virtual milliseconds, chosen per write. */
export type WriteLatency = () => number;

/**
 * One incarnation's view of a member's storage.
 *
 * @example
 * ```ts
 * const disk = new SimDisk(memory, time, () => 0.5);
 * await disk.write({ entries }); // completes 0.5 virtual ms later
 * disk.crash(); // writes in progress are lost
 * ```
 */
export class SimDisk implements Storage {
  readonly #memory: MemoryStorage;
  readonly #time: VirtualTime;
  readonly #latency: WriteLatency;
  #doneAtMs = 0;
  #inFlight = 0;
  #crashed = false;

  constructor(memory: MemoryStorage, time: VirtualTime, latency: WriteLatency) {
    this.#memory = memory;
    this.#time = time;
    this.#latency = latency;
  }

  /** Writes issued and not yet complete. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get snapshots(): SnapshotStore {
    return this.#memory.snapshots;
  }

  /** The process died: nothing in progress completes, nothing more is written. */
  crash(): void {
    this.#crashed = true;
  }

  firstIndex(): number {
    return this.#memory.firstIndex();
  }
  lastIndex(): number {
    return this.#memory.lastIndex();
  }
  term(index: number): number | undefined {
    return this.#memory.term(index);
  }
  entries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    return this.#memory.entries(fromIndex, toIndex, bytesMax);
  }
  hardState(): HardState {
    return this.#memory.hardState();
  }
  configurations(): Configuration[] {
    return this.#memory.configurations();
  }
  snapshotMeta(): SnapshotMeta | null {
    return this.#memory.snapshotMeta();
  }
  logBytes(): number {
    return this.#memory.logBytes();
  }

  write(batch: WriteBatch): Promise<void> {
    return this.#later(() => this.#memory.write(batch));
  }

  compact(index: number): Promise<void> {
    return this.#later(() => this.#memory.compact(index));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #later(apply: () => Promise<void>): Promise<void> {
    if (this.#crashed) return new Promise(() => {});
    const doneAtMs = Math.max(this.#time.nowMs, this.#doneAtMs) + this.#latency();
    this.#doneAtMs = doneAtMs;
    this.#inFlight++;
    return new Promise((resolve, reject) => {
      this.#time.schedule(doneAtMs - this.#time.nowMs, () => {
        if (this.#crashed) return;
        this.#inFlight--;
        // MemoryStorage applies the write before its promise settles.
        apply().then(resolve, reject);
      });
    });
  }
}
