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

describe('World with netem-syntax links', () => {
  it('runs the userspace netem engine per direction: delay and loss as specified', () => {
    const w = new World({ seed: 9, recordDeliveries: false, links: [{ name: 'lte', abNetem: 'delay 40ms loss 10%', baNetem: 'delay 5ms' }] });
    const sentAt = new Map<number, number>();
    const delays: number[] = [];
    w.b.onDeliver = (p, at) => delays.push(at - sentAt.get(readPacketTag(p)!.seq)!);
    w.every(10, { startMs: 2000, count: 3000 }, (i) => {
      sentAt.set(i, w.nowMs);
      w.a.sendTun(makePacket({ ...flowSpec(1, 300), seq: i }));
    });
    w.runFor(40_000);
    const s = w.linkStats('lte');
    const lossRatio = s.ab.lost / s.ab.sent;
    const meanDelay = delays.reduce((x, y) => x + y, 0) / delays.length;
    console.log(`netem world: a->b loss ${(lossRatio * 100).toFixed(2)}% (spec 10%), b->a loss ${s.ba.lost}, mean one-way delay ${meanDelay.toFixed(2)} ms (spec 40)`);
    expect(lossRatio).toBeGreaterThan(0.08);
    expect(lossRatio).toBeLessThan(0.12);
    expect(s.ba.lost).toBe(0);
    expect(Math.abs(meanDelay - 40)).toBeLessThan(0.01);
    w.setNetem('lte', 'delay 5ms', 'ab');
    const before = w.linkStats('lte').ab.lost;
    w.every(10, { count: 500 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 300), seq: 10_000 + i })));
    w.runFor(6000);
    expect(w.linkStats('lte').ab.lost).toBe(before);
  });
});
