// Hub benchmark (issue 11): a hub and three spokes, each a real `braid up` in its own namespace
// (sim/hub-e2e.ts: spoke 1 with 3 links, spoke 2 with 2, spoke 3 with 1 behind nftables
// masquerade), measured in one run:
//   1. each spoke alone: iperf3 TCP (1 stream) spoke -> hub TUN address, one spoke at a time
//   2. the three spokes at once, each to its own iperf3 server on the hub: per-spoke and aggregate
//   3. branch to branch: iperf3 spoke 1 -> spoke 2 through the hub (forwarded inside the hub's
//      core) next to spoke 1 -> hub (1), with the hub process's CPU time per megabyte for both,
//      and ping RTT spoke 1 -> spoke 2 next to spoke 1 -> hub
//   4. the routing lookup cost at 4,096 peers x 4 prefixes (bench/lib/routing-lookup.ts, in
//      this process, after the namespaces are gone)
// Before each iperf3 run it waits (within a budget) for the box to be quiet and records how busy
// it was. Every namespace and process is removed at the end, also on failure or SIGTERM.
// Prints one JSON object per figure as its last stdout lines; notes go to $BENCH_NOTES_FILE.
//
// Usage: node bin/run-ts.js bench/hub.ts  (root; iproute2 iputils-ping iperf3 nftables conntrack)
// Env: BENCH_IPERF_SECONDS (default 8), BENCH_HUB_ROUNDS (default 2).

import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { missingTools, startHubAndSpokes, type HubAndSpokes, type NsName } from '../sim/hub-e2e.ts';
import { isRoot } from '../sim/netns.ts';
import { captureOutput, cpuMeter, killAll, stopProcess, track, waitForQuiet } from './lib/netbench.ts';
import { measureRoutingLookup } from './lib/routing-lookup.ts';

const TAG = 'bhub';
const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 8);
const QUIET_WAIT_MS = 15_000;
const QUIET_WAIT_TOTAL_MS = 45_000;
const QUIET_BUSY_BELOW = 0.3;
const HARD_LIMIT_MS = 420_000;
const SPOKES = ['s1', 's2', 's3'] as const;
const ROUNDS = Math.max(1, Number(process.env.BENCH_HUB_ROUNDS ?? 2));
const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;
/** Hub CPU per megabyte of payload: core-ms per MB = fraction of a core / (MB/s) * 1000. */
const cpuPerMB = (frac: number, mbps: number): number => (frac / (mbps / 8)) * 1000;
type Spoke = (typeof SPOKES)[number];

const log = (msg: string): void => void process.stderr.write(`[hub] ${msg}\n`);
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;
const pct = (x: number): string => `${Math.round(x * 100)}%`;

let quietLeftMs = QUIET_WAIT_TOTAL_MS;
async function quiet(): Promise<number> {
  const t0 = Date.now();
  const busy = await waitForQuiet(Math.min(QUIET_WAIT_MS, Math.max(0, quietLeftMs)), QUIET_BUSY_BELOW);
  quietLeftMs -= Date.now() - t0 - 1000;
  return busy;
}

interface Tcp {
  mbps: number;
  retransmits: number;
  bytes: number;
}

/** iperf3 client in `from` to a one-off server in `serverNs` on `address`:`port`. */
async function iperf(h: HubAndSpokes, from: NsName, serverNs: NsName, address: string, port: number): Promise<Tcp> {
  const server = track(h.spawnIn(serverNs, ['iperf3', '-s', '-1', '--forceflush', '-p', String(port), '-B', address]));
  const out = captureOutput(server);
  try {
    await out.waitFor(/Server listening/, 5000, `iperf3 server ${address}:${port}`);
    const r = await h.execIn(from, ['iperf3', '-c', address, '-p', String(port), '-t', String(IPERF_SECONDS), '-J'], { timeoutMs: (IPERF_SECONDS + 30) * 1000 });
    const j = JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number }; sum_sent?: { retransmits?: number } } };
    if (j.error || !j.end?.sum_received) throw new Error(`iperf3 ${from} -> ${address}: ${j.error ?? 'no sum_received'}`);
    return { mbps: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent?.retransmits ?? 0, bytes: j.end.sum_received.bytes };
  } finally {
    await stopProcess(server, 1000);
  }
}

/** Ping p50 RTT in ms (50 pings at 0.05 s). */
async function pingP50(h: HubAndSpokes, from: NsName, to: string): Promise<number> {
  const r = await h.execIn(from, ['ping', '-n', '-c', '50', '-i', '0.05', '-W', '1', to], { timeoutMs: 20_000 });
  const t = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (t.length === 0) throw new Error(`ping ${from} -> ${to}: no replies`);
  return t[t.length >> 1]!;
}

let harness: HubAndSpokes | undefined;
let stopping = false;
async function cleanup(): Promise<void> {
  await killAll();
  await harness?.stop();
}
async function bail(code: number, why: string): Promise<never> {
  if (!stopping) {
    stopping = true;
    log(why);
    const force = setTimeout(() => process.exit(code), 20_000);
    force.unref();
    await cleanup().catch((e: Error) => log(`cleanup: ${e.message}`));
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const hardLimit = setTimeout(() => void bail(1, `hard limit of ${HARD_LIMIT_MS / 1000} s reached: cleaning up and giving up`), HARD_LIMIT_MS);
  hardLimit.unref();
  process.on('SIGINT', () => void bail(130, 'interrupted: cleaning up'));
  process.on('SIGTERM', () => void bail(143, 'terminated: cleaning up'));
  if (!isRoot()) throw new Error('bench/hub.ts needs root (network namespaces, TUN, nftables)');
  const missing = await missingTools();
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')}`);
  const load0 = loadavg()[0]!;

  log('starting a hub and 3 spokes (sim/hub-e2e.ts)');
  const h = await startHubAndSpokes({ tag: TAG, logLevel: 'warn' });
  harness = h;
  await h.waitReady(90_000);
  const hubAddr = h.sites.hub.tunAddress;
  const s2Addr = h.sites.s2.tunAddress;
  for (const s of SPOKES) await h.execIn(s, ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '2', hubAddr]).catch(() => undefined);
  await h.execIn('s1', ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '2', s2Addr]).catch(() => undefined);
  const hubPid = h.sites.hub.proc.pid;
  const busy: Record<string, number> = {};

  // ROUNDS rounds of: 1. each spoke alone, 2. all three at once, 3. spoke 1 -> spoke 2 through the
  // hub; every figure is the mean over the rounds (on a shared box one run of each is mostly noise).
  const aloneRuns: Record<Spoke, number[]> = { s1: [], s2: [], s3: [] };
  const togetherRuns: Record<Spoke, number[]> = { s1: [], s2: [], s3: [] };
  const forwardRuns: number[] = [];
  const cpu = { alone: [] as number[], together: [] as number[], forward: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, s] of SPOKES.entries()) {
      busy[`alone-${s}#${round + 1}`] = await quiet();
      const meter = await cpuMeter({ hub: hubPid });
      const t = await iperf(h, s, 'hub', hubAddr, 5201 + i);
      const c = meter.stop().hub ?? NaN;
      aloneRuns[s].push(t.mbps);
      if (s === 's1') cpu.alone.push(cpuPerMB(c, t.mbps));
      log(`round ${round + 1}: ${s} alone -> hub: ${t.mbps.toFixed(1)} Mbit/s (${t.retransmits} retransmits; hub ${pct(c)} of a core)`);
    }
    busy[`together#${round + 1}`] = await quiet();
    const hubMeter = await cpuMeter({ hub: hubPid });
    const together = await Promise.all(SPOKES.map((s, i) => iperf(h, s, 'hub', hubAddr, 5211 + i)));
    const c = hubMeter.stop().hub ?? NaN;
    cpu.together.push(c);
    SPOKES.forEach((s, i) => togetherRuns[s].push(together[i]!.mbps));
    log(`round ${round + 1}: together: ${SPOKES.map((s, i) => `${s} ${together[i]!.mbps.toFixed(1)}`).join(', ')} = ${together.reduce((a, t) => a + t.mbps, 0).toFixed(1)} Mbit/s (hub ${pct(c)} of a core)`);
    busy[`forward#${round + 1}`] = await quiet();
    const fwdMeter = await cpuMeter({ hub: hubPid });
    const f = await iperf(h, 's1', 's2', s2Addr, 5221);
    const fc = fwdMeter.stop().hub ?? NaN;
    forwardRuns.push(f.mbps);
    cpu.forward.push(cpuPerMB(fc, f.mbps));
    log(`round ${round + 1}: spoke 1 -> spoke 2 via the hub: ${f.mbps.toFixed(1)} Mbit/s (hub ${pct(fc)} of a core)`);
  }
  const alone = Object.fromEntries(SPOKES.map((s) => [s, mean(aloneRuns[s])])) as Record<Spoke, number>;
  const together = SPOKES.map((s) => mean(togetherRuns[s]));
  const aggregate = together.reduce((a, t) => a + t, 0);
  const forward = mean(forwardRuns);
  const fwdCost = mean(cpu.forward);
  const termCost = mean(cpu.alone);
  const hubCpuTogether = mean(cpu.together);
  const hubStatus = await h.status('hub');
  const forwarded = Object.fromEntries((hubStatus.peers ?? []).map((p) => [p.name, p.forwardedPackets]));
  const rttHub = await pingP50(h, 's1', hubAddr);
  const rttSpoke = await pingP50(h, 's1', s2Addr);
  log(`mean of ${ROUNDS}: spoke 1 -> spoke 2 via the hub ${forward.toFixed(1)} Mbit/s, spoke 1 -> hub ${alone.s1.toFixed(1)}; hub ${fwdCost.toFixed(2)} vs ${termCost.toFixed(2)} core-ms/MB; ping p50 ${rttSpoke.toFixed(3)} ms vs ${rttHub.toFixed(3)} ms; hub forwarded packets ${JSON.stringify(forwarded)}`);

  await cleanup();
  harness = undefined;

  // 4. routing lookup at 4,096 peers (no namespaces running).
  const r = measureRoutingLookup({ peers: 4096 });
  log(`routing: ${r.peers} peers, ${r.prefixes} prefixes: hit ${r.hitNs.toFixed(1)} ns, miss ${r.missNs.toFixed(1)} ns (linear scan ${r.linearHitNs.toFixed(0)} ns)`);
  clearTimeout(hardLimit);
  const load1 = loadavg()[0]!;

  const figures = [
    { bench: 'hub-aggregate', value: round1(aggregate), unit: 'Mbit/s', peers: { alone: round1(alone.s1) } },
    ...SPOKES.map((s, i) => ({ bench: `hub-spoke-${i + 1}`, value: round1(together[i]!), unit: 'Mbit/s', peers: { alone: round1(alone[s]) } })),
    { bench: 'hub-forward-tcp', value: round1(forward), unit: 'Mbit/s', peers: { 'spoke-to-hub': round1(alone.s1) } },
    { bench: 'hub-forward-cpu', value: round2(fwdCost), unit: 'hub core-ms/MB', peers: { 'spoke-to-hub': round2(termCost) } },
    { bench: 'hub-forward-rtt-p50', value: round2(rttSpoke), unit: 'ms', peers: { 'spoke-to-hub': round2(rttHub) } },
    { bench: 'hub-routing-lookup-4096', value: round1(r.hitNs), unit: 'ns/lookup', peers: { 'linear-scan': Math.round(r.linearHitNs) } },
  ];
  const notesFile = process.env['BENCH_NOTES_FILE'];
  if (notesFile) {
    writeFileSync(
      notesFile,
      [
        `A hub and three spokes, each a real \`braid up\` (encrypted, ChaCha20-Poly1305, native AEAD when the addon loads) in its own network namespace on this one box ` +
          `(sim/hub-e2e.ts): spoke 1 with 3 veth links, spoke 2 with 2, spoke 3 with 1 behind nftables masquerade and learned by the hub. ` +
          `iperf3 TCP, 1 stream, ${IPERF_SECONDS} s, to the hub's TUN address. ` +
          `\`hub-spoke-N\`: spoke N's throughput while all three send at once, column \`alone\`: the same spoke alone, earlier in the same run; ` +
          `\`hub-aggregate\`: the sum of the three at once, column \`alone\`: spoke 1 alone. ` +
          `Each figure is the mean of ${ROUNDS} rounds (alone, together, forward in turn). Hub process CPU with all three at once: ${pct(hubCpuTogether)} of a core.`,
        '',
        `Branch to branch: \`hub-forward-tcp\` is iperf3 spoke 1 -> spoke 2 through the hub, which forwards it inside its core ` +
          `(open, source check, route lookup, the other peer's send path, seal: no trip through the hub's kernel or TUN; the hub namespace has IP forwarding off), ` +
          `column \`spoke-to-hub\`: spoke 1 -> hub from (1). \`hub-forward-cpu\`: the hub process's CPU time per megabyte of payload, forwarded vs terminated at the hub's TUN; ` +
          `\`hub-forward-rtt-p50\`: ping spoke 1 -> spoke 2 vs spoke 1 -> hub (50 pings, p50). The hub counted ${forwarded['branch-1'] ?? 0} packets forwarded from branch-1 and ${forwarded['branch-2'] ?? 0} from branch-2.`,
        '',
        `\`hub-routing-lookup-4096\`: the outbound route lookup (PrefixTable, a trie) at ${r.peers.toLocaleString('en-US')} peers x 4 prefixes (${r.prefixes.toLocaleString('en-US')} prefixes, IPv4 and IPv6), ` +
          `destination inside a peer's prefix; miss ${r.missNs.toFixed(1)} ns; column \`linear-scan\`: checking every prefix (bench/lib/routing-lookup.ts, as \`npm run bench -- routing\`).`,
        '',
        `All of it on ${cpus().length} CPUs shared by 4 edges, their iperf3 and ping: the figures are CPU-bound and move with neighbours ` +
          `(box busy in the second before each run: ${pct(Math.min(...Object.values(busy)))} to ${pct(Math.max(...Object.values(busy)))}; load average ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end).`,
      ].join('\n'),
    );
  }
  for (const f of figures) console.log(JSON.stringify(f));
}

main().then(
  () => process.exit(0),
  async (e: Error) => {
    log(`FAILED: ${e.stack ?? e.message}`);
    await cleanup().catch(() => undefined);
    process.exit(1);
  },
);
