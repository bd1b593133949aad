import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';

const SEED = Number(process.env.BRAID_SEED ?? 20261127);

describe(`World: two edges over three links (seed ${SEED})`, () => {
  it('exchanges 10,000 packets over 3 links with 1% loss on one: byte-identical, no duplicates, every link used', () => {
    const w = new World({
      seed: SEED,
      links: [
        { name: 'mpls', delayMs: 12 },
        { name: 'inet', delayMs: 25, jitterMs: 3, lossRatio: 0.01 },
        { name: 'lte', delayMs: 45, jitterMs: 10 },
      ],
    });
    // 10,000 packets in each direction, from 64 flows, sizes 60..1400 bytes.
    const sent = { a: new Map<string, Uint8Array>(), b: new Map<string, Uint8Array>() };
    const FLOWS = 64;
    const PER_SIDE = 10_000;
    w.every(1, { startMs: 500, count: PER_SIDE }, (i) => {
      for (const side of ['a', 'b'] as const) {
        const flow = (i * 7 + (side === 'a' ? 0 : 1000)) % FLOWS + (side === 'a' ? 0 : 1000);
        const p = makePacket({ ...flowSpec(flow, 60 + ((i * 137) % 1341)), seq: i });
        sent[side].set(`${flow}/${i}`, p);
        w[side].sendTun(p);
      }
    });
    w.runFor(500 + PER_SIDE + 2000);

    for (const [site, from] of [[w.b, 'a'], [w.a, 'b']] as const) {
      const seen = new Set<string>();
      for (const d of site.delivered) {
        const tag = readPacketTag(d.bytes);
        expect(tag, `seed ${SEED}: delivered a packet we never made`).toBeDefined();
        const key = `${tag!.flowId}/${tag!.seq}`;
        expect(seen.has(key), `seed ${SEED}: ${key} delivered twice`).toBe(false);
        seen.add(key);
        const original = sent[from].get(key);
        expect(original, `seed ${SEED}: ${key} not sent`).toBeDefined();
        expect(Buffer.from(d.bytes).equals(Buffer.from(original!)), `seed ${SEED}: ${key} corrupted`).toBe(true);
      }
      // Only the 1% lossy link loses anything: roughly a third of 1% at most.
      expect(seen.size).toBeGreaterThan(PER_SIDE * 0.99);
    }
    for (const name of w.linkNames) {
      const s = w.linkStats(name);
      const aSnap = w.a.edge.snapshot(w.nowMs).links.find((l) => l.name === name)!;
      console.log(`seed ${SEED} ${name}: a->b sent ${s.ab.sent} lost ${s.ab.lost}; data packets on link from a: ${aSnap.txDataPackets}`);
      expect(aSnap.txDataPackets, `${name} carried no data`).toBeGreaterThan(500);
    }
    const drops = w.b.edge.snapshot(w.nowMs).drops;
    expect(Object.values(drops).reduce((x, y) => x + y, 0)).toBe(0);
  });

  it('a cut link stops being used within about a second and flows move to the others', () => {
    const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }, { name: 'lte', delayMs: 40 }] });
    const arrivals: number[] = [];
    w.b.onDeliver = (_p, at) => arrivals.push(at);
    w.every(10, { startMs: 100, count: 1000 }, (i) => {
      for (let f = 0; f < 12; f++) w.a.sendTun(makePacket({ ...flowSpec(f, 200), seq: i }));
    });
    w.impairAt(3000, 'mpls', { up: false });
    w.runFor(12_000);
    const down = w.a.events.find((e) => e.kind === 'linkDown' && e.link === 'mpls');
    expect(down, 'mpls never declared down').toBeDefined();
    expect(down!.atMs - 3000).toBeLessThanOrEqual(1100 + 100);
    // After the move, every packet sent gets through.
    const sentAfter = 12 * (1000 - Math.ceil((5000 - 100) / 10));
    expect(arrivals.filter((t) => t > 5000).length).toBeGreaterThanOrEqual(sentAfter - 12);
  });

  it('is deterministic by seed', () => {
    const run = (seed: number): string => {
      const w = new World({ seed, links: [{ name: 'x', delayMs: 5, jitterMs: 4, lossRatio: 0.1 }, { name: 'y', delayMs: 9 }] });
      w.every(3, { count: 300 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(i % 5, 100), seq: i })));
      w.runFor(3000);
      return w.b.delivered.map((d) => `${d.atMs.toFixed(3)}:${readPacketTag(d.bytes)!.seq}`).join(',');
    };
    expect(run(1)).toBe(run(1));
    expect(run(1)).not.toBe(run(2));
  });
});
