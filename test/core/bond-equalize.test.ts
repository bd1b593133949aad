/**
 * Delay equalization of a bonded class (issue 17, bond.equalizeDelay; src/core/steer/equalize.ts).
 * World, virtual time: one bonded flow over paths of 10 / 30 / 60 ms one way, at a low rate (one
 * path would do) and above two paths' rate. Equalized, every delivered packet's one-way delay is
 * within a few ms of the slowest path's, whatever path it took, in order, and no packet waits in
 * the equalizer longer than its path's hold. The same flows without it are the control (the spread
 * the equalizer removes). Then the equalizer alone: its caps send the oldest on early, never drop.
 */
import { describe, expect, it } from 'vitest';
import { World, type WorldLinkConfig } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, type ClassPolicy } from '../../src/core/steer/classes.ts';
import { DelayEqualizer } from '../../src/core/steer/equalize.ts';
import { BondScheduler } from '../../src/core/steer/bond.ts';
import { BOND_EQUALIZE_MAX_PACKETS } from '../../src/core/constants.ts';
import { outOfOrder } from './order.ts';

const SEED = Number(process.env.BRAID_SEED ?? 20261206);
const DEFAULT_CLASS = 5;
const START_MS = 3000;

function policies(equalizeDelay: boolean): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => (p.name === 'default' ? { ...p, strategy: 'bond' as const, bondEqualizeDelay: equalizeDelay } : p));
}

interface Run {
  seqs: number[];
  /** One-way delay of each delivered packet (TUN in at a to TUN out at b). */
  owdMs: number[];
  sharePerPath: number[];
  eqHoldMaxMs: number;
  pathHoldMaxMs: number;
  eqEarly: number;
  reseqHoldMaxMs: number;
  boundMaxMs: number;
}

function run(equalize: boolean, gapMs: number, count: number): Run {
  // The shaper a little under the link (as a deployment sets bandwidthUp): no link drops.
  const bw = { bandwidthBps: 40_000_000, rateBps: 44_000_000 };
  const links: WorldLinkConfig[] = [
    { name: 'l10', delayMs: 10, ...bw },
    { name: 'l30', delayMs: 30, ...bw },
    { name: 'l60', delayMs: 60, ...bw },
  ];
  const w = new World({ seed: SEED, links, edge: { policies: policies(equalize) } });
  const sentAt = new Map<number, number>();
  w.every(gapMs, { startMs: START_MS, count }, (i) => {
    sentAt.set(i, w.nowMs);
    w.a.sendTun(makePacket({ ...flowSpec(1, 1200), seq: i }));
  });
  w.runFor(START_MS + count * gapMs + 2000);
  const seqs: number[] = [];
  const owdMs: number[] = [];
  for (const d of w.b.delivered) {
    const t = readPacketTag(d.bytes);
    if (t === undefined || t.flowId !== 1) continue;
    seqs.push(t.seq);
    owdMs.push(d.atMs - sentAt.get(t.seq)!);
  }
  const rxPeer = [...w.b.edge.peersByName.values()][0]!;
  const txPeer = [...w.a.edge.peersByName.values()][0]!;
  const rx = rxPeer.bond.snapshot().find((c) => c.class === 'default')!;
  const flow = [...txPeer.steering.flows.values()].find((f) => f.classId === DEFAULT_CLASS && f.packets > 0);
  return {
    seqs,
    owdMs,
    sharePerPath: flow?.bondPathPackets ?? [],
    eqHoldMaxMs: rx.equalize?.holdMaxMs ?? 0,
    pathHoldMaxMs: Math.max(0, ...(rx.equalize?.holdMs ?? [])),
    eqEarly: rx.equalize?.early ?? 0,
    reseqHoldMaxMs: rx.reseq.holdMaxMs,
    boundMaxMs: rxPeer.bond.boundMaxMs(DEFAULT_CLASS),
  };
}

const spread = (xs: number[]): { min: number; max: number } => ({ min: Math.min(...xs), max: Math.max(...xs) });

describe(`World: a bonded class with equalized delay (seed ${SEED})`, () => {
  // 1200 bytes every 2 ms (4.8 Mbit/s: the 10 ms path alone would do) and every 0.1 ms
  // (96 Mbit/s: more than two 40 Mbit/s paths).
  for (const [label, gapMs, count] of [['low rate', 2, 1500], ['above two paths', 0.1, 12_000]] as const) {
    it(`${label}: every packet ~the 60 ms path's delay, in order, no wait beyond the hold`, () => {
      const on = run(true, gapMs, count);
      const off = run(false, gapMs, count);
      const s = spread(on.owdMs);
      const c = spread(off.owdMs);
      console.log(
        `equalize ${label}: one-way ${s.min.toFixed(2)}-${s.max.toFixed(2)} ms (control without: ${c.min.toFixed(2)}-${c.max.toFixed(2)}), delivered ${on.seqs.length}/${count}, shares ${on.sharePerPath.join('/')}, equalizer wait max ${on.eqHoldMaxMs.toFixed(2)} ms (largest hold ${on.pathHoldMaxMs.toFixed(2)}), early ${on.eqEarly}, reseq hold max ${on.reseqHoldMaxMs.toFixed(2)} <= bound ${on.boundMaxMs.toFixed(2)}`,
      );
      expect(on.seqs.length).toBe(count);
      expect(new Set(on.seqs).size).toBe(count);
      expect(outOfOrder(on.seqs)).toBe(0);
      // Constant delay: all within a few ms of each other, none below the slowest path's.
      expect(s.max - s.min, 'one-way delays spread').toBeLessThan(5);
      expect(s.min).toBeGreaterThanOrEqual(60);
      // The control shows what was removed: packets over the 10 ms path came ~50 ms sooner.
      expect(c.min).toBeLessThan(20);
      // The hold is D_max - D_path (50 ms for the 10 ms path) and nothing waits longer.
      expect(on.pathHoldMaxMs).toBeGreaterThan(45);
      expect(on.pathHoldMaxMs).toBeLessThan(55);
      expect(on.eqHoldMaxMs).toBeLessThanOrEqual(on.pathHoldMaxMs + 1e-6);
      expect(on.eqEarly).toBe(0);
      expect(on.reseqHoldMaxMs).toBeLessThanOrEqual(on.boundMaxMs + 1e-6);
    });
  }
});

describe('DelayEqualizer', () => {
  it('holds each path for its hold, keeps each path in order, and past its cap sends the oldest on early (no drop)', () => {
    const got: Array<{ t: number; path: number; seq: number }> = [];
    const eq = new DelayEqualizer((t, path, seq) => got.push({ t, path, seq }));
    eq.setHoldMs(0, 50);
    eq.setHoldMs(1, 0);
    eq.push(0, 0, 1, new Uint8Array(10));
    eq.push(1, 1, 2, new Uint8Array(10)); // no hold, nothing queued on its path: at once
    expect(got).toEqual([{ t: 1, path: 1, seq: 2 }]);
    expect(eq.nextReleaseMs()).toBe(50);
    // The hold drops: a later packet on the same path never overtakes the one before it.
    eq.setHoldMs(0, 10);
    eq.push(2, 0, 3, new Uint8Array(10));
    expect(eq.nextReleaseMs()).toBe(50);
    eq.release(49.9);
    expect(got.length).toBe(1);
    eq.release(50);
    expect(got.map((g) => g.seq)).toEqual([2, 1, 3]);
    expect(eq.c.holdMaxMs).toBe(50);
    // Caps: BOND_EQUALIZE_MAX_PACKETS held, one more sends the oldest on early.
    got.length = 0;
    for (let i = 0; i < BOND_EQUALIZE_MAX_PACKETS + 3; i++) eq.push(100, 0, 10 + i, new Uint8Array(1));
    expect(eq.heldPackets).toBe(BOND_EQUALIZE_MAX_PACKETS);
    expect(eq.c.early).toBe(3);
    expect(got.map((g) => g.seq)).toEqual([10, 11, 12]);
    eq.flush(101);
    expect(got.length).toBe(BOND_EQUALIZE_MAX_PACKETS + 3);
    expect(eq.heldPackets).toBe(0);
  });
});

describe('BondScheduler with equalizeDelay', () => {
  it('takes every member as the slowest one way: no queue built on purpose (slack 0), even shares at full rate', () => {
    const paths = [20, 60, 120].map((rtt, id) => ({ id, spareBps: 100e6, srttMs: rtt, baseRttMs: rtt, lossRatio: 0, mtuBytes: 1400 }));
    const shares = (equalizeDelay: boolean): { slack: number; perPath: number[] } => {
      const s = new BondScheduler({ kind: 'eat', maxDelayGapMs: 80, equalizeDelay });
      s.setPaths(0, paths);
      const perPath = [0, 0, 0];
      // 1400 bytes every 0.04 ms: 280 Mbit/s for 1 s.
      for (let i = 0; i < 25_000; i++) perPath[s.pick(i * 0.04, 1400)]!++;
      return { slack: s.slackMs(0), perPath };
    };
    const on = shares(true);
    const off = shares(false);
    expect(on.slack).toBe(0);
    expect(off.slack).toBe(50);
    for (const n of on.perPath) expect(n).toBeGreaterThan(25_000 * 0.3);
    // Without it the fast path carries more (its queue lines arrivals up with the slow one's).
    expect(off.perPath[0]!).toBeGreaterThan(off.perPath[2]! * 1.2);
  });
});
