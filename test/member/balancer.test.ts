// The balancer's rules, one decision at a time, from made-up leader facts (lib/member/balancer.ts):
// promote before demote, never without a reachable majority, refill PASSIVE from RESERVE, and
// back to the PASSIVE target when a passive that only looked failed returns.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Member } from '../../lib/base/messages.ts';
import { balance, type BalancerFacts, type BalancerOptions } from '../../lib/member/balancer.ts';

const o: BalancerOptions = {
  activeMembers: 3,
  passiveMembers: 2,
  failureTicks: 45,
  reachableTicks: 15,
  promotionLagEntriesMax: 100,
};

function facts(
  members: Array<[string, Member['type']]>,
  silent: Record<string, number> = {},
  match: Record<string, number> = {},
): BalancerFacts {
  return {
    selfId: 'a',
    members: members.map(([id, type]) => ({ id, type })),
    committed: true,
    commitIndex: 1000,
    silentTicks: (id) => silent[id] ?? 0,
    passiveMatch: (id) => match[id] ?? null,
  };
}

const base: Array<[string, Member['type']]> = [
  ['a', 'ACTIVE'],
  ['b', 'ACTIVE'],
  ['c', 'ACTIVE'],
  ['p', 'PASSIVE'],
  ['q', 'PASSIVE'],
  ['r', 'RESERVE'],
];

test('a failed ACTIVE member: the most caught-up PASSIVE one is promoted first', () => {
  const change = balance(facts(base, { c: 100 }, { p: 990, q: 995 }), o);
  assert.equal(change, { op: 'promote', id: 'q' });
  // Then, with four ACTIVE members, the failed one is demoted.
  const after: Array<[string, Member['type']]> = base.map((
    [id, t],
  ) => [id, id === 'q' ? 'ACTIVE' : t]);
  assert.equal(balance(facts(after, { c: 100 }, { p: 990 }), o), { op: 'demote', id: 'c' });
});

test('nothing is done without a reachable majority of ACTIVE members, nor mid-change', () => {
  assert.is(balance(facts(base, { b: 100, c: 100 }, { p: 990, q: 995 }), o), null);
  assert.is(balance({ ...facts(base, { c: 100 }, { p: 990 }), committed: false }, o), null);
});

test('a failed PASSIVE member is replaced by a RESERVE one, then demoted', () => {
  assert.equal(balance(facts(base, { q: 100 }, { p: 990 }), o), { op: 'promote', id: 'r' });
  const three: Array<[string, Member['type']]> = base.map((
    [id, t],
  ) => [id, id === 'r' ? 'PASSIVE' : t]);
  assert.equal(balance(facts(three, { q: 100 }, { p: 990, r: 990 }), o), { op: 'demote', id: 'q' });
});

test('one PASSIVE member over the target, all live: the least caught-up goes back to RESERVE', () => {
  // The passive that looked failed came back before it was demoted: three live PASSIVE members.
  const three: Array<[string, Member['type']]> = base.map((
    [id, t],
  ) => [id, id === 'r' ? 'PASSIVE' : t]);
  const f = facts(three, {}, { p: 990, q: 970, r: 995 });
  assert.equal(balance(f, o), { op: 'demote', id: 'q' });
  // At the target, nothing; with no PASSIVE target, PASSIVE members joined by hand are left alone.
  assert.is(balance(facts(base, {}, { p: 990, q: 995 }), o), null);
  assert.is(balance(f, { ...o, passiveMembers: 0 }), null);
});

test.run();
