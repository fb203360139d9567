/**
 * The package's version, for `edgeraft --version`: read from the package's own `package.json`,
 * found by walking up from this module. That one search works in a checkout (`lib/cli/` is two
 * folders below it) and in the built npm package (`dist/lib/cli/` is three below), where a fixed
 * relative path or a JSON import of one of the two layouts would break in the other.
 *
 * @example
 * ```ts
 * console.log(packageVersion()); // '0.1.0'
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package name the search looks for (any other `package.json` on the way is passed over). */
const packageName = 'edgeraft';
/** Folders searched above this module's: enough for `dist/lib/cli/` with room to spare. */
const foldersUpMax = 5;

/** The version in the edgeraft `package.json` above this module; throws if there is none. */
export function packageVersion(): string {
  const here = (import.meta as unknown as { url: string }).url;
  for (let up = 1; up <= foldersUpMax; up++) {
    const url = new URL(`${'../'.repeat(up)}package.json`, here);
    let text: string;
    try {
      text = readFileSync(fileURLToPath(url), 'utf8');
    } catch {
      continue; // none at this level (or not a file: URL)
    }
    const json = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (json.name === packageName && typeof json.version === 'string') return json.version;
  }
  throw new Error(`No ${packageName} package.json found above ${here}`);
}
