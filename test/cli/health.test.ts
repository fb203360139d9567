// Proves the verdict of `edgeraft health` on the members' answers: healthy only when every member
// answered, none has stopped and all name one leader; each other case names what is wrong.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  healthOf,
  healthTable,
  type MemberHealthStatus,
  type MemberProbe,
} from '../../lib/cli/operator.ts';

const test = suite('command line: the health verdict');

/** Member `id`'s status, naming `leaderId` as its leader. */
function member(id: string, leaderId: string | null, extra: Partial<MemberHealthStatus> = {}) {
  const status: MemberHealthStatus = {
    id,
    role: id === leaderId ? 'leader' : 'follower',
    term: 4,
    leaderId,
    commitIndex: 10,
    lastAppliedIndex: 10,
    stopped: false,
    ...extra,
  };
  return { address: `10.0.0.${id.charCodeAt(0) - 96}:8001`, status } satisfies MemberProbe;
}

// Every member answered and names the same leader: healthy, with that leader and term.
test('all answer and agree: healthy', () => {
  const report = healthOf([member('a', 'a'), member('b', 'a'), member('c', 'a')]);
  assert.is(report.healthy, true);
  assert.is(report.leaderId, 'a');
  assert.is(report.term, 4);
  assert.equal(report.problems, []);
  assert.match(healthTable(report), /\nhealthy: 3 of 3 members reachable, leader a in term 4$/);
});

// One member did not answer: unhealthy, naming its address and the reason.
test('a member unreachable: unhealthy, naming it', () => {
  const report = healthOf([
    member('a', 'a'),
    member('b', 'a'),
    { address: '10.0.0.3:8001', error: 'connection refused' },
  ]);
  assert.is(report.healthy, false);
  assert.equal(report.problems, ['10.0.0.3:8001 unreachable: connection refused']);
  assert.match(healthTable(report), /-\s+10\.0\.0\.3:8001\s+unreachable: connection refused\s+-/);
  // Named by the configuration the others know, when it lists the address.
  const known = healthOf([
    member('a', 'a', { members: [{ id: 'c', clientAddress: '10.0.0.3:8001' }] }),
    { address: '10.0.0.3:8001', error: 'connection refused' },
  ]);
  assert.is(known.members[1]!.id, 'c');
  assert.is(known.members[1]!.reachable, false);
});

// All answered but none knows a leader, or they name different ones, or one stopped: unhealthy.
test('no leader, disagreeing members, a stopped member: unhealthy', () => {
  const none = healthOf([member('a', null), member('b', null)]);
  assert.is(none.healthy, false);
  assert.equal(none.problems, ['no leader']);
  const split = healthOf([member('a', 'a'), member('b', 'a'), member('c', null)]);
  assert.is(split.healthy, false);
  assert.is(split.leaderId, null);
  assert.equal(split.problems, ['members disagree on the leader: a (a, b); none (c)']);
  const stopped = healthOf([member('a', 'a'), member('b', 'a', { stopped: true })]);
  assert.is(stopped.healthy, false);
  assert.equal(stopped.problems, ['b has stopped']);
  assert.is(healthOf([]).healthy, false);
});

test.run();
