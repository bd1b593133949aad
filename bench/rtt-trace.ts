// Idle RTT, taken apart (issue 13: "find where the idle RTT goes: profile the wake-ups"): two
// sites over three veth links (sim/netns.ts; wireguard-go uses the first), Braid (`braid up`, as the overlay bench runs
// it) and wireguard-go side by side, 100 pings at 0.05 s through each while the kernel traces the
// two tunnel processes' syscalls and wake-ups (bench/lib/rtt-trace.ts). Per tunnel, the medians
// of: the round trip, each of the four hops (the tunnel's own work from the syscall that brought
// a packet in to the one that sends it on) and the three wake-ups on the critical path. What the
// hops do not explain is the kernel's (veth, ICMP, ping) and is the same for both.
//
// Usage: node bin/run-ts.js bench/rtt-trace.ts  (root; tracefs; iproute2 iputils-ping
// wireguard-go wireguard-tools). Env: BENCH_RTT_PINGS (default 100), BENCH_RTT_KEEP=DIR (keep each
// tunnel's raw trace there as NAME.trace), BENCH_RTT_NODE_ARGS (node flags for both braid processes). Namespaces brt-brtt-a/b.

import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startTwoSites, type TwoSites } from '../sim/e2e.ts';
import { createTopology, isRoot, sh, type Topology } from '../sim/netns.ts';
import { killAll, machineCpu, warmUp } from './lib/netbench.ts';
import { cleanupStaleWireguard, startWireguardGo, type PeerTunnel } from './lib/peers.ts';
import { parseTrace, pingCycles, processOf, threadsOf, traceWhile, tracefs, type CycleTimes } from './lib/rtt-trace.ts';

const TAG = 'brtt';
const IF_PREFIX = `brt${TAG}`;
const PINGS = Math.max(10, Number(process.env.BENCH_RTT_PINGS ?? 100));
const PING_INTERVAL_S = 0.05;
/** Setup to teardown; normally ~1 minute. */
const HARD_LIMIT_MS = 240_000;
const log = (msg: string): void => void process.stderr.write(`[rtt-trace] ${msg}\n`);

interface TunnelResult {
  name: string;
  cycles: CycleTimes[];
  pingAvgMs: number;
}

const median = (xs: readonly (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return v.length === 0 ? undefined : v[v.length >> 1];
};
const p90 = (xs: readonly (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return v.length === 0 ? undefined : v[Math.min(v.length - 1, Math.floor(v.length * 0.9))];
};
const us = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(0));

async function measure(dir: string, topo: Topology, name: string, pids: { a: number; b: number }, address: string): Promise<TunnelResult> {
  await warmUp(topo, address);
  const a = threadsOf(pids.a);
  const b = threadsOf(pids.b);
  let out = '';
  const text = await traceWhile(dir, [...a, ...b], async () => {
    const r = await topo.execIn('a', ['ping', '-n', '-c', String(PINGS), '-i', String(PING_INTERVAL_S), '-W', '1', address], { timeoutMs: (PINGS * PING_INTERVAL_S + 10) * 1000 });
    out = r.stdout;
  });
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (process.env.BENCH_RTT_KEEP) writeFileSync(`${process.env.BENCH_RTT_KEEP}/${name}.trace`, text);
  // Threads started during the trace (event-fork traced them): added by their process.
  const events = parseTrace(text);
  const siteA = new Set(a);
  const siteB = new Set(b);
  for (const e of events) {
    if (siteA.has(e.tid) || siteB.has(e.tid) || e.tid === 0) continue;
    const tgid = processOf(e.tid);
    if (tgid === pids.a) siteA.add(e.tid);
    else if (tgid === pids.b) siteB.add(e.tid);
  }
  const cycles = pingCycles(events, siteA, siteB);
  log(`${name}: ${cycles.length} of ${PINGS} ping cycles traced, ping avg ${(times.reduce((s, x) => s + x, 0) / Math.max(1, times.length)).toFixed(3)} ms`);
  return { name, cycles, pingAvgMs: times.reduce((s, x) => s + x, 0) / Math.max(1, times.length) };
}

function summary(r: TunnelResult): { rtt?: number; hops: (number | undefined)[]; hopSum: number; wakes: (number | undefined)[]; wakeP90: (number | undefined)[] } {
  const hops = [0, 1, 2, 3].map((h) => median(r.cycles.map((c) => c.hopUs[h])));
  const wakes = [0, 1, 2].map((w) => median(r.cycles.map((c) => c.wakeUs[w])));
  const wakeP90 = [0, 1, 2].map((w) => p90(r.cycles.map((c) => c.wakeUs[w])));
  const rtt = median(r.cycles.map((c) => c.rttUs));
  return { ...(rtt === undefined ? {} : { rtt }), hops, hopSum: hops.reduce<number>((s, x) => s + (x ?? 0), 0), wakes, wakeP90 };
}

function notes(results: TunnelResult[], load: [number, number], busy: number): string {
  const rows = results.map((r) => {
    const s = summary(r);
    return `| ${r.name} | ${r.cycles.length} | ${us(s.rtt)} | ${s.hops.map(us).join(' / ')} | ${us(s.hopSum)} | ${us(s.rtt === undefined ? undefined : s.rtt - s.hopSum)} | ${s.wakes.map(us).join(' / ')} | ${s.wakeP90.map(us).join(' / ')} | ${r.pingAvgMs.toFixed(3)} |`;
  });
  return [
    `Two sites in namespaces over veth, ${PINGS} pings at ${PING_INTERVAL_S} s through each tunnel on an idle tunnel, traced with tracefs (raw_syscalls and sched_waking/sched_switch of the two tunnel processes' threads; bench/lib/rtt-trace.ts). Medians per ping cycle, in microseconds. Hops: 1 = site a TUN read -> datagram send; 2 = site b datagram receive -> TUN write; 3 = site b TUN read (the echo reply) -> send; 4 = site a receive -> TUN write. "The rest" = RTT minus the four hops: the kernel (veth, ICMP, ping) and the wake-ups. Wakes: a = ping wakes site a, b = site b runs after a's send, a2 = site a runs after b's send (median, then p90). Load average at start / end: ${load[0].toFixed(2)} / ${load[1].toFixed(2)}; machine ${(busy * 100).toFixed(0)}% busy before.`,
    '',
    '| tunnel | cycles | RTT us | hops 1 / 2 / 3 / 4 us | hops sum | the rest | wakes a / b / a2 us (p50) | wakes p90 | ping avg ms |',
    '| --- | ---: | ---: | --- | ---: | ---: | --- | --- | ---: |',
    ...rows,
  ].join('\n');
}

const cleanups: (() => Promise<void>)[] = [];
async function cleanupAll(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: Error) => log(`cleanup: ${e.message}`));
  await killAll();
}

async function main(): Promise<number> {
  if (!isRoot()) throw new Error('needs root (network namespaces, TUN devices, tracefs); run it as root');
  const dir = tracefs();
  if (dir === undefined) throw new Error('no tracefs (/sys/kernel/tracing): mount it with `mount -t tracefs nodev /sys/kernel/tracing`');
  for (const tool of ['ip', 'ping', 'wireguard-go', 'wg']) {
    if (!(await sh(['sh', '-c', `command -v ${tool}`]).then(() => true, () => false))) throw new Error(`missing ${tool}; install with: apt-get install -y iproute2 iputils-ping wireguard-go wireguard-tools`);
  }
  const load0 = loadavg()[0]!;
  const meter = machineCpu();
  await new Promise((r) => setTimeout(r, 1000));
  const busy = meter.stop();
  await cleanupStaleWireguard(IF_PREFIX);
  const topo = await createTopology({ tag: TAG, links: ['mpls', 'inet', 'lte'] });
  cleanups.push(() => topo.destroy());
  cleanups.push(() => cleanupStaleWireguard(IF_PREFIX));
  const results: TunnelResult[] = [];

  let wg: PeerTunnel | undefined = await startWireguardGo(topo, { ifPrefix: IF_PREFIX, net: '10.98.0' });
  cleanups.push(async () => wg?.stop());
  if (wg.pids.a !== undefined && wg.pids.b !== undefined) results.push(await measure(dir, topo, 'wireguard-go', { a: wg.pids.a, b: wg.pids.b }, wg.remoteAddress));
  await wg.stop();
  wg = undefined;

  log('braid: starting two braid up processes');
  // BENCH_RTT_NODE_ARGS: node flags for both braid processes (A/B of runtime settings).
  const nodeArgs = (process.env.BENCH_RTT_NODE_ARGS ?? '').split(' ').filter(Boolean);
  let h: TwoSites | undefined = await startTwoSites({ tag: TAG, topo, logLevel: 'warn', startTimeoutMs: 30_000, ...(nodeArgs.length ? { nodeArgs: { a: nodeArgs, b: nodeArgs } } : {}) });
  cleanups.push(async () => h?.stop());
  const pa = h.a.proc.pid;
  const pb = h.b.proc.pid;
  if (pa !== undefined && pb !== undefined) results.push(await measure(dir, topo, 'braid', { a: pa, b: pb }, h.b.tunAddress));
  await h.stop();
  h = undefined;

  await cleanupAll();
  const text = notes(results, [load0, loadavg()[0]!], busy);
  if (process.env.BENCH_NOTES_FILE) writeFileSync(process.env.BENCH_NOTES_FILE, `${text}\n`);
  process.stdout.write(`\n${text}\n\n`);
  const byName = new Map(results.map((r) => [r.name, summary(r)]));
  const braid = byName.get('braid');
  const wgs = byName.get('wireguard-go');
  const peer = (f: (s: ReturnType<typeof summary>) => number | undefined): Record<string, number> => {
    const v = wgs ? f(wgs) : undefined;
    return v === undefined ? {} : { 'wireguard-go': Math.round(v) };
  };
  if (braid?.rtt !== undefined) {
    process.stdout.write(`${JSON.stringify({ bench: 'rtt-trace-rtt', value: Math.round(braid.rtt), unit: 'us', peers: peer((s) => s.rtt) })}\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'rtt-trace-hops', value: Math.round(braid.hopSum), unit: 'us', peers: peer((s) => s.hopSum) })}\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'rtt-trace-rest', value: Math.round(braid.rtt - braid.hopSum), unit: 'us', peers: peer((s) => (s.rtt === undefined ? undefined : s.rtt - s.hopSum)) })}\n`);
  }
  return braid?.rtt !== undefined ? 0 : 1;
}

const hard = setTimeout(() => {
  log(`hard limit of ${HARD_LIMIT_MS / 1000} s reached: cleaning up`);
  void cleanupAll().finally(() => process.exit(1));
}, HARD_LIMIT_MS);
hard.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanupAll().finally(() => process.exit(130)));
main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (e: Error) => {
    log(`failed: ${e.stack ?? e.message}`);
    await cleanupAll();
    process.exit(1);
  },
);
