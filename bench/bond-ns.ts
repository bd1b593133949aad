/**
 * The namespace part of `npm run bench -- bond` (issue 17's acceptance figures), run by
 * bench/bond.ts when root: two `braid up` over three veth links shaped to 100 Mbit/s each with tbf
 * (sim/bond-ns.ts), iperf3 TCP through the overlay:
 *   bond-ns-one-flow       one TCP flow, default class bonded; peers in the same run: the same flow
 *                          balanced (sticks to one link: `sticky`) and through a single link (`one-link`);
 *   bond-ns-cut-stall      the longest stall of a bonded flow when one link is cut for 5 s;
 *   bond-ns-recovery       eight balanced flows, a link cut for 5 s: aggregate in the 10 s after the
 *                          restore as % of the pre-fault rate (peers: both rates).
 * Each run is short (6-20 s); on a shared 2-core box the figures are CPU-bound and low.
 */
import { loadavg } from 'node:os';
import { iperf, longestStallS, startBondSites, type BondSites } from '../sim/bond-ns.ts';

export interface NsFigure {
  bench: string;
  value: number;
  unit: string;
  peers?: Record<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const r1 = (x: number): number => Math.round(x * 10) / 10;
const RATE_MBIT = 100;
const SECONDS = 8;

/** The sites up now: what a SIGTERM from the bench runner (timeout) or a ^C must take down. */
let current: BondSites | undefined;
let signalled = false;
function onSignal(code: number): void {
  if (signalled) return;
  signalled = true;
  process.stderr.write(`bond-ns: signal: removing the brt- namespaces and processes\n`);
  const force = setTimeout(() => process.exit(code), 20_000);
  force.unref();
  void (current?.stop() ?? Promise.resolve()).catch(() => undefined).finally(() => process.exit(code));
}

async function withSites<T>(tag: string, strategy: 'bond' | 'balance', fn: (h: BondSites) => Promise<T>, links?: string[]): Promise<T> {
  const h = await startBondSites({ tag, rateMbit: RATE_MBIT, strategy, ...(links ? { links } : {}) });
  current = h;
  try {
    return await fn(h);
  } finally {
    current = undefined;
    await h.stop();
  }
}

/** Mean rate of the intervals in [fromS, toS) of a run. */
function rateBetween(intervalBytes: number[], intervalS: number, fromS: number, toS: number): number {
  const a = Math.round(fromS / intervalS);
  const b = Math.round(toS / intervalS);
  const xs = intervalBytes.slice(a, b);
  return xs.length === 0 ? 0 : (xs.reduce((s, x) => s + x, 0) * 8) / (xs.length * intervalS) / 1e6;
}

export async function runNamespaceBench(log: (s: string) => void): Promise<{ figures: NsFigure[]; rows: string[]; loadAvg: number }> {
  const tag = `bn${process.pid % 1000}`; // + one letter: 6 at most (sim/netns.ts tags)
  process.once('SIGTERM', () => onSignal(143));
  process.once('SIGINT', () => onSignal(130));
  const loadAvg = loadavg()[0]!;
  const rows: string[] = [];
  const figures: NsFigure[] = [];
  // One flow: bonded, then the same flow balanced (sticky), then through one link.
  const bonded = await withSites(`${tag}b`, 'bond', async (h) => {
    await iperf(h, 2); // warm-up: TCP slow start and the paths' first figures
    const one = await iperf(h, SECONDS);
    const run = iperf(h, 16, 1, 0.25);
    await sleep(4000);
    await h.topo.execIn('a', ['ip', 'link', 'set', h.ifnames[1]!, 'down']);
    await sleep(5000);
    await h.topo.execIn('a', ['ip', 'link', 'set', h.ifnames[1]!, 'up']);
    const cut = await run;
    return { one, cut };
  });
  const sticky = await withSites(`${tag}s`, 'balance', async (h) => {
    await iperf(h, 2);
    const one = await iperf(h, SECONDS);
    // Eight long-lived flows, one link cut for 5 s (at 5 s) and restored (at 10 s).
    const run = iperf(h, 22, 8, 1);
    await sleep(5000);
    await h.topo.execIn('a', ['ip', 'link', 'set', h.ifnames[2]!, 'down']);
    await sleep(5000);
    await h.topo.execIn('a', ['ip', 'link', 'set', h.ifnames[2]!, 'up']);
    const eight = await run;
    return { one, eight };
  });
  const oneLink = await withSites(`${tag}o`, 'balance', async (h) => {
    await iperf(h, 2);
    return iperf(h, SECONDS);
  }, ['mpls']);
  const pre = rateBetween(sticky.eight.intervalBytes, 1, 1, 5);
  const post = rateBetween(sticky.eight.intervalBytes, 1, 15, 20);
  const stall = longestStallS(bonded.cut);
  log(`namespaces, 3 x ${RATE_MBIT} Mbit/s (tbf): 1 TCP flow bonded ${bonded.one.mbps.toFixed(1)} Mbit/s (${bonded.one.retransmits} retransmits), balanced (sticky) ${sticky.one.mbps.toFixed(1)} (${sticky.one.retransmits}), one link ${oneLink.mbps.toFixed(1)} (${oneLink.retransmits})\n`);
  log(`  bonded flow, link cut 5 s: ${bonded.cut.mbps.toFixed(1)} Mbit/s over 16 s, longest stall ${stall.toFixed(2)} s; per 0.25 s: ${bonded.cut.intervalBytes.map((b) => ((b * 8) / 0.25 / 1e6).toFixed(0)).join(' ')}\n`);
  log(`  8 balanced flows, link cut 5-10 s: pre-fault ${pre.toFixed(1)} Mbit/s, 5-10 s after the restore ${post.toFixed(1)}; per second: ${sticky.eight.intervalBytes.map((b) => ((b * 8) / 1e6).toFixed(0)).join(' ')}\n`);
  figures.push({ bench: 'bond-ns-one-flow', value: r1(bonded.one.mbps), unit: 'Mbit/s', peers: { sticky: r1(sticky.one.mbps), 'one-link': r1(oneLink.mbps) } });
  figures.push({ bench: 'bond-ns-cut-stall', value: stall, unit: 's' });
  figures.push({ bench: 'bond-ns-recovery', value: pre > 0 ? r1((post / pre) * 100) : 0, unit: '% of pre-fault', peers: { 'pre-fault Mbit/s': r1(pre), 'after restore Mbit/s': r1(post) } });
  rows.push(
    `| one TCP flow, ${SECONDS} s | bond ${bonded.one.mbps.toFixed(1)} (${bonded.one.retransmits} retr.) | balance/sticky ${sticky.one.mbps.toFixed(1)} (${sticky.one.retransmits}) | one link ${oneLink.mbps.toFixed(1)} (${oneLink.retransmits}) |`,
    `| bonded flow, one link cut 5 s | ${bonded.cut.mbps.toFixed(1)} over 16 s | longest stall ${stall.toFixed(2)} s | |`,
    `| 8 balanced flows, one link cut 5 s | pre-fault ${pre.toFixed(1)} | 5-10 s after restore ${post.toFixed(1)} (${pre > 0 ? ((post / pre) * 100).toFixed(0) : '-'}%) | |`,
  );
  return { figures, rows, loadAvg };
}
