// A child process that only listens (backlog 1, never reading) and prints its port: a test stops it
// with SIGSTOP and fills its accept queue, so that a further connect hangs as it does to a member
// whose machine is overloaded or gone. Started and stopped by test/client/keep-alive.test.ts.
import * as net from 'node:net';
import process from 'node:process';

const server = net.createServer(() => {});
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
