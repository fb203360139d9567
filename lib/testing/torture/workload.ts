/**
 * The torture harness's clients and what they record: each client runs one exactly-once session
 * against every member's client address and issues, one at a time, appends of a unique token to a
 * key (`append k "c2.17;"`) and linearizable reads of a key, recording each operation's call and
 * return times and its outcome:
 *
 * - `ok`: answered (an append's answer is the key's whole value after it);
 * - `fail`: refused by an error the protocol marks retryable (it certainly took no effect), or
 *   any failed read (a read takes no effect);
 * - `unknown`: anything else (a TIMEOUT, OUTCOME_UNKNOWN, UNKNOWN_SESSION: it may have been
 *   applied, then or later). After UNKNOWN_SESSION the client opens a new session.
 *
 * Keys rotate every `keyLifetimeMs` and every `appendsPerKeyMax` appends issued per key (`g3.7.k1`),
 * so that no value grows without bound (an append's answer is the whole value) and each key's
 * history, which the checker searches alone, stays short. Tokens are unique in the run, so the
 * final values show every append that took effect, and how many times.
 *
 * Memory: a key's answers are prefixes of one another while the cluster behaves, so an answer that
 * is a prefix of the longest seen for its key is kept as its length, read back through a getter
 * (a long run records millions of them: as strings they filled a 4 GB heap in 12 minutes).
 *
 * @module
 */
import { ClientError, RaftClient } from '../../client/client.ts';
import type { KvCommand, KvOutput, KvQuery, KvQueryOutput } from '../../state/kv.ts';
import type { Operation } from '../linearizability/history.ts';
import type { AppendInput, AppendOutput } from '../session-model.ts';

/** One recorded operation: the checker's form, plus which member-time window it ran in. */
export type TortureOperation = Operation<AppendInput, AppendOutput> & {
  client: string;
  /** The error's code, for failed and unknown operations. */
  error?: string;
};

/** How the clients run. */
export type WorkloadOptions = {
  servers: string[];
  clients: number;
  /** Keys written at a time (each key lives `keyLifetimeMs`). */
  keysPerGeneration: number;
  keyLifetimeMs: number;
  /** Appends issued per key, on average, before the keys rotate. */
  appendsPerKeyMax: number;
  /** Fraction of operations that are reads. */
  readFraction: number;
  requestTimeoutMs: number;
  /** Milliseconds since the run's start, the clock every time is recorded in. */
  nowMs: () => number;
  random: () => number;
};

type Kv = RaftClient<KvCommand, KvOutput, KvQuery, KvQueryOutput>;

/** Clients doing appends and reads until `stop()`; `history` is everything they did. */
export class Workload {
  readonly history: TortureOperation[] = [];
  readonly #o: WorkloadOptions;
  #stopped = false;
  #running: Promise<void>[] = [];
  readonly #clients: Kv[] = [];
  /** Appends issued so far: the count part of the key generation. */
  #appendsIssued = 0;
  /** The longest answer seen per key (see the module comment). */
  readonly #longest = new Map<string, { value: string }>();

  constructor(options: WorkloadOptions) {
    this.#o = options;
  }

  /** Start every client (each opens its session first). */
  async start(): Promise<void> {
    for (let i = 1; i <= this.#o.clients; i++) {
      const client = await this.#connect();
      this.#clients.push(client);
      this.#running.push(this.#run(`c${i}`, i - 1));
    }
  }

  /** Stop issuing; wait for the operations in flight; close the sessions. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
    await Promise.all(this.#clients.map((c) => c.close().catch(() => {})));
  }

  /** Every key any operation touched. */
  keys(): string[] {
    return [...new Set(this.history.map((op) => op.input.key))].sort();
  }

  #connect(): Promise<Kv> {
    return RaftClient.connect<KvCommand, KvOutput, KvQuery, KvQueryOutput>({
      servers: this.#o.servers,
      requestTimeoutMs: this.#o.requestTimeoutMs,
      sessionTimeoutMs: 10_000,
    });
  }

  async #run(name: string, slot: number): Promise<void> {
    const o = this.#o;
    let seq = 0;
    while (!this.#stopped) {
      const generation = `${Math.floor(o.nowMs() / o.keyLifetimeMs)}.${
        Math.floor(this.#appendsIssued / (o.appendsPerKeyMax * o.keysPerGeneration))
      }`;
      const key = `g${generation}.k${Math.floor(o.random() * o.keysPerGeneration)}`;
      const read = o.random() < o.readFraction;
      if (!read) this.#appendsIssued += 1;
      const input: AppendInput = read
        ? { f: 'get', key }
        : { f: 'append', key, value: `${name}.${++seq};` };
      const op = new RecordedOperation(name, o.nowMs(), input);
      this.history.push(op);
      const client = this.#clients[slot]!;
      try {
        if (input.f === 'append') {
          const out = await client.command({ op: 'append', key, value: input.value });
          this.#keepOutput(op, key, (out as { value: string }).value);
        } else {
          const out = await client.query({ op: 'get', key }, 'linearizable');
          this.#keepOutput(op, key, (out as { value: string | null }).value);
        }
        op.outcome = 'ok';
        op.returnMs = o.nowMs();
      } catch (error) {
        op.returnMs = o.nowMs();
        const code = error instanceof ClientError ? error.code : 'ERROR';
        op.error = code;
        op.outcome = input.f === 'get' || (error instanceof ClientError && error.retryable)
          ? 'fail'
          : 'unknown';
        if (code === 'UNKNOWN_SESSION') await client.openSession().catch(() => {});
        await sleep(50);
      }
    }
  }

  /** Set `op.output` to `value`, as a length into the key's longest answer when it is a prefix. */
  #keepOutput(op: RecordedOperation, key: string, value: string | null): void {
    if (value === null) {
      op.output = null;
      return;
    }
    let longest = this.#longest.get(key);
    if (longest === undefined) {
      longest = { value };
      this.#longest.set(key, longest);
    } else if (value.length > longest.value.length && value.startsWith(longest.value)) {
      longest.value = value; // earlier lengths still name the same prefixes
    } else if (!longest.value.startsWith(value)) {
      op.output = value; // not a prefix: a divergence the checker must see as it was
      return;
    }
    op.keepPrefix(longest, value.length);
  }
}

/**
 * A recorded operation whose output may be kept as a prefix length of a shared string (see the
 * module comment); a class, so that millions of them stay small objects of one shape.
 */
class RecordedOperation implements TortureOperation {
  outcome: TortureOperation['outcome'] = 'unknown';
  returnMs: number | null = null;
  error?: string;
  #holder: { value: string } | null = null;
  #length = 0;
  #output: AppendOutput = null;

  readonly client: string;
  readonly callMs: number;
  readonly input: AppendInput;

  constructor(client: string, callMs: number, input: AppendInput) {
    this.client = client;
    this.callMs = callMs;
    this.input = input;
  }

  /** Meaningful when the outcome is `ok` (null before). */
  get output(): AppendOutput {
    return this.#holder === null ? this.#output : this.#holder.value.slice(0, this.#length);
  }

  set output(value: AppendOutput) {
    this.#holder = null;
    this.#output = value;
  }

  /** The output is the first `length` characters of `holder.value` (which only grows). */
  keepPrefix(holder: { value: string }, length: number): void {
    this.#holder = holder;
    this.#length = length;
  }

  toJSON(): TortureOperation {
    const { client, callMs, returnMs, input, outcome, error } = this;
    return {
      client,
      callMs,
      returnMs,
      input,
      outcome,
      ...(error === undefined ? {} : { error }),
      ...(outcome === 'ok' ? { output: this.output } : {}),
    };
  }
}

/** Read `key` linearizably, retrying until `deadlineMs` (the run's clock): its final value. */
export async function readFinal(
  client: Kv,
  key: string,
  deadline: () => boolean,
): Promise<string | null> {
  for (;;) {
    try {
      const out = await client.query({ op: 'get', key }, 'linearizable');
      return (out as { value: string | null }).value;
    } catch (error) {
      if (deadline()) throw error;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
