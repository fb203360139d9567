// edgeraft torture, short: real member processes under the runtime running the test, with kills,
// pauses and partitions, end healthy (linearizable, no acknowledged append lost or applied twice),
// and a planted member bug turns the verdict to failed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkWrites, runTorture } from '../../lib/testing/torture/harness.ts';
import { startLocalTarget } from '../../lib/testing/torture/target.ts';
import { availability, writeReport } from '../../lib/testing/torture/report.ts';
import { parseDuration, parseFaults } from '../../lib/cli/torture.ts';
import { main } from '../../lib/cli.ts';
import { clockFilePollMs, skewedClock } from '../../lib/server/clock.ts';
import { writeFileSync } from 'node:fs';

const quick = {
  holdMsMin: 1_000,
  holdMsMax: 2_500,
  gapMsMin: 500,
  gapMsMax: 1_500,
  settleMs: 2_500,
};

test('a short torture with kills, pauses and partitions ends ok, with a report', async () => {
  const logDir = mkdtempSync(join(tmpdir(), 'edgeraft-torture-logs-'));
  const result = await runTorture({
    ...quick,
    memberLogDir: logDir,
    durationMs: 12_000,
    members: 3,
    clients: 3,
    kinds: ['kill', 'stop', 'partition', 'one-way'],
    seed: 7,
  });
  const avail = availability(result);
  const where = `${result.summary}\n${result.linearizability.explanation ?? ''}`;
  assert.is(result.verdict, 'ok', where);
  assert.ok(result.faults.length >= 1, `faults: ${result.faults.length}`);
  assert.ok(result.faults.every((f) => f.endMs > f.startMs), 'every fault healed');
  assert.ok(avail.operations.ok > 100, `ok operations: ${avail.operations.ok}`);
  assert.is(result.writes.lost.length, 0);
  assert.ok(result.writes.acknowledgedAppends > 50);
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-torture-test-'));
  try {
    writeReport(result, dir);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.is(json.verdict, 'ok');
    assert.is(json.availability.perFault.length, result.faults.length);
    const svg = readFileSync(join(dir, 'timeline.svg'), 'utf8');
    assert.match(svg, /^<svg /);
    assert.ok(result.faults.every((f) => svg.includes(f.kind)), 'every fault drawn');
    assert.ok(existsSync(join(dir, 'report.html')));
    // Each member's log is kept, across its restarts: every start is in it.
    for (const id of ['n1', 'n2', 'n3']) {
      const text = readFileSync(join(logDir, `${id}.log`), 'utf8');
      const starts = text.split('\n').filter((l) => / serving: peer /.test(l)).length;
      const kills = result.faults.filter((f) => f.kind === 'kill' && f.targets.includes(id)).length;
      assert.ok(starts >= 1 + kills, `${id}.log: ${starts} starts, ${kills} kills`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  }
});

// The plant answers each command with the output of the entry after it: the members' answers
// lie, and the checker must say so. (Retried commands applied again, `applyDuplicateSequences`
// with `relogRetries`, are caught as "applied twice" too, but only when a fault strikes between a
// commit and its answer, which a run this short does not promise.)
test('a planted member bug, answers from the wrong entry, is caught', async () => {
  const result = await runTorture({
    ...quick,
    durationMs: 8_000,
    members: 3,
    clients: 3,
    kinds: ['stop'],
    seed: 5,
    plantedFaults: ['resolveWithNextIndex'],
  });
  assert.is(result.verdict, 'failed', result.summary);
  assert.is(result.linearizability.verdict, 'not linearizable');
  assert.match(result.linearizability.explanation ?? '', /Not linearizable/);
});

// The adapter way in: a target the caller made, which can make only some kinds of fault; the
// others are skipped and the report says so.
test('a target of its own: only the faults it can make, the rest said skipped', async () => {
  const root = mkdtempSync(join(tmpdir(), 'edgeraft-torture-target-'));
  try {
    const local = await startLocalTarget({
      members: 3,
      root,
      plantedFaults: [],
      nowMs: () => 0,
      log: () => {},
    });
    const result = await runTorture({
      ...quick,
      durationMs: 8_000,
      members: 0, // unused with a target
      clients: 2,
      kinds: ['partition', 'kill'],
      seed: 11,
      target: { ...local, kinds: ['partition'], description: 'a partition-only target' },
    });
    assert.is(result.verdict, 'ok', result.summary);
    assert.ok(result.faults.length >= 1);
    assert.ok(result.faults.every((f) => f.kind === 'partition'));
    assert.ok(
      result.notes.some((n) => /^kill: this target cannot make it/.test(n)),
      result.notes.join('\n'),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// The write check alone: what it calls lost, duplicated and from nowhere.
test('checkWrites finds lost, duplicated and phantom appends', () => {
  const op = (client: string, value: string, outcome: 'ok' | 'unknown' | 'fail') => ({
    client,
    callMs: 0,
    returnMs: 1,
    input: { f: 'append' as const, key: 'k', value },
    outcome,
  });
  const check = checkWrites(
    [op('c1', 'c1.1;', 'ok'), op('c1', 'c1.2;', 'ok'), op('c2', 'c2.1;', 'unknown')],
    new Map([['k', 'c1.1;c1.1;c2.1;x.9;']]),
    [],
  );
  assert.equal(check.lost, ['k: c1.2']);
  assert.equal(check.duplicated, ['k: c1.1 ×2']);
  assert.equal(check.phantom, ['k: x.9']);
  assert.is(check.unknownApplied, 1);
});

test('torture flags: durations, fault kinds, and errors naming the flag', async () => {
  assert.is(parseDuration('90s', 'duration'), 90_000);
  assert.is(parseDuration('5m', 'duration'), 300_000);
  assert.is(parseDuration('1500ms', 'duration'), 1_500);
  assert.throws(() => parseDuration('soon', 'duration'), /Flag --duration/);
  assert.equal(parseFaults('kill,clock'), ['kill', 'clock']);
  assert.throws(() => parseFaults('kill,meteor'), /Flag --faults: unknown fault "meteor"/);
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    assert.is(await main(['torture', '--members', 'x']), 2);
    assert.is(await main(['torture', '--faults', 'meteor']), 2);
    assert.is(await main(['torture', '--runtime', 'java']), 2);
  } finally {
    console.error = original;
  }
  assert.match(errors.join('\n'), /--members/);
  assert.match(errors.join('\n'), /--faults/);
  assert.match(errors.join('\n'), /--runtime/);
});

// The clock testing hook: an offset moves the member's time at once, a rate makes it and its
// timers run fast; an empty file is no skew.
test('the skewed clock follows its file: offset, rate, and timers scaled', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-clock-'));
  const file = join(dir, 'clock.json');
  const clock = skewedClock(file);
  try {
    assert.ok(Math.abs(clock.nowMs() - Date.now()) < 50, 'no file: no skew');
    writeFileSync(file, JSON.stringify({ offsetMs: 60_000, rate: 4 }));
    await new Promise((r) => setTimeout(r, clockFilePollMs * 3));
    const skew = clock.nowMs() - Date.now();
    assert.ok(skew > 59_000 && skew < 62_000, `offset: ${skew}`);
    const started = performance.now();
    await new Promise<void>((r) => clock.setTimer(400, r));
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 300, `a 400 ms timer at rate 4 took ${tookMs} ms`);
    writeFileSync(file, '');
    await new Promise((r) => setTimeout(r, clockFilePollMs * 3));
    assert.ok(Math.abs(clock.nowMs() - Date.now()) < 2_000, 'healed: the skew is gone');
  } finally {
    clock.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
