// A snapshot transfer that lasts says how far it is: the sender and the receiver each log a line
// every progress interval (bytes, rate, what remains), besides the start and the end; and the
// progress line itself reads right.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RaftMessage, SnapshotChunkMessage } from '../../lib/base/messages.ts';
import type { Clock } from '../../lib/member/ports.ts';
import {
  progressLine,
  type ReceivedSnapshot,
  SnapshotTransfers,
} from '../../lib/member/snapshot-transfer.ts';
import { MemorySnapshotStore } from '../../lib/storage/memory-snapshots.ts';

test('the progress line', () => {
  assert.is(
    progressLine(12.5e6, 40e6, 'B', 1_500),
    '12.5 of 40.0 MB (31%), 8.3 MB/s, about 4 s left',
  );
  assert.is(
    progressLine(3_000, 12_000, 'entries', 2_000),
    '3,000 of 12,000 entries (25%), 1,500 entries/s, about 6 s left',
  );
  assert.is(
    progressLine(0, 10, 'entries', 0),
    '0 of 10 entries (0%), 0 entries/s, time left unknown',
  );
});

test('a long transfer logs its progress on both sides', async () => {
  let now = 0;
  const clock: Clock = {
    nowMs: () => now,
    setTimer: () => () => {},
    defer: (f) => queueMicrotask(f),
  };
  const source = new MemorySnapshotStore(1024);
  const stage = source.stage(5, 2);
  await stage.append(new Uint8Array(64 * 1024).fill(7));
  await stage.finish();
  source.commit(stage.id, 5, 2);
  const lines: string[] = [];
  const log = (who: string) => ({
    info: (m: string) => void lines.push(`${who}: ${m}`),
    warn: (m: string) => void lines.push(`${who} warn: ${m}`),
    debug: () => {},
  });
  const queue: RaftMessage[] = [];
  let received: ReceivedSnapshot | null = null;
  const host = (id: string, store: MemorySnapshotStore) => ({
    id,
    snapshots: store,
    clock,
    chunkBytes: 1024,
    chunkTimeoutMs: 60_000,
    receiveBytesMax: 1 << 20,
    progressIntervalMs: 100,
    send: (m: RaftMessage) => void queue.push(m),
    currentTerm: () => 3,
    leaderId: () => 'a',
    reportFailed: () => assert.unreachable('the transfer failed'),
    received: (r: ReceivedSnapshot) => void (received = r),
    log: log(id),
  });
  const a = new SnapshotTransfers(host('a', source));
  const b = new SnapshotTransfers(host('b', new MemorySnapshotStore(1024)));
  a.startSending({
    type: 'snapshot',
    from: 'a',
    to: 'b',
    term: 3,
    index: 5,
    snapshotTerm: 2,
    snapshotTimeMs: 0,
    members: [],
  });
  // Each chunk takes 10 ms of the clock: 64 chunks, 640 ms, a progress line every 100 ms.
  for (let i = 0; i < 1_000 && received === null; i++) {
    const m = queue.shift();
    if (m === undefined) {
      await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    now += 5;
    if (m.to === 'b') b.onMessage(m as SnapshotChunkMessage);
    else a.onMessage(m as never);
  }
  assert.ok(received !== null, 'the snapshot arrived');
  await new Promise((r) => setTimeout(r, 0));
  while (queue.length > 0) a.onMessage(queue.shift() as never);
  const sending = lines.filter((l) =>
    /^a: sending snapshot 5 to b: .* MB \(\d+%\), .* MB\/s/.test(l)
  );
  const receiving = lines.filter((l) =>
    /^b: receiving snapshot 5 from a: .* MB \(\d+%\), .* MB\/s/.test(l)
  );
  assert.ok(sending.length >= 4, `sender progress lines: ${JSON.stringify(lines)}`);
  assert.ok(receiving.length >= 4, `receiver progress lines: ${JSON.stringify(lines)}`);
  assert.ok(
    lines.some((l) => /^a: snapshot 5 delivered to b: 65536 bytes in \d+ ms/.test(l)),
    JSON.stringify(lines),
  );
  a.close();
  b.close();
});

test.run();
