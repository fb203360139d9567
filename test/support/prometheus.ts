/**
 * A strict parser for the Prometheus text exposition format (version 0.0.4), for the metrics
 * tests (Debian's `promtool check metrics` is not installed here). Every line is checked, and the
 * first fault throws with its line number:
 * - metric and label names match the format's grammar; label values use only `\\`, `\"`, `\n`
 *   escapes; a label name appears once per sample, none starts with `__`;
 * - `# TYPE` (counter, gauge, histogram, summary, untyped) comes exactly once per family and
 *   before its samples (stricter than the format, which allows untyped samples without one); `# HELP` at most once; a family's lines are contiguous;
 * - values are floats (`+Inf`, `-Inf`, `NaN` allowed), an optional timestamp an integer;
 * - no series (name and label set) appears twice;
 * - counters are named `..._total` and never negative;
 * - a histogram has, per label set, `_bucket` samples with strictly increasing `le` ending in
 *   `+Inf`, cumulative counts that never decrease, `_count` equal to the `+Inf` bucket, and `_sum`.
 *
 * `checkNoDecrease` compares two scrapes: no counter (nor histogram count, sum or bucket) went
 * down, and none disappeared.
 *
 * @example
 * ```ts
 * const families = parseExposition(await (await fetch(url)).text());
 * valueOf(families, 'edgeraft_server_term', { member: 'a' }); // 3
 * ```
 * @module
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Family = { name: string; type: MetricType; help: string | null; samples: Sample[] };

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const floatText = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A fault in the exposition text, with its 1-based line number. */
export class ExpositionError extends Error {
  constructor(line: number, message: string) {
    super(`Line ${line}: ${message}`);
    this.name = 'ExpositionError';
  }
}

function parseFloatStrict(text: string, line: number): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!floatText.test(text)) {
    throw new ExpositionError(line, `not a float: ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** A family being parsed: `typeSet` once its `# TYPE` line was read. */
type Building = Family & { typeSet?: boolean };

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, declared: Map<string, Building>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = declared.get(base);
      if (f !== undefined && (f.type === 'histogram' || f.type === 'summary')) return base;
    }
  }
  return name;
}

/** Parse `{a="x",b="y"}` starting at `text[0] === '{'`; returns the labels and the rest. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new ExpositionError(line, 'label without =');
    const name = text.slice(i, eq);
    if (!labelName.test(name)) {
      throw new ExpositionError(line, `bad label name ${JSON.stringify(name)}`);
    }
    if (name.startsWith('__')) throw new ExpositionError(line, `reserved label name ${name}`);
    if (name in labels) throw new ExpositionError(line, `label ${name} given twice`);
    if (text[eq + 1] !== '"') throw new ExpositionError(line, `label ${name}: value not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new ExpositionError(line, `label ${name}: unterminated value`);
      if (c === '"') break;
      if (c === '\n') throw new ExpositionError(line, `label ${name}: raw newline`);
      if (c === '\\') {
        const e = text[j + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new ExpositionError(line, `label ${name}: bad escape \\${e ?? ''}`);
        j += 2;
        continue;
      }
      value += c;
      j += 1;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
    else if (text[i] !== '}') throw new ExpositionError(line, `label ${name}: expected , or }`);
  }
}

function seriesKey(name: string, labels: Record<string, string>, omit?: string): string {
  const keys = Object.keys(labels).filter((k) => k !== omit).sort();
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

/** See the module comment. Returns the families in order of appearance. */
export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(0, 'no final newline');
  const families = new Map<string, Building>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  const enter = (name: string, line: number) => {
    if (current === name) return;
    if (closed.has(name)) throw new ExpositionError(line, `family ${name} is not contiguous`);
    if (current !== null) closed.add(current);
    current = name;
  };
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, k) => {
    const line = k + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string | undefined];
      if (!metricName.test(name)) throw new ExpositionError(line, `bad metric name ${name}`);
      enter(name, line);
      let f = families.get(name);
      if (kind === 'TYPE') {
        if (rest === undefined || !types.has(rest)) {
          throw new ExpositionError(line, `bad type ${JSON.stringify(rest)}`);
        }
        if (f !== undefined && (f.samples.length > 0 || f.type !== 'untyped' || f.typeSet)) {
          throw new ExpositionError(line, `TYPE of ${name} after its samples or given twice`);
        }
        if (f === undefined) {
          f = { name, type: rest as MetricType, help: null, samples: [], typeSet: true };
          families.set(name, f);
        } else {
          f.type = rest as MetricType;
          f.typeSet = true;
        }
      } else {
        if (f?.help !== undefined && f.help !== null) {
          throw new ExpositionError(line, `HELP of ${name} given twice`);
        }
        if (f === undefined) {
          f = { name, type: 'untyped', help: rest ?? '', samples: [], typeSet: false };
          families.set(name, f);
        } else f.help = rest ?? '';
        if (/\\[^\\n]/.test((rest ?? '').replace(/\\\\/g, ''))) {
          throw new ExpositionError(line, `HELP of ${name}: bad escape`);
        }
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (nameMatch === null) {
      throw new ExpositionError(line, `bad sample line ${JSON.stringify(raw)}`);
    }
    const name = nameMatch[0];
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) {
      throw new ExpositionError(line, `expected "name{labels} value [timestamp]": ${raw}`);
    }
    const value = parseFloatStrict(parts[1]!, line);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) {
      throw new ExpositionError(line, `bad timestamp ${parts[2]}`);
    }
    const familyName = familyOf(name, families);
    enter(familyName, line);
    let f = families.get(familyName);
    if (f === undefined) {
      f = { name: familyName, type: 'untyped', help: null, samples: [], typeSet: false };
      families.set(familyName, f);
    }
    if (f.typeSet !== true) throw new ExpositionError(line, `sample ${name} before its TYPE`);
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new ExpositionError(line, `series ${key} given twice`);
    series.add(key);
    if (f.type === 'counter') {
      if (!name.endsWith('_total')) throw new ExpositionError(line, `counter ${name} not _total`);
      if (!(value >= 0)) throw new ExpositionError(line, `counter ${name} is ${value}`);
    }
    if (f.type === 'histogram' && name === familyName) {
      throw new ExpositionError(line, `histogram ${name} sample without _bucket/_sum/_count`);
    }
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type === 'histogram') checkHistogram(f);
    delete f.typeSet;
  }
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<
    string,
    { les: number[]; counts: number[]; count?: number; sum?: number }
  >();
  const group = (labels: Record<string, string>) => {
    const key = seriesKey('', labels, 'le');
    let g = groups.get(key);
    if (g === undefined) groups.set(key, g = { les: [], counts: [] });
    return g;
  };
  for (const s of f.samples) {
    const g = group(s.labels);
    if (s.name === `${f.name}_bucket`) {
      const le = s.labels['le'];
      if (le === undefined) throw new ExpositionError(0, `${s.name} without le`);
      const bound = parseFloatStrict(le, 0);
      const prev = g.les.at(-1);
      if (prev !== undefined && !(bound > prev)) {
        throw new ExpositionError(0, `${f.name}: bucket le=${le} after le=${prev}`);
      }
      const prevCount = g.counts.at(-1);
      if (prevCount !== undefined && s.value < prevCount) {
        throw new ExpositionError(0, `${f.name}: bucket le=${le} count ${s.value} < ${prevCount}`);
      }
      g.les.push(bound);
      g.counts.push(s.value);
    } else if (s.name === `${f.name}_count`) g.count = s.value;
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
  }
  for (const [key, g] of groups) {
    if (g.les.at(-1) !== Infinity) throw new ExpositionError(0, `${f.name}${key}: no +Inf bucket`);
    if (g.count === undefined || g.sum === undefined) {
      throw new ExpositionError(0, `${f.name}${key}: _count or _sum missing`);
    }
    if (g.count !== g.counts.at(-1)) {
      throw new ExpositionError(0, `${f.name}${key}: _count ${g.count} != +Inf bucket`);
    }
  }
}

/** The value of the one sample `name` whose labels include `labels`; throws if not exactly one. */
export function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found: number[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) found.push(s.value);
    }
  }
  if (found.length !== 1) {
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  }
  return found[0]!;
}

/** See the module comment: throws naming the first counter series that went down or vanished. */
export function checkNoDecrease(before: Map<string, Family>, after: Map<string, Family>): void {
  const monotonic = (f: Family, s: Sample) =>
    f.type === 'counter' || (f.type === 'histogram' && s.name !== f.name);
  const later = new Map<string, number>();
  for (const f of after.values()) {
    for (const s of f.samples) if (monotonic(f, s)) later.set(seriesKey(s.name, s.labels), s.value);
  }
  for (const f of before.values()) {
    for (const s of f.samples) {
      if (!monotonic(f, s)) continue;
      const key = seriesKey(s.name, s.labels);
      const v = later.get(key);
      if (v === undefined) throw new Error(`${key} disappeared between two scrapes`);
      if (v < s.value) throw new Error(`${key} went down between two scrapes: ${s.value} -> ${v}`);
    }
  }
}
