/**
 * Parse a Jepsen etcd log (the `jepsen-etcd/*.log` linearizability fixtures) into register
 * operations, as the fixtures' README describes:
 *
 *     INFO  jepsen.util - <process>  :invoke  :read   nil
 *     INFO  jepsen.util - <process>  :invoke  :write  <v>
 *     INFO  jepsen.util - <process>  :invoke  :cas    [<old> <new>]
 *     INFO  jepsen.util - <process>  :ok      :read   <v>|nil
 *     INFO  jepsen.util - <process>  :ok      :write  <v>
 *     INFO  jepsen.util - <process>  :ok|fail :cas    [<old> <new>]
 *     INFO  jepsen.util - <process>  :fail    :read   :timed-out
 *     INFO  jepsen.util - <process>  :info    ...
 *
 * Fields are separated by tabs or spaces (both occur). `:info`, and an invocation that never
 * completes, is an unknown outcome. A `:fail :cas` is Jepsen's "the comparison did not match":
 * the cas ran and had no effect, so it becomes an `ok` cas with output `false`, a claim the
 * register model checks (the value was not `<old>`). A timed-out read had no effect and
 * is dropped (`fail`). Lines of other shapes are ignored.
 *
 * @module
 */
import {
  type HistoryEvent,
  type Operation,
  operationsFromEvents,
  type RegisterInput,
  type RegisterOutput,
} from '../../lib/testing/mod.ts';

/** One register operation of a Jepsen etcd history. */
export type JepsenOperation = Operation<RegisterInput<number>, RegisterOutput<number>>;

const linePattern =
  /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s*(.*?)\s*$/;
const casPattern = /^\[(\d+)\s+(\d+)\]$/;
const numberPattern = /^\d+$/;

/**
 * Parse the text of a Jepsen etcd log.
 *
 * @example
 * ```ts
 * parseJepsenLog('INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t3\n');
 * // [{ client: 0, callMs: 0, returnMs: 1, input: { f: 'read' }, output: 3, outcome: 'ok' }]
 * ```
 */
export function parseJepsenLog(text: string): JepsenOperation[] {
  const events: HistoryEvent<RegisterInput<number>, RegisterOutput<number>>[] = [];
  for (const line of text.split('\n')) {
    const event = parseLine(line);
    if (event !== null) events.push(event);
  }
  return operationsFromEvents(events);
}

function parseLine(
  line: string,
): HistoryEvent<RegisterInput<number>, RegisterOutput<number>> | null {
  const m = linePattern.exec(line);
  if (m === null) return null;
  const [, processText, type, f, value = ''] = m;
  const client = Number(processText);
  const cas = casPattern.exec(value);
  switch (`${type} ${f}`) {
    case 'invoke read':
      return value === 'nil' ? { client, type: 'invoke', input: { f: 'read' } } : null;
    case 'invoke write':
      return numberPattern.test(value)
        ? { client, type: 'invoke', input: { f: 'write', value: Number(value) } }
        : null;
    case 'invoke cas':
      return cas === null
        ? null
        : { client, type: 'invoke', input: { f: 'cas', from: Number(cas[1]), to: Number(cas[2]) } };
    case 'ok read':
      if (value === 'nil') return { client, type: 'ok', output: null };
      return numberPattern.test(value) ? { client, type: 'ok', output: Number(value) } : null;
    case 'ok write':
      return numberPattern.test(value) ? { client, type: 'ok' } : null;
    case 'ok cas':
      return cas === null ? null : { client, type: 'ok', output: true };
    case 'fail cas':
      return cas === null ? null : { client, type: 'ok', output: false };
    case 'fail read':
      return value === ':timed-out' ? { client, type: 'fail' } : null;
    default:
      // `:info` with anything after it: the outcome is unknown.
      return type === 'info' ? { client, type: 'info' } : null;
  }
}
