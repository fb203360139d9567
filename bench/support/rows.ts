/**
 * The row format every bench prints: one line `ROW <json>` on stdout per measured case, where the
 * JSON is a flat object of string labels (`bench`, `runtime`, case parameters) and numeric
 * figures; progress goes to stderr. `bench/run.ts` collects the rows of every runtime.
 *
 * @example
 * ```ts
 * printRow({ bench: 'append', runtime: 'node', batch: '64', entriesPerSec: 812000 });
 * progress('append: 100 B x 64');
 * ```
 * @module
 */
import process from 'node:process';

/** One measured case: labels are strings, figures are numbers. */
export type Row = Record<string, string | number>;

/** The prefix that marks a row on stdout. */
export const rowPrefix = 'ROW ';

/** Print `row` as a ROW line on stdout. */
export function printRow(row: Row): void {
  process.stdout.write(`${rowPrefix}${JSON.stringify(row)}\n`);
}

/** Print a progress message on stderr. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Parse a ROW line, or return `null` for any other line. */
export function parseRow(line: string): Row | null {
  if (!line.startsWith(rowPrefix)) return null;
  const value: unknown = JSON.parse(line.slice(rowPrefix.length));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const row: Row = {};
  for (const [key, field] of Object.entries(value)) {
    if (typeof field === 'string' || typeof field === 'number') row[key] = field;
  }
  return row;
}
