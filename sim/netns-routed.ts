/**
 * Two sites with a router between them (root): `brt-<tag>-a` -- `brt-<tag>-r` -- `brt-<tag>-b`,
 * one veth pair on each side of the router, every MTU 1500. The router forwards (and, like any
 * router, answers a DF packet too big for its next hop with ICMP Fragmentation Needed), so a test
 * can lower the MTU of a middle hop (`setHopMtu`) under a running overlay. Each namespace counts
 * the IP fragments that reach it in an nftables counter at prerouting, before any reassembly
 * (`fragments()`): the underlay's fragment count. Same Topology shape as netns.ts (one link).
 *
 *   const topo = await createRoutedTopology({ tag: 'mtu' });
 *   try { await topo.setHopMtu(1280) } finally { await topo.destroy() }
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, NAME_PREFIX, sh, type Topology, type TopoSite } from './netns.ts';

export interface RoutedTopology extends Topology {
  router: string;
  /** Sets the MTU of the router's interface towards site b (what a -> b traffic crosses). */
  setHopMtu(mtuBytes: number): Promise<void>;
  /** IP fragments seen at prerouting in a, the router and b (before reassembly), and all UDP packets. */
  fragments(): Promise<{ fragments: number; udpPackets: number }>;
}

// Counted before defragmentation (priority -500 runs ahead of conntrack's defrag at -400):
// `ip frag-off & 0x3fff != 0` is a fragment (MF set, or a non-zero offset).
const NFT_RULES = `table ip brtfrag {
  counter frags {}
  counter udps {}
  chain pre {
    type filter hook prerouting priority -500; policy accept;
    ip frag-off & 0x3fff != 0 counter name "frags"
    meta l4proto udp counter name "udps"
  }
}
`;

async function counter(ns: string, name: string): Promise<number> {
  const { stdout } = await sh(['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'counter', 'ip', 'brtfrag', name]);
  const j = JSON.parse(stdout) as { nftables: { counter?: { packets: number } }[] };
  return j.nftables.find((x) => x.counter !== undefined)?.counter?.packets ?? 0;
}

export async function createRoutedTopology(opts: { tag: string }): Promise<RoutedTopology> {
  if (!/^[a-z0-9]{1,6}$/.test(opts.tag)) throw new Error('topology tag: 1-6 lowercase letters/digits');
  const tag = opts.tag;
  await cleanupStale(tag);
  const nsA = `${NAME_PREFIX}${tag}-a`;
  const nsB = `${NAME_PREFIX}${tag}-b`;
  const nsR = `${NAME_PREFIX}${tag}-r`;
  const dir = mkdtempSync(join(tmpdir(), `brt-${tag}-nft-`));
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const ns of [nsA, nsR, nsB]) await sh(['ip', 'netns', 'del', ns]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const a: TopoSite = { ns: nsA, links: [{ name: 'inet', ifname: 'wan0', address: '10.210.1.1' }] };
  const b: TopoSite = { ns: nsB, links: [{ name: 'inet', ifname: 'wan0', address: '10.210.2.1' }] };
  try {
    for (const ns of [nsA, nsR, nsB]) {
      await sh(['ip', 'netns', 'add', ns]);
      await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // Created in the root namespace with temporary names and moved at once: never left there.
    await sh(['ip', 'link', 'add', `${NAME_PREFIX}${tag}0x`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `${NAME_PREFIX}${tag}0y`, 'netns', nsR]);
    await sh(['ip', 'link', 'add', `${NAME_PREFIX}${tag}1x`, 'netns', nsB, 'type', 'veth', 'peer', 'name', `${NAME_PREFIX}${tag}1y`, 'netns', nsR]);
    const ends: [string, string, string, string][] = [
      [nsA, `${NAME_PREFIX}${tag}0x`, 'wan0', '10.210.1.1/24'],
      [nsR, `${NAME_PREFIX}${tag}0y`, 'ra', '10.210.1.254/24'],
      [nsB, `${NAME_PREFIX}${tag}1x`, 'wan0', '10.210.2.1/24'],
      [nsR, `${NAME_PREFIX}${tag}1y`, 'rb', '10.210.2.254/24'],
    ];
    for (const [ns, tmp, name, addr] of ends) {
      await sh(['ip', '-n', ns, 'link', 'set', tmp, 'name', name]);
      await sh(['ip', '-n', ns, 'addr', 'add', addr, 'dev', name]);
      await sh(['ip', '-n', ns, 'link', 'set', name, 'up']);
    }
    await sh(['ip', 'netns', 'exec', nsR, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await sh(['ip', '-n', nsA, 'route', 'add', '10.210.2.0/24', 'via', '10.210.1.254']);
    await sh(['ip', '-n', nsB, 'route', 'add', '10.210.1.0/24', 'via', '10.210.2.254']);
    const rules = join(dir, 'frag.nft');
    writeFileSync(rules, NFT_RULES);
    for (const ns of [nsA, nsR, nsB]) await sh(['ip', 'netns', 'exec', ns, 'nft', '-f', rules]);
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    tag,
    a,
    b,
    router: nsR,
    execIn: (site, argv, o) => sh(['ip', 'netns', 'exec', site === 'a' ? nsA : nsB, ...argv], o?.timeoutMs),
    spawnIn: (site, argv, o) => spawn('ip', ['netns', 'exec', site === 'a' ? nsA : nsB, ...argv], { stdio: 'pipe', ...o }),
    setHopMtu: async (mtuBytes) => {
      await sh(['ip', '-n', nsR, 'link', 'set', 'rb', 'mtu', String(mtuBytes)]);
    },
    fragments: async () => {
      let fragments = 0;
      let udpPackets = 0;
      for (const ns of [nsA, nsR, nsB]) {
        fragments += await counter(ns, 'frags');
        udpPackets += await counter(ns, 'udps');
      }
      return { fragments, udpPackets };
    },
    destroy,
  };
}
