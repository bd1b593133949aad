/**
 * Runs a scenario in real time (root): two real `braid up` processes with TUN devices in network
 * namespaces, the WAN links through a third namespace that impairs them, real traffic, the
 * timeline at wall-clock times, and the same report as in virtual time.
 *
 *   ns brt-T-a (site a, branch)      ns brt-T-r (the WAN)                ns brt-T-b (site b, hub)
 *   braid up, TUN 10.99.0.1          per link i: ra<i> <-> rb<i>          braid up, TUN 10.99.0.2
 *   wan<i> 10.(200+i).1.1  ======  ra<i> .254 | rb<i> 10.(210+i).1.254 ======  wan<i> 10.(210+i).1.2
 *   traffic agent, iperf3 client      impairment (backend):                traffic agent, iperf3 server
 *                                    tc: netem qdiscs on rb<i> (up) and ra<i> (down)
 *                                    userspace: policy routing into one TUN per link, where a
 *                                    relay process (src/io/realtime/relay.ts) runs the NetemEngine
 *
 * Stages: checks (root, addon, iperf3) -> backend (detectNetemBackend unless forced) -> namespaces
 * -> impairment at the links' base specs -> both edges (startTwoSites over this topology, link
 * tiers and bandwidths from the scenario) -> event subscriptions -> traffic agents and iperf3 ->
 * t0 -> the timeline at t0 + at (a status of each edge just before each step) -> end + drain ->
 * results -> teardown (always: processes, then namespaces) -> the report.
 *
 * The edges' link sockets stay bound to their interfaces (SO_BINDTODEVICE) and see each other's
 * real addresses: the impairment is transparent at layer 3, whichever backend runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BraidError, ErrorCode } from '../../core/errors.ts';
import type { ClassName } from '../../core/steer/classes.ts';
import type { EdgeEvent, EdgeSnapshot } from '../../core/types.ts';
import { tryLoadNative } from '../native.ts';
import { controlRequest, startTwoSites, type TwoSites } from '../../../sim/e2e.ts';
import { NAME_PREFIX, cleanupStale, isRoot, sh, type SiteLink, type Topology } from '../../../sim/netns.ts';
import { detectNetemBackend, formatNetemSpec, tcCommandLines, type NetemBackend, type NetemSpec } from '../../../sim/netem/spec.ts';
import { sharedNowMs, type RelayConfig } from './relay.ts';
import type { NetemCounters } from '../../../sim/netem/engine.ts';
import { analyzeTimeline, TrafficTracker, type ClassStats, type SiteEvent, type SiteName } from '../../../sim/scenario/metrics.ts';
import { buildReport, edgeClassNumbers, type ScenarioReport } from '../../../sim/scenario/report.ts';
import { activeLinks } from '../../../sim/scenario/run-virtual.ts';
import type { Scenario, ScenarioStep, ScenarioTraffic } from '../../../sim/scenario/schema.ts';
import { classActivity, classesOf, planFlows } from '../../../sim/scenario/traffic.ts';
import type { AgentPlan, AgentResult } from './traffic-agent.ts';

// From a clone these run as TypeScript through bin/run-ts.js; from the Debian package (compiled
// JavaScript, no TypeScript loader) as the .js files next to this one.
const COMPILED = import.meta.url.endsWith('.js');
const RUN_TS = fileURLToPath(new URL('../../../bin/run-ts.js', import.meta.url));
const RELAY_ARGS = COMPILED ? [fileURLToPath(new URL('./relay.js', import.meta.url))] : [RUN_TS, fileURLToPath(new URL('./relay.ts', import.meta.url))];
const AGENT_ARGS = COMPILED ? [fileURLToPath(new URL('./traffic-agent.js', import.meta.url))] : [RUN_TS, fileURLToPath(new URL('./traffic-agent.ts', import.meta.url))];

export interface RealRunOptions {
  seed?: number;
  /** Namespace tag (1-6 lowercase letters/digits): namespaces are brt-<tag>-a/-b/-r. */
  tag?: string;
  /** Force a backend; default: tc where the kernel has sch_netem, else userspace. */
  backend?: NetemBackend;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
}

/** After the traffic stops, wait this long for packets in flight. */
export const REAL_DRAIN_MS = 2000;
/** Scenario time 0 is this long after everything is ready (agents armed, subscriptions open). */
const T0_LEAD_MS = 1000;
const AGENT_PORT = 5000;
const IPERF_BASE_PORT = 5201;
const TUN_ADDRESS: Record<SiteName, string> = { a: '10.99.0.1', b: '10.99.0.2' };

/** The plan of the WAN namespace: names and addresses per link. */
export interface RelayTopology extends Topology {
  r: { ns: string; links: Array<{ name: string; toA: string; toB: string; aAddress: string; bAddress: string; tun: string; table: number }> };
}

function validateTag(tag: string): void {
  if (!/^[a-z0-9]{1,6}$/.test(tag)) throw new BraidError(ErrorCode.USAGE, `namespace tag "${tag}" is not valid`, { fix: 'use 1-6 lowercase letters or digits' });
}

/** Creates the three namespaces and the veths; returns a Topology startTwoSites can use. */
export async function createRelayTopology(tag: string, linkNames: readonly string[]): Promise<RelayTopology> {
  validateTag(tag);
  if (linkNames.length > 8) throw new Error('relay topology: at most 8 links');
  await cleanupStale(tag);
  const ns = { a: `${NAME_PREFIX}${tag}-a`, b: `${NAME_PREFIX}${tag}-b`, r: `${NAME_PREFIX}${tag}-r` };
  const a: { ns: string; links: SiteLink[] } = { ns: ns.a, links: [] };
  const b: { ns: string; links: SiteLink[] } = { ns: ns.b, links: [] };
  const r: RelayTopology['r'] = { ns: ns.r, links: [] };
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const n of [ns.a, ns.b, ns.r]) await sh(['ip', 'netns', 'del', n]).catch(() => undefined);
  };
  try {
    for (const n of [ns.a, ns.b, ns.r]) {
      await sh(['ip', 'netns', 'add', n]);
      await sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
    }
    // The WAN namespace routes between the sites; no reverse-path filter (the relay's TUN is not
    // the route back to the sender), no redirects.
    await sh(['ip', 'netns', 'exec', ns.r, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0']);
    for (let i = 0; i < linkNames.length; i++) {
      const aAddr = `10.${200 + i}.1.1`;
      const raAddr = `10.${200 + i}.1.254`;
      const bAddr = `10.${210 + i}.1.2`;
      const rbAddr = `10.${210 + i}.1.254`;
      const pairs: Array<[string, string, string, string, string]> = [
        // [ns of the site end, tmp name there, final name there, tmp name in r, final name in r]
        [ns.a, `${NAME_PREFIX}${tag}${i}p`, `wan${i}`, `${NAME_PREFIX}${tag}${i}q`, `ra${i}`],
        [ns.b, `${NAME_PREFIX}${tag}${i}s`, `wan${i}`, `${NAME_PREFIX}${tag}${i}t`, `rb${i}`],
      ];
      for (const [siteNs, tmpSite, ifSite, tmpR, ifR] of pairs) {
        // Created straight into the namespaces with temporary names: nothing is left in the root one.
        await sh(['ip', 'link', 'add', tmpSite, 'netns', siteNs, 'type', 'veth', 'peer', 'name', tmpR, 'netns', ns.r]);
        await sh(['ip', '-n', siteNs, 'link', 'set', tmpSite, 'name', ifSite]);
        await sh(['ip', '-n', ns.r, 'link', 'set', tmpR, 'name', ifR]);
      }
      await sh(['ip', '-n', ns.a, 'addr', 'add', `${aAddr}/24`, 'dev', `wan${i}`]);
      await sh(['ip', '-n', ns.b, 'addr', 'add', `${bAddr}/24`, 'dev', `wan${i}`]);
      await sh(['ip', '-n', ns.r, 'addr', 'add', `${raAddr}/24`, 'dev', `ra${i}`]);
      await sh(['ip', '-n', ns.r, 'addr', 'add', `${rbAddr}/24`, 'dev', `rb${i}`]);
      for (const [n, dev] of [[ns.a, `wan${i}`], [ns.b, `wan${i}`], [ns.r, `ra${i}`], [ns.r, `rb${i}`]] as const) await sh(['ip', '-n', n, 'link', 'set', dev, 'up']);
      await sh(['ip', '-n', ns.a, 'route', 'add', `${bAddr}/32`, 'via', raAddr, 'dev', `wan${i}`]);
      await sh(['ip', '-n', ns.b, 'route', 'add', `${aAddr}/32`, 'via', rbAddr, 'dev', `wan${i}`]);
      a.links.push({ name: linkNames[i]!, ifname: `wan${i}`, address: aAddr });
      b.links.push({ name: linkNames[i]!, ifname: `wan${i}`, address: bAddr });
      r.links.push({ name: linkNames[i]!, toA: `ra${i}`, toB: `rb${i}`, aAddress: aAddr, bAddress: bAddr, tun: `brt${tag}r${i}`, table: 100 + i });
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  const nsOf = (site: 'a' | 'b'): string => (site === 'a' ? ns.a : ns.b);
  return {
    tag,
    a,
    b,
    r,
    execIn: (site, argv, o) => sh(['ip', 'netns', 'exec', nsOf(site), ...argv], o?.timeoutMs),
    spawnIn: (site, argv, o) => spawn('ip', ['netns', 'exec', nsOf(site), ...argv], { stdio: 'pipe', ...o }),
    destroy,
  };
}

/** The tc commands (backend tc) that give link `index` the spec `spec` in direction `dir`. */
export function tcCommandsFor(topo: Pick<RelayTopology, 'r'>, index: number, dir: 'up' | 'down', spec: NetemSpec): string[][] {
  const link = topo.r.links[index]!;
  // Up (a -> b) leaves the WAN namespace towards b; down leaves it towards a.
  return tcCommandLines(dir === 'up' ? link.toB : link.toA, spec, { namespace: topo.r.ns });
}

/**
 * The userspace backend's relays: one process per link of `t` (src/io/realtime/relay.ts) at the
 * link's base specs, and the WAN namespace's policy routes from the link's two interfaces into its
 * TUN. Each relay goes into `into` as soon as it runs, so the caller's stop() ends those started
 * before a failure. Also used by src/io/realtime/bond-ns.ts (bonding over delayed links). `niceness` (e.g. -10)
 * runs them ahead of the edges under test: on a busy box a relay that waits for a CPU delivers
 * late, which is the test bed's jitter, not the network's (the relays' `maxLateMs`).
 */
export async function startRelays(
  t: Pick<RelayTopology, 'r'>,
  links: ReadonlyArray<{ name: string; up: NetemSpec; down: NetemSpec }>,
  seed: number,
  into: JsonLineProcess[],
  opts: { niceness?: number } = {},
): Promise<void> {
  for (let i = 0; i < links.length; i++) {
    const l = links[i]!;
    const rl = t.r.links[i]!;
    const config: RelayConfig = { tun: rl.tun, link: l.name, aAddress: rl.aAddress, up: formatNetemSpec(l.up), down: formatNetemSpec(l.down), seed: (seed + i * 7919) >>> 0 };
    const nice = opts.niceness !== undefined ? ['nice', '-n', String(opts.niceness)] : [];
    const proc = spawn('ip', ['netns', 'exec', t.r.ns, ...nice, process.execPath, ...RELAY_ARGS, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const relay = new JsonLineProcess(`relay ${l.name}`, proc);
    into.push(relay);
    await relay.waitFor((m) => m.ready === true, 30_000, 'ready line');
    await sh(['ip', '-n', t.r.ns, 'route', 'add', 'default', 'dev', rl.tun, 'table', String(rl.table)]);
    for (const dev of [rl.toA, rl.toB]) await sh(['ip', '-n', t.r.ns, 'rule', 'add', 'iif', dev, 'lookup', String(rl.table)]);
  }
}

/** A child process speaking JSON lines on stdout. */
export class JsonLineProcess {
  private buffer = '';
  private readonly waiters: Array<{ match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> = [];
  readonly lines: Array<Record<string, unknown>> = [];
  stderr = '';

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      this.buffer += d;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        this.lines.push(msg);
        const i = this.waiters.findIndex((w) => w.match(msg));
        if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(msg);
      }
    });
    proc.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
  }

  waitFor(match: (m: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const found = this.lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no ${what} in ${timeoutMs} ms${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`)), timeoutMs);
      const onExit = (code: number | null): void => {
        clearTimeout(t);
        reject(new Error(`${this.name} exited (${code}) before ${what}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`));
      };
      this.proc.once('exit', onExit);
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(t);
          this.proc.removeListener('exit', onExit);
          resolve(m);
        },
      });
    });
  }

  send(msg: object): void {
    this.proc.stdin?.write(JSON.stringify(msg) + '\n');
  }

  exited(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.proc.once('exit', () => r()));
  }

  async stop(timeoutMs = 3000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited();
    clearTimeout(t);
  }
}

/** Snapshots and events of one edge, from its control socket's subscription. */
class EdgeWatch {
  readonly events: EdgeEvent[] = [];
  private readonly seen = new Set<string>();
  /** Smallest (receive time - edge clock) seen: the edge clock's offset to the shared clock. */
  offsetMs = Infinity;
  last: EdgeSnapshot | undefined;
  private sock: Socket | undefined;

  constructor(readonly site: SiteName) {}

  start(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      this.sock = sock;
      let buf = '';
      let first = true;
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(JSON.stringify({ cmd: 'subscribe', intervalMs: 500 }) + '\n'));
      sock.on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let m: { status?: EdgeSnapshot; event?: EdgeEvent };
          try {
            m = JSON.parse(line) as typeof m;
          } catch {
            continue;
          }
          if (m.status) this.onStatus(m.status, sharedNowMs());
          if (m.event) this.onEvent(m.event);
          if (first) {
            first = false;
            resolve();
          }
        }
      });
      sock.on('error', (e) => {
        if (first) reject(e);
      });
    });
  }

  onStatus(s: EdgeSnapshot, receivedAtMs: number): void {
    this.last = s;
    this.offsetMs = Math.min(this.offsetMs, receivedAtMs - s.nowMs);
    for (const e of s.recentEvents) this.onEvent(e);
  }

  private onEvent(e: EdgeEvent): void {
    const key = `${e.atMs}|${e.kind}|${e.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.events.push(e);
  }

  stop(): void {
    this.sock?.destroy();
  }
}

interface IperfRun {
  traffic: ScenarioTraffic;
  port: number;
  server: ChildProcess;
  client: ChildProcess | undefined;
  serverOut: string;
  clientOut: string;
}

interface IperfJson {
  start?: { timestamp?: { timesecs?: number } };
  intervals?: Array<{ sum?: { start: number; end: number; bytes: number } }>;
  end?: {
    sum_sent?: { bytes: number; retransmits?: number };
    sum_received?: { bytes: number };
    sum_sent_bidir_reverse?: { bytes: number };
    sum_received_bidir_reverse?: { bytes: number };
  };
  error?: string;
}

function parseIperf(text: string): IperfJson | undefined {
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  try {
    return JSON.parse(text.slice(start)) as IperfJson;
  } catch {
    return undefined;
  }
}

/** Longest run of intervals that received nothing (ms), from the receiving side's intervals. */
function iperfMaxGapMs(j: IperfJson | undefined): number | undefined {
  if (!j?.intervals || j.intervals.length === 0) return undefined;
  let gap = 0;
  let run = 0;
  for (const iv of j.intervals) {
    const s = iv.sum;
    if (!s) continue;
    if (s.bytes === 0) run += (s.end - s.start) * 1000;
    else {
      gap = Math.max(gap, run);
      run = 0;
    }
  }
  return Math.max(gap, run);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * The real-time bed of a scenario: namespaces, impairment at the links' base specs, both edges,
 * their event subscriptions. stop() tears everything down (processes, then namespaces) and is
 * safe to call twice; startRealBed cleans up after itself when it fails half-way.
 */
export interface RealBed {
  backend: NetemBackend;
  topo: RelayTopology;
  sites: TwoSites;
  watches: Record<SiteName, EdgeWatch>;
  /** Installs `spec` on link `index` in direction `dir`; resolves with when it took effect (shared clock). */
  apply(index: number, dir: 'up' | 'down', spec: NetemSpec): Promise<number>;
  /** Relay counters (userspace backend), one line per link. */
  relayStats(): Promise<string[]>;
  /** Runs `fn` first when the bed stops (also on SIGINT/SIGTERM): for the caller's own processes and files. */
  addCleanup(fn: () => Promise<void> | void): void;
  stop(): Promise<void>;
}

export async function startRealBed(scenario: Scenario, options: RealRunOptions = {}): Promise<RealBed> {
  const progress = options.onProgress ?? ((): void => undefined);
  const seed = options.seed ?? scenario.seed ?? 1;
  const tag = options.tag ?? 'sim';
  validateTag(tag);
  if (!isRoot()) throw new BraidError(ErrorCode.USAGE, 'sim run --real needs root (network namespaces, TUN devices)', { fix: 'run it as root, or use --virtual' });
  if (!tryLoadNative()) throw new BraidError(ErrorCode.NATIVE_MISSING, 'sim run --real needs the native addon (TUN, DSCP marking)', { fix: 'run `npm ci` (or `npm rebuild`) with a C compiler' });
  const backend = options.backend ?? (await detectNetemBackend());
  progress(`real time: netem backend ${backend}${options.backend ? ' (forced)' : ' (detected)'}`);
  const relays: JsonLineProcess[] = [];
  const watches = { a: new EdgeWatch('a'), b: new EdgeWatch('b') };
  let topo: RelayTopology | undefined;
  let sites: TwoSites | undefined;
  let stopped = false;
  const cleanups: Array<() => Promise<void> | void> = [];
  // Ctrl-C or a kill in the middle of a run must not leave namespaces and processes behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`real time: ${signal}: tearing down`);
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
    watches.a.stop();
    watches.b.stop();
    await sites?.stop().catch(() => undefined);
    for (const relay of relays) await relay.stop(2000).catch(() => undefined);
    await topo?.destroy();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    progress(`real time: namespaces ${NAME_PREFIX}${tag}-a/-b/-r, ${scenario.links.length} links`);
    topo = await createRelayTopology(tag, scenario.links.map((l) => l.name));
    const t = topo;
    const acked = new Set<Record<string, unknown>>();
    const apply = async (index: number, dir: 'up' | 'down', spec: NetemSpec): Promise<number> => {
      if (backend === 'tc') {
        for (const argv of tcCommandsFor(t, index, dir, spec)) {
          await sh(argv).catch((e: unknown) => {
            const text = e instanceof Error ? e.message : String(e);
            if (/qdisc kind is unknown/.test(text)) throw new BraidError(ErrorCode.USAGE, 'this kernel has no sch_netem, so the tc backend cannot run', { fix: 'leave --backend out (the userspace relay runs instead)' });
            throw e;
          });
        }
        return sharedNowMs();
      }
      const relay = relays[index]!;
      const ack = relay.waitFor((m) => m.dir === dir && (m.ok === true || m.ok === false) && !acked.has(m), 5000, `ack of ${dir} spec`);
      relay.send({ dir, spec: formatNetemSpec(spec) });
      const m = await ack;
      acked.add(m);
      if (m.ok !== true) throw new Error(`relay ${relay.name}: ${String(m.error)}`);
      return typeof m.atMs === 'number' ? m.atMs : sharedNowMs();
    };
    if (backend === 'userspace') {
      await startRelays(t, scenario.links, seed, relays);
    } else {
      for (let i = 0; i < scenario.links.length; i++) {
        await apply(i, 'up', scenario.links[i]!.up);
        await apply(i, 'down', scenario.links[i]!.down);
      }
    }

    progress('real time: starting two braid up processes');
    sites = await startTwoSites({
      tag,
      topo: t,
      links: scenario.links.map((l) => l.name),
      logLevel: 'warn',
      startTimeoutMs: 30_000,
      // Same for both sites: bound to the interface, any address (the route picks the source).
      extraConfig: {
        links: scenario.links.map((l, i) => ({
          name: l.name,
          interface: `wan${i}`,
          port: 51900,
          costTier: l.costTier,
          ...(l.bandwidthBps ? { bandwidthUp: Math.round(l.bandwidthBps.up) } : {}),
        })),
      },
    });
    await watches.a.start(sites.a.controlSocket);
    await watches.b.start(sites.b.controlSocket);
    const relayStats = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const relay of relays) {
        relay.send({ cmd: 'stats' });
        const m = await relay.waitFor((x) => x.stats !== undefined && !acked.has(x), 2000, 'stats').catch(() => undefined);
        if (m) acked.add(m);
        const st = m?.stats as { link?: string; maxLateMs?: number; writeErrors?: number; up?: NetemCounters; down?: NetemCounters } | undefined;
        if (!st) continue;
        const dirText = (c: NetemCounters | undefined): string => (c ? `${c.enqueued} in, ${c.delivered} out, ${c.dropped.loss + c.dropped.limit} dropped` : '-');
        out.push(`relay ${st.link}: up ${dirText(st.up)}; down ${dirText(st.down)}; departures at most ${st.maxLateMs} ms late${st.writeErrors ? `; ${st.writeErrors} TUN write errors` : ''}`);
      }
      return out;
    };
    return { backend, topo: t, sites, watches, apply, relayStats, addCleanup: (fn) => cleanups.push(fn), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export async function runReal(scenario: Scenario, options: RealRunOptions = {}): Promise<ScenarioReport> {
  const progress = options.onProgress ?? ((): void => undefined);
  const seed = options.seed ?? scenario.seed ?? 1;
  const health = scenario.timeline.find((t) => t.action === 'health');
  if (health) {
    throw new BraidError(ErrorCode.USAGE, `this scenario has a health step (${health.text} at ${health.atMs / 1000} s), which only virtual time can play: real time has no fake health target yet`, { fix: 'run it --virtual' });
  }
  const bulk = scenario.traffic.filter((t) => t.kind === 'bulk');
  if (bulk.length > 0) {
    await sh(['iperf3', '--version']).catch(() => {
      throw new BraidError(ErrorCode.USAGE, 'this scenario has bulk traffic, which runs as iperf3 TCP in real time, and iperf3 is not installed', { fix: 'apt-get install iperf3, or run --virtual' });
    });
  }
  const wallStart = sharedNowMs();
  const bed = await startRealBed(scenario, options);
  const { backend, watches } = bed;
  const s = bed.sites;
  const notes: string[] = [`netem backend: ${backend}${backend === 'userspace' ? ' (this kernel has no sch_netem: one relay process per link runs the userspace engine)' : ' (tc qdiscs in the WAN namespace)'}`];
  if (scenario.overriddenClasses.length > 0) {
    notes.push(`policy overrides for ${scenario.overriddenClasses.join(', ')} not applied: braid's configuration has no class policies yet (virtual time applies them)`);
  }
  const dir = mkdtempSync(join(tmpdir(), `braid-sim-${bed.topo.tag}-`));
  const agents: JsonLineProcess[] = [];
  const iperfs: IperfRun[] = [];
  const apply = bed.apply;
  bed.addCleanup(async () => {
    for (const agent of agents) await agent.stop(2000).catch(() => undefined);
    for (const run of iperfs) for (const p of [run.client, run.server]) if (p && p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    // Traffic agents (voice, cbr) in both sites; iperf3 for bulk.
    const flows = planFlows(scenario);
    const udpFlows = flows.filter((f) => f.kind !== 'bulk');
    const endMs = scenario.durationMs + REAL_DRAIN_MS;
    for (const site of ['a', 'b'] as const) {
      const plan: AgentPlan = {
        site,
        peerAddress: TUN_ADDRESS[site === 'a' ? 'b' : 'a'],
        port: AGENT_PORT,
        flows: udpFlows.filter((f) => f.origin === site).map((f) => ({ flowId: f.flowId, sizeBytes: f.sizeBytes, dscp: f.dscp, intervalMs: f.intervalMs, firstMs: f.firstMs, stopMs: f.stopMs })),
        endMs,
        resultFile: join(dir, `agent-${site}.json`),
      };
      const planFile = join(dir, `plan-${site}.json`);
      writeFileSync(planFile, JSON.stringify(plan));
      const agent = new JsonLineProcess(`traffic agent ${site}`, s.topo.spawnIn(site, [process.execPath, ...AGENT_ARGS, planFile], { stdio: ['pipe', 'pipe', 'pipe'] }));
      agents.push(agent);
    }
    for (const agent of agents) await agent.waitFor((m) => m.ready === true, 30_000, 'ready line');
    bulk.forEach((tr, k) => {
      const port = IPERF_BASE_PORT + k;
      const server = s.topo.spawnIn('b', ['iperf3', '-s', '-1', '-p', String(port), '-J', '-i', '0.1']);
      const run: IperfRun = { traffic: tr, port, server, client: undefined, serverOut: '', clientOut: '' };
      server.stdout?.on('data', (d: Buffer) => (run.serverOut += d.toString()));
      iperfs.push(run);
    });

    // Scenario time 0.
    const t0 = sharedNowMs() + T0_LEAD_MS;
    for (const agent of agents) agent.send({ t0SharedMs: t0 });
    const at = (ms: number): Promise<void> => sleep(t0 + ms - sharedNowMs());
    progress(`real time: running ${(scenario.durationMs / 1000).toFixed(0)} s of scenario ${scenario.name}`);
    for (const run of iperfs) {
      const tr = run.traffic;
      void at(tr.startMs).then(() => {
        const seconds = Math.max(1, Math.round((tr.stopMs - tr.startMs) / 1000));
        const perFlowMbps = (tr.rateMbps ?? 1) / tr.flows;
        const args = ['iperf3', '-c', TUN_ADDRESS.b, '-p', String(run.port), '-t', String(seconds), '-P', String(tr.flows), '-b', `${perFlowMbps}M`, '-S', String(tr.dscp << 2), '-J', '-i', '0.1'];
        if (tr.direction === 'down') args.push('-R');
        if (tr.direction === 'both') args.push('--bidir');
        const client = s.topo.spawnIn('a', args);
        run.client = client;
        client.stdout?.on('data', (d: Buffer) => (run.clientOut += d.toString()));
      });
    }

    // Timeline: a status of both edges just before each step, then the change.
    const before: Array<{ a: EdgeSnapshot | undefined; b: EdgeSnapshot | undefined }> = [];
    const appliedSteps: ScenarioStep[] = [];
    for (let i = 0; i < scenario.timeline.length; i++) {
      const step = scenario.timeline[i]!;
      await at(step.atMs - 150);
      const [sa, sb] = await Promise.all([s.status('a').catch(() => undefined), s.status('b').catch(() => undefined)]);
      before[i] = { a: sa, b: sb };
      const received = sharedNowMs();
      if (sa) watches.a.onStatus(sa, received);
      if (sb) watches.b.onStatus(sb, received);
      await at(step.atMs);
      const index = scenario.links.findIndex((l) => l.name === step.link);
      let appliedAt = Infinity;
      for (const d of ['up', 'down'] as const) {
        const spec = step.result[d];
        if (spec) appliedAt = Math.min(appliedAt, await apply(index, d, spec));
      }
      appliedSteps.push({ ...step, atMs: appliedAt - t0 });
      progress(`real time: t=${((appliedAt - t0) / 1000).toFixed(2)} s ${step.link} ${step.action}${step.text ? ` "${step.text}"` : ''}${step.direction === 'both' ? '' : ` (${step.direction})`}`);
    }
    await at(endMs + 500);
    for (const agent of agents) await Promise.race([agent.exited(), sleep(10_000)]);
    for (const run of iperfs) {
      await Promise.race([new Promise<void>((r) => (run.client && run.client.exitCode === null ? run.client.once('exit', () => r()) : r())), sleep(15_000)]);
      await Promise.race([new Promise<void>((r) => (run.server.exitCode === null ? run.server.once('exit', () => r()) : r())), sleep(5_000)]);
    }
    const finalSnaps = await Promise.all([s.status('a').catch(() => watches.a.last), s.status('b').catch(() => watches.b.last)]);

    // ---- measure ----------------------------------------------------------------------------
    const tracker = new TrafficTracker(udpFlows);
    const results: AgentResult[] = agents.map((_, k) => JSON.parse(readFileSync(join(dir, `agent-${k === 0 ? 'a' : 'b'}.json`), 'utf8')) as AgentResult);
    for (const r of results) for (const [flowId, times] of r.sends) times.forEach((ms, seq) => tracker.recordSend(flowId, seq, ms));
    for (const r of results) {
      const recvs = [...r.recvs].sort((x, y) => x[2] - y[2]);
      const size = new Map(udpFlows.map((f) => [f.flowId, f.sizeBytes]));
      for (const [flowId, seq, recvMs, , intact] of recvs) tracker.recordDelivery(flowId, seq, recvMs, r.site, intact === 1, size.get(flowId) ?? 0);
    }
    const toScenario = (site: SiteName, e: EdgeEvent): SiteEvent => ({ ...e, atMs: e.atMs + watches[site].offsetMs - t0, site });
    const events: SiteEvent[] = [...watches.a.events.map((e) => toScenario('a', e)), ...watches.b.events.map((e) => toScenario('b', e))]
      .filter((e) => e.atMs >= -5000)
      .sort((x, y) => x.atMs - y.atMs);
    const classes = classesOf(scenario);
    const steps = analyzeTimeline({
      timeline: appliedSteps,
      events,
      classes,
      endMs: scenario.durationMs,
      activeLinksAt: (i, site) => activeLinks(before[i]?.[site]),
      rttMsAt: (i, link) => before[i]?.a?.links.find((l) => l.name === link)?.rttMs,
      lostBetween: (c, from, to) => (scenario.traffic.some((tr) => tr.className === c && tr.kind !== 'bulk') ? tracker.lostBetween(c, from, to) : undefined),
    });
    const sentByClass = new Map<string, number>();
    const stats: ClassStats[] = classes.map((c) => {
      const { activeMs, directions } = classActivity(scenario, c);
      const items = scenario.traffic.filter((tr) => tr.className === c);
      if (items.every((tr) => tr.kind === 'bulk')) return iperfStats(c, iperfs.filter((run) => run.traffic.className === c), activeMs, directions, notes);
      if (items.some((tr) => tr.kind === 'bulk')) notes.push(`${c}: mixes bulk (iperf3) and packet traffic; only the packet traffic is counted`);
      const st = tracker.classStats(c, activeMs, directions);
      sentByClass.set(c, st.sent ?? 0);
      return st;
    });
    for (const st of stats) Object.assign(st, edgeClassNumbers(finalSnaps, st.className, sentByClass));
    for (const r of results) {
      if (r.sendFailures > 0) notes.push(`traffic agent ${r.site}: ${r.sendFailures} sends refused by the kernel`);
      if (r.foreign > 0) notes.push(`traffic agent ${r.site}: ${r.foreign} datagrams that were not ours`);
    }
    if (tracker.anomalyTotal > 0) notes.push(`${tracker.anomalyTotal} misdelivered packets, e.g. ${tracker.anomalies[0]}`);
    finalSnaps.forEach((snap, k) => {
      const drops = Object.entries(snap?.drops ?? {}).filter(([, v]) => v > 0);
      if (drops.length > 0) notes.push(`edge ${k === 0 ? 'a' : 'b'} drops: ${drops.map(([r, v]) => `${r} ${v}`).join(', ')}`);
    });
    notes.push(...(await bed.relayStats()));
    const wallMs = sharedNowMs() - wallStart;
    return buildReport({ scenario, mode: 'real', backend, seed, wallMs, steps, classes: stats, edgeEvents: events, notes });
  } finally {
    progress('real time: tearing down');
    await bed.stop();
  }
}

function iperfStats(className: ClassName, runs: IperfRun[], activeMs: number, directions: number, notes: string[]): ClassStats {
  let bytesSent = 0;
  let bytesDelivered = 0;
  let retransmits = 0;
  let maxGapMs: number | undefined;
  for (const run of runs) {
    const client = parseIperf(run.clientOut);
    const server = parseIperf(run.serverOut);
    if (!client?.end) {
      notes.push(`${className}: iperf3 on port ${run.port} gave no result${client?.error ? `: ${client.error}` : ''}`);
      continue;
    }
    const e = client.end;
    bytesSent += (e.sum_sent?.bytes ?? 0) + (e.sum_sent_bidir_reverse?.bytes ?? 0);
    bytesDelivered += (e.sum_received?.bytes ?? 0) + (e.sum_received_bidir_reverse?.bytes ?? 0);
    retransmits += e.sum_sent?.retransmits ?? 0;
    // The receiving side's intervals show silences: the server for up, the client for -R.
    const gap = iperfMaxGapMs(run.traffic.direction === 'down' ? client : run.traffic.direction === 'up' ? server : undefined);
    if (gap !== undefined) maxGapMs = Math.max(maxGapMs ?? 0, gap);
  }
  notes.push(`${className}: iperf3 TCP, ${retransmits} retransmits; packets are not counted (TCP retransmits), bytes are`);
  return {
    className,
    flows: runs.reduce((n, r) => n + r.traffic.flows, 0),
    sent: undefined,
    delivered: undefined,
    lost: undefined,
    lossRatio: undefined,
    deliveredRatio: bytesSent > 0 ? bytesDelivered / bytesSent : undefined,
    duplicated: undefined,
    corrupted: undefined,
    bytesSent,
    bytesDelivered,
    latencyP50Ms: undefined,
    latencyP99Ms: undefined,
    maxGapMs,
    throughputMbps: activeMs > 0 ? (bytesDelivered * 8) / (activeMs / 1000) / Math.max(1, directions) / 1e6 : undefined,
    recovered: undefined,
    duplicatesSuppressed: undefined,
    moves: undefined,
  };
}
