// Exactly-once sessions under faults, on real parts: three `serve` child processes of the current
// runtime (TCP on 127.0.0.1, LMDB in a fresh temporary folder) and four clients, each in its own
// session, doing put, linearizable get, compare-and-set and append on a handful of keys while the
// leader is SIGKILLed and restarted (twice) and paused (SIGSTOP, then SIGCONT). Then:
// - the recorded history is linearizable (lib/testing/linearizability, the key-value model);
// - every appended token is unique per operation, so a command applied twice would show twice:
//   none does, and every acknowledged one is there exactly once;
// - every client kept its one session throughout (no UNKNOWN_SESSION, no new session).
// Counts and the checker's figures are printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError, RaftClient } from '../../lib/client/client.ts';
import type { MemberSpec } from '../../lib/cli/args.ts';
import { LocalCluster, localMembers } from '../../lib/cli/processes.ts';
import { currentRuntime } from '../../lib/runtime.ts';
import type { ServerStatus } from '../../lib/server/server.ts';
import { checkLinearizability } from '../../lib/testing/linearizability/check.ts';
import type { Operation } from '../../lib/testing/linearizability/history.ts';
import {
  type KeyValueInput,
  keyValueModel,
  type KeyValueOutput,
} from '../../lib/testing/linearizability/models.ts';
import { MemberProbes, sleep, waitFor } from './support.ts';

const test = suite('sessions under faults');

const clientCount = 4;
const registerKeys = ['r0', 'r1', 'r2'];
const appendKeys = ['a0', 'a1'];

let root = '';
let members: MemberSpec[] = [];
let cluster: LocalCluster | null = null;
const probes = new MemberProbes();
const stopped = new Set<string>();

function agreedLeader(timeoutMs: number): Promise<ServerStatus> {
  return waitFor('the running members to agree on one leader', async () => {
    const up = members.filter((m) => cluster!.processes.has(m.id) && !stopped.has(m.id));
    const all = await Promise.all(up.map((m) => probes.status(m.clientAddress)));
    const leaders = all.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0]!;
    return all.every((s) => s.leaderId === leader.id && s.term === leader.term)
      ? leader
      : undefined;
  }, timeoutMs);
}

/** Stop or resume member `id` by its pid (see test/client/paused-leader.test.ts for why). */
function signal(id: string, name: 'SIGSTOP' | 'SIGCONT'): void {
  process.kill(cluster!.processes.get(id)!.child.pid!, name);
  if (name === 'SIGSTOP') stopped.add(id);
  else stopped.delete(id);
}

test.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'edgeraft-session-history-'));
  members = await localMembers(3);
  cluster = await LocalCluster.start({
    members,
    dataRoot: root,
    cluster: 'session-history',
    serveArgs: ['--snapshot-entries', '500', '--trailing-entries', '100'],
  });
});

test.after(async () => {
  try {
    for (const id of [...stopped]) signal(id, 'SIGCONT');
  } finally {
    await probes.close();
    await cluster?.stopAll(5_000);
    rmSync(root, { recursive: true, force: true });
  }
});

test('a history under kills and pauses is linearizable, with every command applied once', async () => {
  await agreedLeader(20_000);
  const history: Operation<KeyValueInput, KeyValueOutput>[] = [];
  const acknowledgedTokens = new Set<string>();
  const unknownTokens = new Set<string>();
  const sessions: number[][] = [];
  const failures: string[] = [];
  let running = true;
  const t0 = Date.now();
  const now = () => Date.now() - t0;

  const clientLoop = async (c: number) => {
    const client = await RaftClient.connect({
      servers: cluster!.clientAddresses(),
      requestTimeoutMs: 8_000,
      retryDelayMs: 20,
    });
    const seen: number[] = [];
    sessions.push(seen);
    let n = 0;
    try {
      while (running) {
        n++;
        const pick = (n * 7 + c * 3) % 10;
        const callMs = now();
        let input: KeyValueInput;
        let run: () => Promise<KeyValueOutput>;
        if (pick < 3) {
          const key = appendKeys[n % appendKeys.length]!;
          const token = `<${c}.${n}>`;
          input = { f: 'append', key, value: token };
          run = async () => {
            await client.command({ op: 'append', key, value: token });
            acknowledgedTokens.add(token);
            return undefined;
          };
        } else if (pick < 5) {
          const key = registerKeys[n % registerKeys.length]!;
          const value = `${c}.${n}`;
          input = { f: 'put', key, value };
          run = async () => {
            await client.command({ op: 'put', key, value });
            return undefined;
          };
        } else if (pick < 7) {
          const key = registerKeys[(n + 1) % registerKeys.length]!;
          // Expect the value this client last wrote there, or nothing: some succeed, some fail.
          const from = n % 3 === 0 ? null : `${c}.${n - 3}`;
          const to = `${c}.${n}`;
          input = { f: 'cas', key, from, to };
          run = async () => {
            const out = await client.command({ op: 'cas', key, expected: from, value: to });
            return (out as { ok: boolean }).ok;
          };
        } else {
          const key = pick === 9 ? appendKeys[n % appendKeys.length]! : registerKeys[n % 3]!;
          input = { f: 'get', key };
          run = async () =>
            ((await client.query({ op: 'get', key })) as { value: string | null }).value;
        }
        try {
          const output = await run();
          history.push({ client: c, callMs, returnMs: now(), input, output, outcome: 'ok' });
        } catch (error) {
          const e = error as ClientError;
          if (!(e instanceof ClientError)) throw error;
          if (e.code === 'UNKNOWN_SESSION') failures.push(`client ${c}: ${e.message}`);
          // A refusal certainly did nothing; anything else may still take effect (once).
          const outcome = e.retryable ? 'fail' : 'unknown';
          history.push({ client: c, callMs, returnMs: null, input, outcome });
          if (input.f === 'append' && outcome === 'unknown') unknownTokens.add(input.value);
        }
        if (client.sessionId !== 0 && !seen.includes(client.sessionId)) seen.push(client.sessionId);
      }
    } finally {
      await client.close();
    }
  };

  const working = Promise.all(Array.from({ length: clientCount }, (_, c) => clientLoop(c)));
  const faults: string[] = [];
  try {
    for (let round = 0; round < 2; round++) {
      await sleep(2_000);
      const victim = await agreedLeader(15_000);
      await cluster!.kill(victim.id);
      faults.push(`${now()} ms: SIGKILL leader ${victim.id}`);
      await sleep(1_500);
      await cluster!.startMember(victim.id);
      faults.push(`${now()} ms: restart ${victim.id}`);
      await sleep(2_000);
      const paused = await agreedLeader(15_000);
      signal(paused.id, 'SIGSTOP');
      faults.push(`${now()} ms: SIGSTOP leader ${paused.id}`);
      await sleep(2_000);
      signal(paused.id, 'SIGCONT');
      faults.push(`${now()} ms: SIGCONT ${paused.id}`);
    }
    await sleep(2_000);
  } finally {
    running = false;
    await working;
  }

  // Every client kept its one session.
  assert.equal(failures, [], 'no session was lost');
  for (const [c, ids] of sessions.entries()) {
    assert.is(ids.length, 1, `client ${c} used one session: ${ids.join(', ')}`);
  }

  // Appended tokens: each at most once; each acknowledged one exactly once.
  const reader = await RaftClient.connect({ servers: cluster!.clientAddresses() });
  try {
    for (const key of appendKeys) {
      const { value } = (await reader.query({ op: 'get', key })) as { value: string | null };
      const tokens = (value ?? '').match(/<\d+\.\d+>/g) ?? [];
      const counts = new Map<string, number>();
      for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      const twice = [...counts].filter(([, k]) => k > 1).map(([t]) => t);
      assert.equal(twice, [], `${key}: no token applied twice`);
      for (const t of acknowledgedTokens) {
        if (
          t.length > 0 &&
          history.some((o) => o.input.f === 'append' && o.input.value === t && o.input.key === key)
        ) {
          assert.ok(counts.get(t) === 1, `${key}: acknowledged ${t} is there once`);
        }
      }
      for (const t of counts.keys()) {
        assert.ok(
          acknowledgedTokens.has(t) || unknownTokens.has(t),
          `${key}: ${t} was sent by a client`,
        );
      }
    }
  } finally {
    await reader.close();
  }

  const result = checkLinearizability(keyValueModel(), history, { timeBudgetMs: 120_000 });
  const ok = history.filter((o) => o.outcome === 'ok').length;
  const unknown = history.filter((o) => o.outcome === 'unknown').length;
  console.log(
    `  sessions under faults (${currentRuntime()}): ${history.length} operations (${ok} ok, ${unknown} unknown), ${acknowledgedTokens.size} appends acknowledged; checker ${result.verdict} in ${
      Math.round(result.elapsedMs)
    } ms; ${faults.join('; ')}`,
  );
  assert.is(result.verdict, 'linearizable', result.failure?.explanation ?? result.reason ?? '');
  assert.ok(ok > 200, `enough operations completed: ${ok}`);
});

test.run();
