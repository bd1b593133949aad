/**
 * Bonding in namespaces (issue 17): two `braid up` processes (sim/e2e.ts startTwoSites) over three
 * veth links, each shaped to a rate with tbf on both ends (what a branch's three small WAN links
 * look like), Braid's own shaper set a little under it (bandwidthUp, so the bond knows each link's
 * capacity), and the default class either bonded or balanced. Used by test/e2e/bond.e2e.test.ts
 * (functional checks) and bench/bond-ns.ts (the throughput figures). Needs root; names carry the
 * `brt-` prefix and everything is deleted by stop().
 */
import { startTwoSites, type TwoSites } from '../../../sim/e2e.ts';
import { createTopology, type Topology } from '../../../sim/netns.ts';
import { parseNetemSpec } from '../../../sim/netem/spec.ts';
import { createRelayTopology, startRelays, type JsonLineProcess } from './run-real.ts';
import type { EdgeSnapshot } from '../../core/types.ts';

export interface BondSitesOptions {
  tag: string;
  /** Each link's tbf rate (both directions). */
  rateMbit: number;
  /** default class: bond (one flow over every link) or balance (flows stick to a link). */
  strategy: 'bond' | 'balance';
  links?: string[];
  /**
   * One-way delay added on each link, both directions (ms, one per link): the links then go through
   * a WAN namespace where the userspace netem relay (src/io/realtime/relay.ts, one process per link)
   * delays them, as `braid sim run --real` does on kernels without sch_netem. The tbf shaping stays
   * on the edges' ends.
   */
  delayMs?: number[];
  /** Seed of the relays' netem engines (delayMs). */
  seed?: number;
  /** Both sites' TUN queue (`tun.txQueueLen`); the config's default when absent. */
  tunTxQueueLen?: number;
  /** Extra settings of the default class (merged after `strategy`). */
  defaultClass?: Record<string, unknown>;
}

export interface BondSites extends TwoSites {
  ifnames: string[];
  /** The relays' counters (delayMs), one JSON object per link. */
  relayStats(): Promise<Array<Record<string, unknown>>>;
}

/** tbf on every link, both ends; then the two edges with bandwidthUp a little under the rate. */
export async function startBondSites(opts: BondSitesOptions): Promise<BondSites> {
  const links = opts.links ?? ['mpls', 'inet', 'lte'];
  const delays = opts.delayMs;
  if (delays !== undefined && delays.length !== links.length) throw new Error(`startBondSites: ${delays.length} delays for ${links.length} links`);
  const relays: JsonLineProcess[] = [];
  const relayTopo = delays !== undefined ? await createRelayTopology(opts.tag, links) : undefined;
  const topo: Topology = relayTopo ?? (await createTopology({ tag: opts.tag, links }));
  const destroy = async (): Promise<void> => {
    for (const relay of relays) await relay.stop(2000).catch(() => undefined);
    await topo.destroy();
  };
  try {
    if (relayTopo !== undefined && delays !== undefined) {
      const specs = links.map((name, i) => ({ name, up: parseNetemSpec(`delay ${delays[i]}ms`), down: parseNetemSpec(`delay ${delays[i]}ms`) }));
      // Ahead of the edges: the relays are the network, their lateness is not Braid's.
      await startRelays(relayTopo, specs, opts.seed ?? 1, relays, { niceness: -10 });
    }
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
      extraConfig: { classes: { default: { strategy: opts.strategy, ...opts.defaultClass } } },
      ...(opts.tunTxQueueLen !== undefined ? { tunConfig: { txQueueLen: opts.tunTxQueueLen } } : {}),
    });
    const stop = async (): Promise<void> => {
      await h.stop();
      await destroy();
    };
    const relayStats = async (): Promise<Array<Record<string, unknown>>> => {
      const out: Array<Record<string, unknown>> = [];
      for (const relay of relays) {
        const seen = relay.lines.length;
        relay.send({ cmd: 'stats' });
        const m = await relay.waitFor((x) => x.stats !== undefined && relay.lines.indexOf(x) >= seen, 2000, 'stats').catch(() => undefined);
        if (m) out.push(m.stats as Record<string, unknown>);
      }
      return out;
    };
    return { ...h, stop, relayStats, ifnames: topo.a.links.map((l) => l.ifname) };
  } catch (e) {
    await destroy();
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

/** One iperf3 TCP run from a to b through the overlay: `parallel` flows for `seconds` (`extraArgs`: more iperf3 client options, e.g. `-C cubic`). */
export async function iperf(h: TwoSites, seconds: number, parallel = 1, intervalS = 0.5, extraArgs: readonly string[] = []): Promise<IperfResult> {
  const server = h.topo.spawnIn('b', ['iperf3', '-s', '-1', '-B', h.b.tunAddress]);
  try {
    await new Promise((r) => setTimeout(r, 400));
    const r = await h.topo.execIn('a', ['iperf3', '-c', h.b.tunAddress, '-t', String(seconds), '-P', String(parallel), '-i', String(intervalS), '-J', ...extraArgs], { timeoutMs: (seconds + 30) * 1000 });
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
