/**
 * A user's app, as the README shows one: its own state machine on a one-member `RaftServer`, and
 * the linearizability checker from `edgeraft/testing`. The packaging test copies it into a folder
 * outside the repository and runs it there with the package imported by name (`edgeraft`, or
 * `npm:edgeraft` from Deno), then prints one JSON line.
 *
 * Usage: app.ts DATA_DIR PEER_PORT CLIENT_PORT
 *
 * @module
 */
import process from 'node:process';
import { type Commit, RaftServer, type StateMachine } from 'edgeraft';
import { checkLinearizability, registerModel } from 'edgeraft/testing';

/** A running total: `{ add }` commands, the query `'total'`. */
class Tally implements StateMachine<{ add: number }, number, 'total', number> {
  #total = 0;
  apply(commit: Commit<{ add: number }>): number {
    return (this.#total += commit.command.add);
  }
  query(): number {
    return this.#total;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const total = this.#total;
    return (async function* () {
      yield new TextEncoder().encode(String(total));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
    this.#total = Number(text);
  }
}

const [dataDir, peerPort, clientPort] = process.argv.slice(2);
if (dataDir === undefined || peerPort === undefined || clientPort === undefined) {
  console.error('Usage: app.ts DATA_DIR PEER_PORT CLIENT_PORT');
  process.exit(2);
}
const peerAddress = `127.0.0.1:${peerPort}`;
const clientAddress = `127.0.0.1:${clientPort}`;
const server = await RaftServer.start({
  id: 'a',
  cluster: 'app',
  dataDir,
  peerAddress,
  clientAddress,
  members: [{ id: 'a', type: 'ACTIVE', address: peerAddress, clientAddress }],
  stateMachine: new Tally(),
});
await server.ready({ timeoutMs: 10_000 }); // a leader (itself) that can take writes
const outputs: number[] = [];
for (const add of [1, 2, 3]) outputs.push(await server.propose({ add }));
const total: number = await server.query('total', 'linearizable');
await server.stop();

/** Never called: a type check of this file fails unless the state machine's types reach here. */
function typesFlow(s: typeof server): void {
  // @ts-expect-error: a command of the wrong shape is a type error.
  void s.propose({ add: 'one' });
}
void typesFlow;

const history = checkLinearizability(registerModel<number>(), [
  { client: 1, callMs: 0, returnMs: 10, input: { f: 'write', value: 1 }, outcome: 'ok' },
  { client: 2, callMs: 20, returnMs: 30, input: { f: 'read' }, output: null, outcome: 'ok' },
]);
console.log(JSON.stringify({ outputs, total, staleRead: history.verdict }));
