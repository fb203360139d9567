// RaftClient and RaftServer carry the state machine's command, output, query and query-output
// types: a wrong command or query is a type error, and results are typed, not `unknown`. The
// checks are the `@ts-expect-error` lines below: `tsc` and `deno check` in `npm test` fail if one
// of them is no longer an error (the types went back to `unknown`) or if a typed use stops
// compiling. The function is never called: nothing here talks to a cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { KvClient, RaftClient } from '../../lib/client/client.ts';
import type { RaftServer } from '../../lib/server/server.ts';
import type { KvCommand, KvOutput, KvQuery, KvQueryOutput } from '../../lib/state/kv.ts';

type Counter = RaftClient<{ add: number }, number, 'total', number>;

async function typedUses(
  kv: KvClient,
  counter: Counter,
  server: RaftServer<KvCommand, KvOutput, KvQuery, KvQueryOutput>,
): Promise<void> {
  const put: KvOutput = await kv.command({ op: 'put', key: 'a', value: '1' });
  const got: KvQueryOutput = await kv.query({ op: 'get', key: 'a' }, 'sequential');
  const total: number = await counter.query('total');
  const added: number = await counter.command({ add: 2 });
  const { index, output } = await counter.commandWithIndex({ add: 1 });
  const proposed: KvOutput = await server.propose({ op: 'delete', key: 'a' });
  // @ts-expect-error: not a command of the key-value machine
  await kv.command({ op: 'frobnicate', key: 'a' });
  // @ts-expect-error: a command is not a query
  await kv.query({ op: 'put', key: 'a', value: '1' });
  // @ts-expect-error: the counter's command is { add: number }
  await counter.command({ add: 'two' });
  // @ts-expect-error: its output is a number, not a string
  const wrong: string = await counter.command({ add: 1 });
  // @ts-expect-error: the server's queries are checked too
  await server.query({ op: 'nope' });
  void [put, got, total, added, index, output, proposed, wrong];
}

test('typed clients and servers (checked by tsc and deno check)', () => {
  assert.type(typedUses, 'function');
});

test.run();
