/**
 * End-to-end (root): two `braid up` processes in network namespaces with real TUN devices and
 * three veth WAN links. Skipped with a printed reason when not root; CI runs as root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/overlay.e2e.test.ts: needs root (network namespaces, TUN); CI runs it as root');
const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const tool = (name: string): string => fileURLToPath(new URL(`../../sim/tools/${name}`, import.meta.url));

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Longest silence between received echo replies, from `ping -D` output (seconds timestamps). */
function longestReplyGapMs(pingOut: string): { gapMs: number; received: number } {
  const times = [...pingOut.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=\d+/gm)].map((m) => Number(m[1]) * 1000);
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return { gapMs: gap, received: times.length };
}

describe.skipIf(!ROOT)('end-to-end: two braid up processes over 3 veth links', () => {
  let h: TwoSites;
  beforeAll(async () => {
    h = await startTwoSites({ tag: `e${process.pid % 100000}` });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('ping crosses the overlay', async () => {
    const r = await h.topo.execIn('a', ['ping', '-c', '10', '-i', '0.1', '-W', '2', h.b.tunAddress]);
    expect(r.stdout).toMatch(/10 packets transmitted, 10 received/);
  });

  // Before the iperf3 run, not after: that run loses packets at the receiving link socket (256 KiB
  // with TUN offloads, by design: docs/MTU.md), the loss meter counts them against the path that
  // carried it, and that path stays DEGRADED for over 15 s; steering may then keep new flows off it
  // (a CI run saw mpls=0 inet=1100 lte=1300). This test is about spreading over healthy links.
  it('flows spread: per-link counters show all 3 links carrying data', async () => {
    const before = await h.status('a');
    console.log(`e2e links before the 48 flows: ${before.links.map((l) => `${l.name} ${l.state}`).join(', ')}`);
    await h.topo.execIn('a', [process.execPath, RUN_TS, tool('udp-flows.ts'), h.b.tunAddress, '9', '48', '2400', '1500'], { timeoutMs: 30_000 });
    const after = await h.status('a');
    const used = after.links.map((l, i) => `${l.name}=${l.txDataPackets - before.links[i]!.txDataPackets}`);
    console.log(`e2e data packets per link from 48 UDP flows: ${used.join(' ')}`);
    for (let i = 0; i < 3; i++) expect(after.links[i]!.txDataPackets - before.links[i]!.txDataPackets).toBeGreaterThan(0);
    const bAfter = await h.status('b');
    expect(bAfter.links.every((l) => l.rxDataPackets > 0)).toBe(true);
  });

  it('an iperf3 TCP run (5 s) completes through the overlay', async () => {
    const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', '-B', h.b.tunAddress]);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const r = await h.topo.execIn('a', ['iperf3', '-c', h.b.tunAddress, '-t', '5', '-J'], { timeoutMs: 30_000 });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
      const mbps = j.end.sum_received.bits_per_second / 1e6;
      console.log(`e2e iperf3 TCP through the overlay: ${mbps.toFixed(1)} Mbit/s (${j.end.sum_received.bytes} bytes)`);
      expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('the active link set down during a 100 pps ping: the gap is under 1 s (issue 4; issue 2 asks 2 s)', async () => {
    // Find the link the ping flow uses: send a few pings and see which link's data counter moves.
    const s0 = await h.status('a');
    await h.topo.execIn('a', ['ping', '-c', '5', '-i', '0.05', h.b.tunAddress]);
    const s1 = await h.status('a');
    const active = s1.links.reduce((best, l, i) => (l.txDataPackets - s0.links[i]!.txDataPackets > best.d ? { i, d: l.txDataPackets - s0.links[i]!.txDataPackets } : best), { i: 0, d: -1 }).i;
    const ifname = h.topo.a.links[active]!.ifname;
    // 100 pps for 6 s; the cut comes 2 s in.
    const ping = h.topo.execIn('a', ['ping', '-D', '-c', '600', '-i', '0.01', '-W', '1', h.b.tunAddress], { timeoutMs: 30_000 }).catch((e: Error) => ({ stdout: e.message, stderr: '' }));
    await new Promise((r) => setTimeout(r, 2000));
    await h.topo.execIn('a', ['ip', 'link', 'set', ifname, 'down']);
    const out = (await ping).stdout;
    const { gapMs, received } = longestReplyGapMs(out);
    console.log(`e2e link-down at 100 pps (${s1.links[active]!.name}/${ifname}): ${received}/600 replies, longest gap ${gapMs.toFixed(0)} ms`);
    expect(gapMs).toBeLessThan(1000);
    expect(received).toBeGreaterThan(500);
    await h.topo.execIn('a', ['ip', 'link', 'set', ifname, 'up']);
  });

  it('reload with a bad config (SIGHUP) keeps traffic flowing on the old one; a good one is accepted', async () => {
    const original = readFileSync(h.a.configPath, 'utf8');
    try {
      const ping = h.topo.execIn('a', ['ping', '-c', '60', '-i', '0.05', '-W', '1', h.b.tunAddress], { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 800));
      const before = (await h.status('b')).deliveredPackets;
      writeFileSync(h.a.configPath, original.replace(/port: 51900/, 'port: not-a-port'));
      process.kill(h.a.proc.pid!, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 1000));
      const mid = (await h.status('b')).deliveredPackets;
      const viaSocket = await h.control('a', { cmd: 'reload' });
      const out = (await ping).stdout;
      const after = (await h.status('b')).deliveredPackets;
      console.log(`e2e reload: delivered at b ${before} -> ${mid} -> ${after} across a bad reload; socket reload said ${JSON.stringify(viaSocket)}`);
      expect(h.a.proc.exitCode).toBeNull();
      expect(mid).toBeGreaterThan(before);
      expect(after).toBeGreaterThan(mid);
      expect(out).toMatch(/60 packets transmitted, 60 received/);
      expect(viaSocket.ok).toBe(false);
      expect(String(viaSocket.error)).toMatch(/links\[0\]\.port/);
      expect(h.a.output()).toMatch(/reload rejected, keeping the running config/);
      writeFileSync(h.a.configPath, original);
      expect(await h.control('a', { cmd: 'reload' })).toEqual({ ok: true });
      // Classes apply live; queue settings wait for a restart, and the log says which is which.
      writeFileSync(h.a.configPath, `${original.trimEnd()}\nclasses:\n  voice:\n    strategy: duplicate\n    sla: { rttMs: 250 }\n  bulk:\n    queue: { weight: 2 }\n`);
      expect(await h.control('a', { cmd: 'reload' })).toEqual({ ok: true });
      await new Promise((r) => setTimeout(r, 300));
      expect(h.a.output()).toMatch(/config reloaded: applied classes\.voice\.sla, classes\.voice\.strategy; changes to classes\.\*\.queue take effect at the next restart/);
      const voice = (await h.status('a')).classes.find((c: { name: string }) => c.name === 'voice') as { strategy?: string };
      expect(voice.strategy).toBe('duplicate');
    } finally {
      writeFileSync(h.a.configPath, original);
    }
  });

  it('100,000 random and mutated datagrams at the link sockets: keeps forwarding, memory flat, drops counted by reason', async () => {
    const pid = h.b.proc.pid!;
    // Warm up, then measure RSS around the flood.
    await h.topo.execIn('a', ['ping', '-c', '20', '-i', '0.05', h.b.tunAddress]);
    const rssBefore = rssKiB(pid);
    const dropsBefore = (await h.status('b')).drops;
    const targets = h.topo.b.links.map((l) => `${l.address}:51900`).join(',');
    const ping = h.topo.execIn('a', ['ping', '-c', '100', '-i', '0.1', '-W', '1', h.b.tunAddress], { timeoutMs: 60_000 });
    const fuzz = await h.topo.execIn('a', [process.execPath, RUN_TS, tool('udp-fuzz.ts'), targets, '100000', '30000', '7'], { timeoutMs: 60_000 });
    const pingOut = (await ping).stdout;
    const after = await h.status('b');
    const rssAfter = rssKiB(pid);
    const dropDelta = Object.fromEntries(Object.entries(after.drops).map(([k, v]) => [k, v - (dropsBefore as Record<string, number>)[k]!]).filter(([, v]) => (v as number) > 0));
    console.log(`e2e fuzz: ${fuzz.stdout.trim()}; ping during flood: ${/(\d+) received/.exec(pingOut)?.[1]}/100; rss ${rssBefore} -> ${rssAfter} KiB; drops ${JSON.stringify(dropDelta)}`);
    expect(pingOut).toMatch(/100 packets transmitted, (9[5-9]|100) received/);
    expect(Object.values(dropDelta).reduce((a, b) => (a as number) + (b as number), 0)).toBeGreaterThan(50_000);
    expect(rssAfter - rssBefore).toBeLessThan(30 * 1024);
    expect(h.b.proc.exitCode).toBeNull();
  }, 120_000);
});
