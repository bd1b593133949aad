/**
 * The built-in demo (`npm start`): two sites in the simulator (virtual time paced to the wall
 * clock), three WAN links with MPLS, broadband and LTE characteristics, steady traffic, an MPLS
 * blackout at 10 s and its recovery at 20 s. Needs no root and no configuration.
 *
 * On a terminal it shows site a live in the dashboard (the same one `braid dash` shows), and the
 * script repeats every --seconds (at least 25) until q; `d` drains a link in the simulator. When
 * stdout is not a terminal (CI logs, pipes) it prints the link counters once a second and every
 * event with its reason, then exits after --seconds.
 */
import { performance } from 'node:perf_hooks';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import type { EdgeSnapshot } from '../core/types.ts';
import { nativeAeadFactory } from '../io/native-aead.ts';

export interface DemoOptions {
  seconds: number;
  /** Virtual seconds per wall-clock second. */
  speed: number;
  seed: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The script: MPLS goes dark this far into each cycle, and comes back here. */
export const DEMO_BLACKOUT_AT_MS = 10_000;
export const DEMO_RECOVERY_AT_MS = 20_000;
/** A repeating demo gives the recovered path this long before the next blackout. */
const DEMO_MIN_CYCLE_MS = 25_000;
/** Limit on everything: the looping demo stops generating traffic after a day of virtual time. */
const DEMO_MAX_MS = 24 * 3600 * 1000;

export interface DemoWorldOptions {
  /** Repeat the blackout/recovery script every this many ms, with traffic for up to a day. */
  repeatEveryMs?: number;
}

export function buildDemoWorld(seed: number, seconds: number, opts: DemoWorldOptions = {}): World {
  const aead = nativeAeadFactory();
  const w = new World({
    seed,
    recordDeliveries: false,
    // The data AEAD `braid up` uses: the addon's when it loads.
    ...(aead ? { aead: aead.factory } : {}),
    links: [
      { name: 'mpls', delayMs: 12, jitterMs: 1, rateBps: 50e6 },
      { name: 'inet', delayMs: 22, jitterMs: 4, lossRatio: 0.002, rateBps: 100e6 },
      { name: 'lte', delayMs: 45, jitterMs: 15, lossRatio: 0.01, rateBps: 20e6 },
    ],
  });
  const endMs = opts.repeatEveryMs ? DEMO_MAX_MS : seconds * 1000;
  // 8 voice-like flows (200 B at 50 pps) and 6 bulk flows (1400 B at 200 pps) each way.
  w.every(20, { startMs: 200, untilMs: endMs }, (i) => {
    for (let f = 0; f < 8; f++) {
      w.a.sendTun(makePacket({ ...flowSpec(f, 200, 46), seq: i }));
      w.b.sendTun(makePacket({ ...flowSpec(100 + f, 200, 46), seq: i }));
    }
  });
  w.every(5, { startMs: 200, untilMs: endMs }, (i) => {
    for (let f = 0; f < 6; f++) w.a.sendTun(makePacket({ ...flowSpec(200 + f, 1400), seq: i }));
  });
  const cycle = (startMs: number): void => {
    w.impairAt(startMs + DEMO_BLACKOUT_AT_MS, 'mpls', { up: false });
    w.impairAt(startMs + DEMO_RECOVERY_AT_MS, 'mpls', { up: true });
    const every = opts.repeatEveryMs;
    // Each cycle schedules the next when it starts, so the event queue never holds a day of script.
    if (every && startMs + every < endMs) w.at(startMs + every, () => cycle(startMs + every));
  };
  cycle(0);
  return w;
}

/** Where the script stands at virtual time `nowMs`, for the dashboard's status line. */
export function demoScriptStatus(nowMs: number, cycleMs: number | undefined): string {
  const t = cycleMs ? nowMs % cycleMs : nowMs;
  const s = (ms: number): string => `${Math.ceil(ms / 1000)}s`;
  if (t < DEMO_BLACKOUT_AT_MS) return `simulated; mpls blackout in ${s(DEMO_BLACKOUT_AT_MS - t)}`;
  if (t < DEMO_RECOVERY_AT_MS) return `simulated; mpls is cut, back in ${s(DEMO_RECOVERY_AT_MS - t)}`;
  if (cycleMs) return `simulated; mpls restored, next blackout in ${s(cycleMs - t + DEMO_BLACKOUT_AT_MS)}`;
  return 'simulated; script done (mpls restored)';
}

function fmtRate(bytes: number, seconds: number): string {
  const bps = (bytes * 8) / Math.max(seconds, 1e-9);
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${(bps / 1e3).toFixed(0)} kbit/s`;
}

export function renderTable(snap: EdgeSnapshot, prev: EdgeSnapshot | undefined): string {
  const dt = prev ? (snap.nowMs - prev.nowMs) / 1000 : 1;
  const rows = snap.links.map((l) => {
    const p = prev?.links[l.id];
    const tx = fmtRate(l.txBytes - (p?.txBytes ?? 0), dt);
    const rx = fmtRate(l.rxBytes - (p?.rxBytes ?? 0), dt);
    const rtt = l.rttMs === undefined ? '-' : `${l.rttMs.toFixed(1)} ms`;
    return `  ${l.name.padEnd(6)} ${l.state.toUpperCase().padEnd(5)} rtt ${rtt.padStart(9)}  tx ${tx.padStart(13)}  rx ${rx.padStart(13)}  data pkts tx ${String(l.txDataPackets).padStart(7)} rx ${String(l.rxDataPackets).padStart(7)}`;
  });
  return [`site ${snap.site}  t=${(snap.nowMs / 1000).toFixed(0)}s  flows ${snap.flows}  delivered ${snap.deliveredPackets}`, ...rows].join('\n');
}

/** True when a person is watching: both ends a terminal, and not a CI runner (ink draws nothing live there). */
export function isInteractive(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = ['CI', 'CONTINUOUS_INTEGRATION'].some((k) => env[k] !== undefined && env[k] !== '0' && env[k] !== 'false');
  return process.stdout.isTTY === true && process.stdin.isTTY === true && !ci;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  return isInteractive() ? runDemoDashboard(opts) : runDemoText(opts);
}

/** The world advances in ticks of this much wall time, so virtual time follows the wall clock closely. */
const TICK_MS = 100;
/**
 * The dashboard gets a snapshot this often: a 160x48 frame costs ~25 ms of ink rendering here, so
 * 4 frames/s keeps the demo near 10% of a core while sparklines still move smoothly.
 */
const SNAPSHOT_EVERY_MS = 250;
/** At high --speed a tick may not fall further behind than this much virtual time, so keys stay responsive. */
const MAX_STEP_MS = 500;

async function runDemoDashboard(opts: DemoOptions): Promise<number> {
  preferReactProductionBuild();
  const { runDashboard, colorEnabled } = await import('../ui/index.ts');
  const cycleMs = Math.max(opts.seconds * 1000, DEMO_MIN_CYCLE_MS);
  const w = buildDemoWorld(opts.seed, opts.seconds, { repeatEveryMs: cycleMs });
  await runDashboard({
    // The seed only when it is not the default, so the header fits 80 columns.
    title: `demo ${opts.speed}x${opts.seed === 1 ? '' : ` seed ${opts.seed}`}`,
    color: colorEnabled(process.env, process.stdout.isTTY),
    feed: {
      start(listener) {
        const wallStartMs = performance.now();
        let lastStatus = '';
        let lastSnapshotWallMs = -Infinity;
        const tick = (): void => {
          const wallMs = performance.now();
          w.run(Math.min((wallMs - wallStartMs) * opts.speed, w.nowMs + MAX_STEP_MS));
          const status = demoScriptStatus(w.nowMs, cycleMs);
          if (status === lastStatus && wallMs - lastSnapshotWallMs < SNAPSHOT_EVERY_MS) return;
          lastSnapshotWallMs = wallMs;
          listener.snapshot(w.a.edge.snapshot(w.nowMs));
          if (status !== lastStatus) listener.status({ text: (lastStatus = status), level: 'info' });
        };
        tick();
        const timer = setInterval(tick, TICK_MS);
        return () => clearInterval(timer);
      },
    },
    onDrain: (link, drained) => {
      const id = w.linkNames.indexOf(link);
      if (id < 0) return `no link named "${link}"`;
      w.a.edge.setLinkAdmin(w.nowMs, id, drained);
      w.drain(w.a);
      return undefined;
    },
  });
  process.stdout.write(`braid demo: ran ${(w.nowMs / 1000).toFixed(0)} s simulated; site b received ${w.b.deliveredCount} packets from a, a received ${w.a.deliveredCount} from b.\n`);
  return 0;
}

/**
 * React's development build checks every render and roughly doubles a dashboard frame; the
 * dashboard is an end-user program, so use the production build unless NODE_ENV says otherwise.
 * Must run before react is first imported.
 */
export function preferReactProductionBuild(): void {
  process.env.NODE_ENV ??= 'production';
}

async function runDemoText(opts: DemoOptions): Promise<number> {
  const w = buildDemoWorld(opts.seed, opts.seconds);
  const out = process.stdout;
  out.write(`Braid demo: sites a and b over mpls, inet and lte (simulated; seed ${opts.seed}).\n`);
  out.write('Script: mpls blackout at 10 s, mpls back at 20 s. Ctrl-C to stop.\n\n');
  let prev: EdgeSnapshot | undefined;
  let seen = 0;
  let stop = false;
  const onSigint = (): void => {
    stop = true;
  };
  process.once('SIGINT', onSigint);
  // `braid demo | head`: a closed pipe ends the demo quietly instead of with an EPIPE stack.
  const onOutError = (): void => {
    stop = true;
  };
  out.on('error', onOutError);
  for (let s = 1; s <= opts.seconds && !stop; s++) {
    const wallStart = Date.now();
    w.run(s * 1000);
    const events = w.a.events;
    for (; seen < events.length; seen++) out.write(`  event ${(events[seen]!.atMs / 1000).toFixed(2)}s: ${events[seen]!.message}\n`);
    const snap = w.a.edge.snapshot(w.nowMs);
    out.write(renderTable(snap, prev) + '\n');
    prev = snap;
    const waitMs = 1000 / opts.speed - (Date.now() - wallStart);
    if (waitMs > 0) await sleep(waitMs);
  }
  process.removeListener('SIGINT', onSigint);
  if (stop && out.destroyed) return 0;
  out.write(`\ndone: site b received ${w.b.deliveredCount} packets from a; a received ${w.a.deliveredCount} from b.\n`);
  return 0;
}
