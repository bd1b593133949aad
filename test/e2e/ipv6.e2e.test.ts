/**
 * End-to-end (root), issue 13: a link whose underlay is IPv6 only. Two `braid up` processes in
 * namespaces joined by one veth pair that has IPv6 addresses only (fd00:200:N::1 and ::2, no IPv4
 * at all); each link is bound to its IPv6 address and reaches the peer at `[fd00:200:N::2]:51900`.
 * The TUNs carry IPv4 (10.99.0.x) and IPv6 (fd99::x/64) inner addresses: ping and a short iperf3
 * TCP run cross the overlay in both inner families. Skipped with a printed reason when not root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';
import type { EdgeStatus } from '../../src/control/control-socket.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/ipv6.e2e.test.ts: needs root (network namespaces, TUN); CI runs it as root');

interface IperfResult {
  end: { sum_received: { bits_per_second: number; bytes: number } };
}

describe.skipIf(!ROOT)('end-to-end: IPv6-only underlay, IPv4 and IPv6 inner traffic', () => {
  let h: TwoSites;
  beforeAll(async () => {
    // TUN MTU 1380: + 107 bytes of worst-case overhead over IPv6 (docs/MTU.md) fits the 1500-byte veth,
    // so nothing needs fragmenting on the underlay (checked below).
    h = await startTwoSites({ tag: `s${process.pid % 100000}`, links: ['wan'], underlayIpv6: true, innerIpv6: true, mtu: 1380 });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('the underlay has no IPv4 address; the link is bound to IPv6 and the peer is reached at [IPv6]:port', async () => {
    const v4 = await h.topo.execIn('a', ['ip', '-4', '-o', 'addr', 'show', 'dev', h.topo.a.links[0]!.ifname]);
    expect(v4.stdout.trim()).toBe('');
    const st = await h.status('a');
    expect(st.links[0]!.remote).toBe(`[${h.topo.b.links[0]!.address}]:51900`);
    expect(st.links[0]!.state).toBe('up');
    expect(h.a.output()).toMatch(new RegExp(`link wan bound \\[${h.topo.a.links[0]!.address}\\]:51900`));
    // The TUN's queue is Braid's default (tun.txQueueLen 64), not the kernel's 500: the delay under load.
    const st0 = (await h.status('a')) as EdgeStatus;
    expect((await h.topo.execIn('a', ['ip', 'link', 'show', 'dev', st0.tunDevice!.name])).stdout).toMatch(/ qlen 64\b/);
  });

  it('IPv4 inner: ping and an iperf3 TCP run (3 s) cross the IPv6 underlay', async () => {
    const ping = await h.topo.execIn('a', ['ping', '-c', '10', '-i', '0.1', '-W', '2', h.b.tunAddress]);
    expect(ping.stdout).toMatch(/10 packets transmitted, 10 received/);
    const mbps = await iperfTcp(h, h.b.tunAddress, []);
    console.log(`e2e IPv6 underlay, IPv4 inner iperf3 TCP: ${mbps.toFixed(1)} Mbit/s`);
  });

  it("status carries the TUN device's kernel counters, and they move with the traffic", async () => {
    const before = (await h.status('a')) as EdgeStatus;
    await h.topo.execIn('a', ['ping', '-c', '20', '-i', '0.05', '-W', '2', h.b.tunAddress]);
    const after = (await h.status('a')) as EdgeStatus;
    expect(after.tunDevice?.name).toMatch(/^brt/);
    // 20 echo requests read from the TUN by Braid, 20 replies written into it (and maybe a few more: IPv6 ND/MLD).
    expect(after.tunDevice!.txPackets - before.tunDevice!.txPackets).toBeGreaterThanOrEqual(20);
    expect(after.tunDevice!.rxPackets - before.tunDevice!.rxPackets).toBeGreaterThanOrEqual(20);
    // Queue drops are counted, not zero: the iperf3 run before this one can overflow the TUN's queue.
    expect(after.tunDevice!.txDropped).toBeGreaterThanOrEqual(before.tunDevice!.txDropped);
    expect(after.tunDevice!.writeRefused).toBeGreaterThanOrEqual(0);
  });

  it('IPv6 inner: ping -6 and an iperf3 TCP run (3 s) over IPv6 in IPv6', async () => {
    const target = h.b.tunAddress6!;
    const ping = await h.topo.execIn('a', ['ping', '-6', '-c', '10', '-i', '0.1', '-W', '2', target]);
    expect(ping.stdout).toMatch(/10 packets transmitted, 10 received/);
    const mbps = await iperfTcp(h, target, ['-6']);
    console.log(`e2e IPv6 underlay, IPv6 inner iperf3 TCP: ${mbps.toFixed(1)} Mbit/s`);
    // The datagrams really went over the link's IPv6 socket: the far side counted them on it.
    const b = await h.status('b');
    expect(b.links[0]!.rxDataPackets).toBeGreaterThan(1000);
  });

  it('the underlay carried no IPv6 fragment in either direction', async () => {
    for (const site of ['a', 'b'] as const) {
      const snmp6 = (await h.topo.execIn(site, ['cat', '/proc/net/snmp6'])).stdout;
      const created = Number(/^Ip6FragCreates\s+(\d+)/m.exec(snmp6)?.[1]);
      const reassembled = Number(/^Ip6ReasmOKs\s+(\d+)/m.exec(snmp6)?.[1]);
      expect({ site, created, reassembled }).toEqual({ site, created: 0, reassembled: 0 });
    }
  });
});

async function iperfTcp(h: TwoSites, target: string, family: string[]): Promise<number> {
  const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', ...family, '-B', target]);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const r = await h.topo.execIn('a', ['iperf3', ...family, '-c', target, '-t', '3', '-J'], { timeoutMs: 30_000 });
    const j = JSON.parse(r.stdout) as IperfResult;
    expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    return j.end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill('SIGKILL');
  }
}

/**
 * Both families on one link: every link bound to '::' (one dual-stack socket), site a configured
 * to reach b over IPv6 and site b to reach a over IPv4. The overlay works, and each side's
 * endpoint is the other's address in one of the two families (endpoints follow authenticated
 * packets, so the two sides may settle on either family).
 */
describe.skipIf(!ROOT)('end-to-end: dual-stack links (bind "::"), one peer over IPv6, the other over IPv4', () => {
  let h: TwoSites;
  beforeAll(async () => {
    h = await startTwoSites({ tag: `d${process.pid % 100000}`, links: ['wan'], underlayDual: true });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('ping and TCP cross; each side reaches the other at one of its two addresses', async () => {
    const ping = await h.topo.execIn('a', ['ping', '-c', '10', '-i', '0.1', '-W', '2', h.b.tunAddress]);
    expect(ping.stdout).toMatch(/10 packets transmitted, 10 received/);
    const mbps = await iperfTcp(h, h.b.tunAddress, []);
    const [a, b] = [await h.status('a'), await h.status('b')];
    console.log(`e2e dual-stack link: a reaches b at ${a.links[0]!.remote}, b reaches a at ${b.links[0]!.remote}; iperf3 ${mbps.toFixed(1)} Mbit/s`);
    const [la, lb] = [h.topo.a.links[0]!, h.topo.b.links[0]!];
    expect([`${lb.address}:51900`, `[${lb.address6}]:51900`]).toContain(a.links[0]!.remote);
    expect([`${la.address}:51900`, `[${la.address6}]:51900`]).toContain(b.links[0]!.remote);
    expect(h.a.output()).toMatch(/link wan bound \[::\]:51900/);
  });
});
