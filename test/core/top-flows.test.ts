/** snapshot().topFlows: the operator's "who is using the links" list, and the tuple formatting. */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { flowTuple, formatFlowTuple, newInnerInfo, parseInner } from '../../src/core/inner.ts';

describe('top flows', () => {
  it('lists the 10 flows that sent the most, largest first, with class, path and rate', () => {
    const w = new World({ seed: 5, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
    // 14 flows; flow f sends f packets of 100 + 50 f bytes every 20 ms for 2 s. Flow 3 is voice.
    w.every(20, { startMs: 200, untilMs: 2200 }, (i) => {
      for (let f = 1; f <= 14; f++) for (let n = 0; n < f; n++) w.a.sendTun(makePacket({ ...flowSpec(f, 100 + 50 * f, f === 3 ? 46 : 0), seq: i * 100 + n }));
    });
    w.run(2500);
    const top = w.a.edge.snapshot(w.nowMs).topFlows;
    expect(top.map((t) => t.flow)).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5].map((f) => `10.1.0.2:${10000 + f} > 10.2.0.2:5000 udp`));
    const f14 = top[0]!;
    expect(f14.packets).toBe(100 * 14);
    expect(f14.bytes).toBe(100 * 14 * 800);
    expect(f14.class).toBe('default');
    expect(['mpls', 'inet']).toContain(f14.links);
    // 1400 packets of 800 B over the 1.98 s between its first and last packet: 4.53 Mbit/s.
    expect(f14.rateBps).toBeGreaterThan(4.4e6);
    expect(f14.rateBps).toBeLessThan(4.6e6);
    expect(w.b.edge.snapshot(w.nowMs).topFlows).toEqual([]); // b sent nothing
  });

  it('formats IPv4 with and without ports, and IPv6', () => {
    const info = newInnerInfo();
    const udp = makePacket({ ...flowSpec(7, 200, 46), seq: 1 });
    expect(formatFlowTuple(flowTuple(udp, parseInner(udp, info)!))).toBe('10.1.0.2:10007 > 10.2.0.2:5000 udp');
    const icmp = new Uint8Array(28);
    icmp.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7]);
    expect(formatFlowTuple(flowTuple(icmp, parseInner(icmp, info)!))).toBe('192.0.2.1 > 198.51.100.7 icmp');
    const v6 = new Uint8Array(48);
    v6[0] = 0x60;
    v6[6] = 6; // TCP
    v6.set([0x20, 0x01, 0x0d, 0xb8], 8);
    v6[23] = 1; // 2001:db8::1
    v6.set([0x20, 0x01, 0x0d, 0xb8], 24);
    v6[39] = 2; // 2001:db8::2
    v6.set([0xc3, 0x50, 0x01, 0xbb], 40); // 50000 -> 443
    expect(formatFlowTuple(flowTuple(v6, parseInner(v6, info)!))).toBe('[2001:db8::1]:50000 > [2001:db8::2]:443 tcp');
  });
});
