// Proves the metrics a real 3-member cluster serves over real HTTP: every line of /metrics passes
// the strict exposition parser; the values agree with server.status() (term, commit and applied
// index) and with the writes made (proposals committed grows by exactly their number); per-peer
// bytes and round trips are counted for both followers; no counter goes down between scrapes;
// /health and /ready flip to 503 when the member loses its leader, and are 503 before one is known
// and while the member is still starting (restoring its snapshot), and a failed member says why;
// snapshots taken, sent and installed are counted on the members that did them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { checkNoDecrease, type Family, parseExposition, valueOf } from '../support/prometheus.ts';
import {
  cleanUp,
  type KvServer,
  leaderOf,
  members,
  type Node,
  startCluster,
  startNode,
  stopNode,
} from './in-process.ts';
import { sleep, waitFor } from './support.ts';
import { freePort } from '../../lib/cli/processes.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';

const test = suite('metrics over HTTP');
test.after(cleanUp);

const withMetrics = { metricsAddress: '127.0.0.1:0' };

async function get(server: KvServer, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${server.metricsAddress}${path}`);
  return { status: res.status, body: await res.text() };
}

async function scrape(server: KvServer): Promise<Map<string, Family>> {
  const res = await fetch(`http://${server.metricsAddress}/metrics`);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await res.text());
}

/** Scrape until the scraped commit index and term are the ones status() reports around it. */
async function agreeingScrape(server: KvServer): Promise<Map<string, Family>> {
  return await waitFor('a scrape that agrees with status()', async () => {
    const before = server.status();
    const m = await scrape(server);
    const after = server.status();
    const member = { member: server.id };
    const same = before.commitIndex === after.commitIndex && before.term === after.term &&
      before.lastAppliedIndex === after.lastAppliedIndex;
    if (!same) return undefined;
    // Entries applied since start: the applied index, for a fresh member that installed nothing.
    if (after.snapshotsInstalled === 0 && server.recovery.appliedIndex === 0) {
      const applied = valueOf(m, 'edgeraft_server_applied_entries_total', member);
      if (applied !== after.lastAppliedIndex) return undefined; // its batch is just ending
    }
    assert.is(valueOf(m, 'edgeraft_server_term', member), after.term);
    assert.is(valueOf(m, 'edgeraft_server_commit_index', member), after.commitIndex);
    assert.is(valueOf(m, 'edgeraft_server_applied_index', member), after.lastAppliedIndex);
    return m;
  }, 5_000);
}

let nodes: Node[] = [];

/** Counter `name` summed over every member's scrape. */
function total(scrapes: Map<string, Family>[], name: string): number {
  return scrapes.reduce((sum, m, i) => sum + valueOf(m, name, { member: nodes[i]!.server!.id }), 0);
}

/**
 * Propose on whichever member leads, again after a refusal or a lost proposal (a leader change
 * under load). Returns the proposals that failed after they were appended (dropped, timed out):
 * exactly those `edgeraft_server_proposals_failed_total` counts.
 */
async function write(key: string): Promise<number> {
  let failedAfterAppend = 0;
  for (let attempt = 0; attempt < 20; attempt++) {
    const leader = await leaderOf(nodes);
    try {
      await leader.propose({ op: 'put', key, value: key });
      return failedAfterAppend;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'NOT_LEADER' && code !== 'LEADERSHIP_TRANSFER') failedAfterAppend += 1;
    }
  }
  throw new Error(`No leader took ${key} in 20 attempts`);
}

test('every member serves parseable metrics that agree with status() and with the writes made', async () => {
  nodes = await startCluster(3, withMetrics);
  for (const n of nodes) assert.match(n.server!.metricsAddress!, /^127\.0\.0\.1:\d+$/);
  let failed = await write('warm');
  const first = await Promise.all(nodes.map((n) => agreeingScrape(n.server!)));
  const writes = 25;
  for (let i = 0; i < writes; i++) failed += await write(`k${i}`);
  const second = await Promise.all(nodes.map((n) => agreeingScrape(n.server!)));
  const committed = 'edgeraft_server_proposals_committed_total';
  assert.is(
    total(second, committed) - total(first, committed),
    writes,
    'proposals committed (over all members) grew by the number of writes',
  );
  assert.is(total(second, 'edgeraft_server_proposals_failed_total'), failed);
  nodes.forEach((_, i) => checkNoDecrease(first[i]!, second[i]!));

  const leader = await leaderOf(nodes);
  const m = await agreeingScrape(leader);
  const me = { member: leader.id };
  assert.is(valueOf(m, 'edgeraft_server_has_leader', me), 1);
  assert.is(valueOf(m, 'edgeraft_server_is_leader', me), 1);
  assert.ok(valueOf(m, 'edgeraft_server_leader_changes_seen_total', me) >= 1);
  assert.is(valueOf(m, 'edgeraft_server_proposals_pending', me), 0);
  assert.ok(valueOf(m, 'edgeraft_disk_write_duration_seconds_count', me) >= writes);
  assert.ok(valueOf(m, 'edgeraft_server_apply_duration_seconds_count', me) >= 1);
  assert.ok(valueOf(m, 'edgeraft_server_applied_entries_total', me) >= writes);

  const followers = nodes.map((n) => n.server!).filter((s) => s !== leader);
  await waitFor('a round trip to each follower', async () => {
    const m = await scrape(leader);
    return followers.every((f) =>
        valueOf(m, 'edgeraft_network_peer_round_trip_time_seconds_count', {
          ...me,
          peer: f.id,
        }) > 0
      )
      ? true
      : undefined;
  }, 5_000);
  for (const f of followers) {
    const peer = { ...me, peer: f.id };
    assert.ok(valueOf(m, 'edgeraft_network_peer_sent_bytes_total', peer) > 1_000);
    assert.ok(valueOf(m, 'edgeraft_network_peer_received_bytes_total', peer) > 0);
    // The follower's view: a leader known, not leading, the same commit index once caught up.
    const fm = await agreeingScrape(f);
    assert.is(valueOf(fm, 'edgeraft_server_has_leader', { member: f.id }), 1);
    assert.is(valueOf(fm, 'edgeraft_server_is_leader', { member: f.id }), 0);
    assert.ok(
      valueOf(fm, 'edgeraft_network_peer_received_bytes_total', { member: f.id, peer: leader.id }) >
        1_000,
    );
  }
  // No client connection yet on the leader's client port.
  assert.is(valueOf(m, 'edgeraft_client_connections', me), 0);
});

// The figure for the report: what one scrape costs on the leader (render and HTTP, loopback).
test('a scrape is cheap', async () => {
  const leader = await leaderOf(nodes);
  const rounds = 50;
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) bytes = (await get(leader, '/metrics')).body.length;
  const httpMs = (performance.now() - t0) / rounds;
  const t1 = performance.now();
  for (let i = 0; i < rounds; i++) leader.metricsText();
  const renderMs = (performance.now() - t1) / rounds;
  console.log(
    `  scrape: ${bytes} bytes, render ${renderMs.toFixed(3)} ms, over HTTP ${httpMs.toFixed(2)} ms`,
  );
  assert.ok(bytes > 1_000);
});

// Prometheus's own checker, where it is installed (Debian: `apt-get install prometheus`, which
// `.ci/run` does): every member's /metrics, leader and followers, passes `promtool check metrics`
// (the exposition format and Prometheus's naming rules). Without promtool the test says so and
// checks nothing more than the parser above did.
test("promtool check metrics accepts every member's /metrics", async () => {
  const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    console.log('  promtool: not found on PATH (Debian: apt-get install prometheus); not checked');
    return;
  }
  for (const n of nodes) {
    const { status, body } = await get(n.server!, '/metrics');
    assert.is(status, 200);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.is(r.status, 0, `promtool on ${n.server!.id}: ${r.stdout}${r.stderr}`);
    assert.is(`${r.stdout}${r.stderr}`.trim(), '', `promtool lint on ${n.server!.id}`);
  }
  console.log(`  promtool check metrics: ${nodes.length} members, no problem`);
});

test('/health and /ready are 200 with a leader, 503 once the member has lost it', async () => {
  const leader = await leaderOf(nodes);
  const survivor = nodes.find((n) => n.server === leader)!;
  assert.equal(await get(leader, '/health'), { status: 200, body: '{"health":"true"}\n' });
  assert.equal(await get(leader, '/ready'), { status: 200, body: '{"ready":"true"}\n' });
  const before = await scrape(leader);
  for (const n of nodes) if (n !== survivor) await stopNode(n);
  // Check quorum: cut off from a majority, the leader steps down and knows no leader.
  const health = await waitFor('503 from /health', async () => {
    const r = await get(leader, '/health');
    return r.status === 503 ? r : undefined;
  }, 10_000);
  assert.equal(JSON.parse(health.body), { health: 'false', reason: 'no leader' });
  const ready = await get(leader, '/ready');
  assert.is(ready.status, 503);
  assert.equal(JSON.parse(ready.body), { ready: 'false', reason: 'no leader' });
  const after = await scrape(leader);
  assert.is(valueOf(after, 'edgeraft_server_has_leader', { member: leader.id }), 0);
  checkNoDecrease(before, after);
  await stopNode(survivor);
});

test('/ready is 503 until a leader is known, then 200', async () => {
  const fresh = await members(3);
  const first = await startNode(fresh[0]!, fresh, withMetrics);
  // Alone of three, it can never elect a leader.
  for (const path of ['/ready', '/health']) {
    const r = await get(first, path);
    assert.is(r.status, 503, path);
    assert.is(JSON.parse(r.body).reason, 'no leader');
  }
  await startNode(fresh[1]!, fresh, withMetrics);
  await startNode(fresh[2]!, fresh, withMetrics);
  await waitFor('200 from /ready', async () => {
    const r = await get(first, '/ready');
    return r.status === 200 ? r : undefined;
  }, 10_000);
  // A member that is stopping is not ready at once (its port closes when it has stopped).
  const stopping = first.stop();
  const r = await get(first, '/ready').catch(() => null);
  if (r !== null) assert.equal(JSON.parse(r.body), { ready: 'false', reason: 'stopping' });
  await stopping;
  for (const n of fresh.slice(1)) await stopNode(n);
});

// A member restoring a snapshot at start is not serving yet: the probes say "starting".
test('/ready and /health are 503 "starting" while the member restores its snapshot', async () => {
  const solo = await members(1);
  const server = await startNode(solo[0]!, solo, { snapshotEntriesThreshold: 5 });
  await leaderOf(solo);
  for (let i = 0; i < 10; i++) await server.propose({ op: 'put', key: `r${i}`, value: `${i}` });
  await waitFor('a snapshot', () => server.status().snapshotIndex > 0 || undefined, 5_000);
  await stopNode(solo[0]!);
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  let restoring = false;
  class SlowRestore extends KvStateMachine {
    override async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
      restoring = true;
      await sleep(1_000);
      return await super.restore(chunks);
    }
  }
  const starting = startNode(solo[0]!, solo, { metricsAddress, stateMachine: new SlowRestore() });
  await waitFor('the restore under way', () => restoring || undefined, 5_000);
  for (const path of ['/ready', '/health']) {
    const r = await fetch(`http://${metricsAddress}${path}`);
    assert.is(r.status, 503, path);
    assert.is(((await r.json()) as { reason: string }).reason, 'starting');
  }
  const m = await fetch(`http://${metricsAddress}/metrics`);
  assert.is(m.status, 503);
  await m.text();
  const restarted = await starting;
  await waitFor('200 from /ready', async () => {
    const r = await get(restarted, '/ready');
    return r.status === 200 || undefined;
  }, 10_000);
  await stopNode(solo[0]!);
});

// A member that failed on its own keeps answering on its metrics port, saying why, until stopped.
test('a failed member says so: /health 503 with the failure, edgeraft_server_failed 1', async () => {
  const solo = await members(1);
  class BrokenSnapshot extends KvStateMachine {
    override snapshot(): AsyncIterable<Uint8Array> {
      throw new Error('planted snapshot failure');
    }
  }
  const server = await startNode(solo[0]!, solo, {
    ...withMetrics,
    stateMachine: new BrokenSnapshot(),
  });
  await leaderOf(solo);
  await server.propose({ op: 'put', key: 'x', value: 'y' });
  assert.is((await get(server, '/health')).status, 200);
  await server.takeSnapshot().catch(() => {});
  const health = await waitFor('503 from /health', async () => {
    const r = await get(server, '/health');
    return r.status === 503 ? r : undefined;
  }, 5_000);
  assert.equal(JSON.parse(health.body), {
    health: 'false',
    reason: 'failed: planted snapshot failure',
  });
  assert.is(valueOf(await scrape(server), 'edgeraft_server_failed', { member: server.id }), 1);
  await stopNode(solo[0]!);
  await fetch(`http://${server.metricsAddress}/health`).then(
    () => assert.unreachable('the port is closed after stop()'),
    () => {},
  );
});

test('snapshots taken, sent and installed are counted where they happen', async () => {
  const small = { ...withMetrics, snapshotEntriesThreshold: 20, compactionTrailingEntries: 0 };
  const group = await startCluster(3, small);
  let leader = await leaderOf(group);
  const lagging = group.find((n) => n.server !== leader)!;
  const behind = lagging.server!.status();
  await stopNode(lagging);
  for (let i = 0; i < 60; i++) await leader.propose({ op: 'put', key: `s${i}`, value: `${i}` });
  await waitFor('a log compacted past the stopped follower', () => {
    const s = leader.status();
    return s.firstIndex > behind.lastIndex + 1 || undefined;
  }, 10_000);
  const follower = await startNode(lagging, group, small);
  await waitFor(
    'the snapshot installed',
    () => follower.status().snapshotsInstalled >= 1 || undefined,
    20_000,
  );
  leader = await leaderOf(group);
  const lm = await scrape(leader);
  const ls = leader.status();
  assert.ok(ls.snapshotsSent >= 1);
  assert.is(valueOf(lm, 'edgeraft_snapshots_sent_total', { member: leader.id }), ls.snapshotsSent);
  assert.ok(valueOf(lm, 'edgeraft_snapshots_taken_total', { member: leader.id }) >= 1);
  const fm = await scrape(follower);
  assert.is(
    valueOf(fm, 'edgeraft_snapshots_installed_total', { member: follower.id }),
    follower.status().snapshotsInstalled,
  );
  assert.ok(valueOf(fm, 'edgeraft_server_snapshot_index', { member: follower.id }) > 0);
  for (const n of group) await stopNode(n);
});

test.run();
