// A child process that only listens (backlog 1, never reading) and prints its port: a test stops it
// with SIGSTOP and fills its accept queue, so that a further connect hangs as it does to a member
// whose machine is overloaded or gone. Started as `listen-child.ts listen` by
// test/client/keep-alive.test.ts; without that argument (uvu imports every file under test/ that
// matches its pattern) it does nothing.
import * as net from 'node:net';
import process from 'node:process';

if (process.argv.at(-1) === 'listen') {
  const server = net.createServer(() => {});
  server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
    const port = (server.address() as net.AddressInfo).port;
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
}
