/** Types shared by the core's inputs and outputs (the Edge's public surface). */
import type { RuleCounters } from './steer/rules.ts';

/** A UDP endpoint as the shell knows it. The core treats it as opaque, compares by value. */
export interface Endpoint {
  address: string;
  port: number;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.address === b.address;
}

export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** One datagram the shell must send: on link `linkId`, to `to`, with outer DSCP `dscp`. */
export interface Transmit {
  linkId: number;
  to: Endpoint;
  dscp: number;
  bytes: Uint8Array;
}

/** Reasons a packet was dropped; each is a counter in the snapshot. */
export const DROP_REASONS = [
  'malformed', // not a protobuf Envelope/Frame
  'badVersion', // unknown wire version
  'tooLarge', // datagram or inner packet over the limits
  'emptyFrame', // frame with no body
  'badField', // a field out of range (link index, dscp ...)
  'unknownLink', // datagram arrived on a link id the edge does not have
  'badInner', // TUN packet that is not IPv4/IPv6
  'transmitQueueFull', // the shell did not drain transmits fast enough
  'deliveryQueueFull', // the shell did not drain deliveries fast enough
  'noLink', // no link configured
  'unauthenticated', // plaintext or handshake-less datagram where a session is required (or the reverse)
  'noSession', // inner packet with no session yet and the staging queue full
  'badCounter', // AEAD counter out of range
  'unknownIndex', // no session with that receiver index (stale, forged, or after a restart)
  'expiredSession', // session older than REJECT_AFTER_TIME
  'replayed', // counter seen before or older than the replay window
  'authFailed', // AEAD tag did not verify: wrong key or tampered
  'fecMalformed', // FEC parity (or a protected data frame's FEC fields) inconsistent with its group or out of range
  'queueFull', // a shaped link's queue for the class was at its packet or byte bound (tail drop)
  'noRoute', // inner destination matches no peer's prefixes
  'sourceNotAllowed', // inner source outside the sending peer's prefixes (AllowedIPs check)
  'unknownPeer', // authenticated packet for a peer removed since, or plaintext from no known peer
  'pathLimit', // a peer's new path refused: its path table is full
  'staleEpoch', // a FEC frame of a restarted peer's previous life (its decoders were reset)
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type LinkState = 'up' | 'degraded' | 'down' | 'drained';

/**
 * One path's RTT, labelled as the snapshot labels it: the light per-second
 * source of the metrics' RTT histogram, without the rest of a snapshot (buildPathRtts in snapshot.ts).
 */
export interface PathRtt {
  /** Local link name (LinkSnapshot.name). */
  link: string;
  /** The peer the path reaches; on a single-peer edge too (the one peer's name). */
  peer: string;
  state: LinkState;
  /** Smoothed RTT (LinkSnapshot.rttMs); undefined until measured. */
  srttMs: number | undefined;
}

export type EdgeEventKind =
  | 'linkUp'
  | 'linkDown'
  | 'pathState'
  | 'sla'
  | 'flowMoved'
  | 'peerHello'
  | 'session'
  | 'config'
  | 'endpointMoved'
  | 'pathLearned'
  | 'peerAdded'
  | 'peerRemoved';

/**
 * A state change for logs and the dashboard. Tests and reports read the fields; `message` is the
 * same change in words, made in one place (core/events.ts).
 */
export interface EdgeEvent {
  atMs: number;
  kind: EdgeEventKind;
  /** The peer (remote site) the event is about, when there is one. */
  peer?: string;
  /** Link the event is about, by local name, when there is one. */
  link?: string;
  /** flowMoved / sla: the class. */
  class?: string;
  /** State or path before and after (linkUp/linkDown/pathState: states; flowMoved: paths; endpointMoved: endpoints). */
  from?: string;
  to?: string;
  /** Why, in words ("mpls loss 4.1% > 1.0%"). */
  reason?: string;
  /** flowMoved: how many flows moved together. */
  flows?: number;
  message: string;
}

/** One flow of the flow table (what we send; the peer's snapshot has the other direction). */
export interface FlowSnapshot {
  /** "10.1.0.5:5060 > 10.2.0.9:5060 udp". */
  flow: string;
  class: string;
  /** The application rule that chose the class (config `rules:`); absent when the DSCP did. */
  rule?: string;
  /** Its path, or both paths of a duplicated class ("mpls+inet"). */
  links: string;
  packets: number;
  bytes: number;
  /** Since the flow was first seen. */
  ageMs: number;
  /** Average send rate from its first packet to its last (0 with one packet). */
  rateBps: number;
  /** The peer it goes to (edges with several peers). */
  peer?: string;
  /** A bonded flow (strategy bond): its packets per link, and each link's share of them. */
  bond?: { shares: BondShareSnapshot[] };
}

export interface BondShareSnapshot {
  link: string;
  packets: number;
  ratio: number;
}

/**
 * A bonded class towards one peer (issue 17): the send side's bond (links in it, or why not, and
 * the packets each took) and the receive side's resequencing of what the peer bonds towards us.
 */
export interface BondClassStatus {
  /** The peer (edges with several peers). */
  peer?: string;
  class: string;
  links: { link: string; member: boolean; reason?: string; packets: number; ratio: number }[];
  /** Hold bound now: the links' delay difference plus jitter. */
  boundMs: number;
  /** Packets held now, and most held at once. */
  heldPackets: number;
  maxDepth: number;
  holdMaxMs: number;
  holdAvgMs: number;
  /** The bound expired with a hole at the head (a lost packet released what waited behind it). */
  timeouts: number;
  holesSkipped: number;
  evidenceSkips: number;
  overflowSkips: number;
  late: number;
  delivered: number;
  /**
   * bond.equalizeDelay (what the peer bonds towards us): each link's hold now (D_max - D_link, by
   * path index), packets held now and in total, their mean and longest wait, most held at once,
   * and packets a cap sent on early.
   */
  equalize?: { holdMs: number[]; heldPackets: number; held: number; holdAvgMs: number; holdMaxMs: number; maxDepth: number; early: number };
}

export interface LinkSnapshot {
  /** Local link id (drain takes it). */
  id: number;
  /** Local link name. */
  name: string;
  /** The peer this path reaches (absent on single-peer edges' old snapshots). */
  peer?: string;
  /** Path index within the peer. */
  pathId?: number;
  state: LinkState;
  tier: 'primary' | 'overflow' | 'backup';
  remote: string;
  /** Smoothed round-trip time from probes, excluding the peer's hold time; undefined until measured. */
  rttMs: number | undefined;
  rttP50Ms: number | undefined;
  rttP99Ms: number | undefined;
  /** RFC 3550 interarrival jitter of the peer's probes (what we receive). */
  jitterMs: number;
  /** Jitter of what we send, as the peer reports it (steering judges SLAs on this); undefined until reported. */
  txJitterMs: number | undefined;
  /** Loss of what we send (reported by the peer) and of what we receive, over ~1 s and ~30 s. */
  txLossRatio: number | undefined;
  rxLossRatio: number | undefined;
  txLossLongRatio: number | undefined;
  rxLossLongRatio: number | undefined;
  /** Loss over the whole session, per direction. */
  txLossTotalRatio: number | undefined;
  rxLossTotalRatio: number | undefined;
  /** Milliseconds since anything was heard on the link; undefined if never. */
  lastHeardAgoMs: number | undefined;
  /** Times the path fell DOWN, and whether flap damping keeps it out now. */
  flaps: number;
  suppressed: boolean;
  /** Smoothed send rate. */
  txRateBps: number;
  /** Flows whose (primary) path this is. */
  flows: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Data packets (inner) sent/received on this link. */
  txDataPackets: number;
  rxDataPackets: number;
  /** The peer's name for the other end of this link, once its Hello arrived. */
  peerLinkName: string | undefined;
  /** Token-bucket rate when the link is shaped (EdgeLinkConfig.bandwidthBps); absent when not. */
  shaperRateBps?: number;
  /** Datagrams waiting in the link's queues now, and tail drops so far (shaped links only). */
  queuedPackets?: number;
  queueDrops?: number;
  /** FEC parity datagrams sent on this link. */
  fecParitySent?: number;
  /**
   * Path MTU discovery (RFC 8899 padded probes): the largest outer packet the path carries now
   * (IP header included), the inner MTU that leaves (what the TUN's packets are fitted to: MSS
   * clamp, Frag Needed / Packet Too Big, inner fragments), and the search's phase.
   */
  pathMtuBytes?: number;
  usableMtuBytes?: number;
  pmtuPhase?: string;
  /** PMTU probes sent and lost, and black holes detected (a confirmed size stopped getting through). */
  pmtuProbes?: number;
  pmtuProbesLost?: number;
  pmtuBlackHoles?: number;
}

export interface ClassSnapshot {
  name: string;
  strategy: string;
  flows: number;
  /** Links carrying this class's flows now. */
  activeLinks: string[];
  txPackets: number;
  txBytes: number;
  /** Flow moves of this class so far. */
  moves: number;
  /** Outer DSCP put on this class's underlay packets. */
  outerDscp?: number;
  // ---- FEC (present when FEC is enabled for the class). What we send: ----
  /** Data packets per group (nominal k) and parity per group now (0: FEC idle on clean paths). */
  fecK?: number;
  fecM?: number;
  /** Data packets sent in a FEC group, parity datagrams sent and their bytes on the wire. */
  fecProtectedPackets?: number;
  fecParitySent?: number;
  fecParityBytes?: number;
  /** Bytes on the wire of the class's data datagrams (protected or not). */
  fecDataWireBytes?: number;
  /** FEC's cost: parity bytes over data bytes on the wire, for the class so far. */
  fecOverheadRatio?: number;
  /** Shard loss ratio the adaptive controller last worked from (paths in use, share-weighted). */
  fecLossRatio?: number;
  /** Whether the controller suspects self-inflicted congestion (m capped). */
  fecCongested?: boolean;
  /**
   * Packets sent unprotected because their parity would not fit the link MTU
   * (EdgeConfig.maxDatagramBytes; full-size packets at the default 1420-byte TUN MTU).
   */
  fecTooLarge?: number;
  /** Parity shards not sent because the class's overhead budget (fec.maxOverheadRatio) was spent. */
  fecParityCapped?: number;
  // What we receive (present once the peer sent protected traffic of this class):
  /** Data packets rebuilt from parity, and known lost with too little parity to rebuild. */
  fecRecovered?: number;
  fecUnrecoverable?: number;
  /**
   * Originals that arrived after their packet had been rebuilt (parity on a faster path overtook
   * them; suppressed as duplicates). fecRecovered - fecLateOriginals is what FEC actually repaired.
   */
  fecLateOriginals?: number;
  /** Parity or FEC fields of this class that were inconsistent (also in drops.fecMalformed). */
  fecMalformed?: number;
  /**
   * Loss after FEC over the last ~30 s: unrecoverable / (protected packets received + recovered +
   * unrecoverable). A lower bound: data lost from a group none of whose parity arrived is not known.
   */
  residualLossRatio?: number;
  // ---- QoS (present when some link is shaped): ----
  /** Tail drops of this class in the shaped links' queues. */
  queueDrops?: number;
  /** Mean and largest time this class's datagrams waited in shaped queues. */
  queueDelayAvgMs?: number;
  queueDelayMaxMs?: number;
}

export interface EdgeSnapshot {
  nowMs: number;
  site: string;
  links: LinkSnapshot[];
  classes: ClassSnapshot[];
  flows: number;
  flowMoves: number;
  /** The flows that sent the most bytes (at most TOP_FLOWS), largest first. */
  topFlows: FlowSnapshot[];
  tunPacketsIn: number;
  deliveredPackets: number;
  duplicatesSuppressed: number;
  /** The encrypted session with the peer. Never carries key material. */
  session: {
    encrypted: boolean;
    established: boolean;
    ageMs: number | undefined;
    cipher: string | undefined;
    handshakeAttempts: number;
    /** Handshake messages refused, by reason (bad mac1, replayed initiation, rate limited ...). */
    handshakeDrops: Record<string, number>;
    underLoad?: boolean;
  };
  drops: Record<DropReason, number>;
  recentEvents: EdgeEvent[];
  /** Every remote site (`wg show` style); `links` above lists every path of every peer. */
  peers?: PeerSnapshot[];
  /** Bonded classes per peer (present when a class bonds or a peer bonds towards us). */
  bond?: BondClassStatus[];
  /** Application rules in match order with what each matched (present when rules are configured). */
  rules?: RuleCounters[];
}

/** One remote site as `braid status` shows it. */
export interface PeerSnapshot {
  name: string;
  /** The site name the peer announced in its hello. */
  site?: string;
  prefixes: string[];
  /** Usable paths now / paths with an endpoint. */
  pathsUp: number;
  paths: number;
  /** 'up' (some path usable), 'down' (paths but none usable), 'idle' (no endpoint known yet). */
  state: 'up' | 'down' | 'idle';
  /** The pace its paths are probed at now: the probe interval, or the idle pace (peer-idle.ts) after 15 s without data. */
  probeIntervalMs?: number;
  session: { established: boolean; ageMs?: number; cipher?: string; handshakeAttempts: number };
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Packets from this peer forwarded to another peer (a hub between spokes). */
  forwardedPackets: number;
  sourceNotAllowed: number;
  duplicatesSuppressed: number;
  flows: number;
  flowMoves: number;
  /** Worst RTT and tx loss over its usable paths (for the fleet summary). */
  worstRttMs?: number;
  worstTxLossRatio?: number;
}

// ---- Many peers (Endpoint) -----------------------------------------------------------------

/** One local WAN link of the box (a socket in the shell). Ids are indexes into EndpointConfig.links. */
export interface LinkConfig {
  /** Operator's name for the link ("mpls", "inet", "lte"); exchanged in the hello, shown everywhere. */
  name: string;
  costTier?: 'primary' | 'overflow' | 'backup';
  /** Configured uplink rate; 0/undefined = unknown (balance treats links equally, no shaper). */
  bandwidthBps?: number;
  /** Outer DSCP of probes and control frames on this link. */
  dscp?: number;
  /** Token bucket depth of the shaper (bytes) when bandwidthBps is set. */
  shaperBurstBytes?: number;
  /**
   * The link interface's MTU (default 1500): where path MTU discovery starts and the most it
   * searches up to on this link's paths (the shell reads it from the interface).
   */
  mtuBytes?: number;
}

/** One remote site. */
export interface PeerConfig {
  /** Unique among the peers; the session and every label use it. */
  name: string;
  /** X25519 public key (32 bytes); required unless the overlay runs in plaintext. */
  publicKey?: Uint8Array;
  /**
   * The site's prefixes ("10.2.0.0/16", "fd00:2::/48"), WireGuard AllowedIPs semantics: outbound,
   * the inner destination picks the peer by longest match; inbound, the inner source must lie in them.
   */
  prefixes: readonly string[];
  /**
   * Where to reach the peer, by local link name. Links without one learn the endpoint from the
   * peer's first authenticated packet on that path (a hub does not know its spokes' addresses).
   */
  endpoints?: Readonly<Record<string, Endpoint>>;
  /** Local link names that may reach this peer; default all. */
  links?: readonly string[];
  /** Send an authenticated keepalive on every path idle this long (the side behind NAT); 0/undefined = off. */
  persistentKeepaliveMs?: number;
}
