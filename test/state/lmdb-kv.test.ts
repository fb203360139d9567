// The key-value machine on disk answers exactly as the one in memory: the same outputs, errors,
// watch events and query answers (scans in code-unit order, keys past LMDB's key limit, astral and
// private-use characters) for the same seeded log, across restarts of the one on disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomInt, seededRandom } from '../../lib/core/random.ts';
import type { Entry } from '../../lib/base/messages.ts';
import { type ApplyResult, StateMachineExecutor } from '../../lib/state/executor.ts';
import {
  kvCommand,
  type KvOutput,
  type KvQuery,
  kvQuery,
  type KvQueryOutput,
  KvStateMachine,
} from '../../lib/state/kv.ts';
import type { SessionEvent } from '../../lib/state/sessions.ts';
import { EntryMaker, openDiskMember, tempDir } from './disk-support.ts';

const long = 'L'.repeat(997);
/** Keys that share prefixes, cross the long-key boundary, and order differently by code point. */
const keyParts = ['a', 'b', 'ab', '\u00e9', '\uE000', '\u{1F600}', 'z', ''];
const prefixes = ['', 'a', 'ab', '\u{1F600}', '\uE000', long, `${long}LL`, `${long}LLL`, 'L'];

function randomKey(random: () => number): string {
  const head = random() < 0.3 ? long + 'L'.repeat(randomInt(random, 0, 5)) : '';
  let key = head;
  const parts = randomInt(random, head === '' ? 1 : 0, 3);
  for (let i = 0; i < parts; i++) key += keyParts[randomInt(random, 0, keyParts.length - 1)];
  return key === '' ? 'k' : key;
}

type Outcome = { index: number; ok: boolean; output?: unknown; code?: string; duplicate?: boolean };
function outcome(r: ApplyResult<unknown>): Outcome {
  const base = { index: r.index, ok: r.ok, ...(r.duplicate === true ? { duplicate: true } : {}) };
  return r.ok ? { ...base, output: r.output } : { ...base, code: r.error.code };
}

test('the LMDB key-value machine answers like the in-memory one, restart after restart', async () => {
  const dir = tempDir('lmdb-kv-diff');
  const random = seededRandom(20261122);
  const memoryEvents: { session: number; event: SessionEvent }[] = [];
  const memory = new StateMachineExecutor<unknown, KvOutput, unknown, KvQueryOutput>(
    new KvStateMachine(),
    { onEvent: (session, event) => memoryEvents.push({ session, event }) },
  );
  let disk = await openDiskMember(dir.path);
  try {
    const e = new EntryMaker();
    const sequences = new Map<number, number>();
    const next = (session: number) => {
      const s = (sequences.get(session) ?? 0) + 1;
      sequences.set(session, s);
      return s;
    };
    // Sessions 1, 2, 3, and 4 that watches everything, goes silent and expires by log time.
    let entries: Entry[] = [e.register(), e.register(), e.register(), e.register(2_000)];
    entries.push(e.command(4, 1, kvCommand.watch('')));
    let compared = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = randomInt(random, 1, 60); i > 0; i--) {
        const key = randomKey(random);
        const r = random();
        const command = r < 0.3
          ? kvCommand.put(key, `v${randomInt(random, 0, 9)}`.repeat(randomInt(random, 0, 3)))
          : r < 0.45
          ? kvCommand.append(key, `+${randomInt(random, 0, 9)}`)
          : r < 0.6
          ? kvCommand.delete(key)
          : r < 0.7
          ? kvCommand.cas(key, random() < 0.5 ? null : 'v1', 'c')
          : r < 0.75
          ? kvCommand.get(key)
          : r < 0.82
          ? kvCommand.watch(prefixes[randomInt(random, 0, prefixes.length - 1)]!)
          : r < 0.86
          ? kvCommand.unwatch(prefixes[randomInt(random, 0, prefixes.length - 1)]!)
          : { op: 'put', key: '' }; // malformed: an error for its index on both
        const session = randomInt(random, 0, 3);
        if (session === 0) entries.push(e.plain(command));
        else if (random() < 0.05) {
          entries.push(e.keepAlive(session, sequences.get(session) ?? 0, 3));
        } else entries.push(e.command(session, next(session), command));
      }
      if (round === 20) entries.push(e.noop());
      if (round === 25) entries.push(e.keepAlive(3, 0)); // session 3 stays; 2 may lose watches
      const [m, d] = await Promise.all([
        memory.applyEntries(entries),
        disk.executor.applyEntries(entries),
      ]);
      assert.equal(d.map(outcome), m.map(outcome), `round ${round} outputs`);
      compared += m.length;
      entries = [];
      assert.equal(disk.events, memoryEvents, `round ${round} events`);
      const queries: KvQuery[] = [kvQuery.size()];
      for (const p of prefixes) queries.push(kvQuery.scan(p, randomInt(random, 1, 40)));
      for (let i = 0; i < 5; i++) queries.push(kvQuery.get(randomKey(random)));
      for (const q of queries) {
        assert.equal(
          disk.executor.query(q),
          memory.query(q),
          `round ${round} ${JSON.stringify(q)}`,
        );
      }
      assert.equal(disk.executor.sessions.toData(), memory.sessions.toData(), `round ${round}`);
      if (round % 8 === 7) {
        await disk.close();
        disk = await openDiskMember(dir.path);
        assert.is(disk.openedAt, memory.lastAppliedIndex, 'reopened where it stood');
        disk.events.push(...memoryEvents);
      }
    }
    assert.ok(compared > 1000, `${compared} results compared`);
    assert.ok(memoryEvents.some((x) => x.session === 4), 'session 4 heard of changes');
    assert.is(memory.sessions.get(4), undefined, 'session 4 expired');
    const all = memory.query(kvQuery.scan('', 10_000)) as { entries: [string, string][] };
    assert.ok(all.entries.some(([k]) => k.length > 1000), 'long keys were stored');
  } finally {
    memory.close();
    await disk.close();
    dir.remove();
  }
});

test.run();
