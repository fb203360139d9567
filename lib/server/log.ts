/**
 * The server's logging: every line has a time, a level and the member id, in one of two formats
 * (`text` for people, `json` for log shippers: one object per line with `time`, `level`,
 * `member`, `msg` and the line's structured fields), filtered by level before anything is
 * formatted, and rate-limited per kind of line (`LogLimiter`: the same text up to its numbers).
 *
 * A custom `logger` (the server option) gets the same lines as the built-in one, each with its
 * structured fields: `member`, `component` (`server`, `member`, `transport`, `client`, `http`) and
 * what the line is about. A logger written for the old interface (message only) keeps working.
 *
 * @example
 * ```ts
 * const log = streamLogger({ member: 'a', level: 'info', format: 'json' });
 * log.info('role leader in term 3', { role: 'leader', term: 3 });
 * // {"time":"2026-12-02T02:10:00.000Z","level":"info","member":"a","msg":"role leader in term 3","role":"leader","term":3}
 * ```
 * @module
 */
import process from 'node:process';
import type { LogFields, Logger } from '../base/logger.ts';

/** Levels, least severe first: a logger at a level writes that level and the ones after it. */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
/** One of `logLevels`. */
export type LogLevel = (typeof logLevels)[number];
/** `text`: `TIME LEVEL MEMBER: message key=value ...`; `json`: one JSON object per line. */
export const logFormats = ['text', 'json'] as const;
/** One of `logFormats`. */
export type LogFormat = (typeof logFormats)[number];

/** Longest message written, in UTF-16 code units; longer ones are cut and marked. */
export const logMessageLengthMax = 8 * 1024;

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Fields that name the line itself; a call site's field of the same name is renamed. */
const reserved = new Set(['time', 'level', 'member', 'msg']);

/**
 * Format one line (without its newline). `fields` are written after the message; `time`,
 * `level`, `member` and `msg` cannot be overwritten by them (a clash is written as `field_`).
 *
 * @example
 * ```ts
 * formatLogLine('text', 'warn', 'a', 'Closing peer b', { peer: 'b' }, 0);
 * // '1970-01-01T00:00:00.000Z WARN a: Closing peer b peer=b'
 * ```
 */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  member: string,
  message: string,
  fields: LogFields | undefined,
  nowMs: number,
): string {
  const time = new Date(nowMs).toISOString();
  const msg = message.length > logMessageLengthMax
    ? `${message.slice(0, logMessageLengthMax)}... (${message.length} characters)`
    : message;
  if (format === 'json') {
    const line: Record<string, unknown> = { time, level, member, msg };
    if (fields !== undefined) {
      for (const key of Object.keys(fields)) {
        if (key === 'member' && fields[key] === member) continue;
        line[reserved.has(key) ? `${key}_` : key] = fields[key];
      }
    }
    return safeJson(line);
  }
  let text = `${time} ${level.toUpperCase()} ${member}: ${msg}`;
  if (fields !== undefined) {
    for (const key of Object.keys(fields)) {
      if (key === 'member' && fields[key] === member) continue;
      const value = fields[key];
      const shown = typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : safeJson(value);
      text += ` ${reserved.has(key) ? `${key}_` : key}=${shown}`;
    }
  }
  return text;
}

/** JSON that never throws (a cycle or a BigInt in a field is written as a string). */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) ?? 'null';
  } catch {
    return JSON.stringify(String(value));
  }
}

/** The settings of `streamLogger`. */
export type StreamLoggerOptions = {
  member: string;
  level: LogLevel;
  format: LogFormat;
  /** Where each line goes, with its newline; default: standard error. */
  write?: (line: string) => void;
  /** The clock that stamps lines; default `Date.now`. */
  nowMs?: () => number;
};

/**
 * The built-in logger: one line per message at or above `level`, to standard error by default.
 *
 * @example
 * ```ts
 * const log = streamLogger({ member: 'a', level: 'warn', format: 'text' });
 * log.info('not written'); // below warn
 * log.warn('written');
 * ```
 */
export function streamLogger(o: StreamLoggerOptions): Required<Logger> {
  const write = o.write ?? ((line: string) => void process.stderr.write(line));
  const nowMs = o.nowMs ?? Date.now;
  const at = (level: LogLevel) =>
    rank[level] < rank[o.level]
      ? () => {}
      : (message: string, fields?: LogFields) =>
        write(`${formatLogLine(o.format, level, o.member, message, fields, nowMs())}\n`);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * `logger` with `fields` added to every line (a call site's own fields win), and lines below
 * `level` dropped before they reach it. A logger without `error` gets errors through `warn`.
 *
 * @example
 * ```ts
 * const transportLog = withFields(userLogger, { member: 'a', component: 'transport' }, 'info');
 * ```
 */
export function withFields(logger: Logger, fields: LogFields, level: LogLevel): Required<Logger> {
  const merge = (own: LogFields | undefined): LogFields =>
    own === undefined ? fields : { ...fields, ...own };
  const on = (l: LogLevel) => rank[l] >= rank[level];
  const error = logger.error;
  return {
    debug: on('debug') ? (m, f) => logger.debug(m, merge(f)) : () => {},
    info: on('info') ? (m, f) => logger.info(m, merge(f)) : () => {},
    warn: on('warn') ? (m, f) => logger.warn(m, merge(f)) : () => {},
    error: error === undefined
      ? (m, f) => logger.warn(m, merge(f))
      : (m, f) => error.call(logger, m, merge(f)),
  };
}
