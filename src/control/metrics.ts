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
import { DROP_REASONS, type EdgeSnapshot, type LinkSnapshot, type LinkState, type PeerSnapshot } from '../core/types.ts';
import type { ClassStatus, EdgeStatus, LinkStatus, TunDeviceStatus } from './control-socket.ts';

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9731';
/** How often each path's RTT goes into the histogram: the probe-driven srtt moves on this scale. */
export const RTT_SAMPLE_INTERVAL_MS = 1000;
/** Resolution of the nodejs_eventloop_lag_* histogram (prom-client's monitorEventLoopDelay timer). */
export const EVENT_LOOP_LAG_RESOLUTION_MS = 100;
/** RTT histogram buckets: LAN-ish to geostationary satellite. */
const RTT_BUCKETS_SECONDS = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2];
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

type Setter<L extends string> = (labels: LabelValues<L>, value: number) => void;

export interface BraidMetricsOptions {
  /**
   * Per-path series (state, RTT, loss, bytes ... with `link` and `peer` labels; PATH_SERIES (44) per path
   * with the RTT histogram). Off, a hub exports only the PEER_SERIES (13) per-peer series per peer: the switch for
   * fleets whose path count is too high for Prometheus' usual series budgets. Default on.
   */
  pathSeries?: boolean;
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
  private readonly rttHistogram: Histogram<'link' | 'peer'>;
  private lastSampledMs: number | undefined;
  private readonly pathSeries: boolean;

  constructor(
    private readonly getSnapshot: () => EdgeSnapshot,
    opts: BraidMetricsOptions = {},
  ) {
    const first = getSnapshot();
    const pathSeries = opts.pathSeries !== false;
    this.pathSeries = pathSeries;
    /** The paths whose series are exported: every path of every peer, or none (per-peer series only). */
    const paths = (s: EdgeSnapshot): readonly LinkStatus[] => (pathSeries ? s.links : []);
    this.registry.setDefaultLabels({ site: first.site });
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

    gauge('braid_info', 'Braid edge build; always 1.', ['version'], (_s, set) => set({ version: VERSION }, 1));

    // ---- paths ------------------------------------------------------------------------------
    gauge('braid_path_state', 'Path state (state-set): 1 for the current state.', ['link', 'peer', 'state'], (s, set) => {
      for (const l of paths(s)) for (const st of LINK_STATES) set({ ...pathLabels(s, l), state: st }, l.state === st ? 1 : 0);
    });
    gauge('braid_path_srtt_seconds', 'Smoothed probe round-trip time, excluding the peer hold time.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) maybe(set, pathLabels(s, l), seconds(l.rttMs));
    });
    // Not `quantile`: Prometheus reserves that label for summaries (promtool check metrics).
    gauge('braid_path_rtt_percentile_seconds', 'Round-trip time percentiles (50, 99) over the recent probe window.', ['link', 'peer', 'percentile'], (s, set) => {
      for (const l of paths(s)) {
        maybe(set, { ...pathLabels(s, l), percentile: '50' }, seconds(l.rttP50Ms));
        maybe(set, { ...pathLabels(s, l), percentile: '99' }, seconds(l.rttP99Ms));
      }
    });
    gauge('braid_path_mtu_bytes', 'Path MTU found by path MTU discovery: the largest outer packet (IP header included) the path carries now.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) maybe(set, pathLabels(s, l), l.pathMtuBytes);
    });
    gauge('braid_path_inner_mtu_bytes', 'Largest inner packet the path carries in one unfragmented datagram (the path MTU minus the overlay overhead).', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) maybe(set, pathLabels(s, l), l.usableMtuBytes);
    });
    gauge('braid_path_jitter_seconds', 'RFC 3550 interarrival jitter of the peer probes.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) maybe(set, pathLabels(s, l), seconds(l.jitterMs));
    });
    gauge('braid_path_loss_ratio', 'Packet loss per direction (tx: what we send, reported by the peer; rx: what we receive) over 1 s, 30 s and the session.', ['link', 'peer', 'direction', 'window'], (s, set) => {
      for (const l of paths(s)) {
        maybe(set, { ...pathLabels(s, l), direction: 'tx', window: '1s' }, l.txLossRatio);
        maybe(set, { ...pathLabels(s, l), direction: 'rx', window: '1s' }, l.rxLossRatio);
        maybe(set, { ...pathLabels(s, l), direction: 'tx', window: '30s' }, l.txLossLongRatio);
        maybe(set, { ...pathLabels(s, l), direction: 'rx', window: '30s' }, l.rxLossLongRatio);
        maybe(set, { ...pathLabels(s, l), direction: 'tx', window: 'total' }, l.txLossTotalRatio);
        maybe(set, { ...pathLabels(s, l), direction: 'rx', window: 'total' }, l.rxLossTotalRatio);
      }
    });
    gauge('braid_path_last_heard_seconds', 'Time since anything was heard on the path.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) maybe(set, pathLabels(s, l), seconds(l.lastHeardAgoMs));
    });
    counter('braid_path_flaps_total', 'Times the path fell DOWN.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) set(pathLabels(s, l), l.flaps);
    });
    gauge('braid_path_suppressed', '1 while flap damping keeps the path out of service.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) set(pathLabels(s, l), l.suppressed ? 1 : 0);
    });
    this.rttHistogram = new Histogram<'link' | 'peer'>({
      name: 'braid_path_rtt_seconds',
      help: `Path smoothed RTT, sampled every ${RTT_SAMPLE_INTERVAL_MS / 1000} s while the path is not down.`,
      labelNames: ['link', 'peer'],
      buckets: RTT_BUCKETS_SECONDS,
      registers,
    });

    // ---- links ------------------------------------------------------------------------------
    counter('braid_link_bytes_total', 'Bytes sent (tx) and received (rx) on the link, overlay headers included.', ['link', 'peer', 'direction'], (s, set) => {
      for (const l of paths(s)) {
        set({ ...pathLabels(s, l), direction: 'tx' }, l.txBytes);
        set({ ...pathLabels(s, l), direction: 'rx' }, l.rxBytes);
      }
    });
    counter('braid_link_packets_total', 'Datagrams sent and received on the link (data, probes, control).', ['link', 'peer', 'direction'], (s, set) => {
      for (const l of paths(s)) {
        set({ ...pathLabels(s, l), direction: 'tx' }, l.txPackets);
        set({ ...pathLabels(s, l), direction: 'rx' }, l.rxPackets);
      }
    });
    counter('braid_link_data_packets_total', 'Inner (data) packets sent and received on the link.', ['link', 'peer', 'direction'], (s, set) => {
      for (const l of paths(s)) {
        set({ ...pathLabels(s, l), direction: 'tx' }, l.txDataPackets);
        set({ ...pathLabels(s, l), direction: 'rx' }, l.rxDataPackets);
      }
    });
    // Prometheus' base unit is bytes (promtool check metrics): the snapshot's bit/s over 8.
    gauge('braid_link_transmit_rate_bytes_per_second', 'Smoothed send rate of the link.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) set(pathLabels(s, l), l.txRateBps / 8);
    });
    gauge('braid_link_flows', 'Flows whose primary path is this link.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) set(pathLabels(s, l), l.flows);
    });
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
    counter('braid_link_fec_parity_packets_total', 'FEC parity datagrams sent on the link.', ['link', 'peer'], (s, set) => {
      for (const l of paths(s)) if (l.fecParitySent !== undefined) set(pathLabels(s, l), l.fecParitySent);
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
    const peers = (s: EdgeSnapshot): readonly PeerSnapshot[] => s.peers ?? [];
    gauge('braid_peer_state', 'Peer state (state-set): up (some path usable), down (paths, none usable), idle (no endpoint known yet).', ['peer', 'state'], (s, set) => {
      for (const p of peers(s)) for (const st of PEER_STATES) set({ peer: p.name, state: st }, p.state === st ? 1 : 0);
    });
    gauge('braid_peer_paths_up', 'Usable paths to the peer.', ['peer'], (s, set) => {
      for (const p of peers(s)) set({ peer: p.name }, p.pathsUp);
    });
    counter('braid_peer_bytes_total', 'Inner bytes sent to (tx) and received from (rx) the peer.', ['peer', 'direction'], (s, set) => {
      for (const p of peers(s)) {
        set({ peer: p.name, direction: 'tx' }, p.txBytes);
        set({ peer: p.name, direction: 'rx' }, p.rxBytes);
      }
    });
    counter('braid_peer_packets_total', 'Inner packets sent to (tx) and received from (rx) the peer.', ['peer', 'direction'], (s, set) => {
      for (const p of peers(s)) {
        set({ peer: p.name, direction: 'tx' }, p.txPackets);
        set({ peer: p.name, direction: 'rx' }, p.rxPackets);
      }
    });
    counter('braid_peer_forwarded_packets_total', 'Packets from the peer forwarded to another peer (a hub between spokes).', ['peer'], (s, set) => {
      for (const p of peers(s)) set({ peer: p.name }, p.forwardedPackets);
    });
    counter('braid_peer_source_not_allowed_total', "Packets from the peer dropped: inner source outside the peer's prefixes.", ['peer'], (s, set) => {
      for (const p of peers(s)) set({ peer: p.name }, p.sourceNotAllowed);
    });
    gauge('braid_peer_session_established', '1 while a session with the peer is up.', ['peer'], (s, set) => {
      for (const p of peers(s)) set({ peer: p.name }, p.session.established ? 1 : 0);
    });
    gauge('braid_peer_session_age_seconds', "Age of the peer's current session (the latest handshake).", ['peer'], (s, set) => {
      for (const p of peers(s)) maybe(set, { peer: p.name }, seconds(p.session.ageMs));
    });
    gauge('braid_peer_flows', 'Flows to the peer.', ['peer'], (s, set) => {
      for (const p of peers(s)) set({ peer: p.name }, p.flows);
    });
  }

  /** Observes each path's RTT into the histogram; once per distinct snapshot time. */
  sample(snapshot: EdgeSnapshot = this.getSnapshot()): void {
    if (snapshot.nowMs === this.lastSampledMs) return;
    this.lastSampledMs = snapshot.nowMs;
    if (!this.pathSeries) return;
    for (const l of snapshot.links) {
      if (l.state !== 'down' && l.rttMs !== undefined && Number.isFinite(l.rttMs)) this.rttHistogram.observe(pathLabels(snapshot, l), l.rttMs / 1000);
    }
  }

  /** The exposition text, every series from one fresh snapshot. */
  async render(): Promise<string> {
    this.current = this.getSnapshot();
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
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
 * Serves GET /metrics on `listen` until close(). Resolves once listening; rejects with a
 * BraidError (address in use, not local) so `braid up` can log one line and carry on without it.
 */
export async function startMetricsServer(listen: string, getSnapshot: () => EdgeSnapshot, opts: { sampleIntervalMs?: number } & BraidMetricsOptions = {}): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const metrics = new BraidMetrics(getSnapshot, opts.pathSeries === undefined ? {} : { pathSeries: opts.pathSeries });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.render().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
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
  const timer = setInterval(() => metrics.sample(), opts.sampleIntervalMs ?? RTT_SAMPLE_INTERVAL_MS);
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
