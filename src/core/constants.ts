/**
 * Limits and defaults. "Put a limit on everything" (TigerBeetle): every collection the core
 * grows has its cap here. Protocol constants must match on both edges; implementation constants
 * are local choices.
 */

// ---- Protocol ----------------------------------------------------------------------------

/** Wire format version carried in every envelope. */
export const WIRE_VERSION = 1;
/** Largest inner packet we carry (IPv4/IPv6 total length fits 16 bits). */
export const MAX_INNER_PACKET_BYTES = 65535;
/** Largest overlay datagram we accept; anything bigger is a counted drop. */
export const MAX_DATAGRAM_BYTES = 65535;
/** Overhead budget per data packet on top of the outer IP/UDP headers (DESIGN.md "Wire"). */
export const OVERHEAD_BUDGET_BYTES = 64;
/** Link MTU assumed when a link's own is not known (Ethernet). */
export const DEFAULT_LINK_MTU_BYTES = 1500;
/**
 * Received datagrams longer than the link MTU allows (less outer IPv4 + UDP headers) by more than
 * this are dropped before parsing ('tooLarge'): no peer that respects the path sends them, and
 * parsing them is work an attacker chooses (issue 14, finding 6). The slack covers a path MTU
 * probe overshooting its size by a varint step.
 */
export const RECEIVE_DATAGRAM_SLACK_BYTES = 64;
/** The receive cap on a DEFAULT_LINK_MTU_BYTES link: 1500 - 28 + 64 = 1536 (codec.receiveCapBytes). */
export const MAX_RECEIVE_DATAGRAM_BYTES = DEFAULT_LINK_MTU_BYTES - 28 + RECEIVE_DATAGRAM_SLACK_BYTES;
/** Largest link index on the wire. */
export const MAX_LINKS = 16;

// ---- Implementation ----------------------------------------------------------------------

/** Keepalive/probe interval per link when nothing else is sent (issue 2's simple liveness). */
export const KEEPALIVE_INTERVAL_MS = 100;
/** A link on which nothing was heard for this long is not used for new packets. */
export const LINK_DEAD_AFTER_MS = 1000;
/** Flow table cap; the least recently used flow is evicted past it. */
export const MAX_FLOWS = 65536;
/** A flow idle for this long is forgotten. */
export const FLOW_IDLE_TIMEOUT_MS = 120_000;

// ---- Bonding (issue 17): resequencing at the receiver, src/core/steer/reseq.ts -------------

/** Largest sequence span one bonded flow may hold (a power of two): its ring grows to this. */
export const RESEQ_MAX_FLOW_PACKETS = 8192;
/** Bytes one bonded flow may hold before its oldest hole is skipped. */
export const RESEQ_MAX_FLOW_BYTES = 8 * 1024 * 1024;
/** Packets held by all bonded flows of one resequencer (one peer) together. */
export const RESEQ_MAX_HELD_PACKETS = 32768;
/** Bytes held by all bonded flows of one resequencer together. */
export const RESEQ_MAX_HELD_BYTES = 32 * 1024 * 1024;
/** Bonded flows one resequencer tracks; the least recently heard idle one is forgotten past it. */
export const RESEQ_MAX_FLOWS = 1024;
/** A bonded flow with nothing held and nothing heard for this long is forgotten. */
export const RESEQ_FLOW_IDLE_MS = 30_000;
/** Longest a packet may be held waiting for a hole, whatever the paths' delay difference says. */
export const RESEQ_MAX_BOUND_MS = 500;
/** Shortest hold bound: below it a few ms of scheduling noise would skip holes that were in flight. */
export const RESEQ_MIN_BOUND_MS = 2;
/**
 * strategy bond: a path whose one-way delay exceeds the fastest bonded path's by more than this
 * stays out of the bond (config: classes.<name>.bond.maxDelayGapMs); the receiver holds packets
 * about that long at most.
 */
export const BOND_DEFAULT_MAX_DELAY_GAP_MS = 80;
/**
 * bond.equalizeDelay (src/core/steer/equalize.ts): longest a receiver holds a bonded packet to give
 * it the slowest member's delay, and what one class may hold so (past it the oldest goes early).
 */
export const BOND_EQUALIZE_MAX_HOLD_MS = RESEQ_MAX_BOUND_MS;
export const BOND_EQUALIZE_MAX_PACKETS = 16384;
export const BOND_EQUALIZE_MAX_BYTES = 16 * 1024 * 1024;
/** Paths a bond and a resequenced flow track (ids 0..BOND_MAX_PATHS-1; = fec-tx's MAX_PATHS_PER_PEER). */
export const BOND_MAX_PATHS = 32;
/** Outgoing datagrams queued for the shell before we start dropping (per Edge). */
export const MAX_TRANSMIT_QUEUE = 4096;
/** Inner packets queued for the TUN before we start dropping. */
export const MAX_DELIVERY_QUEUE = 4096;
/** Events kept for pollEvent before the oldest is discarded. */
export const MAX_EVENT_QUEUE = 1024;
/** Recent events kept in the snapshot for the dashboard. */
export const RECENT_EVENTS_KEPT = 50;
/**
 * Default TUN MTU: the largest inner packet a 1500-byte path carries in one datagram over IPv6,
 * worst case (1500 - outer IPv6/UDP 48 - overlay overhead 59 = usableInnerMtu(1500, 6); IPv4
 * leaves 1413), so the defaults never need a Frag Needed, an inner fragment or an underlay
 * fragment on either family (1420, WireGuard's figure, is over both: docs/MTU.md).
 */
export const DEFAULT_TUN_MTU = 1393;
/** Default underlay UDP port. */
export const DEFAULT_LISTEN_PORT = 51900;
/** Default socket buffer size (DESIGN.md "Hot path": 208 KiB default overflows under TCP). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Peers one edge serves (a hub and its spokes; issue 11). */
export const MAX_PEERS = 4096;
/** Prefixes one peer may own (its site's LAN prefixes). */
export const MAX_PEER_PREFIXES = 256;
/** Prefixes in the routing table across all peers, both families: 4,096 peers x 16 prefixes. */
export const MAX_ROUTE_PREFIXES = 65_536;
