/**
 * Issue 11 (hub and spokes) in virtual time, on the N-site World: fair egress across peers on a
 * shaped hub uplink, live peer changes that leave the other peers alone, endpoint moves only by
 * authenticated packets on the same path, and the inbound source check.
 */
import { describe, expect, it } from 'vitest';
import { World, type Site } from '../../sim/world.ts';
import { makePacket, readPacketTag } from '../../sim/packets.ts';
import type { Endpoint } from '../../src/core/endpoint.ts';
import type { PeerConfig } from '../../src/core/types.ts';

const EF = 46;
const AF21 = 18; // business
const CS1 = 8; // bulk

function pkt(src: [number, number, number, number], dst: [number, number, number, number], flowId: number, seq: number, sizeBytes: number, dscp: number): Uint8Array {
  return makePacket({ src, dst, srcPort: 10000 + flowId, dstPort: 5000, sizeBytes, dscp, flowId, seq });
}

function hubAndSpokes(seed: number, hubUplinkBps?: number): World {
  return new World({
    seed,
    sites: [
      { name: 'hub', role: 'hub', links: [{ name: 'inet', ...(hubUplinkBps ? { bandwidthBps: hubUplinkBps } : {}) }], prefixes: ['10.0.0.0/16'] },
      { name: 's1', links: ['inet'], prefixes: ['10.1.0.0/16'] },
      { name: 's2', links: ['inet'], prefixes: ['10.2.0.0/16'] },
    ],
    connections: [
      { a: 's1.inet', b: 'hub.inet', delayMs: 10 },
      { a: 's2.inet', b: 'hub.inet', delayMs: 10 },
    ],
  });
}

/** Per flow: send time by seq, so delivery gives one-way delay. */
class Tracker {
  readonly sentAt = new Map<number, Map<number, number>>();
  send(w: World, site: Site, flowId: number, seq: number, packet: Uint8Array): void {
    let m = this.sentAt.get(flowId);
    if (!m) this.sentAt.set(flowId, (m = new Map()));
    m.set(seq, w.nowMs);
    site.sendTun(packet);
  }
  /** Delivered count and one-way delays of `flows` at `site`. */
  delivered(site: Site, flows: (f: number) => boolean): { n: number; delaysMs: number[] } {
    const delaysMs: number[] = [];
    const seen = new Set<string>();
    for (const d of site.delivered) {
      const tag = readPacketTag(d.bytes);
      if (!tag || !flows(tag.flowId)) continue;
      const k = `${tag.flowId}/${tag.seq}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const t = this.sentAt.get(tag.flowId)?.get(tag.seq);
      if (t !== undefined) delaysMs.push(d.atMs - t);
    }
    return { n: seen.size, delaysMs };
  }
  sent(flows: (f: number) => boolean): number {
    let n = 0;
    for (const [f, m] of this.sentAt) if (flows(f)) n += m.size;
    return n;
  }
}

function p99(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

describe('hub and spokes (World, N sites)', () => {
  for (const floodClass of ['bulk', 'business'] as const) {
    it(`a 20 Mbit/s hub uplink: 50 Mbit/s of ${floodClass} to spoke 1 does not hurt spoke 2's business and voice`, () => {
      const w = hubAndSpokes(11, 20_000_000);
      const hub = w.site('hub');
      const t = new Tracker();
      w.runFor(1000); // sessions up, paths learned
      const start = w.nowMs;
      const durationMs = 10_000;
      // Spoke 1: 50 Mbit/s in 1250-byte packets = 5000 pps (one flow per 10 to spread the flow table).
      const floodDscp = floodClass === 'bulk' ? CS1 : AF21;
      w.every(1, { startMs: start, untilMs: start + durationMs }, (i) => {
        for (let k = 0; k < 5; k++) t.send(w, hub, 100 + (k % 10), i * 5 + k, pkt([10, 0, 0, 5], [10, 1, 0, 5], 100 + (k % 10), i * 5 + k, 1250, floodDscp));
      });
      // Spoke 2: 2 Mbit/s business (1000-byte packets, 250 pps) and 10 voice calls (200 bytes, 50 pps each).
      w.every(4, { startMs: start, untilMs: start + durationMs }, (i) => t.send(w, hub, 1, i, pkt([10, 0, 0, 6], [10, 2, 0, 6], 1, i, 1000, AF21)));
      for (let c = 0; c < 10; c++) {
        w.every(20, { startMs: start + c, untilMs: start + durationMs }, (i) => t.send(w, hub, 10 + c, i, pkt([10, 0, 0, 7], [10, 2, 0, 7], 10 + c, i, 200, EF)));
      }
      w.runFor(durationMs + 2000);
      const s2 = w.site('s2');
      const isBusiness = (f: number): boolean => f === 1;
      const isVoice = (f: number): boolean => f >= 10 && f < 20;
      const business = t.delivered(s2, isBusiness);
      const voice = t.delivered(s2, isVoice);
      const flood = t.delivered(w.site('s1'), (f) => f >= 100);
      const lossOf = (d: number, f: (x: number) => boolean): number => 1 - d / t.sent(f);
      const voiceAddedP99Ms = p99(voice.delaysMs) - 10; // base one-way delay 10 ms
      console.log(
        `hub uplink 20 Mbit/s, ${floodClass} flood to s1: s1 got ${((flood.n * 1250 * 8) / durationMs / 1000).toFixed(1)} Mbit/s; ` +
          `s2 business lost ${(lossOf(business.n, isBusiness) * 100).toFixed(3)}%, voice lost ${(lossOf(voice.n, isVoice) * 100).toFixed(3)}%, voice added delay p99 ${voiceAddedP99Ms.toFixed(2)} ms`,
      );
      expect(lossOf(business.n, isBusiness)).toBeLessThan(0.001);
      expect(lossOf(voice.n, isVoice)).toBeLessThan(0.001);
      expect(voiceAddedP99Ms).toBeLessThan(5);
      // The flood used what was left of the uplink (it is shaped, not starved).
      expect((flood.n * 1250 * 8) / durationMs / 1000).toBeGreaterThan(10);
    }, 120_000);
  }

  it('a reload that adds C and removes B leaves A alone: 10,000 packets, none lost, same session, same flow paths', () => {
    const w = new World({
      seed: 5,
      sites: [
        { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/16'] },
        { name: 'a', links: ['mpls', 'inet'], prefixes: ['10.1.0.0/16'] },
        { name: 'b', links: ['inet'], prefixes: ['10.2.0.0/16'] },
        { name: 'c', links: ['inet'], prefixes: ['10.3.0.0/16'] },
      ],
      connections: [
        { a: 'a.mpls', b: 'hub.mpls', delayMs: 10 },
        { a: 'a.inet', b: 'hub.inet', delayMs: 20 },
        { a: 'b.inet', b: 'hub.inet', delayMs: 15 },
        { a: 'c.inet', b: 'hub.inet', delayMs: 15 },
      ],
    });
    const hub = w.site('hub');
    const engine = hub.edge as unknown as Endpoint;
    // Start with A and B only: C is added by the reload.
    const all = hub.peerConfigs as PeerConfig[];
    const withoutC = all.filter((p) => p.name !== 'c');
    engine.setPeers(w.nowMs, withoutC);
    w.runFor(1000);
    const t = new Tracker();
    w.every(2, { count: 10_000 }, (i) => t.send(w, hub, 1 + (i % 8), Math.floor(i / 8), pkt([10, 0, 0, 5], [10, 1, 0, 5 + (i % 8)], 1 + (i % 8), Math.floor(i / 8), 300, 0)));
    let before: { age: number | undefined; flows: string[] } | undefined;
    w.at(w.nowMs + 10_000, () => {
      const s = engine.snapshot(w.nowMs);
      before = { age: s.peers!.find((p) => p.name === 'a')!.session.ageMs, flows: s.topFlows.filter((f) => f.peer === 'a').map((f) => `${f.flow} ${f.links}`).sort() };
      const r = engine.setPeers(w.nowMs, all.filter((p) => p.name !== 'b'));
      expect(r).toEqual({ added: ['c'], removed: ['b'], changed: [] });
    });
    w.runFor(22_000);
    const a = t.delivered(w.site('a'), () => true);
    expect(a.n).toBe(10_000);
    const s = engine.snapshot(w.nowMs);
    const peerA = s.peers!.find((p) => p.name === 'a')!;
    // Same session: no handshake since (the age kept growing by the time between the snapshots).
    expect(peerA.session.ageMs! - before!.age!).toBeGreaterThanOrEqual(12_000 - 1);
    expect(s.topFlows.filter((f) => f.peer === 'a').map((f) => `${f.flow} ${f.links}`).sort()).toEqual(before!.flows);
    expect(s.peers!.map((p) => p.name).sort()).toEqual(['a', 'c']);
    expect(s.peers!.find((p) => p.name === 'c')!.session.established).toBe(true);
  }, 120_000);

  it('a datagram copied from one link path into another link socket does not move that path endpoint', () => {
    const w = new World({
      seed: 9,
      sites: [
        { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/16'] },
        { name: 's1', links: ['mpls', 'inet'], prefixes: ['10.1.0.0/16'] },
      ],
      connections: [
        { a: 's1.mpls', b: 'hub.mpls', delayMs: 5 },
        { a: 's1.inet', b: 'hub.inet', delayMs: 20 },
      ],
    });
    const captured: Uint8Array[] = [];
    w.tap = (site, linkId, bytes) => {
      if (site === 's1' && linkId === 1 && captured.length < 200) captured.push(bytes.slice());
    };
    w.runFor(2000);
    const hubEngine = w.site('hub').edge as unknown as Endpoint;
    const mplsBefore = hubEngine.snapshot(w.nowMs).links.filter((l) => l.name === 'mpls').map((l) => l.remote);
    const attacker: Endpoint extends never ? never : { address: string; port: number } = { address: 'attacker', port: 6666 };
    // The attacker on the inet path copies s1's inet datagrams into the hub's MPLS socket.
    let at = w.nowMs + 10;
    for (const bytes of captured) {
      w.injectAt(at, 'hub', 'mpls', attacker, bytes);
      at += 5;
    }
    w.runFor(3000);
    const s = hubEngine.snapshot(w.nowMs);
    const mplsAfter = s.links.filter((l) => l.name === 'mpls').map((l) => l.remote);
    expect(mplsAfter).toEqual(mplsBefore);
    // Nothing of the real traffic is steered to the attacker: the hub sends it no data.
    const toAttacker = s.links.filter((l) => l.remote.startsWith('attacker'));
    for (const l of toAttacker) expect(l.txDataPackets).toBe(0);
  }, 60_000);

  it('an inner packet whose source lies outside the sender prefixes is dropped and counted', () => {
    const w = hubAndSpokes(3);
    w.runFor(1000);
    const s1 = w.site('s1');
    // Spoke 1 (10.1/16) sends as if from spoke 2's 10.2.0.9 to the hub LAN, and once honestly.
    for (let i = 0; i < 20; i++) s1.sendTun(pkt([10, 2, 0, 9], [10, 0, 0, 5], 1, i, 200, 0));
    for (let i = 0; i < 20; i++) s1.sendTun(pkt([10, 1, 0, 9], [10, 0, 0, 5], 2, i, 200, 0));
    w.runFor(500);
    const hub = w.site('hub');
    const snap = hub.edge.snapshot(w.nowMs);
    expect(snap.drops.sourceNotAllowed).toBe(20);
    expect(snap.peers!.find((p) => p.name === 's1')!.sourceNotAllowed).toBe(20);
    const got = hub.delivered.map((d) => readPacketTag(d.bytes)?.flowId);
    expect(got.filter((f) => f === 1)).toHaveLength(0);
    expect(got.filter((f) => f === 2)).toHaveLength(20);
    // And a destination no peer has is a noRoute drop at the sender.
    s1.sendTun(pkt([10, 1, 0, 9], [192, 0, 2, 1], 3, 0, 200, 0));
    expect(s1.edge.snapshot(w.nowMs).drops.noRoute).toBe(1);
  }, 60_000);
});
