// Proves the log rate limiter the client port uses: at most N lines of one kind (the same text up
// to its numbers) per interval, then one summary line at the interval's end that counts the rest
// exactly; kinds are limited independently; flush reports what is pending; the kind table is
// bounded.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { logKindsMax, LogLimiter, similarKind } from '../../lib/transport/log-limiter.ts';
import { waitFor } from './support.ts';

const test = suite('log limiter');

function recording() {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      warn: (m: string) => void lines.push(`warn ${m}`),
      info: (m: string) => void lines.push(`info ${m}`),
      debug: (m: string) => void lines.push(`debug ${m}`),
    },
  };
}

// Lines that differ only in their numbers are one kind; the level is part of the kind.
test('a kind is the level and the text with its numbers masked', () => {
  assert.is(
    similarKind('warn', 'Closing client 127.0.0.1:40001: idle 12 ms'),
    similarKind('warn', 'Closing client 10.0.0.7:5: idle 3400 ms'),
  );
  assert.is.not(similarKind('warn', 'a 1'), similarKind('info', 'a 1'));
  assert.is.not(similarKind('warn', 'Frame too large: 9'), similarKind('warn', 'Idle: 9'));
});

// 100 lines of one kind and 2 of another within the interval: 3 + 2 are written, and when the
// interval ends one summary counts the other 97, quoting the first suppressed line.
test('at most N lines per kind per interval, then one exact summary', async () => {
  const r = recording();
  const limiter = new LogLimiter(r.logger, { linesPerKindMax: 3, intervalMs: 200 });
  const log = limiter.logger();
  for (let i = 0; i < 100; i++) log.warn(`Closing client 127.0.0.1:${40_000 + i}: idle`);
  log.info('Socket error: 1');
  log.info('Socket error: 2');
  log.debug('debug lines pass 1');
  assert.is(r.lines.length, 6);
  assert.is(r.lines[2], 'warn Closing client 127.0.0.1:40002: idle');
  await waitFor('the summary', () => r.lines.length === 7 || undefined, 2_000);
  assert.is(
    r.lines[6],
    'warn Suppressed 97 similar warnings in 200 ms: Closing client 127.0.0.1:40003: idle',
  );
  assert.is(limiter.writtenCount + limiter.suppressedCount, 102);
  // A new interval: lines are written again.
  log.warn('Closing client 127.0.0.1:1: idle');
  assert.is(r.lines.length, 8);
});

// flush (called when the owner closes) writes pending summaries at once, so none is lost.
test('flush writes the pending summaries', () => {
  const r = recording();
  const limiter = new LogLimiter(r.logger, { linesPerKindMax: 1, intervalMs: 60_000 });
  const log = limiter.logger();
  for (let i = 0; i < 5; i++) log.warn(`Refusing client ${i}`);
  for (let i = 0; i < 3; i++) log.info(`Closed ${i}`);
  limiter.flush();
  assert.equal(r.lines, [
    'warn Refusing client 0',
    'info Closed 0',
    'warn Suppressed 4 similar warnings in 60000 ms: Refusing client 1',
    'info Suppressed 2 similar messages in 60000 ms: Closed 1',
  ]);
});

// Ever-different kinds cannot grow the table without bound: past logKindsMax they share one.
test('the kind table is bounded', () => {
  const r = recording();
  const limiter = new LogLimiter(r.logger, { linesPerKindMax: 1, intervalMs: 60_000 });
  const letters = (n: number) => n.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!);
  for (let i = 0; i < logKindsMax + 50; i++) limiter.logger().warn(`kind ${letters(i)}`);
  assert.is(r.lines.length, logKindsMax + 1, 'one line per tracked kind, one for the rest');
  limiter.flush();
  assert.match(r.lines.at(-1)!, /^warn Suppressed 49 similar warnings/);
});

test.run();
