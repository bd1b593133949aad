/**
 * Prometheus exporter (prom-client) on a localhost port: `metrics.listen` (default
 * 127.0.0.1:9731), off with `metrics.enabled: false`.
 *
 * Every value comes from EdgeSnapshots: one snapshot per scrape feeds all gauges and counters
 * (collect() callbacks, so a scrape shows the snapshot's own totals and a reload that removes a
 * link removes its series), and a sampler observes each path's RTT into a histogram once a second.
 * Series (all with the registry's `site` label; per-path series carry `link` and `peer`, the peer
 * being the single peer's name on a one-peer edge; per-peer series carry `peer`):
 *   braid_info{version}                                   1
 *   braid_path_state{link,peer,state}                          1 for the current state, 0 for the others
 *   braid_path_srtt_seconds{link,peer}, braid_path_rtt_percentile_seconds{link,peer,percentile}, braid_path_jitter_seconds{link,peer},
 *   braid_path_mtu_bytes{link,peer}, braid_path_inner_mtu_bytes{link,peer}
 *   braid_path_rtt_seconds{link,peer}                          histogram, sampled every second
 *   braid_path_loss_ratio{link,peer,direction,window}          direction tx|rx, window 1s|30s|total
 *   braid_path_last_heard_seconds{link,peer}, braid_path_flaps_total{link,peer}, braid_path_suppressed{link,peer}
 *   braid_link_bytes_total{link,peer,direction}, braid_link_packets_total{link,peer,direction},
 *   braid_link_data_packets_total{link,peer,direction}, braid_link_transmit_rate_bytes_per_second{link,peer}, braid_link_flows{link,peer}
 *   braid_link_shaper_rate_bytes_per_second{link}, braid_link_queued_packets{link}, braid_link_queue_drops_total{link} (per local link, all peers),
 *   braid_link_fec_parity_packets_total{link,peer}                                              (when the core reports them)
 *   braid_class_packets_total{class}, braid_class_bytes_total{class}, braid_class_flows{class},
 *   braid_class_moves_total{class}, braid_class_active_paths{class}
 *   braid_class_fec_data_shards{class}, braid_class_fec_parity_shards{class}, braid_class_fec_recovered_packets_total{class},
 *   braid_class_fec_unrecoverable_packets_total{class}, braid_class_residual_loss_ratio{class},
 *   braid_class_fec_protected_packets_total, braid_class_fec_parity_packets_total, braid_class_fec_parity_bytes_total,
 *   braid_class_queue_drops_total{class}, braid_class_queue_delay_seconds{class,stat}        (when the core reports FEC/QoS)
 *   braid_rule_packets_total{rule,class}, braid_rule_bytes_total{rule,class}, braid_rule_flows_total{rule,class}  (when rules are configured)
 *   braid_drops_total{reason}, braid_flows, braid_flow_moves_total, braid_tun_received_packets_total,
 *   braid_delivered_packets_total, braid_duplicates_suppressed_total
 *   braid_tun_device_packets_total{direction}, braid_tun_device_dropped_total{direction},
 *   braid_tun_device_errors_total{direction}, braid_tun_write_refused_total  (the TUN's kernel counters, braid up)
 *   braid_link_socket_dropped_total{link}, braid_link_socket_queued_bytes{link}  (the link sockets' kernel counters, braid up)
 *   braid_session_encrypted, braid_session_established, braid_session_age_seconds,
 *   braid_session_handshake_attempts, braid_handshake_drops_total{reason}, braid_session_under_load
 *   braid_peer_state{peer,state}, braid_peer_paths_up, braid_peer_bytes_total{peer,direction},
 *   braid_peer_packets_total{peer,direction}, braid_peer_forwarded_packets_total, braid_peer_source_not_allowed_total,
 *   braid_peer_session_established, braid_peer_session_age_seconds, braid_peer_flows        (PEER_SERIES per peer)
 *   process_* and nodejs_*                                prom-client's defaults (CPU, memory, event-loop lag)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { DROP_REASONS, type EdgeSnapshot, type LinkSnapshot, type LinkState, type PathRtt, type PeerSnapshot } from '../core/types.ts';
import type { ClassStatus, EdgeStatus, KeepWarmStatus, LinkSocketStatus, LinkStatus, TunDeviceStatus } from './control-socket.ts';

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9731';
/** How often each path's RTT goes into the histogram: the probe-driven srtt moves on this scale. */
export const RTT_SAMPLE_INTERVAL_MS = 1000;
/** Resolution of the nodejs_eventloop_lag_* histogram (prom-client's monitorEventLoopDelay timer). */
export const EVENT_LOOP_LAG_RESOLUTION_MS = 100;
/** RTT histogram buckets: LAN-ish to geostationary satellite. */
export const RTT_BUCKETS_SECONDS = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2];
const LINK_STATES: readonly LinkState[] = ['up', 'degraded', 'down', 'drained'];
const PEER_STATES: readonly PeerSnapshot['state'][] = ['up', 'down', 'idle'];
/**
 * Series per peer: state 3, paths up 1, bytes 2, packets 2, forwarded 1, source not allowed 1,
 * session established 1, session age 1, flows 1. Per path (pathSeries on): state 4, srtt 1, RTT
 * percentiles 2, jitter 1, loss 6, last heard 1, flaps 1, suppressed 1, RTT histogram 18 (15
 * buckets, +Inf, sum, count), link bytes 2, packets 2, data packets 2, transmit rate 1, flows 1,
 * FEC parity 1, path MTU 1, inner MTU 1. A shaped local link adds 3 series (rate, queued, queue
 * drops), whatever the peers.
 */
export const PEER_SERIES = 13;
export const PATH_SERIES = 46;
const VERSION = '0.1.0';

/** Resolves after the event loop has polled its sockets once (setImmediate runs after the poll phase). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/**
 * A render gives the event loop back after this much work: packets and probes wait at most about
 * this long during a scrape (the spokes call a path dead after 314 ms of silence).
 */
export const RENDER_SLICE_MS = 4;

type Setter<L extends string> = (labels: LabelValues<L>, value: number) => void;
type Labels = Readonly<Record<string, string>>;
/** One series of a path's (or a peer's) family: the labels after the path's own `link`, `peer` (or the peer's `peer`), and the value. */
type Emit = (extra: Labels | undefined, value: number) => void;
/** A family with a few series per path or per peer, written by BraidMetrics itself at scrape time. */
interface ItemFamily<T> {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  each: (item: T, emit: Emit) => void;
}

/** Each path's state and srtt at one time: the light source of the per-second RTT sample. */
export type RttSource = () => { nowMs: number; paths: readonly PathRtt[] };

// The exposition text as prom-client 15 writes it (registry.getMetricsAsString): label values
// escaped (\\, \n, "), values through getValueAsString, default labels after a series' own.
const NEEDS_ESCAPE = /[\\\n"]/;
function escapeLabel(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}
function labelText(labels: Labels): string {
  let out = '';
  for (const k in labels) out += `${out === '' ? '' : ','}${k}="${escapeLabel(labels[k]!)}"`;
  return out;
}
const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
const emitIf = (emit: Emit, extra: Labels | undefined, v: number | undefined): void => {
  if (finite(v)) emit(extra, v);
};
// Extra labels as constants: their text is formatted once per BraidMetrics, not once per series.
const STATE_LABELS = new Map<string, Labels>([...LINK_STATES, ...PEER_STATES].map((st) => [st, { state: st }]));
const TX: Labels = { direction: 'tx' };
const RX: Labels = { direction: 'rx' };
const P50: Labels = { percentile: '50' };
const P99: Labels = { percentile: '99' };
const LOSS = {
  tx1s: { direction: 'tx', window: '1s' },
  rx1s: { direction: 'rx', window: '1s' },
  tx30s: { direction: 'tx', window: '30s' },
  rx30s: { direction: 'rx', window: '30s' },
  txTotal: { direction: 'tx', window: 'total' },
  rxTotal: { direction: 'rx', window: 'total' },
} as const satisfies Record<string, Labels>;

/** One path's RTT histogram series: counts per bucket (not cumulative), sum and count. */
interface RttSeries {
  labels: { link: string; peer: string };
  /** `link="..",peer=".."`, formatted once. */
  text: string;
  buckets: number[];
  sum: number;
  count: number;
  /** The sample that last listed the path (series of paths gone from the edge are dropped). */
  seen: number;
}

/**
 * braid_path_rtt_seconds: prom-client's Histogram semantics (same buckets, cumulative on export,
 * series in first-observation order), kept here so a sample costs a Map lookup per path instead of
 * prom-client's label hashing and validation, and so a scrape can write it in slices. It stays in
 * the registry (registry.metrics() shows it) through get(), which returns what a prom-client
 * Histogram's get() returns.
 */
class RttHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly series = new Map<string, RttSeries>();
  private generation = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {}

  /** Starts a sample: the paths it lists (observe or keep) stay, the others are dropped by endSample(). */
  beginSample(): void {
    this.generation++;
  }

  /** Observes `seconds` (finite) for the path; or, with undefined (a down path, no RTT yet), only keeps its series. */
  observe(link: string, peer: string, seconds: number | undefined): void {
    const key = `${link}\u0000${peer}`;
    let s = this.series.get(key);
    if (seconds === undefined) {
      if (s) s.seen = this.generation;
      return;
    }
    if (!s) {
      s = { labels: { link, peer }, text: labelText({ link, peer }), buckets: this.bounds.map(() => 0), sum: 0, count: 0, seen: this.generation };
      this.series.set(key, s);
    }
    s.seen = this.generation;
    const i = this.bounds.findIndex((b) => seconds <= b);
    if (i >= 0) s.buckets[i]!++;
    s.sum += seconds;
    s.count++;
  }

  endSample(): void {
    for (const [key, s] of this.series) if (s.seen !== this.generation) this.series.delete(key);
  }

  reset(): void {
    this.series.clear();
  }

  /** prom-client's Histogram.get() shape (bucket labels `le`, the series' labels as sharedLabels). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.buckets[i]!;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export interface BraidMetricsOptions {
  /**
   * Per-path series (state, RTT, loss, bytes ... with `link` and `peer` labels; PATH_SERIES (44) per path
   * with the RTT histogram). Off, a hub exports only the PEER_SERIES (13) per-peer series per peer: the switch for
   * fleets whose path count is too high for Prometheus' usual series budgets. Default on.
   */
  pathSeries?: boolean;
  /**
   * Each path's state and srtt now (braid up: Endpoint.pathRtts()): what sample() reads every second
   * instead of a full snapshot. Without it, sample() takes a snapshot.
   */
  rttSource?: RttSource;
  /**
   * The scrape's snapshot in steps (braid up: the core's snapshotSteps, one peer per step, plus the
   * shell's additions): render() runs steps for RENDER_SLICE_MS per turn of the loop instead of
   * holding it for a whole snapshot (20-40 ms at 1,000 peers). Without it, render() calls getSnapshot.
   */
  snapshotSteps?: () => Iterator<unknown, EdgeSnapshot, undefined>;
}

/**
 * A path's labels: its local link and its peer. A single-peer edge's snapshot names no peer on its
 * links: the one peer's name is used, so series keep one label set whatever the peer count.
 */
export function pathLabels(s: EdgeSnapshot, l: LinkSnapshot): { link: string; peer: string } {
  return { link: l.name, peer: l.peer ?? s.peers?.[0]?.name ?? '' };
}

/** The metrics of one edge, in their own registry (so tests and several edges per process do not collide). */
export class BraidMetrics {
  readonly registry = new Registry();
  private current: EdgeSnapshot | undefined;
  private readonly rttHistogram: RttHistogram;
  private lastSampledMs: number | undefined;
  private readonly pathSeries: boolean;
  private readonly rttSource: RttSource | undefined;
  private readonly snapshotSteps: (() => Iterator<unknown, EdgeSnapshot, undefined>) | undefined;
  /** The families with series per path and per peer, by name: render() writes them itself, in slices. */
  private readonly pathFamilies = new Map<string, ItemFamily<LinkStatus>>();
  private readonly peerFamilies = new Map<string, ItemFamily<PeerSnapshot>>();
  /** `,site=".."`: the registry's default labels, after each series' own. */
  private readonly defaultLabelText: string;
  /** The text of the constant extra labels (STATE_LABELS, TX ...), with a leading comma. */
  private readonly extraText = new WeakMap<Labels, string>();
  /** The render in progress, shared by the scrapes that arrive meanwhile. */
  private rendering: Promise<readonly string[]> | undefined;

  constructor(
    private readonly getSnapshot: () => EdgeSnapshot,
    opts: BraidMetricsOptions = {},
  ) {
    const first = getSnapshot();
    const pathSeries = opts.pathSeries !== false;
    this.pathSeries = pathSeries;
    this.rttSource = opts.rttSource;
    this.snapshotSteps = opts.snapshotSteps;
    /** The paths whose series are exported: every path of every peer, or none (per-peer series only). */
    const paths = (s: EdgeSnapshot): readonly LinkStatus[] => (pathSeries ? s.links : []);
    this.registry.setDefaultLabels({ site: first.site });
    this.defaultLabelText = `,${labelText({ site: first.site })}`;
    // Event-loop lag sampled every EVENT_LOOP_LAG_RESOLUTION_MS, not prom-client's 10 ms: its
    // timer woke an idle edge's one thread 100 times a second (174 -> 72 wake-ups/s, issue 13).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_LAG_RESOLUTION_MS });
    const snap = (): EdgeSnapshot => this.current ?? getSnapshot();
    const registers = [this.registry];

    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: EdgeSnapshot, set: Setter<L>) => void): void => {
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          // Reset first: series of links or classes that no longer exist must disappear.
          this.reset();
          fill(snap(), (labels, v) => this.set(labels, v));
        },
      });
    };
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: EdgeSnapshot, set: Setter<L>) => void): void => {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          // The edge keeps the totals; the counter mirrors them (reset + inc is prom-client's "set").
          this.reset();
          fill(snap(), (labels, v) => this.inc(labels, Math.max(0, v)));
        },
      });
    };
    const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);
    const maybe = <L extends string>(set: Setter<L>, labels: LabelValues<L>, v: number | undefined): void => {
      if (v !== undefined && Number.isFinite(v)) set(labels, v);
    };
    // Families with series per path (labels link, peer, then the extra ones) and per peer (peer,
    // extra): registered with prom-client like the others (registry.metrics() gives them, and is
    // what the tests hold render() to), and written by render() itself from the same `each`.
    const perPath = (type: 'gauge' | 'counter', name: string, help: string, extra: readonly string[], each: (l: LinkStatus, emit: Emit) => void): void => {
      (type === 'gauge' ? gauge : counter)(name, help, ['link', 'peer', ...extra], (s, set) => {
        for (const l of paths(s)) {
          const pl = pathLabels(s, l);
          each(l, (x, v) => set(x ? { ...pl, ...x } : pl, v));
        }
      });
      this.pathFamilies.set(name, { name, help, type, each });
    };
    const perPeer = (type: 'gauge' | 'counter', name: string, help: string, extra: readonly string[], each: (p: PeerSnapshot, emit: Emit) => void): void => {
      (type === 'gauge' ? gauge : counter)(name, help, ['peer', ...extra], (s, set) => {
        for (const p of peers(s)) {
          const pl = { peer: p.name };
          each(p, (x, v) => set(x ? { ...pl, ...x } : pl, v));
        }
      });
      this.peerFamilies.set(name, { name, help, type, each });
    };
    const peers = (s: EdgeSnapshot): readonly PeerSnapshot[] => s.peers ?? [];

    gauge('braid_info', 'Braid edge build; always 1.', ['version'], (_s, set) => set({ version: VERSION }, 1));

    // ---- paths ------------------------------------------------------------------------------
    perPath('gauge', 'braid_path_state', 'Path state (state-set): 1 for the current state.', ['state'], (l, emit) => {
      for (const st of LINK_STATES) emit(STATE_LABELS.get(st), l.state === st ? 1 : 0);
    });
    perPath('gauge', 'braid_path_srtt_seconds', 'Smoothed probe round-trip time, excluding the peer hold time.', [], (l, emit) => emitIf(emit, undefined, seconds(l.rttMs)));
    // Not `quantile`: Prometheus reserves that label for summaries (promtool check metrics).
    perPath('gauge', 'braid_path_rtt_percentile_seconds', 'Round-trip time percentiles (50, 99) over the recent probe window.', ['percentile'], (l, emit) => {
      emitIf(emit, P50, seconds(l.rttP50Ms));
      emitIf(emit, P99, seconds(l.rttP99Ms));
    });
    perPath('gauge', 'braid_path_mtu_bytes', 'Path MTU found by path MTU discovery: the largest outer packet (IP header included) the path carries now.', [], (l, emit) => emitIf(emit, undefined, l.pathMtuBytes));
    perPath('gauge', 'braid_path_inner_mtu_bytes', 'Largest inner packet the path carries in one unfragmented datagram (the path MTU minus the overlay overhead).', [], (l, emit) => emitIf(emit, undefined, l.usableMtuBytes));
    perPath('gauge', 'braid_path_jitter_seconds', 'RFC 3550 interarrival jitter of the peer probes.', [], (l, emit) => emitIf(emit, undefined, seconds(l.jitterMs)));
    perPath('gauge', 'braid_path_loss_ratio', 'Packet loss per direction (tx: what we send, reported by the peer; rx: what we receive) over 1 s, 30 s and the session.', ['direction', 'window'], (l, emit) => {
      emitIf(emit, LOSS.tx1s, l.txLossRatio);
      emitIf(emit, LOSS.rx1s, l.rxLossRatio);
      emitIf(emit, LOSS.tx30s, l.txLossLongRatio);
      emitIf(emit, LOSS.rx30s, l.rxLossLongRatio);
      emitIf(emit, LOSS.txTotal, l.txLossTotalRatio);
      emitIf(emit, LOSS.rxTotal, l.rxLossTotalRatio);
    });
    perPath('gauge', 'braid_path_last_heard_seconds', 'Time since anything was heard on the path.', [], (l, emit) => emitIf(emit, undefined, seconds(l.lastHeardAgoMs)));
    perPath('counter', 'braid_path_flaps_total', 'Times the path fell DOWN.', [], (l, emit) => emit(undefined, l.flaps));
    perPath('gauge', 'braid_path_suppressed', '1 while flap damping keeps the path out of service.', [], (l, emit) => emit(undefined, l.suppressed ? 1 : 0));
    this.rttHistogram = new RttHistogram('braid_path_rtt_seconds', `Path smoothed RTT, sampled every ${RTT_SAMPLE_INTERVAL_MS / 1000} s while the path is not down.`, RTT_BUCKETS_SECONDS);
    // Registered as prom-client registers its own metrics; the registry only reads name, help, type, get() and reset().
    this.registry.registerMetric(this.rttHistogram as unknown as Histogram);

    // ---- links ------------------------------------------------------------------------------
    const txRx = (tx: number, rx: number, emit: Emit): void => {
      emit(TX, tx);
      emit(RX, rx);
    };
    perPath('counter', 'braid_link_bytes_total', 'Bytes sent (tx) and received (rx) on the link, overlay headers included.', ['direction'], (l, emit) => txRx(l.txBytes, l.rxBytes, emit));
    perPath('counter', 'braid_link_packets_total', 'Datagrams sent and received on the link (data, probes, control).', ['direction'], (l, emit) => txRx(l.txPackets, l.rxPackets, emit));
    perPath('counter', 'braid_link_data_packets_total', 'Inner (data) packets sent and received on the link.', ['direction'], (l, emit) => txRx(l.txDataPackets, l.rxDataPackets, emit));
    // Prometheus' base unit is bytes (promtool check metrics): the snapshot's bit/s over 8.
    perPath('gauge', 'braid_link_transmit_rate_bytes_per_second', 'Smoothed send rate of the link.', [], (l, emit) => emit(undefined, l.txRateBps / 8));
    perPath('gauge', 'braid_link_flows', 'Flows whose primary path is this link.', [], (l, emit) => emit(undefined, l.flows));
    // The shaper belongs to the local link and is shared by every peer: one series per link, no peer.
    const shaped = (s: EdgeSnapshot): LinkStatus[] => {
      const byName = new Map<string, LinkStatus>();
      for (const l of s.links as readonly LinkStatus[]) if (l.shaperRateBps !== undefined && !byName.has(l.name)) byName.set(l.name, l);
      return [...byName.values()];
    };
    gauge('braid_link_shaper_rate_bytes_per_second', 'Token-bucket rate of a shaped link.', ['link'], (s, set) => {
      for (const l of shaped(s)) maybe(set, { link: l.name }, l.shaperRateBps === undefined ? undefined : l.shaperRateBps / 8);
    });
    gauge('braid_link_queued_packets', 'Datagrams waiting in a shaped link\'s queues.', ['link'], (s, set) => {
      for (const l of shaped(s)) maybe(set, { link: l.name }, l.queuedPackets);
    });
    counter('braid_link_queue_drops_total', 'Tail drops in a shaped link\'s queues.', ['link'], (s, set) => {
      for (const l of shaped(s)) if (l.queueDrops !== undefined) set({ link: l.name }, l.queueDrops);
    });
    perPath('counter', 'braid_link_fec_parity_packets_total', 'FEC parity datagrams sent on the link.', [], (l, emit) => {
      if (l.fecParitySent !== undefined) emit(undefined, l.fecParitySent);
    });

    // ---- application rules (config `rules:`) ------------------------------------------------
    // One series per rule, labelled with its name and the class it sets ("dscp" when it sets only a
    // DSCP); rules sharing a name add up. A reload that removes a rule removes its series.
    const ruleSeries = (field: 'packets' | 'bytes' | 'flows') => (s: EdgeSnapshot, set: Setter<'rule' | 'class'>): void => {
      for (const r of s.rules ?? []) set({ rule: r.name, class: r.class ?? 'dscp' }, r[field]);
    };
    counter('braid_rule_packets_total', 'Inner packets an application rule classified (first match wins).', ['rule', 'class'], ruleSeries('packets'));
    counter('braid_rule_bytes_total', 'Inner bytes an application rule classified.', ['rule', 'class'], ruleSeries('bytes'));
    counter('braid_rule_flows_total', 'Flows an application rule started (new flows, or flows moved to its class).', ['rule', 'class'], ruleSeries('flows'));

    // ---- classes ----------------------------------------------------------------------------
    const classes = (s: EdgeSnapshot): readonly ClassStatus[] => s.classes;
    counter('braid_class_packets_total', 'Inner packets sent per traffic class.', ['class'], (s, set) => {
      for (const c of classes(s)) set({ class: c.name }, c.txPackets);
    });
    counter('braid_class_bytes_total', 'Inner bytes sent per traffic class.', ['class'], (s, set) => {
      for (const c of classes(s)) set({ class: c.name }, c.txBytes);
    });
    gauge('braid_class_flows', 'Flows per traffic class.', ['class'], (s, set) => {
      for (const c of classes(s)) set({ class: c.name }, c.flows);
    });
    counter('braid_class_moves_total', 'Flow moves between paths per class (failover and SLA steering).', ['class'], (s, set) => {
      for (const c of classes(s)) set({ class: c.name }, c.moves);
    });
    gauge('braid_class_active_paths', 'Paths carrying the class now.', ['class'], (s, set) => {
      for (const c of classes(s)) set({ class: c.name }, c.activeLinks.length);
    });
    gauge('braid_class_fec_data_shards', 'FEC data packets per group (k), when FEC is on for the class.', ['class'], (s, set) => {
      for (const c of classes(s)) maybe(set, { class: c.name }, c.fecK);
    });
    gauge('braid_class_fec_parity_shards', 'FEC parity packets per group (m), when FEC is on for the class.', ['class'], (s, set) => {
      for (const c of classes(s)) maybe(set, { class: c.name }, c.fecM);
    });
    counter('braid_class_fec_recovered_packets_total', 'Data packets rebuilt from FEC parity.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.fecRecovered !== undefined) set({ class: c.name }, c.fecRecovered);
    });
    counter('braid_class_fec_unrecoverable_packets_total', 'Data packets lost with too little parity to rebuild them.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.fecUnrecoverable !== undefined) set({ class: c.name }, c.fecUnrecoverable);
    });
    gauge('braid_class_residual_loss_ratio', 'Loss left after FEC, per class.', ['class'], (s, set) => {
      for (const c of classes(s)) maybe(set, { class: c.name }, c.residualLossRatio);
    });
    counter('braid_class_fec_protected_packets_total', 'Data packets sent in FEC groups.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.fecProtectedPackets !== undefined) set({ class: c.name }, c.fecProtectedPackets);
    });
    counter('braid_class_fec_parity_packets_total', 'FEC parity datagrams sent.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.fecParitySent !== undefined) set({ class: c.name }, c.fecParitySent);
    });
    counter('braid_class_fec_parity_bytes_total', 'Bytes of FEC parity datagrams on the wire.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.fecParityBytes !== undefined) set({ class: c.name }, c.fecParityBytes);
    });
    counter('braid_class_queue_drops_total', 'Tail drops of the class in shaped link queues.', ['class'], (s, set) => {
      for (const c of classes(s)) if (c.queueDrops !== undefined) set({ class: c.name }, c.queueDrops);
    });
    gauge('braid_class_queue_delay_seconds', 'Time the class waited in shaped queues (stat: avg, max).', ['class', 'stat'], (s, set) => {
      for (const c of classes(s)) {
        maybe(set, { class: c.name, stat: 'avg' }, seconds(c.queueDelayAvgMs));
        maybe(set, { class: c.name, stat: 'max' }, seconds(c.queueDelayMaxMs));
      }
    });

    // ---- edge -------------------------------------------------------------------------------
    counter('braid_drops_total', 'Packets dropped, by reason (see DROP_REASONS in src/core/types.ts).', ['reason'], (s, set) => {
      for (const r of DROP_REASONS) set({ reason: r }, s.drops[r] ?? 0);
    });
    gauge('braid_flows', 'Flow-table size.', [], (s, set) => set({}, s.flows));
    counter('braid_flow_moves_total', 'Flow moves between paths, all classes.', [], (s, set) => set({}, s.flowMoves));
    counter('braid_tun_received_packets_total', 'Packets read from the TUN device (site to overlay).', [], (s, set) => set({}, s.tunPacketsIn));
    counter('braid_delivered_packets_total', 'Packets delivered to the TUN device (overlay to site).', [], (s, set) => set({}, s.deliveredPackets));
    // The TUN device's kernel counters (braid up adds them to its snapshots): tx = site to overlay
    // (Braid reads), rx = overlay to site (Braid writes), in the kernel's own sense.
    const tunDev = (s: EdgeSnapshot): TunDeviceStatus | undefined => (s as EdgeStatus).tunDevice;
    counter('braid_tun_device_packets_total', "The TUN device's kernel packet counters: tx read by Braid (site to overlay), rx written by Braid.", ['direction'], (s, set) => {
      const t = tunDev(s);
      if (t) for (const [d, v] of [['tx', t.txPackets], ['rx', t.rxPackets]] as const) set({ direction: d }, v);
    });
    counter('braid_tun_device_dropped_total', "The TUN device's kernel drops: tx = its queue was full before Braid read (Braid too slow), rx = dropped after Braid wrote.", ['direction'], (s, set) => {
      const t = tunDev(s);
      if (t) for (const [d, v] of [['tx', t.txDropped], ['rx', t.rxDropped]] as const) set({ direction: d }, v);
    });
    counter('braid_tun_device_errors_total', "The TUN device's kernel error counters.", ['direction'], (s, set) => {
      const t = tunDev(s);
      if (t) for (const [d, v] of [['tx', t.txErrors], ['rx', t.rxErrors]] as const) set({ direction: d }, v);
    });
    counter('braid_tun_write_refused_total', 'Writes into the TUN the kernel refused (EAGAIN, EIO while down).', [], (s, set) => {
      const t = tunDev(s);
      if (t) set({}, t.writeRefused);
    });
    // The link sockets' kernel side (braid up adds them): receive-buffer drops (with TUN offloads,
    // where a tunnel's loss under load happens; at a hub, what a stall cost) and the bytes queued.
    const sockets = (s: EdgeSnapshot): readonly LinkSocketStatus[] => (s as EdgeStatus).linkSockets ?? [];
    counter('braid_link_socket_dropped_total', "Receive buffers the kernel dropped for the link's socket because it was full (Braid fell behind); with UDP GRO one buffer can be a train of datagrams.", ['link'], (s, set) => {
      for (const l of sockets(s)) set({ link: l.link }, l.rxDropped);
    });
    gauge('braid_link_socket_queued_bytes', "Bytes waiting in the link socket's receive queue (kernel accounting, per-datagram overhead included).", ['link'], (s, set) => {
      for (const l of sockets(s)) set({ link: l.link }, l.rxQueuedBytes);
    });
    // latency.keepWarm (braid up adds it): what keeping the data path warm cost.
    const keepWarm = (s: EdgeSnapshot): KeepWarmStatus | undefined => (s as EdgeStatus).keepWarm;
    counter('braid_keepwarm_pulses_total', 'Keep-warm pulses: one packet through the in-process throwaway pair while the tunnel is in use and otherwise quiet (latency.keepWarm).', [], (s, set) => {
      const k = keepWarm(s);
      if (k) set({}, k.pulses);
    });
    counter('braid_keepwarm_seconds_total', 'Time spent inside keep-warm pulses (the CPU they cost).', [], (s, set) => {
      const k = keepWarm(s);
      if (k) set({}, k.busyMs / 1000);
    });
    counter('braid_duplicates_suppressed_total', 'Duplicate copies dropped at the receiver (duplicate strategy, FEC).', [], (s, set) => set({}, s.duplicatesSuppressed));

    // ---- session ----------------------------------------------------------------------------
    gauge('braid_session_encrypted', '1 when the edge runs with keys (Noise IK sessions), 0 for plaintext.', [], (s, set) => set({}, s.session.encrypted ? 1 : 0));
    gauge('braid_session_established', '1 while a session with the peer is up.', [], (s, set) => set({}, s.session.established ? 1 : 0));
    gauge('braid_session_age_seconds', 'Age of the current session (rekeys every 2 minutes).', [], (s, set) => maybe(set, {}, seconds(s.session.ageMs)));
    gauge('braid_session_handshake_attempts', 'Handshake initiations sent for the current session.', [], (s, set) => set({}, s.session.handshakeAttempts));
    counter('braid_handshake_drops_total', 'Handshake messages refused, by reason.', ['reason'], (s, set) => {
      for (const [r, n] of Object.entries(s.session.handshakeDrops)) set({ reason: r }, n);
    });
    gauge('braid_session_under_load', '1 while under a handshake flood (cookies required).', [], (s, set) => set({}, s.session.underLoad ? 1 : 0));

    // ---- peers (13 series per peer; see PEER_SERIES) ----------------------------------------
    perPeer('gauge', 'braid_peer_state', 'Peer state (state-set): up (some path usable), down (paths, none usable), idle (no endpoint known yet).', ['state'], (p, emit) => {
      for (const st of PEER_STATES) emit(STATE_LABELS.get(st), p.state === st ? 1 : 0);
    });
    perPeer('gauge', 'braid_peer_paths_up', 'Usable paths to the peer.', [], (p, emit) => emit(undefined, p.pathsUp));
    perPeer('counter', 'braid_peer_bytes_total', 'Inner bytes sent to (tx) and received from (rx) the peer.', ['direction'], (p, emit) => txRx(p.txBytes, p.rxBytes, emit));
    perPeer('counter', 'braid_peer_packets_total', 'Inner packets sent to (tx) and received from (rx) the peer.', ['direction'], (p, emit) => txRx(p.txPackets, p.rxPackets, emit));
    perPeer('counter', 'braid_peer_forwarded_packets_total', 'Packets from the peer forwarded to another peer (a hub between spokes).', [], (p, emit) => emit(undefined, p.forwardedPackets));
    perPeer('counter', 'braid_peer_source_not_allowed_total', "Packets from the peer dropped: inner source outside the peer's prefixes.", [], (p, emit) => emit(undefined, p.sourceNotAllowed));
    perPeer('gauge', 'braid_peer_session_established', '1 while a session with the peer is up.', [], (p, emit) => emit(undefined, p.session.established ? 1 : 0));
    perPeer('gauge', 'braid_peer_session_age_seconds', "Age of the peer's current session (the latest handshake).", [], (p, emit) => emitIf(emit, undefined, seconds(p.session.ageMs)));
    perPeer('gauge', 'braid_peer_flows', 'Flows to the peer.', [], (p, emit) => emit(undefined, p.flows));
  }

  /**
   * Observes each path's RTT into the histogram (paths not down, with an RTT); once per distinct
   * time. From the light RttSource when there is one (no snapshot: a 1,000-spoke hub's snapshot
   * held the loop 20-40 ms every second), else from `snapshot` or a fresh one. A path the edge no
   * longer has (a removed peer, a reload) loses its histogram series, as its other series go.
   */
  sample(snapshot?: EdgeSnapshot): void {
    if (!this.pathSeries) return;
    const h = this.rttHistogram;
    if (snapshot === undefined && this.rttSource !== undefined) {
      const { nowMs, paths } = this.rttSource();
      if (nowMs === this.lastSampledMs) return;
      this.lastSampledMs = nowMs;
      h.beginSample();
      for (const p of paths) h.observe(p.link, p.peer, p.state !== 'down' && finite(p.srttMs) ? p.srttMs / 1000 : undefined);
      h.endSample();
      return;
    }
    const s = snapshot ?? this.getSnapshot();
    if (s.nowMs === this.lastSampledMs) return;
    this.lastSampledMs = s.nowMs;
    h.beginSample();
    for (const l of s.links) {
      const { link, peer } = pathLabels(s, l);
      h.observe(link, peer, l.state !== 'down' && finite(l.rttMs) ? l.rttMs / 1000 : undefined);
    }
    h.endSample();
  }

  /**
   * The exposition text, every series from one fresh snapshot, written in slices of about
   * RENDER_SLICE_MS with a turn of the event loop between them. prom-client's registry.metrics()
   * builds it in one go: at 1,000 peers (~100,000 series) that held a hub's only thread for
   * ~550-800 ms per scrape, during which no packet was forwarded and no probe answered, longer than
   * the spokes' 314 ms blackout detection (docs/BENCHMARKS.md "Hub scrape stall"). The families
   * with series per path and per peer (and the RTT histogram) are written here, slice by slice,
   * as prom-client would write them (same lines, same order: test/control/metrics-render.test.ts
   * holds the two to it); the other families (per class, rule, edge, and prom-client's process_*
   * and nodejs_* defaults) come from prom-client, several per slice.
   * Scrapes that arrive while one is being built share it: one snapshot, one render.
   */
  async render(): Promise<string> {
    return `${(await this.renderFamilies()).join('\n\n')}\n`;
  }

  /**
   * render()'s text as its families (render() joins them with blank lines and ends with a newline):
   * the server writes them one by one, without joining ~8 MB into one string and encoding it at once.
   */
  renderFamilies(): Promise<readonly string[]> {
    if (this.rendering === undefined) {
      this.rendering = this.renderSliced().finally(() => {
        this.rendering = undefined;
      });
    }
    return this.rendering;
  }

  private async renderSliced(): Promise<readonly string[]> {
    let sliceStart = performance.now();
    const pause = async (): Promise<void> => {
      if (performance.now() - sliceStart < RENDER_SLICE_MS) return;
      await nextTurn();
      sliceStart = performance.now();
    };
    let s: EdgeSnapshot;
    if (this.snapshotSteps === undefined) s = this.getSnapshot();
    else {
      const steps = this.snapshotSteps();
      for (let r = steps.next(); ; r = steps.next()) {
        if (r.done) {
          s = r.value;
          break;
        }
        await pause();
      }
    }
    this.current = s;
    try {
      const links = this.pathSeries ? s.links : [];
      const peers = s.peers ?? [];
      const linkText = links.map((l) => labelText(pathLabels(s, l)));
      const peerText = peers.map((p) => labelText({ peer: p.name }));
      // Two paths (or peers) with the same labels would be one prom-client series (a gauge's last
      // value, a counter's sum): no snapshot has them, but if one did, prom-client writes those families.
      const ownPaths = new Set(linkText).size === linkText.length;
      const ownPeers = new Set(peerText).size === peerText.length;
      const parts: string[] = [];
      for (const metric of this.registry.getMetricsAsArray()) {
        const pf = ownPaths ? this.pathFamilies.get(metric.name) : undefined;
        const qf = ownPeers ? this.peerFamilies.get(metric.name) : undefined;
        if (pf) parts.push(await this.writeFamily(pf, links, linkText, pause));
        else if (qf) parts.push(await this.writeFamily(qf, peers, peerText, pause));
        else if (metric.name === this.rttHistogram.name) parts.push(await this.writeHistogram(pause));
        else parts.push(await this.registry.getSingleMetricAsString(metric.name));
        await pause();
      }
      return parts;
    } finally {
      this.current = undefined;
    }
  }

  /** `,state="up"`: a constant extra label set's text, formatted once. */
  private extra(x: Labels): string {
    let text = this.extraText.get(x);
    if (text === undefined) {
      text = `,${labelText(x)}`;
      this.extraText.set(x, text);
    }
    return text;
  }

  /** One family with series per item (path or peer), `texts[i]` the labels of items[i]. */
  private async writeFamily<T>(f: ItemFamily<T>, items: readonly T[], texts: readonly string[], pause: () => Promise<void>): Promise<string> {
    const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
    const head = `${f.name}{`;
    const tail = `${this.defaultLabelText}} `;
    const counter = f.type === 'counter';
    let own = '';
    // prom-client's counters are reset and inc()ed by the value (never below 0): the value itself.
    const emit: Emit = (x, v) => {
      lines.push(`${head}${own}${x === undefined ? '' : this.extra(x)}${tail}${valueText(counter ? Math.max(0, v) : v)}`);
    };
    for (let i = 0; i < items.length; i++) {
      own = texts[i]!;
      f.each(items[i]!, emit);
      if ((i & 15) === 15) await pause();
    }
    return lines.join('\n');
  }

  /** braid_path_rtt_seconds as prom-client writes a histogram: `le` and the default labels first, then the series' labels. */
  private async writeHistogram(pause: () => Promise<void>): Promise<string> {
    const h = this.rttHistogram;
    const lines = [`# HELP ${h.name} ${escapeHelp(h.help)}`, `# TYPE ${h.name} ${h.type}`];
    const site = this.defaultLabelText.slice(1);
    const bucket = h.bounds.map((le) => `${h.name}_bucket{le="${le}",${site},`);
    const inf = `${h.name}_bucket{le="+Inf",${site},`;
    const sum = `${h.name}_sum{${site},`;
    const count = `${h.name}_count{${site},`;
    let n = 0;
    for (const s of h.series.values()) {
      let acc = 0;
      for (let i = 0; i < bucket.length; i++) {
        acc += s.buckets[i]!;
        lines.push(`${bucket[i]!}${s.text}} ${valueText(acc)}`);
      }
      lines.push(`${inf}${s.text}} ${valueText(s.count)}`, `${sum}${s.text}} ${valueText(s.sum)}`, `${count}${s.text}} ${valueText(s.count)}`);
      if ((++n & 15) === 0) await pause();
    }
    return lines.join('\n');
  }
}

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  readonly metrics: BraidMetrics;
  close(): Promise<void>;
}

/** "127.0.0.1:9731" or "[::1]:9731" -> host and port; a BraidError naming metrics.listen otherwise. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `metrics.listen: "${listen}" is not address:port`, { field: 'metrics.listen', fix: `use e.g. ${DEFAULT_METRICS_LISTEN}` });
  }
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The exposition text (render()'s: families apart by a blank line, a newline at the end) family by
 * family, a family written only once the socket took the previous ones ('drain'), and a turn of the
 * loop every RENDER_SLICE_MS: strings the socket could not take yet wait in the stream, and were
 * all encoded in one writev later (~8 MB at 1,000 peers, a ~10 ms block after the render).
 */
async function writeFamilies(res: ServerResponse, contentType: string, families: readonly string[]): Promise<void> {
  res.writeHead(200, { 'content-type': contentType });
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  let sliceStart = performance.now();
  for (let i = 0; i < families.length && !res.destroyed; i++) {
    if (!res.write(i > 0 ? `\n\n${families[i]!}` : families[i]!)) {
      await drained();
      sliceStart = performance.now();
    } else if (performance.now() - sliceStart >= RENDER_SLICE_MS) {
      await nextTurn();
      sliceStart = performance.now();
    }
  }
  res.end(families.length > 0 ? '\n' : undefined);
}

/**
 * Serves GET /metrics on `listen` until close(). Resolves once listening; rejects with a
 * BraidError (address in use, not local) so `braid up` can log one line and carry on without it.
 */
export async function startMetricsServer(listen: string, getSnapshot: () => EdgeSnapshot, opts: { sampleIntervalMs?: number } & BraidMetricsOptions = {}): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const { sampleIntervalMs, ...metricsOpts } = opts;
  const metrics = new BraidMetrics(getSnapshot, metricsOpts);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.renderFamilies().then(
        (families) => writeFamilies(res, metrics.registry.contentType, req.method === 'HEAD' ? [] : families),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
      );
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('braid: Prometheus metrics at /metrics\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
  });
  // A scraper that holds connections open must not keep a stopping edge alive.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.code === 'EACCES' ? 'permission denied' : e.message;
      reject(new BraidError(ErrorCode.SOCKET_FAILED, `metrics.listen ${listen}: ${why}`, { field: 'metrics.listen', fix: 'set metrics.listen to a free local address:port, or metrics.enabled: false', cause: e }));
    });
    server.listen(port, host, () => resolve());
  });
  const timer = setInterval(() => metrics.sample(), sampleIntervalMs ?? RTT_SAMPLE_INTERVAL_MS);
  timer.unref();
  metrics.sample();
  const addr = server.address();
  const boundPort = addr !== null && typeof addr === 'object' ? addr.port : port;
  return {
    address: host,
    port: boundPort,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
