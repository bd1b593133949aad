/**
 * End-to-end (root, issue 11): a hub and three spokes, each a real `braid up` with its own TUN, in
 * network namespaces (sim/hub-e2e.ts draws the topology): spoke 1 with 3 links, spoke 2 with 2,
 * spoke 3 with 1 behind nftables masquerade, unknown to the hub until its first packet, with
 * persistentKeepalive. Branch-to-branch goes through the hub's core. Skipped with a printed reason
 * when not root; CI runs it as root and .ci/run installs the tools it needs.
 *
 * The measured gaps and throughputs are printed (console.log) for the CI log; the assertions are
 * counts, plus the acceptance's 1 s bound for NAT rebinding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../../sim/netns.ts';
import { longestReplyGapMs, missingTools, startHubAndSpokes, type HubAndSpokes, type NsName, type SiteName } from '../../sim/hub-e2e.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/hub.e2e.test.ts: needs root (network namespaces, TUN, nftables); CI runs it as root');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A 100 pps ping of `count` packets from `from` to `to`, with reply timestamps (-D); never rejects. */
function ping100(h: HubAndSpokes, from: NsName, to: string, count: number): Promise<string> {
  return h
    .execIn(from, ['ping', '-n', '-D', '-c', String(count), '-i', '0.01', '-W', '1', to], { timeoutMs: count * 10 + 20_000 })
    .then((r) => r.stdout)
    .catch((e: Error) => e.message);
}

function peerOf(snap: EdgeSnapshot, name: string): NonNullable<EdgeSnapshot['peers']>[number] {
  const p = snap.peers?.find((x) => x.name === name);
  if (!p) throw new Error(`no peer ${name} in ${snap.site}'s status (have ${snap.peers?.map((x) => x.name).join(', ')})`);
  return p;
}

describe.skipIf(!ROOT)('end-to-end: a hub and three spokes, each a braid up process', () => {
  let h: HubAndSpokes;
  beforeAll(async () => {
    const missing = await missingTools();
    if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')} (bash .ci/run installs them)`);
    h = await startHubAndSpokes({ tag: `h${process.pid % 100000}`, keepaliveS: 5 });
    await h.waitReady(90_000);
  }, 150_000);
  afterAll(async () => {
    await h?.stop();
  }, 30_000);

  it('every spoke reaches every other spoke through the hub (forwarded in its core) and the hub LAN', async () => {
    const spokes: SiteName[] = ['s1', 's2', 's3'];
    const before = await h.status('hub');
    const results: string[] = [];
    for (const from of spokes) {
      const targets = [...spokes.filter((s) => s !== from).map((s) => h.sites[s].tunAddress), h.hubLanAddress, h.sites.hub.tunAddress];
      for (const to of targets) {
        // The first packet of a new flow may wait for a path: one unmeasured ping, then five.
        await h.execIn(from, ['ping', '-n', '-c', '1', '-W', '2', to]).catch(() => undefined);
        const r = await h.execIn(from, ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '2', to]).catch((e: Error) => ({ stdout: e.message }));
        const got = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
        results.push(`${from}->${to} ${got}/5`);
        expect(got, `${from} -> ${to}:\n${r.stdout}`).toBe(5);
      }
    }
    const after = await h.status('hub');
    const fwd = (name: string): number => peerOf(after, name).forwardedPackets - peerOf(before, name).forwardedPackets;
    console.log(`e2e hub: pings ${results.join(', ')}; forwarded by the hub's core from branch-1 ${fwd('branch-1')}, branch-2 ${fwd('branch-2')}, branch-3 ${fwd('branch-3')}`);
    // Each spoke sent 2 x 6 echo requests to the other two spokes and answered 2 x 6: at least 20 forwarded from each (24 when the unmeasured first pings also made it).
    for (const name of ['branch-1', 'branch-2', 'branch-3']) expect(fwd(name)).toBeGreaterThanOrEqual(20);
    // The hub learned spoke 3's address from its packets: the NAT's public side, not its LAN address.
    const s3Path = after.links.find((l) => l.peer === 'branch-3');
    expect(s3Path?.remote).toMatch(/^172\.22\.0\.13:\d+$/);
  }, 60_000);

  it('iperf3 TCP spoke 1 -> spoke 2 through the hub completes', async () => {
    const to = h.sites.s2.tunAddress;
    const server = h.spawnIn('s2', ['iperf3', '-s', '-1', '--forceflush', '-B', to]);
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error(`iperf3 server in spoke 2 did not start: ${out}`)), 10_000);
        server.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          if (/Server listening/.test(out)) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const r = await h.execIn('s1', ['iperf3', '-c', to, '-t', '5', '-J'], { timeoutMs: 40_000 });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } } };
      console.log(`e2e hub: iperf3 TCP spoke 1 -> hub -> spoke 2: ${(j.end.sum_received.bits_per_second / 1e6).toFixed(1)} Mbit/s (${j.end.sum_received.bytes} bytes, ${j.end.sum_sent.retransmits ?? 0} retransmits)`);
      expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    } finally {
      server.kill('SIGKILL');
    }
  }, 60_000);

  it("spoke 3's NAT mapping changes (new public port): traffic resumes within 1 s, both directions", async () => {
    const gaps: string[] = [];
    // Twice: the hub pinging spoke 3 (only spoke 3's own packets can tell the hub its new port)
    // and spoke 3 pinging the hub LAN.
    for (const [from, to] of [
      ['hub', h.sites.s3.tunAddress],
      ['s3', h.hubLanAddress],
    ] as const) {
      const ping = ping100(h, from, to, 500);
      await sleep(2000);
      const { before, after } = await h.natRebind();
      const out = await ping;
      const { gapMs, received } = longestReplyGapMs(out);
      const hub = await h.status('hub');
      const remote = hub.links.find((l) => l.peer === 'branch-3')?.remote;
      gaps.push(`${from}->${to}: public port ${before} -> ${after}, hub now sends to ${remote}, ${received}/500 replies, longest gap ${gapMs.toFixed(0)} ms`);
      expect(before).toBeDefined();
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      expect(remote).toBe(`172.22.0.13:${after}`);
      expect(gapMs, out.slice(-2000)).toBeLessThan(1000);
      expect(received).toBeGreaterThan(400);
    }
    console.log(`e2e hub NAT rebinding at 100 pps: ${gaps.join('; ')}`);
  }, 60_000);

  it("cutting spoke 1's inet link leaves spokes 2 and 3 (on the hub's same inet uplink) without a gap", async () => {
    const count = 500;
    const s1Link = 'inet';
    const pings = {
      s1: ping100(h, 's1', h.hubLanAddress, count),
      s2: ping100(h, 's2', h.hubLanAddress, count),
      s3: ping100(h, 's3', h.hubLanAddress, count),
    };
    try {
      await sleep(2000);
      await h.execIn('s1', ['ip', 'link', 'set', s1Link, 'down']);
      const out = { s1: await pings.s1, s2: await pings.s2, s3: await pings.s3 };
      const r = { s1: longestReplyGapMs(out.s1), s2: longestReplyGapMs(out.s2), s3: longestReplyGapMs(out.s3) };
      const hub = await h.status('hub');
      const s1Inet = hub.links.find((l) => l.peer === 'branch-1' && l.name === 'inet');
      console.log(
        `e2e hub link cut (spoke 1 ${s1Link} down) at 100 pps: ` +
          (['s1', 's2', 's3'] as const).map((s) => `${s} ${r[s].received}/${count} replies, longest gap ${r[s].gapMs.toFixed(0)} ms`).join('; ') +
          `; hub's path to branch-1 inet now ${s1Inet?.state}`,
      );
      // Spokes 2 and 3: no reply lost (every one of the 500 came back within ping's 1 s wait).
      expect(r.s2.received, out.s2.slice(-1500)).toBe(count);
      expect(r.s3.received, out.s3.slice(-1500)).toBe(count);
      // Spoke 1 moved to its other links.
      expect(r.s1.received).toBeGreaterThan(count - 100);
      expect(s1Inet?.state).not.toBe('up');
      for (const name of ['branch-2', 'branch-3']) expect(peerOf(hub, name).pathsUp).toBe(name === 'branch-2' ? 2 : 1);
    } finally {
      await h.execIn('s1', ['ip', 'link', 'set', s1Link, 'up']).catch(() => undefined);
    }
  }, 60_000);

  it('the hub restarts: every spoke comes back, spoke 3 (behind NAT, unknown to the hub) by its own handshake', async () => {
    // 10 pps from spoke 1 (the hub knows its endpoints and handshakes at start) and spoke 3 (the hub
    // must wait for it); the restart comes 2 s in. The gaps are printed, not asserted: spoke 3's is
    // WireGuard's timer today (see the report of issue 11).
    const count = 300;
    const ping = (from: 's1' | 's3'): Promise<string> =>
      h.execIn(from, ['ping', '-n', '-D', '-c', String(count), '-i', '0.1', '-W', '1', h.hubLanAddress], { timeoutMs: 60_000 }).then((r) => r.stdout, (e: Error) => e.message);
    const pings = { s1: ping('s1'), s3: ping('s3') };
    await sleep(2000);
    await h.restartSite('hub');
    const out = { s1: await pings.s1, s3: await pings.s3 };
    const r = { s1: longestReplyGapMs(out.s1), s3: longestReplyGapMs(out.s3) };
    console.log(`e2e hub restart at 10 pps: spoke 1 ${r.s1.received}/${count} replies, longest gap ${r.s1.gapMs.toFixed(0)} ms; spoke 3 (NAT) ${r.s3.received}/${count}, longest gap ${r.s3.gapMs.toFixed(0)} ms`);
    await h.waitReady(60_000);
    for (const from of ['s1', 's2', 's3'] as const) {
      const p = await h.execIn(from, ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '2', h.hubLanAddress]).catch((e: Error) => ({ stdout: e.message }));
      expect(p.stdout, `${from} after the hub restart`).toMatch(/5 received/);
    }
    const p = await h.execIn('s1', ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '2', h.sites.s3.tunAddress]).catch((e: Error) => ({ stdout: e.message }));
    expect(p.stdout, 'spoke 1 -> spoke 3 after the hub restart').toMatch(/5 received/);
  }, 120_000);
});
