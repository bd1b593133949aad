/**
 * Idle probing in a fleet (peer-idle.ts, issue 12's probe spread): between a hub and its spokes the
 * hub is the one prober of every idle path (the role in the epoch's top bit), each of its peers'
 * slow ticks at a fixed place in the interval, the places spread evenly by slot; a cut is still
 * noticed by both sides within the idle dead time. And an idle peer's flow sweep stops with its
 * last flow and comes back with data.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { makePacket } from '../../sim/packets.ts';
import type { Endpoint } from '../../src/core/endpoint.ts';
import { epochForRole, IDLE_DEAD_AFTER_MS, IDLE_PROBE_INTERVAL_MS, PEER_IDLE_AFTER_MS } from '../../src/core/peer-idle.ts';
import { SeededRng } from '../../src/core/rng.ts';

const SEED = Number(process.env.BRAID_SEED ?? 1213);
const SPOKES = 16;

function fleet(seed: number, extra: { flowIdleTimeoutMs?: number } = {}): World {
  const sites = [{ name: 'hub', role: 'hub' as const, links: ['mpls', 'inet'], prefixes: ['10.0.0.0/8'], coversSpokes: true }];
  const connections = [];
  for (let i = 1; i <= SPOKES; i++) {
    sites.push({ name: `s${i}`, role: 'spoke' as unknown as 'hub', links: ['mpls', 'inet'], prefixes: [`10.1.${i}.0/24`], coversSpokes: false });
    connections.push({ a: `s${i}.mpls`, b: 'hub.mpls', delayMs: 10 + (i % 7) }, { a: `s${i}.inet`, b: 'hub.inet', delayMs: 18 + (i % 11) });
  }
  return new World({ seed, recordDeliveries: false, sites, connections, endpoint: extra });
}

/** Counts each probe a site's peers send (the real sendProbe runs), with its time, by site and peer. */
function spyProbes(w: World): Map<string, number[]> {
  const sent = new Map<string, number[]>();
  for (const site of w.sites) {
    for (const peer of (site.edge as unknown as Endpoint).peersByName.values()) {
      const key = `${site.name}>${peer.name}`;
      sent.set(key, []);
      const tx = peer.tx as unknown as { sendProbe: (...a: unknown[]) => void };
      const real = tx.sendProbe.bind(tx);
      tx.sendProbe = (...a: unknown[]) => {
        sent.get(key)!.push(w.nowMs);
        real(...a);
      };
    }
  }
  return sent;
}

/** A path's state (a site with one peer names no peer in its links). */
const pathState = (w: World, site: string, peer: string, link: string): string | undefined =>
  w.site(site).edge.snapshot(w.nowMs).links.find((l) => (l.peer ?? peer) === peer && l.name === link)?.state;

describe('epochForRole', () => {
  it("a hub's epoch is below every spoke's; without a role the draw is kept", () => {
    const rng = new SeededRng(5);
    for (let i = 0; i < 2000; i++) {
      const hub = epochForRole(rng.nextU32(), 'hub');
      const spoke = epochForRole(rng.nextU32(), 'spoke');
      expect(hub).toBeGreaterThan(0);
      expect(hub).toBeLessThan(spoke);
      expect(spoke).toBeLessThanOrEqual(0xffffffff);
    }
    expect(epochForRole(0, 'hub')).toBe(1);
    expect(epochForRole(0xdeadbeef, undefined)).toBe(0xdeadbeef);
    expect(epochForRole(0, undefined)).toBe(1);
  });
});

describe(`World: a hub probes its idle spokes evenly, the spokes yield (seed ${SEED})`, () => {
  it('idle: only the hub probes, every path once per slow interval, each peer at its own fixed place, the places spread over the interval', () => {
    const w = fleet(SEED);
    w.runFor(4000 + PEER_IDLE_AFTER_MS + 2 * IDLE_PROBE_INTERVAL_MS);
    const sent = spyProbes(w);
    const ticks = 10;
    w.runFor(ticks * IDLE_PROBE_INTERVAL_MS);
    const phases: number[] = [];
    for (let i = 1; i <= SPOKES; i++) {
      expect(sent.get(`s${i}>hub`)).toEqual([]);
      const times = sent.get(`hub>s${i}`)!;
      // Two paths, one probe each per tick.
      expect(times.length).toBe(2 * ticks);
      const places = new Set(times.map((t) => Math.round(t % IDLE_PROBE_INTERVAL_MS)));
      expect(places.size).toBe(1);
      phases.push([...places][0]!);
      expect(pathState(w, 'hub', `s${i}`, 'mpls')).toBe('up');
      expect(pathState(w, `s${i}`, 'hub', 'inet')).toBe('up');
    }
    // Golden-ratio steps by slot: no two peers closer than a quarter of the even spacing (random
    // places would put the closest pair of 16 ~8 ms apart).
    phases.sort((a, b) => a - b);
    const gaps = phases.map((p, k) => (k === 0 ? p + IDLE_PROBE_INTERVAL_MS - phases[phases.length - 1]! : p - phases[k - 1]!));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(IDLE_PROBE_INTERVAL_MS / SPOKES / 4);
  });

  it('a cut while idle is noticed by the hub and by the silent spoke within the idle dead time', () => {
    const w = fleet(SEED);
    w.runFor(4000 + PEER_IDLE_AFTER_MS + 2 * IDLE_PROBE_INTERVAL_MS);
    w.impair('s3.inet-hub.inet', { up: false });
    const cutAt = w.nowMs;
    const downAt: Record<string, number> = {};
    while (Object.keys(downAt).length < 2 && w.nowMs - cutAt < 20_000) {
      w.runFor(50);
      if (downAt.hub === undefined && pathState(w, 'hub', 's3', 'inet') === 'down') downAt.hub = w.nowMs - cutAt;
      if (downAt.spoke === undefined && pathState(w, 's3', 'hub', 'inet') === 'down') downAt.spoke = w.nowMs - cutAt;
    }
    expect(downAt.hub).toBeLessThanOrEqual(IDLE_DEAD_AFTER_MS + IDLE_PROBE_INTERVAL_MS + 100);
    expect(downAt.spoke).toBeLessThanOrEqual(IDLE_DEAD_AFTER_MS + IDLE_PROBE_INTERVAL_MS + 100);
    // The other path and the other spokes are left alone.
    expect(pathState(w, 'hub', 's3', 'mpls')).toBe('up');
    expect(pathState(w, 'hub', 's4', 'inet')).toBe('up');
  });

  it("flows of an idle peer still expire, and the sweep comes back with the next data", () => {
    const w = fleet(SEED, { flowIdleTimeoutMs: 3000 });
    w.runFor(2000);
    const flows = (): number => w.site('s1').edge.snapshot(w.nowMs).peers!.find((p) => p.name === 'hub')!.flows;
    const burst = (flowId: number): void =>
      w.every(20, { count: 25 }, (k) => w.site('s1').sendTun(makePacket({ src: [10, 1, 1, 5], dst: [10, 0, 0, 5], srcPort: 4000 + flowId, dstPort: 7000, sizeBytes: 200, flowId, seq: k })));
    for (const flowId of [1, 2]) {
      burst(flowId);
      w.runFor(600);
      expect(flows()).toBe(1);
      // Idle timeout + one sweep period later the flow is gone.
      w.runFor(3000 + 1000 + 100);
      expect(flows()).toBe(0);
      w.runFor(PEER_IDLE_AFTER_MS);
    }
  });
});
