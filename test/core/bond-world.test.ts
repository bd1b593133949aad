/**
 * Bonding in the World (issue 17 acceptance): one bonded flow over paths of 20 and 80 ms RTT with
 * 1% loss on one is delivered in order to the TUN, uses both paths, and the resequencing buffer
 * never holds a packet longer than its bound; a property over random path delays and losses.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { World, type WorldLinkConfig } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, type ClassPolicy } from '../../src/core/steer/classes.ts';
import { outOfOrder } from './order.ts';

const SEED = Number(process.env.BRAID_SEED ?? 20261206);
const DEFAULT_CLASS = 5;

function bondPolicies(maxDelayGapMs?: number): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => (p.name === 'default' ? { ...p, strategy: 'bond' as const, ...(maxDelayGapMs !== undefined ? { bondMaxDelayGapMs: maxDelayGapMs } : {}) } : p));
}

interface Run {
  seqs: number[];
  holdMaxMs: number;
  boundMaxMs: number;
  late: number;
  timeouts: number;
  sentPerLink: number[];
  bondShares: number[];
}

/** One flow a -> b, `count` packets every `gapMs`, over `links`, with default bonded. */
function runBond(seed: number, links: WorldLinkConfig[], count: number, gapMs: number, sizeBytes = 1200): Run {
  const w = new World({ seed, links, edge: { policies: bondPolicies() } });
  w.every(gapMs, { startMs: 2000, count }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, sizeBytes), seq: i })));
  w.runFor(2000 + count * gapMs + 3000);
  const seqs = w.b.delivered.map((d) => readPacketTag(d.bytes)).filter((t) => t !== undefined && t.flowId === 1).map((t) => t!.seq);
  const rxPeer = [...w.b.edge.peersByName.values()][0]!;
  const txPeer = [...w.a.edge.peersByName.values()][0]!;
  const rx = rxPeer.bond.snapshot().find((c) => c.class === 'default')!;
  const flow = [...txPeer.steering.flows.values()].find((f) => f.classId === DEFAULT_CLASS && f.packets > 0);
  return {
    seqs,
    holdMaxMs: rx.reseq.holdMaxMs,
    boundMaxMs: rxPeer.bond.boundMaxMs(DEFAULT_CLASS),
    late: rx.reseq.late,
    timeouts: rx.reseq.timeouts,
    sentPerLink: w.linkNames.map((n) => w.linkStats(n).ab.sent),
    bondShares: flow?.bondPathPackets ?? [],
  };
}

describe(`World: a bonded flow (seed ${SEED})`, () => {
  for (const rated of [false, true]) {
    it(`over 20 and 80 ms RTT with 1% loss on one: in order, both paths, no hold beyond the bound (${rated ? 'capacity known: earliest arrival' : 'capacity unknown: equal shares'})`, () => {
      const bw = rated ? { bandwidthBps: 40_000_000, rateBps: 40_000_000 } : {};
      const N = 8000;
      // 1200 bytes every 0.16 ms is 60 Mbit/s: more than one 40 Mbit/s path, so earliest arrival
      // must use both (below one path's rate it rightly keeps to the near one).
      const r = runBond(SEED, [{ name: 'near', delayMs: 10, ...bw }, { name: 'far', delayMs: 40, lossRatio: 0.01, ...bw }], N, rated ? 0.16 : 0.5);
      console.log(`bond world (${rated ? 'eat' : 'wrr'}): delivered ${r.seqs.length}/${N}, out of order ${outOfOrder(r.seqs)}, late ${r.late}, timeouts ${r.timeouts}, hold max ${r.holdMaxMs.toFixed(2)} ms <= bound max ${r.boundMaxMs.toFixed(2)} ms, datagrams per link ${r.sentPerLink.join('/')}, flow shares ${r.bondShares.join('/')}`);
      expect(outOfOrder(r.seqs), `seed ${SEED}: delivered out of order`).toBe(0);
      expect(new Set(r.seqs).size).toBe(r.seqs.length);
      // Only the 1% path loses packets, and it carries at most what it was given.
      expect(r.seqs.length).toBeGreaterThan(N * 0.985);
      expect(r.holdMaxMs).toBeGreaterThan(0);
      expect(r.holdMaxMs).toBeLessThanOrEqual(r.boundMaxMs + 1e-6);
      // Both paths carry the flow.
      expect(r.bondShares.length).toBe(2);
      for (const n of r.bondShares) expect(n).toBeGreaterThan(N * 0.1);
    });
  }

  it('a path that starts losing is weighted down within a second (out of the bond at 10% loss)', () => {
    const w = new World({ seed: SEED, links: [{ name: 'l0', delayMs: 10 }, { name: 'l1', delayMs: 12 }], edge: { policies: bondPolicies() } });
    w.every(0.5, { startMs: 2000, count: 12_000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 1000), seq: i })));
    const LOSS_AT = 4000;
    w.impairAt(LOSS_AT, 'l1', { lossRatio: 0.1 });
    const shares: number[][] = [];
    const sample = (): void => {
      const f = [...[...w.a.edge.peersByName.values()][0]!.steering.flows.values()].find((x) => x.classId === DEFAULT_CLASS)!;
      shares.push([...(f.bondPathPackets ?? [])]);
    };
    for (const t of [LOSS_AT - 1000, LOSS_AT, LOSS_AT + 1000, LOSS_AT + 2000]) w.at(t, sample);
    w.runFor(LOSS_AT + 2500);
    const on = (i: number, p: number): number => (shares[i + 1]![p] ?? 0) - (shares[i]![p] ?? 0);
    console.log(`lossy path: l1 took ${on(0, 1)} of ${on(0, 0) + on(0, 1)} packets in the second before the loss, ${on(1, 1)} of ${on(1, 0) + on(1, 1)} in the first second of it, ${on(2, 1)} of ${on(2, 0) + on(2, 1)} in the second after the first one`);
    expect(on(0, 1)).toBeGreaterThan(500);
    // From one second after the loss began, the losing path takes (almost) nothing.
    expect(on(2, 1)).toBeLessThan((on(2, 0) + on(2, 1)) * 0.05);
  });

  it('FEC of a bonded class: parity spreads over the bond, repairs the lossy path, nothing twice', () => {
    const w = new World({
      seed: SEED,
      links: [{ name: 'l0', delayMs: 10 }, { name: 'l1', delayMs: 15, lossRatio: 0.03 }, { name: 'l2', delayMs: 20 }],
      edge: { policies: bondPolicies(), fec: { default: { enabled: true, k: 8, minM: 2, maxM: 2 } } },
    });
    const N = 6000;
    w.every(0.5, { startMs: 2000, count: N }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 900), seq: i })));
    w.runFor(2000 + N * 0.5 + 3000);
    const seqs = w.b.delivered.map((d) => readPacketTag(d.bytes)).filter((t) => t !== undefined && t.flowId === 1).map((t) => t!.seq);
    const a = w.a.edge.snapshot(w.nowMs);
    const b = w.b.edge.snapshot(w.nowMs);
    const parity = a.links.map((l) => l.fecParitySent ?? 0);
    const rx = b.bond!.find((c) => c.class === 'default')!;
    console.log(`bonded + FEC: delivered ${seqs.length}/${N}, parity per link ${parity.join('/')}, recovered ${b.classes[DEFAULT_CLASS]!.fecRecovered}, out of order ${outOfOrder(seqs)}, late ${rx.late}, timeouts ${rx.timeouts}`);
    expect(new Set(seqs).size).toBe(seqs.length);
    // Rebuilt packets carry no bond_seq and go out at once, possibly ahead of their order (a
    // known limit); everything else comes in order, and their originals fill the holes (no HOL wait).
    expect(outOfOrder(seqs)).toBeLessThanOrEqual(b.classes[DEFAULT_CLASS]!.fecRecovered ?? 0);
    expect(rx.timeouts).toBeLessThan(20);
    expect(parity.filter((n) => n > 50).length, 'parity on one link only').toBeGreaterThanOrEqual(2);
    // 3% loss on a third of the packets is ~1%: FEC takes it well under that.
    expect(seqs.length).toBeGreaterThan(N * 0.997);
    expect(b.classes[DEFAULT_CLASS]!.fecRecovered ?? 0).toBeGreaterThan(0);
  });

  it('property: over random path delays, jitter and losses, nothing twice, order kept but for counted late packets, holds within the bound', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.record({ delayMs: fc.integer({ min: 1, max: 60 }), lossRatio: fc.constantFrom(0, 0, 0.01, 0.03), jitterMs: fc.constantFrom(0, 0, 1, 3) }), { minLength: 2, maxLength: 3 }),
        (seed, paths) => {
          const links = paths.map((p, i) => ({ name: `l${i}`, ...p }));
          const N = 1500;
          const r = runBond(seed, links, N, 1, 800);
          const where = `seed ${seed} paths ${JSON.stringify(paths)}`;
          expect(new Set(r.seqs).size, `${where}: a packet twice`).toBe(r.seqs.length);
          expect(outOfOrder(r.seqs), `${where}: out of order beyond the late ones`).toBeLessThanOrEqual(r.late);
          expect(r.holdMaxMs, `${where}: held beyond the bound`).toBeLessThanOrEqual(r.boundMaxMs + 1e-6);
          const worstLoss = Math.max(...paths.map((p) => p.lossRatio));
          expect(r.seqs.length, `${where}: lost more than the paths did`).toBeGreaterThan(N * (1 - worstLoss) - 60);
        },
      ),
      { numRuns: 12, seed: SEED },
    );
  });
});
