/**
 * A member's metrics in the Prometheus text exposition format (version 0.0.4): the figures etcd
 * operators watch, named `edgeraft_...`, every sample labelled with `member`. Gauges and most
 * counters are read at scrape time from where they already live (the driver's status, the
 * transport's per-peer traffic, the client port); only the histograms (apply, durable storage
 * write, peer round trip) and the leader changes are kept here, each observation a bucket scan
 * with no allocation. The README's "Metrics, health and logs" lists every metric.
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics('a');
 * metrics.meter.storageWritten(0.4); // from the driver
 * const text = metrics.render(sample); // what GET /metrics answers
 * ```
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { MemberStatus } from '../member/driver.ts';
import type { ServerEvent } from '../member/events.ts';
import type { DriverMeter } from '../member/meter.ts';
import { StallWatch } from './stall-watch.ts';

/**
 * Upper bounds of the duration histograms' buckets, in seconds: 100 µs to 10 s, as etcd's disk
 * histograms (a synced write on a fast disk takes 0.1-1 ms; a round trip on a LAN about as much).
 */
export const durationBucketsSeconds: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Peers with a round-trip histogram at most; the transport bounds its members the same way. */
export const roundTripPeersMax = 1024;

/**
 * A histogram with fixed buckets. Invariant: `bucketCounts[i]` counts the observations in
 * `(bounds[i-1], bounds[i]]`; `count` is their sum plus those above the last bound.
 *
 * @example
 * ```ts
 * const h = new Histogram([0.001, 0.01]);
 * h.observe(0.005);
 * h.cumulativeCounts(); // [0, 1, 1]: le=0.001, le=0.01, le=+Inf
 * ```
 */
export class Histogram {
  readonly bounds: readonly number[];
  readonly #bucketCounts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError('Histogram bounds must increase');
    }
    this.bounds = bounds;
    this.#bucketCounts = bounds.map(() => 0);
  }

  /** Count one observation of `value` (seconds, for the duration histograms). */
  observe(value: number): void {
    if (!(value >= 0)) return; // a clock step backwards, or NaN: not a duration
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.#bucketCounts[i]! += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }

  /** The cumulative count at each bound, then at +Inf (`count`): what `_bucket` samples show. */
  cumulativeCounts(): number[] {
    const out: number[] = [];
    let running = 0;
    for (const c of this.#bucketCounts) out.push(running += c);
    out.push(this.count);
    return out;
  }
}

/** What a scrape reads from the rest of the server. */
export type MetricsSample = {
  status: MemberStatus;
  /** The member stopped on its own (a storage failure or a bug). */
  failed: boolean;
  /** Bytes to and from each peer since start. */
  peers: ReadonlyMap<string, { readonly sentBytes: number; readonly receivedBytes: number }>;
  /** Open client connections, and those shed or refused at the limit since start. */
  clientConnections: number;
  clientConnectionsShed: number;
  clientConnectionsRefused: number;
};

/** The media type of the exposition format. */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** See the module comment. */
export class ServerMetrics {
  readonly member: string;
  readonly applyDuration: Histogram = new Histogram(durationBucketsSeconds);
  readonly storageWriteDuration: Histogram = new Histogram(durationBucketsSeconds);
  readonly #roundTrips = new Map<string, Histogram>();
  #appliedEntries = 0;
  #leaderChanges = 0;
  readonly #memberLabel: string;
  /** The driver's measuring port: durations in, histograms out. */
  readonly meter: DriverMeter;
  /** Event-loop stalls (see `stall-watch.ts`); started and stopped by the server. */
  readonly stalls: StallWatch;

  constructor(member: string, onStall: (stallMs: number) => void = () => {}) {
    this.member = member;
    this.stalls = new StallWatch(onStall);
    this.#memberLabel = `member="${escapeLabel(member)}"`;
    this.meter = {
      nowMs: () => performance.now(),
      storageWritten: (durationMs) => this.storageWriteDuration.observe(durationMs / 1000),
      applied: (durationMs, entryCount) => {
        this.applyDuration.observe(durationMs / 1000);
        this.#appliedEntries += entryCount;
      },
    };
  }

  /** Count what the member's events tell: a new leader seen. */
  onEvent(event: ServerEvent): void {
    if (event.type === 'leader' && event.leaderId !== null) this.#leaderChanges += 1;
  }

  /** One round trip to `peer`, in milliseconds (the transport's heartbeat timing). */
  observeRoundTrip(peer: string, durationMs: number): void {
    let h = this.#roundTrips.get(peer);
    if (h === undefined) {
      if (this.#roundTrips.size >= roundTripPeersMax) return;
      h = new Histogram(durationBucketsSeconds);
      this.#roundTrips.set(peer, h);
    }
    h.observe(durationMs / 1000);
  }

  /** The exposition text of every metric, from `sample` and the histograms kept here. */
  render(sample: MetricsSample): string {
    const s = sample.status;
    const out = new Exposition(this.#memberLabel);
    out.gauge(
      'edgeraft_server_has_leader',
      'Whether this member knows a leader (1) or not (0).',
      s.leaderId === null ? 0 : 1,
    );
    out.gauge(
      'edgeraft_server_is_leader',
      'Whether this member is the leader (1) or not (0).',
      s.role === 'leader' ? 1 : 0,
    );
    out.counter(
      'edgeraft_server_leader_changes_seen_total',
      'Leaders this member has seen take office since it started.',
      this.#leaderChanges,
    );
    out.gauge(
      'edgeraft_server_failed',
      'Whether this member stopped on its own after a storage failure or a bug (1) or not (0).',
      sample.failed ? 1 : 0,
    );
    out.gauge('edgeraft_server_term', 'The current Raft term of this member.', s.term);
    out.gauge(
      'edgeraft_server_commit_index',
      'The highest log index this member knows to be committed.',
      s.commitIndex,
    );
    out.gauge(
      'edgeraft_server_applied_index',
      "The highest log index applied to this member's state machine.",
      s.lastAppliedIndex,
    );
    out.gauge(
      'edgeraft_server_snapshot_index',
      "The log index of this member's latest snapshot (0: none).",
      s.snapshotIndex,
    );
    out.counter(
      'edgeraft_server_proposals_committed_total',
      'Proposals made at this member that committed at their own index and were applied.',
      s.proposalsCommitted,
    );
    out.counter(
      'edgeraft_server_proposals_failed_total',
      'Proposals made at this member that ended otherwise: lost to another leader, timed out, or of unknown outcome at a stop.',
      s.proposalsFailed,
    );
    out.gauge(
      'edgeraft_server_proposals_pending',
      'Proposals made at this member and not yet answered.',
      s.pendingProposals,
    );
    out.counter(
      'edgeraft_server_applied_entries_total',
      'Committed entries this member applied to its state machine since it started.',
      this.#appliedEntries,
    );
    out.histogram(
      'edgeraft_server_apply_duration_seconds',
      'Time to apply one batch of committed entries to the state machine.',
      this.applyDuration,
    );
    out.histogram(
      'edgeraft_disk_write_duration_seconds',
      'Time of one durable storage write (log entries, hard state, snapshot metadata), synced.',
      this.storageWriteDuration,
    );
    const stalls = this.stalls.snapshot();
    out.counter(
      'edgeraft_event_loop_stalls_total',
      'Times the event loop was blocked for 100 ms or more since the member started.',
      stalls.stalls,
    );
    out.counter(
      'edgeraft_event_loop_stalled_seconds_total',
      'Time the event loop spent in those stalls.',
      stalls.totalMs / 1000,
    );
    out.gauge(
      'edgeraft_event_loop_stall_longest_seconds',
      'The longest event-loop stall since the member started.',
      stalls.longestMs / 1000,
    );
    out.counter(
      'edgeraft_snapshots_sent_total',
      'Snapshots this member streamed to a follower in full since it started.',
      s.snapshotsSent,
    );
    out.counter(
      'edgeraft_snapshots_installed_total',
      'Snapshots from a leader this member installed since it started.',
      s.snapshotsInstalled,
    );
    out.counter(
      'edgeraft_snapshots_taken_total',
      'Snapshots this member took of its own state machine since it started.',
      s.snapshotsTaken,
    );
    const peers = [...sample.peers.keys()].sort();
    out.family(
      'edgeraft_network_peer_sent_bytes_total',
      'counter',
      'Bytes sent to a peer on the peer port since start, frames with their length prefixes.',
    );
    for (const p of peers) {
      out.sample(
        'edgeraft_network_peer_sent_bytes_total',
        peerLabel(p),
        sample.peers.get(p)!.sentBytes,
      );
    }
    out.family(
      'edgeraft_network_peer_received_bytes_total',
      'counter',
      'Bytes received from a peer on the peer port since start, frames with their length prefixes.',
    );
    for (const p of peers) {
      out.sample(
        'edgeraft_network_peer_received_bytes_total',
        peerLabel(p),
        sample.peers.get(p)!.receivedBytes,
      );
    }
    out.family(
      'edgeraft_network_peer_round_trip_time_seconds',
      'histogram',
      'Time from a heartbeat leaving this member (as leader) to its answer arriving, per peer.',
    );
    for (const p of [...this.#roundTrips.keys()].sort()) {
      out.histogramSamples(
        'edgeraft_network_peer_round_trip_time_seconds',
        peerLabel(p),
        this.#roundTrips.get(p)!,
      );
    }
    out.gauge(
      'edgeraft_client_connections',
      'Client connections open on the client port.',
      sample.clientConnections,
    );
    out.counter(
      'edgeraft_client_connections_shed_total',
      'Idle client connections closed to make room at clientConnectionsMax.',
      sample.clientConnectionsShed,
    );
    out.counter(
      'edgeraft_client_connections_refused_total',
      'Client connections refused at clientConnectionsMax (every connection busy).',
      sample.clientConnectionsRefused,
    );
    return out.text();
  }
}

function peerLabel(peer: string): string {
  return `peer="${escapeLabel(peer)}"`;
}

/** A label value escaped as the format asks: backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

/** Lines of one exposition, every sample with the constant labels. */
class Exposition {
  readonly #constant: string;
  readonly #lines: string[] = [];

  constructor(constantLabels: string) {
    this.#constant = constantLabels;
  }

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: string, value: number): void {
    const all = labels === '' ? this.#constant : `${this.#constant},${labels}`;
    this.#lines.push(`${name}{${all}} ${formatValue(value)}`);
  }

  gauge(name: string, help: string, value: number): void {
    this.family(name, 'gauge', help);
    this.sample(name, '', value);
  }

  counter(name: string, help: string, value: number): void {
    this.family(name, 'counter', help);
    this.sample(name, '', value);
  }

  histogram(name: string, help: string, h: Histogram): void {
    this.family(name, 'histogram', help);
    this.histogramSamples(name, '', h);
  }

  histogramSamples(name: string, labels: string, h: Histogram): void {
    const counts = h.cumulativeCounts();
    const prefix = labels === '' ? '' : `${labels},`;
    for (let i = 0; i < h.bounds.length; i++) {
      this.sample(`${name}_bucket`, `${prefix}le="${formatValue(h.bounds[i]!)}"`, counts[i]!);
    }
    this.sample(`${name}_bucket`, `${prefix}le="+Inf"`, counts[h.bounds.length]!);
    this.sample(`${name}_sum`, labels, h.sum);
    this.sample(`${name}_count`, labels, h.count);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}
