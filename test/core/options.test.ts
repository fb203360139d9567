// The core's options are validated once, at construction: a bad option is a TypeError (wrong
// type or key) or a RangeError (out of range) whose message names the option; every limit is
// named with its unit; and a limit given is a limit enforced.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProposalDroppedError } from '../../lib/base/errors.ts';
import { parseRaftOptions, type RaftOptionsInput } from '../../lib/core/options.ts';
import { Raft } from '../../lib/core/raft.ts';
import { seededRandom } from '../../lib/core/random.ts';
import { MemoryStorage } from '../../lib/storage/memory.ts';

function construct(options: Record<string, unknown>): Raft {
  return new Raft(new MemoryStorage(), options as RaftOptionsInput);
}

function throwsNaming(
  options: Record<string, unknown>,
  kind: typeof TypeError | typeof RangeError,
  option: string,
): void {
  try {
    construct(options);
  } catch (e) {
    assert.instance(e, kind, `${Object.keys(options).join(',')}: ${String(e)}`);
    assert.ok(
      (e as Error).message.includes(option),
      `message names ${option}: ${(e as Error).message}`,
    );
    return;
  }
  assert.unreachable(`no error for options ${Object.keys(options).join(', ')}`);
}

const base = { id: 'a', random: seededRandom(1) };

// Values out of range are RangeErrors naming the option.
test('out-of-range values are RangeErrors naming the option', () => {
  throwsNaming({ ...base, electionTicks: 0 }, RangeError, 'electionTicks');
  throwsNaming({ ...base, electionTicks: -3 }, RangeError, 'electionTicks');
  throwsNaming({ ...base, electionTicks: 2.5 }, RangeError, 'electionTicks');
  throwsNaming({ ...base, messageBytesMax: 0 }, RangeError, 'messageBytesMax');
  throwsNaming({ ...base, inflightMessagesMax: 1_000_000 }, RangeError, 'inflightMessagesMax');
  throwsNaming({ ...base, leaseDriftTicks: -1 }, RangeError, 'leaseDriftTicks');
  throwsNaming({ ...base, id: '' }, RangeError, 'id');
});

// Relationships between limits are checked too, naming the option that breaks them.
test('related limits are checked against each other', () => {
  throwsNaming({ ...base, heartbeatTicks: 15 }, RangeError, 'heartbeatTicks'); // default electionTicks 15
  throwsNaming({ ...base, electionTicks: 5, heartbeatTicks: 7 }, RangeError, 'heartbeatTicks');
  throwsNaming(
    { ...base, messageBytesMax: 4096, inflightBytesMax: 4095 },
    RangeError,
    'inflightBytesMax',
  );
  throwsNaming({ ...base, electionTicks: 4, leaseDriftTicks: 4 }, RangeError, 'leaseDriftTicks');
  // The boundaries themselves are accepted.
  construct({ ...base, electionTicks: 5, heartbeatTicks: 4 });
  construct({ ...base, messageBytesMax: 4096, inflightBytesMax: 4096 });
});

// Wrong types, unknown keys and a missing generator are TypeErrors naming the option.
test('wrong types, unknown keys and missing options are TypeErrors naming the option', () => {
  throwsNaming({ ...base, electionTicks: '10' }, TypeError, 'electionTicks');
  throwsNaming({ ...base, uncommittedBytesMax: 1n }, TypeError, 'uncommittedBytesMax');
  throwsNaming({ ...base, electionTick: 10 }, TypeError, 'electionTick');
  throwsNaming({ ...base, unsafeFaults: { voteTwice: true } }, TypeError, 'unsafeFaults.voteTwice');
  throwsNaming({ id: 'a' }, TypeError, 'random');
  throwsNaming({ ...base, random: 0.5 }, TypeError, 'random');
  throwsNaming({ random: seededRandom(1) }, TypeError, 'id');
});

// Defaults fill every limit, and every numeric option carries its unit (or kind) last in its name.
test('every limit has a default and a unit in its name', () => {
  const o = parseRaftOptions(base);
  const numeric = Object.entries(o).filter((kv): kv is [string, number] =>
    typeof kv[1] === 'number'
  );
  assert.ok(numeric.length >= 9, `numeric options: ${numeric.map(([k]) => k).join(', ')}`);
  for (const [key, value] of numeric) {
    // A unit, then optionally a qualifier (house style: electionTicksMin, frameBytesMax).
    assert.match(
      key,
      /(Ticks|Heartbeats|Bytes|Messages|Entries|Members|Pending|Index)(Max|Min)?$/,
      `${key} names its unit`,
    );
    assert.ok(Number.isSafeInteger(value) && value >= 0, `${key} = ${value}`);
  }
  assert.ok(o.heartbeatTicks < o.electionTicks);
  assert.ok(o.inflightBytesMax >= o.messageBytesMax);
});

// A limit given is enforced: proposals past uncommittedBytesMax are dropped with a typed error.
test('uncommittedBytesMax drops proposals past the limit', () => {
  const raft = construct({ ...base, uncommittedBytesMax: 256 });
  raft.bootstrap([{ id: 'a', type: 'ACTIVE' }], 0);
  raft.campaign(); // a single voter elects itself at once; its no-op is uncommitted until persisted
  assert.is(raft.role, 'leader');
  raft.propose(new Uint8Array(100), 0);
  try {
    raft.propose(new Uint8Array(200), 0);
    assert.unreachable('the proposal past the limit was accepted');
  } catch (e) {
    assert.instance(e, ProposalDroppedError);
    assert.match((e as Error).message, /limit uncommittedBytesMax 256/);
  }
});

test.run();
