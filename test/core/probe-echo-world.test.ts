/**
 * Probe answers carried by probes (peer-echo.ts, overlay.proto Probe.echo_*): on a clean path both
 * sides probe while they carry data, and each answers the other's probe with its own next one
 * instead of a ProbeReply: 2 probe datagrams per interval instead of 4, the RTT still exact. On a
 * lossy path the replies stay (the peer's silence detection needs the second datagram). Two sites
 * in the World, one link, virtual time.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { DEFAULT_PROBE_INTERVAL_MS } from '../../src/core/pathmon/path-state.ts';
import { ECHO_LOSSLESS_WINDOW_MS } from '../../src/core/peer-echo.ts';

const SEED = Number(process.env.BRAID_SEED ?? 1313);
const ONE_WAY_MS = 10;
const DATA_PPS = 50;

/** Voice-sized packets both ways (50/s each), so that both sides probe every interval. */
function trafficBothWays(w: World, seconds: number): void {
  const count = (seconds * 1000) / 20;
  w.every(20, { count }, (k) => w.a.sendTun(makePacket({ ...flowSpec(1, 200), protocol: 17, seq: k })));
  w.every(20, { startMs: w.nowMs + 7, count }, (k) => w.b.sendTun(makePacket({ src: [10, 2, 0, 2], dst: [10, 1, 0, 2], srcPort: 5000, dstPort: 10_001, dscp: 0, sizeBytes: 200, flowId: 2, protocol: 17, seq: k })));
}

/** Datagrams per second on the link, both directions, over the next `seconds`. */
function datagramsPerSecond(w: World, seconds: number): number {
  const before = w.linkStats('inet');
  w.runFor(seconds * 1000);
  const after = w.linkStats('inet');
  return (after.ab.sent - before.ab.sent + after.ba.sent - before.ba.sent) / seconds;
}

const probesPerSecondEachWay = 1000 / DEFAULT_PROBE_INTERVAL_MS;

describe(`World: probe answers ride probes on a clean busy path (seed ${SEED})`, () => {
  it('clean: 2 probe datagrams per interval instead of 4 once the path has been lossless for the window, RTT exact at both ends', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: ONE_WAY_MS }] });
    trafficBothWays(w, 60);
    w.runFor(3000);
    // Not yet lossless for the whole window: every probe is answered at once.
    const early = datagramsPerSecond(w, 2) - 2 * DATA_PPS;
    expect(early).toBeGreaterThan(4 * probesPerSecondEachWay * 0.9);
    w.runFor(ECHO_LOSSLESS_WINDOW_MS);
    const late = datagramsPerSecond(w, 10) - 2 * DATA_PPS;
    expect(late).toBeGreaterThan(2 * probesPerSecondEachWay * 0.9);
    expect(late).toBeLessThan(2 * probesPerSecondEachWay * 1.1);
    // The answers waited up to an interval at the peer; the hold time they carry takes that out.
    for (const site of [w.a, w.b]) {
      const link = site.edge.snapshot(w.nowMs).links[0]!;
      expect(link.state).toBe('up');
      expect(link.rttP50Ms!).toBeGreaterThan(2 * ONE_WAY_MS - 1);
      expect(link.rttP99Ms!).toBeLessThan(2 * ONE_WAY_MS + 1);
    }
    console.log(`probe echoes: ${early.toFixed(0)} probe datagrams/s before the lossless window, ${late.toFixed(0)} after`);
  });

  it('a cut is still noticed within 3 probe intervals at both ends while answers ride probes', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: ONE_WAY_MS }] });
    trafficBothWays(w, 60);
    w.runFor(3000 + ECHO_LOSSLESS_WINDOW_MS + 2000);
    expect(datagramsPerSecond(w, 1) - 2 * DATA_PPS).toBeLessThan(2 * probesPerSecondEachWay * 1.1);
    w.impair('inet', { up: false });
    const cutAt = w.nowMs;
    const state = (s: typeof w.a): string => s.edge.snapshot(w.nowMs).links[0]!.state;
    while ((state(w.a) !== 'down' || state(w.b) !== 'down') && w.nowMs - cutAt < 5000) w.runFor(10);
    expect(state(w.a)).toBe('down');
    expect(state(w.b)).toBe('down');
    expect(w.nowMs - cutAt).toBeLessThanOrEqual(3 * DEFAULT_PROBE_INTERVAL_MS + 50);
  });

  it('lossy (1%): every probe is still answered at once with a ProbeReply', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: ONE_WAY_MS, lossRatio: 0.01 }] });
    trafficBothWays(w, 60);
    w.runFor(3000 + ECHO_LOSSLESS_WINDOW_MS + 2000);
    // Sent counts datagrams before the loss: 4 probe datagrams per interval, 2 x 50 data.
    const probes = datagramsPerSecond(w, 10) - 2 * DATA_PPS;
    expect(probes).toBeGreaterThan(4 * probesPerSecondEachWay * 0.9);
  });
});
