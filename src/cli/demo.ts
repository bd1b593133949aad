/**
 * The built-in demo (`npm start`): two sites in the simulator (virtual time paced to the wall
 * clock), three WAN links with MPLS, broadband and LTE characteristics, steady traffic, an MPLS
 * blackout at 10 s and its recovery at 20 s. Prints the link counters once a second and every
 * event with its reason. Needs no root and no configuration.
 */
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import type { EdgeSnapshot } from '../core/types.ts';

export interface DemoOptions {
  seconds: number;
  /** Virtual seconds per wall-clock second. */
  speed: number;
  seed: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function buildDemoWorld(seed: number, seconds: number): World {
  const w = new World({
    seed,
    recordDeliveries: false,
    links: [
      { name: 'mpls', delayMs: 12, jitterMs: 1, rateBps: 50e6 },
      { name: 'inet', delayMs: 22, jitterMs: 4, lossRatio: 0.002, rateBps: 100e6 },
      { name: 'lte', delayMs: 45, jitterMs: 15, lossRatio: 0.01, rateBps: 20e6 },
    ],
  });
  const endMs = seconds * 1000;
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
  w.impairAt(10_000, 'mpls', { up: false });
  w.impairAt(20_000, 'mpls', { up: true });
  return w;
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

export async function runDemo(opts: DemoOptions): Promise<number> {
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
  out.write(`\ndone: site b received ${w.b.deliveredCount} packets from a; a received ${w.a.deliveredCount} from b.\n`);
  return 0;
}
