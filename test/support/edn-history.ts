/**
 * Parse a Jepsen-style EDN history of a key-value store (the `kv/*.txt` linearizability
 * fixtures) into key-value operations: one flat EDN map per line,
 *
 *     {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
 *     {:process 0, :type :ok,     :f :append, :key "0", :value "x 0 0 y"}
 *
 * `:f` is `:put`, `:get` or `:append`; `:type` is `:invoke`, `:ok`, `:fail` (no effect) or
 * `:info` (outcome unknown, as is an invocation that never completes). A get's `:ok` value is
 * what it read. Lines that are not such a map are ignored.
 *
 * @module
 */
import {
  type HistoryEvent,
  type KeyValueInput,
  type KeyValueOutput,
  type Operation,
  operationsFromEvents,
} from '../../lib/testing/mod.ts';

/** One operation of a key-value EDN history. */
export type KvOperation = Operation<KeyValueInput, KeyValueOutput>;

/** An EDN scalar as this parser reads it: keywords keep their colon (`:ok`). */
type EdnValue = string | number | null | { keyword: string };

/**
 * Parse the text of an EDN key-value history.
 *
 * @example
 * ```ts
 * parseEdnHistory([
 *   '{:process 0, :type :invoke, :f :get, :key "a", :value nil}',
 *   '{:process 0, :type :ok, :f :get, :key "a", :value ""}',
 * ].join('\n'));
 * // [{ client: 0, callMs: 0, returnMs: 1, input: { f: 'get', key: 'a' }, output: '', outcome: 'ok' }]
 * ```
 */
export function parseEdnHistory(text: string): KvOperation[] {
  const events: HistoryEvent<KeyValueInput, KeyValueOutput>[] = [];
  for (const line of text.split('\n')) {
    const map = parseEdnMap(line.trim());
    const event = map === null ? null : toEvent(map);
    if (event !== null) events.push(event);
  }
  return operationsFromEvents(events);
}

function toEvent(map: Map<string, EdnValue>): HistoryEvent<KeyValueInput, KeyValueOutput> | null {
  const client = map.get(':process');
  const type = keyword(map.get(':type'));
  const f = keyword(map.get(':f'));
  const key = map.get(':key');
  const value = map.get(':value');
  if (typeof client !== 'number' || typeof key !== 'string') return null;
  switch (type) {
    case ':invoke':
      if (f === ':get') return { client, type: 'invoke', input: { f: 'get', key } };
      if ((f === ':put' || f === ':append') && typeof value === 'string') {
        return {
          client,
          type: 'invoke',
          input: { f: f === ':put' ? 'put' : 'append', key, value },
        };
      }
      return null;
    case ':ok':
      if (f === ':get') {
        return typeof value === 'string' ? { client, type: 'ok', output: value } : null;
      }
      return f === ':put' || f === ':append' ? { client, type: 'ok' } : null;
    case ':fail':
      return { client, type: 'fail' };
    case ':info':
      return { client, type: 'info' };
    default:
      return null;
  }
}

function keyword(value: EdnValue | undefined): string | null {
  return typeof value === 'object' && value !== null ? value.keyword : null;
}

/** Token pattern: strings with escapes, keywords, integers, nil, and the map's punctuation. */
const tokenPattern = /\s*(?:("(?:[^"\\]|\\.)*")|(:[^\s,{}"]+)|(-?\d+)|(nil)|([{}])|(,))/y;

/** Parse one flat EDN map of scalars (`{:k v, ...}`); null if the line is anything else. */
function parseEdnMap(line: string): Map<string, EdnValue> | null {
  if (!line.startsWith('{')) return null;
  const tokens: (EdnValue | '{' | '}')[] = [];
  tokenPattern.lastIndex = 0;
  while (tokenPattern.lastIndex < line.length) {
    const m = tokenPattern.exec(line);
    if (m === null) return null;
    if (m[1] !== undefined) tokens.push(JSON.parse(m[1]) as string);
    else if (m[2] !== undefined) tokens.push({ keyword: m[2] });
    else if (m[3] !== undefined) tokens.push(Number(m[3]));
    else if (m[4] !== undefined) tokens.push(null);
    else if (m[5] !== undefined) tokens.push(m[5] as '{' | '}');
    // Commas are whitespace in EDN.
  }
  if (tokens[0] !== '{' || tokens[tokens.length - 1] !== '}' || tokens.length % 2 !== 0) {
    return null;
  }
  const map = new Map<string, EdnValue>();
  for (let i = 1; i < tokens.length - 1; i += 2) {
    const k = tokens[i];
    const value = tokens[i + 1];
    if (
      typeof k !== 'object' || k === null || value === '{' || value === '}' || value === undefined
    ) {
      return null;
    }
    map.set(k.keyword, value);
  }
  return map;
}
