/**
 * Crash-test child: one member (the real driver over LMDB at argv[2]) with the key-value machine on
 * disk, and a client in the same process that registers a session, then appends unique tokens
 * (`t<sequence>,` to `log<sequence % 8>`) one command at a time through `driver.handle`, exactly as
 * the client port would hand them over, retrying the same sequence after any failure. The client's
 * state (session, next sequence, the command in flight) is written to argv[3] before each send, so
 * that a restarted child retries the same sequence. The parent SIGKILLs it at random moments.
 *
 * Lines on stdout: `open <machineAppliedIndex> <appliedIndex> <lastIndex> <snapshotIndex>
 * <restoredSnapshot>` once opened; `ack <sequence> <token>` per acknowledged command (again, after
 * a restart, for a retried one); `replayed <count>` at the first acknowledgement of this run (the
 * commands applied whose entries were already in the log when it opened). With argv[4] `finish` it
 * settles the command in flight, prints `done`, and exits; with `split` it runs the planted bug
 * (machine writes and applied index in separate transactions).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemberReply, MemberRequest } from '../../lib/base/member-requests.ts';
import { MemberDriver } from '../../lib/member/driver.ts';
import { parseDriverOptions } from '../../lib/member/options.ts';
import { realClock } from '../../lib/server/clock.ts';
import { cborCodec } from '../../lib/state/codec.ts';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { CountingLmdbKv } from './disk-support.ts';

const [path, stateFile, mode = 'run'] = process.argv.slice(2);
if (path === undefined || stateFile === undefined) {
  throw new Error('usage: disk-crash-child.ts DATA_DIR STATE_FILE [run|finish|split]');
}

type ClientState = {
  session: number;
  /** The next sequence to send (the one in flight, if `pending`). */
  sequence: number;
  pending: boolean;
  acked: number;
};

function loadState(): ClientState {
  if (!existsSync(stateFile!)) return { session: 0, sequence: 1, pending: false, acked: 0 };
  return JSON.parse(readFileSync(stateFile!, 'utf8')) as ClientState;
}

/** Atomically (a rename), before anything is sent that depends on it. */
function saveState(state: ClientState): void {
  writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
  renameSync(`${stateFile}.tmp`, stateFile!);
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const codec = cborCodec<unknown>();
const storage = await LmdbStorage.open({ path, mapSizeBytes: 256 * 1024 ** 2 });
const machine = new CountingLmdbKv();
const driver = await MemberDriver.open({
  id: 'a',
  storage,
  transport: { send: () => {}, setPeers: () => {} },
  clock: realClock,
  random: Math.random,
  stateMachine: machine,
  // Snapshots (and compaction) every 150 entries: a restart from the snapshot would apply up to
  // that many again; the machine on disk must apply only what its last commits missed.
  options: parseDriverOptions({
    tickMs: 5,
    electionTicks: 10,
    snapshotEntriesThreshold: 150,
    compactionTrailingEntries: 20,
  }),
  logger: { info: () => {}, warn: (m) => process.stderr.write(`warn: ${m}\n`), debug: () => {} },
  members: [{ id: 'a', type: 'ACTIVE', address: '127.0.0.1:1' }],
  ...(mode === 'split' ? { diskUnsafeFaults: { splitMachineCommit: true } } : {}),
});
const r = driver.recovery;
out(
  `open ${r.machineAppliedIndex} ${r.appliedIndex} ${r.lastIndex} ${r.snapshotIndex} ${r.restoredSnapshot}`,
);
driver.start();

/** Send until answered ok (a failure of any kind: send the same request again). */
async function send(request: MemberRequest): Promise<MemberReply & { ok: true }> {
  for (;;) {
    const reply = await driver.handle(request);
    if (reply.ok) return reply;
    if (reply.code === 'APPLICATION_ERROR' || reply.code === 'RESULT_EVICTED') {
      process.stderr.write(`unexpected reply: ${JSON.stringify(reply)}\n`);
      process.exit(3);
    }
    await sleep(5);
  }
}

const state = loadState();
if (state.session === 0) {
  const reply = await send({ kind: 'register', timeoutMs: 60_000 });
  state.session = (reply.output as { session: number }).session;
  saveState(state);
}
let firstAck = true;
for (;;) {
  if (mode === 'finish' && !state.pending) break;
  const sequence = state.sequence;
  const token = `t${sequence}`;
  if (!state.pending) {
    state.pending = true;
    saveState(state); // before sending: a restart retries this very sequence
  }
  await send({
    kind: 'command',
    session: state.session,
    sequence,
    data: codec.encode({ op: 'append', key: `log${sequence % 8}`, value: `${token},` }),
  });
  out(`ack ${sequence} ${token}`);
  if (firstAck) {
    firstAck = false;
    out(`replayed ${machine.appliedIndexes.filter((i) => i <= r.lastIndex).length}`);
  }
  state.sequence = sequence + 1;
  state.pending = false;
  state.acked++;
  saveState(state);
  if (state.acked % 16 === 0) {
    // Acknowledge outputs, so the session keeps few of them.
    await send({ kind: 'keepAlive', session: state.session, commandAck: sequence, eventAck: 0 });
  }
}
// Everything in the log applied (a leader's barrier), then stop.
for (;;) {
  try {
    await driver.barrier();
    break;
  } catch {
    await sleep(5);
  }
}
out('done');
await driver.stop();
await storage.close();
process.exit(0);
