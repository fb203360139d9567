// Proves each documented way into edgeraft works from a folder outside the repository, as a new
// user takes it, on the npm tarball that `npm pack` builds (its prepack runs the build, so a fresh
// clone needs nothing else). Each runtime's suite runs its own ways (all of them under every
// runtime would repeat the same child processes): under Node, the tarball's contents and size (the
// README's figure within 20%), an offline install, tsc against its declarations, plain `node`,
// `npx edgeraft --help` and `--version`, `npx edgeraft torture --runtime bun` (and a clear refusal
// without Bun), `npx edgeraft cluster` with members on the installed
// JavaScript (put and get through it; Ctrl-C, as SIGINT to the cluster's pid, stops it and every
// member gracefully; members orphaned by a SIGKILL stop by themselves); under Bun, `bun app.ts` importing the
// installed package and its cluster's orphans; under Deno, `npm:edgeraft` from the installed
// package (run and check), `deno publish --dry-run` and its cluster's orphans. The README's
// checkout way for Deno runs in examples.test.ts, with the examples.
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { currentRuntime } from '../../lib/runtime.ts';
import { freePort } from '../../lib/cli/processes.ts';
import {
  appOutput,
  appSource,
  bunBin,
  cleanUp,
  commandLineOf,
  denoBin,
  describeRun,
  install,
  isRunning,
  pack,
  parentOf,
  readme,
  repoRoot,
  run,
  type RunningCluster,
  runOk,
  startCluster,
  tempFolder,
  track,
  tscScript,
  until,
  userEnv,
} from './support.ts';

const test = suite('ways in, from outside the repository');
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

/** Largest tarball accepted, in bytes: it holds dist/ and the docs, nothing else. */
const tarballBytesMax = 1024 * 1024;
/** How long a cluster and its members may take to end once signalled, in ms. */
const stopMsMax = 15_000;
/** The import a Deno user writes for the published package (deno.json's name and version). */
const jsrName: string = JSON.parse(readFileSync(join(repoRoot, 'deno.json'), 'utf8')).name;
const jsrVersion: string = JSON.parse(readFileSync(join(repoRoot, 'deno.json'), 'utf8')).version;

/** Run the app with `command args` in `cwd` and check its one line of output. */
async function runApp(what: string, command: string, args: string[], cwd: string): Promise<void> {
  const dataDir = join(cwd, `data-${Math.random().toString(36).slice(2)}`);
  const ports = [String(await freePort()), String(await freePort())];
  const ran = await runOk(what, command, [...args, dataDir, ...ports], cwd);
  const last = ran.stdout.trim().split('\n').at(-1) ?? '';
  assert.equal(JSON.parse(last), appOutput, `${what}: ${last}`);
}

/**
 * Send `signal` to the cluster process (the parent of the members; a descendant of what the test
 * started) and check that it and every member end, the members gracefully: each data directory's
 * lock released. SIGINT is Ctrl-C, the documented way to stop it; SIGKILL leaves the members
 * orphans, which must stop by themselves.
 */
async function signalParentExpectAllStop(
  cluster: RunningCluster,
  signal: 'SIGINT' | 'SIGKILL',
): Promise<void> {
  const parents = new Set(cluster.members.map((m) => parentOf(m.pid)));
  assert.is(parents.size, 1, 'one cluster process started every member');
  const [parent] = [...parents] as [number];
  track(parent);
  assert.ok(commandLineOf(parent).includes('cluster'), `pid ${parent} is the cluster process`);
  for (const m of cluster.members) {
    assert.ok(existsSync(join(cluster.dataRoot, m.id, 'edgeraft.lock')), `${m.id} holds its lock`);
  }
  const signalledMs = Date.now();
  process.kill(parent, signal);
  await until(
    `the cluster process and every member ended after ${signal} to the cluster process`,
    () => !isRunning(parent) && cluster.members.every((m) => !isRunning(m.pid)),
    stopMsMax,
  );
  console.log(`  ${signal}: the cluster and its members ended in ${Date.now() - signalledMs} ms`);
  for (const m of cluster.members) {
    assert.not.ok(
      existsSync(join(cluster.dataRoot, m.id, 'edgeraft.lock')),
      `${m.id} stopped gracefully (its data directory's lock released); stderr:\n${
        cluster.stderrTail().slice(-2000)
      }`,
    );
  }
}

/** Every member's command line: the installed package's built cli.js, the parent watch, no tsx. */
function assertMembersRunInstalledJs(cluster: RunningCluster, installedDir: string): void {
  const cli = join(installedDir, 'node_modules/edgeraft/dist/lib/cli.js');
  const watch = join(installedDir, 'node_modules/edgeraft/dist/lib/cli/parent-watch.js');
  for (const m of cluster.members) {
    const argv = commandLineOf(m.pid);
    const line = argv.join(' ');
    assert.ok(argv.includes(cli), `${m.id} runs ${cli}: ${line}`);
    assert.ok(line.includes(watch), `${m.id} preloads the parent watch: ${line}`);
    assert.not.ok(/tsx|\.ts\b/.test(line), `${m.id} runs no TypeScript: ${line}`);
    // The runtime's own executable may live anywhere (here: the repository's dev dependency);
    // everything it is given to run must come from the installed package.
    const args = argv.slice(1).join(' ');
    assert.not.ok(args.includes(repoRoot), `${m.id} uses nothing of the repository: ${line}`);
  }
}

const runtime = currentRuntime();

if (runtime === 'node') {
  timed(
    'npm pack: the tarball holds dist/, README, LICENSE and package.json, nothing else',
    async () => {
      const { files, sizeBytes, unpackedBytes, tarball } = await pack();
      console.log(
        `  tarball ${tarball.split('/').at(-1)}: ${sizeBytes} bytes packed, ${unpackedBytes} ` +
          `unpacked, ${files.length} files`,
      );
      const other = files.filter((f) =>
        !f.startsWith('dist/') && !['README.md', 'LICENSE', 'package.json'].includes(f)
      );
      assert.equal(other, [], 'only dist/ and the docs');
      for (
        const f of [
          'dist/mod.js',
          'dist/mod.d.ts',
          'dist/lib/testing/mod.js',
          'dist/lib/testing/mod.d.ts',
          'dist/lib/cli.js',
          'dist/lib/cli/parent-watch.js',
        ]
      ) assert.ok(files.includes(f), `holds ${f}`);
      assert.not.ok(files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TS sources');
      assert.ok(sizeBytes <= tarballBytesMax, `${sizeBytes} bytes, at most ${tarballBytesMax}`);
      // The README's figure stays true: within 20% of what npm pack made now.
      const said = /(\d+) KB packed, ([\d.]+) MB unpacked, (\d+)\s+files/.exec(readme);
      assert.ok(said !== null, 'the README gives the tarball size');
      const saidBytes = Number(said[1]) * 1000;
      assert.ok(
        Math.abs(sizeBytes - saidBytes) <= 0.2 * saidBytes,
        `README says ${said[1]} KB packed; npm pack made ${Math.round(sizeBytes / 1000)} KB`,
      );
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
      assert.is(pkg.version, jsrVersion, 'package.json and deno.json name the same version');
    },
  );

  timed(
    'npm: installed into a fresh folder, typed by tsc, imported by name on plain Node',
    async () => {
      const { dir, how } = await install();
      console.log(`  npm install of the tarball: ${how}`);
      writeFileSync(join(dir, 'app.ts'), appSource);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'es2022',
            module: 'nodenext',
            strict: true,
            // lmdb's own declarations (export =) do not compile as ES modules; every user of lmdb
            // needs this. Ours are still read: a missing or mistyped export fails app.ts.
            skipLibCheck: true,
            types: ['node'],
            outDir: 'build',
          },
          files: ['app.ts'],
        }),
      );
      await runOk('tsc in the app folder', process.execPath, [tscScript, '-p', '.'], dir);
      await runApp('node build/app.js (no tsx)', process.execPath, ['build/app.js'], dir);
    },
  );

  timed(
    'npx edgeraft --help, cluster, put, get: installed JavaScript; Ctrl-C stops all; orphans stop',
    async () => {
      const { dir } = await install();
      // `--no`: never fetch a package of that name from the registry when the bin is missing (the
      // test must fail then); `--`: the rest is edgeraft's, not npx's (npm 11 reads --help itself).
      const help = await runOk(
        'npx edgeraft --help',
        'npx',
        ['--no', '--', 'edgeraft', '--help'],
        dir,
      );
      assert.ok(help.stdout.includes('Usage: edgeraft <command>'), help.stdout);
      assert.ok(help.stdout.includes('(npx edgeraft <command> ...)'), 'names the way it was run');
      // The built command line finds the package's package.json from dist/lib/cli/ too.
      const version = await runOk(
        'npx edgeraft --version',
        'npx',
        ['--no', '--', 'edgeraft', '--version'],
        dir,
      );
      const { version: packageVersion } = JSON.parse(
        readFileSync(join(repoRoot, 'package.json'), 'utf8'),
      ) as { version: string };
      assert.is(version.stdout.trim(), packageVersion);
      // Members under another runtime, from the installed package: Bun found on PATH (here the
      // repository's copy); without it, a clear refusal naming the flag (it had crashed on spawn).
      const withBun = userEnv({
        PATH: `${join(repoRoot, 'node_modules', '.bin')}:${process.env['PATH']}`,
      });
      const torture = await runOk(
        'npx edgeraft torture --runtime bun',
        'npx',
        [
          '--no',
          '--',
          'edgeraft',
          'torture',
          '--duration',
          '10s',
          '--faults',
          'kill',
          '--runtime',
          'bun',
          '--seed',
          '3',
          '--out',
          join(dir, 'torture'),
          '--quiet',
        ],
        dir,
        withBun,
      );
      assert.match(torture.stdout, /^verdict: ok/m, torture.stdout);
      const pathWithoutBins = (process.env['PATH'] ?? '').split(':')
        .filter((p) => !p.includes('node_modules')).join(':');
      const bunElsewhere = spawnSync('bun', ['--version'], {
        env: { ...process.env, PATH: pathWithoutBins },
      }).status === 0;
      if (bunElsewhere) {
        console.log('  bun is on PATH outside node_modules: its absence not checked');
      } else {
        const missing = await run(
          'npx',
          ['--no', '--', 'edgeraft', 'torture', '--runtime', 'bun'],
          dir,
          userEnv({ PATH: pathWithoutBins }),
        );
        assert.is(missing.code, 2, describeRun('torture --runtime bun without bun', missing));
        assert.match(missing.stderr, /Flag --runtime bun: cannot run bun/);
      }
      const cluster = await startCluster(
        'npx',
        ['--no', '--', 'edgeraft', 'cluster', '--size', '3'],
        dir,
        tempFolder('npx-data'),
      );
      assert.is(cluster.members.length, 3, 'three members listed');
      assertMembersRunInstalledJs(cluster, dir);
      const servers = cluster.members.map((m) => m.clientAddress).join(',');
      await runOk('npx edgeraft put', 'npx', [
        '--no',
        '--',
        'edgeraft',
        'put',
        'k',
        'v',
        '--servers',
        servers,
      ], dir);
      const got = await runOk('npx edgeraft get', 'npx', [
        '--no',
        '--',
        'edgeraft',
        'get',
        'k',
        '--servers',
        servers,
      ], dir);
      assert.ok(got.stdout.includes('"value":"v"'), got.stdout);
      await signalParentExpectAllStop(cluster, 'SIGINT');
      await cluster.exited; // npx ends once its child, the cluster process, is gone
      const orphans = await startCluster(
        'npx',
        ['--no', '--', 'edgeraft', 'cluster', '--size', '1'],
        dir,
        tempFolder('npx-orphans'),
      );
      await signalParentExpectAllStop(orphans, 'SIGKILL');
    },
  );
}

if (runtime === 'bun') {
  timed(
    'bun: imports the installed package by name; its cluster members stop with their parent',
    async () => {
      const { dir, how } = await install();
      console.log(`  npm install of the tarball: ${how}`);
      writeFileSync(join(dir, 'app.ts'), appSource);
      await runApp('bun app.ts', bunBin, ['app.ts'], dir);
      const cluster = await startCluster(
        bunBin,
        ['node_modules/edgeraft/dist/lib/cli.js', 'cluster', '--size', '1'],
        dir,
        tempFolder('bun-data'),
      );
      assertMembersRunInstalledJs(cluster, dir);
      await signalParentExpectAllStop(cluster, 'SIGKILL');
    },
  );
}

if (runtime === 'deno') {
  timed('deno: npm:edgeraft from the installed package runs and type-checks', async () => {
    const { dir, how } = await install();
    console.log(`  npm install of the tarball: ${how}`);
    const source = appSource.replace(/from 'edgeraft(\/testing)?'/g, "from 'npm:edgeraft$1'");
    assert.ok(source.includes("from 'npm:edgeraft/testing'"), 'the app imports through npm:');
    writeFileSync(join(dir, 'app.ts'), source);
    await runApp('deno run -A app.ts (npm:edgeraft)', denoBin, ['run', '-A', 'app.ts'], dir);
    await runOk('deno check app.ts (npm:edgeraft)', denoBin, ['check', 'app.ts'], dir);
  });

  timed('deno publish --dry-run: passes, and ships mod.ts, lib/ and the docs only', async () => {
    // --no-check: the type check of the package (50 s here) is `deno check mod.ts lib/` in npm
    // test; publish still checks the config, the file list and for slow types (tried: a class
    // field left untyped fails it).
    const ran = await run(
      denoBin,
      ['publish', '--dry-run', '--allow-dirty', '--no-check'],
      repoRoot,
    );
    // Deno colours its output whenever FORCE_COLOR is set, even to 0.
    // deno-lint-ignore no-control-regex
    const out = `${ran.stdout}\n${ran.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
    assert.ok(out.includes('Dry run complete'), describeRun('deno publish --dry-run', ran));
    assert.ok(
      out.includes(`publish of ${jsrName}@${jsrVersion} with files`),
      `publishes ${jsrName}@${jsrVersion}:\n${out}`,
    );
    const files = [...out.matchAll(/file:\/\/(\S+) \(/g)].map((m) => m[1]!.slice(repoRoot.length));
    assert.ok(files.includes('mod.ts') && files.includes('lib/testing/mod.ts'), files.join(' '));
    const other = files.filter((f) =>
      !f.startsWith('lib/') && !['mod.ts', 'README.md', 'LICENSE', 'deno.json'].includes(f)
    );
    assert.equal(other, [], 'nothing but mod.ts, lib/, README.md, LICENSE and deno.json');
  });

  timed("deno: the installed package's cluster members stop with their parent", async () => {
    const { dir } = await install();
    const cluster = await startCluster(
      denoBin,
      ['run', '-A', 'node_modules/edgeraft/dist/lib/cli.js', 'cluster', '--size', '1'],
      dir,
      tempFolder('deno-data'),
    );
    assertMembersRunInstalledJs(cluster, dir);
    await signalParentExpectAllStop(cluster, 'SIGKILL');
  });
}

test.run();
