/**
 * Resequencing at the receiver for bonded flows (issue 17).
 *
 * A bonded flow's packets travel over several paths, so they arrive out of order; TCP reads
 * reordering as loss (three duplicate ACKs) and collapses its window. The sender stamps each
 * packet of a bonded flow with a per-flow sequence number; here we hold packets that arrive ahead
 * of a hole and release them in order once the hole fills.
 *
 * A hole that does not fill (the packet was lost) must not stall the flow: every held packet has a
 * bound (`boundMs`, from the measured delay difference of the paths in use plus jitter, see
 * `bondBoundMs`); when the oldest held packet reaches it, the holes before it are skipped and it is
 * released. Nothing is held longer than its bound, provided `handleTimeout` runs at
 * `nextDeadlineMs()` (a late timer is caught up on the flow's next `push` too).
 *
 * Most holes need not wait that long: paths keep their packets' order, so once every path the
 * flow uses has delivered past a hole, the packet is lost and the hole is skipped at once
 * ("evidence", needs the path id with each push; see releaseOnEvidence for when it can misjudge).
 *
 * A packet that arrives after its hole was skipped ("late") is delivered at once, out of order:
 * TCP copes with one reordered segment (its SACK scoreboard fills the hole and the retransmission
 * it may have sent turns into a harmless duplicate), while dropping it would turn a packet we have
 * into a certain loss and a retransmission a round trip later. A per-flow bitmap of the skipped
 * sequence numbers makes sure a late packet is delivered once and a copy (replay, a packet that
 * both arrived and was rebuilt by FEC) is dropped.
 *
 * Flows are keyed by a number the caller chooses: one per inner 5-tuple (the sender numbers each
 * flow-table entry, i.e. each 5-tuple, on its own). Sequence numbers are 32-bit serial numbers
 * (RFC 1982) that wrap and skip 0 (0 is proto3's "absent" on the wire: the sender steps from
 * 0xffffffff to 1, and so does `expected` here); a sender starts each flow at a random value. A packet far
 * from where the flow is (beyond RESEQ_RESYNC_DISTANCE either way) means the sender started the flow
 * over: what is held is released in order and the flow restarts at that packet.
 *
 * Caps (src/core/constants.ts): a flow holds at most RESEQ_MAX_FLOW_PACKETS sequence numbers'
 * span and RESEQ_MAX_FLOW_BYTES; all flows together RESEQ_MAX_HELD_PACKETS / RESEQ_MAX_HELD_BYTES;
 * at most RESEQ_MAX_FLOWS flows. Past a cap the oldest hole is skipped early (counted as
 * `overflowSkips`), never a packet dropped.
 *
 * Held packets are copied (the caller's buffer may be reused); packets released at once are the
 * caller's own arrays. The arrays returned by push/handleTimeout/flush are reused by the next call.
 *
 * Layout: one flow's buffer (FlowBuffer) and the counters are in reseq-flow.ts; this module holds
 * the Resequencer (flows, LRU eviction, the global caps, deadlines, snapshots) and bondBoundMs.
 */
import {
  RESEQ_FLOW_IDLE_MS,
  RESEQ_MAX_BOUND_MS,
  RESEQ_MAX_FLOWS,
  RESEQ_MAX_HELD_BYTES,
  RESEQ_MAX_HELD_PACKETS,
  RESEQ_MIN_BOUND_MS,
} from '../constants.ts';
import { addCounters, emptyReseqCounters, FlowBuffer, type Pool, type ReseqCounters } from './reseq-flow.ts';

export { emptyReseqCounters, RESEQ_PATH_MEMORY_MS, RESEQ_RESYNC_DISTANCE, type ReseqCounters } from './reseq-flow.ts';

/** A flow moves to the end of the LRU order at most this often (a Map delete + set costs). */
const LRU_REFRESH_MS = 250;

/** One flow's view for the snapshot (dashboard, `braid status`). */
export interface ReseqFlowSnapshot extends ReseqCounters {
  key: number;
  heldPackets: number;
  heldBytes: number;
}

export interface ReseqSnapshot {
  boundMs: number;
  flows: number;
  heldPackets: number;
  heldBytes: number;
  /** Totals over every flow seen, including forgotten ones. */
  totals: ReseqCounters;
}

/**
 * The hold bound for a set of bonded paths: the one-way delay difference (RTT/2 each, i.e. the
 * paths are taken as symmetric) plus twice the worst jitter plus a small margin, clamped to
 * [RESEQ_MIN_BOUND_MS, RESEQ_MAX_BOUND_MS]. Paths with unknown RTT are left out.
 */
export function bondBoundMs(paths: ReadonlyArray<{ rttMs: number | undefined; jitterMs: number }>, marginMs = 2): number {
  let minRtt = Infinity;
  let maxRtt = -Infinity;
  let jitter = 0;
  for (const p of paths) {
    if (p.rttMs === undefined || !Number.isFinite(p.rttMs)) continue;
    minRtt = Math.min(minRtt, p.rttMs);
    maxRtt = Math.max(maxRtt, p.rttMs);
    jitter = Math.max(jitter, p.jitterMs);
  }
  const spread = maxRtt >= minRtt ? (maxRtt - minRtt) / 2 : 0;
  return clampBound(spread + 2 * jitter + marginMs);
}

function clampBound(ms: number): number {
  if (!Number.isFinite(ms)) return RESEQ_MAX_BOUND_MS;
  return Math.min(RESEQ_MAX_BOUND_MS, Math.max(RESEQ_MIN_BOUND_MS, ms));
}

/**
 * The resequencing buffers of one peer's bonded flows. Pure: time is an argument; the caller arms
 * a timer for `nextDeadlineMs()` and calls `handleTimeout` then.
 */
export class Resequencer {
  private readonly flows = new Map<number, FlowBuffer>();
  /** Flows holding at least one packet: the only ones with a deadline. */
  private readonly holding = new Set<FlowBuffer>();
  private readonly pool: Pool = { heldPackets: 0, heldBytes: 0 };
  private readonly out: Uint8Array[] = [];
  /** Counters of flows already forgotten (totals stay monotonic). */
  private readonly retired: ReseqCounters = emptyReseqCounters();
  private boundMs: number;
  private readonly evidence: boolean;

  /**
   * `evidence`: skip a hole as soon as every path in use delivered past it (default), instead of
   * only when the bound expires. Turn off when paths reorder inside themselves.
   */
  constructor(boundMs = RESEQ_MAX_BOUND_MS / 5, opts: { evidence?: boolean } = {}) {
    this.boundMs = clampBound(boundMs);
    this.evidence = opts.evidence ?? true;
  }

  /** The hold bound for every flow from now on (see bondBoundMs); call handleTimeout after lowering it. */
  setBoundMs(ms: number): void {
    this.boundMs = clampBound(ms);
  }

  getBoundMs(): number {
    return this.boundMs;
  }

  /**
   * One packet of bonded flow `flowKey` with its per-flow sequence number, received on link
   * `pathId` (the sender's link index of the path; -1 if unknown). Returns the packets to deliver
   * now, in order (the array is reused by the next call).
   */
  push(nowMs: number, flowKey: number, seq: number, packet: Uint8Array, pathId = -1): readonly Uint8Array[] {
    const out = this.out;
    out.length = 0;
    if (seq >>> 0 === 0) {
      // Not a sequence number (proto3's absent value): nothing to order it against.
      out.push(packet);
      return out;
    }
    let flow = this.flows.get(flowKey);
    if (flow === undefined) {
      if (this.flows.size >= RESEQ_MAX_FLOWS) this.evictOne(nowMs, out);
      flow = new FlowBuffer(flowKey, seq, nowMs, this.pool);
      this.flows.set(flowKey, flow);
    } else if (nowMs - flow.lruMs >= LRU_REFRESH_MS) {
      // Map order = least recently heard first (for eviction); refreshed now and then, not per packet.
      flow.lruMs = nowMs;
      this.flows.delete(flowKey);
      this.flows.set(flowKey, flow);
    }
    // All flows' caps: make room by skipping holes of the flow whose oldest packet waited longest.
    if (this.pool.heldPackets + 1 > RESEQ_MAX_HELD_PACKETS || this.pool.heldBytes + packet.length > RESEQ_MAX_HELD_BYTES) {
      this.makeRoom(nowMs, packet.length, flow, out);
    }
    flow.push(nowMs, seq, packet, this.boundMs, out, pathId, this.evidence);
    this.track(flow);
    return out;
  }

  /** When the next held packet reaches its bound (Infinity when nothing is held). */
  nextDeadlineMs(): number {
    let t = Infinity;
    for (const f of this.holding) t = Math.min(t, f.oldestArrivalMs() + this.boundMs);
    return t;
  }

  /** Releases every flow whose oldest held packet reached its bound. Reused array, as push. */
  handleTimeout(nowMs: number): readonly Uint8Array[] {
    const out = this.out;
    out.length = 0;
    for (const f of this.holding) {
      f.expire(nowMs, this.boundMs, out);
      this.track(f);
    }
    return out;
  }

  /** Releases what one flow holds, in order (it stopped bonding, or its class changed). */
  flush(nowMs: number, flowKey: number): readonly Uint8Array[] {
    const out = this.out;
    out.length = 0;
    const f = this.flows.get(flowKey);
    if (f !== undefined) {
      f.releaseAll(nowMs, out);
      this.track(f);
    }
    return out;
  }

  /** Forgets flows idle for RESEQ_FLOW_IDLE_MS with nothing held (call now and then, e.g. each second). */
  forgetIdle(nowMs: number): void {
    for (const [key, f] of this.flows) {
      if (f.heldPackets === 0 && nowMs - f.lastSeenMs >= RESEQ_FLOW_IDLE_MS) this.forget(key, f);
    }
  }

  /** One flow's live counters (no copy; undefined when the flow is not tracked). */
  flowCounters(flowKey: number): Readonly<ReseqCounters> | undefined {
    return this.flows.get(flowKey)?.c;
  }

  snapshot(maxFlows = 16): ReseqSnapshot & { top: ReseqFlowSnapshot[] } {
    const totals = { ...this.retired };
    const all: ReseqFlowSnapshot[] = [];
    for (const f of this.flows.values()) {
      addCounters(totals, f.c);
      all.push({ key: f.key, heldPackets: f.heldPackets, heldBytes: f.heldBytes, ...f.c });
    }
    all.sort((a, b) => b.delivered - a.delivered);
    return {
      boundMs: this.boundMs,
      flows: this.flows.size,
      heldPackets: this.pool.heldPackets,
      heldBytes: this.pool.heldBytes,
      totals,
      top: all.slice(0, maxFlows),
    };
  }

  private track(f: FlowBuffer): void {
    if (f.heldPackets > 0) this.holding.add(f);
    else this.holding.delete(f);
  }

  private makeRoom(nowMs: number, bytes: number, pushing: FlowBuffer, out: Uint8Array[]): void {
    while (this.pool.heldPackets + 1 > RESEQ_MAX_HELD_PACKETS || this.pool.heldBytes + bytes > RESEQ_MAX_HELD_BYTES) {
      let victim: FlowBuffer | undefined;
      let oldest = Infinity;
      for (const f of this.holding) {
        if (f === pushing) continue; // the pushing flow makes its own room, in its own order
        const t = f.oldestArrivalMs();
        if (t < oldest) {
          oldest = t;
          victim = f;
        }
      }
      if (victim === undefined) return;
      victim.skipOldestHole(nowMs, out);
      this.track(victim);
    }
  }

  private evictOne(nowMs: number, out: Uint8Array[]): void {
    // Least recently heard first; a flow still holding packets gives them up in order.
    const first = this.flows.entries().next();
    if (first.done === true) return;
    const [key, f] = first.value;
    f.releaseAll(nowMs, out);
    this.forget(key, f);
  }

  private forget(key: number, f: FlowBuffer): void {
    addCounters(this.retired, f.c);
    this.flows.delete(key);
    this.holding.delete(f);
  }
}
