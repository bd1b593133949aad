/**
 * End-to-end (root), issue 13 "never fragment": two `braid up` with `tun.mtu: 1500` over 1500-byte
 * links and a router between them (sim/netns-routed.ts). iperf3 TCP works and the underlay carries
 * no IP fragment (nftables counters at prerouting in all three namespaces, before reassembly);
 * `ping -M do -s 1472` through the tunnel gets Frag Needed with the path's usable MTU; the router's
 * next-hop MTU dropped to 1280 under a TCP run shows in `braid status` (printed: how long it took;
 * the figure goes to docs/BENCHMARKS.md, not into an assertion) and TCP keeps going. Throughput is
 * not asserted (bench/overlay-mtu.ts). Skipped with a printed reason when not root; CI runs it.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';
import { createRoutedTopology, type RoutedTopology } from '../../sim/netns-routed.ts';
import { usableInnerMtu } from '../../src/core/wire/overhead.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/mtu.e2e.test.ts: needs root (network namespaces, TUN, nftables); CI runs it as root');

/** stdout of a command in a namespace whether it exits 0 or not (ping exits 1 without replies). */
function output(ns: string, argv: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, ...argv], { timeout: timeoutMs }, (_e, stdout, stderr) => resolve(`${String(stdout)}${String(stderr)}`));
  });
}

interface IperfJson {
  intervals: { sum: { start: number; bytes: number } }[];
  end: { sum_received: { bytes: number; bits_per_second: number } };
}

describe.skipIf(!ROOT)('end-to-end: tun.mtu 1500 over 1500-byte links, nothing fragmented on the underlay', () => {
  let topo: RoutedTopology;
  let h: TwoSites;
  const tag = `m${process.pid % 10000}`;
  beforeAll(async () => {
    topo = await createRoutedTopology({ tag });
    try {
      h = await startTwoSites({ tag, topo, links: ['inet'], mtu: 1500 });
    } catch (e) {
      await topo.destroy();
      throw e;
    }
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
    await topo?.destroy();
  });

  const linkOf = async (site: 'a' | 'b'): Promise<{ pathMtuBytes?: number; usableMtuBytes?: number; pmtuPhase?: string; pmtuBlackHoles?: number }> => (await h.status(site)).links[0]!;

  it('each path found its MTU: 1500 on the wire, 1413 inside', async () => {
    for (let i = 0; i < 50 && (await linkOf('a')).pmtuPhase !== 'complete'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await linkOf('a')).toMatchObject({ pathMtuBytes: 1500, usableMtuBytes: usableInnerMtu(1500, 4), pmtuPhase: 'complete' });
    expect(await linkOf('b')).toMatchObject({ pathMtuBytes: 1500, usableMtuBytes: usableInnerMtu(1500, 4) });
  });

  it('ping -M do -s 1472 through the tunnel gets "Frag needed" with the usable MTU', async () => {
    const out = await output(topo.a.ns, ['ping', '-M', 'do', '-s', '1472', '-c', '2', '-W', '1', h.b.tunAddress]);
    console.log(`e2e mtu: ping -M do -s 1472 -> ${out.split('\n').filter((l) => /mtu|Frag|too long/i.test(l)).join(' | ')}`);
    expect(out).toMatch(new RegExp(`Frag needed and DF set \\(mtu = ${usableInnerMtu(1500, 4)}\\)`));
    // The next size down fits and gets its reply.
    const fits = await output(topo.a.ns, ['ping', '-M', 'do', '-s', String(usableInnerMtu(1500, 4) - 28), '-c', '2', '-W', '2', h.b.tunAddress]);
    expect(fits).toMatch(/2 received/);
  });

  it('iperf3 TCP through tun.mtu 1500 works and the underlay carries 0 fragments', async () => {
    const before = await topo.fragments();
    const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', '-B', h.b.tunAddress]);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const r = await h.topo.execIn('a', ['iperf3', '-c', h.b.tunAddress, '-t', '5', '-J'], { timeoutMs: 30_000 });
      const j = JSON.parse(r.stdout) as IperfJson;
      const after = await topo.fragments();
      console.log(`e2e mtu: iperf3 TCP tun.mtu 1500: ${(j.end.sum_received.bits_per_second / 1e6).toFixed(1)} Mbit/s; underlay UDP packets ${after.udpPackets - before.udpPackets}, fragments ${after.fragments - before.fragments}`);
      expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
      expect(after.udpPackets - before.udpPackets).toBeGreaterThan(1000);
      expect(after.fragments).toBe(0);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('the middle hop drops to MTU 1280 under TCP: braid status shows 1280, TCP keeps going, still no fragment', async () => {
    const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', '-B', h.b.tunAddress]);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const client = h.topo.execIn('a', ['iperf3', '-c', h.b.tunAddress, '-t', '16', '-i', '1', '-J'], { timeoutMs: 40_000 });
      await new Promise((r) => setTimeout(r, 3000));
      const droppedAt = Date.now();
      await topo.setHopMtu(1280);
      let noticedMs: number | undefined;
      let settledMs: number | undefined;
      while (Date.now() - droppedAt < 12_000 && settledMs === undefined) {
        const l = await linkOf('a');
        if (noticedMs === undefined && (l.pathMtuBytes ?? 9999) <= 1280) noticedMs = Date.now() - droppedAt;
        if (l.pathMtuBytes === 1280 && l.pmtuPhase === 'complete') settledMs = Date.now() - droppedAt;
        await new Promise((r) => setTimeout(r, 100));
      }
      const j = JSON.parse((await client).stdout) as IperfJson;
      const l = await linkOf('a');
      const frags = await topo.fragments();
      const late = j.intervals.filter((i) => i.sum.start >= 3 + 8);
      console.log(
        `e2e mtu: hop MTU 1500 -> 1280 under iperf3: status showed the drop after ${noticedMs} ms, PMTU 1280 settled after ${settledMs} ms ` +
          `(now ${JSON.stringify(l)}); per-second MB: ${j.intervals.map((i) => (i.sum.bytes / 1e6).toFixed(1)).join(' ')}; fragments ${frags.fragments}`,
      );
      expect(noticedMs, 'braid status never showed a PMTU <= 1280').toBeDefined();
      expect(l.pathMtuBytes).toBe(1280);
      expect(l.usableMtuBytes).toBe(usableInnerMtu(1280, 4));
      // TCP kept going: every second from 8 s after the drop carried data.
      expect(late.length).toBeGreaterThan(3);
      for (const i of late) expect(i.sum.bytes).toBeGreaterThan(0);
      expect(frags.fragments).toBe(0);
    } finally {
      server.kill('SIGKILL');
      await topo.setHopMtu(1500).catch(() => undefined);
    }
  }, 60_000);
});
