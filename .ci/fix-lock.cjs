// The npm registry this project's machines reach does not serve every platform's prebuilt
// binary (for example @deno/darwin-arm64 or @cbor-extract/*), so `npm install` leaves them out of
// package-lock.json and `npm ci` then refuses the lockfile ("Missing: ... from lock file").
// This records each one the way npm would for another platform: an optional entry restricted to
// its os and cpu, which `npm ci` skips where it does not apply.
//
// Usage, after regenerating the lockfile:
//   npm ci 2> /tmp/ci.log; node .ci/fix-lock.cjs /tmp/ci.log; npm ci
const fs = require('node:fs');
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const log = fs.readFileSync(process.argv[2], 'utf8');
const missing = log.split('\n').map((l) => /Missing: (@[^@\s]+\/[^@\s]+)@/.exec(l)?.[1]).filter(Boolean);
for (const name of missing) {
  const parent = Object.entries(lock.packages).find(([, e]) => e.optionalDependencies?.[name]);
  if (parent === undefined) throw new Error(`No package in the lockfile names ${name} as optional`);
  const version = parent[1].optionalDependencies[name].replace(/^[\^~]/, '');
  const os = /darwin/.test(name) ? 'darwin' : /win32/.test(name) ? 'win32' : 'linux';
  const cpu = /arm64/.test(name) ? 'arm64' : /-arm($|-)/.test(name) ? 'arm' : 'x64';
  const entry = { version, cpu: [cpu], os: [os], optional: true };
  if (parent[1].dev) entry.dev = true;
  if (name.includes('glibc')) entry.libc = ['glibc'];
  lock.packages[`node_modules/${name}`] = entry;
  console.log(`recorded ${name}@${version} (${os}/${cpu}) for ${parent[0]}`);
}
// Keep npm's order (the root, then paths sorted), so a later `npm install` leaves the file alone.
const sorted = { '': lock.packages[''] };
for (const key of Object.keys(lock.packages).filter((k) => k !== '').sort((a, b) => a.localeCompare(b, 'en'))) {
  sorted[key] = lock.packages[key];
}
lock.packages = sorted;
fs.writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
