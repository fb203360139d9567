// The core stays pure: no file under lib/core or lib/base (the vocabulary under everything) imports
// I/O modules or touches clocks, timers, ambient randomness or the process; lib/base imports
// nothing of ours; and the checker that enforces it really catches each form.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../support/child.ts';

const coreDir = join(repoRoot, 'lib', 'core');
const baseDir = join(repoRoot, 'lib', 'base');
const memberDir = join(repoRoot, 'lib', 'member');

/** Packages lib/core may import besides its own relative files. */
const allowedPackages = new Set(['valibot']);
/** Named explicitly in the messages, so a violation says why it matters. */
const forbiddenModules = [/^node:/, /^lmdb($|\/)/, /^cbor-x($|\/)/];

/** Globals that bring in time, scheduling, ambient randomness or the host process. */
const forbiddenGlobals: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date'],
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bqueueMicrotask\b/, 'queueMicrotask'],
  [/\bperformance\b/, 'performance'],
  [/\bMath\s*\.\s*random\b/, 'Math.random'],
  [/\bMath\s*\[/, 'Math[...] (computed access)'],
  [/\bprocess\b/, 'process'],
  [/\bcrypto\b/, 'crypto'],
  [/\bglobalThis\b/, 'globalThis'],
  [/\b(Bun|Deno)\b/, 'a runtime global'],
  [/\brequire\s*\(/, 'require()'],
];

/**
 * Split TypeScript source into code without comments (string literals kept, for the import
 * check) and code without comments or string contents (for the globals check: a word in a
 * message or a comment is not a use). Template literal `${...}` parts count as code.
 */
function stripSource(source: string): { withStrings: string; codeOnly: string } {
  let withStrings = '';
  let codeOnly = '';
  /** Open template literals; each holds the `{` depth of its current `${` part. */
  const templates: number[] = [];
  let i = 0;
  const inTemplateText = () => templates.length > 0 && templates[templates.length - 1] === 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (inTemplateText()) {
      if (c === '\\') {
        withStrings += source.slice(i, i + 2);
        i += 2;
      } else if (c === '`') {
        templates.pop();
        withStrings += c;
        codeOnly += c;
        i++;
      } else if (c === '$' && next === '{') {
        templates[templates.length - 1] = 1;
        withStrings += '${';
        codeOnly += '${';
        i += 2;
      } else {
        withStrings += c;
        i++;
      }
      continue;
    }
    if (c === '/' && next === '/') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end === -1 ? source.length : end + 2;
      withStrings += ' ';
      codeOnly += ' ';
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== '\n') {
        j += source[j] === '\\' ? 2 : 1;
      }
      withStrings += source.slice(i, j + 1);
      codeOnly += `${c}${c}`;
      i = j + 1;
    } else if (c === '`') {
      templates.push(0);
      withStrings += c;
      codeOnly += c;
      i++;
    } else {
      if (templates.length > 0) {
        if (c === '{') templates[templates.length - 1]!++;
        else if (c === '}') templates[templates.length - 1]!--;
      }
      withStrings += c;
      codeOnly += c;
      i++;
    }
  }
  return { withStrings, codeOnly };
}

/**
 * Every impurity in one core source file, as readable messages; empty when it is pure. Relative
 * imports must start with one of `relativeAllowed` (the core may use the vocabulary in lib/base;
 * lib/base may use only its own files).
 */
function coreImpurities(source: string, relativeAllowed: string[] = ['./', '../base/']): string[] {
  const { withStrings, codeOnly } = stripSource(source);
  const found: string[] = [];
  const specifiers: string[] = [];
  const patterns = [
    /\bfrom\s*(['"])([^'"]*)\1/g, // import ... from 'x', export ... from 'x'
    /\bimport\s*(['"])([^'"]*)\1/g, // import 'x'
    /\bimport\s*\(\s*(['"`])([^'"`]*)\1/g, // import('x')
    /\brequire\s*\(\s*(['"`])([^'"`]*)\1/g, // require('x')
  ];
  for (const pattern of patterns) {
    for (const match of withStrings.matchAll(pattern)) specifiers.push(match[2]!);
  }
  for (const specifier of specifiers) {
    if (forbiddenModules.some((f) => f.test(specifier))) {
      found.push(`imports '${specifier}' (I/O modules are for the shells)`);
    } else if (
      !relativeAllowed.some((prefix) =>
        specifier.startsWith(prefix) && !specifier.slice(prefix.length).includes('..')
      ) &&
      !allowedPackages.has(specifier)
    ) {
      found.push(
        `imports '${specifier}' (only ${relativeAllowed.join('*.ts, ')}*.ts and ${
          [...allowedPackages].join(', ')
        })`,
      );
    }
  }
  if (/\bimport\s*\(\s*[^'"`\s]/.test(withStrings)) found.push('dynamic import of a computed name');
  for (const [pattern, name] of forbiddenGlobals) {
    if (pattern.test(codeOnly)) found.push(`uses ${name}`);
  }
  return found;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (/\.(ts|mts|cts|js|mjs)$/.test(entry.name)) out.push(path);
  }
  return out;
}

// Every file under lib/core is free of I/O imports, clocks, timers, Math.random and the process.
test('lib/core is pure', () => {
  const files = listTs(coreDir);
  assert.ok(files.length >= 6, `only ${files.length} files found under ${coreDir}`);
  assert.ok(files.some((f) => f.endsWith('raft.ts')), 'raft.ts is among the files checked');
  const violations: string[] = [];
  for (const file of files) {
    for (const v of coreImpurities(readFileSync(file, 'utf8'))) {
      violations.push(`${relative(repoRoot, file)}: ${v}`);
    }
  }
  assert.equal(violations, [], violations.join('\n'));
});

// lib/base is the vocabulary under everything: pure like the core, and it imports nothing of ours.
test('lib/base is pure and imports only itself', () => {
  const files = listTs(baseDir);
  assert.ok(files.some((f) => f.endsWith('messages.ts')), 'messages.ts is among the files checked');
  const violations: string[] = [];
  for (const file of files) {
    for (const v of coreImpurities(readFileSync(file, 'utf8'), ['./'])) {
      violations.push(`${relative(repoRoot, file)}: ${v}`);
    }
  }
  assert.equal(violations, [], violations.join('\n'));
  assert.ok(
    coreImpurities(`import { Raft } from '../core/raft.ts';`, ['./']).length > 0,
    'an import of the core from lib/base is caught',
  );
});

// The member driver, which the server and the simulator both run, sees I/O only through its
// ports: no node:* import, no timer, no clock, no randomness of its own, nothing of LMDB or TCP.
test('lib/member (the driver) is free of I/O, timers and clocks', () => {
  const files = listTs(memberDir);
  assert.ok(files.some((f) => f.endsWith('driver.ts')), 'driver.ts is among the files checked');
  const allowed = ['./', '../base/', '../core/', '../state/', '../storage/storage.ts'];
  const violations: string[] = [];
  for (const file of files) {
    for (const v of coreImpurities(readFileSync(file, 'utf8'), allowed)) {
      violations.push(`${relative(repoRoot, file)}: ${v}`);
    }
  }
  assert.equal(violations, [], violations.join('\n'));
  assert.ok(
    coreImpurities(`import { LmdbStorage } from '../storage/lmdb.ts';`, allowed).length > 0,
    'an import of the LMDB storage from the driver is caught',
  );
});

// The checker bites on each forbidden form, in code, and not on words in comments or strings.
test('the purity checker catches every forbidden form', () => {
  const bad: Array<[string, RegExp]> = [
    [`import { readFileSync } from 'node:fs';`, /imports 'node:fs'/],
    [`import fs from "node:fs/promises";`, /imports 'node:fs\/promises'/],
    [`import type { X } from 'node:net';`, /imports 'node:net'/],
    [`export { open } from 'lmdb';`, /imports 'lmdb'/],
    [`import {\n  Encoder,\n} from 'cbor-x/encode';`, /imports 'cbor-x\/encode'/],
    [`import 'cbor-x';`, /imports 'cbor-x'/],
    [`const m = await import('node:os');`, /imports 'node:os'/],
    [`const m = await import(name);`, /dynamic import of a computed name/],
    [`const fs = require('fs');`, /imports 'fs'/],
    [`import { x } from '../storage/lmdb.ts';`, /imports '\.\.\/storage\/lmdb\.ts'/],
    [`import { x } from '../base/../storage/lmdb.ts';`, /imports '\.\.\/base\/\.\.\//],
    [`const t = Date.now();`, /uses Date/],
    [`const d = new Date();`, /uses Date/],
    [`setTimeout(() => {}, 5);`, /uses setTimeout/],
    [`setInterval(f, 5);`, /uses setInterval/],
    [`setImmediate(f);`, /uses setImmediate/],
    [`const t = performance.now();`, /uses performance/],
    [`const r = Math.random();`, /uses Math\.random/],
    [`const r = Math['random']();`, /uses Math\[/],
    [`const e = process.env.X;`, /uses process/],
    [`const b = crypto.getRandomValues(a);`, /uses crypto/],
    [`const s = \`at \${Date.now()} ms\`;`, /uses Date/],
    [`const g = globalThis.Date;`, /uses globalThis/],
  ];
  for (const [source, expected] of bad) {
    const found = coreImpurities(source);
    assert.ok(
      found.some((f) => expected.test(f)),
      `not caught: ${source} (found ${JSON.stringify(found)})`,
    );
  }
  const clean = [
    `// Never call Date.now() or Math.random() here, nor import 'node:fs'`,
    `/** Like \`Math.random\`; see process docs. */\nexport type R = () => number;`,
    `import * as v from 'valibot';\nimport { assert } from '../base/errors.ts';`,
    `throw new RangeError('Cannot process the Date: crypto');`,
    `const s = \`term \${term}: process \${index}\`;`,
    `const updated = 1; const processed = 2; const candidate = 3;`,
  ];
  for (const source of clean) assert.equal(coreImpurities(source), [], source);
});

test.run();
