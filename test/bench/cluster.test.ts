// The cluster benchmark keeps working (a benchmark nobody runs rots: its trace once recorded
// nothing for months): a tiny run of `bench/cluster.bench.ts` under this runtime, with
// `--against etcd` and a PATH without etcd, prints one row per setting for edgeraft (sessions on
// and off) and for the ceiling, says that etcd was not found, and exits 0. No figure is judged
// here: speed goals live in the benchmark's own output, never in assertions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import process from 'node:process';
import { spawnTs } from '../../lib/runtime.ts';

test('bench:cluster runs: edgeraft and ceiling rows, etcd absent from the PATH said so', async () => {
  const child = spawnTs('bench/cluster.bench.ts', [
    '--duration-ms',
    '200',
    '--warmup-ms',
    '100',
    '--inflight',
    '2',
    '--against',
    'etcd',
  ], { env: { ...process.env, PATH: '/nonexistent-edgeraft-test-path' }, exitWithParent: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += String(d)));
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.is(code, 0, `exit ${code}\n${stderr.slice(-2000)}`);
  const rows = stdout.split('\n').filter((l) => l.startsWith('ROW ')).map((l) =>
    JSON.parse(l.slice(4)) as Record<string, unknown>
  );
  const kinds = rows.map((r) => `${r['system']}/${r['sessions']}`).sort();
  assert.equal(kinds, ['ceiling/-', 'edgeraft/off', 'edgeraft/on'], stdout);
  for (const r of rows) {
    assert.ok((r['commandsPerSec'] as number) > 0, JSON.stringify(r));
    assert.is(r['errors'], 0, JSON.stringify(r));
  }
  assert.ok(
    rows.filter((r) => r['system'] === 'edgeraft').every((r) =>
      r['vsEtcd'] === 'etcd not found on PATH'
    ),
    stdout,
  );
});

test.run();
