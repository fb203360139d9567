/** Unit tests of the in-memory transport used by the other unit tests. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RaftMessage } from '../../lib/base/messages.ts';
import { MemoryNetwork } from '../../lib/transport/memory.ts';
import { appendMessage, heartbeat, normalize, waitFor } from './helpers.ts';

// Proves delivery is asynchronous (never inside send), validated, intact and in order; cut links drop.
test('memory transport: async delivery, partitions drop', async () => {
  const network = new MemoryNetwork();
  const a = network.transport('a');
  const b = network.transport('b');
  a.addPeer('b', 'unused:1');
  const received: RaftMessage[] = [];
  b.onMessage((m) => received.push(m));
  const sent = [heartbeat('a', 'b', 1), appendMessage('a', 'b', 2)];
  for (const m of sent) a.send(m);
  assert.is(received.length, 0, 'not delivered re-entrantly');
  await waitFor(() => received.length === 2, 'delivery');
  assert.equal(normalize(received), normalize(sent));
  network.cut('a', 'b');
  a.send(heartbeat('a', 'b', 3));
  a.send(heartbeat('a', 'c', 3)); // unknown peer
  assert.is(a.counters.droppedCount, 2);
  network.heal('a', 'b');
  await b.close();
  a.send(heartbeat('a', 'b', 4));
  assert.is(a.counters.droppedCount, 3, 'closed transport receives nothing');
});

test.run();
