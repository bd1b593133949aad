/**
 * Delay equalization for a bonded class at the receiver (issue 17, `bond.equalizeDelay`).
 *
 * Why: a bond's paths differ in delay (10 / 30 / 60 ms one way). TCP's congestion control reads
 * the flow's delay as one path's: at a low rate the sender's scheduler may use the fast path alone,
 * so the flow's minimum RTT is the fast path's, and at full rate every packet's in-order delivery
 * waits for the slow path. BBR sizes its window as 2 x bandwidth x min RTT and stays at about two
 * links' worth; CUBIC grows slowly. Holding each packet that came over path p for D_max - D_p
 * (D = the path's one-way delay, RTT/2 of its lowest RTT; D_max over the bond's members) before
 * it reaches the resequencer makes every packet of the class see the slowest member's delay
 * whatever path it took: a constant-delay bond, whose minimum RTT is its RTT at any rate. The cost:
 * the class's delay is the slowest member's even when the fast path alone would do.
 *
 * One FIFO per path (a path keeps its packets' order, and so does its hold: a packet is released
 * no earlier than the one before it on the same path). Bounded: a hold is at most
 * BOND_EQUALIZE_MAX_HOLD_MS; a class holds at most BOND_EQUALIZE_MAX_PACKETS / _BYTES, past which
 * the longest-held packet goes on early (counted as `early`), never dropped.
 *
 * Pure: time is an argument; the caller arms a timer for `nextReleaseMs()` and calls `release`.
 * Held packets are copies (the caller's buffer may be reused).
 */
import { copyBytes } from '../bytes.ts';
import { BOND_EQUALIZE_MAX_BYTES, BOND_EQUALIZE_MAX_HOLD_MS, BOND_EQUALIZE_MAX_PACKETS, BOND_MAX_PATHS } from '../constants.ts';

/** Where released packets go: the class's resequencer, with the packet's path and bond sequence. */
export type EqualizeSink = (nowMs: number, pathId: number, seq: number, packet: Uint8Array) => void;

export interface EqualizeCounters {
  /** Packets that were held (a path with a hold above 0), their total and longest wait. */
  held: number;
  holdSumMs: number;
  holdMaxMs: number;
  /** Most packets held at once. */
  maxDepth: number;
  /** Packets released before their time because a cap was reached. */
  early: number;
}

/** One path's FIFO: a ring of (release time, sequence, packet). */
class PathQueue {
  private cap = 64;
  private head = 0;
  len = 0;
  private atMs = new Float64Array(this.cap);
  private inMs = new Float64Array(this.cap);
  private seqs = new Uint32Array(this.cap);
  private pkts: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(this.cap);
  /** Release time of the last packet pushed (a later one never goes before it). */
  lastAtMs = -Infinity;

  headAtMs(): number {
    return this.len === 0 ? Infinity : this.atMs[this.head]!;
  }

  push(atMs: number, inMs: number, seq: number, p: Uint8Array): void {
    if (this.len === this.cap) this.grow();
    const i = (this.head + this.len) & (this.cap - 1);
    this.atMs[i] = atMs;
    this.inMs[i] = inMs;
    this.seqs[i] = seq;
    this.pkts[i] = p;
    this.len++;
    this.lastAtMs = atMs;
  }

  /** Removes the head; its sequence number and arrival time go to `out`. */
  shift(out: { seq: number; inMs: number }): Uint8Array {
    const i = this.head;
    const p = this.pkts[i]!;
    this.pkts[i] = undefined;
    out.seq = this.seqs[i]!;
    out.inMs = this.inMs[i]!;
    this.head = (this.head + 1) & (this.cap - 1);
    this.len--;
    return p;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const atMs = new Float64Array(cap);
    const inMs = new Float64Array(cap);
    const seqs = new Uint32Array(cap);
    const pkts = new Array<Uint8Array | undefined>(cap);
    for (let j = 0; j < this.len; j++) {
      const i = (this.head + j) & (this.cap - 1);
      atMs[j] = this.atMs[i]!;
      inMs[j] = this.inMs[i]!;
      seqs[j] = this.seqs[i]!;
      pkts[j] = this.pkts[i];
    }
    this.atMs = atMs;
    this.inMs = inMs;
    this.seqs = seqs;
    this.pkts = pkts;
    this.cap = cap;
    this.head = 0;
  }
}

export class DelayEqualizer {
  readonly c: EqualizeCounters = { held: 0, holdSumMs: 0, holdMaxMs: 0, maxDepth: 0, early: 0 };
  heldPackets = 0;
  heldBytes = 0;
  private readonly holdMs = new Float64Array(BOND_MAX_PATHS);
  private readonly queues: Array<PathQueue | undefined> = new Array<PathQueue | undefined>(BOND_MAX_PATHS);
  private readonly tmp = { seq: 0, inMs: 0 };
  /** One past the highest path id with a queue: the scans stop there (a peer has a few paths). */
  private pathsEnd = 0;

  constructor(private readonly sink: EqualizeSink) {}

  /** The hold for packets that arrive over path `pathId` from now on (D_max - D_path), clamped. */
  setHoldMs(pathId: number, ms: number): void {
    if (pathId < 0 || pathId >= BOND_MAX_PATHS) return;
    this.holdMs[pathId] = Number.isFinite(ms) ? Math.min(BOND_EQUALIZE_MAX_HOLD_MS, Math.max(0, ms)) : 0;
  }

  getHoldMs(pathId: number): number {
    return pathId >= 0 && pathId < BOND_MAX_PATHS ? this.holdMs[pathId]! : 0;
  }

  /** Sets every path's hold to 0 (the class stopped equalizing); what is held still goes at its time. */
  clearHolds(): void {
    this.holdMs.fill(0);
  }

  /**
   * A bonded packet arrived over `pathId`: to the sink now (nothing to hold, nothing ahead of it on
   * its path) or held until its release time. Whatever is due by `nowMs` goes first.
   */
  push(nowMs: number, pathId: number, seq: number, packet: Uint8Array): void {
    this.release(nowMs);
    if (pathId < 0 || pathId >= BOND_MAX_PATHS) {
      this.sink(nowMs, pathId, seq, packet); // unknown path: nothing to equalize against
      return;
    }
    const hold = this.holdMs[pathId]!;
    let q = this.queues[pathId];
    if (hold <= 0 && (q === undefined || q.len === 0)) {
      this.sink(nowMs, pathId, seq, packet);
      return;
    }
    q ??= this.queueOf(pathId);
    while (this.heldPackets > 0 && (this.heldPackets + 1 > BOND_EQUALIZE_MAX_PACKETS || this.heldBytes + packet.length > BOND_EQUALIZE_MAX_BYTES)) this.releaseOne(nowMs, true);
    q.push(Math.max(nowMs + hold, q.lastAtMs), nowMs, seq, copyBytes(packet));
    this.heldPackets++;
    this.heldBytes += packet.length;
    if (this.heldPackets > this.c.maxDepth) this.c.maxDepth = this.heldPackets;
  }

  /** When the next held packet is due (Infinity when none is held). */
  nextReleaseMs(): number {
    if (this.heldPackets === 0) return Infinity;
    let t = Infinity;
    for (let i = 0; i < this.pathsEnd; i++) {
      const q = this.queues[i];
      if (q !== undefined && q.len > 0) t = Math.min(t, q.headAtMs());
    }
    return t;
  }

  /** Sends every packet due by `nowMs` to the sink, earliest release first. */
  release(nowMs: number): void {
    while (this.heldPackets > 0 && this.nextReleaseMs() <= nowMs) this.releaseOne(nowMs, false);
  }

  /** Sends everything held to the sink now (the peer went away). */
  flush(nowMs: number): void {
    while (this.heldPackets > 0) this.releaseOne(nowMs, false);
  }

  /** Releases the head with the earliest release time (`early`: before it, a cap). */
  private releaseOne(nowMs: number, early: boolean): void {
    let best = -1;
    let bestAt = Infinity;
    for (let i = 0; i < this.pathsEnd; i++) {
      const q = this.queues[i];
      if (q === undefined || q.len === 0) continue;
      const at = q.headAtMs();
      if (at < bestAt) {
        bestAt = at;
        best = i;
      }
    }
    if (best < 0) return;
    const p = this.queues[best]!.shift(this.tmp);
    this.heldPackets--;
    this.heldBytes -= p.length;
    const waitedMs = nowMs - this.tmp.inMs;
    this.c.held++;
    this.c.holdSumMs += waitedMs;
    if (waitedMs > this.c.holdMaxMs) this.c.holdMaxMs = waitedMs;
    if (early && bestAt > nowMs) this.c.early++;
    this.sink(nowMs, best, this.tmp.seq, p);
  }

  private queueOf(pathId: number): PathQueue {
    let q = this.queues[pathId];
    if (q === undefined) {
      q = new PathQueue();
      this.queues[pathId] = q;
      this.pathsEnd = Math.max(this.pathsEnd, pathId + 1);
    }
    return q;
  }
}
