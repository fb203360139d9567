/**
 * Investigation helper: the top self-time consumers of a V8 `.cpuprofile` (from `node
 * --cpu-prof`), grouped by `file:function`, with their share of the sampled time; idle and
 * garbage collection shown as their own rows. Paths are shown relative to the repository.
 *
 * Usage: `tsx bench/support/profile-top.ts FILE.cpuprofile [--top 25]`
 *
 * @example
 * ```sh
 * node_modules/.bin/tsx bench/support/profile-top.ts /tmp/prof/n1.cpuprofile --top 30
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
};

const file = process.argv[2];
if (file === undefined) throw new TypeError('Usage: profile-top.ts FILE.cpuprofile [--top N]');
const at = process.argv.indexOf('--top');
const top = at === -1 ? 25 : Number(process.argv[at + 1]);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<string, number>();
const byFile = new Map<string, number>();
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]!)!;
  const dt = profile.timeDeltas[i] ?? 0;
  totalUs += dt;
  const { functionName, url, lineNumber } = node.callFrame;
  const shortUrl = url.replace(/^file:\/\/.*?\/(node_modules|lib|bench)\//, '$1/').replace(
    /^node:/,
    'node:',
  );
  const key = url === ''
    ? `(${functionName})`
    : `${shortUrl}:${lineNumber + 1} ${functionName || '(anonymous)'}`;
  selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  const fileKey = url === ''
    ? `(${functionName})`
    : shortUrl.replace(/^(node_modules\/[^/]+)\/.*$/, '$1');
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + dt);
}
const idle = selfUs.get('(idle)') ?? 0;
const busy = totalUs - idle;
process.stdout.write(
  `${file}: ${(totalUs / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy (${
    (100 * busy / totalUs).toFixed(1)
  }%)\n`,
);
process.stdout.write('  by function (share of busy time):\n');
for (
  const [key, us] of [...selfUs].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(
    0,
    top,
  )
) {
  process.stdout.write(
    `  ${(100 * us / busy).toFixed(1).padStart(5)}%  ${
      (us / 1000).toFixed(0).padStart(6)
    } ms  ${key}\n`,
  );
}
process.stdout.write('  by file or package:\n');
for (
  const [key, us] of [...byFile].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(
    0,
    15,
  )
) {
  process.stdout.write(
    `  ${(100 * us / busy).toFixed(1).padStart(5)}%  ${
      (us / 1000).toFixed(0).padStart(6)
    } ms  ${key}\n`,
  );
}
