/**
 * Turn bench rows into a text table and an SVG bar chart, with columns taken from the rows
 * themselves (labels first, figures after), so every bench that prints ROW lines can use them.
 *
 * @example
 * ```ts
 * console.log(table(rows));
 * writeFileSync('append.svg', barChart(rows, 'entriesPerSec', 'append'));
 * ```
 * @module
 */
import type { Row } from './rows.ts';

/** Column names in first-seen order: string-valued ones first, then numeric ones. */
export function columns(rows: readonly Row[]): { labels: string[]; figures: string[] } {
  const labels: string[] = [];
  const figures: string[] = [];
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      const list = typeof value === 'number' ? figures : labels;
      if (!labels.includes(key) && !figures.includes(key)) list.push(key);
    }
  }
  return { labels, figures };
}

function formatFigure(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value.toFixed(Math.abs(value) < 10 ? 3 : 1);
}

/** A plain-text table: labels left-aligned, figures right-aligned. */
export function table(rows: readonly Row[]): string {
  const { labels, figures } = columns(rows);
  const header = [...labels, ...figures];
  const cells = rows.map((row) =>
    header.map((key) => {
      const value = row[key];
      return value === undefined ? '' : typeof value === 'number' ? formatFigure(value) : value;
    })
  );
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) =>
    values.map((v, i) => (i < labels.length ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(
      '  ',
    );
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A horizontal bar chart of `metric`, one bar per row, labelled by the row's labels. */
export function barChart(rows: readonly Row[], metric: string, title: string): string {
  const { labels } = columns(rows);
  const shown = labels.filter((l) => l !== 'bench');
  const barHeight = 18;
  const gap = 6;
  const labelWidth = 260;
  const barWidthMax = 520;
  const top = 40;
  const values = rows.map((r) => (typeof r[metric] === 'number' ? r[metric] : 0));
  const max = Math.max(1, ...values);
  const height = top + rows.length * (barHeight + gap) + 20;
  const width = labelWidth + barWidthMax + 140;
  const palette = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];
  const runtimes = [...new Set(rows.map((r) => String(r['runtime'] ?? '')))];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${
      escapeXml(`${title}: ${metric}`)
    }</text>`,
  ];
  rows.forEach((row, i) => {
    const y = top + i * (barHeight + gap);
    const value = values[i]!;
    const barWidth = Math.max(1, (value / max) * barWidthMax);
    const color = palette[runtimes.indexOf(String(row['runtime'] ?? '')) % palette.length];
    const label = shown.map((l) => `${l}=${row[l] ?? ''}`).join(' ');
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${escapeXml(label)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${
        barWidth.toFixed(1)
      }" height="${barHeight}" fill="${color}"/>`,
      `<text x="${labelWidth + barWidth + 6}" y="${y + 13}">${
        escapeXml(formatFigure(value))
      }</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
