/**
 * What a process costs, read from Linux's `/proc`: CPU time (user + system, every thread) from
 * `/proc/PID/stat` and resident memory (current and peak) from `/proc/PID/status`. The same reader
 * serves every process a bench watches (edgeraft members, etcd members, the ceiling's, the client
 * itself), so their figures are alike. Off Linux, or once a process is gone, the readers return
 * `null` and the benches print no figure rather than a wrong one.
 *
 * `/proc/PID/stat` counts in clock ticks of 1/100 s (`USER_HZ`, 100 on every Linux architecture
 * that reports to user space), so a CPU delta is exact to 10 ms per process: over a 3-second
 * setting of a busy process that is well under 1 %.
 *
 * @example
 * ```ts
 * const before = cpuUs(pid);
 * await work();
 * const usedUs = cpuUs(pid)! - before!;
 * const peakKb = memoryKb(pid)?.peakKb;
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';

/** Microseconds per clock tick of `/proc/PID/stat` (USER_HZ = 100). */
const tickUs = 10_000;

/** CPU time `pid` has used so far (user + system, all threads), in µs; `null` if unreadable. */
export function cpuUs(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 (utime) and 15 (stime), numbered from 1, are 11 and 12 after the name's field 2.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) * tickUs;
}

/** Resident memory of `pid` now (`VmRSS`) and at its peak so far (`VmHWM`), in KiB. */
export function memoryKb(pid: number): { rssKb: number; peakKb: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return match === null ? null : Number(match[1]);
  };
  const rssKb = field('VmRSS');
  const peakKb = field('VmHWM');
  return rssKb === null || peakKb === null ? null : { rssKb, peakKb };
}

/** Named processes to watch, e.g. `{ n1: 4242, n2: 4243, client: process.pid }`. */
export type Watched = Record<string, number>;

/** Parse `n1=4242,n2=4243` (the `--watch` flag of the bench client). */
export function parseWatched(text: string): Watched {
  const out: Watched = {};
  for (const part of text.split(',').filter((p) => p !== '')) {
    const [name, pid] = part.split('=');
    const value = Number(pid);
    if (name === undefined || name === '' || !Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`Bad watched process: ${part} (expected name=pid)`);
    }
    out[name] = value;
  }
  return out;
}

/** Format `watched` for the `--watch` flag. */
export function formatWatched(watched: Watched): string {
  return Object.entries(watched).map(([name, pid]) => `${name}=${pid}`).join(',');
}

/**
 * CPU time used by each watched process between `start()` and `stop()`, summed over any number of
 * such spans (e.g. the two halves of one setting), in µs.
 *
 * @example
 * ```ts
 * const meter = new CpuMeter({ leader: pid });
 * meter.start(); await run(); meter.stop();
 * meter.usedUs(); // { leader: 812000 }
 * ```
 */
export class CpuMeter {
  readonly #watched: Watched;
  readonly #usedUs = new Map<string, number>();
  #startUs = new Map<string, number>();

  constructor(watched: Watched) {
    this.#watched = watched;
  }

  start(): void {
    this.#startUs = new Map();
    for (const [name, pid] of Object.entries(this.#watched)) {
      const now = cpuUs(pid);
      if (now !== null) this.#startUs.set(name, now);
    }
  }

  stop(): void {
    for (const [name, pid] of Object.entries(this.#watched)) {
      const began = this.#startUs.get(name);
      const now = cpuUs(pid);
      if (began === undefined || now === null) continue;
      this.#usedUs.set(name, (this.#usedUs.get(name) ?? 0) + now - began);
    }
  }

  /** CPU µs per watched process over the spans so far (processes that could not be read: absent). */
  usedUs(): Record<string, number> {
    return Object.fromEntries(this.#usedUs);
  }
}

/** Peak resident memory so far of each watched process, in KiB (unreadable ones absent). */
export function peakKbOf(watched: Watched): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(watched)) {
    const m = memoryKb(pid);
    if (m !== null) out[name] = m.peakKb;
  }
  return out;
}
