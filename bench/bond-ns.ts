/**
 * The namespace part of `npm run bench -- bond` (issue 17's acceptance figures), run by
 * bench/bond.ts when root: two `braid up` over three veth links shaped to 100 Mbit/s each with tbf
 * (src/io/realtime/bond-ns.ts), iperf3 TCP through the overlay:
 *   bond-ns-one-flow       one TCP flow, default class bonded; peers in the same run: the same flow
 *                          balanced (sticks to one link: `sticky`) and through a single link (`one-link`);
 *   bond-ns-cut-stall      the longest stall of a bonded flow when one link is cut for 5 s;
 *   bond-ns-recovery       eight balanced flows, a link cut for 5 s: aggregate in the 10 s after the
 *                          restore as % of the pre-fault rate (peers: both rates);
 *   bond-ns-delay-tcp      one TCP flow, 15 s, with 10 / 30 / 60 ms added one way on the three links
 *                          (both directions: RTTs +20 / +60 / +120 ms) by the userspace netem relay
 *                          (one process per link in a WAN namespace, src/io/realtime/relay.ts; this
 *                          kernel has no sch_netem), tbf 100 Mbit/s still on the edges' ends: bonded
 *                          with the box's congestion control; peers: bonded with CUBIC, the same
 *                          flow balanced (sticky) in the same run, and a control: bonded over three
 *                          links of 60 ms each (`equal-delay`: the same ~120 ms RTT on every path,
 *                          what TCP and this bed reach at that RTT whatever the scheduler), and
 *                          the flow bonded with `bond.equalizeDelay` (every packet held at the
 *                          receiver to the 60 ms link's delay; box CC and CUBIC: `equalized`,
 *                          `equalized-cubic`) with the class queue an equalizing class gets by default (EQUALIZE_QUEUE_MS, 210 ms at the link's rate). TCP buffers 32 MB in both
 *                          namespaces (the bond's RTT under load is the slowest link's, ~130 ms:
 *                          4.5 MB in flight at 280 Mbit/s) and tun.txQueueLen 1000 (the default 64
 *                          drops the bursts a 130 ms window sends: 6,667 TUN drops in 10 s).
 * Each run is short (6-20 s); on a shared 2-core box the figures are CPU-bound and low.
 */
import { loadavg } from 'node:os';
import { iperf, linkDataDelta, longestStallS, startBondSites, type BondSites, type BondSitesOptions, type IperfResult } from '../src/io/realtime/bond-ns.ts';

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
/** One-way delay added on each link (ms, both directions), the "10/30/60 ms added". */
const DELAYS_MS = [10, 30, 60];
const DELAY_SECONDS = 15;
/** TCP buffers in both namespaces for the delayed runs (min default max, bytes). */
const TCP_BUFFERS = '4096 131072 33554432';

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

async function withSites<T>(tag: string, strategy: 'bond' | 'balance', fn: (h: BondSites) => Promise<T>, links?: string[], more: Partial<BondSitesOptions> = {}): Promise<T> {
  const h = await startBondSites({ tag, rateMbit: RATE_MBIT, strategy, ...(links ? { links } : {}), ...more });
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
  // One flow over links with 10 / 30 / 60 ms added: bonded (the box's congestion control, then
  // CUBIC), then balanced (sticky). Each flow after a 3 s warm-up flow.
  let cc = 'default';
  const delayed = async (h: BondSites, extra: string[] = []): Promise<{ r: IperfResult; perLink: Map<string, number>; relayLateMs: number }> => {
    for (const site of ['a', 'b'] as const) await h.topo.execIn(site, ['sysctl', '-q', '-w', `net.ipv4.tcp_rmem=${TCP_BUFFERS}`, `net.ipv4.tcp_wmem=${TCP_BUFFERS}`]);
    cc = (await h.topo.execIn('a', ['sysctl', '-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim();
    await iperf(h, 3, 1, 0.5, extra);
    const before = await h.status('a');
    const r = await iperf(h, DELAY_SECONDS, 1, 0.5, extra);
    const perLink = linkDataDelta(before, await h.status('a'));
    const relayLateMs = Math.max(0, ...(await h.relayStats()).map((st) => Number(st.maxLateMs ?? 0)));
    return { r, perLink, relayLateMs };
  };
  const delayOpts: Partial<BondSitesOptions> = { delayMs: DELAYS_MS, tunTxQueueLen: 1000 };
  const bondDelay = await withSites(`${tag}d`, 'bond', async (h) => ({ def: await delayed(h), cubic: await delayed(h, ['-C', 'cubic']) }), undefined, delayOpts);
  const eqDelay = await withSites(`${tag}z`, 'bond', async (h) => ({ def: await delayed(h), cubic: await delayed(h, ['-C', 'cubic']) }), undefined, {
    ...delayOpts,
    defaultClass: { bond: { equalizeDelay: true } },
  });
  const stickyDelay = await withSites(`${tag}e`, 'balance', (h) => delayed(h), undefined, delayOpts);
  const equalDelay = await withSites(`${tag}q`, 'bond', (h) => delayed(h), undefined, { ...delayOpts, delayMs: DELAYS_MS.map(() => Math.max(...DELAYS_MS)) });
  const pre = rateBetween(sticky.eight.intervalBytes, 1, 1, 5);
  const post = rateBetween(sticky.eight.intervalBytes, 1, 15, 20);
  const stall = longestStallS(bonded.cut);
  log(`namespaces, 3 x ${RATE_MBIT} Mbit/s (tbf): 1 TCP flow bonded ${bonded.one.mbps.toFixed(1)} Mbit/s (${bonded.one.retransmits} retransmits), balanced (sticky) ${sticky.one.mbps.toFixed(1)} (${sticky.one.retransmits}), one link ${oneLink.mbps.toFixed(1)} (${oneLink.retransmits})\n`);
  log(`  bonded flow, link cut 5 s: ${bonded.cut.mbps.toFixed(1)} Mbit/s over 16 s, longest stall ${stall.toFixed(2)} s; per 0.25 s: ${bonded.cut.intervalBytes.map((b) => ((b * 8) / 0.25 / 1e6).toFixed(0)).join(' ')}\n`);
  log(`  8 balanced flows, link cut 5-10 s: pre-fault ${pre.toFixed(1)} Mbit/s, 5-10 s after the restore ${post.toFixed(1)}; per second: ${sticky.eight.intervalBytes.map((b) => ((b * 8) / 1e6).toFixed(0)).join(' ')}\n`);
  const perLink = (m: Map<string, number>): string => [...m].map(([n, v]) => `${n} ${v}`).join(' / ');
  const delayRow = (what: string, d: { r: IperfResult; perLink: Map<string, number>; relayLateMs: number }): string =>
    `| ${what} | ${d.r.mbps.toFixed(1)} | ${d.r.retransmits} | ${perLink(d.perLink)} | ${d.relayLateMs.toFixed(1)} |`;
  log(`namespaces, 3 x ${RATE_MBIT} Mbit/s (tbf), ${DELAYS_MS.join(' / ')} ms added one way (userspace relay), 1 TCP flow ${DELAY_SECONDS} s: bonded (${cc}) ${bondDelay.def.r.mbps.toFixed(1)} Mbit/s (${bondDelay.def.r.retransmits} retr.), bonded (cubic) ${bondDelay.cubic.r.mbps.toFixed(1)} (${bondDelay.cubic.r.retransmits}), balanced (sticky, ${cc}) ${stickyDelay.r.mbps.toFixed(1)} (${stickyDelay.r.retransmits}); control, every link ${Math.max(...DELAYS_MS)} ms, bonded (${cc}) ${equalDelay.r.mbps.toFixed(1)} (${equalDelay.r.retransmits}); equalized (${cc}) ${eqDelay.def.r.mbps.toFixed(1)} (${eqDelay.def.r.retransmits}), equalized (cubic) ${eqDelay.cubic.r.mbps.toFixed(1)} (${eqDelay.cubic.r.retransmits})\n`);
  log(`  per 0.5 s bonded (${cc}): ${bondDelay.def.r.intervalBytes.map((b) => ((b * 8) / 0.5 / 1e6).toFixed(0)).join(' ')}; data packets per link ${perLink(bondDelay.def.perLink)}\n`);
  log(`  per 0.5 s bonded (cubic): ${bondDelay.cubic.r.intervalBytes.map((b) => ((b * 8) / 0.5 / 1e6).toFixed(0)).join(' ')}; data packets per link ${perLink(bondDelay.cubic.perLink)}\n`);
  figures.push({ bench: 'bond-ns-one-flow', value: r1(bonded.one.mbps), unit: 'Mbit/s', peers: { sticky: r1(sticky.one.mbps), 'one-link': r1(oneLink.mbps) } });
  figures.push({ bench: 'bond-ns-cut-stall', value: stall, unit: 's' });
  figures.push({ bench: 'bond-ns-delay-tcp', value: r1(bondDelay.def.r.mbps), unit: 'Mbit/s', peers: { cubic: r1(bondDelay.cubic.r.mbps), sticky: r1(stickyDelay.r.mbps), 'equal-delay': r1(equalDelay.r.mbps), equalized: r1(eqDelay.def.r.mbps), 'equalized-cubic': r1(eqDelay.cubic.r.mbps) } });
  figures.push({ bench: 'bond-ns-recovery', value: pre > 0 ? r1((post / pre) * 100) : 0, unit: '% of pre-fault', peers: { 'pre-fault Mbit/s': r1(pre), 'after restore Mbit/s': r1(post) } });
  rows.push(
    `| one TCP flow, ${SECONDS} s | bond ${bonded.one.mbps.toFixed(1)} (${bonded.one.retransmits} retr.) | balance/sticky ${sticky.one.mbps.toFixed(1)} (${sticky.one.retransmits}) | one link ${oneLink.mbps.toFixed(1)} (${oneLink.retransmits}) |`,
    `| bonded flow, one link cut 5 s | ${bonded.cut.mbps.toFixed(1)} over 16 s | longest stall ${stall.toFixed(2)} s | |`,
    `| 8 balanced flows, one link cut 5 s | pre-fault ${pre.toFixed(1)} | 5-10 s after restore ${post.toFixed(1)} (${pre > 0 ? ((post / pre) * 100).toFixed(0) : '-'}%) | |`,
    '',
    `One TCP flow, ${DELAY_SECONDS} s, ${DELAYS_MS.join(' / ')} ms added one way on the three links (userspace relay), tbf ${RATE_MBIT} Mbit/s:`,
    '',
    '| flow | Mbit/s | retransmits | data packets per link | relay late max ms (since the sites started) |',
    '| --- | ---: | ---: | --- | ---: |',
    delayRow(`bonded, ${cc}`, bondDelay.def),
    delayRow('bonded, cubic', bondDelay.cubic),
    delayRow(`bonded, bond.equalizeDelay (its default queue: 210 ms), ${cc}`, eqDelay.def),
    delayRow('bonded, bond.equalizeDelay (its default queue: 210 ms), cubic', eqDelay.cubic),
    delayRow(`balanced (sticky), ${cc}`, stickyDelay),
    delayRow(`control: every link ${Math.max(...DELAYS_MS)} ms, bonded, ${cc}`, equalDelay),
  );
  return { figures, rows, loadAvg };
}
