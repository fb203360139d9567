// The event-loop stall watch: a loop blocked for 300 ms is counted with about that length and
// reported as a warning; the loop's ordinary work (a busy but yielding loop) is not a stall; and a
// running member reports its stalls in `status().eventLoop` and on /metrics.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  StallWatch,
  stallWatchIntervalMs,
  stallWatchThresholdMs,
} from '../../lib/server/stall-watch.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Member } from '../../lib/base/messages.ts';
import { freePort } from '../../lib/cli/processes.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the loop is blocked */ }
}

test('a blocked loop is one stall of about its length, and warned about', async () => {
  const warned: number[] = [];
  const watch = new StallWatch((ms) => warned.push(ms));
  watch.start();
  try {
    await sleep(3 * stallWatchIntervalMs);
    block(300);
    await sleep(3 * stallWatchIntervalMs);
    const counts = watch.snapshot();
    assert.is(counts.stalls, 1, JSON.stringify(counts));
    assert.ok(counts.longestMs >= 300 - stallWatchIntervalMs, JSON.stringify(counts));
    assert.ok(counts.longestMs < 300 + 200, JSON.stringify(counts));
    assert.equal(warned, [counts.longestMs]);
  } finally {
    watch.stop();
  }
});

test('a loop that yields between short steps has no stall', async () => {
  const watch = new StallWatch(() => {});
  watch.start();
  try {
    const end = performance.now() + 500;
    while (performance.now() < end) {
      block(stallWatchThresholdMs / 4);
      await sleep(0);
    }
    assert.is(watch.snapshot().stalls, 0);
  } finally {
    watch.stop();
  }
});

test('a member reports its stalls in its status and on /metrics, and logs them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-stall-'));
  const warnings: string[] = [];
  const logger = {
    info: () => {},
    debug: () => {},
    warn: (message: string) => warnings.push(message),
  };
  const member: Member = {
    id: 'a',
    type: 'ACTIVE',
    address: `127.0.0.1:${await freePort()}`,
    clientAddress: `127.0.0.1:${await freePort()}`,
  };
  const server = await RaftServer.start({
    id: 'a',
    cluster: 'stall',
    dataDir: dir,
    peerAddress: member.address!,
    clientAddress: member.clientAddress!,
    members: [member],
    stateMachine: new KvStateMachine(),
    logger,
  });
  try {
    await sleep(3 * stallWatchIntervalMs);
    assert.is(server.status().eventLoop.stalls, 0);
    block(300);
    await sleep(3 * stallWatchIntervalMs);
    const { stalls, longestMs } = server.status().eventLoop;
    assert.is(stalls, 1);
    assert.ok(longestMs >= 250, String(longestMs));
    assert.match(server.metricsText(), /^edgeraft_event_loop_stalls_total\{member="a"\} 1$/m);
    assert.ok(warnings.some((w) => w.startsWith('event loop blocked for')), warnings.join('\n'));
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
