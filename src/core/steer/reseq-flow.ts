/**
 * One bonded flow's resequencing buffer (FlowBuffer) and the per-flow counters, for Resequencer
 * (reseq.ts: the algorithm, holes, evidence, late packets and caps are described there).
 *
 * Contract: package-private to steer/; only reseq.ts constructs FlowBuffers. A FlowBuffer never
 * drops a packet it could deliver: every release goes to the caller's `out` array in sequence order
 * (late packets excepted), and it keeps the shared Pool's held totals equal to the sum over flows.
 * Held packets are copies; ring, skipped-bitmap and FIFO sizes are capped by RESEQ_MAX_FLOW_PACKETS.
 */
import { copyBytes } from '../bytes.ts';
import { BOND_MAX_PATHS, RESEQ_MAX_FLOW_BYTES, RESEQ_MAX_FLOW_PACKETS, RESEQ_MAX_HELD_BYTES, RESEQ_MAX_HELD_PACKETS } from '../constants.ts';

/** Ring size a flow starts with; it doubles up to RESEQ_MAX_FLOW_PACKETS when a packet lands beyond. */
const INITIAL_RING = 64;
/**
 * A path that delivered a packet of the flow within this long counts as "in use" for evidence: its
 * packets may still be in flight, so holes wait until it passes them (or the bound expires).
 */
export const RESEQ_PATH_MEMORY_MS = 2000;
/** Farther than this from the flow's next expected sequence (either way): the sender started over. */
export const RESEQ_RESYNC_DISTANCE = RESEQ_MAX_FLOW_PACKETS * 4;

/** Counters of one flow, or summed over all flows. */
export interface ReseqCounters {
  /** Packets delivered (in order, late or on resync). */
  delivered: number;
  /** Packets that had to wait in the buffer, and how long they waited in total and at most. */
  heldReleased: number;
  holdSumMs: number;
  holdMaxMs: number;
  /** Most packets held at once. */
  maxDepth: number;
  /** Times the bound expired with a hole at the head, and the sequence numbers skipped then. */
  timeouts: number;
  holesSkipped: number;
  /** Holes skipped early because a cap (span, bytes, all flows) was reached. */
  overflowSkips: number;
  /** Holes skipped early because every path in use had delivered past them (see evidence). */
  evidenceSkips: number;
  /** Packets that arrived after their hole was skipped, delivered anyway (out of order). */
  late: number;
  /** Copies of a sequence number already delivered or held: dropped. */
  duplicates: number;
  /** Behind the flow by more than its window, so we cannot tell late from copy: dropped. */
  tooOld: number;
  /** The sender started the flow over (a sequence number far away): held packets were flushed. */
  resyncs: number;
}

export function emptyReseqCounters(): ReseqCounters {
  return {
    delivered: 0,
    heldReleased: 0,
    holdSumMs: 0,
    holdMaxMs: 0,
    maxDepth: 0,
    timeouts: 0,
    holesSkipped: 0,
    overflowSkips: 0,
    evidenceSkips: 0,
    late: 0,
    duplicates: 0,
    tooOld: 0,
    resyncs: 0,
  };
}

/** Adds `c` into `into` (sums; maxima for holdMaxMs and maxDepth). */
export function addCounters(into: ReseqCounters, c: ReseqCounters): void {
  into.delivered += c.delivered;
  into.heldReleased += c.heldReleased;
  into.holdSumMs += c.holdSumMs;
  into.holdMaxMs = Math.max(into.holdMaxMs, c.holdMaxMs);
  into.maxDepth = Math.max(into.maxDepth, c.maxDepth);
  into.timeouts += c.timeouts;
  into.holesSkipped += c.holesSkipped;
  into.overflowSkips += c.overflowSkips;
  into.evidenceSkips += c.evidenceSkips;
  into.late += c.late;
  into.duplicates += c.duplicates;
  into.tooOld += c.tooOld;
  into.resyncs += c.resyncs;
}

/** What all flows of one resequencer hold together (the global caps). */
export interface Pool {
  heldPackets: number;
  heldBytes: number;
}

const enum Skip {
  Timeout,
  Overflow,
  Evidence,
}

/** One bonded flow's buffer. Package-private: use Resequencer. */
export class FlowBuffer {
  readonly c: ReseqCounters = emptyReseqCounters();
  lastSeenMs: number;
  /** When the flow last moved to the end of the Resequencer's LRU order. */
  lruMs: number;
  heldPackets = 0;
  heldBytes = 0;
  /** Next sequence number to deliver in order. */
  private expected = 0;
  private size = INITIAL_RING;
  private mask = INITIAL_RING - 1;
  /** Held packets of [expected, expected + size), at seq & mask. */
  private slots: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(INITIAL_RING);
  private arrivalMs = new Float64Array(INITIAL_RING);
  /** For [expected - size, expected), at seq & mask: 1 = skipped and not (yet) delivered late. */
  private skipped = new Uint8Array(INITIAL_RING);
  /** Held sequence numbers in arrival order (entries behind `expected` are stale, popped lazily). */
  private fifo = new Uint32Array(INITIAL_RING * 2);
  private fifoHead = 0;
  private fifoLen = 0;
  /** Per path (link index): the highest sequence of this flow it delivered, and when it last did. */
  private readonly pathHigh = new Uint32Array(BOND_MAX_PATHS);
  private readonly pathSeenMs = new Float64Array(BOND_MAX_PATHS).fill(-Infinity);
  /** Last packet that came without a usable path id: its path cannot be waited for, so no evidence. */
  private unknownPathMs = -Infinity;
  /** When the flow (re)started: for a bound after it, paths not heard from yet may be in flight. */
  private startedMs = 0;

  constructor(
    readonly key: number,
    firstSeq: number,
    nowMs: number,
    private readonly pool: Pool,
  ) {
    this.lastSeenMs = nowMs;
    this.lruMs = nowMs;
    this.restartAt(firstSeq, nowMs);
  }

  /** Arrival time of the longest-held packet, or Infinity. */
  oldestArrivalMs(): number {
    while (this.fifoLen > 0) {
      const seq = this.fifo[this.fifoHead]!;
      if (((seq - this.expected) | 0) >= 0) return this.arrivalMs[seq & this.mask]!;
      this.fifoHead = (this.fifoHead + 1) & (this.fifo.length - 1);
      this.fifoLen--;
    }
    return Infinity;
  }

  push(nowMs: number, seq: number, packet: Uint8Array, boundMs: number, out: Uint8Array[], pathId: number, evidence: boolean): void {
    seq = seq >>> 0;
    if (pathId >= 0 && pathId < BOND_MAX_PATHS) {
      if (this.pathSeenMs[pathId] === -Infinity || ((seq - this.pathHigh[pathId]!) | 0) > 0) this.pathHigh[pathId] = seq;
      this.pathSeenMs[pathId] = nowMs;
    } else {
      this.unknownPathMs = nowMs;
    }
    this.place(nowMs, seq, packet, boundMs, out);
    if (evidence) this.releaseOnEvidence(nowMs, boundMs, out);
  }

  /**
   * Paths keep their packets' order (one FIFO per path: our sender's queue, then the link), so a
   * hole below the highest sequence every path in use has delivered is lost: skip it now instead of
   * waiting out the bound. "In use" = delivered a packet of this flow within RESEQ_PATH_MEMORY_MS;
   * for a bound after the flow starts no evidence counts (a path may not have delivered its first
   * packet yet). What can still go wrong: a path joining the bond later, or one that reorders
   * inside itself (netem jitter), gets a packet skipped too early; it then arrives late and is
   * delivered anyway.
   */
  private releaseOnEvidence(nowMs: number, boundMs: number, out: Uint8Array[]): void {
    if (this.heldPackets === 0 || nowMs < this.startedMs + boundMs || nowMs - this.unknownPathMs < RESEQ_PATH_MEMORY_MS) return;
    let minAhead = Infinity;
    for (let p = 0; p < BOND_MAX_PATHS; p++) {
      if (this.pathSeenMs[p]! < nowMs - RESEQ_PATH_MEMORY_MS) continue;
      const ahead = (this.pathHigh[p]! - this.expected) | 0;
      if (ahead < minAhead) minAhead = ahead;
    }
    if (!(minAhead > 0) || minAhead === Infinity) return;
    this.skipTo(nowMs, (this.expected + minAhead) >>> 0, out, Skip.Evidence);
    this.drainContiguous(nowMs, out);
  }

  private place(nowMs: number, seq: number, packet: Uint8Array, boundMs: number, out: Uint8Array[]): void {
    this.lastSeenMs = nowMs;
    this.expire(nowMs, boundMs, out);
    let d = (seq - this.expected) | 0;
    if (d >= RESEQ_RESYNC_DISTANCE || d <= -RESEQ_RESYNC_DISTANCE) {
      this.c.resyncs++;
      this.releaseAll(nowMs, out);
      this.restartAt(seq, nowMs);
      d = 0;
    }
    if (d < 0) {
      if (-d > this.size) {
        this.c.tooOld++;
        return;
      }
      const i = seq & this.mask;
      if (this.skipped[i] === 1) {
        this.skipped[i] = 0;
        this.c.late++;
        this.c.delivered++;
        out.push(packet);
      } else {
        this.c.duplicates++;
      }
      return;
    }
    if (d === 0) {
      this.skipped[seq & this.mask] = 0;
      this.advance();
      this.c.delivered++;
      out.push(packet);
      this.drainContiguous(nowMs, out);
      return;
    }
    // Ahead of a hole: hold it.
    while (d >= this.size && this.size < RESEQ_MAX_FLOW_PACKETS) this.grow();
    if (d >= this.size) {
      // Beyond the largest window: skip holes until it fits.
      this.skipTo(nowMs, (seq - this.size + 1) >>> 0, out, Skip.Overflow);
      d = (seq - this.expected) | 0;
      if (d === 0) return this.place(nowMs, seq, packet, boundMs, out);
    }
    const i = seq & this.mask;
    if (this.slots[i] !== undefined) {
      this.c.duplicates++;
      return;
    }
    // Caps: per flow and (checked by the Resequencer before calling) for all flows.
    while (
      this.heldPackets > 0 &&
      (this.heldBytes + packet.length > RESEQ_MAX_FLOW_BYTES || this.pool.heldBytes + packet.length > RESEQ_MAX_HELD_BYTES || this.pool.heldPackets + 1 > RESEQ_MAX_HELD_PACKETS)
    ) {
      this.skipOldestHole(nowMs, out, seq);
      if (this.expected === seq) return this.place(nowMs, seq, packet, boundMs, out);
    }
    this.slots[i] = copyBytes(packet);
    this.arrivalMs[i] = nowMs;
    this.heldPackets++;
    this.heldBytes += packet.length;
    this.pool.heldPackets++;
    this.pool.heldBytes += packet.length;
    if (this.heldPackets > this.c.maxDepth) this.c.maxDepth = this.heldPackets;
    this.fifoPush(seq);
  }

  /** Releases past every hole whose oldest held packet reached its bound. */
  expire(nowMs: number, boundMs: number, out: Uint8Array[]): void {
    while (this.heldPackets > 0) {
      const oldest = this.oldestArrivalMs();
      if (oldest + boundMs > nowMs) return;
      const target = this.fifo[this.fifoHead]!;
      this.c.timeouts++;
      this.skipTo(nowMs, target, out, Skip.Timeout);
      this.drainContiguous(nowMs, out);
    }
  }

  /**
   * Skips the first hole (a cap was reached) and releases what follows it in order; never past
   * `stopSeq` (the packet being pushed, which must not be marked skipped).
   */
  skipOldestHole(nowMs: number, out: Uint8Array[], stopSeq?: number): void {
    if (this.heldPackets === 0) return;
    let s = this.expected;
    while (this.slots[s & this.mask] === undefined && s !== stopSeq) s = (s + 1) >>> 0;
    this.skipTo(nowMs, s, out, Skip.Overflow);
    if (s === stopSeq) return;
    this.drainContiguous(nowMs, out);
  }

  /** Releases everything held, in order, skipping the holes between (flow stops bonding, resync). */
  releaseAll(nowMs: number, out: Uint8Array[]): void {
    while (this.heldPackets > 0) {
      let s = this.expected;
      while (this.slots[s & this.mask] === undefined) s = (s + 1) >>> 0;
      this.skipTo(nowMs, s, out, Skip.Timeout);
      this.drainContiguous(nowMs, out);
    }
  }

  /** Advances `expected` to `target`, releasing held packets and marking holes skipped. */
  private skipTo(nowMs: number, target: number, out: Uint8Array[], why: Skip): void {
    while (((target - this.expected) | 0) > 0) {
      const i = this.expected & this.mask;
      const p = this.slots[i];
      if (p !== undefined) {
        this.release(nowMs, i, p, out);
        this.skipped[i] = 0;
      } else {
        this.skipped[i] = 1;
        if (why === Skip.Overflow) this.c.overflowSkips++;
        else if (why === Skip.Evidence) this.c.evidenceSkips++;
        else this.c.holesSkipped++;
      }
      this.advance();
    }
  }

  private drainContiguous(nowMs: number, out: Uint8Array[]): void {
    for (;;) {
      const i = this.expected & this.mask;
      const p = this.slots[i];
      if (p === undefined) return;
      this.release(nowMs, i, p, out);
      this.skipped[i] = 0;
      this.advance();
    }
  }

  /** Next sequence number; 0 is never one (it is the wire's "absent"), so it is stepped over. */
  private advance(): void {
    this.expected = (this.expected + 1) >>> 0;
    if (this.expected === 0) {
      this.skipped[0] = 0;
      this.expected = 1;
    }
  }

  private release(nowMs: number, i: number, p: Uint8Array, out: Uint8Array[]): void {
    this.slots[i] = undefined;
    this.heldPackets--;
    this.heldBytes -= p.length;
    this.pool.heldPackets--;
    this.pool.heldBytes -= p.length;
    const heldMs = nowMs - this.arrivalMs[i]!;
    this.c.heldReleased++;
    this.c.holdSumMs += heldMs;
    if (heldMs > this.c.holdMaxMs) this.c.holdMaxMs = heldMs;
    this.c.delivered++;
    out.push(p);
  }

  private restartAt(seq: number, nowMs: number): void {
    this.expected = seq >>> 0 || 1;
    this.startedMs = nowMs;
    // Everything just behind the first packet may still be in flight on a slower path: deliverable once.
    this.skipped.fill(1);
    this.fifoHead = 0;
    this.fifoLen = 0;
  }

  private fifoPush(seq: number): void {
    if (this.fifoLen === this.fifo.length) this.compactFifo();
    this.fifo[(this.fifoHead + this.fifoLen) & (this.fifo.length - 1)] = seq;
    this.fifoLen++;
  }

  /** Drops stale entries (released packets); at most `size` live ones remain, half the FIFO. */
  private compactFifo(): void {
    const n = this.fifo.length;
    const kept = new Uint32Array(n);
    let k = 0;
    for (let j = 0; j < this.fifoLen; j++) {
      const seq = this.fifo[(this.fifoHead + j) & (n - 1)]!;
      if (((seq - this.expected) | 0) >= 0) kept[k++] = seq;
    }
    this.fifo = kept;
    this.fifoHead = 0;
    this.fifoLen = k;
  }

  /** Doubles the ring, moving held packets and the skipped bits to their new slots. */
  private grow(): void {
    const oldSize = this.size;
    const oldMask = this.mask;
    const size = oldSize * 2;
    const mask = size - 1;
    const slots = new Array<Uint8Array | undefined>(size);
    const arrival = new Float64Array(size);
    const skipped = new Uint8Array(size);
    for (let j = 0; j < oldSize; j++) {
      const ahead = (this.expected + j) >>> 0;
      const p = this.slots[ahead & oldMask];
      if (p !== undefined) {
        slots[ahead & mask] = p;
        arrival[ahead & mask] = this.arrivalMs[ahead & oldMask]!;
      }
      const behind = (this.expected - 1 - j) >>> 0;
      skipped[behind & mask] = this.skipped[behind & oldMask]!;
    }
    // [expected - size, expected - oldSize): unknown, stays 0 (a copy there is dropped as a duplicate).
    this.slots = slots;
    this.arrivalMs = arrival;
    this.skipped = skipped;
    this.size = size;
    this.mask = mask;
    const fifo = new Uint32Array(size * 2);
    for (let j = 0; j < this.fifoLen; j++) fifo[j] = this.fifo[(this.fifoHead + j) & (this.fifo.length - 1)]!;
    this.fifo = fifo;
    this.fifoHead = 0;
  }
}
