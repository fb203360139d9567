// The README's state-machine example, run through the executor: it compiles and behaves as shown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApplyContext, Commit, StateMachine } from '../../mod.ts';
import { cborCodec, StateMachineExecutor } from '../../mod.ts';
import { encodeEnvelope } from '../../lib/state/envelope.ts';

/** A counter whose total decays to zero one minute (of log time) after the last addition. */
class Counter implements StateMachine<{ add: number }, number, 'total', number> {
  #total = 0;
  #resetAtMs = 0;
  apply(commit: Commit<{ add: number }>, ctx: ApplyContext): number {
    // commit.index, commit.term, commit.timeMs: the leader's log time, never the local clock.
    this.#resetAtMs = commit.timeMs + 60_000;
    ctx.schedule(60_000, () => {
      if (ctx.timeMs >= this.#resetAtMs) this.#total = 0; // fired by log time, identically everywhere
    });
    return (this.#total += commit.command.add);
  }
  query(): number {
    return this.#total;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const total = this.#total; // captured at the call; applying goes on while it streams
    return (async function* () {
      yield new TextEncoder().encode(String(total));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const c of chunks) text += new TextDecoder().decode(c);
    this.#total = Number(text);
  }
}

const codec = cborCodec<{ add: number }>();
const command = (index: number, timeMs: number, add: number) => ({
  type: 'command' as const,
  index,
  term: 1,
  timeMs,
  data: encodeEnvelope({ kind: 'plain', data: codec.encode({ add }) }),
});

test('README Counter: outputs per index, decay by log time, snapshot captured at the call', async () => {
  const machine = new Counter();
  const executor = new StateMachineExecutor(machine, { codec });
  const results = await executor.applyEntries([command(1, 1_000, 2), command(2, 2_000, 3)]);
  assert.equal(results.map((r) => r.ok && r.output), [2, 5]);
  const snap = executor.takeSnapshot();
  await executor.applyEntries([command(3, 3_000, 10)]);
  assert.is(executor.query('total'), 15);
  // A no-op two minutes later in log time fires the timers: the total decays.
  await executor.applyEntries([{ type: 'noop', index: 4, term: 1, timeMs: 200_000 }]);
  assert.is(executor.query('total'), 0);
  const restored = new StateMachineExecutor(new Counter(), { codec });
  await restored.restore(snap.meta, snap.chunks);
  assert.is(restored.query('total'), 5, 'the snapshot holds the state at the call, not later');
});

test.run();
