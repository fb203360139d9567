/**
 * What a torture run writes: `report.json` (the verdict, the faults with their times, the
 * availability figures, the checks, and the whole history), `timeline.svg` (one lane per client
 * with its operations colored by outcome, the leader on a lane of its own, the faults drawn as
 * bands) and `report.html` (the same picture with the tables, in one self-contained file).
 *
 * Availability, per fault: the window runs from the fault's start to `afterHealMs` after its heal;
 * in it, operations called by outcome, the milliseconds without a leader (as the monitor polling
 * every member's status saw it), and the longest time without any acknowledged operation.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultKind, FaultRecord } from './nemesis.ts';
import type { LeaderSample, TortureResult } from './harness.ts';
import type { TortureOperation } from './workload.ts';

/** How long after a heal a fault's window goes on, in milliseconds. */
export const afterHealMs = 3_000;

/** One fault's availability figures. */
export type FaultAvailability = FaultRecord & {
  windowEndMs: number;
  ok: number;
  fail: number;
  unknown: number;
  leaderlessMs: number;
  /** Longest time in the window without an acknowledged operation. */
  unavailableMs: number;
};

/** The run's availability figures. */
export type Availability = {
  leaderlessMs: number;
  operations: { ok: number; fail: number; unknown: number };
  perFault: FaultAvailability[];
  /** Worst `unavailableMs` after a kill of the leader, and after a partition; null: none ran. */
  worstAfterLeaderKillMs: number | null;
  worstAfterPartitionMs: number | null;
  faultCounts: Partial<Record<FaultKind, number>>;
};

/** Work out the availability figures of `result`. */
export function availability(result: TortureResult): Availability {
  const endMs = lastTimeMs(result);
  const okTimes = result.history.filter((op) => op.outcome === 'ok').map((op) => op.returnMs!)
    .sort((a, b) => a - b);
  const perFault = result.faults.map((f): FaultAvailability => {
    const windowEndMs = Math.min(endMs, f.endMs + afterHealMs);
    const ops = result.history.filter((op) => op.callMs >= f.startMs && op.callMs < windowEndMs);
    return {
      ...f,
      windowEndMs,
      ok: ops.filter((op) => op.outcome === 'ok').length,
      fail: ops.filter((op) => op.outcome === 'fail').length,
      unknown: ops.filter((op) => op.outcome === 'unknown').length,
      leaderlessMs: round(leaderlessIn(result.leaders, f.startMs, windowEndMs, endMs)),
      unavailableMs: round(longestGap(okTimes, f.startMs, windowEndMs)),
    };
  });
  const worst = (pick: (f: FaultAvailability) => boolean) => {
    const chosen = perFault.filter(pick);
    return chosen.length === 0 ? null : Math.max(...chosen.map((f) => f.unavailableMs));
  };
  const faultCounts: Partial<Record<FaultKind, number>> = {};
  for (const f of result.faults) faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
  const count = (o: TortureOperation['outcome']) =>
    result.history.filter((op) => op.outcome === o).length;
  return {
    leaderlessMs: round(leaderlessIn(result.leaders, 0, endMs, endMs)),
    operations: { ok: count('ok'), fail: count('fail'), unknown: count('unknown') },
    perFault,
    worstAfterLeaderKillMs: worst((f) => f.kind === 'kill' && f.leader),
    worstAfterPartitionMs: worst((f) => f.kind === 'partition'),
    faultCounts,
  };
}

/** Write report.json, timeline.svg and report.html into `dir`; returns their paths. */
export function writeReport(result: TortureResult, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const avail = availability(result);
  const svg = timelineSvg(result);
  const json = join(dir, 'report.json');
  const svgPath = join(dir, 'timeline.svg');
  const html = join(dir, 'report.html');
  // A passing run's outputs (whole values, kilobytes each) are left out of the JSON: they would
  // make it hundreds of megabytes, and only a failure needs them as evidence.
  const history = result.verdict === 'ok'
    ? result.history.map(({ output: _output, ...op }) => op)
    : result.history;
  writeFileSync(
    json,
    JSON.stringify({
      ...result,
      history,
      historyOutputs: result.verdict === 'ok' ? 'omitted (verdict ok)' : 'included',
      availability: avail,
    }),
  );
  writeFileSync(svgPath, svg);
  writeFileSync(html, reportHtml(result, avail, svg));
  return [json, svgPath, html];
}

/** The report's text summary, for the command line. */
export function summaryText(result: TortureResult, avail = availability(result)): string {
  const s = (ms: number | null) => ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`;
  const counts = Object.entries(avail.faultCounts).map(([k, n]) => `${k} ${n}`).join(', ');
  return [
    `verdict: ${result.verdict}: ${result.summary}`,
    `linearizability: ${result.linearizability.verdict} (${result.linearizability.operations} operations checked in ${result.linearizability.elapsedMs} ms)${
      result.linearizability.reason === null ? '' : `: ${result.linearizability.reason}`
    }`,
    `operations: ${avail.operations.ok} ok, ${avail.operations.fail} failed, ${avail.operations.unknown} unknown`,
    `appends: ${result.writes.acknowledgedAppends} acknowledged, ${result.writes.lost.length} lost, ${result.writes.duplicated.length} applied twice, ${result.writes.phantom.length} from nowhere; ${result.writes.unknownApplied} of unknown outcome took effect`,
    `faults: ${result.faults.length} (${counts || 'none'})`,
    `without a leader: ${s(avail.leaderlessMs)} in all; worst unavailability after a leader kill ${
      s(avail.worstAfterLeaderKillMs)
    }, after a partition ${s(avail.worstAfterPartitionMs)}`,
    ...result.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

function lastTimeMs(result: TortureResult): number {
  let end = 0;
  for (const op of result.history) end = Math.max(end, op.returnMs ?? op.callMs);
  for (const f of result.faults) end = Math.max(end, f.endMs);
  return end;
}

function leaderlessIn(leaders: LeaderSample[], fromMs: number, toMs: number, endMs: number) {
  let total = 0;
  for (let i = 0; i < leaders.length; i++) {
    if (leaders[i]!.leader !== null) continue;
    const a = Math.max(fromMs, leaders[i]!.atMs);
    const b = Math.min(toMs, leaders[i + 1]?.atMs ?? endMs);
    if (b > a) total += b - a;
  }
  return total;
}

/** Longest stretch of [fromMs, toMs] containing none of `sortedTimes`. */
function longestGap(sortedTimes: number[], fromMs: number, toMs: number): number {
  let previous = fromMs;
  let longest = 0;
  for (const t of sortedTimes) {
    if (t < fromMs) continue;
    if (t > toMs) break;
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return Math.max(longest, toMs - previous);
}

const round = (ms: number) => Math.round(ms);

const faultColors: Record<FaultKind, string> = {
  kill: '#d62728',
  stop: '#9467bd',
  partition: '#ff7f0e',
  'one-way': '#e6ab02',
  clock: '#17becf',
  'disk-full': '#8c564b',
  'slow-sync': '#7f7f7f',
};
/** The short labels of a crowded timeline (`*`: the leader was hit). */
const faultShort: Record<FaultKind, string> = {
  kill: 'K',
  stop: 'S',
  partition: 'P',
  'one-way': '1W',
  clock: 'C',
  'disk-full': 'D',
  'slow-sync': 'Y',
};
const outcomeColors = { ok: '#2ca02c', fail: '#d62728', unknown: '#ff9f1c' } as const;
const leaderPalette = ['#1f77b4', '#e377c2', '#bcbd22', '#17becf', '#8c564b', '#9467bd', '#7f7f7f'];

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The timeline: time left to right, a lane per client (operations merged per pixel, the worst
 * outcome winning: unknown over failed over ok), the leader lane on top, fault bands behind.
 */
export function timelineSvg(result: TortureResult): string {
  const width = 1400;
  const left = 70;
  const right = 20;
  const laneH = 18;
  const clients = [...new Set(result.history.map((op) => op.client))].sort((a, b) =>
    Number(a.slice(1)) - Number(b.slice(1))
  );
  const labelRows = 4;
  const top = 40 + labelRows * 13;
  const lanesTop = top + laneH + 8;
  const height = lanesTop + clients.length * laneH + 50;
  const endMs = Math.max(1, lastTimeMs(result));
  const plotW = width - left - right;
  const x = (ms: number) => left + (ms / endMs) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="16" font-size="13" font-weight="bold">edgeraft torture: ${
      esc(result.verdict)
    }: ${esc(result.summary)}</text>`,
    `<text x="${left}" y="31" fill="#555">${result.options.members} members under ${result.options.runtime}, ${result.options.clients} clients, seed ${result.options.seed}, ${
      (endMs / 1000).toFixed(1)
    } s${
      result.options.plantedFaults.length > 0
        ? `, PLANTED BUG: ${esc(result.options.plantedFaults.join(','))}`
        : ''
    }; fault labels: kind (legend), member, * when it was the leader</text>`,
  );
  // Fault bands and their labels: each label on the first row where it fits, else shortened
  // (the kind's letters), else left out (the band's tooltip and report.html still say it all).
  const rowEnds: number[] = new Array(labelRows).fill(0);
  const charW = 6;
  result.faults.forEach((f, i) => {
    const x0 = x(f.startMs);
    const w = Math.max(1, x(f.endMs) - x0);
    const color = faultColors[f.kind];
    const label = `${f.kind} ${f.targets.join(',')}${f.leader ? ' (leader)' : ''}`;
    const short = `${faultShort[f.kind]}${f.targets.join(',').replace(/^n/, '')}${
      f.leader ? '*' : ''
    }`;
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${top - 2}" width="${w.toFixed(1)}" height="${
        height - top - 38
      }" fill="${color}" fill-opacity="0.16"><title>${esc(`${label}: ${f.how}`)} [${
        (f.startMs / 1000).toFixed(2)
      } s, ${(f.endMs / 1000).toFixed(2)} s]${
        f.note === undefined ? '' : esc(`: ${f.note}`)
      }</title></rect>`,
    );
    // The full label when it fits before the next fault begins, else the short one.
    const nextX = i + 1 < result.faults.length ? x(result.faults[i + 1]!.startMs) : width;
    const text = label.length * charW + 4 <= nextX - x0 ? label : short;
    const row = rowEnds.findIndex((end) => end <= x0);
    if (row !== -1) {
      rowEnds[row] = x0 + text.length * charW + 8;
      out.push(
        `<text x="${(x0 + 1).toFixed(1)}" y="${40 + row * 13 + 9}" fill="${color}">${
          esc(text)
        }</text>`,
      );
    }
  });
  // The leader lane.
  out.push(`<text x="4" y="${top + 13}">leader</text>`);
  const ids = [...new Set(result.leaders.map((l) => l.leader).filter((l) => l !== null))].sort();
  result.leaders.forEach((l, i) => {
    const a = x(l.atMs);
    const b = x(result.leaders[i + 1]?.atMs ?? endMs);
    const color = l.leader === null
      ? '#ddd'
      : leaderPalette[ids.indexOf(l.leader) % leaderPalette.length]!;
    out.push(
      `<rect x="${a.toFixed(1)}" y="${top}" width="${Math.max(0.5, b - a).toFixed(1)}" height="${
        laneH - 4
      }" fill="${color}"><title>${esc(l.leader ?? 'no leader')} term ${l.term} from ${
        (l.atMs / 1000).toFixed(2)
      } s</title></rect>`,
    );
    if (l.leader !== null && b - a > 18) {
      out.push(
        `<text x="${(a + 2).toFixed(1)}" y="${top + 11}" fill="#fff">${esc(l.leader)}</text>`,
      );
    }
    if (i > 0) {
      out.push(
        `<line x1="${a.toFixed(1)}" x2="${a.toFixed(1)}" y1="${top - 2}" y2="${
          lanesTop + clients.length * laneH
        }" stroke="#333" stroke-width="0.5" stroke-dasharray="2,2"/>`,
      );
    }
  });
  // Client lanes: per pixel column the worst outcome of the operations that cover it.
  const rank = { ok: 1, fail: 2, unknown: 3 } as const;
  const names = ['', 'ok', 'fail', 'unknown'] as const;
  clients.forEach((client, lane) => {
    const y = lanesTop + lane * laneH;
    out.push(`<text x="4" y="${y + 12}">${esc(client)}</text>`);
    const columns = new Uint8Array(plotW + 1);
    for (const op of result.history) {
      if (op.client !== client) continue;
      const a = Math.floor(x(op.callMs) - left);
      const b = Math.floor(x(op.returnMs ?? endMs) - left);
      const r = rank[op.outcome];
      for (let c = Math.max(0, a); c <= Math.min(plotW, b); c++) {
        if (columns[c]! < r) columns[c] = r;
      }
    }
    let c = 0;
    while (c <= plotW) {
      const r = columns[c]!;
      let e = c;
      while (e + 1 <= plotW && columns[e + 1] === r) e++;
      if (r !== 0) {
        out.push(
          `<rect x="${left + c}" y="${y + 2}" width="${e - c + 1}" height="${laneH - 6}" fill="${
            outcomeColors[names[r] as 'ok']
          }"/>`,
        );
      }
      c = e + 1;
    }
  });
  // Time axis and legend.
  const axisY = lanesTop + clients.length * laneH + 6;
  const stepS = niceStep(endMs / 1000 / 12);
  for (let s = 0; s * 1000 <= endMs; s += stepS) {
    const xs = x(s * 1000);
    out.push(
      `<line x1="${xs.toFixed(1)}" x2="${xs.toFixed(1)}" y1="${axisY}" y2="${
        axisY + 4
      }" stroke="#333"/>`,
      `<text x="${xs.toFixed(1)}" y="${axisY + 15}" text-anchor="middle">${s} s</text>`,
    );
  }
  let lx = left;
  const legendY = axisY + 32;
  for (const [name, color] of Object.entries(outcomeColors)) {
    out.push(
      `<rect x="${lx}" y="${legendY - 9}" width="10" height="10" fill="${color}"/>`,
      `<text x="${lx + 14}" y="${legendY}">${name}</text>`,
    );
    lx += 70;
  }
  for (const [name, color] of Object.entries(faultColors)) {
    out.push(
      `<rect x="${lx}" y="${
        legendY - 9
      }" width="10" height="10" fill="${color}" fill-opacity="0.4"/>`,
      `<text x="${lx + 14}" y="${legendY}">${name} (${faultShort[name as FaultKind]})</text>`,
    );
    lx += 100;
  }
  out.push('</svg>');
  return out.join('\n');
}

function niceStep(raw: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (s >= raw) return s;
  return 1200;
}

function reportHtml(result: TortureResult, avail: Availability, svg: string): string {
  const rows = avail.perFault.map((f) =>
    `<tr><td>${(f.startMs / 1000).toFixed(2)}</td><td>${
      (f.endMs / 1000).toFixed(2)
    }</td><td>${f.kind}</td><td>${esc(f.targets.join(','))}${f.leader ? ' (leader)' : ''}</td><td>${
      esc(f.how)
    }${
      f.note === undefined ? '' : `<br><i>${esc(f.note)}</i>`
    }</td><td>${f.ok}</td><td>${f.fail}</td><td>${f.unknown}</td><td>${f.leaderlessMs}</td><td>${f.unavailableMs}</td></tr>`
  ).join('\n');
  const explanation = result.linearizability.explanation === null
    ? ''
    : `<h2>Linearizability failure</h2><pre>${esc(result.linearizability.explanation)}</pre>`;
  const list = (title: string, items: string[]) =>
    items.length === 0
      ? ''
      : `<h2>${title} (${items.length})</h2><pre>${esc(items.slice(0, 200).join('\n'))}</pre>`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>edgeraft torture: ${esc(result.verdict)}</title>
<style>body{font-family:system-ui,sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}.ok{color:#2ca02c}.failed{color:#d62728}.unknown{color:#ff9f1c}pre{background:#f6f6f6;padding:8px;overflow:auto}</style>
</head><body>
<h1>edgeraft torture: <span class="${esc(result.verdict)}">${esc(result.verdict)}</span></h1>
<pre>${esc(summaryText(result, avail))}</pre>
<p>Started ${esc(result.startedAt)}; times below are seconds since the start.</p>
${svg}
<h2>Faults</h2>
<table><tr><th>start s</th><th>heal s</th><th>kind</th><th>target</th><th>how</th><th>ok</th><th>failed</th><th>unknown</th><th>ms without leader</th><th>longest ms without an ok</th></tr>
${rows}
</table>
<p>Each fault's window runs to ${afterHealMs / 1000} s after its heal.</p>
${explanation}
${list('Acknowledged appends lost', result.writes.lost)}
${list('Appends applied more than once', result.writes.duplicated)}
${list('Appends from nowhere', result.writes.phantom)}
</body></html>
`;
}
