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
 *   4. dequeue(now)                returns it, or undefined; nextReleaseMs() says when to try again.
 *                                  A WFQ class with codelTargetMs drops heads here by CoDel
 *                                  (RFC 8289) when its sojourn time stays above the target: counted
 *                                  in dropped and aqmDropped, never numbered or sealed (frames are
 *                                  built when they leave: the peer sees no path loss).
 *                                  A bonded class's slack (setCodelSlack) is taken off the
 *                                  sojourn first: the queue the bond builds on purpose
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
import { CODEL_INTERVAL_MS, OUTER_HEADER_BYTES, QUANTUM_BYTES, DEFAULT_QUEUE_MS, MIN_QUEUE_BYTES, type ClassQueuePolicy } from './policy.ts';

/** Rounding slack: a deadline computed from the bucket must find the tokens there when it comes. */
const TOKEN_EPSILON_BYTES = 1e-6;
/**
 * How long a CoDel slack holds after it was last set (a bond refreshes it every probe interval;
 * when it stops, e.g. the flow ended, CoDel goes back to the plain target).
 */
export const CODEL_SLACK_HOLD_MS = 3000;

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
  /** Of `dropped`: heads dropped by CoDel (the class's codelTargetMs), not for lack of room. */
  aqmDropped: number;
}

/** CoDel's state for one class queue (RFC 8289 section 5 names). */
class CodelState {
  /** When the sojourn time went above target and stayed (+ interval); 0 = below. */
  firstAboveMs = 0;
  dropNextMs = 0;
  count = 0;
  lastCount = 0;
  dropping = false;
  /** Sojourn CoDel does not count (setCodelSlack), until slackUntilMs. */
  slackMs = 0;
  slackUntilMs = -Infinity;
  constructor(readonly targetMs: number) {}

  /** The largest slack set within CODEL_SLACK_HOLD_MS wins (several peers may bond over one link). */
  setSlack(nowMs: number, slackMs: number): void {
    if (slackMs >= this.slackMs || nowMs > this.slackUntilMs) {
      this.slackMs = Math.max(0, slackMs);
      this.slackUntilMs = nowMs + CODEL_SLACK_HOLD_MS;
    }
  }

  /** RFC 8289 ok_to_drop: the sojourn has been above target for an interval, with more than a packet queued. */
  private okToDrop(sojournMs: number, bytesLeft: number, nowMs: number): boolean {
    if (sojournMs < this.targetMs || bytesLeft <= QUANTUM_BYTES) {
      this.firstAboveMs = 0;
      return false;
    }
    if (this.firstAboveMs === 0) {
      this.firstAboveMs = nowMs + CODEL_INTERVAL_MS;
      return false;
    }
    return nowMs >= this.firstAboveMs;
  }

  /** Whether the head about to leave (queued `sojournMs`, leaving `bytesLeft` behind it) is dropped instead. */
  drop(sojournMs: number, bytesLeft: number, nowMs: number): boolean {
    const ok = this.okToDrop(nowMs <= this.slackUntilMs ? sojournMs - this.slackMs : sojournMs, bytesLeft, nowMs);
    if (this.dropping) {
      if (!ok) {
        this.dropping = false;
        return false;
      }
      if (nowMs < this.dropNextMs) return false;
      this.count++;
      this.dropNextMs += CODEL_INTERVAL_MS / Math.sqrt(this.count);
      return true;
    }
    if (!ok) return false;
    this.dropping = true;
    // Re-entering soon after the last dropping state: start near the drop rate that worked then.
    const delta = this.count - this.lastCount;
    this.count = delta > 1 && nowMs - this.dropNextMs < 16 * CODEL_INTERVAL_MS ? delta : 1;
    this.lastCount = this.count;
    this.dropNextMs = nowMs + CODEL_INTERVAL_MS / Math.sqrt(this.count);
    return true;
  }
}

/** One key's (peer's) FIFO inside a class: grows as needed, bounded by the class's caps. */
class SubQueue<T> {
  items: T[] = [];
  atMs: number[] = [];
  head = 0;
  bytes = 0;
  deficit = 0;
  constructor(readonly key: number) {}
  get count(): number {
    return this.items.length - this.head;
  }
  compact(): void {
    if (this.head > 256 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.atMs = this.atMs.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * A class's queue: one SubQueue per key (the peer), served by deficit round robin among the
 * backlogged keys, so one spoke's bulk cannot starve another spoke's traffic of the same class.
 * The class's packet and byte caps bound the sum; when full, a key under its fair share takes room
 * from the longest sub-queue's tail (longest-queue drop), so a flood cannot lock others out.
 */
class ClassQueue<T extends Queued> {
  readonly subs = new Map<number, SubQueue<T>>();
  readonly active: SubQueue<T>[] = [];
  cursor = 0;
  granted = false;
  count = 0;
  bytes = 0;
  constructor(readonly capacity: number) {}

  /** The sub-queue whose head goes next (without taking it). Requires count > 0. */
  head(): SubQueue<T> {
    if (this.active.length === 1) return this.active[0]!;
    for (;;) {
      if (this.cursor >= this.active.length) this.cursor = 0;
      const sq = this.active[this.cursor]!;
      if (!this.granted) {
        sq.deficit += QUANTUM_BYTES;
        this.granted = true;
      }
      if (sq.deficit >= sq.items[sq.head]!.sizeBytes) return sq;
      this.cursor++;
      this.granted = false;
    }
  }

  take(sq: SubQueue<T>): { item: T; atMs: number } {
    const item = sq.items[sq.head]!;
    const atMs = sq.atMs[sq.head]!;
    (sq.items as (T | undefined)[])[sq.head] = undefined;
    sq.head++;
    sq.bytes -= item.sizeBytes;
    sq.deficit -= item.sizeBytes;
    this.count--;
    this.bytes -= item.sizeBytes;
    if (sq.count === 0) this.retire(sq);
    else sq.compact();
    return { item, atMs };
  }

  push(key: number, item: T, atMs: number): void {
    let sq = this.subs.get(key);
    if (sq === undefined) {
      sq = new SubQueue<T>(key);
      this.subs.set(key, sq);
    }
    if (sq.count === 0) this.active.push(sq);
    sq.items.push(item);
    sq.atMs.push(atMs);
    sq.bytes += item.sizeBytes;
    this.count++;
    this.bytes += item.sizeBytes;
  }

  /** Drops the newest item of the longest sub-queue other than `key`'s; its size, or 0 if none. */
  evictFromLongest(key: number): number {
    let longest: SubQueue<T> | undefined;
    for (const sq of this.active) if (sq.key !== key && (longest === undefined || sq.bytes > longest.bytes)) longest = sq;
    if (longest === undefined) return 0;
    const item = longest.items.pop()!;
    longest.atMs.pop();
    longest.bytes -= item.sizeBytes;
    this.count--;
    this.bytes -= item.sizeBytes;
    if (longest.count === 0) this.retire(longest);
    return item.sizeBytes;
  }

  bytesOf(key: number): number {
    return this.subs.get(key)?.bytes ?? 0;
  }

  private retire(sq: SubQueue<T>): void {
    const i = this.active.indexOf(sq);
    if (i >= 0) {
      this.active.splice(i, 1);
      if (i < this.cursor) this.cursor--;
      else if (i === this.cursor) this.granted = false;
    }
    sq.deficit = 0;
    sq.items.length = 0;
    sq.atMs.length = 0;
    sq.head = 0;
    // Kept in `subs` (one per peer that ever queued here, bounded by the peer cap): a queue that
    // empties and refills on every packet would otherwise allocate a SubQueue per packet.
  }
}

export class LinkScheduler<T extends Queued> {
  readonly rateBps: number;
  readonly burstBytes: number;
  readonly counters: ClassQueueCounters[];
  private readonly bytesPerMs: number;
  private readonly rings: ClassQueue<T>[];
  private readonly maxBytes: Float64Array;
  private readonly priorityOrder: number[];
  private readonly drrOrder: number[];
  private readonly quantum: Float64Array;
  private readonly deficit: Float64Array;
  /** Per class: CoDel's state when the class has codelTargetMs (WFQ classes only). */
  private readonly codel: (CodelState | undefined)[];
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
    this.rings = config.classes.map((c) => new ClassQueue<T>(c.maxPackets));
    this.maxBytes = new Float64Array(n);
    this.quantum = new Float64Array(n);
    this.deficit = new Float64Array(n);
    this.priorityOrder = [];
    this.drrOrder = [];
    config.classes.forEach((c, i) => {
      this.maxBytes[i] = c.maxBytes ?? Math.max(MIN_QUEUE_BYTES, Math.round(this.bytesPerMs * (c.maxQueueMs ?? DEFAULT_QUEUE_MS)));
      this.quantum[i] = c.weight * QUANTUM_BYTES;
      (c.priority ? this.priorityOrder : this.drrOrder).push(i);
    });
    this.counters = config.classes.map(() => ({ enqueued: 0, sent: 0, sentBytes: 0, dropped: 0, droppedBytes: 0, delaySumMs: 0, delayMaxMs: 0, aqmDropped: 0 }));
    // CoDel's target is at least two full packets' time at the rate (RFC 8289 section 4.4: a slow
    // link needs more than one MTU's transmission time of standing queue).
    const twoPacketsMs = (2 * (QUANTUM_BYTES + OUTER_HEADER_BYTES)) / this.bytesPerMs;
    this.codel = config.classes.map((c) => (c.codelTargetMs !== undefined && !c.priority ? new CodelState(Math.max(c.codelTargetMs, twoPacketsMs)) : undefined));
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
   * Bonding (issue 17): class `classId`'s CoDel leaves `slackMs` of sojourn alone for the next
   * CODEL_SLACK_HOLD_MS. The bond's earliest-arrival scheduler queues a fast path on purpose, up to
   * the slowest member's extra one-way delay, so that arrivals interleave in order; CoDel judging
   * that queue against its 5 ms target would drop the bonded flow's packets until it never reaches
   * the slow paths. What stands above the slack is still bufferbloat and is still dropped; the
   * class's byte and packet caps still apply. The largest slack set lately wins; no-op for a class
   * without CoDel.
   */
  setCodelSlack(nowMs: number, classId: number, slackMs: number): void {
    this.codel[classId]?.setSlack(nowMs, slackMs);
  }

  /**
   * Whether class `classId` has room for a datagram of up to `sizeBytes`; counts a drop when not.
   * The Edge asks before it numbers and seals a frame, so a datagram refused here never consumes
   * a path sequence number (the peer would count it as path loss) or an AEAD counter; the enqueue
   * that follows (with at most sizeBytes) then succeeds.
   */
  admit(classId: number, sizeBytes: number, key = 0): boolean {
    const r = this.rings[classId];
    if (r === undefined) return false;
    if (this.makeRoom(r, classId, sizeBytes, key)) return true;
    const c = this.counters[classId]!;
    c.dropped++;
    c.droppedBytes += sizeBytes;
    return false;
  }

  /** Queues `item` for class `classId` under `key` (the peer); false (counted) when there is no room. */
  enqueue(nowMs: number, classId: number, item: T, key = 0): boolean {
    const r = this.rings[classId];
    if (r === undefined) return false;
    const size = item.sizeBytes;
    const c = this.counters[classId]!;
    if (!this.makeRoom(r, classId, size, key)) {
      c.dropped++;
      c.droppedBytes += size;
      return false;
    }
    r.push(key, item, nowMs);
    this.queued++;
    c.enqueued++;
    return true;
  }

  /**
   * Room for `sizeBytes` more in class `r` for `key`: there is, or `key` holds less than a fair
   * share (the cap over the backlogged keys) and the longest other sub-queue gives up its newest.
   */
  private makeRoom(r: ClassQueue<T>, classId: number, sizeBytes: number, key: number): boolean {
    const maxBytes = this.maxBytes[classId]!;
    if (r.count < r.capacity && r.bytes + sizeBytes <= maxBytes) return true;
    const keys = r.active.length + ((r.subs.get(key)?.count ?? 0) > 0 ? 0 : 1);
    if (keys < 2 || r.bytesOf(key) + sizeBytes > maxBytes / keys) return false;
    const c = this.counters[classId]!;
    while (r.count >= r.capacity || r.bytes + sizeBytes > maxBytes) {
      const freed = r.evictFromLongest(key);
      if (freed === 0) return false;
      this.queued--;
      c.dropped++;
      c.droppedBytes += freed;
    }
    return true;
  }

  /** The next datagram the priorities and the bucket allow at nowMs, or undefined. */
  dequeue(nowMs: number): T | undefined {
    if (this.queued === 0) return undefined;
    this.refill(nowMs);
    let cls: number;
    let r: ClassQueue<T>;
    let sq: SubQueue<T>;
    let size: number;
    for (;;) {
      cls = this.select();
      if (cls < 0) return undefined;
      r = this.rings[cls]!;
      sq = r.head();
      size = sq.items[sq.head]!.sizeBytes;
      if (this.tokens + TOKEN_EPSILON_BYTES < size + OUTER_HEADER_BYTES) return undefined;
      const codel = this.codel[cls];
      if (codel === undefined || !codel.drop(nowMs - sq.atMs[sq.head]!, r.bytes - size, nowMs)) break;
      // CoDel drops the head (no tokens spent) and looks at the next one.
      r.take(sq);
      this.queued--;
      this.afterDrrTake(cls, r, 0);
      const c = this.counters[cls]!;
      c.dropped++;
      c.droppedBytes += size;
      c.aqmDropped++;
      if (this.queued === 0) return undefined;
    }
    this.tokens = Math.max(0, this.tokens - (size + OUTER_HEADER_BYTES));
    const { item, atMs } = r.take(sq);
    const delay = nowMs - atMs;
    this.queued--;
    if (!this.isPriority(cls)) this.afterDrrTake(cls, r, size);
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
    const sq = this.rings[cls]!.head();
    const cost = sq.items[sq.head]!.sizeBytes + OUTER_HEADER_BYTES;
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
      const sq = r.head();
      if (this.deficit[c]! >= sq.items[sq.head]!.sizeBytes) return c;
      this.advanceDrr();
    }
  }

  /** DRR bookkeeping after a WFQ class's head left (`sentBytes` 0 for a CoDel drop). */
  private afterDrrTake(cls: number, r: ClassQueue<T>, sentBytes: number): void {
    this.deficit[cls]! -= sentBytes;
    if (r.count === 0) {
      // Standard DRR: an emptied queue keeps no credit, and its turn ends.
      this.deficit[cls] = 0;
      this.advanceDrr();
    }
  }

  private advanceDrr(): void {
    this.drrCursor = (this.drrCursor + 1) % this.drrOrder.length;
    this.drrGranted = false;
  }
}
