/**
 * Issue 14, the findings that live in the core, in virtual time:
 *  1. duplicate suppression belongs to the peer's epoch: after the peer restarts (and numbers its
 *     duplicated packets from 1 again), its network-control traffic is delivered, not suppressed;
 *  7. inner DSCP is not trusted without limit: CS6 over its cap, or any marking on an untrusted
 *     LAN, is classified (and re-marked) best effort.
 * Finding 10 (flow table keyed hash, LRU) has its unit tests in test/core/steer/flow-table.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';

const CS6 = 48;

describe('hardening in the core (issue 14)', () => {
  it('finding 1: after a peer restart its duplicated (CS6) packets are delivered, not taken for old copies', () => {
    const w = new World({ seed: 21, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
    // Before the restart: 3000 CS6 packets from a (duplicated over both links), numbered 1..3000.
    w.every(10, { count: 3000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 200, CS6), seq: i })));
    w.runFor(31_000);
    const before = w.b.delivered.filter((d) => readPacketTag(d.bytes)?.flowId === 1).length;
    expect(before).toBe(3000);
    w.restart('a');
    w.runFor(2000); // new session and probes with the new epoch
    const start = w.b.delivered.length;
    // After: 500 more from the restarted a, whose duplicate numbering starts at 1 again.
    w.every(10, { count: 500 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(2, 200, CS6), seq: i })));
    w.runFor(7000);
    const after = w.b.delivered.slice(start).filter((d) => readPacketTag(d.bytes)?.flowId === 2);
    const seqs = new Set(after.map((d) => readPacketTag(d.bytes)!.seq));
    console.log(`after the restart: ${seqs.size} of 500 CS6 packets delivered (${after.length} deliveries)`);
    expect(seqs.size).toBe(500);
    expect(after.length).toBe(500); // and none twice
  }, 60_000);

  it('finding 7: CS6 from the LAN over its 2 Mbit/s cap is classified best effort; untrusted LAN marking is re-marked', () => {
    const w = new World({ seed: 22, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
    w.runFor(500);
    // 8 Mbit/s of CS6 (1000-byte packets, 1000 pps) for 5 s: 4x the network-control cap.
    w.every(1, { count: 5000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(3, 1000, CS6), seq: i })));
    w.runFor(6000);
    const s = w.a.edge.snapshot(w.nowMs);
    const control = s.classes.find((c) => c.name === 'control')!;
    const best = s.classes.find((c) => c.name === 'default')!;
    const controlMbit = (control.txBytes * 8) / 5 / 1e6;
    console.log(`CS6 flood 8 Mbit/s: ${controlMbit.toFixed(2)} Mbit/s kept network control, ${best.txPackets} packets went best effort`);
    expect(controlMbit).toBeLessThan(2.5);
    expect(best.txPackets).toBeGreaterThan(3000);
    // What was re-marked arrives re-marked (DSCP 0), as a CPE router's LAN edge would do.
    const arrived = w.b.delivered.filter((d) => readPacketTag(d.bytes)?.flowId === 3);
    expect(arrived.filter((d) => d.bytes[1]! >> 2 === 0).length).toBeGreaterThan(3000);

    // remarkUntrusted: every marking from the LAN becomes best effort.
    const u = new World({ seed: 23, links: [{ name: 'mpls', delayMs: 10 }], edge: { dscpTrust: { remarkUntrusted: true, classRateCapsBps: [] } } });
    u.runFor(500);
    for (let i = 0; i < 50; i++) u.a.sendTun(makePacket({ ...flowSpec(4, 200, 46), seq: i }));
    u.runFor(1000);
    const us = u.a.edge.snapshot(u.nowMs);
    expect(us.classes.find((c) => c.name === 'voice')!.txPackets).toBe(0);
    expect(us.classes.find((c) => c.name === 'default')!.txPackets).toBe(50);
  }, 60_000);
});
