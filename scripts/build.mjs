// `npm run build` (and so `npm pack`): dist/ from scratch, the JavaScript and declarations that the
// npm package ships. tsc rewrites the sources' relative `.ts` imports to `.js` in the JavaScript
// (rewriteRelativeImportExtensions) but keeps `.ts` in the declarations, which then name files the
// package does not ship; Deno, reading the `types` export through npm:, refuses them. So the
// declarations' relative specifiers are rewritten here too.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

// Paths are relative to the repository root, where npm runs scripts.
process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const outDir = 'dist';
rmSync(outDir, { recursive: true, force: true }); // never ship a file of an earlier build
// The project's own TypeScript, by path: `node scripts/build.mjs` works outside `npm run` too.
const tscScript = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
const tsc = spawnSync(process.execPath, [tscScript, '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// A quoted relative path ending in .ts: an import, export or import() type in a declaration.
const relativeTs = /(['"])(\.\.?\/[^'"\n]*)\.ts\1/g;
let rewritten = 0;
for (const file of readdirSync(outDir, { recursive: true })) {
  if (!String(file).endsWith('.d.ts')) continue;
  const path = join(outDir, String(file));
  const text = readFileSync(path, 'utf8');
  const fixed = text.replace(relativeTs, (_m, quote, stem) => `${quote}${stem}.js${quote}`);
  if (fixed !== text) {
    writeFileSync(path, fixed);
    rewritten += 1;
  }
}
console.log(
  `dist/ built; relative .ts specifiers rewritten to .js in ${rewritten} declaration files`,
);
