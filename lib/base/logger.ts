/**
 * The one logger shape every part of a member writes to: a message in words, plus structured
 * fields for log shippers (the member id, the component, and what the line is about: a term, a
 * peer, a byte count). A logger that takes only the message (`{ info: (m) => ... }`, `console`)
 * still fits: the fields are an optional second argument.
 *
 * @example
 * ```ts
 * const logger: Logger = {
 *   info: (message, fields) => console.log(message, fields ?? {}),
 *   warn: (message, fields) => console.warn(message, fields ?? {}),
 *   debug: () => {},
 * };
 * logger.info('role leader in term 3', { role: 'leader', term: 3 });
 * ```
 * @module
 */

/** Structured fields of one log line: plain JSON-encodable values. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Where a member reports what an operator should see. */
export type Logger = {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /**
   * Optional: a failure that stopped the member (a storage error, a broken invariant). A logger
   * without it gets those lines through `warn`, as before it existed.
   */
  error?(message: string, fields?: LogFields): void;
};
