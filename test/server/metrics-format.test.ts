// Proves the exposition checks can fail: the strict parser accepts what ServerMetrics renders and
// rejects each planted fault (a bucket out of order, no +Inf bucket, _count off the +Inf bucket, a
// counter not named _total, a sample before its TYPE, a bad label escape, a series twice, a family
// split in two); checkNoDecrease catches a counter reset and a vanished series; Histogram puts
// each observation in its bucket.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { durationBucketsSeconds, Histogram, ServerMetrics } from '../../lib/server/metrics.ts';
import type { MemberStatus } from '../../lib/member/driver.ts';
import { checkNoDecrease, parseExposition, valueOf } from '../support/prometheus.ts';

const test = suite('metrics format');

function status(overrides: Partial<MemberStatus> = {}): MemberStatus {
  return {
    id: 'a',
    role: 'leader',
    term: 3,
    leaderId: 'a',
    commitIndex: 10,
    lastAppliedIndex: 9,
    snapshotIndex: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    snapshotReceiving: null,
    pendingProposals: 1,
    proposalsCommitted: 7,
    proposalsFailed: 1,
    snapshotsSent: 0,
    stopped: false,
    ...overrides,
  } as MemberStatus;
}

function render(m: ServerMetrics, s = status()): string {
  return m.render({
    status: s,
    failed: false,
    peers: new Map([['b"\\\n', { sentBytes: 10, receivedBytes: 20 }]]),
    clientConnections: 2,
    clientConnectionsShed: 0,
    clientConnectionsRefused: 0,
  });
}

test('the parser accepts the rendered text, odd peer ids included', () => {
  const m = new ServerMetrics('a');
  m.meter.storageWritten(0.3);
  m.meter.applied(12, 4);
  m.observeRoundTrip('b"\\\n', 0.7);
  const families = parseExposition(render(m));
  assert.is(valueOf(families, 'edgeraft_server_term'), 3);
  assert.is(valueOf(families, 'edgeraft_network_peer_sent_bytes_total', { peer: 'b"\\\n' }), 10);
  assert.is(valueOf(families, 'edgeraft_disk_write_duration_seconds_count'), 1);
  assert.is(
    valueOf(families, 'edgeraft_disk_write_duration_seconds_bucket', { le: '0.0005' }),
    1,
    '0.3 ms is in the 0.5 ms bucket',
  );
  assert.is(valueOf(families, 'edgeraft_disk_write_duration_seconds_bucket', { le: '0.00025' }), 0);
  assert.is(valueOf(families, 'edgeraft_server_applied_entries_total'), 4);
  for (const f of families.values()) {
    assert.ok(f.help !== null && f.help.length > 0, `${f.name} has HELP`);
    for (const s of f.samples) assert.is(s.labels['member'], 'a', `${s.name} has member`);
  }
});

const good = `# HELP h_seconds d
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1"} 1
h_seconds_bucket{le="1"} 2
h_seconds_bucket{le="+Inf"} 3
h_seconds_sum 4.5
h_seconds_count 3
# TYPE c_total counter
c_total{a="x"} 5
# TYPE g gauge
g 1
`;

test('each planted fault is rejected', () => {
  parseExposition(good);
  const faults: [string, string][] = [
    [
      'bucket out of order',
      good.replace(
        'le="0.1"} 1\nh_seconds_bucket{le="1"}',
        'le="1"} 1\nh_seconds_bucket{le="0.1"}',
      ),
    ],
    ['no +Inf bucket', good.replace('h_seconds_bucket{le="+Inf"} 3\n', '')],
    ['cumulative count decreasing', good.replace('{le="1"} 2', '{le="1"} 0')],
    ['_count off the +Inf bucket', good.replace('h_seconds_count 3', 'h_seconds_count 4')],
    ['counter not _total', good.replace(/c_total/g, 'c')],
    ['negative counter', good.replace('c_total{a="x"} 5', 'c_total{a="x"} -1')],
    ['sample before TYPE', good.replace('# TYPE g gauge\ng 1\n', 'g 1\n# TYPE g gauge\n')],
    ['bad label escape', good.replace('a="x"', 'a="x\\t"')],
    ['bad label name', good.replace('a="x"', '1a="x"')],
    ['series twice', `${good}g 2\n`],
    ['family split in two', `${good}c_total{a="y"} 1\n`],
    ['TYPE twice', good.replace('# TYPE g gauge', '# TYPE g gauge\n# TYPE g gauge')],
    ['not a float', good.replace('g 1', 'g one')],
    ['no final newline', good.slice(0, -1)],
  ];
  for (const [what, text] of faults) {
    assert.throws(() => parseExposition(text), undefined, `caught: ${what}`);
  }
});

test('checkNoDecrease catches a counter reset and a vanished series', () => {
  const before = parseExposition(good);
  checkNoDecrease(before, parseExposition(good.replace('c_total{a="x"} 5', 'c_total{a="x"} 6')));
  assert.throws(
    () =>
      checkNoDecrease(
        before,
        parseExposition(good.replace('c_total{a="x"} 5', 'c_total{a="x"} 0')),
      ),
    /went down/,
  );
  assert.throws(
    () => checkNoDecrease(before, parseExposition(good.replace('a="x"', 'a="z"'))),
    /disappeared/,
  );
  // Gauges may go down.
  checkNoDecrease(before, parseExposition(good.replace('g 1', 'g 0')));
});

test('Histogram: bucket boundaries are inclusive, above the last bound only +Inf counts', () => {
  const h = new Histogram([1, 2]);
  for (const v of [0, 1, 1.5, 2, 3, -1, NaN]) h.observe(v);
  assert.equal(h.cumulativeCounts(), [2, 4, 5]);
  assert.is(h.count, 5);
  assert.is(h.sum, 7.5);
  assert.throws(() => new Histogram([2, 1]), RangeError);
  assert.ok(durationBucketsSeconds.every((b, i) => i === 0 || b > durationBucketsSeconds[i - 1]!));
});

test.run();
