/**
 * Run one bench under several runtimes in turn and report it as one table.
 *
 * Usage: `tsx bench/run.ts <name> [--json FILE] [--svg FILE] [--metric NAME]
 * [--runtimes node,bun,deno] [-- args for the bench]`. Runs `bench/<name>.bench.ts` under each
 * runtime, shows its progress (stderr) on one line, collects its ROW lines (bench/support/rows.ts),
 * prints one table, and writes the rows as JSON and a bar chart of `--metric` (default: the first
 * numeric column) as SVG. Exits non-zero if a runtime's run fails.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import process from 'node:process';
import {
  repoRoot,
  type Runtime,
  runtimes as allRuntimes,
  tsCommand,
} from '../test/support/child.ts';
import { barChart, columns, table } from './support/report.ts';
import { parseRow, type Row } from './support/rows.ts';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: bench/run.ts <name> [--json FILE] [--svg FILE] [--metric NAME] [--runtimes node,bun,deno] [-- bench args]\n`,
  );
  process.exit(2);
}

const argv = process.argv.slice(2);
const dashes = argv.indexOf('--');
const own = dashes === -1 ? argv : argv.slice(0, dashes);
const benchArgs = dashes === -1 ? [] : argv.slice(dashes + 1);
const options: Record<string, string> = {};
const positional: string[] = [];
for (let i = 0; i < own.length; i++) {
  const arg = own[i]!;
  if (arg.startsWith('--')) {
    const value = own[i + 1];
    if (value === undefined) usage(`Missing value for ${arg}`);
    options[arg.slice(2)] = value;
    i++;
  } else positional.push(arg);
}
const name = positional[0];
if (name === undefined || !/^[a-z0-9-]+$/.test(name)) usage('Missing or invalid bench name');
for (const key of Object.keys(options)) {
  if (!['json', 'svg', 'metric', 'runtimes'].includes(key)) usage(`Unknown option --${key}`);
}
const chosen = (options['runtimes'] ?? allRuntimes.join(',')).split(',').map((r) => r.trim());
for (const r of chosen) if (!allRuntimes.includes(r as Runtime)) usage(`Unknown runtime ${r}`);
const script = `${repoRoot}bench/${name}.bench.ts`;

const isTty = process.stderr.isTTY === true;
function showProgress(text: string): void {
  if (isTty) process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
  else process.stderr.write(`${text}\n`);
}

function runOne(runtime: Runtime): Promise<{ rows: Row[]; ok: boolean }> {
  return new Promise((resolve) => {
    const { command, args } = tsCommand(script, benchArgs, runtime);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const rows: Row[] = [];
    let out = '';
    let err = '';
    let errTail = '';
    child.stdout.on('data', (chunk: Uint8Array) => {
      out += new TextDecoder().decode(chunk);
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const row = parseRow(line);
        if (row !== null) {
          rows.push(row);
          showProgress(`[${runtime}] ${rows.length} rows`);
        }
      }
    });
    child.stderr.on('data', (chunk: Uint8Array) => {
      err += new TextDecoder().decode(chunk);
      const lines = err.split('\n');
      err = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === '') continue;
        errTail = (errTail + line + '\n').slice(-4000);
        showProgress(`[${runtime}] ${line}`);
      }
    });
    child.on('error', (error) => {
      errTail += String(error);
      resolve({ rows, ok: false });
    });
    child.on('close', (code, signal) => {
      const ok = code === 0 && signal === null;
      if (!ok) {
        process.stderr.write(
          `\n[${runtime}] failed (code ${code}, signal ${signal}):\n${errTail}\n`,
        );
      }
      resolve({ rows, ok });
    });
  });
}

const started = Date.now();
const rows: Row[] = [];
let failed = false;
for (const runtime of chosen as Runtime[]) {
  showProgress(`[${runtime}] starting ${name}`);
  const result = await runOne(runtime);
  rows.push(...result.rows);
  failed ||= !result.ok;
}
if (isTty) process.stderr.write('\r\x1b[K');
process.stderr.write(
  `${name}: ${rows.length} rows in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
process.stdout.write(`${table(rows)}\n`);
if (options['json'] !== undefined) {
  writeFileSync(options['json'], JSON.stringify(rows, null, 2) + '\n');
}
if (options['svg'] !== undefined) {
  const metric = options['metric'] ?? columns(rows).figures[0];
  if (metric === undefined) usage('No numeric column to chart');
  writeFileSync(options['svg'], barChart(rows, metric, name));
}
process.exit(failed || rows.length === 0 ? 1 : 0);
