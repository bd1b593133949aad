// Fleet scale (issue 12), in virtual time: one hub and BENCH_FLEET_SPOKES (default 1,000) spokes
// with 2 paths each (mpls, inet), every site a real core Endpoint in the World (sim/world.ts),
// encrypted (Noise IK handshakes, AEAD per frame). Measured in one run:
//   1. established, then idle (past PEER_IDLE_AFTER_MS: idle probing): hub CPU for probes and keepalives per simulated second (time
//      spent inside the hub engine's calls), hub transmits per 10 ms bucket (max / mean), and the
//      simulation's own speed (simulated / wall seconds, the whole World);
//   2. 10% of the spokes carry voice (spoke -> hub, 200 B every 20 ms) and business (hub -> spoke,
//      1,000 B every 40 ms) for 5 s: the same figures (the simulation's speed is also measured
//      without the hub meter, in the twin Worlds of 6, which replay the same idle and traffic
//      windows, and in the parallel World of 7);
//   3. `braid status --json` (the CLI against a control socket serving the hub's snapshot) and a
//      /metrics scrape (the real metrics server), each with 1,000 peers, and the series count;
//   4. hub memory per spoke: heap after GC with the hub, minus heap after GC with an empty hub in
//      its place, divided by the spokes, plus the same for the ArrayBuffers' stores, which V8 keeps
//      outside heapUsed (the total is the acceptance figure; bench/fleet-heap.ts attributes both);
//   5. hub restart: every spoke sends one packet per 100 ms to the hub's LAN; the time until each
//      spoke's packets arrive again (slowest, p99, p50) after the hub restarts;
//   6. the same restart in two twin Worlds (same seed, same history), one while 50,000 forged
//      initiations (valid mac1, an unknown key) arrive from one address over 4,096 ports during the
//      first 5 s: the flood's change is measured against its twin;
//   7. the same idle and traffic windows in the parallel World (sim/parallel.ts) on one worker
//      thread per CPU, at most 2: the median of its 5 timed traffic windows, per wall second, is
//      the figure fleet-sim-speed.
// Prints one JSON object per figure as its last stdout lines; notes go to $BENCH_NOTES_FILE.
//
// Usage: node bin/run-ts.js bench/fleet.ts   (or npm run bench -- fleet)
// Env: BENCH_FLEET_SPOKES (default 1000), BENCH_FLEET_SEED (default 12), BENCH_FLEET_PARTITIONS
// (default: the CPUs, at most 2; with 1, fleet-sim-speed is the one-thread twin's).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { World, type Site } from '../sim/world.ts';
import { PacketFactory } from '../sim/scenario/fast-packet.ts';
import { buildFleetWorld, busySpokes, spokeAddr, spokeName, startFleetTraffic } from './lib/fleet-world.ts';
import { ParallelWorld, type PartitionStats } from '../sim/parallel.ts';
import { Endpoint } from '../src/core/endpoint.ts';
import { SeededRng } from '../src/core/rng.ts';
import { generateKeyPair } from '../src/core/crypto/keys.ts';
import { BRAID_PROLOGUE, createInitiation } from '../src/core/crypto/noise.ts';
import { encodeEnvelope } from '../src/core/wire/codec.ts';
import { ControlServer } from '../src/control/control-socket.ts';
import { startMetricsServer } from '../src/control/metrics.ts';
import { buildPathRtts, snapshotSteps } from '../src/core/snapshot.ts';
import { PEER_IDLE_AFTER_MS } from '../src/core/peer-idle.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const execFileP = promisify(execFile);
const BRAID_BIN = fileURLToPath(new URL('../bin/braid.js', import.meta.url));

const SPOKES = Math.max(10, Number(process.env.BENCH_FLEET_SPOKES ?? 1000));
const SEED = Number(process.env.BENCH_FLEET_SEED ?? 12);
const ESTABLISH_MS = 4000;
const WINDOW_MS = Number(process.env.BENCH_FLEET_WINDOW_MS ?? 5000);
/** Timed traffic windows of the parallel World (after one that warms its JIT); fleet-sim-speed is their median. */
const PARALLEL_WINDOWS = 5;
const RESTART_BUDGET_MS = 30_000;
const FLOOD = 50_000;
const FLOOD_PORTS = 4096;
const FLOOD_SPREAD_MS = 5000;
const ATTACKER = '198.51.100.7';
/** Partitions of the parallel World (sim/parallel.ts): one per core, at most 2 (the hub cannot be split, and is ~40% of the work). */
const PARTITIONS = Math.max(1, Math.min(2, Number(process.env.BENCH_FLEET_PARTITIONS ?? cpus().length)));

const log = (m: string): void => void process.stderr.write(`[fleet] ${m}\n`);
const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

const buildWorld = (): World => buildFleetWorld(SPOKES, SEED);

/**
 * The hub's own cost: process CPU time (getrusage, not wall time: the box is shared) spent inside
 * the hub engine's calls; its probe sends per 10 ms bucket (each peer's tx.sendProbe counted) and
 * all its transmits per bucket.
 */
class HubMeter {
  cpuUs = 0;
  counting = false;
  probes = new Map<number, number>();
  transmits = new Map<number, number>();
  constructor(private readonly w: World) {}
  private bump(m: Map<number, number>): void {
    if (!this.counting) return;
    const b = Math.floor(this.w.nowMs / 10);
    m.set(b, (m.get(b) ?? 0) + 1);
  }
  wrap(site: Site): void {
    const e = site.edge as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const m of ['handleTunPacket', 'handleDatagram', 'handleTimeout', 'pollTransmit'] as const) {
      const orig = e[m]!.bind(e);
      e[m] = (...args: unknown[]) => {
        const t = process.cpuUsage();
        const r = orig(...args);
        const d = process.cpuUsage(t);
        this.cpuUs += d.user + d.system;
        if (m === 'pollTransmit' && r !== undefined) this.bump(this.transmits);
        return r;
      };
    }
    const hub = site.edge as unknown as Endpoint;
    for (const peer of hub.peersByName.values()) {
      const tx = peer.tx as unknown as { sendProbe: (...a: unknown[]) => void };
      const orig = tx.sendProbe.bind(tx);
      tx.sendProbe = (...a: unknown[]) => {
        this.bump(this.probes);
        orig(...a);
      };
    }
  }
  /** max / mean per 10 ms bucket over [fromMs, toMs) (empty buckets count). */
  spread(m: Map<number, number>, fromMs: number, toMs: number): { max: number; mean: number } {
    let max = 0;
    let sum = 0;
    let n = 0;
    for (let b = Math.ceil(fromMs / 10); b < Math.floor(toMs / 10); b++) {
      const c = m.get(b) ?? 0;
      max = Math.max(max, c);
      sum += c;
      n++;
    }
    return { max, mean: sum / Math.max(1, n) };
  }
}

interface Window {
  simS: number;
  wallS: number;
  /** Process CPU seconds for the whole World (every site). */
  cpuS: number;
  hubCpuMsPerSimS: number;
  probeMax: number;
  probeMean: number;
  txMax: number;
  txMean: number;
}

function runWindow(w: World, meter: HubMeter, durationMs: number): Window {
  const from = w.nowMs;
  meter.cpuUs = 0;
  meter.probes.clear();
  meter.transmits.clear();
  meter.counting = true;
  const wall = performance.now();
  const cpu = process.cpuUsage();
  w.runFor(durationMs);
  const c = process.cpuUsage(cpu);
  const wallS = (performance.now() - wall) / 1000;
  meter.counting = false;
  const p = meter.spread(meter.probes, from, w.nowMs);
  const t = meter.spread(meter.transmits, from, w.nowMs);
  return { simS: durationMs / 1000, wallS, cpuS: (c.user + c.system) / 1e6, hubCpuMsPerSimS: meter.cpuUs / 1000 / (durationMs / 1000), probeMax: p.max, probeMean: p.mean, txMax: t.max, txMean: t.mean };
}

/** The busy spokes: every tenth. */
const BUSY = busySpokes(SPOKES);
const PROBE_FLOWS = Array.from({ length: SPOKES }, (_, k) => new PacketFactory({ src: spokeAddr(k + 1, 5), dst: [10, 0, 0, 5], srcPort: 40_000, dstPort: 7000, sizeBytes: 100, flowId: 100_001 + k }));

/** 10% of the spokes: voice up, business down (bench/lib/fleet-world.ts), from `startMs` for WINDOW_MS. */
function startTraffic(w: World, startMs: number): void {
  startFleetTraffic(w, SPOKES, startMs, WINDOW_MS);
}

/**
 * The same World split over PARTITIONS worker threads (sim/parallel.ts: the hub and a 25th of
 * the spokes in one, the rest in the other), the same idle and traffic windows at the same
 * virtual times, timed by wall clock. The workers' JIT starts cold, where the twins run in a
 * process that already ran the first World: the first traffic window warms them, and the next
 * PARALLEL_WINDOWS are timed one by one (the result's traffic is their median by wall time).
 */
async function parallelRun(idleFromMs: number, trafficStartMs: number): Promise<{ idle: { simS: number; wallS: number }; traffic: { simS: number; wallS: number; cpuS: number }; windows: { simS: number; wallS: number; cpuS: number }[]; stats: PartitionStats[]; voiceIn: number; businessIn: number }> {
  const pw = await ParallelWorld.start({ module: new URL('./lib/fleet-world.ts', import.meta.url), partitions: PARTITIONS, args: { spokes: SPOKES, seed: SEED } });
  try {
    await pw.run(idleFromMs);
    let wall = performance.now();
    await pw.run(idleFromMs + WINDOW_MS);
    const idle = { simS: WINDOW_MS / 1000, wallS: (performance.now() - wall) / 1000 };
    await pw.call('startTraffic', { spokes: SPOKES, startMs: trafficStartMs, durationMs: (1 + PARALLEL_WINDOWS) * WINDOW_MS + 1000 });
    await pw.run(trafficStartMs + WINDOW_MS);
    type Counts = { hubDelivered: number; busyDelivered: number };
    const sum = (c: Counts[]): Counts => ({ hubDelivered: c.reduce((a, x) => a + x.hubDelivered, 0), busyDelivered: c.reduce((a, x) => a + x.busyDelivered, 0) });
    const before = sum(await pw.call<Counts>('fleetCounts', { spokes: SPOKES }));
    await pw.stats();
    // Several windows, the median reported: on this shared 2-vCPU box one window's wall time swings
    // up to 2x with the neighbours (the same build read 2.25x and 5.2x in consecutive windows).
    const windows: { simS: number; wallS: number; cpuS: number; stats: PartitionStats[] }[] = [];
    for (let k = 1; k <= PARALLEL_WINDOWS; k++) {
      wall = performance.now();
      const cpu0 = process.cpuUsage();
      await pw.run(trafficStartMs + (1 + k) * WINDOW_MS);
      const c = process.cpuUsage(cpu0);
      windows.push({ simS: WINDOW_MS / 1000, wallS: (performance.now() - wall) / 1000, cpuS: (c.user + c.system) / 1e6, stats: await pw.stats() });
    }
    const after = sum(await pw.call<Counts>('fleetCounts', { spokes: SPOKES }));
    const median = [...windows].sort((a, b) => a.wallS - b.wallS)[Math.floor(windows.length / 2)]!;
    return { idle, traffic: median, windows, stats: median.stats, voiceIn: after.hubDelivered - before.hubDelivered, businessIn: after.busyDelivered - before.busyDelivered };
  } finally {
    await pw.close();
  }
}

/** Simulated seconds per wall second and per CPU second of a run of `durationMs`. */
function timeRun(w: World, durationMs: number): { simS: number; wallS: number; cpuS: number } {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  w.runFor(durationMs);
  const c = process.cpuUsage(cpu0);
  return { simS: durationMs / 1000, wallS: (performance.now() - wall0) / 1000, cpuS: (c.user + c.system) / 1e6 };
}

function establishedCount(w: World): { peers: number; paths: number } {
  const snap = w.site('hub').edge.snapshot(w.nowMs);
  const peers = (snap.peers ?? []).filter((p) => p.session.established);
  return { peers: peers.length, paths: peers.reduce((a, p) => a + p.pathsUp, 0) };
}

/** Every spoke sends one packet per 100 ms to the hub's LAN; returns each spoke's first arrival after `sinceMs`. */
function restartRecovery(w: World, restartAtMs: number, flood?: (w: World) => void): { slowestMs: number; p99Ms: number; p50Ms: number; recovered: number; wallS: number; hsSlowestMs: number; hsP50Ms: number } {
  const hub = w.site('hub');
  const firstAt = new Map<number, number>();
  hub.onDeliver = (p, atMs) => {
    if (atMs < restartAtMs || p[12] !== 10) return;
    const i = ((p[13]! - 1) << 8) | p[14]!;
    if (!firstAt.has(i)) firstAt.set(i, atMs);
  };
  const spokes = Array.from({ length: SPOKES }, (_, k) => w.site(spokeName(k + 1)));
  w.every(100, { startMs: w.nowMs + 1, untilMs: restartAtMs + RESTART_BUDGET_MS, enginesViaWorld: true }, (k) => {
    for (let j = 0; j < SPOKES; j++) spokes[j]!.sendTun(PROBE_FLOWS[j]!.makeShared(k));
  });
  w.restartAt(restartAtMs, 'hub');
  flood?.(w);
  const wall = performance.now();
  for (let t = restartAtMs; t < restartAtMs + RESTART_BUDGET_MS && firstAt.size < SPOKES; t += 500) w.run(t + 500);
  const wallS = (performance.now() - wall) / 1000;
  const times = [...firstAt.values()].map((t) => t - restartAtMs).sort((a, b) => a - b);
  const q = (f: number): number => times[Math.min(times.length - 1, Math.floor(f * times.length))] ?? NaN;
  // When the hub answered each spoke's handshake after the restart (a cookie reply first would add
  // a round trip): the handshake alone, before the 100 ms send tick rounds it up.
  const hsAt = new Map<string, number>();
  for (const e of hub.events) if (e.kind === 'session' && e.atMs >= restartAtMs && e.peer !== undefined && /responded to handshake|established/.test(e.message) && !hsAt.has(e.peer)) hsAt.set(e.peer, e.atMs - restartAtMs);
  const hs = [...hsAt.values()].sort((a, b) => a - b);
  return { slowestMs: firstAt.size < SPOKES ? Infinity : times[times.length - 1]!, p99Ms: q(0.99), p50Ms: q(0.5), recovered: firstAt.size, wallS, hsSlowestMs: hs.length < SPOKES ? Infinity : r1(hs[hs.length - 1]!), hsP50Ms: r1(hs[Math.floor(hs.length / 2)] ?? NaN) };
}

/** 50,000 initiations from one address over 4,096 ports, valid mac1 for the hub, from a key it does not know. */
function floodHub(w: World, startMs: number): void {
  const rng = new SeededRng(SEED ^ 0xf100d);
  const attacker = generateKeyPair(rng);
  const msgs: Uint8Array[] = [];
  for (let i = 0; i < FLOOD_PORTS; i++) {
    const m = createInitiation({
      local: attacker,
      remoteStatic: w.keys['hub']!.publicKey,
      prologue: BRAID_PROLOGUE,
      senderIndex: i,
      nowMs: 0,
      wallClockEpochMs: 1_800_000_000_000,
      ciphers: { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305'] },
      cookie: null,
      rng,
    })!.message;
    msgs.push(encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: m }));
  }
  for (let i = 0; i < FLOOD; i++) {
    const port = i % FLOOD_PORTS;
    w.injectAt(startMs + (i * FLOOD_SPREAD_MS) / FLOOD, 'hub', i % 2 ? 'inet' : 'mpls', { address: ATTACKER, port: 20_000 + port }, msgs[port]!);
  }
}

/**
 * The longest the event loop went without turning while `fn` ran (a 1 ms interval's largest gap,
 * as tmp/stall.ts measured it): how long the hub forwarded nothing and answered no probe.
 */
async function longestBlock(fn: () => unknown): Promise<{ blockMs: number; totalMs: number }> {
  await new Promise((r) => setTimeout(r, 50));
  let last = performance.now();
  let max = 0;
  const tick = setInterval(() => {
    const t = performance.now();
    max = Math.max(max, t - last);
    last = t;
  }, 1);
  try {
    last = performance.now();
    const t0 = performance.now();
    await fn();
    const totalMs = performance.now() - t0;
    // The turn after fn: a block that ended with fn is only seen when the interval fires again.
    await new Promise((r) => setTimeout(r, 20));
    return { blockMs: max, totalMs };
  } finally {
    clearInterval(tick);
  }
}

async function timeStatusAndMetrics(w: World): Promise<{ cliMs: number; inProcessMs: number; jsonBytes: number; scrapeMs: number; series: number; perPeerSeries: number; lightScrapeMs: number; lightSeries: number; scrapeStallMs: number; scrapeStallMaxMs: number; sampleStallMs: number; sampleStallMaxMs: number }> {
  const hub = w.site('hub');
  const snapshot = (): ReturnType<typeof hub.edge.snapshot> => hub.edge.snapshot(w.nowMs);
  const dir = mkdtempSync(join(tmpdir(), 'braid-fleet-bench-'));
  const sock = join(dir, 'hub.sock');
  const server = await ControlServer.listen(sock, { status: snapshot, drain: () => 'not here' });
  // As braid up starts it: the per-second RTT sample from buildPathRtts, not a snapshot (its own
  // clock: w.nowMs stands still here), and the scrape's snapshot in steps.
  const metrics = await startMetricsServer('127.0.0.1:0', snapshot, { rttSource: () => ({ nowMs: performance.now(), paths: buildPathRtts(hub.edge) }), snapshotSteps: () => snapshotSteps(hub.edge, w.nowMs) });
  // metrics.pathSeries: false, the switch for many peers (per-peer series only, no per-path ones).
  const light = await startMetricsServer('127.0.0.1:0', snapshot, { pathSeries: false });
  try {
    const cli: number[] = [];
    const inproc: number[] = [];
    const scrape: number[] = [];
    let jsonBytes = 0;
    let body = '';
    let lightBody = '';
    const lightScrape: number[] = [];
    for (let k = 0; k < 3; k++) {
      let t = performance.now();
      const { stdout } = await execFileP(process.execPath, [BRAID_BIN, 'status', '--json', '--socket', sock], { maxBuffer: 256 * 1024 * 1024 });
      cli.push(performance.now() - t);
      jsonBytes = stdout.length;
      t = performance.now();
      JSON.stringify(snapshot());
      inproc.push(performance.now() - t);
      t = performance.now();
      body = await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text();
      scrape.push(performance.now() - t);
      t = performance.now();
      lightBody = await (await fetch(`http://127.0.0.1:${light.port}/metrics`)).text();
      lightScrape.push(performance.now() - t);
    }
    // The stalls (issue 12): the longest event-loop block during a scrape, and during one RTT sample.
    const scrapeStall: number[] = [];
    const sampleStall: number[] = [];
    for (let k = 0; k < 3; k++) {
      // The body read by node:http and dropped: fetch().text() decodes ~8 MB in this process, the scraper's work, not the hub's.
      const drop = (): Promise<void> => new Promise((resolve, reject) => void httpGet(`http://127.0.0.1:${metrics.port}/metrics`, (res) => res.on('data', () => {}).on('end', resolve)).on('error', reject));
      scrapeStall.push((await longestBlock(drop)).blockMs);
      sampleStall.push((await longestBlock(() => metrics.metrics.sample())).blockMs);
    }
    const lightSeries = lightBody.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Series that name a peer, per peer.
    const peerSeries = body.split('\n').filter((l) => /peer="/.test(l) && !l.startsWith('#')).length;
    return {
      cliMs: median(cli),
      inProcessMs: median(inproc),
      jsonBytes,
      scrapeMs: median(scrape),
      series,
      perPeerSeries: peerSeries / SPOKES,
      lightScrapeMs: median(lightScrape),
      lightSeries,
      scrapeStallMs: median(scrapeStall),
      scrapeStallMaxMs: Math.max(...scrapeStall),
      sampleStallMs: median(sampleStall),
      sampleStallMaxMs: Math.max(...sampleStall),
    };
  } finally {
    server.close();
    await metrics.close();
    await light.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The V8 heap after GC, and the ArrayBuffer backing stores (typed arrays live outside heapUsed). */
function heapMb(): { heap: number; buffers: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1e6, buffers: m.arrayBuffers / 1e6 };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  log(`building a World: hub + ${SPOKES} spokes, 2 paths each (seed ${SEED})`);
  const w = buildWorld();
  const meter = new HubMeter(w);
  meter.wrap(w.site('hub'));
  const buildS = (performance.now() - t0) / 1000;
  let wall = performance.now();
  w.runFor(ESTABLISH_MS);
  const est = establishedCount(w);
  log(`built in ${buildS.toFixed(1)} s; after ${ESTABLISH_MS / 1000} s simulated (${((performance.now() - wall) / 1000).toFixed(1)} s wall): ${est.peers} peers established, ${est.paths} paths up`);
  if (est.peers !== SPOKES) throw new Error(`only ${est.peers} of ${SPOKES} spokes established`);
  // Idle means idle probing (src/core/peer-idle.ts): no data for PEER_IDLE_AFTER_MS, then one probe
  // every 2 s, one side per path (the hub's). Run the World past that before measuring.
  wall = performance.now();
  w.runFor(PEER_IDLE_AFTER_MS + 2000);
  const hubPeers = (w.site('hub').edge.snapshot(w.nowMs).peers ?? []).length;
  log(`settled into idle probing: ${(PEER_IDLE_AFTER_MS + 2000) / 1000} s more simulated in ${((performance.now() - wall) / 1000).toFixed(1)} s wall (${hubPeers} peers)`);

  const idleFromMs = w.nowMs;
  const idle = runWindow(w, meter, WINDOW_MS);
  log(`idle ${WINDOW_MS / 1000} s: hub ${idle.hubCpuMsPerSimS.toFixed(1)} ms CPU per simulated s; probes per 10 ms max ${idle.probeMax} mean ${idle.probeMean.toFixed(1)}, all transmits max ${idle.txMax} mean ${idle.txMean.toFixed(1)}; sim ${(idle.simS / idle.wallS).toFixed(2)}x real time wall, ${(idle.simS / idle.cpuS).toFixed(2)}x per CPU second`);

  // 10% of the spokes: voice up, business down.
  const busy = BUSY;
  const trafficStartMs = w.nowMs + 1;
  startTraffic(w, trafficStartMs);
  const delivered0 = busy.reduce((a, i) => a + w.site(spokeName(i)).deliveredCount, 0);
  const hubDelivered0 = w.site('hub').deliveredCount;
  const traffic = runWindow(w, meter, WINDOW_MS + 1);
  const voiceIn = w.site('hub').deliveredCount - hubDelivered0;
  const businessIn = busy.reduce((a, i) => a + w.site(spokeName(i)).deliveredCount, 0) - delivered0;
  const sent = (every: number): number => busy.length * Math.floor(WINDOW_MS / every);
  log(`traffic ${WINDOW_MS / 1000} s (${busy.length} spokes, hub meter on): hub ${traffic.hubCpuMsPerSimS.toFixed(1)} ms CPU per simulated s; sim ${(traffic.simS / traffic.wallS).toFixed(2)}x real time wall, ${(traffic.simS / traffic.cpuS).toFixed(2)}x per CPU second; voice delivered ${voiceIn} of ~${sent(20)}, business ${businessIn} of ~${sent(40)}`);

  const ops = await timeStatusAndMetrics(w);
  log(`status --json (CLI, node start included) ${ops.cliMs.toFixed(0)} ms, snapshot+JSON in process ${ops.inProcessMs.toFixed(1)} ms (${(ops.jsonBytes / 1e6).toFixed(1)} MB); /metrics ${ops.scrapeMs.toFixed(0)} ms, ${ops.series} series (${ops.perPeerSeries.toFixed(1)} per peer); with pathSeries: false ${ops.lightScrapeMs.toFixed(0)} ms, ${ops.lightSeries} series; longest event-loop block during a scrape ${ops.scrapeStallMs.toFixed(1)} ms (max ${ops.scrapeStallMaxMs.toFixed(1)}), during an RTT sample ${ops.sampleStallMs.toFixed(1)} ms`);

  // Heap: the hub with its spokes, then an empty hub in its place.
  const hub = w.site('hub');
  const withHub = heapMb();
  hub.setEdge(new Endpoint({ site: 'hub', links: [{ name: 'mpls' }, { name: 'inet' }], peers: [], crypto: { privateKey: w.keys['hub']!.privateKey, wallClockEpochMs: 1_800_000_000_000 } }, w.nowMs, new SeededRng(1)));
  const emptyHub = heapMb();
  const heapPerSpokeKb = ((withHub.heap - emptyHub.heap) * 1e6) / SPOKES / 1024;
  const buffersPerSpokeKb = ((withHub.buffers - emptyHub.buffers) * 1e6) / SPOKES / 1024;
  log(`heap: ${withHub.heap.toFixed(1)} MB with the hub, ${emptyHub.heap.toFixed(1)} MB with an empty hub: ${heapPerSpokeKb.toFixed(1)} KB per spoke, plus ${buffersPerSpokeKb.toFixed(1)} KB of ArrayBuffers (typed arrays) per spoke = ${(heapPerSpokeKb + buffersPerSpokeKb).toFixed(1)} KB (the acceptance figure)`);

  // Restart (the factory builds a full hub again).
  wall = performance.now();
  // At once: the empty hub of the heap figure stands in for 1 ms, as long as the old hub does in
  // the twins below (at +100 ms its 100 ms of dropping everything made the spokes start over one
  // send tick before the twins').
  const restartAt = w.nowMs + 1;
  const rec = restartRecovery(w, restartAt);
  log(`hub restart: ${rec.recovered} of ${SPOKES} spokes carry traffic again; slowest ${rec.slowestMs} ms, p99 ${rec.p99Ms} ms, p50 ${rec.p50Ms} ms; handshakes answered slowest ${rec.hsSlowestMs} ms, p50 ${rec.hsP50Ms} ms (${rec.wallS.toFixed(1)} s wall)`);

  // The flood's effect: the same restart in two fresh twin Worlds (same seed, same history: built,
  // then idle until the restart), one with the flood. The first World's history (traffic windows,
  // an empty hub for the heap figure) differs, and that alone moved the slowest spoke by ~100 ms
  // (one 100 ms send tick) before any flood.
  // Restarted at the same moment as the first: a spoke sends at most one initiation per REKEY_TIMEOUT
  // (5 s), so a hub restarted within 5 s of the first handshakes is found later, flood or not.
  const restartAt2 = restartAt;
  // The twins replay the first World's idle and traffic windows at the same virtual times, without
  // the hub meter, and time them: the simulation's own speed (the meter's getrusage pair per hub
  // call costs 10-20% of it). This process's JIT is warm by then: the first seconds of slow probing
  // in the first World run at half speed or less (the slow tick's code is new, called a few
  // hundred times a second, and V8 takes seconds to optimise it); the metered windows have them.
  const twin = (flood: boolean): { rec: ReturnType<typeof restartRecovery>; drops: Record<string, number>; idle: ReturnType<typeof timeRun>; traffic: ReturnType<typeof timeRun> } => {
    const tw = buildWorld();
    tw.run(idleFromMs);
    const idle = timeRun(tw, WINDOW_MS);
    startTraffic(tw, trafficStartMs);
    const traffic = timeRun(tw, trafficStartMs + WINDOW_MS - tw.nowMs);
    tw.run(restartAt2 - 1);
    if (flood) floodHub(tw, restartAt2);
    const r = restartRecovery(tw, restartAt2);
    return { rec: r, drops: tw.site('hub').edge.snapshot(tw.nowMs).session.handshakeDrops, idle, traffic };
  };
  log('twin Worlds: the restart without and with 50,000 forged initiations');
  const plain2 = twin(false);
  const idleBare = plain2.idle;
  const trafficBare = plain2.traffic;
  log(`twin without the hub meter: idle ${idleBare.simS.toFixed(1)} s at ${(idleBare.simS / idleBare.wallS).toFixed(2)}x real time wall, ${(idleBare.simS / idleBare.cpuS).toFixed(2)}x per CPU second; traffic ${trafficBare.simS.toFixed(1)} s at ${(trafficBare.simS / trafficBare.wallS).toFixed(2)}x wall, ${(trafficBare.simS / trafficBare.cpuS).toFixed(2)}x per CPU second`);
  log(`twin without the flood: ${plain2.rec.recovered} of ${SPOKES} back; slowest ${plain2.rec.slowestMs} ms, p99 ${plain2.rec.p99Ms} ms, p50 ${plain2.rec.p50Ms} ms; handshakes answered slowest ${plain2.rec.hsSlowestMs} ms, p50 ${plain2.rec.hsP50Ms} ms; hub handshake drops ${JSON.stringify(plain2.drops)}`);
  const flooded = twin(true);
  log(`flood twin, the same windows (before its flood): idle ${(flooded.idle.simS / flooded.idle.wallS).toFixed(2)}x wall, traffic ${(flooded.traffic.simS / flooded.traffic.wallS).toFixed(2)}x wall, ${(flooded.traffic.simS / flooded.traffic.cpuS).toFixed(2)}x per CPU second`);
  const recFlood = flooded.rec;
  const hsDrops = flooded.drops;
  log(`under the flood: ${recFlood.recovered} of ${SPOKES} back; slowest ${recFlood.slowestMs} ms, p99 ${recFlood.p99Ms} ms, p50 ${recFlood.p50Ms} ms; handshakes answered slowest ${recFlood.hsSlowestMs} ms, p50 ${recFlood.hsP50Ms} ms; hub handshake drops ${JSON.stringify(hsDrops)}`);
  log(`parallel World: ${PARTITIONS} worker threads (sim/parallel.ts), the same windows`);
  const par = await parallelRun(idleFromMs, trafficStartMs);
  const parStats = par.stats.map((p, i) => `partition ${i}: ran ${p.runMs.toFixed(0)} ms, waited ${p.waitMs.toFixed(0)} ms, imported ${p.imported} datagrams in ${p.importMs.toFixed(0)} ms, ${p.windows} steps`).join('; ');
  const parWindows = par.windows.map((x) => `${(x.simS / x.wallS).toFixed(2)}x`).join(', ');
  log(`parallel: idle ${(par.idle.simS / par.idle.wallS).toFixed(2)}x wall; traffic ${par.windows.length} windows ${parWindows} wall, median ${(par.traffic.simS / par.traffic.wallS).toFixed(2)}x (${(par.traffic.simS / par.traffic.cpuS).toFixed(2)}x per process CPU s); voice delivered ${par.voiceIn} of ${par.windows.length * sent(20)}, business ${par.businessIn} of ${par.windows.length * sent(40)}; median window: ${parStats}`);
  if (par.voiceIn !== par.windows.length * sent(20) || par.businessIn !== par.windows.length * sent(40)) throw new Error(`parallel World delivered ${par.voiceIn} voice and ${par.businessIn} business packets in ${par.windows.length} windows, sent ${par.windows.length * sent(20)} and ${par.windows.length * sent(40)}`);
  const floodChange = (recFlood.slowestMs - plain2.rec.slowestMs) / plain2.rec.slowestMs;
  const floodVsFirst = (recFlood.slowestMs - rec.slowestMs) / rec.slowestMs;

  const totalS = (performance.now() - t0) / 1000;
  const notesFile = process.env['BENCH_NOTES_FILE'];
  const box = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(2)} at the end; node ${process.version}`;
  if (notesFile) {
    writeFileSync(
      notesFile,
      [
        `Virtual time (sim/world.ts): one hub and ${SPOKES} spokes, 2 paths each (mpls 10-16 ms, inet 18-28 ms one way), every site a core Endpoint, encrypted; seed ${SEED}; ${box}. Whole run ${totalS.toFixed(0)} s wall.`,
        'Hub CPU is the process CPU time (getrusage) spent inside the hub engine\'s calls, per simulated second. Probes per 10 ms counts the hub\'s own probe sends (each peer\'s sendProbe); all transmits adds everything else it sends. The World gives the sites their roles: on idle paths the hub is the one prober (src/core/peer-idle.ts epochForRole), each of its peers\' slow ticks at a fixed place in the 2 s interval, spread by slot; the spokes only answer.',
        `Simulation speed: simulated seconds per wall second (shared, loaded box) and per CPU second of this process (the whole World: hub and every spoke). The figure fleet-sim-speed is the simulation's own speed: the with-traffic window per wall second, in the parallel World (sim/parallel.ts: ${PARTITIONS} worker threads, the hub and a 25th of the spokes in one, the rest in the other; the same seed, idle and traffic windows at the same virtual times; the timed windows are the traffic's second to ${1 + PARALLEL_WINDOWS}th, the first warms the workers' JIT; the figure is their median) when this box has 2 CPUs or more, else in the plain twin World (one thread, same windows, no hub meter, JIT warm). The first World's windows run with the hub meter (a getrusage pair around every hub call) and are listed for the hub CPU figures they come with.`,
        '',
        '| figure | value | target |',
        '| --- | --- | --- |',
        `| spokes established / paths up after ${ESTABLISH_MS / 1000} s | ${est.peers} / ${est.paths} | all |`,
        `| hub CPU, idle (probes and keepalives) | ${r1(idle.hubCpuMsPerSimS)} ms per simulated s = ${r2(idle.hubCpuMsPerSimS / 10)}% of a core | < 5% |`,
        `| hub CPU, 10% of spokes with voice + business | ${r1(traffic.hubCpuMsPerSimS)} ms per simulated s = ${r2(traffic.hubCpuMsPerSimS / 10)}% of a core | - |`,
        `| hub probe sends per 10 ms bucket, idle: max / mean | ${idle.probeMax} / ${r1(idle.probeMean)} = ${r2(idle.probeMax / idle.probeMean)} | < 2 |`,
        `| all hub transmits per 10 ms bucket, idle: max / mean | ${idle.txMax} / ${r1(idle.txMean)} = ${r2(idle.txMax / idle.txMean)} | - |`,
        `| simulation speed with traffic, parallel World, ${PARTITIONS} threads (fleet-sim-speed): per wall s; per process CPU s | median of ${par.windows.length} windows (${parWindows}): ${r2(par.traffic.simS / par.traffic.wallS)}x; ${r2(par.traffic.simS / par.traffic.cpuS)}x (${parStats}) | >= 10x |`,
        `| simulation speed idle, parallel World: per wall s | ${r2(par.idle.simS / par.idle.wallS)}x | - |`,
        `| simulation speed with traffic, one thread, no hub meter (the plain twin): per wall s; per CPU s | ${r2(trafficBare.simS / trafficBare.wallS)}x; ${r2(trafficBare.simS / trafficBare.cpuS)}x (flood twin, same window: ${r2(flooded.traffic.simS / flooded.traffic.wallS)}x; ${r2(flooded.traffic.simS / flooded.traffic.cpuS)}x) | - |`,
        `| simulation speed idle, one thread, no hub meter (the plain twin): per wall s; per CPU s | ${r2(idleBare.simS / idleBare.wallS)}x; ${r2(idleBare.simS / idleBare.cpuS)}x | - |`,
        `| simulation speed, idle / with traffic, hub meter on (the first World): per wall s; per CPU s | ${r2(idle.simS / idle.wallS)}x / ${r2(traffic.simS / traffic.wallS)}x; ${r2(idle.simS / idle.cpuS)}x / ${r2(traffic.simS / traffic.cpuS)}x | - |`,
        `| hub memory per spoke: V8 heap + ArrayBuffers (typed arrays' stores, outside heapUsed), after GC, minus an empty hub | ${r1(heapPerSpokeKb + buffersPerSpokeKb)} KB | < 50 KB |`,
        `| of which V8 heap only (heapUsed, the issue's literal figure) | ${r1(heapPerSpokeKb)} KB | - |`,
        `| \`braid status --json\` with ${SPOKES} peers (CLI, node start included) | ${r1(ops.cliMs)} ms (${r1(ops.jsonBytes / 1e6)} MB JSON; snapshot + JSON in the edge ${r1(ops.inProcessMs)} ms) | < 1 s |`,
        `| /metrics scrape with ${SPOKES} peers, default (per-path series) | ${r1(ops.scrapeMs)} ms, ${ops.series} series (${r1(ops.perPeerSeries)} per peer) | < 1 s |`,
        `| /metrics scrape with ${SPOKES} peers, \`metrics.pathSeries: false\` | ${r1(ops.lightScrapeMs)} ms, ${ops.lightSeries} series | < 1 s |`,
        `| longest event-loop block during a /metrics scrape with ${SPOKES} peers (median of 3; max) | ${r1(ops.scrapeStallMs)} ms; ${r1(ops.scrapeStallMaxMs)} ms | ~20 ms (spokes call a path dead after 314 ms) |`,
        `| longest event-loop block during the per-second RTT sample (median of 3; max) | ${r1(ops.sampleStallMs)} ms; ${r1(ops.sampleStallMaxMs)} ms | ~20 ms |`,
        `| hub restart: all spokes carry traffic again (slowest / p99 / p50) | ${rec.slowestMs} / ${rec.p99Ms} / ${rec.p50Ms} ms | < 10 s |`,
        `| hub restart: the hub answers each spoke's handshake (slowest / p50), first World / twin / twin under the flood | ${rec.hsSlowestMs} / ${rec.hsP50Ms}; ${plain2.rec.hsSlowestMs} / ${plain2.rec.hsP50Ms}; ${recFlood.hsSlowestMs} / ${recFlood.hsP50Ms} ms | - |`,
        `| the same restart in a twin World (same seed and history, no flood) | ${plain2.rec.slowestMs} / ${plain2.rec.p99Ms} / ${plain2.rec.p50Ms} ms | - |`,
        `| the twin under 50,000 forged initiations from one address, 4,096 ports | ${recFlood.slowestMs} / ${recFlood.p99Ms} / ${recFlood.p50Ms} ms (slowest ${floodChange >= 0 ? '+' : ''}${r1(floodChange * 100)}% vs the twin, ${floodVsFirst >= 0 ? '+' : ''}${r1(floodVsFirst * 100)}% vs the first World) | < 10% change |`,
        '',
      ].join('\n'),
    );
  }
  const fig = (bench: string, value: number, unit: string, peers?: Record<string, number>): void => console.log(JSON.stringify({ bench, value, unit, ...(peers ? { peers } : {}) }));
  fig('fleet-hub-cpu-idle', r3(idle.hubCpuMsPerSimS / 10), '% of a core', { withTraffic: r3(traffic.hubCpuMsPerSimS / 10) });
  fig('fleet-probe-bucket-max-over-mean', r2(idle.probeMax / idle.probeMean), 'ratio', { allTransmits: r2(idle.txMax / idle.txMean) });
  // The simulation's own speed: the traffic window per wall second, in the parallel World (the plain
  // twin's, one thread, when this box has one CPU).
  const speed = PARTITIONS > 1 ? par.traffic : trafficBare;
  fig('fleet-sim-speed', r2(speed.simS / speed.wallS), 'x real time', {
    partitions: PARTITIONS,
    parallelPerProcessCpuS: r2(par.traffic.simS / par.traffic.cpuS),
    ...Object.fromEntries(par.windows.map((x, k) => [`parallelWindow${k + 1}Wall`, r2(x.simS / x.wallS)])),
    parallelIdleWall: r2(par.idle.simS / par.idle.wallS),
    oneThreadWall: r2(trafficBare.simS / trafficBare.wallS),
    trafficBarePerCpuS: r2(trafficBare.simS / trafficBare.cpuS),
    trafficBareFloodTwinWall: r2(flooded.traffic.simS / flooded.traffic.wallS),
    idleBareWall: r2(idleBare.simS / idleBare.wallS),
    idleBarePerCpuS: r2(idleBare.simS / idleBare.cpuS),
    meteredTrafficWall: r2(traffic.simS / traffic.wallS),
    meteredTrafficPerCpuS: r2(traffic.simS / traffic.cpuS),
    meteredIdleWall: r2(idle.simS / idle.wallS),
    meteredIdlePerCpuS: r2(idle.simS / idle.cpuS),
  });
  fig('fleet-hub-heap-per-spoke', r1(heapPerSpokeKb), 'KB', { withArrayBuffers: r1(heapPerSpokeKb + buffersPerSpokeKb) });
  // The acceptance figure: heapUsed leaves out typed arrays' stores, a third of a hub's per-spoke memory.
  fig('fleet-hub-memory-per-spoke', r1(heapPerSpokeKb + buffersPerSpokeKb), 'KB', { heapOnly: r1(heapPerSpokeKb), arrayBuffers: r1(buffersPerSpokeKb) });
  fig('fleet-status-json', r1(ops.cliMs), 'ms', { inProcess: r1(ops.inProcessMs) });
  fig('fleet-metrics-scrape', r1(ops.scrapeMs), 'ms', { series: ops.series, pathSeriesOffMs: r1(ops.lightScrapeMs), pathSeriesOffSeries: ops.lightSeries });
  fig('fleet-scrape-stall', r1(ops.scrapeStallMs), 'ms', { max: r1(ops.scrapeStallMaxMs) });
  fig('fleet-sample-stall', r1(ops.sampleStallMs), 'ms', { max: r1(ops.sampleStallMaxMs) });
  fig('fleet-restart-slowest', rec.slowestMs, 'ms', { p99: rec.p99Ms, p50: rec.p50Ms, sessionsSlowestMs: rec.hsSlowestMs });
  fig('fleet-restart-slowest-flood', recFlood.slowestMs, 'ms', { changePct: r1(floodChange * 100), twinMs: plain2.rec.slowestMs, vsFirstPct: r1(floodVsFirst * 100), sessionsSlowestMs: recFlood.hsSlowestMs, twinSessionsSlowestMs: plain2.rec.hsSlowestMs });
}

await main();
