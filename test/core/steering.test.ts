import { describe, expect, it } from 'vitest';
import { World, type WorldLinkConfig } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, type ClassPolicy } from '../../src/core/steer/classes.ts';

const SEED = Number(process.env.BRAID_SEED ?? 4242);
const EF = 46;
const AF11 = 10;

/** Tracks per-flow arrivals at a site: gaps, losses, order, duplicates. */
function track(w: World, site: 'a' | 'b') {
  const last = new Map<number, { seq: number; atMs: number }>();
  const seen = new Set<string>();
  let maxGapMs = 0;
  let maxGapAtMs = 0;
  let outOfOrder = 0;
  let duplicates = 0;
  let count = 0;
  w[site].onDeliver = (p, at) => {
    const tag = readPacketTag(p);
    if (!tag) return;
    count++;
    const key = `${tag.flowId}/${tag.seq}`;
    if (seen.has(key)) duplicates++;
    seen.add(key);
    const prev = last.get(tag.flowId);
    if (prev) {
      if (tag.seq < prev.seq) outOfOrder++;
      if (at - prev.atMs > maxGapMs) {
        maxGapMs = at - prev.atMs;
        maxGapAtMs = at;
      }
    }
    if (!prev || tag.seq > prev.seq) last.set(tag.flowId, { seq: tag.seq, atMs: at });
  };
  return {
    get maxGapMs() {
      return maxGapMs;
    },
    get maxGapAtMs() {
      return maxGapAtMs;
    },
    get outOfOrder() {
      return outOfOrder;
    },
    get duplicates() {
      return duplicates;
    },
    get count() {
      return count;
    },
    has: (flow: number, seq: number) => seen.has(`${flow}/${seq}`),
  };
}

/** `flows` voice-like streams (200 B at 50 pps, EF) from a to b. */
function voice(w: World, flows: number[], startMs: number, untilMs: number, dscp = EF): { sent: number } {
  const out = { sent: 0 };
  w.every(20, { startMs, untilMs }, (i) => {
    for (const f of flows) {
      w.a.sendTun(makePacket({ ...flowSpec(f, 200, dscp), seq: i }));
      out.sent++;
    }
  });
  return out;
}

function policiesWith(change: Partial<Record<string, Partial<ClassPolicy>>>): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => ({ ...p, ...(change[p.name] ?? {}) }));
}

const THREE: WorldLinkConfig[] = [
  { name: 'mpls', delayMs: 10 },
  { name: 'inet', delayMs: 20, jitterMs: 2 },
  { name: 'lte', delayMs: 35, jitterMs: 8, costTier: 'backup' },
];

describe(`path monitor and steering (seed ${SEED})`, () => {
  it('blackout: DOWN within 300 ms + 1 RTT, voice moved by then, longest voice gap < 400 ms', () => {
    const w = new World({ seed: SEED, links: THREE });
    const rx = track(w, 'b');
    voice(w, [1, 2, 3, 4], 1000, 12_000);
    const CUT_MS = 6000;
    w.impairAt(CUT_MS, 'mpls', { up: false });
    w.runFor(13_000);
    const down = w.a.events.find((e) => e.kind === 'linkDown' && e.link === 'mpls');
    const rttMs = 2 * 10;
    expect(down, `seed ${SEED}: mpls never DOWN`).toBeDefined();
    const detectMs = down!.atMs - CUT_MS;
    const move = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.startsWith('voice: mpls ->'));
    console.log(`seed ${SEED} blackout: detection ${detectMs.toFixed(1)} ms (bound ${300 + rttMs}), move "${move?.message}" at +${((move?.atMs ?? NaN) - CUT_MS).toFixed(1)} ms, longest voice gap ${rx.maxGapMs.toFixed(1)} ms`);
    expect(detectMs).toBeLessThanOrEqual(300 + rttMs);
    expect(move).toBeDefined();
    expect(move!.atMs).toBeLessThanOrEqual(down!.atMs);
    expect(rx.maxGapMs).toBeLessThan(400);
    const snap = w.a.edge.snapshot(w.nowMs);
    expect(snap.classes.find((c) => c.name === 'voice')!.activeLinks).not.toContain('mpls');
  });

  it('blackout: duplicated voice loses nothing at all and no copy is delivered twice', () => {
    const w = new World({ seed: SEED, links: THREE, edge: { policies: policiesWith({ voice: { strategy: 'duplicate' } }) } });
    const rx = track(w, 'b');
    const flows = [1, 2, 3, 4];
    const sent = voice(w, flows, 1000, 12_000);
    w.impairAt(6000, 'mpls', { up: false });
    w.runFor(13_000);
    const snap = w.b.edge.snapshot(w.nowMs);
    console.log(`seed ${SEED} duplicated voice: sent ${sent.sent}, delivered ${rx.count}, duplicates suppressed ${snap.duplicatesSuppressed}, longest gap ${rx.maxGapMs.toFixed(1)} ms`);
    expect(rx.count).toBe(sent.sent);
    expect(rx.duplicates).toBe(0);
    expect(snap.duplicatesSuppressed).toBeGreaterThan(sent.sent * 0.3);
  });

  it('brownout: 5% loss on the voice path moves voice within 2 s, bulk stays, the event names metric and threshold', () => {
    const w = new World({ seed: SEED, links: THREE });
    voice(w, [1, 2, 3], 1000, 20_000);
    // Bulk: AF11, 1000 B at 100 pps, 4 flows.
    w.every(10, { startMs: 1000, untilMs: 20_000 }, (i) => {
      for (let f = 50; f < 54; f++) w.a.sendTun(makePacket({ ...flowSpec(f, 1000, AF11), seq: i }));
    });
    w.runFor(5000);
    const before = w.a.edge.snapshot(w.nowMs);
    const voiceLinks = before.classes.find((c) => c.name === 'voice')!.activeLinks;
    expect(voiceLinks).toEqual(['mpls']);
    const bulkBefore = before.classes.find((c) => c.name === 'bulk')!;
    const BROWN_MS = 6000;
    w.impairAt(BROWN_MS, 'mpls', { lossRatio: 0.05 }, 'ab');
    w.runFor(15_000);
    const move = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.startsWith('voice: mpls ->'));
    expect(move, `seed ${SEED}: voice never moved`).toBeDefined();
    console.log(`seed ${SEED} brownout: "${move!.message}" after ${(move!.atMs - BROWN_MS).toFixed(0)} ms`);
    expect(move!.atMs - BROWN_MS).toBeLessThanOrEqual(2000);
    expect(move!.message).toMatch(/mpls loss \d+(\.\d)?% > 1\.0%/);
    const after = w.a.edge.snapshot(w.nowMs);
    const bulkAfter = after.classes.find((c) => c.name === 'bulk')!;
    expect(bulkAfter.moves).toBe(bulkBefore.moves);
    expect(after.classes.find((c) => c.name === 'voice')!.activeLinks).not.toContain('mpls');
  });

  it('accuracy: 10,000 probes, 5% loss one way only: that direction within 0.5 pp, the other under 0.1%; RTT and jitter match', () => {
    const DELAY_MS = 20;
    const JITTER_MS = 3;
    const w = new World({
      seed: SEED,
      recordDeliveries: false,
      links: [{ name: 'inet', delayMs: DELAY_MS, jitterMs: JITTER_MS, ab: { lossRatio: 0.05 } }],
      // The estimators' accuracy over 10,000 probes each way: no data flows, so idle probing
      // (one side, once a second) is off here.
      edge: { idleProbeAfterMs: 0 },
    });
    // The RFC 3550 estimator is an EWMA with gain 1/16: one reading is noisy, so average one per second.
    const jitterSamples = { a: [] as number[], b: [] as number[] };
    w.every(1000, { startMs: 5000, untilMs: 10_000 * 100 }, () => {
      jitterSamples.a.push(w.a.edge.snapshot(w.nowMs).links[0]!.jitterMs);
      jitterSamples.b.push(w.b.edge.snapshot(w.nowMs).links[0]!.jitterMs);
    });
    w.runFor(10_000 * 100 + 50); // 10,000 probes at 100 ms
    const a = w.a.edge.snapshot(w.nowMs).links[0]!;
    const b = w.b.edge.snapshot(w.nowMs).links[0]!;
    const mean = (xs: number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length;
    const jitterA = mean(jitterSamples.a);
    const jitterB = mean(jitterSamples.b);
    // RFC 3550 jitter of uniform(-J, J) delay noise converges to E|U1 - U2| = 2J/3.
    const expectedJitterMs = (2 * JITTER_MS) / 3;
    console.log(
      `seed ${SEED} accuracy: a->b loss seen by a (reports) ${(a.txLossTotalRatio! * 100).toFixed(2)}%, by b ${(b.rxLossTotalRatio! * 100).toFixed(2)}%; ` +
        `b->a ${(a.rxLossTotalRatio! * 100).toFixed(3)}%; rtt p50 ${a.rttP50Ms!.toFixed(2)} ms (emulated ${2 * DELAY_MS}); jitter a->b ${jitterB.toFixed(2)} ms, b->a ${jitterA.toFixed(2)} ms (expected ${expectedJitterMs.toFixed(2)})`,
    );
    expect(Math.abs(a.txLossTotalRatio! - 0.05)).toBeLessThan(0.005);
    expect(Math.abs(b.rxLossTotalRatio! - 0.05)).toBeLessThan(0.005);
    expect(a.rxLossTotalRatio!).toBeLessThan(0.001);
    expect(b.txLossTotalRatio!).toBeLessThan(0.001);
    expect(Math.abs(a.rttP50Ms! - 2 * DELAY_MS)).toBeLessThan(1);
    expect(Math.abs(a.rttMs! - 2 * DELAY_MS)).toBeLessThan(1);
    expect(Math.abs(jitterB - expectedJitterMs)).toBeLessThan(1);
    expect(Math.abs(jitterA - expectedJitterMs)).toBeLessThan(1);
  });

  it('jitter is judged in the direction we send: a storm on mpls a->b moves a\'s voice, not b\'s', () => {
    const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20, jitterMs: 1 }] });
    w.every(20, { startMs: 500, untilMs: 12_000 }, (i) => {
      for (const f of [1, 2]) w.a.sendTun(makePacket({ ...flowSpec(f, 200, EF), seq: i }));
      for (const f of [3, 4]) w.b.sendTun(makePacket({ ...flowSpec(f, 200, EF), seq: i }));
    });
    // Only what a sends on mpls gets 80 +/- 70 ms; b -> a stays clean.
    w.impairAt(4000, 'mpls', { delayMs: 80, jitterMs: 70 }, 'ab');
    w.run(10_000);
    const voiceLinks = (site: 'a' | 'b'): string[] => w[site].edge.snapshot(w.nowMs).classes.find((c) => c.name === 'voice')!.activeLinks;
    const aMpls = w.a.edge.snapshot(w.nowMs).links.find((l) => l.name === 'mpls')!;
    const bMpls = w.b.edge.snapshot(w.nowMs).links.find((l) => l.name === 'mpls')!;
    console.log(`seed ${SEED} one-way jitter: a sends on ${voiceLinks('a')} (a's tx jitter ${aMpls.txJitterMs?.toFixed(1)} ms, rx ${aMpls.jitterMs.toFixed(1)}), b sends on ${voiceLinks('b')} (b's tx jitter ${bMpls.txJitterMs?.toFixed(1)} ms, rx ${bMpls.jitterMs.toFixed(1)})`);
    expect(voiceLinks('a')).toEqual(['inet']);
    expect(voiceLinks('b')).toEqual(['mpls']);
    // RFC 3550's estimator of U(-70, 70) ms delay swings around ~47 ms (seeds 1-3: 38-60; seed
    // 4242 reads 25 since PMTU probes shifted the random draws): far above the clean direction's.
    expect(aMpls.txJitterMs!).toBeGreaterThan(20);
    expect(bMpls.txJitterMs!).toBeLessThan(5);
  });

  it('hysteresis: two paths whose RTTs cross by 2 ms every second cause no flow moves', () => {
    const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 20 }, { name: 'inet', delayMs: 21 }] });
    voice(w, [1, 2, 3, 4, 5, 6], 500, 60_000);
    w.every(20, { startMs: 500, untilMs: 60_000 }, (i) => {
      for (let f = 50; f < 56; f++) w.a.sendTun(makePacket({ ...flowSpec(f, 800, 0), seq: i }));
    });
    w.every(1000, { startMs: 2000, untilMs: 60_000 }, (i) => {
      const up = i % 2 === 0;
      w.impair('mpls', { delayMs: up ? 21 : 20 });
      w.impair('inet', { delayMs: up ? 20 : 21 });
    });
    w.runFor(61_000);
    const snap = w.a.edge.snapshot(w.nowMs);
    console.log(`seed ${SEED} hysteresis: ${snap.flows} flows, ${snap.flowMoves} moves in 60 s`);
    expect(snap.flowMoves).toBe(0);
  });

  it('recovery: a path that comes back is used only after its hold-down; a link flapping every 2 s is damped', () => {
    const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 40 }] });
    voice(w, [1, 2], 500, 120_000);
    w.impairAt(5000, 'mpls', { up: false });
    const BACK_MS = 8000;
    w.impairAt(BACK_MS, 'mpls', { up: true });
    let mplsDataAtBack = 0;
    w.at(BACK_MS, () => (mplsDataAtBack = w.a.edge.snapshot(w.nowMs).links[0]!.txDataPackets));
    let mplsDataBeforeHoldDown = 0;
    w.at(BACK_MS + 850, () => (mplsDataBeforeHoldDown = w.a.edge.snapshot(w.nowMs).links[0]!.txDataPackets));
    w.run(15_000);
    const up = w.a.events.find((e) => e.kind === 'linkUp' && e.link === 'mpls' && e.atMs > BACK_MS);
    expect(up, 'mpls never came back').toBeDefined();
    console.log(`seed ${SEED} recovery: mpls up ${(up!.atMs - BACK_MS).toFixed(0)} ms after it was restored ("${up!.message}")`);
    expect(up!.atMs - BACK_MS).toBeGreaterThanOrEqual(900);
    expect(mplsDataBeforeHoldDown).toBe(mplsDataAtBack);
    const back = w.a.events.find((e) => e.kind === 'flowMoved' && e.atMs > BACK_MS && e.message.includes('-> mpls'));
    expect(back, 'voice never returned to the better path').toBeDefined();

  });

  it('flapping: a link that toggles every 2 s for 60 s is damped (moves counted with and without damping)', () => {
    const run = (flapDamping: boolean): { moves: number; falls: number; damped: string | undefined } => {
      const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 40 }], edge: { flapDamping } });
      voice(w, [1, 2], 500, 80_000);
      w.runFor(5000);
      const movesBefore = w.a.edge.snapshot(w.nowMs).flowMoves;
      w.every(2000, { startMs: 5000, untilMs: 65_000 }, (i) => w.impair('mpls', { up: i % 2 === 1 }));
      w.at(65_000, () => w.impair('mpls', { up: true }));
      w.run(80_000);
      const snap = w.a.edge.snapshot(w.nowMs);
      return { moves: snap.flowMoves - movesBefore, falls: snap.links[0]!.flaps, damped: w.a.events.find((e) => e.message.includes('damped'))?.message };
    };
    const damped = run(true);
    const undamped = run(false);
    console.log(`seed ${SEED} flapping 60 s: damped ${damped.moves} flow moves (${damped.falls} falls; "${damped.damped}"), undamped ${undamped.moves} moves (${undamped.falls} falls)`);
    expect(damped.damped).toBeDefined();
    expect(damped.moves).toBeLessThanOrEqual(undamped.moves / 2);
  });

  it('no TCP reordering: load-balanced flows over 20 ms and 80 ms RTT paths arrive in order', () => {
    const w = new World({ seed: SEED, links: [{ name: 'fast', delayMs: 10 }, { name: 'slow', delayMs: 40 }] });
    const rx = track(w, 'b');
    let sent = 0;
    w.every(5, { startMs: 500, untilMs: 20_000 }, (i) => {
      for (let f = 0; f < 16; f++) {
        w.a.sendTun(makePacket({ ...flowSpec(f, 1200, 0), protocol: 6, seq: i }));
        sent++;
      }
    });
    w.runFor(21_000);
    const snap = w.a.edge.snapshot(w.nowMs);
    console.log(`seed ${SEED} reorder: ${sent} packets in 16 TCP-like flows; per link flows ${snap.links.map((l) => `${l.name}=${l.flows}`).join(' ')}; out of order ${rx.outOfOrder}`);
    expect(snap.links.every((l) => l.flows > 0)).toBe(true); // balanced over both
    expect(rx.outOfOrder).toBe(0);
    expect(rx.count).toBe(sent);
  });

  it('operator drain moves flows off the link within one probe interval and tells the peer', () => {
    const w = new World({ seed: SEED, links: THREE });
    voice(w, [1, 2, 3], 500, 6000);
    w.runFor(2000);
    w.a.edge.setLinkAdmin(w.nowMs, 0, true);
    w.drain(w.a);
    const moved = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.includes('mpls drained'));
    expect(moved).toBeDefined();
    expect(moved!.atMs - 2000).toBeLessThanOrEqual(100);
    w.runFor(200);
    expect(w.b.edge.snapshot(w.nowMs).links[0]!.state).toBe('drained');
  });
});
