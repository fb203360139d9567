// A child process for test/client/keep-alive.test.ts, started with a mode as its last argument
// (without one, as when uvu imports every file under test/ that matches its pattern, it does
// nothing):
// - `listen`: only listens (backlog 1, never reading) and prints its port: a test stops it with
//   SIGSTOP and fills its accept queue, so that a further connect hangs as it does to a member
//   whose machine is overloaded or gone.
// - `pings`: a fake member in a process of its own (so that it goes on answering while the test's
//   process is blocked) that answers every ping 150 ms after it came (well within the keep-alive
//   timeout) and never anything else; prints its address, then `accepted N` for each connection
//   it accepts and `ping N` for each ping as it arrives.
import * as net from 'node:net';
import process from 'node:process';
import { FakeServer } from './fake-server.ts';

if (process.argv.at(-1) === 'listen') {
  const server = net.createServer(() => {});
  server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
    const port = (server.address() as net.AddressInfo).port;
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
}

if (process.argv.at(-1) === 'pings') {
  let accepted = -1;
  let pings = 0;
  const fake = await FakeServer.start((request, c) => {
    if (c.index > accepted) {
      accepted = c.index;
      process.stdout.write(`accepted ${accepted + 1}\n`);
    }
    if (request.type !== 'ping') return;
    process.stdout.write(`ping ${++pings}\n`);
    setTimeout(() => c.send({ type: 'ok', id: request.id, index: 0, output: null }), 150);
  });
  process.stdout.write(`${JSON.stringify({ address: fake.address })}\n`);
}
