/**
 * LinkScheduler: the egress queue of one shaped WAN link (DESIGN.md "QoS"), sans-I/O.
 *
 * Stages, per datagram:
 *   0. admit(class, size)          before the Edge numbers and seals it: tail-drop (counted) when
 *                                  the class's queue is at its packet or byte bound
 *   1. enqueue(now, class, item)   (also tail-drops, for callers that did not ask admit)
 *   2. select                      strict priority classes first (in class order), then deficit
 *                                  round robin over the others, weighted
 *   3. shape                       a token bucket at the link's uplink rate (bytes + outer IP/UDP
 *                                  header per datagram) decides whether the selected head may go now
 *   4. dequeue(now)                returns it, or undefined; nextReleaseMs() says when to try again
 * The queue forms here, where we choose the order, instead of in the modem (DESIGN.md).
 *
 * Bucket depth: the shell's one timer fires late by up to a millisecond or two (Node timers), and
 * tokens are capped at the depth, so a depth below rate x timer lag would undershoot the rate.
 * Default depth: max(2 full packets, 2 ms at the rate); a voice packet then waits behind at most
 * that much already-released bulk in the modem.
 *
 * Hot path: no allocation per packet. Each class has a ring of item slots and enqueue times sized
 * to its packet bound.
 */
import { OUTER_HEADER_BYTES, QUANTUM_BYTES, DEFAULT_QUEUE_MS, MIN_QUEUE_BYTES, type ClassQueuePolicy } from './policy.ts';

/** Rounding slack: a deadline computed from the bucket must find the tokens there when it comes. */
const TOKEN_EPSILON_BYTES = 1e-6;

/** What the scheduler queues: anything that knows the size of the datagram it will become. */
export interface Queued {
  readonly sizeBytes: number;
}

export interface LinkSchedulerConfig {
  /** Shaped rate (bit/s, > 0). */
  rateBps: number;
  /** Token bucket depth in bytes. Default max(2 x 1514 + 2 x 28, 2 ms at the rate). */
  burstBytes?: number;
  /** Per class (index = class id). */
  classes: readonly ClassQueuePolicy[];
}

export interface ClassQueueCounters {
  enqueued: number;
  sent: number;
  sentBytes: number;
  dropped: number;
  droppedBytes: number;
  /** Sum and maximum of the time packets spent queued (ms). */
  delaySumMs: number;
  delayMaxMs: number;
}

class Ring<T> {
  readonly items: (T | undefined)[];
  readonly atMs: Float64Array;
  head = 0;
  count = 0;
  bytes = 0;
  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity).fill(undefined);
    this.atMs = new Float64Array(capacity);
  }
}

export class LinkScheduler<T extends Queued> {
  readonly rateBps: number;
  readonly burstBytes: number;
  readonly counters: ClassQueueCounters[];
  private readonly bytesPerMs: number;
  private readonly rings: Ring<T>[];
  private readonly maxBytes: Float64Array;
  private readonly priorityOrder: number[];
  private readonly drrOrder: number[];
  private readonly quantum: Float64Array;
  private readonly deficit: Float64Array;
  private drrCursor = 0;
  private drrGranted = false;
  private tokens: number;
  private lastRefillMs: number;
  private queued = 0;

  constructor(config: LinkSchedulerConfig, nowMs: number) {
    if (!(config.rateBps > 0 && Number.isFinite(config.rateBps))) throw new RangeError(`LinkScheduler: rateBps=${config.rateBps}`);
    this.rateBps = config.rateBps;
    this.bytesPerMs = config.rateBps / 8 / 1000;
    this.burstBytes = config.burstBytes ?? Math.max(2 * (QUANTUM_BYTES + OUTER_HEADER_BYTES), Math.round(this.bytesPerMs * 2));
    if (!(this.burstBytes >= QUANTUM_BYTES + OUTER_HEADER_BYTES)) throw new RangeError(`LinkScheduler: burstBytes=${this.burstBytes} is below one full packet`);
    const n = config.classes.length;
    this.rings = config.classes.map((c) => new Ring<T>(c.maxPackets));
    this.maxBytes = new Float64Array(n);
    this.quantum = new Float64Array(n);
    this.deficit = new Float64Array(n);
    this.priorityOrder = [];
    this.drrOrder = [];
    config.classes.forEach((c, i) => {
      this.maxBytes[i] = c.maxBytes ?? Math.max(MIN_QUEUE_BYTES, Math.round(this.bytesPerMs * DEFAULT_QUEUE_MS));
      this.quantum[i] = c.weight * QUANTUM_BYTES;
      (c.priority ? this.priorityOrder : this.drrOrder).push(i);
    });
    this.counters = config.classes.map(() => ({ enqueued: 0, sent: 0, sentBytes: 0, dropped: 0, droppedBytes: 0, delaySumMs: 0, delayMaxMs: 0 }));
    this.tokens = this.burstBytes;
    this.lastRefillMs = nowMs;
  }

  /** Packets queued over all classes. */
  get queuedPackets(): number {
    return this.queued;
  }

  queuedPacketsOf(classId: number): number {
    return this.rings[classId]?.count ?? 0;
  }

  queuedBytesOf(classId: number): number {
    return this.rings[classId]?.bytes ?? 0;
  }

  /**
   * Whether class `classId` has room for a datagram of up to `sizeBytes`; counts a drop when not.
   * The Edge asks before it numbers and seals a frame, so a datagram refused here never consumes
   * a path sequence number (the peer would count it as path loss) or an AEAD counter; the enqueue
   * that follows (with at most sizeBytes) then succeeds.
   */
  admit(classId: number, sizeBytes: number): boolean {
    const r = this.rings[classId];
    if (r === undefined) return false;
    if (r.count < r.capacity && r.bytes + sizeBytes <= this.maxBytes[classId]!) return true;
    const c = this.counters[classId]!;
    c.dropped++;
    c.droppedBytes += sizeBytes;
    return false;
  }

  /** Queues `item` for class `classId`; false (counted) when that class's queue is full. */
  enqueue(nowMs: number, classId: number, item: T): boolean {
    const r = this.rings[classId];
    if (r === undefined) return false;
    const size = item.sizeBytes;
    const c = this.counters[classId]!;
    if (r.count >= r.capacity || r.bytes + size > this.maxBytes[classId]!) {
      c.dropped++;
      c.droppedBytes += size;
      return false;
    }
    const slot = (r.head + r.count) % r.capacity;
    r.items[slot] = item;
    r.atMs[slot] = nowMs;
    r.count++;
    r.bytes += size;
    this.queued++;
    c.enqueued++;
    return true;
  }

  /** The next datagram the priorities and the bucket allow at nowMs, or undefined. */
  dequeue(nowMs: number): T | undefined {
    if (this.queued === 0) return undefined;
    this.refill(nowMs);
    const cls = this.select();
    if (cls < 0) return undefined;
    const r = this.rings[cls]!;
    const item = r.items[r.head]!;
    const size = item.sizeBytes;
    const cost = size + OUTER_HEADER_BYTES;
    if (this.tokens + TOKEN_EPSILON_BYTES < cost) return undefined;
    this.tokens = Math.max(0, this.tokens - cost);
    const delay = nowMs - r.atMs[r.head]!;
    r.items[r.head] = undefined;
    r.head = (r.head + 1) % r.capacity;
    r.count--;
    r.bytes -= size;
    this.queued--;
    if (!this.isPriority(cls)) {
      this.deficit[cls]! -= size;
      if (r.count === 0) {
        // Standard DRR: an emptied queue keeps no credit, and its turn ends.
        this.deficit[cls] = 0;
        this.advanceDrr();
      }
    }
    const c = this.counters[cls]!;
    c.sent++;
    c.sentBytes += size;
    c.delaySumMs += delay;
    if (delay > c.delayMaxMs) c.delayMaxMs = delay;
    return item;
  }

  /** When dequeue may next return something (absolute ms); Infinity when nothing is queued. */
  nextReleaseMs(nowMs: number): number {
    if (this.queued === 0) return Infinity;
    this.refill(nowMs);
    const cls = this.select();
    if (cls < 0) return Infinity;
    const r = this.rings[cls]!;
    const cost = r.items[r.head]!.sizeBytes + OUTER_HEADER_BYTES;
    if (this.tokens + TOKEN_EPSILON_BYTES >= cost) return nowMs;
    return nowMs + (cost - this.tokens) / this.bytesPerMs;
  }

  private refill(nowMs: number): void {
    const dt = nowMs - this.lastRefillMs;
    if (dt <= 0) return;
    this.lastRefillMs = nowMs;
    this.tokens = Math.min(this.burstBytes, this.tokens + dt * this.bytesPerMs);
  }

  private isPriority(cls: number): boolean {
    for (let i = 0; i < this.priorityOrder.length; i++) if (this.priorityOrder[i] === cls) return true;
    return false;
  }

  /** The class whose head goes next (without taking it), or -1. */
  private select(): number {
    for (let i = 0; i < this.priorityOrder.length; i++) {
      const c = this.priorityOrder[i]!;
      if (this.rings[c]!.count > 0) return c;
    }
    let backlogged = false;
    for (let i = 0; i < this.drrOrder.length; i++) {
      if (this.rings[this.drrOrder[i]!]!.count > 0) {
        backlogged = true;
        break;
      }
    }
    if (!backlogged) return -1;
    // Deficit round robin. Each visit to a backlogged queue grants one quantum; the queue sends
    // while its deficit covers its head. Terminates: every full cycle adds >= one quantum to some
    // backlogged queue, and a head is at most 64 KiB.
    for (;;) {
      const c = this.drrOrder[this.drrCursor]!;
      const r = this.rings[c]!;
      if (r.count === 0) {
        this.deficit[c] = 0;
        this.advanceDrr();
        continue;
      }
      if (!this.drrGranted) {
        this.deficit[c]! += this.quantum[c]!;
        this.drrGranted = true;
      }
      if (this.deficit[c]! >= r.items[r.head]!.sizeBytes) return c;
      this.advanceDrr();
    }
  }

  private advanceDrr(): void {
    this.drrCursor = (this.drrCursor + 1) % this.drrOrder.length;
    this.drrGranted = false;
  }
}
