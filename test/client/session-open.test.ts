// Opening a session: a registration whose outcome is unknown (its leader was lost on the way, as
// in a leader change) is sent again, and the command waiting on it goes through; a session left
// by the lost attempt, if any, expires on its own. Against a fake member that answers the first
// registration OUTCOME_UNKNOWN.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftClient } from '../../lib/client/client.ts';
import { FakeServer } from './fake-server.ts';

test('a registration of unknown outcome is sent again', async () => {
  let registrations = 0;
  const fake = await FakeServer.start((request, c) => {
    if (request.type === 'ping') {
      return c.send({ type: 'ok', id: request.id, index: 0, output: null });
    }
    if (request.type === 'register') {
      registrations++;
      if (registrations === 1) {
        return c.send({
          type: 'error',
          id: request.id,
          code: 'OUTCOME_UNKNOWN',
          message: 'Outcome unknown: forwarded to c, which is no longer the leader',
          leaderId: null,
          leaderAddress: null,
        });
      }
      return c.send({
        type: 'ok',
        id: request.id,
        index: 9,
        output: { session: 9, timeoutMs: 30_000 },
      });
    }
    if (request.type === 'command') {
      return c.send({ type: 'ok', id: request.id, index: 10, output: 'applied' });
    }
  });
  const client = await RaftClient.connect({
    servers: [fake.address],
    requestTimeoutMs: 5_000,
    retryDelayMs: 10,
  });
  try {
    assert.equal(await client.command({ op: 'noop' }), 'applied');
    assert.is(registrations, 2);
    assert.is(client.sessionId, 9);
  } finally {
    await client.close().catch(() => {});
    await fake.close();
  }
});

test.run();
