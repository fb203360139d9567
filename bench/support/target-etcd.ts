/**
 * etcd as a `LoadTarget` of the bench client: `put`s through etcd's HTTP/JSON gateway (`POST
 * /v3/kv/put`, key and value base64), sent to the leader as edgeraft's client sends to its leader.
 * One keep-alive HTTP/1.1 connection per in-flight slot, so `inflight` requests are outstanding at
 * once. The client is a few lines over `node:net` with every request prepared up front, not
 * `node:http`: its own CPU per request stays small next to etcd's (the bench reports it).
 *
 * @example
 * ```ts
 * const target = etcdTarget({ servers: ['127.0.0.1:2379'], keyCount: 10000, valueBytes: 100 });
 * await target.ready();
 * ```
 * @module
 */
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import { hostPort } from './children.ts';
import type { LoadTarget } from './load.ts';

/** Largest response accepted, in bytes (a put's answer is about 150). */
const responseBytesMax = 1024 * 1024;

/** One keep-alive HTTP/1.1 connection with at most one request outstanding. */
class HttpConnection {
  readonly #socket: net.Socket;
  #buffered: Buffer = Buffer.alloc(0);
  #waiting:
    | { resolve: (r: { status: number; body: string }) => void; reject: (e: Error) => void }
    | null = null;
  #closed: Error | null = null;

  constructor(address: string) {
    const { host, port } = hostPort(address);
    this.#socket = net.connect({ host, port, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (error) => this.#fail(error));
    this.#socket.on('close', () => this.#fail(new Error('Connection closed')));
  }

  /** Send `request` (a whole HTTP request) and resolve with the response's status and body. */
  request(request: Uint8Array): Promise<{ status: number; body: string }> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    if (this.#waiting !== null) throw new Error('HttpConnection: one request at a time');
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(request);
    });
  }

  /** False once the connection failed or was closed. */
  get open(): boolean {
    return this.#closed === null;
  }

  close(): void {
    this.#closed ??= new Error('Connection closed');
    this.#socket.destroy();
  }

  #fail(error: Error): void {
    this.#closed ??= error;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
  }

  #onData(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    if (this.#buffered.length > responseBytesMax) {
      this.#fail(new Error(`Response too large: over ${responseBytesMax} bytes`));
      this.#socket.destroy();
      return;
    }
    const headEnd = this.#buffered.indexOf('\r\n\r\n');
    if (headEnd === -1) return;
    const head = this.#buffered.subarray(0, headEnd).toString('latin1');
    const status = Number(head.slice(9, 12));
    const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body: string;
    let used: number;
    if (lengthMatch !== null) {
      const length = Number(lengthMatch[1]);
      used = headEnd + 4 + length;
      if (this.#buffered.length < used) return;
      body = this.#buffered.subarray(headEnd + 4, used).toString('utf8');
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      // Chunked: complete once the last (empty) chunk has arrived.
      const last = this.#buffered.indexOf('\r\n0\r\n\r\n', headEnd + 2);
      if (last === -1) return;
      used = last + 7;
      body = this.#buffered.subarray(headEnd + 4, last).toString('utf8');
    } else {
      this.#fail(new Error(`Response without a length: ${head.split('\r\n')[0]}`));
      this.#socket.destroy();
      return;
    }
    this.#buffered = this.#buffered.subarray(used);
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve({ status, body });
  }
}

function httpPost(address: string, path: string, json: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(json));
  const head = `POST ${path} HTTP/1.1\r\nHost: ${address}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** One request on a fresh connection, for the few calls outside the measured load. */
async function postOnce(address: string, path: string, json: unknown): Promise<unknown> {
  const c = new HttpConnection(address);
  try {
    const r = await c.request(httpPost(address, path, json));
    if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    return JSON.parse(r.body);
  } finally {
    c.close();
  }
}

type MemberList = { members?: { ID: string; name: string; clientURLs?: string[] }[] };

/** Drive the etcd members at `servers` (client URLs' `host:port`); the leader is found in `ready`. */
export function etcdTarget(o: {
  /** Client addresses (`host:port`) of the etcd members. */
  servers: string[];
  keyCount: number;
  valueBytes: number;
}): LoadTarget {
  let leaderAddress: string | null = null;
  let leaderName: string | null = null;
  let requests: Uint8Array[] = [];
  const connections: HttpConnection[] = [];
  const width = String(o.keyCount - 1).length;
  const value = Buffer.alloc(o.valueBytes, 'x').toString('base64');
  const prepare = (address: string) =>
    Array.from({ length: o.keyCount }, (_, i) =>
      httpPost(address, '/v3/kv/put', {
        key: Buffer.from(`k${String(i).padStart(width, '0')}`).toString('base64'),
        value,
      }));
  const connection = (slot: number) => {
    let c = connections[slot];
    // A slot whose connection failed gets a new one.
    if (c === undefined || !c.open) {
      c = new HttpConnection(leaderAddress!);
      connections[slot] = c;
    }
    return c;
  };
  const command = async (_mode: string, slot: number, seq: number) => {
    const r = await connection(slot).request(requests[seq % requests.length]!);
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  };
  return {
    modes: ['-'],
    ready: async () => {
      // Find the leader: its member id from any member's status, its address from the member list.
      const status = (await postOnce(o.servers[0]!, '/v3/maintenance/status', {})) as {
        leader?: string;
      };
      const list = (await postOnce(o.servers[0]!, '/v3/cluster/member/list', {})) as MemberList;
      const leader = list.members?.find((m) => m.ID === status.leader);
      const url = leader?.clientURLs?.[0];
      if (leader === undefined || url === undefined) throw new Error('No etcd leader yet');
      leaderAddress = new URL(url).host;
      leaderName = leader.name;
      requests = prepare(leaderAddress);
      await command('-', 0, 0);
    },
    command,
    leader: () => leaderName,
    close: () => {
      for (const c of connections) c?.close();
      return Promise.resolve();
    },
  };
}
