/**
 * A path: (local link, peer, the peer's link) with the remote endpoint it is reached at now.
 *
 * Both sides key a path by (the link a datagram arrives on, the sender's link index carried inside
 * the authenticated frame), so nothing assumes the two sites number or name their links alike,
 * and a datagram copied from one link's path into another link's socket lands on a different key
 * (it cannot move that link's endpoint). A path's remote link is unknown (-1) until the peer's first
 * authenticated frame on it; its endpoint is configured, or learned from that frame.
 *
 * This file holds the path's state and the metrics steering reads; the state machine and the
 * statistics live in path-state.ts and path-stats.ts.
 */
import { CLASS_NAMES, type CostTier, type PathMetrics } from '../steer/classes.ts';
import type { Endpoint } from '../types.ts';
import { outerHeaderBytes, usableInnerMtu, type IpFamily } from '../wire/overhead.ts';
import { MIN_LOST_FOR_SLA, PathStats } from './path-stats.ts';
import { PathStateMachine, type PathState, type PathStateConfig } from './path-state.ts';
import { CONFIRM_ONLY_ABOVE_DATAGRAM_BYTES, PmtuDiscovery } from './pmtu.ts';

export interface PathRuntime {
  /** Index in the peer's path list (stable for the path's life). */
  id: number;
  /** Local link id (EndpointConfig.links index): the socket we send from and receive on. */
  linkId: number;
  /** Local link name. */
  name: string;
  /** The peer's link index on the wire (its own numbering); -1 until its first authenticated frame. */
  remoteLink: number;
  /** The peer's name for that link, once its hello arrived. */
  peerLinkName: string | undefined;
  remote: Endpoint;
  /** The endpoint came from the configuration (else learned from the peer's packets). */
  configured: boolean;
  /** Whether we know an endpoint to send to (configured, or learned). */
  hasEndpoint: boolean;
  /** Last time the endpoint moved (rate limit). */
  endpointMovedAtMs: number;
  endpointMoves: number;
  /**
   * The path's cost tier, what steering judges: the worse of the local link's (linkTier) and the
   * peer's link's as its hello announced it (peerTier; primary until then, and from a peer that
   * does not announce tiers). A hub's inet path to a branch's backup LTE is a backup path.
   */
  tier: CostTier;
  linkTier: CostTier;
  peerTier: CostTier;
  dscp: number;
  sm: PathStateMachine;
  /** Replaced when the peer restarts. */
  stats: PathStats;
  /** The peer drained its end of this path: we do not send data on it either. */
  remoteDrained: boolean;
  /** The link's external health target is unreachable (the ISP is down): why, or undefined. */
  healthDown: string | undefined;
  /** Per-path sequence shared by probes and data frames. */
  txSeq: number;
  lastProbeSeqRx: number;
  /** When the peer's last regular probe arrived on this path (peer-idle.ts). */
  peerProbeAtMs: number;
  /**
   * The peer's last probe on the path, answered by our next probe (overlay.proto Probe.echo_*)
   * instead of a ProbeReply now: its seq (0: none held), tx_us and arrival. Held only while we
   * probe the path every interval anyway and the peer reads echoes (peer.ts onFrame 'probe').
   */
  echoSeq: number;
  echoTxUs: number;
  echoRxMs: number;
  /** The peer's last probe on the path said it reads echoes (Probe.echo_ok, or it carried one). */
  peerEchoes: boolean;
  /** Per class: is this path within the class's SLA (with hysteresis). */
  inSla: boolean[];
  /** Per class: the current breach in words, for move reasons. */
  breach: (string | undefined)[];
  slaOutAtMs: Float64Array;
  slaExits: Float64Array;
  slaExitsAtMs: Float64Array;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  txDataPackets: number;
  rxDataPackets: number;
  rateMarkBytes: number;
  rateMarkMs: number;
  txRateBps: number;
  /** Last time anything was sent on the path (persistent keepalive). */
  lastTxMs: number;
  /** When our hello last went on this path (peer-tx.ts HELLO_REFRESH_MS); -Infinity: not yet, Infinity: never again. */
  helloAtMs: number;
  /** The peer's start epoch as last seen in its probes on this path. */
  peerEpoch: number | undefined;
  /** Per class: the link queue's drops of this class at the last FEC adaptation. */
  classDropsSeen: Float64Array;
  fecParitySent: number;
  /** Path MTU discovery (RFC 8899 padded probes, pmtu.ts); recreated when the endpoint changes family. */
  pmtu: PmtuDiscovery;
  /** The inner MTU the path carries now (pathUsableMtu), refreshed when the PMTU changes. */
  usableMtuBytes: number;
  /** tx_us of the PMTU probe in flight (its reply echoes it) and the size it tests; -1: none. */
  pmtuProbeTxUs: number;
  pmtuProbeBytes: number;
  /** When the path last carried a datagram over CONFIRM_ONLY_ABOVE_DATAGRAM_BYTES (PMTU confirmation). */
  bigTxAtMs: number;
}

export interface NewPath {
  id: number;
  linkId: number;
  name: string;
  tier: CostTier;
  dscp: number;
  remote: Endpoint | undefined;
  configured: boolean;
  remoteLink: number;
  /** The local link's interface MTU: the largest packet the path could carry (PMTU search ceiling). */
  linkMtuBytes: number;
  /** The largest datagram (UDP payload) the endpoint sends or parses (EndpointConfig.maxDatagramBytes). */
  maxDatagramBytes: number;
}

export function createPath(p: NewPath, sm: PathStateConfig, nowMs: number): PathRuntime {
  const n = CLASS_NAMES.length;
  const path: PathRuntime = {
    id: p.id,
    linkId: p.linkId,
    name: p.name,
    remoteLink: p.remoteLink,
    peerLinkName: undefined,
    remote: p.remote ? { address: p.remote.address, port: p.remote.port } : { address: '', port: 0 },
    configured: p.configured,
    hasEndpoint: p.remote !== undefined,
    endpointMovedAtMs: -Infinity,
    endpointMoves: 0,
    tier: p.tier,
    linkTier: p.tier,
    peerTier: 'primary',
    dscp: p.dscp,
    sm: new PathStateMachine(sm, nowMs),
    stats: new PathStats(),
    remoteDrained: false,
    healthDown: undefined,
    txSeq: 0,
    lastProbeSeqRx: -1,
    peerProbeAtMs: -Infinity,
    echoSeq: 0,
    echoTxUs: 0,
    echoRxMs: 0,
    peerEchoes: false,
    inSla: CLASS_NAMES.map(() => true),
    breach: CLASS_NAMES.map(() => undefined),
    slaOutAtMs: new Float64Array(n),
    slaExits: new Float64Array(n),
    slaExitsAtMs: new Float64Array(n),
    txPackets: 0,
    txBytes: 0,
    rxPackets: 0,
    rxBytes: 0,
    txDataPackets: 0,
    rxDataPackets: 0,
    rateMarkBytes: 0,
    rateMarkMs: nowMs,
    txRateBps: 0,
    lastTxMs: nowMs,
    helloAtMs: -Infinity,
    peerEpoch: undefined,
    classDropsSeen: new Float64Array(n),
    fecParitySent: 0,
    pmtu: newPmtu(p.remote, p.linkMtuBytes, p.maxDatagramBytes, nowMs),
    usableMtuBytes: 0,
    pmtuProbeTxUs: -1,
    pmtuProbeBytes: 0,
    bigTxAtMs: -Infinity,
  };
  refreshUsableMtu(path);
  return path;
}

/** A datagram of `sizeBytes` went out on `p`: counters, and whether a PMTU confirmation is worth sending. */
export function notePathTx(p: PathRuntime, sizeBytes: number, nowMs: number): void {
  p.txPackets++;
  p.txBytes += sizeBytes;
  p.lastTxMs = nowMs;
  if (sizeBytes > CONFIRM_ONLY_ABOVE_DATAGRAM_BYTES) p.bigTxAtMs = nowMs;
}

/** Outer IP version of a path to `remote` (IPv6 text has a colon). */
export function pathFamily(remote: Endpoint | undefined): IpFamily {
  return remote !== undefined && remote.address.includes(':') ? 6 : 4;
}

/**
 * PMTU discovery for a path over `remote`: the search ceiling is the link's MTU, and never more
 * than the largest datagram the endpoints send and parse (maxDatagramBytes plus the outer headers).
 */
export function newPmtu(remote: Endpoint | undefined, linkMtuBytes: number, maxDatagramBytes: number, nowMs: number): PmtuDiscovery {
  const family = pathFamily(remote);
  const pmtu = new PmtuDiscovery({ family, maxMtuBytes: Math.min(linkMtuBytes, maxDatagramBytes + outerHeaderBytes(family)) }, nowMs);
  // Probe replies say when the path carries what we send (peer-pmtu.ts); until the first, a lost
  // probe is not the size's fault (a path whose direction is cut from the start: VOPR seed 153).
  pmtu.onPathHeard(-Infinity);
  return pmtu;
}

/** The endpoint moved: a new address family is a new path as far as its MTU goes. */
export function retargetPmtu(p: PathRuntime, linkMtuBytes: number, maxDatagramBytes: number, nowMs: number): void {
  if (pathFamily(p.remote) === p.pmtu.config.family) return;
  p.pmtu = newPmtu(p.remote, linkMtuBytes, maxDatagramBytes, nowMs);
  p.pmtuProbeTxUs = -1;
  refreshUsableMtu(p);
}

/** Recomputes usableMtuBytes from the PMTU (after a change). */
export function refreshUsableMtu(p: PathRuntime): void {
  p.usableMtuBytes = usableInnerMtu(p.pmtu.currentPmtu, p.pmtu.config.family);
}

export function effectiveState(p: PathRuntime): PathState {
  if (p.healthDown !== undefined) return 'down';
  if (p.remoteDrained && p.sm.state !== 'down') return 'drained';
  return p.sm.state;
}

/** May carry data now: UP or DEGRADED, not drained at either end, and with somewhere to send. */
export function pathUsable(p: PathRuntime): boolean {
  return p.sm.usable && !p.remoteDrained && p.hasEndpoint && p.healthDown === undefined;
}

/**
 * Steering's view of a path over `windowMs`. `minLost` (default MIN_LOST_FOR_SLA) keeps one lost
 * probe on an idle path from reading as 10% loss in a 1 s window; re-entry judges a window of
 * many seconds, where every loss counts (else 2 of 100 probes lost read as 0%).
 */
export function pathMetrics(nowMs: number, p: PathRuntime, windowMs: number, minLost = MIN_LOST_FOR_SLA): PathMetrics {
  return { txLossRatio: p.stats.txLossRatio(nowMs, windowMs, minLost), rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) };
}

/** A counter of bytes sent with its smoothed rate (a path's, or a link's for all peers). */
export interface RateMeter {
  txBytes: number;
  rateMarkBytes: number;
  rateMarkMs: number;
  txRateBps: number;
}

/** Smoothed send rate, sampled at most every 250 ms (every probe interval). */
export function sampleRate(nowMs: number, r: RateMeter): void {
  const dt = nowMs - r.rateMarkMs;
  if (dt < 250) return;
  const rate = ((r.txBytes - r.rateMarkBytes) * 8 * 1000) / dt;
  r.txRateBps = r.txRateBps === 0 ? rate : r.txRateBps + (rate - r.txRateBps) / 4;
  r.rateMarkBytes = r.txBytes;
  r.rateMarkMs = nowMs;
}

/** "mpls" or, once the peer named its end, "mpls>inet". */
export function pathName(p: PathRuntime): string {
  return p.peerLinkName !== undefined && p.peerLinkName !== p.name ? `${p.name}>${p.peerLinkName}` : p.name;
}

/**
 * The inner MTU a path carries without fragmenting the underlay: its discovered PMTU (pmtu.ts,
 * starting optimistic at the link MTU) minus the outer headers and our worst-case overhead
 * (wire/overhead.ts). Cached on the path: refreshUsableMtu after the PMTU moves.
 */
export function pathUsableMtu(p: PathRuntime): number {
  return p.usableMtuBytes;
}
