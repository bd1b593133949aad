/**
 * Resequencing buffer for bonded flows (issue 17): unit cases, then a property test over random
 * path delays and losses on 2-3 paths, driven the way the Edge will drive it (timers fired at
 * nextDeadlineMs, packets pushed at their arrival time).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Resequencer, RESEQ_PATH_MEMORY_MS, RESEQ_RESYNC_DISTANCE, bondBoundMs } from '../../../src/core/steer/reseq.ts';
import {
  BOND_MAX_PATHS,
  RESEQ_FLOW_IDLE_MS,
  RESEQ_MAX_BOUND_MS,
  RESEQ_MAX_FLOW_PACKETS,
  RESEQ_MAX_FLOWS,
  RESEQ_MAX_HELD_PACKETS,
  RESEQ_MIN_BOUND_MS,
} from '../../../src/core/constants.ts';

/** A 4-byte packet carrying its sequence number, so outputs can be read back. */
function pkt(seq: number, extraBytes = 0): Uint8Array {
  const b = new Uint8Array(4 + extraBytes);
  new DataView(b.buffer).setUint32(0, seq >>> 0);
  return b;
}
const seqOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
const seqs = (out: readonly Uint8Array[]): number[] => out.map(seqOf);

describe('Resequencer', () => {
  it('passes an in-order flow straight through, without copying', () => {
    const r = new Resequencer(20);
    for (let s = 100; s < 110; s++) {
      const p = pkt(s);
      const out = r.push(s, 7, s, p);
      expect(out.length).toBe(1);
      expect(out[0]).toBe(p);
    }
    expect(r.nextDeadlineMs()).toBe(Infinity);
    expect(r.snapshot().totals).toMatchObject({ delivered: 10, heldReleased: 0, maxDepth: 0 });
  });

  it('holds packets behind a hole and releases them in order when it fills', () => {
    const r = new Resequencer(20);
    expect(seqs(r.push(0, 1, 10, pkt(10)))).toEqual([10]);
    expect(seqs(r.push(1, 1, 12, pkt(12)))).toEqual([]);
    expect(seqs(r.push(2, 1, 13, pkt(13)))).toEqual([]);
    expect(r.nextDeadlineMs()).toBe(1 + 20);
    expect(seqs(r.push(5, 1, 11, pkt(11)))).toEqual([11, 12, 13]);
    const t = r.snapshot().totals;
    expect(t).toMatchObject({ delivered: 4, heldReleased: 2, maxDepth: 2, timeouts: 0 });
    expect(t.holdMaxMs).toBe(4);
    expect(r.nextDeadlineMs()).toBe(Infinity);
  });

  it('skips a hole once the oldest held packet reaches its bound; the late packet is delivered once', () => {
    const r = new Resequencer(30);
    r.push(0, 1, 10, pkt(10));
    r.push(10, 1, 12, pkt(12)); // 11 missing
    r.push(20, 1, 14, pkt(14)); // 13 missing
    expect(r.nextDeadlineMs()).toBe(40);
    expect(seqs(r.handleTimeout(39))).toEqual([]);
    expect(seqs(r.handleTimeout(40))).toEqual([12]);
    expect(r.nextDeadlineMs()).toBe(50);
    expect(seqs(r.handleTimeout(50))).toEqual([14]);
    // 1 arrives after its hole was skipped: delivered at once; a second copy is dropped.
    expect(seqs(r.push(60, 1, 11, pkt(11)))).toEqual([11]);
    expect(seqs(r.push(61, 1, 11, pkt(11)))).toEqual([]);
    // A copy of something delivered in order is dropped too.
    expect(seqs(r.push(62, 1, 12, pkt(12)))).toEqual([]);
    expect(r.snapshot().totals).toMatchObject({ timeouts: 2, holesSkipped: 2, late: 1, duplicates: 2, delivered: 4 });
  });

  it('catches up a late timer on the next push, before taking the new packet', () => {
    const r = new Resequencer(10);
    r.push(0, 1, 10, pkt(10));
    r.push(1, 1, 12, pkt(12));
    // No handleTimeout at 11: the next packet at 50 first releases 2 past the hole, then itself.
    expect(seqs(r.push(50, 1, 13, pkt(13)))).toEqual([12, 13]);
  });

  it('drops a copy of a held packet and keeps the first', () => {
    const r = new Resequencer(10);
    r.push(0, 1, 10, pkt(10));
    const first = pkt(15, 1);
    r.push(1, 1, 15, first);
    r.push(2, 1, 15, pkt(15));
    const out = r.handleTimeout(100);
    expect(seqs(out)).toEqual([15]);
    expect(out[0]!.length).toBe(5);
    expect(r.snapshot().totals.duplicates).toBe(1);
  });

  it('copies held packets (the caller reuses its buffer)', () => {
    const r = new Resequencer(10);
    r.push(0, 1, 10, pkt(10));
    const buf = pkt(12);
    r.push(1, 1, 12, buf);
    buf.fill(0xff);
    expect(seqs(r.push(2, 1, 11, pkt(11)))).toEqual([11, 12]);
  });

  it('keeps flows apart', () => {
    const r = new Resequencer(10);
    r.push(0, 1, 10, pkt(10));
    r.push(0, 2, 510, pkt(510));
    expect(seqs(r.push(1, 1, 12, pkt(12)))).toEqual([]);
    expect(seqs(r.push(1, 2, 511, pkt(511)))).toEqual([511]);
    expect(seqs(r.push(2, 1, 11, pkt(11)))).toEqual([11, 12]);
  });

  it('wraps sequence numbers at 2^32, stepping over 0 (absent on the wire)', () => {
    const r = new Resequencer(10);
    const start = 0xffff_fffe;
    r.push(0, 1, start, pkt(start));
    expect(seqs(r.push(1, 1, 1, pkt(1)))).toEqual([]);
    expect(seqs(r.push(2, 1, 0xffff_ffff, pkt(0xffff_ffff)))).toEqual([0xffff_ffff, 1]);
    expect(r.snapshot().totals.holesSkipped).toBe(0);
    expect(r.nextDeadlineMs()).toBe(Infinity);
    // A packet without a sequence number is passed through.
    expect(seqs(r.push(3, 1, 0, pkt(77)))).toEqual([77]);
  });

  it('resyncs when the sender starts the flow over far away: held packets go first, in order', () => {
    const r = new Resequencer(50);
    r.push(0, 1, 1000, pkt(1000));
    r.push(1, 1, 1002, pkt(1002));
    const far = 1000 + RESEQ_RESYNC_DISTANCE + 5;
    expect(seqs(r.push(2, 1, far, pkt(far)))).toEqual([1002, far]);
    expect(seqs(r.push(3, 1, far + 1, pkt(far + 1)))).toEqual([far + 1]);
    expect(r.snapshot().totals.resyncs).toBe(1);
  });

  it('a packet beyond the largest window skips holes early (counted), never drops', () => {
    const r = new Resequencer(50);
    r.push(0, 1, 10, pkt(10));
    r.push(1, 1, 15, pkt(15));
    const beyond = 10 + RESEQ_MAX_FLOW_PACKETS + 10;
    const out = seqs(r.push(2, 1, beyond, pkt(beyond)));
    expect(out).toEqual([15]);
    const t = r.snapshot().totals;
    // Holes 11..14 and 16..(beyond - size): the window now ends at `beyond`.
    expect(t.overflowSkips).toBe(beyond - RESEQ_MAX_FLOW_PACKETS + 1 - 10 - 2);
    expect(r.snapshot().heldPackets).toBe(1);
    expect(seqs(r.handleTimeout(52))).toEqual([beyond]);
  });

  it('all flows together hold at most RESEQ_MAX_HELD_PACKETS', () => {
    const r = new Resequencer(RESEQ_MAX_BOUND_MS);
    const flows = Math.ceil((RESEQ_MAX_HELD_PACKETS + 100) / (RESEQ_MAX_FLOW_PACKETS - 2));
    let released = 0;
    let pushed = 0;
    for (let f = 0; f < flows; f++) {
      r.push(0, f, 10, pkt(10));
      released++;
      pushed++;
      for (let s = 12; s < 10 + RESEQ_MAX_FLOW_PACKETS; s++) {
        released += r.push(0, f, s, pkt(s)).length;
        pushed++;
        expect(r.snapshot(0).heldPackets).toBeLessThanOrEqual(RESEQ_MAX_HELD_PACKETS);
      }
    }
    const snap = r.snapshot(0);
    // Making room skips the oldest flow's hole, which releases what that flow held behind it.
    expect(snap.heldPackets).toBeGreaterThan(RESEQ_MAX_HELD_PACKETS - RESEQ_MAX_FLOW_PACKETS);
    expect(snap.totals.overflowSkips).toBeGreaterThan(0);
    expect(released + snap.heldPackets).toBe(pushed);
  });

  it('forgets idle flows, and the oldest past RESEQ_MAX_FLOWS (releasing what it held)', () => {
    const r = new Resequencer(10);
    r.push(0, 1, 10, pkt(10));
    r.forgetIdle(RESEQ_FLOW_IDLE_MS - 1);
    expect(r.snapshot().flows).toBe(1);
    r.forgetIdle(RESEQ_FLOW_IDLE_MS);
    expect(r.snapshot().flows).toBe(0);
    expect(r.snapshot().totals.delivered).toBe(1); // counters survive

    const q = new Resequencer(1000);
    q.push(0, 0, 10, pkt(10));
    q.push(0, 0, 12, pkt(12)); // flow 0 holds one
    for (let f = 1; f < RESEQ_MAX_FLOWS; f++) q.push(1, f, 10, pkt(10));
    expect(q.snapshot().flows).toBe(RESEQ_MAX_FLOWS);
    expect(seqs(q.push(2, RESEQ_MAX_FLOWS, 10, pkt(10)))).toEqual([12, 10]);
    expect(q.snapshot().flows).toBe(RESEQ_MAX_FLOWS);
    expect(q.snapshot().heldPackets).toBe(0);
  });

  it('skips a hole at once when every path in use delivered past it (paths keep order)', () => {
    const r = new Resequencer(50);
    r.push(0, 1, 10, pkt(10), 0);
    // For a bound after the flow's first packet, a path may not have delivered anything yet: wait.
    expect(seqs(r.push(1, 1, 12, pkt(12), 0))).toEqual([]);
    expect(seqs(r.push(49, 1, 11, pkt(11), 1))).toEqual([11, 12]);
    // 13 went on path 1 and is lost; 14 arrives on path 0: path 1 has not passed 13 yet: wait.
    expect(seqs(r.push(52, 1, 14, pkt(14), 0))).toEqual([]);
    // 15 arrives on path 1: both paths are past 13, so it is lost.
    expect(seqs(r.push(53, 1, 15, pkt(15), 1))).toEqual([14, 15]);
    expect(r.snapshot().totals).toMatchObject({ evidenceSkips: 1, timeouts: 0, holesSkipped: 0 });
    // A path silent for longer than RESEQ_PATH_MEMORY_MS is no longer waited for.
    expect(seqs(r.push(54, 1, 17, pkt(17), 0))).toEqual([]);
    expect(seqs(r.handleTimeout(54 + 50))).toEqual([17]);
    r.push(200, 1, 18, pkt(18), 0);
    expect(seqs(r.push(60 + RESEQ_PATH_MEMORY_MS, 1, 20, pkt(20), 0))).toEqual([20]);
    expect(r.snapshot().totals.evidenceSkips).toBe(2);
  });

  it('without evidence (or path ids) a hole waits for the bound', () => {
    const r = new Resequencer(50, { evidence: false });
    r.push(0, 1, 10, pkt(10), 0);
    expect(seqs(r.push(1, 1, 12, pkt(12), 0))).toEqual([]);
    const q = new Resequencer(50);
    q.push(0, 1, 10, pkt(10));
    expect(seqs(q.push(1, 1, 12, pkt(12)))).toEqual([]);
    // A packet from a path we cannot track (no id, or beyond BOND_MAX_PATHS) may have company in
    // flight there: evidence from the other paths is not enough for RESEQ_PATH_MEMORY_MS.
    const u = new Resequencer(50);
    u.push(0, 1, 10, pkt(10), 0);
    u.push(100, 1, 11, pkt(11), BOND_MAX_PATHS);
    expect(seqs(u.push(101, 1, 13, pkt(13), 0))).toEqual([]);
    expect(seqs(u.push(102 + RESEQ_PATH_MEMORY_MS, 1, 15, pkt(15), 0))).toEqual([13, 15]);
  });

  it('flush releases one flow in order', () => {
    const r = new Resequencer(100);
    r.push(0, 1, 10, pkt(10));
    r.push(0, 1, 13, pkt(13));
    r.push(0, 1, 12, pkt(12));
    expect(seqs(r.flush(1, 1))).toEqual([12, 13]);
    expect(r.nextDeadlineMs()).toBe(Infinity);
  });
});

describe('bondBoundMs', () => {
  it('is the one-way delay spread plus twice the worst jitter plus a margin, clamped', () => {
    expect(bondBoundMs([{ rttMs: 20, jitterMs: 1 }, { rttMs: 80, jitterMs: 3 }])).toBe(30 + 6 + 2);
    expect(bondBoundMs([{ rttMs: 20, jitterMs: 0 }, { rttMs: undefined, jitterMs: 50 }])).toBe(2);
    expect(bondBoundMs([{ rttMs: 20, jitterMs: 0 }], 0)).toBe(RESEQ_MIN_BOUND_MS);
    expect(bondBoundMs([{ rttMs: 10, jitterMs: 0 }, { rttMs: 5000, jitterMs: 0 }])).toBe(RESEQ_MAX_BOUND_MS);
  });
});

// ---- property test ------------------------------------------------------------------------

interface PathSpec {
  delayMs: number;
  jitterMs: number;
  loss: number;
}

interface Scenario {
  paths: PathSpec[];
  /** Per packet: path index, jitter draw [0,1), loss draw [0,1). */
  draws: Array<[number, number, number]>;
  /** Packets that arrive a second time (a replayed or FEC-rebuilt copy): index, extra delay. */
  copies: Array<[number, number]>;
  gapMs: number;
  boundMs: number;
  startSeq: number;
  flows: number;
}

const pathArb = fc.record({
  delayMs: fc.integer({ min: 1, max: 100 }),
  jitterMs: fc.integer({ min: 0, max: 15 }),
  loss: fc.constantFrom(0, 0, 0.01, 0.05, 0.3),
});

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  paths: fc.array(pathArb, { minLength: 2, maxLength: 3 }),
  draws: fc.array(fc.tuple(fc.nat(2), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), { minLength: 1, maxLength: 400 }),
  copies: fc.array(fc.tuple(fc.nat(399), fc.integer({ min: 0, max: 300 })), { maxLength: 40 }),
  gapMs: fc.constantFrom(0.05, 0.2, 1, 3),
  boundMs: fc.integer({ min: RESEQ_MIN_BOUND_MS, max: 150 }),
  startSeq: fc.constantFrom(1, 1_000_000, 0xffff_ff00),
  flows: fc.integer({ min: 1, max: 2 }),
});

/** The n-th sequence number of a flow starting at `start`, skipping 0 as the sender does. */
function nthSeq(start: number, n: number): number {
  const s = start + n;
  return s >= 2 ** 32 ? (s - 2 ** 32 + 1) >>> 0 : s;
}
function nthOf(start: number, seq: number): number {
  return seq >= start ? seq - start : seq + 2 ** 32 - 1 - start;
}

interface Arrival {
  atMs: number;
  path: number;
  flow: number;
  seq: number;
  /** Sending order inside the flow (seq - startSeq). */
  n: number;
}

interface Delivery {
  atMs: number;
  flow: number;
  n: number;
}

/** Runs a scenario through a Resequencer; returns what arrived and what came out, when. */
/**
 * `handshakeMs`: the first packet of each flow goes alone, that long before the rest (as TCP's SYN
 * does); without it the receiver may first see a later packet and deliver earlier ones late.
 */
function run(sc: Scenario, handshakeMs = 0, evidence = true): { arrivals: Arrival[]; deliveries: Delivery[]; r: Resequencer } {
  const arrivals: Arrival[] = [];
  const sent = [0, 0];
  sc.draws.forEach(([pathIdx, j, l], i) => {
    const path = sc.paths[pathIdx % sc.paths.length]!;
    const flow = i % sc.flows;
    const n = sent[flow]!++;
    if (l < path.loss) return;
    const sentMs = i * sc.gapMs + (n > 0 ? handshakeMs : 0);
    arrivals.push({ atMs: sentMs + path.delayMs + j * path.jitterMs, path: pathIdx % sc.paths.length, flow, seq: nthSeq(sc.startSeq, n), n });
  });
  for (const [c, extraMs] of sc.copies) {
    const i = c % sc.draws.length;
    const first = arrivals.find((a) => a.flow === i % sc.flows && a.n === Math.floor(i / sc.flows));
    if (first) arrivals.push({ ...first, atMs: first.atMs + extraMs });
  }
  // Stable by time: a path's packets with equal arrival keep sending order.
  arrivals.sort((a, b) => a.atMs - b.atMs);
  const r = new Resequencer(sc.boundMs, { evidence });
  const deliveries: Delivery[] = [];
  const take = (atMs: number, out: readonly Uint8Array[]): void => {
    for (const p of out) {
      const seq = seqOf(p);
      const flow = p[4]!;
      deliveries.push({ atMs, flow, n: nthOf(sc.startSeq, seq) });
    }
  };
  const fire = (t: number): void => {
    take(t, r.handleTimeout(t));
    // Everything due was released: the next deadline lies ahead (else a timer loop would spin).
    if (r.nextDeadlineMs() <= t) throw new Error(`deadline ${t} passed without a release`);
  };
  for (const a of arrivals) {
    for (let t = r.nextDeadlineMs(); t <= a.atMs; t = r.nextDeadlineMs()) fire(t);
    const p = pkt(a.seq, 1);
    p[4] = a.flow;
    take(a.atMs, r.push(a.atMs, a.flow, a.seq, p, a.path));
  }
  for (let t = r.nextDeadlineMs(); t < Infinity; t = r.nextDeadlineMs()) fire(t);
  return { arrivals, deliveries, r };
}

describe('Resequencer properties (random delays and losses over 2-3 paths)', () => {
  it('in order except skipped holes; nothing held past its bound; nothing twice; nothing that arrived lost', () => {
    fc.assert(
      fc.property(scenarioArb, fc.boolean(), (sc, evidence) => {
        const { arrivals, deliveries, r } = run(sc, 0, evidence);
        // A packet's arrival times (a copy may arrive again later).
        const arrivedAt = new Map<string, number[]>();
        for (const a of arrivals) arrivedAt.set(`${a.flow}:${a.n}`, [...(arrivedAt.get(`${a.flow}:${a.n}`) ?? []), a.atMs]);
        const seen = new Set<string>();
        const highest = [-1, -1];
        let late = 0;
        for (const d of deliveries) {
          const k = `${d.flow}:${d.n}`;
          // Nothing delivered twice, nothing invented.
          expect(seen.has(k), `delivered twice: ${k}`).toBe(false);
          seen.add(k);
          const times = arrivedAt.get(k);
          expect(times, `delivered but never arrived: ${k}`).toBeDefined();
          const at = Math.min(...times!);
          // Never held longer than the bound (timers fire exactly at the deadline here).
          expect(d.atMs - at).toBeLessThanOrEqual(sc.boundMs + 1e-9);
          expect(d.atMs).toBeGreaterThanOrEqual(at);
          if (d.n > highest[d.flow]!) {
            highest[d.flow] = d.n;
          } else {
            // Out of order only for a packet whose hole was skipped: delivered the moment it arrived.
            late++;
            expect(times).toContain(d.atMs);
          }
        }
        const snap = r.snapshot();
        expect(snap.totals.late).toBe(late);
        // Nothing that arrived is lost (the only exception is a counted too-old packet); every
        // other arrival was a copy, counted.
        if (snap.totals.tooOld === 0) expect(seen.size).toBe(arrivedAt.size);
        expect(seen.size + snap.totals.tooOld + snap.totals.duplicates).toBe(arrivals.length);
        expect(snap.heldPackets).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('with a bound covering the delay spread and no loss, everything comes out in order with no timeout', () => {
    fc.assert(
      fc.property(scenarioArb, (sc0) => {
        const paths = sc0.paths.map((p) => ({ ...p, loss: 0 }));
        let lo = Infinity;
        let hi = -Infinity;
        for (const p of paths) {
          lo = Math.min(lo, p.delayMs);
          hi = Math.max(hi, p.delayMs + p.jitterMs);
        }
        const sc = { ...sc0, paths, copies: [], boundMs: hi - lo + 1 };
        // Paths here reorder inside themselves (independent jitter per packet): no evidence skips.
        const { arrivals, deliveries, r } = run(sc, 200, false);
        expect(deliveries.length).toBe(arrivals.length);
        const next = [0, 0];
        for (const d of deliveries) expect(d.n).toBe(next[d.flow]!++);
        expect(r.snapshot().totals).toMatchObject({ timeouts: 0, late: 0, holesSkipped: 0, tooOld: 0 });
      }),
      { numRuns: 300 },
    );
  });
});
