/**
 * Issue 16 (hub-and-branches seed 6): a path's cost tier is the worse of its two links'. Each side
 * announces its link's tier in its hello; a hub with two equal links must not put flows towards a
 * spoke on the path that ends at the spoke's backup LTE while the spoke's other link is in SLA,
 * even when that path is the faster one. With the spoke's primary link dark, the backup path
 * still carries everything. A lost hello goes again (HELLO_REFRESH_MS).
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { makePacket } from '../../sim/packets.ts';
import type { LinkSnapshot } from '../../src/core/types.ts';
import { HELLO_REFRESH_MS } from '../../src/core/peer-tx.ts';

const SEEDS = [1, 2, 3];

/** hub (inet1, inet2: both primary); s1 (inet primary, lte backup). s1's LTE path is the faster one. */
function world(seed: number): World {
  return new World({
    seed,
    sites: [
      { name: 'hub', role: 'hub', links: ['inet1', 'inet2'], prefixes: ['10.1.0.0/16'] },
      { name: 's1', links: ['inet', { name: 'lte', costTier: 'backup' }], prefixes: ['10.2.0.0/16'] },
    ],
    connections: [
      { name: 'inet', a: 's1.inet', b: 'hub.inet1', delayMs: 20 },
      { name: 'lte', a: 's1.lte', b: 'hub.inet2', delayMs: 5 },
    ],
  });
}

/** 4 voice (EF) and 8 business (AF21) flows from the hub's LAN to s1's, one packet each per 20 ms. */
function hubToSpoke(w: World, startMs: number, count: number): void {
  const flows = [...Array.from({ length: 4 }, () => 46), ...Array.from({ length: 8 }, () => 18)];
  w.every(20, { startMs, count }, (i) => {
    flows.forEach((dscp, f) => {
      w.site('hub').sendTun(makePacket({ src: [10, 1, 0, 2], dst: [10, 2, 0, 2], srcPort: 20000 + f, dstPort: 5000, dscp, sizeBytes: 200, flowId: f, seq: i }));
    });
  });
}

/** The hub's path to s1 that ends at s1's `peerLink` (or, before s1's hello, on the hub's `hubLink`). */
function hubPath(w: World, peerLink: string, hubLink?: string): LinkSnapshot {
  const links = w.site('hub').edge.snapshot(w.nowMs).links.filter((l) => (l.peer ?? 's1') === 's1' && (l.peerLinkName === peerLink || (l.peerLinkName === undefined && l.name === hubLink)));
  expect(links, `hub has one path to s1.${peerLink}`).toHaveLength(1);
  return links[0]!;
}

describe('a path takes the worse of its two links\' cost tiers (the peer announces its own in the hello)', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: hub->spoke flows stay off the path to the spoke's backup LTE while its inet is in SLA, and use it when inet is dark`, () => {
      const w = world(seed);
      hubToSpoke(w, 1000, 500);
      w.runFor(11_000);
      const lte = hubPath(w, 'lte');
      const inet = hubPath(w, 'inet');
      console.log(`seed ${seed}: hub inet1>inet ${inet.tier} rtt ${inet.rttMs?.toFixed(1)} ms ${inet.txDataPackets} data; inet2>lte ${lte.tier} rtt ${lte.rttMs?.toFixed(1)} ms ${lte.txDataPackets} data`);
      // Both hub links are primary: the tier comes from s1's hello.
      expect(lte.tier).toBe('backup');
      expect(inet.tier).toBe('primary');
      // The LTE path is the faster one (voice's 'best' would take it on RTT alone)...
      expect(lte.rttMs!).toBeLessThan(inet.rttMs!);
      // ...but nothing but probes went there: 12 flows x 50 pps x 10 s went on inet.
      expect(lte.txDataPackets).toBe(0);
      expect(lte.flows).toBe(0);
      expect(inet.txDataPackets).toBeGreaterThan(12 * 450);
      // s1's inet goes dark: the backup path takes the flows.
      w.impair('inet', { lossRatio: 1 });
      hubToSpoke(w, w.nowMs, 200);
      w.runFor(5000);
      const lteAfter = hubPath(w, 'lte');
      console.log(`seed ${seed}: inet dark: inet2>lte ${lteAfter.state}, ${lteAfter.flows} flows, ${lteAfter.txDataPackets} data`);
      expect(lteAfter.flows).toBe(12);
      expect(lteAfter.txDataPackets).toBeGreaterThan(12 * 150);
    }, 60_000);
  }

  it('a lost hello goes again: the hub learns the backup tier within HELLO_REFRESH_MS of losing it', () => {
    const seed = 1;
    // Where s1's hello on lte reaches the hub (its peerHello event), in a clean run.
    const clean = world(seed);
    clean.runFor(5000);
    const heard = clean.site('hub').events.find((e) => e.kind === 'peerHello' && e.link === 'inet2');
    expect(heard, 'the hub heard s1\'s lte hello').toBeDefined();
    const sentMs = heard!.atMs - 5; // the lte connection's delay, no jitter
    // The same run with s1's lte cut for the millisecond that hello crosses it.
    const w = world(seed);
    w.impairAt(sentMs - 0.5, 'lte', { up: false }, 'ab');
    w.impairAt(sentMs + 0.5, 'lte', { up: true }, 'ab');
    w.runFor(sentMs + 5000);
    const before = hubPath(w, 'lte', 'inet2');
    w.runFor(HELLO_REFRESH_MS);
    const after = hubPath(w, 'lte', 'inet2');
    console.log(`seed ${seed}: hello lost at ${sentMs.toFixed(1)} ms; 5 s later the hub's inet2 path is ${before.tier} (peer link ${before.peerLinkName}), ${HELLO_REFRESH_MS / 1000} s later ${after.tier} (${after.peerLinkName})`);
    expect(before.peerLinkName).toBeUndefined();
    expect(before.tier).toBe('primary');
    expect(after.peerLinkName).toBe('lte');
    expect(after.tier).toBe('backup');
  }, 60_000);
});
