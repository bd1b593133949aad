/**
 * Bonding in namespaces (issue 17): two `braid up` processes (sim/e2e.ts startTwoSites) over three
 * veth links, each shaped to a rate with tbf on both ends (what a branch's three small WAN links
 * look like), Braid's own shaper set a little under it (bandwidthUp, so the bond knows each link's
 * capacity), and the default class either bonded or balanced. Used by test/e2e/bond.e2e.test.ts
 * (functional checks) and bench/bond-ns.ts (the throughput figures). Needs root; names carry the
 * `brt-` prefix and everything is deleted by stop().
 */
import { startTwoSites, type TwoSites } from './e2e.ts';
import { createTopology, type Topology } from './netns.ts';
import type { EdgeSnapshot } from '../src/core/types.ts';

export interface BondSitesOptions {
  tag: string;
  /** Each link's tbf rate (both directions). */
  rateMbit: number;
  /** default class: bond (one flow over every link) or balance (flows stick to a link). */
  strategy: 'bond' | 'balance';
  links?: string[];
}

export interface BondSites extends TwoSites {
  ifnames: string[];
}

/** tbf on every link, both ends; then the two edges with bandwidthUp a little under the rate. */
export async function startBondSites(opts: BondSitesOptions): Promise<BondSites> {
  const links = opts.links ?? ['mpls', 'inet', 'lte'];
  const topo: Topology = await createTopology({ tag: opts.tag, links });
  try {
    for (const site of ['a', 'b'] as const) {
      for (const l of topo[site].links) {
        // burst: 2 ms at the rate, at least 32 KiB (tbf needs burst >= rate / HZ); latency bounds the queue.
        const burstBytes = Math.max(32 * 1024, Math.round((opts.rateMbit * 1e6 * 0.002) / 8));
        await topo.execIn(site, ['tc', 'qdisc', 'replace', 'dev', l.ifname, 'root', 'tbf', 'rate', `${opts.rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms']);
      }
    }
    const h = await startTwoSites({
      tag: opts.tag,
      topo,
      linkConfig: { bandwidthUp: `${Math.round(opts.rateMbit * 0.95)}mbit` },
      extraConfig: { classes: { default: { strategy: opts.strategy } } },
    });
    const stop = async (): Promise<void> => {
      await h.stop();
      await topo.destroy();
    };
    return { ...h, stop, ifnames: topo.a.links.map((l) => l.ifname) };
  } catch (e) {
    await topo.destroy();
    throw e;
  }
}

export interface IperfResult {
  mbps: number;
  retransmits: number;
  /** Bytes received per interval (intervalS long each). */
  intervalBytes: number[];
  intervalS: number;
}

/** One iperf3 TCP run from a to b through the overlay: `parallel` flows for `seconds`. */
export async function iperf(h: TwoSites, seconds: number, parallel = 1, intervalS = 0.5): Promise<IperfResult> {
  const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', '-B', h.b.tunAddress]);
  try {
    await new Promise((r) => setTimeout(r, 400));
    const r = await h.topo.execIn('a', ['iperf3', '-c', h.b.tunAddress, '-t', String(seconds), '-P', String(parallel), '-i', String(intervalS), '-J'], { timeoutMs: (seconds + 30) * 1000 });
    const j = JSON.parse(r.stdout) as {
      end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } };
      intervals: { sum: { bytes: number } }[];
    };
    return {
      mbps: j.end.sum_received.bits_per_second / 1e6,
      retransmits: j.end.sum_sent.retransmits ?? 0,
      intervalBytes: j.intervals.map((i) => i.sum.bytes),
      intervalS,
    };
  } finally {
    server.kill('SIGKILL');
  }
}

/** Longest run of intervals with nothing received, in seconds (a stall). */
export function longestStallS(r: IperfResult): number {
  let run = 0;
  let worst = 0;
  for (const b of r.intervalBytes) {
    run = b === 0 ? run + 1 : 0;
    worst = Math.max(worst, run);
  }
  return worst * r.intervalS;
}

/** Data packets a's links sent: per link name, summed over paths. */
export function linkData(s: EdgeSnapshot): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of s.links) m.set(l.name, (m.get(l.name) ?? 0) + l.txDataPackets);
  return m;
}

/** Per-link data packets sent between two snapshots. */
export function linkDataDelta(before: EdgeSnapshot, after: EdgeSnapshot): Map<string, number> {
  const b = linkData(before);
  const out = new Map<string, number>();
  for (const [name, n] of linkData(after)) out.set(name, n - (b.get(name) ?? 0));
  return out;
}
