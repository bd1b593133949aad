/**
 * End-to-end (root), issue 17: two `braid up` processes over three veth links shaped to 100 Mbit/s
 * each with tbf (src/io/realtime/bond-ns.ts, on the sim/e2e.ts harness). Functional checks only; the
 * throughput figures (bonded vs sticky, recovery of 8 flows) are `npm run bench -- bond`.
 *   - one bonded TCP flow uses all three links and the receiver's resequencer delivers it;
 *   - a link cut for 5 s under a bonded flow: no stall over 1 s, and the flow uses all three links
 *     again within 5 s of the restore;
 *   - eight balanced flows: after a link's blackout and recovery, flows move back onto it;
 *   - with 10 / 30 / 60 ms added one way on the three links (userspace netem relay, one process per
 *     link in a WAN namespace): every link stays in the bond (50 ms apart is inside the default
 *     80 ms gap), the relays delayed what they should, the fast links' CoDel leaves the bond's own
 *     queue alone, and the receiver puts the flow back in order;
 *   - the same links with `bond.equalizeDelay`: the receiver holds each link's packets for the
 *     slowest link's extra one-way delay (50 / 30 / 0 ms), the sender fills all three links, in order.
 * Skipped with a printed reason when not root; CI runs it as root. Namespaces and interfaces carry
 * the `brt-` prefix and are deleted even on failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iperf, linkDataDelta, longestStallS, startBondSites, type BondSites } from '../../src/io/realtime/bond-ns.ts';
import { isRoot } from '../../sim/netns.ts';
import { BOND_DEFAULT_MAX_DELAY_GAP_MS } from '../../src/core/constants.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/bond.e2e.test.ts: needs root (network namespaces, TUN, tc tbf); CI runs it as root');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!ROOT)('bonding end-to-end: three links shaped to 100 Mbit/s', () => {
  describe('default class bonded', () => {
    let h: BondSites;
    beforeAll(async () => {
      h = await startBondSites({ tag: `bd${process.pid % 10000}`, rateMbit: 100, strategy: 'bond' });
    }, 60_000);
    afterAll(async () => {
      await h?.stop();
    });

    it('one TCP flow goes over all three links and is put back in order at the receiver', async () => {
      const before = await h.status('a');
      const r = await iperf(h, 5);
      const after = await h.status('a');
      const delta = linkDataDelta(before, after);
      const rx = (await h.status('b')).bond?.find((c) => c.class === 'default');
      const flow = after.topFlows.find((f) => f.class === 'default');
      console.log(`e2e bond: 1 TCP flow ${r.mbps.toFixed(1)} Mbit/s (${r.retransmits} retransmits; box load applies, figures in npm run bench -- bond); data per link ${[...delta].map(([n, v]) => `${n} ${v}`).join(', ')}; shares ${JSON.stringify(flow?.bond?.shares.map((s) => [s.link, Math.round(s.ratio * 100)]))}; receiver reseq ${JSON.stringify(rx)}`);
      expect(r.intervalBytes.reduce((a, b) => a + b, 0)).toBeGreaterThan(1_000_000);
      const total = [...delta.values()].reduce((a, b) => a + b, 0);
      for (const [name, n] of delta) expect(n, `${name} carried ${n} of ${total} data packets`).toBeGreaterThan(total * 0.05);
      expect(flow?.bond?.shares.length).toBe(3);
      expect(rx, 'the receiver has no resequencer for the bonded class').toBeDefined();
      expect(rx!.delivered).toBeGreaterThan(1000);
      // In order for TCP: packets released after their hole was given up are a small minority.
      expect(rx!.late).toBeLessThan(rx!.delivered * 0.01);
    }, 60_000);

    it('a link cut for 5 s and restored: no stall over 1 s; all three links carry the flow within 5 s of the restore', async () => {
      const run = iperf(h, 16, 1, 0.25);
      await sleep(4000);
      const cut = h.ifnames[1]!;
      await h.topo.execIn('a', ['ip', 'link', 'set', cut, 'down']);
      await sleep(5000);
      await h.topo.execIn('a', ['ip', 'link', 'set', cut, 'up']);
      const atRestore = await h.status('a');
      await sleep(5000);
      const fiveLater = await h.status('a');
      const r = await run;
      const delta = linkDataDelta(atRestore, fiveLater);
      const stallS = longestStallS(r);
      console.log(`e2e bond cut/restore: ${r.mbps.toFixed(1)} Mbit/s over 16 s, longest stall ${stallS.toFixed(2)} s, data per link in the 5 s after the restore ${[...delta].map(([n, v]) => `${n} ${v}`).join(', ')}`);
      expect(stallS).toBeLessThanOrEqual(1);
      for (const [name, n] of delta) expect(n, `${name} carried nothing in the 5 s after the restore`).toBeGreaterThan(100);
    }, 90_000);
  });

  describe('default class bonded, 10 / 30 / 60 ms added one way (userspace relay)', () => {
    const DELAYS_MS = [10, 30, 60];
    let h: BondSites;
    beforeAll(async () => {
      h = await startBondSites({ tag: `bz${process.pid % 10000}`, rateMbit: 100, strategy: 'bond', delayMs: DELAYS_MS, tunTxQueueLen: 1000 });
      // A window for ~130 ms of RTT at a few hundred Mbit/s (the defaults cap it at 4-6 MB).
      for (const site of ['a', 'b'] as const) await h.topo.execIn(site, ['sysctl', '-q', '-w', 'net.ipv4.tcp_rmem=4096 131072 33554432', 'net.ipv4.tcp_wmem=4096 16384 33554432']);
    }, 90_000);
    afterAll(async () => {
      await h?.stop();
    });

    it('every link stays in the bond, the relays delay each link, CoDel spares the bond queue, the receiver orders the flow', async () => {
      const before = await h.status('a');
      const r = await iperf(h, 8);
      const after = await h.status('a');
      const rxB = (await h.status('b')).bond?.find((c) => c.class === 'default');
      const txA = after.bond?.find((c) => c.class === 'default');
      const delta = linkDataDelta(before, after);
      const data = [...delta.values()].reduce((a, b) => a + b, 0);
      const queueDrops = after.links.reduce((n, l) => n + (l.queueDrops ?? 0), 0) - before.links.reduce((n, l) => n + (l.queueDrops ?? 0), 0);
      const rtt = after.links.map((l) => l.rttMs ?? 0);
      const relays = await h.relayStats();
      console.log(
        `e2e bond delayed: 1 TCP flow ${r.mbps.toFixed(1)} Mbit/s (${r.retransmits} retransmits; box load applies, figures in npm run bench -- bond); RTT per link ${rtt.map((x) => x.toFixed(0)).join(' / ')} ms; data per link ${[...delta].map(([n, v]) => `${n} ${v}`).join(', ')}; shaper drops ${queueDrops}; bond ${JSON.stringify(txA?.links)}; receiver reseq ${JSON.stringify(rxB)}; relays late max ${relays.map((x) => x.maxLateMs).join(' / ')} ms`,
      );
      expect(r.intervalBytes.reduce((a, b) => a + b, 0)).toBeGreaterThan(1_000_000);
      // The relays add 2 x 10 / 30 / 60 ms of RTT: the links' RTTs are that far apart at least.
      expect(rtt[1]! - rtt[0]!).toBeGreaterThan(2 * (DELAYS_MS[1]! - DELAYS_MS[0]!) - 5);
      expect(rtt[2]! - rtt[1]!).toBeGreaterThan(2 * (DELAYS_MS[2]! - DELAYS_MS[1]!) - 5);
      // 50 ms apart one way is inside the default class's gap: all three are members.
      expect(DELAYS_MS[2]! - DELAYS_MS[0]!).toBeLessThan(BOND_DEFAULT_MAX_DELAY_GAP_MS);
      expect(txA?.links.map((l) => [l.link, l.member])).toEqual(after.links.map((l) => [l.name, true]));
      // The fast links hold the bond's queue (up to the slowest link's extra delay) without CoDel
      // dropping it (before the CoDel slack: 0.5-1.7% of the data packets, thousands of retransmits).
      expect(queueDrops, `${queueDrops} shaper drops of ${data} data packets`).toBeLessThan(data * 0.002);
      // In order for TCP: packets released after their hole was given up are a small minority.
      expect(rxB, 'the receiver has no resequencer for the bonded class').toBeDefined();
      expect(rxB!.delivered).toBeGreaterThan(1000);
      expect(rxB!.late).toBeLessThan(rxB!.delivered * 0.01);
    }, 90_000);
  });

  describe('default class bonded with bond.equalizeDelay, 10 / 30 / 60 ms added one way', () => {
    const DELAYS_MS = [10, 30, 60];
    let h: BondSites;
    beforeAll(async () => {
      h = await startBondSites({ tag: `bq${process.pid % 10000}`, rateMbit: 100, strategy: 'bond', delayMs: DELAYS_MS, tunTxQueueLen: 1000, defaultClass: { bond: { equalizeDelay: true } } });
      for (const site of ['a', 'b'] as const) await h.topo.execIn(site, ['sysctl', '-q', '-w', 'net.ipv4.tcp_rmem=4096 131072 33554432', 'net.ipv4.tcp_wmem=4096 16384 33554432']);
    }, 90_000);
    afterAll(async () => {
      await h?.stop();
    });

    it("the receiver holds each link's packets for the slowest link's extra delay, the sender fills every link, the flow comes in order", async () => {
      const before = await h.status('a');
      const r = await iperf(h, 8);
      const after = await h.status('a');
      const rxB = (await h.status('b')).bond?.find((c) => c.class === 'default');
      const delta = [...linkDataDelta(before, after).values()];
      const data = delta.reduce((a, b) => a + b, 0);
      console.log(`e2e bond equalized: 1 TCP flow ${r.mbps.toFixed(1)} Mbit/s (${r.retransmits} retransmits; box load applies); data per link ${delta.join(' / ')}; receiver ${JSON.stringify(rxB)}`);
      expect(rxB?.equalize, 'the receiver does not equalize the bonded class').toBeDefined();
      const eq = rxB!.equalize!;
      // Holds from the links' lowest RTTs (the relays add 2 x 10 / 30 / 60 ms): 50 / 30 / 0 ms.
      const want = DELAYS_MS.map((d) => Math.max(...DELAYS_MS) - d);
      eq.holdMs.forEach((hold, i) => expect(Math.abs(hold - want[i]!), `link ${i}: hold ${hold} ms, want ${want[i]}`).toBeLessThan(8));
      expect(eq.held).toBeGreaterThan(1000);
      expect(eq.early).toBe(0);
      // The sender takes every link as equally slow: no link is left for the fast ones' queues.
      for (const n of delta) expect(n, `data per link ${delta.join(' / ')}`).toBeGreaterThan(data * 0.2);
      expect(rxB!.delivered).toBeGreaterThan(1000);
      expect(rxB!.late).toBeLessThan(rxB!.delivered * 0.01);
    }, 90_000);
  });

  describe('default class balanced (eight long-lived flows)', () => {
    let h: BondSites;
    beforeAll(async () => {
      h = await startBondSites({ tag: `bl${process.pid % 10000}`, rateMbit: 100, strategy: 'balance' });
    }, 60_000);
    afterAll(async () => {
      await h?.stop();
    });

    it('after a link blackout and recovery, flows move back onto the recovered link one at a time', async () => {
      const run = iperf(h, 20, 8, 1);
      await sleep(3000);
      const cut = h.ifnames[2]!;
      await h.topo.execIn('a', ['ip', 'link', 'set', cut, 'down']);
      await sleep(5000);
      await h.topo.execIn('a', ['ip', 'link', 'set', cut, 'up']);
      const atRestore = await h.status('a');
      await sleep(10_000);
      const after = await h.status('a');
      const r = await run;
      const delta = linkDataDelta(atRestore, after);
      const link = after.links.find((l) => l.name === 'lte')!;
      const moves = after.recentEvents.filter((e) => e.kind === 'flowMoved' && /rebalance/.test(e.message));
      console.log(`e2e balance recovery: 8 flows ${r.mbps.toFixed(1)} Mbit/s over 20 s, per second ${r.intervalBytes.map((b) => ((b * 8) / 1e6).toFixed(0)).join(' ')}; lte flows after ${link.flows}; rebalance moves ${moves.length}: ${moves.map((e) => e.message).join(' | ')}`);
      expect(moves.length).toBeGreaterThan(0);
      expect(link.flows).toBeGreaterThan(0);
      expect(delta.get('lte')!).toBeGreaterThan(1000);
    }, 90_000);
  });
});
