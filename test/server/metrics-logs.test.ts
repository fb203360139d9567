// Proves the logs an operator gets: `serve --log-format json` writes only JSON lines, each with
// level, time, member and msg (and the line's fields); bad --log-level, --log-format and
// --metrics-address values exit 2 naming the flag; a custom logger receives every line with
// structured fields (member, component, and e.g. the term of a role change), filtered by
// logLevel, and a message-only logger still works; repeated warnings of one kind (a flood of
// garbage connections to the peer port) are rate-limited to logLinesPerKindMax plus one exact
// summary, written at the latest when the member stops.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import process from 'node:process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogFields } from '../../lib/base/logger.ts';
import { spawnTs } from '../../lib/runtime.ts';
import { freePort } from '../../lib/cli/processes.ts';
import { formatLogLine, logMessageLengthMax } from '../../lib/server/log.ts';
import { cleanUp, leaderOf, members, startNode, stopNode } from './in-process.ts';
import { waitFor } from './support.ts';

const test = suite('logs');
test.after(cleanUp);

type Line = { level: string; message: string; fields: LogFields | undefined };

function recorder() {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, fields?: LogFields) =>
    void lines.push({ level, message, fields });
  return {
    lines,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

test('formatLogLine: text and JSON carry time, level, member and the fields', () => {
  const t = Date.UTC(2026, 11, 2, 3, 4, 5, 6);
  assert.is(
    formatLogLine('text', 'warn', 'a', 'Closing peer b', {
      peer: 'b',
      bytes: 12,
      note: 'two words',
    }, t),
    '2026-12-02T03:04:05.006Z WARN a: Closing peer b peer=b bytes=12 note="two words"',
  );
  const json = JSON.parse(
    formatLogLine('json', 'info', 'a', 'role leader', { term: 3, msg: 'clash', member: 'a' }, t),
  );
  assert.equal(json, {
    time: '2026-12-02T03:04:05.006Z',
    level: 'info',
    member: 'a',
    msg: 'role leader',
    term: 3,
    msg_: 'clash',
  });
  const long = JSON.parse(formatLogLine('json', 'info', 'a', 'x'.repeat(20_000), undefined, t));
  assert.ok(long.msg.length < logMessageLengthMax + 100);
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  JSON.parse(formatLogLine('json', 'info', 'a', 'cycle', { cyclic }, t)); // never throws
});

type Run = { code: number | null; signal: string | null; stdout: string; stderr: string };

function serve(args: string[], untilReady = false): Promise<Run & { kill?: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawnTs('lib/cli.ts', ['serve', ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Uint8Array) => {
      stdout += new TextDecoder().decode(c);
      if (untilReady && stdout.includes('\n')) {
        untilReady = false;
        const ready = JSON.parse(stdout.split('\n')[0]!);
        void (async () => {
          // Serving: wait until /health says a leader is known, then stop it by its pid.
          await waitFor('a healthy member', async () => {
            const r = await fetch(`http://${ready.metrics}/health`);
            await r.text();
            return r.status === 200 || undefined;
          }, 20_000).catch(() => {});
          process.kill(ready.pid, 'SIGTERM');
        })();
      }
    });
    child.stderr!.on('data', (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('serve --log-format json: every stderr line is JSON with level, time, member, msg', async () => {
  const data = mkdtempSync(join(tmpdir(), 'edgeraft-logs-'));
  try {
    const [peer, client] = [await freePort(), await freePort()];
    const run = await serve([
      '--id',
      'solo',
      '--data',
      join(data, 'solo'),
      '--members',
      `solo=127.0.0.1:${peer}/127.0.0.1:${client}`,
      '--metrics-address',
      '127.0.0.1:0',
      '--log-format',
      'json',
      '--log-level',
      'debug',
    ], true);
    const ready = JSON.parse(run.stdout.split('\n')[0]!);
    assert.match(ready.metrics, /^127\.0\.0\.1:\d+$/);
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 4, run.stderr);
    const parsed = lines.map((l) => JSON.parse(l));
    for (const p of parsed) {
      assert.ok(['debug', 'info', 'warn', 'error'].includes(p.level), JSON.stringify(p));
      assert.ok(Number.isFinite(Date.parse(p.time)) && /Z$/.test(p.time), JSON.stringify(p));
      assert.is(p.member, 'solo');
      assert.type(p.msg, 'string');
    }
    const leader = parsed.find((p) => p.msg.startsWith('role leader'));
    assert.ok(leader !== undefined, run.stderr);
    assert.is(leader.role, 'leader');
    assert.type(leader.term, 'number');
    assert.is(leader.component, 'member');
    assert.ok(parsed.some((p) => p.msg === 'stopped'), 'the graceful stop is logged');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('bad --log-level, --log-format and --metrics-address exit 2 naming the flag', async () => {
  const base = [
    '--id',
    'a',
    '--data',
    '/nonexistent/never',
    '--members',
    'a=127.0.0.1:1/127.0.0.1:2',
  ];
  const runs = await Promise.all([
    serve([...base, '--log-level', 'loud']),
    serve([...base, '--log-format', 'xml']),
    serve([...base, '--metrics-address', 'nowhere']),
  ]);
  const flags = ['--log-level', '--log-format', '--metrics-address'];
  runs.forEach((r, i) => {
    assert.is(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(flags[i]!), r.stderr);
  });
});

test('a custom logger gets structured fields; logLevel filters; a message-only logger works', async () => {
  const nodes = await members(3);
  const recorders = nodes.map(() => recorder());
  await Promise.all(nodes.map((n, i) =>
    startNode(n, nodes, {
      logger: i === 2
        ? { info: (_m: string) => {}, warn: (_m: string) => {}, debug: () => {} }
        : recorders[i]!.logger,
      logLevel: i === 1 ? 'warn' : 'debug',
    })
  ));
  const leader = await leaderOf(nodes);
  // Make member 0 lead, so that it logs role changes whichever member won the first election.
  if (leader.id !== nodes[0]!.member.id) await leader.transferLeadership(nodes[0]!.member.id);
  await waitFor(
    'a role change logged',
    () => recorders[0]!.lines.some((l) => l.message.startsWith('role ')) || undefined,
    5_000,
  );
  const r0 = recorders[0]!.lines;
  for (const l of r0) {
    assert.is(l.fields?.['member'], nodes[0]!.member.id, l.message);
    assert.type(l.fields?.['component'], 'string', l.message);
  }
  const role = r0.find((l) => l.message.startsWith('role '))!;
  assert.is(role.fields?.['component'], 'member');
  assert.type(role.fields?.['term'], 'number');
  assert.ok(
    r0.some((l) => l.message.startsWith('serving:') && l.fields?.['component'] === 'server'),
  );
  assert.ok(
    recorders[1]!.lines.every((l) => l.level === 'warn' || l.level === 'error'),
    'logLevel warn: no info or debug lines',
  );
  for (const n of nodes) await stopNode(n);
});

test('repeated warnings of one kind are rate-limited, with one exact summary', async () => {
  const nodes = await members(1);
  const r = recorder();
  const server = await startNode(nodes[0]!, nodes, {
    logger: r.logger,
    logLinesPerKindMax: 3,
    // Longer than the test: the summary comes from the flush at stop, whatever the machine's load.
    logIntervalMs: 600_000,
  });
  const [host, port] = [
    server.peerAddress.split(':')[0]!,
    Number(server.peerAddress.split(':')[1]),
  ];
  const floods = 20;
  await Promise.all(Array.from({ length: floods }, () =>
    new Promise<void>((resolve) => {
      // A length prefix far over frameBytesMax: the transport closes it with a warning.
      const s = net.connect(port, host, () => s.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff])));
      s.on('error', () => {});
      s.on('close', () => resolve());
    })));
  const closing = () => r.lines.filter((l) => /^Closing inbound connection/.test(l.message));
  assert.is(closing().length, 3, closing().map((l) => l.message).join('\n'));
  await stopNode(nodes[0]!);
  const summaries = r.lines.filter((l) => /^Suppressed \d+ similar warnings/.test(l.message));
  assert.is(summaries.length, 1);
  assert.is(summaries[0]!.fields?.['suppressedCount'], floods - 3);
  assert.is(summaries[0]!.fields?.['component'], 'transport');
  assert.is(summaries[0]!.fields?.['member'], nodes[0]!.member.id);
});

test.run();
