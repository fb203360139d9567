/**
 * Test helpers for state machines on disk: executors over a real LMDB environment in a temporary
 * folder, and log entries in every envelope. Not a test file (no `.test.ts`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../lib/base/messages.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import type { DiskUnsafeFaults } from '../../lib/state/disk-state-machine.ts';
import { encodeEnvelope } from '../../lib/state/envelope.ts';
import { type ApplyResult, StateMachineExecutor } from '../../lib/state/executor.ts';
import type { KvOutput, KvQueryOutput } from '../../lib/state/kv.ts';
import { LmdbKvStateMachine } from '../../lib/state/lmdb-kv.ts';
import type { Commit } from '../../lib/state/state-machine.ts';
import type { ApplyContext } from '../../lib/state/context.ts';
import type { SessionEvent } from '../../lib/state/sessions.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';

const codec = cborCodec<unknown>();

/** A fresh temporary folder; `remove()` deletes it. */
export function tempDir(name: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `edgeraft-${name}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** The LMDB key-value machine, counting the commands it applies. */
export class CountingLmdbKv extends LmdbKvStateMachine {
  readonly appliedIndexes: number[] = [];
  override apply(commit: Commit<unknown>, context: ApplyContext): KvOutput {
    this.appliedIndexes.push(commit.index);
    return super.apply(commit, context);
  }
}

/** An executor of a `CountingLmdbKv` over the LMDB environment at `path`, opened. */
export type DiskMember = {
  storage: LmdbStorage;
  machine: CountingLmdbKv;
  executor: StateMachineExecutor<unknown, KvOutput, unknown, KvQueryOutput>;
  /** What `executor.open()` returned. */
  openedAt: number;
  events: { session: number; event: SessionEvent }[];
  results: ApplyResult<KvOutput>[];
  close(): Promise<void>;
};

export async function openDiskMember(
  path: string,
  diskUnsafeFaults?: DiskUnsafeFaults,
): Promise<DiskMember> {
  const storage = await LmdbStorage.open({ path, mapSizeBytes: 256 * 1024 ** 2 });
  const machine = new CountingLmdbKv();
  const events: { session: number; event: SessionEvent }[] = [];
  const results: ApplyResult<KvOutput>[] = [];
  const executor = new StateMachineExecutor<unknown, KvOutput, unknown, KvQueryOutput>(machine, {
    store: storage.openMachineStore(),
    onEvent: (session, event) => events.push({ session, event }),
    onApplied: (r) => results.push(r),
    ...(diskUnsafeFaults === undefined ? {} : { diskUnsafeFaults }),
  });
  const openedAt = executor.open();
  return {
    storage,
    machine,
    executor,
    openedAt,
    events,
    results,
    close: async () => {
      executor.close();
      await storage.close();
    },
  };
}

/** Builds consecutive entries from `next`: plain and session commands, session requests. */
export class EntryMaker {
  next: number;
  timeMs = 1_000;
  constructor(next = 1) {
    this.next = next;
  }
  #entry(data: Uint8Array): Entry {
    this.timeMs += 10;
    return { type: 'command', index: this.next++, term: 1, timeMs: this.timeMs, data };
  }
  plain(command: unknown): Entry {
    return this.#entry(encodeEnvelope({ kind: 'plain', data: codec.encode(command) }));
  }
  command(session: number, sequence: number, command: unknown): Entry {
    return this.#entry(
      encodeEnvelope({ kind: 'command', session, sequence, data: codec.encode(command) }),
    );
  }
  register(timeoutMs = 3_600_000): Entry {
    return this.#entry(encodeEnvelope({ kind: 'register', timeoutMs }));
  }
  keepAlive(session: number, commandAck: number, eventAck = 0): Entry {
    return this.#entry(encodeEnvelope({ kind: 'keepAlive', session, commandAck, eventAck }));
  }
  noop(): Entry {
    this.timeMs += 10;
    return { type: 'noop', index: this.next++, term: 1, timeMs: this.timeMs };
  }
}
