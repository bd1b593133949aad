/**
 * Issue 13 (never fragment the underlay) on the World: a path whose MTU is smaller than the
 * links' (a black hole for bigger datagrams: the World's routers send no ICMP, they drop), found
 * by the overlay's padded probes, and inner TCP with DF fitted to it: the sender gets one Frag
 * Needed carrying the usable MTU, its packets fit from then on, and nothing bigger than the path
 * MTU is put on the wire once the PMTU is known. Virtual time: the seconds below are the World's.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { usableInnerMtu } from '../../src/core/wire/overhead.ts';
import { linkTooBig } from '../../src/core/peer-pmtu.ts';

const SEED = Number(process.env.BRAID_SEED ?? 20261206);

/** A host's TCP sender in miniature: DF packets of its PMTU, lowered by each Frag Needed it gets. */
class DfSender {
  pmtuBytes = 1500;
  fragNeeded: number[] = [];
  seq = 0;
  constructor(private readonly w: World) {
    w.a.onDeliver = (p) => {
      // IPv4 ICMP type 3 code 4; the next-hop MTU is the second half of the ICMP header's second word.
      if (p[0] === 0x45 && p[9] === 1 && p[20] === 3 && p[21] === 4) {
        const mtu = (p[26]! << 8) | p[27]!;
        this.fragNeeded.push(mtu);
        this.pmtuBytes = Math.min(this.pmtuBytes, mtu);
      }
    };
  }
  send(): void {
    this.w.a.sendTun(makePacket({ ...flowSpec(1, this.pmtuBytes), protocol: 6, seq: this.seq++ }));
  }
}

function linkSnap(w: World): { pathMtuBytes?: number; usableMtuBytes?: number; pmtuPhase?: string; pmtuBlackHoles?: number } {
  return w.a.edge.snapshot(w.nowMs).links[0]!;
}

describe(`World: path MTU discovery and inner packets fitted to it (seed ${SEED})`, () => {
  it('a 1400-byte path: PMTU 1400 found; 1500-byte DF TCP gets Frag Needed once, then fits; nothing too big on the wire', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 10, mtuBytes: 1400 }] });
    w.runFor(6000);
    const usable = usableInnerMtu(1400, 4);
    expect(linkSnap(w)).toMatchObject({ pathMtuBytes: 1400, usableMtuBytes: usable, pmtuPhase: 'complete' });
    const probesTooBig = w.linkStats('inet').ab.tooBig;
    expect(probesTooBig, 'the optimistic 1500 probes and the 1420+ search steps were dropped').toBeGreaterThan(0);

    const tcp = new DfSender(w);
    const delivered = new Set<number>();
    w.b.onDeliver = (p) => {
      const tag = readPacketTag(p);
      if (tag) delivered.add(tag.seq);
    };
    w.every(2, { count: 2000 }, () => tcp.send());
    w.runFor(2000 * 2 + 1000);

    expect(tcp.fragNeeded).toEqual([usable]);
    // The first packet (1500 bytes) was answered, not sent; every one after it arrived.
    expect(delivered.size).toBe(1999);
    expect(delivered.has(0)).toBe(false);
    expect(w.linkStats('inet').ab.tooBig, 'no datagram over the path MTU once it was known').toBe(probesTooBig);
    expect(w.a.edge.snapshot(w.nowMs).drops.tooLarge).toBe(1);
  });

  it('a settled path is confirmed only while big datagrams cross it: idle, no full-size probes (a hub with 1,000 idle spokes)', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 10, mtuBytes: 1400 }] });
    w.runFor(6000);
    expect(linkSnap(w)).toMatchObject({ pathMtuBytes: 1400, pmtuPhase: 'complete' });
    const probesOf = (): number => (w.a.edge.snapshot(w.nowMs).links[0] as { pmtuProbes: number }).pmtuProbes;
    const idleFrom = probesOf();
    w.runFor(20_000);
    expect(probesOf() - idleFrom, 'no confirmation probe in 20 s without big datagrams').toBe(0);

    // 1300-byte packets (above the 1200-byte UDP payload line once framed) for 10 s: confirmed about once a second.
    w.every(10, { count: 1000 }, () => w.a.sendTun(makePacket({ ...flowSpec(1, 1300), protocol: 17, seq: 0 })));
    const busyFrom = probesOf();
    w.runFor(10_000);
    const busy = probesOf() - busyFrom;
    expect(busy).toBeGreaterThanOrEqual(8);
    expect(busy).toBeLessThanOrEqual(12);
    expect(linkSnap(w)).toMatchObject({ pathMtuBytes: 1400, pmtuPhase: 'complete', pmtuBlackHoles: 0 });
  });

  it('probes are exactly the size they test, encrypted or not: a 1400-byte path reads 1400, a 1420-byte one 1420', () => {
    for (const insecurePlaintext of [false, true]) {
      for (const mtu of [1400, 1420, 1492]) {
        const w = new World({ seed: SEED, insecurePlaintext, links: [{ name: 'inet', delayMs: 5, mtuBytes: mtu }] });
        w.runFor(6000);
        expect(linkSnap(w).pathMtuBytes, `${insecurePlaintext ? 'plaintext' : 'encrypted'} path MTU ${mtu}`).toBe(mtu);
      }
    }
  });

  it('a local EMSGSIZE (the interface MTU lowered under a running edge) lowers the link\'s paths at once', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 5 }] });
    w.runFor(2000);
    expect(linkSnap(w).pathMtuBytes).toBe(1500);
    const e = w.a.edge;
    linkTooBig(e.links, e.peersByName.values(), 0, 1400, w.nowMs);
    expect(linkSnap(w)).toMatchObject({ pathMtuBytes: 1400, usableMtuBytes: usableInnerMtu(1400, 4) });
    expect(e.links[0]!.mtuBytes).toBe(1400);
    expect(w.a.edge.snapshot(w.nowMs).recentEvents.at(-1)?.message).toMatch(/path MTU 1500 -> 1400 \(packet-too-big\); inner MTU 1413 -> 1313/);
  });

  it('the path MTU drops to 1280 mid-run: noticed within 5 s, TCP keeps going; it grows back after the raise timer', () => {
    const w = new World({ seed: SEED, links: [{ name: 'inet', delayMs: 10 }] });
    w.runFor(3000);
    expect(linkSnap(w)).toMatchObject({ pathMtuBytes: 1500, usableMtuBytes: usableInnerMtu(1500, 4) });

    const tcp = new DfSender(w);
    const arrivals: number[] = [];
    w.b.onDeliver = (p, at) => {
      if (readPacketTag(p)) arrivals.push(at);
    };
    w.every(5, { count: 4000 }, () => tcp.send());
    const dropAtMs = w.nowMs + 5000;
    w.impairAt(dropAtMs, 'inet', { mtuBytes: 1280 });
    let noticedAtMs: number | undefined;
    while (w.nowMs < dropAtMs + 10_000) {
      w.runFor(50);
      if (noticedAtMs === undefined && (linkSnap(w).pathMtuBytes ?? 0) <= 1280 && w.nowMs > dropAtMs) noticedAtMs = w.nowMs;
    }
    expect(noticedAtMs, 'the PMTU never came down').toBeDefined();
    console.log(`seed ${SEED}: MTU 1500 -> 1280 at ${dropAtMs} ms noticed after ${noticedAtMs! - dropAtMs} ms; now ${JSON.stringify(linkSnap(w))}; Frag Needed ${JSON.stringify(tcp.fragNeeded)}`);
    expect(noticedAtMs! - dropAtMs).toBeLessThanOrEqual(5000);
    expect(linkSnap(w).pathMtuBytes).toBe(1280);
    // The black hole sends the PMTU to the base size (1200) before the search finds 1280: the host
    // may hear the base's inner MTU, and keeps it (as a host keeps a PMTU for minutes).
    expect(tcp.fragNeeded.length).toBeGreaterThanOrEqual(2);
    expect(tcp.fragNeeded.at(-1)).toBeLessThanOrEqual(usableInnerMtu(1280, 4));
    // TCP kept going: packets arrived in the last 3 s before the flow ended (at +20 s).
    w.runFor(Math.max(0, 3000 + 4000 * 5 - (w.nowMs - (dropAtMs - 5000))));
    const endMs = dropAtMs - 5000 + 4000 * 5;
    expect(arrivals.filter((t) => t > endMs - 3000 && t <= endMs + 100).length).toBeGreaterThan(500);

    // The hop's MTU comes back; the search goes up again at the raise timer (RFC 8899: 600 s).
    w.impair('inet', { mtuBytes: 0 });
    w.runFor(610_000);
    expect(linkSnap(w).pathMtuBytes).toBe(1500);
  });
});
