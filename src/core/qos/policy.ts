/**
 * Queueing policy per traffic class (DESIGN.md "QoS"): strict priority for network control and
 * realtime, weighted fair queueing (deficit round robin) for the rest, bounded queues.
 *
 * Weights are relative shares of what the priority classes leave: with every WFQ class backlogged,
 * video gets 6/15, business 4/15, signaling and default 2/15 each, bulk 1/15; an idle class's share
 * goes to the others. Queue bounds: packets, and bytes (default: 100 ms at the link's shaped rate,
 * at least 64 KiB), so bulk cannot build seconds of queue in front of everything else.
 */

export interface ClassQueuePolicy {
  /** Strict priority (served before every WFQ class, in class order). */
  priority: boolean;
  /** DRR weight (quantum = weight x QUANTUM_BYTES) for non-priority classes, 1..100. */
  weight: number;
  /** Most packets queued for this class on one link. */
  maxPackets: number;
  /** Most bytes queued; undefined = max(MIN_QUEUE_BYTES, rate x (maxQueueMs ?? DEFAULT_QUEUE_MS)). */
  maxBytes?: number;
  /**
   * The byte bound as time at the link's shaped rate when maxBytes is not set (default
   * DEFAULT_QUEUE_MS). A class with bond.equalizeDelay gets EQUALIZE_QUEUE_MS: its TCP senders see
   * the slowest member's RTT, and BBR's 2 x BDP in flight overflows a 100 ms queue.
   */
  maxQueueMs?: number;
  /**
   * CoDel (RFC 8289) on this class's queue, WFQ classes only: once the head's sojourn time stays
   * above this target for CODEL_INTERVAL_MS, heads are dropped at the control law's rate until it
   * falls back (a TCP sender slows down; the queue stays near the target instead of at maxBytes).
   * Raised to two full packets' transmission time on slow links. Undefined: tail drop only.
   */
  codelTargetMs?: number;
}

/** CoDel's interval (RFC 8289: 100 ms, a worst-case RTT) and its usual target. */
export const CODEL_INTERVAL_MS = 100;
export const CODEL_TARGET_MS = 5;

/** DRR quantum per unit of weight: one full-size outer packet. */
export const QUANTUM_BYTES = 1514;
/** Hard cap on maxPackets (a ring of this many slots is allocated per class and shaped link). */
export const MAX_QUEUE_PACKETS = 8192;
export const MIN_QUEUE_BYTES = 64 * 1024;
export const DEFAULT_QUEUE_MS = 100;
/**
 * Queue bound of a class with bond.equalizeDelay when its queue is not configured: time at the
 * link's rate (the packet cap is set high enough that time is what binds up to ~200 Mbit/s of
 * 1,400-byte packets). Measured (docs/BENCHMARKS.md, bond: one BBR flow over 10/30/60 ms links of
 * 100 Mbit/s): the default 100 ms / 1,024 packets read 172-176 Mbit/s with 3,000-13,000 tail drops;
 * ~210 ms (2.5 MB / 2,048 packets) read 206-222; 420 ms (5 MB) was worse again (170: the
 * resequencer's waits grew).
 */
export const EQUALIZE_QUEUE_MS = 210;
export const EQUALIZE_QUEUE_PACKETS = 4096;
/** Outer IPv4 + UDP header, charged to the token bucket on top of the datagram (as a modem sees it). */
export const OUTER_HEADER_BYTES = 28;

/** Defaults in CLASS_NAMES order: control, voice, video, signaling, business, default, bulk. */
export const DEFAULT_QUEUE_POLICIES: readonly ClassQueuePolicy[] = [
  { priority: true, weight: 1, maxPackets: 256 },
  { priority: true, weight: 1, maxPackets: 512 },
  { priority: false, weight: 6, maxPackets: 1024 },
  { priority: false, weight: 2, maxPackets: 256 },
  { priority: false, weight: 4, maxPackets: 1024 },
  { priority: false, weight: 2, maxPackets: 1024 },
  { priority: false, weight: 1, maxPackets: 1024 },
];

export function checkQueuePolicy(p: ClassQueuePolicy, where: string): void {
  const bad = (what: string): never => {
    throw new RangeError(`${where}: queue.${what}`);
  };
  if (!Number.isInteger(p.weight) || p.weight < 1 || p.weight > 100) bad(`weight=${p.weight} must be 1..100`);
  if (!Number.isInteger(p.maxPackets) || p.maxPackets < 1 || p.maxPackets > MAX_QUEUE_PACKETS) bad(`maxPackets=${p.maxPackets} must be 1..${MAX_QUEUE_PACKETS}`);
  if (p.maxBytes !== undefined && !(Number.isInteger(p.maxBytes) && p.maxBytes >= 1500)) bad(`maxBytes=${p.maxBytes} must be an integer >= 1500`);
  if (p.codelTargetMs !== undefined && !(p.codelTargetMs >= 0.5 && p.codelTargetMs <= 1000)) bad(`codelTargetMs=${p.codelTargetMs} must be 0.5..1000`);
  if (p.maxQueueMs !== undefined && !(p.maxQueueMs >= 1 && p.maxQueueMs <= 5000)) bad(`maxQueueMs=${p.maxQueueMs} must be 1..5000`);
}
