// The session table's kept results: at most `resultsMax` per session, the oldest dropped first,
// whatever mix of keeps, keep-alive acknowledgements, snapshots (toData / load), removals and
// re-registrations comes, held to a plain model (a sorted list per session). `keep` finds the
// oldest from a floor it maintains rather than by iterating the Map (see sessions.ts), so a floor
// left too high or never moved would drop the wrong result here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CachedResult, SessionTable } from '../../lib/state/sessions.ts';
import { generator } from '../support/random.ts';

const result = (index: number): CachedResult => ({ index, ok: true, output: index });

test('a full table drops its oldest result first', () => {
  const table = new SessionTable({ resultsMax: 3, eventsMax: 8 });
  const s = table.register(1, 0, 1_000);
  for (let seq = 1; seq <= 5; seq++) table.keep(s, seq, result(seq));
  assert.equal([...s.results.keys()], [3, 4, 5]);
  // Acknowledged results go; the next keeps then trim from the oldest left.
  table.acknowledge(s, 3, 0);
  for (let seq = 6; seq <= 8; seq++) table.keep(s, seq, result(seq));
  assert.equal([...s.results.keys()], [6, 7, 8]);
});

for (const seed of [1, 2, 3]) {
  test(`random keeps, acknowledgements, snapshots and removals match a plain model (seed ${seed})`, () => {
    const random = generator(seed);
    const resultsMax = 1 + random(40);
    let table = new SessionTable({ resultsMax, eventsMax: 8 });
    /** Per session id: the next sequence and the sequences the model keeps, oldest first. */
    const model = new Map<number, { next: number; kept: number[] }>();
    let nextId = 1;
    for (let step = 0; step < 5_000; step++) {
      const what = random(100);
      const ids = [...model.keys()];
      if (ids.length === 0 || what < 3) {
        const id = nextId++;
        table.register(id, step, 1_000_000);
        model.set(id, { next: 1, kept: [] });
        continue;
      }
      const id = ids[random(ids.length)]!;
      const m = model.get(id)!;
      const s = table.get(id)!;
      if (what < 80) {
        table.keep(s, m.next, result(m.next));
        m.kept.push(m.next);
        if (m.kept.length > resultsMax) m.kept.shift();
        m.next++;
        table.advanceSequence(s);
      } else if (what < 92) {
        const ack = m.next - 1 - random(resultsMax + 2);
        table.acknowledge(s, ack, 0);
        m.kept = m.kept.filter((seq) => seq > ack);
      } else if (what < 96) {
        // Loaded into a fresh table, or into the same one (which forgets what it held).
        const data = table.toData();
        if (random(2) === 0) table = new SessionTable({ resultsMax, eventsMax: 8 });
        table.load(data);
      } else {
        table.remove(id);
        model.delete(id);
      }
      for (const [mid, mm] of model) {
        assert.equal(
          [...table.get(mid)!.results.keys()],
          mm.kept,
          `session ${mid}, seed ${seed}, step ${step}`,
        );
      }
    }
  });
}

test.run();
