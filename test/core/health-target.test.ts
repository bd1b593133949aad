/**
 * Issue 16: an external health target per link feeds the path state. Unreachable (the ISP is
 * down behind a modem that still answers) takes the link's paths DOWN at once, with a reason that
 * names the target, and moves the flows; reachable again, the path is back by its probes.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';

describe('health target in the path state', () => {
  it('unreachable: the link goes DOWN at once with the target in the reason, voice moves; reachable: back', () => {
    const w = new World({ seed: 31, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
    w.every(20, { count: 1000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 200, 46), seq: i })));
    w.runFor(3000);
    const before = w.a.edge.snapshot(w.nowMs);
    expect(before.topFlows[0]!.links).toBe('mpls');
    const t0 = w.nowMs;
    w.a.edge.setLinkHealth(t0, 0, false, '192.0.2.1');
    const down = w.a.edge.snapshot(t0);
    expect(down.links[0]!.state).toBe('down');
    expect(down.topFlows[0]!.links).toBe('inet');
    const ev = down.recentEvents.find((e) => e.kind === 'linkDown' && e.link === 'mpls');
    expect(ev?.reason).toContain('health target 192.0.2.1 unreachable');
    expect(down.recentEvents.some((e) => e.kind === 'flowMoved' && e.from === 'mpls' && e.to === 'inet')).toBe(true);
    // Probes on mpls keep answering (the modem is up): the path stays DOWN while the target is unreachable.
    w.runFor(3000);
    expect(w.a.edge.snapshot(w.nowMs).links[0]!.state).toBe('down');
    w.a.edge.setLinkHealth(w.nowMs, 0, true, '192.0.2.1');
    expect(w.a.edge.snapshot(w.nowMs).links[0]!.state).toBe('up');
    w.runFor(2000);
    expect(w.a.edge.snapshot(w.nowMs).topFlows[0]!.links).toBe('mpls');
  });
});
