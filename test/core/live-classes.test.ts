/**
 * Live class changes (Edge.setClassPolicies, what a config reload calls): SLA, strategy and FEC
 * take effect without a restart, without losing packets, and a bad change changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, type ClassPolicy } from '../../src/core/steer/classes.ts';

const EF = 46;
const AF11 = 10;

function policiesWith(change: Partial<Record<string, Partial<ClassPolicy>>>): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => ({ ...p, ...(change[p.name] ?? {}), sla: { ...p.sla, ...(change[p.name]?.sla ?? {}) } }));
}

function world(): { w: World; sent: () => number } {
  const w = new World({ seed: 77, links: [{ name: 'mpls', delayMs: 20 }, { name: 'inet', delayMs: 30 }] });
  let sent = 0;
  w.every(20, { startMs: 500, untilMs: 20_000 }, (i) => {
    for (const f of [1, 2]) w.a.sendTun(makePacket({ ...flowSpec(f, 200, EF), seq: i }));
    for (const f of [10, 11]) w.a.sendTun(makePacket({ ...flowSpec(f, 1000, AF11), seq: i }));
    sent += 4;
  });
  return { w, sent: () => sent };
}

const voiceLinks = (w: World): string[] => w.a.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'voice')!.activeLinks;

describe('live class changes', () => {
  it('an SLA no path meets leaves voice on the least bad; a new strategy applies at once', () => {
    const { w, sent } = world();
    w.run(5000);
    expect(voiceLinks(w)).toEqual(['mpls']); // 40 ms RTT, within voice's 300 ms
    const changed = w.a.edge.setClassPolicies(w.nowMs, policiesWith({}));
    expect(changed).toEqual([]); // same policies: nothing to do
    w.a.edge.setClassPolicies(w.nowMs, policiesWith({ voice: { sla: { lossRatio: 0.01, rttMs: 35, jitterMs: 30 } } }));
    const at = w.nowMs;
    w.run(at + 300);
    // mpls (40 ms) breaks the new 35 ms SLA; inet (60 ms) too: voice stays on the least bad.
    expect(voiceLinks(w)).toEqual(['mpls']);
    w.a.edge.setClassPolicies(w.nowMs, policiesWith({ voice: { sla: { lossRatio: 0.01, rttMs: 300, jitterMs: 30 }, strategy: 'duplicate' } }));
    expect(voiceLinks(w).sort()).toEqual(['inet', 'mpls']);
    w.drain(w.a); // the Edge's events reach the site's record when the world drains it
    const moved = w.a.events.find((e) => e.kind === 'flowMoved' && e.message.includes('voice strategy now duplicate'));
    expect(moved, 'the re-steer is an event with its reason').toBeDefined();
    expect(w.a.events.some((e) => e.kind === 'config' && e.message.includes('voice: strategy'))).toBe(true);
    w.run(25_000);
    expect(w.b.deliveredCount).toBe(sent());
  });

  it('a tighter RTT SLA that one path meets moves voice to it', () => {
    const { w } = world();
    w.run(3000);
    w.impair('mpls', { delayMs: 60 }); // mpls now 120 ms RTT, inet 60 ms
    w.run(4000);
    // voice is sticky: it stays on mpls, which is within the default 300 ms SLA.
    expect(voiceLinks(w)).toEqual(['mpls']);
    w.a.edge.setClassPolicies(w.nowMs, policiesWith({ voice: { sla: { lossRatio: 0.01, rttMs: 80, jitterMs: 30 } } }));
    w.run(w.nowMs + 150);
    expect(voiceLinks(w)).toEqual(['inet']);
    expect(w.a.events.some((e) => e.message.startsWith('voice: mpls -> inet (mpls rtt'))).toBe(true);
  });

  it('FEC switched on for bulk live protects it from then on; group ids continue; nothing lost', () => {
    const { w, sent } = world();
    w.run(4000);
    const bulk = (): { fecProtectedPackets?: number; fecK?: number } => w.a.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'bulk')!;
    expect(bulk().fecK).toBeUndefined(); // off by default
    const changed = w.a.edge.setClassPolicies(w.nowMs, DEFAULT_POLICIES, { bulk: { enabled: true, k: 8, minM: 2, maxM: 2, maxOverheadRatio: 0.25 } });
    expect(changed).toEqual(['bulk: fec']);
    w.run(8000);
    expect(bulk().fecK).toBe(8);
    expect(bulk().fecProtectedPackets).toBeGreaterThan(300);
    const rx = w.b.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'bulk')!;
    expect(rx.fecMalformed ?? 0).toBe(0);
    // And changed again (k 8 -> 4): the new encoder's groups must not collide with the old ones.
    w.a.edge.setClassPolicies(w.nowMs, DEFAULT_POLICIES, { bulk: { enabled: true, k: 4, minM: 1, maxM: 1 } });
    const protectedBefore = bulk().fecProtectedPackets!;
    w.run(25_000);
    expect(bulk().fecProtectedPackets!).toBeGreaterThan(protectedBefore); // counters stay monotonic
    expect(w.b.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'bulk')!.fecMalformed ?? 0).toBe(0);
    expect(w.b.deliveredCount).toBe(sent());
  });

  it('a bad FEC change is refused with the class and field named, and changes nothing', () => {
    const { w } = world();
    w.run(2000);
    expect(() => w.a.edge.setClassPolicies(w.nowMs, policiesWith({ voice: { strategy: 'duplicate' } }), { bulk: { enabled: true, k: 16, minM: 8, maxM: 8 } })).toThrow(
      /class bulk: fec\.maxOverheadRatio=0\.25 is below minM\/k/,
    );
    expect(voiceLinks(w)).toEqual(['mpls']); // the strategy change in the same call did not apply
  });
});
