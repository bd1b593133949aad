/**
 * A busy box is not a bad link (Endpoint.noteLinkRxDropped, PathStats.onLocalDrops): datagrams our
 * own receive socket dropped (this box fell behind) count as received, so neither our rx loss nor
 * the report the sender steers on blames the path. In the World the 5% loss happens on the wire;
 * telling site b those were its socket's drops (what `braid up` reads from the kernel every 100 ms)
 * must keep mpls UP with voice on it, where without the note voice leaves within 2 s (steering.test.ts
 * "brownout").
 */
import { describe, expect, it } from 'vitest';
import { World, type WorldLinkConfig } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { PathStats } from '../../src/core/pathmon/path-stats.ts';
import { shareLocalDrops } from '../../src/core/pathmon/local-drops.ts';
import type { PathRuntime } from '../../src/core/pathmon/path.ts';

const SEED = Number(process.env.BRAID_SEED ?? 4242);
const LINKS: WorldLinkConfig[] = [
  { name: 'mpls', delayMs: 10 },
  { name: 'inet', delayMs: 20, jitterMs: 2 },
];

function run(noteDrops: boolean): { w: World; shared: number; lost: number } {
  const w = new World({ seed: SEED, links: LINKS });
  w.every(20, { startMs: 1000, untilMs: 20_000 }, (i) => {
    for (const f of [1, 2, 3]) w.a.sendTun(makePacket({ ...flowSpec(f, 200, 46), seq: i }));
  });
  w.every(10, { startMs: 1000, untilMs: 20_000 }, (i) => {
    for (let f = 50; f < 54; f++) w.a.sendTun(makePacket({ ...flowSpec(f, 1000, 10), seq: i }));
  });
  w.impairAt(6000, 'mpls', { lossRatio: 0.05 }, 'ab');
  let seen = 0;
  let shared = 0;
  if (noteDrops) {
    w.every(100, { startMs: 100, untilMs: 20_000 }, () => {
      const lost = w.linkStats('mpls').ab.lost;
      shared += w.b.edge.noteLinkRxDropped(w.nowMs, 0, lost - seen);
      seen = lost;
    });
  }
  w.runFor(20_000);
  return { w, shared, lost: w.linkStats('mpls').ab.lost };
}

describe(`local receive drops (seed ${SEED})`, () => {
  it("5% of mpls's datagrams lost in b's own socket: mpls stays UP with voice on it, and a sees no loss", () => {
    const { w, shared, lost } = run(true);
    const moved = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.startsWith('voice: mpls ->'));
    const snap = w.a.edge.snapshot(w.nowMs);
    const mpls = snap.links.find((l) => l.name === 'mpls')!;
    console.log(`seed ${SEED}: ${lost} lost, ${shared} shared out as local drops; a's mpls state ${mpls.state}, tx loss ${(100 * (mpls.txLossRatio ?? 0)).toFixed(2)}%`);
    expect(lost).toBeGreaterThan(100);
    // Every drop is shared out except in a 100 ms interval where nothing of the path arrived
    // (nothing to share by) and in the last 100 ms (not noted yet); rounding up may add a few.
    expect(shared).toBeGreaterThanOrEqual(lost - 10);
    expect(shared).toBeLessThanOrEqual(lost + 2 * 200);
    expect(moved, `voice moved: ${moved?.message}`).toBeUndefined();
    expect(mpls.state).toBe('up');
    expect(snap.classes.find((c) => c.name === 'voice')!.activeLinks).toEqual(['mpls']);
    expect(mpls.txLossRatio ?? 0).toBeLessThan(0.005);
  });

  it('the same loss not noted is the path\'s: voice leaves mpls (the control)', () => {
    const { w } = run(false);
    const moved = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.startsWith('voice: mpls ->'));
    expect(moved).toBeDefined();
  });
});

describe('PathStats.onLocalDrops', () => {
  it('counts them as received in the rx loss and in the report; nothing before the first datagram', () => {
    const s = new PathStats();
    s.onLocalDrops(0, 5);
    expect(s.rxReceived).toBe(0);
    // 1,000 sequence numbers over 1 s, every 10th missing.
    for (let q = 0; q < 1000; q++) if (q % 10 !== 9) s.onReceiveSeq(q, q);
    expect(s.rxLossRatio(1100, 1000)).toBeCloseTo(0.1, 2);
    s.onLocalDrops(1000, 100);
    expect(s.rxLossRatio(1200, 1200)).toBeLessThan(0.01);
    const r = s.report(1500);
    expect(r.received).toBe(1000);
    expect(r.highestSeq).toBe(998);
  });
});

describe('shareLocalDrops (a hub: many peers on one link socket)', () => {
  const path = (linkId: number): PathRuntime => ({ linkId, stats: new PathStats() }) as unknown as PathRuntime;
  const receive = (p: PathRuntime, from: number, n: number): void => {
    for (let q = from; q < from + n; q++) p.stats.onReceiveSeq(q, q);
  };

  it('in proportion to what each path of that link received since the last call; other links untouched', () => {
    const a0 = path(0);
    const a1 = path(1);
    const b0 = path(0);
    const peers = new Map([
      ['a', { paths: [a0, a1] }],
      ['b', { paths: [b0] }],
    ]);
    receive(a0, 0, 300);
    receive(a1, 0, 50);
    receive(b0, 0, 100);
    expect(shareLocalDrops(400, peers, 0, 40)).toBe(40);
    expect(a0.stats.rxReceived).toBe(330);
    expect(b0.stats.rxReceived).toBe(110);
    expect(a1.stats.rxReceived).toBe(50);
    // Next window: only b's path received; a call with 0 in between moved the baselines on.
    receive(a0, 300, 20);
    expect(shareLocalDrops(500, peers, 0, 0)).toBe(0);
    receive(b0, 100, 10);
    expect(shareLocalDrops(600, peers, 0, 7)).toBe(7);
    expect(a0.stats.rxReceived).toBe(350);
    expect(b0.stats.rxReceived).toBe(127);
    // Nothing received since: nothing to share by.
    expect(shareLocalDrops(700, peers, 0, 5)).toBe(0);
  });
});
