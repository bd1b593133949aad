/**
 * Idle probing (peer-idle.ts, issue 12's hub CPU): a peer with no data for PEER_IDLE_AFTER_MS
 * probes once a second, one side per path; its first data packet brings fast probing back at once,
 * and failure detection with it. Two sites in the World, one link, virtual time.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { DEFAULT_PROBE_INTERVAL_MS } from '../../src/core/pathmon/path-state.ts';
import { IDLE_DEAD_AFTER_MS, IDLE_PROBE_INTERVAL_MS, PEER_IDLE_AFTER_MS } from '../../src/core/peer-idle.ts';

const SEED = Number(process.env.BRAID_SEED ?? 1212);

function datagramsPerSecond(w: World, seconds: number): number {
  const before = w.linkStats('inet');
  w.runFor(seconds * 1000);
  const after = w.linkStats('inet');
  return (after.ab.sent - before.ab.sent + after.ba.sent - before.ba.sent) / seconds;
}

const state = (w: World): string => w.a.edge.snapshot(w.nowMs).links[0]!.state;

describe(`World: idle peers probe slowly, one side per path (seed ${SEED})`, () => {
  it('idle: one probe and its reply per slow interval on the link instead of ~20 datagrams a second; traffic brings fast probing back', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 10 }] });
    w.runFor(3000);
    const busy = datagramsPerSecond(w, 5);
    // Both sides probe every 100 ms and answer: 4 datagrams per probe interval.
    expect(busy).toBeGreaterThan((4 * 1000) / DEFAULT_PROBE_INTERVAL_MS * 0.9);
    w.runFor(PEER_IDLE_AFTER_MS + 2000);
    const idle = datagramsPerSecond(w, 20);
    expect(idle).toBeGreaterThanOrEqual(((2 * 1000) / IDLE_PROBE_INTERVAL_MS) * 0.75);
    expect(idle).toBeLessThanOrEqual(((2 * 1000) / IDLE_PROBE_INTERVAL_MS) * 1.25);
    expect(state(w)).toBe('up');
    expect(w.a.edge.snapshot(w.nowMs).peers![0]!.probeIntervalMs).toBe(IDLE_PROBE_INTERVAL_MS);

    // Traffic: fast probing again within one probe interval of the first packet.
    w.every(20, { count: 250 }, () => w.a.sendTun(makePacket({ ...flowSpec(1, 200), protocol: 17, seq: 0 })));
    w.runFor(200);
    const active = datagramsPerSecond(w, 4);
    // 50 data/s + both sides' probes (answered by replies, or by each other on a clean path: peer-echo.ts).
    expect(active).toBeGreaterThan(40 + (2 * 1000) / DEFAULT_PROBE_INTERVAL_MS * 0.9);
    expect(w.a.edge.snapshot(w.nowMs).peers![0]!.probeIntervalMs).toBe(DEFAULT_PROBE_INTERVAL_MS);
  });

  it('a link cut while idle is noticed within the idle dead time; cut while carrying traffic, within the fast one', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 10 }] });
    w.runFor(PEER_IDLE_AFTER_MS + 5000);
    w.impair('inet', { up: false });
    const cutAt = w.nowMs;
    while (state(w) !== 'down' && w.nowMs - cutAt < 10_000) w.runFor(50);
    const idleDetectMs = w.nowMs - cutAt;
    expect(state(w)).toBe('down');
    expect(idleDetectMs).toBeLessThanOrEqual(IDLE_DEAD_AFTER_MS + IDLE_PROBE_INTERVAL_MS + 100);
    expect(idleDetectMs).toBeGreaterThan(IDLE_PROBE_INTERVAL_MS); // it was idle: not the 300 ms fast detection

    // Restore; the hold-down is earned by replies alone when the other side stays silent.
    w.impair('inet', { up: true });
    const upAt = w.nowMs;
    while (state(w) !== 'up' && w.nowMs - upAt < 60_000) w.runFor(100);
    expect(state(w)).toBe('up');

    // Now traffic, and a cut under it: the 3-probe-interval detection.
    w.every(20, { count: 500 }, () => w.a.sendTun(makePacket({ ...flowSpec(1, 200), protocol: 17, seq: 0 })));
    w.runFor(2000);
    w.impair('inet', { up: false });
    const cut2 = w.nowMs;
    while (state(w) !== 'down' && w.nowMs - cut2 < 5000) w.runFor(10);
    expect(w.nowMs - cut2).toBeLessThanOrEqual(3 * DEFAULT_PROBE_INTERVAL_MS + 50);
    console.log(`idle probing: cut noticed after ${idleDetectMs} ms idle, ${w.nowMs - cut2} ms under traffic; back up ${w.nowMs - upAt} ms after the restore`);
  });
});
