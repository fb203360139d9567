// Proves every example of the README and of mod.ts's doc comment runs as written, from a folder
// outside the repository, the way each runtime's user takes: under Deno through the README's
// checkout deno.json (then `deno check` on all of them), under Bun and under Node (tsx) importing
// the npm tarball installed by name. Each example exits 0 and prints what its `// prints:`
// comments say. The client example runs against three members this test serves on the ports it
// names; the others start and stop their own.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentRuntime } from '../../lib/runtime.ts';
import { freePort } from '../../lib/cli/processes.ts';
import { RaftServer } from '../../lib/server/server.ts';
import { KvStateMachine } from '../../lib/state/kv.ts';
import {
  appOutput,
  appSource,
  bunBin,
  cleanUp,
  denoBin,
  denoCheckoutApp,
  describeRun,
  install,
  readme,
  repoRoot,
  run,
  runOk,
  tempFolder,
} from './support.ts';

const test = suite('README and mod.ts examples, run as written');
test.after(cleanUp);

/** `test`, printing how long the test took (the packaging tests' budget is their duration). */
function timed(name: string, body: () => void | Promise<void>): void {
  test(name, async () => {
    const startedMs = Date.now();
    try {
      await body();
    } finally {
      console.log(`  [${((Date.now() - startedMs) / 1000).toFixed(1)} s] ${name}`);
    }
  });
}

/** One example: where it comes from, the file it is written to, its source. */
type Example = { where: string; file: string; source: string; prints: string[] };

/** Each ```ts block of the README, in order; one preceded by "In a file `X`:" is written as X. */
function readmeExamples(): Example[] {
  const examples: Example[] = [];
  for (const m of readme.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const before = readme.slice(0, m.index);
    const line = before.trimEnd().split('\n').at(-1) ?? '';
    const named = /^In a file `([\w.-]+\.ts)`:$/.exec(line.trim())?.[1];
    const lineNo = before.split('\n').length;
    examples.push({
      where: `README.md:${lineNo}`,
      file: named ?? `readme-${lineNo}.ts`,
      source: m[1]!,
      prints: printsOf(m[1]!),
    });
  }
  return examples;
}

/** mod.ts's `@example`, its ` * ` prefixes removed. */
function modExample(): Example {
  const text = readFileSync(join(repoRoot, 'mod.ts'), 'utf8');
  const m = /@example\n \* ```ts\n([\s\S]*?) \* ```/.exec(text);
  if (m === null) throw new Error('mod.ts: no @example block');
  const source = m[1]!.split('\n').map((l) => l.replace(/^ \*( |$)/, '')).join('\n');
  return { where: 'mod.ts @example', file: 'mod-example.ts', source, prints: printsOf(source) };
}

/** What a block says it prints: the text after each `// prints: `. */
function printsOf(source: string): string[] {
  return [...source.matchAll(/\/\/ prints: (.*)$/gm)].map((m) => m[1]!.trim());
}

const examples = [...readmeExamples(), modExample()];
/** The client addresses the RaftClient example names; the test serves them meanwhile. */
const servedPorts = { peer: [7001, 7002, 7003], client: [8001, 8002, 8003] };

/** Three KV members on the example's fixed ports (from this repository), ready for writes. */
async function serveFixedPorts(dataRoot: string): Promise<{ stop(): Promise<void> }[]> {
  const members = servedPorts.peer.map((port, i) => ({
    id: `m${i + 1}`,
    type: 'ACTIVE' as const,
    address: `127.0.0.1:${port}`,
    clientAddress: `127.0.0.1:${servedPorts.client[i]}`,
  }));
  const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
  const servers = await Promise.all(members.map((m) =>
    RaftServer.start({
      id: m.id,
      cluster: 'examples',
      dataDir: join(dataRoot, m.id),
      peerAddress: m.address,
      clientAddress: m.clientAddress,
      members,
      stateMachine: new KvStateMachine(),
      logger: quiet,
    })
  ));
  await servers[0]!.ready({ timeoutMs: 10_000 });
  return servers;
}

/** Write every example into `dir`, then run each with `command prefix... file`, in order. */
async function runAll(dir: string, command: string, prefix: string[]): Promise<void> {
  for (const e of examples) writeFileSync(join(dir, e.file), e.source);
  for (const e of examples) {
    const needsCluster = e.source.includes('RaftClient.connect');
    const servers = needsCluster ? await serveFixedPorts(tempFolder('examples-served')) : [];
    try {
      const startedMs = Date.now();
      const ran = await run(command, [...prefix, e.file], dir);
      const what = `${e.where} (${e.file})`;
      if (ran.code !== 0) throw new Error(describeRun(what, ran));
      const lines = ran.stdout.split('\n').map((l) => l.trim());
      for (const p of e.prints) assert.ok(lines.includes(p), `${what} prints ${p}:\n${ran.stdout}`);
      console.log(`  ${what}: ${Date.now() - startedMs} ms`);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  }
}

timed('the examples are found: six in the README, one in mod.ts, each named file once', () => {
  assert.is(examples.length, 7, examples.map((e) => e.where).join(', '));
  assert.ok(examples.some((e) => e.file === 'counter.ts'), 'the Counter example is counter.ts');
  assert.is(new Set(examples.map((e) => e.file)).size, examples.length, 'distinct files');
  assert.ok(examples.filter((e) => e.prints.length > 0).length >= 4, 'most check their output');
});

const runtime = currentRuntime();

if (runtime === 'deno') {
  // The README's checkout way, with the examples and a user's app (its own state machine, the
  // checker; see test/packaging/app/app.ts): each runs, then one `deno check` of them all (one
  // check: a second would type-check the checkout again, 20 s here).
  timed(
    "deno, beside a checkout with the README's deno.json: every example and an app; deno check",
    async () => {
      const app = await denoCheckoutApp('examples-deno');
      await runAll(app, denoBin, ['run', '-A']);
      writeFileSync(join(app, 'app.ts'), appSource);
      const ran = await runOk('deno run -A app.ts (checkout)', denoBin, [
        'run',
        '-A',
        'app.ts',
        join(app, 'data-app'),
        String(await freePort()),
        String(await freePort()),
      ], app);
      assert.equal(JSON.parse(ran.stdout.trim().split('\n').at(-1)!), appOutput);
      await runOk('deno check (every example, the app)', denoBin, [
        'check',
        'app.ts',
        ...examples.map((e) => e.file),
      ], app);
    },
  );
}

if (runtime === 'bun') {
  timed('bun: every example, importing the installed npm package', async () => {
    const { dir } = await install();
    await runAll(dir, bunBin, []);
  });
}

if (runtime === 'node') {
  timed('node (tsx): every example, importing the installed npm package', async () => {
    const { dir } = await install();
    // tsx as a user runs it (`npx tsx file.ts`): here the repository's copy, by its path.
    await runAll(dir, join(repoRoot, 'node_modules/.bin/tsx'), []);
  });
}

test.run();
