// Proves `RaftServer.ready()`: it waits until the member knows a leader that can take writes
// (then a proposal on that leader succeeds at once), rejects with a TimeoutError naming the limit
// while no majority runs, refuses a bad limit naming the option, and rejects once stopped.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ShutdownError, TimeoutError } from '../../lib/base/errors.ts';
import { cleanUp, forget, members, startNode, stopCluster } from './in-process.ts';

const test = suite('RaftServer.ready');
test.after(cleanUp);

test('one member of three: TimeoutError naming timeoutMs; then all three agree on a writable leader', async () => {
  const nodes = await members(3);
  try {
    const first = await startNode(nodes[0]!, nodes);
    // The founding configuration, committed at bootstrap in no leader's term: not yet writable.
    const bootstrapIndex = first.status().commitIndex;
    const startedMs = Date.now();
    try {
      await first.ready({ timeoutMs: 300 });
      assert.unreachable('ready without a majority');
    } catch (error) {
      assert.instance(error, TimeoutError, String(error));
      assert.match((error as Error).message, /timeoutMs 300 ms/);
    }
    assert.ok(Date.now() - startedMs >= 290, 'waited for the limit');
    for (
      const [options, kind] of [
        [{ timeoutMs: 0 }, RangeError],
        [{ timeoutMs: '5' }, TypeError],
        [{ timeout: 5 }, TypeError],
      ] as const
    ) {
      assert.throws(() => first.ready(options as never), (e: Error) => e instanceof kind);
    }
    // Each member's commit index when its ready() resolves: past the bootstrap entries, at an
    // entry of the new leader's term.
    const commitAtReady = (s: typeof first) =>
      s.ready().then((a) => ({ ...a, commitIndex: s.status().commitIndex }));
    const waiting = commitAtReady(first);
    await Promise.all(nodes.slice(1).map((n) => startNode(n, nodes)));
    const servers = nodes.map((n) => n.server!);
    const answers = [await waiting, ...await Promise.all(servers.slice(1).map(commitAtReady))];
    const leaderId = answers[0]!.leaderId;
    for (const a of answers) {
      assert.is(a.leaderId, leaderId, 'every member names one leader');
      assert.ok(a.commitIndex > bootstrapIndex, `commit ${a.commitIndex} past ${bootstrapIndex}`);
    }
    const leader = servers.find((s) => s.status().id === leaderId)!;
    assert.ok(leader !== undefined && leader.role === 'leader', `${leaderId} leads`);
    assert.equal(await leader.propose({ op: 'put', key: 'k', value: 'v' }), { previous: null });
    assert.equal(await leader.query({ op: 'get', key: 'k' }, 'linearizable'), { value: 'v' });
    const s = servers[1]!;
    await s.stop();
    forget(s);
    try {
      await s.ready();
      assert.unreachable('ready on a stopped member');
    } catch (error) {
      assert.instance(error, ShutdownError, String(error));
    }
  } finally {
    await stopCluster(nodes);
  }
});

test.run();
