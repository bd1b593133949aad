/**
 * Measuring tunnels between two namespaces: iperf3 TCP throughput, ping RTT, CPU time of the
 * tunnel processes, and bookkeeping so every process a benchmark starts is killed and every temp
 * dir removed at the end (deleting a namespace does not kill the processes inside it).
 */
import { readFileSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { sh, type Topology } from '../../sim/netns.ts';

/** Processes started by the benchmark, killed by killAll() on every exit path. */
const started = new Set<ChildProcess>();

export function track(proc: ChildProcess): ChildProcess {
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  return proc;
}

export function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone (or after the kill). */
export function stopProcess(p: ChildProcess, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    if (exited(p)) return resolve();
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      setTimeout(resolve, 200);
    }, graceMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** Temp dirs (keys, certificates, profiles) removed by killAll() if their owner did not get to it. */
const dirs = new Set<string>();

export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

/** Ends every tracked process and removes every tracked temp dir. */
export async function killAll(): Promise<void> {
  await Promise.all([...started].map((p) => stopProcess(p, 1500)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** Collects a child's stdout+stderr (bounded) and resolves when `pattern` appears. */
export function captureOutput(p: ChildProcess): { text(): string; waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<void> } {
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out = (out + d.toString()).slice(-200_000);
    for (const l of listeners) l();
  };
  p.stdout?.on('data', onData);
  p.stderr?.on('data', onData);
  return {
    text: () => out,
    waitFor: (pattern, timeoutMs, what) =>
      new Promise((resolve, reject) => {
        const done = (err?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          p.off('exit', onExit);
          if (err) reject(err);
          else resolve();
        };
        const check = (): void => {
          if (pattern.test(out)) done();
        };
        const onExit = (): void => {
          if (!pattern.test(out)) done(new Error(`${what}: the process exited (${p.exitCode ?? p.signalCode}) first:\n${out.slice(-3000)}`));
        };
        const timer = setTimeout(() => done(new Error(`${what}: not seen within ${timeoutMs} ms:\n${out.slice(-3000)}`)), timeoutMs);
        listeners.add(check);
        p.once('exit', onExit);
        check();
      }),
  };
}

export async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- CPU time of processes ---------------------------------------------------------------------

let clockTicks: number | undefined;

async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    const { stdout } = await sh(['getconf', 'CLK_TCK']).catch(() => ({ stdout: '100' }));
    clockTicks = Number(stdout.trim()) || 100;
  }
  return clockTicks;
}

/** utime + stime of a process (all its threads) in clock ticks; undefined if it is gone. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15 -> indexes 11 and 12 here.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Starts measuring CPU use of `pids`; stop() returns each one's use as a fraction of one core. */
export async function cpuMeter(pids: Record<string, number | undefined>): Promise<{ stop(): Record<string, number> }> {
  const hz = await ticksPerSecond();
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid === undefined ? undefined : cpuTicks(pid)]));
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const out: Record<string, number> = {};
      for (const [k, pid] of Object.entries(pids)) {
        const a = start[k];
        const b = pid === undefined ? undefined : cpuTicks(pid);
        if (a !== undefined && b !== undefined) out[k] = (b - a) / hz / seconds;
      }
      return out;
    },
  };
}

// ---- iperf3 and ping -----------------------------------------------------------------------------

export interface TcpResult {
  mbps: number;
  retransmits: number;
  seconds: number;
  /** Fraction of one core used by each process passed as `cpuOf`, during the run. */
  cpu: Record<string, number>;
  /** Pings sent during the run (opts.pingDuringIntervalS): the RTT under load. */
  loadedPing?: PingResult;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second: number; seconds: number };
    sum_sent?: { retransmits?: number };
  };
}

/**
 * One iperf3 TCP stream from site a to `serverAddress` in site b for `seconds`. The server is a
 * one-off (`-1`) bound to the address, so the run goes over the path under test only.
 */
export async function iperf3Tcp(
  topo: Topology,
  serverAddress: string,
  opts: {
    seconds: number;
    cpuOf?: Record<string, number | undefined>;
    onWindow?: (fromUs: number, toUs: number) => void;
    /** TCP streams (iperf3 -P); default 1. */
    parallel?: number;
    /** Also ping serverAddress at this interval from 1 s after the start to 1 s before the end (RTT under load). */
    pingDuringIntervalS?: number;
  },
): Promise<TcpResult> {
  const server = track(topo.spawnIn('b', ['iperf3', '-s', '-1', '--forceflush', '-B', serverAddress]));
  const serverOut = captureOutput(server);
  try {
    await serverOut.waitFor(/Server listening/, 5000, `iperf3 server on ${serverAddress}`);
    const meter = await cpuMeter(opts.cpuOf ?? {});
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const pingEvery = opts.pingDuringIntervalS;
    const pingCount = pingEvery ? Math.floor((opts.seconds - 2) / pingEvery) : 0;
    const loaded =
      pingEvery && pingCount > 0
        ? sleep(1000).then(() => pingRtt(topo, serverAddress, pingCount, pingEvery).catch((e: Error) => e))
        : undefined;
    const r = await topo
      .execIn('a', ['iperf3', '-c', serverAddress, '-t', String(opts.seconds), ...(opts.parallel && opts.parallel > 1 ? ['-P', String(opts.parallel)] : []), '-J'], { timeoutMs: (opts.seconds + 20) * 1000 })
      .catch((e: Error) => {
        // iperf3 -J prints its error inside the JSON on stdout; sh() reports stderr.
        throw new Error(`iperf3 to ${serverAddress}: ${e.message}`);
      });
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const cpu = meter.stop();
    opts.onWindow?.(fromUs, toUs);
    const loadedPing = await loaded;
    const j = JSON.parse(r.stdout) as IperfJson;
    if (j.error || !j.end?.sum_received) throw new Error(`iperf3 to ${serverAddress}: ${j.error ?? 'no sum_received in the JSON'}`);
    if (loadedPing instanceof Error) throw new Error(`ping during iperf3 to ${serverAddress}: ${loadedPing.message}`);
    return {
      mbps: j.end.sum_received.bits_per_second / 1e6,
      retransmits: j.end.sum_sent?.retransmits ?? 0,
      seconds: j.end.sum_received.seconds,
      cpu,
      ...(loadedPing ? { loadedPing } : {}),
    };
  } finally {
    await stopProcess(server, 1000);
  }
}

export interface PingResult {
  avgMs: number;
  p50Ms: number;
  minMs: number;
  maxMs: number;
  received: number;
  sent: number;
}

/** `count` pings at `intervalS` from site a (root allows intervals under 0.2 s). */
export async function pingRtt(topo: Topology, address: string, count = 50, intervalS = 0.05): Promise<PingResult> {
  const r = await topo.execIn('a', ['ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '1', address], {
    timeoutMs: (count * intervalS + 10) * 1000,
  });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length === 0) throw new Error(`ping ${address}: no replies:\n${r.stdout}`);
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return {
    avgMs: times.reduce((s, x) => s + x, 0) / times.length,
    p50Ms: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
    received: times.length,
    sent: count,
  };
}

/** A few pings until one answers: ARP, handshakes and flow setup happen here, not in the measurement. */
export async function warmUp(topo: Topology, address: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(
    async () => {
      await topo.execIn('a', ['ping', '-n', '-c', '1', '-W', '1', address], { timeoutMs: 3000 });
      return true;
    },
    timeoutMs,
    `${address} to answer pings`,
  );
  await topo.execIn('a', ['ping', '-n', '-c', '5', '-i', '0.05', '-W', '1', address], { timeoutMs: 5000 }).catch(() => undefined);
}

// ---- kernel UDP counters -------------------------------------------------------------------------

export interface UdpCounters {
  rcvbufErrors: number;
  sndbufErrors: number;
  inErrors: number;
}

/** The namespace's Udp counters from /proc/net/snmp (per network namespace). */
export async function udpCounters(topo: Topology, site: 'a' | 'b'): Promise<UdpCounters> {
  const { stdout } = await topo.execIn(site, ['cat', '/proc/net/snmp']);
  const lines = stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  const get = (k: string): number => values[names.indexOf(k)] ?? 0;
  return { rcvbufErrors: get('RcvbufErrors'), sndbufErrors: get('SndbufErrors'), inErrors: get('InErrors') };
}

/** Machine-wide CPU busy fraction (all cores) between start() and stop(), from /proc/stat. */
export function machineCpu(): { stop(): number } {
  const read = (): { busy: number; total: number } => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((s, x) => s + x, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  };
  const a = read();
  return {
    stop() {
      const b = read();
      return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
    },
  };
}

/**
 * Waits (at most maxWaitMs) for the machine to be quieter than `busyBelow` (all cores) over a
 * 1 s sample, so that a measurement does not start in the middle of someone's compile. Returns
 * the last sample: the background load the measurement started with.
 */
export async function waitForQuiet(maxWaitMs: number, busyBelow: number): Promise<number> {
  const until = Date.now() + maxWaitMs;
  for (;;) {
    const m = machineCpu();
    await sleep(1000);
    const busy = m.stop();
    if (busy < busyBelow || Date.now() >= until) return busy;
  }
}
