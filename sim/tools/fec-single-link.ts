/**
 * Issue 16's FEC case, as a new user tries it: one link, 10 voice calls (EF, 200-byte packets at
 * 50 pps each, phases spread over the 20 ms interval: 500 pps), 5% random loss for 40 s, virtual
 * time. Prints per seed what the adaptation chose and what it gave: the group sizes k' the 20 ms
 * flushes closed, the m the groups got (and what the budget cut), the measured loss the controller
 * saw, congestion verdicts, the residual loss and the overhead.
 *
 *   npx tsx sim/tools/fec-single-link.ts [--seeds 1-20] [--loss 0.05] [--seconds 40] [--calls 10] [--clean]
 *       [--netem SPEC] [--loss-from-ms MS] [--calls-from-ms MS] [--fec '{"flushMs":40}']
 *
 * The link is lossy from t = 0 and the calls start at 5 s, when the link has 5 s of probe history
 * (a branch's link has been up for a while when calls start). --calls-from-ms 1000 starts them
 * 1 s after the edges (10 probes of history: FEC is often still off at the first packet and waits
 * for the calls' own loss to be measured, 150-450 ms); --loss-from-ms 5000 starts the loss with
 * the calls (the same wait).
 *
 * The figures are also what test/core/fec-single-link.test.ts asserts (runSingleLinkVoice).
 */
import { World } from '../world.ts';
import { flowSpec, makePacket, readPacketTag } from '../packets.ts';
import type { FecEncoder, FecParityShard } from '../../src/core/fec/encoder.ts';
import type { AdaptiveParity } from '../../src/core/fec/adaptive.ts';
import type { ClassFecPolicy } from '../../src/core/fec/policy.ts';

const EF = 46;
const VOICE_BYTES = 200;
const VOICE_CLASS = 1;

export interface SingleLinkRun {
  seed: number;
  sent: number;
  delivered: number;
  residualRatio: number;
  /** Voice datagrams (data and parity) lost on the wire a -> b. */
  wireLost: number;
  recovered: number;
  unrecoverable: number;
  parityShards: number;
  /** Parity datagrams / voice data packets. */
  overheadRatio: number;
  /** Parity bytes / data bytes on the wire (the class snapshot's figure). */
  overheadBytesRatio: number;
  groups: number;
  earlyFlushes: number;
  parityCapped: number;
  /** Histogram: groups by data count k' (index k'), and by parity m they got. */
  groupsByK: number[];
  groupsByM: number[];
  /** Adaptation ticks with the congestion cap in force, of all ticks with traffic. */
  congestedTicks: number;
  ticks: number;
  /** Controller's effective loss, mean over ticks with traffic, and its m (mean). */
  meanMeasuredLoss: number;
  meanAdaptiveM: number;
  finalK: number;
  finalM: number;
  /** Data packets lost for good among those sent in the first 2 s of the calls, and when the first parity went out (ms after the calls began). */
  lostFirst2s: number;
  firstParityAfterMs: number;
}

interface FecTxView {
  encoder: FecEncoder;
  adaptive: AdaptiveParity;
}

/** The sender's voice FEC state: on the Edge itself (one peer) or on its only Peer (N-site core). */
function voiceFecTx(edge: unknown): FecTxView {
  const e = edge as { fecTx?: (FecTxView | undefined)[]; peersByName?: Map<string, { fecTx: (FecTxView | undefined)[] }> };
  const list = e.fecTx ?? [...(e.peersByName?.values() ?? [])][0]?.fecTx;
  const tx = list?.[VOICE_CLASS];
  if (tx === undefined) throw new Error('fec-single-link: no voice FEC sender found on site a (has the core moved it again?)');
  return tx;
}

/** Runs one seed. `lossRatio` 0 is the clean-link check. */
export function runSingleLinkVoice(seed: number, opts: { lossRatio?: number; seconds?: number; calls?: number; direction?: 'ab' | 'both'; netem?: string; lossFromMs?: number; callsFromMs?: number; fec?: Partial<ClassFecPolicy> } = {}): SingleLinkRun {
  const lossRatio = opts.lossRatio ?? 0.05;
  const calls = opts.calls ?? 10;
  const seconds = opts.seconds ?? 40;
  const w = new World({ seed, insecurePlaintext: true, recordDeliveries: false, links: [{ name: 'inet', delayMs: 15 }], ...(opts.fec ? { edge: { fec: { voice: opts.fec } } } : {}) });
  const startMs = opts.callsFromMs ?? 5000;
  // The link is lossy from the start (before the calls) unless lossFromMs says otherwise.
  const lossFromMs = opts.lossFromMs ?? 0;
  // A netem spec (jitter, rate ...) replaces the simple impairment; its loss is `lossRatio`'s.
  if (opts.netem !== undefined) w.setNetemAt(lossFromMs, 'inet', `${opts.netem} loss ${lossRatio * 100}%`, opts.direction ?? 'both');
  else w.impairAt(lossFromMs, 'inet', { lossRatio }, opts.direction ?? 'both');
  const count = seconds * 50 * calls;
  const arrived = new Uint8Array(count);
  const intervalMs = 20 / calls;
  w.every(intervalMs, { startMs, count }, (i) => {
    const call = i % calls;
    w.a.sendTun(makePacket({ ...flowSpec(call + 1, VOICE_BYTES, EF), seq: Math.floor(i / calls) }));
  });
  let delivered = 0;
  w.b.onDeliver = (p) => {
    const tag = readPacketTag(p);
    if (!tag || tag.flowId < 1 || tag.flowId > calls) return;
    const i = tag.seq * calls + (tag.flowId - 1);
    if (i < count && arrived[i] === 0) {
      arrived[i] = 1;
      delivered++;
    }
  };

  // Instruments (a script may look inside; the core keeps no such hooks): every group's (k', m)
  // from its first parity shard or, for groups without parity, from the encoder's group counter.
  const fecTx = voiceFecTx(w.a.edge);
  const enc = fecTx.encoder;
  const groupsByK: number[] = new Array<number>(33).fill(0);
  const groupsByM: number[] = new Array<number>(33).fill(0);
  const poll = enc.pollParity.bind(enc);
  enc.pollParity = (): FecParityShard | undefined => {
    const s = poll();
    if (s !== undefined && s.index === s.k) {
      groupsByK[s.k]!++;
      groupsByM[s.m]!++;
    }
    return s;
  };
  let firstParityMs = NaN;
  const sendParityAt = (): void => {
    if (Number.isNaN(firstParityMs) && enc.counters.parityShards > 0) firstParityMs = w.nowMs - startMs;
  };
  let ticks = 0;
  let congestedTicks = 0;
  let lossSum = 0;
  let mSum = 0;
  w.every(100, { startMs: startMs + 50, untilMs: startMs + seconds * 1000 }, () => {
    ticks++;
    sendParityAt();
    if (fecTx.adaptive.congested(w.nowMs)) congestedTicks++;
    lossSum += fecTx.adaptive.lossRatio;
    mSum += fecTx.adaptive.m;
  });

  w.runFor(startMs + seconds * 1000 + 2000);
  const snapA = w.a.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'voice')!;
  const snapB = w.b.edge.snapshot(w.nowMs).classes.find((c) => c.name === 'voice')!;
  let lostFirst2s = 0;
  const first2s = Math.min(count, 2000 / intervalMs);
  for (let i = 0; i < first2s; i++) if (arrived[i] === 0) lostFirst2s++;
  const parityGroups = groupsByM.reduce((s, n) => s + n, 0);
  groupsByM[0] = enc.counters.groups - parityGroups;
  return {
    seed,
    sent: count,
    delivered,
    residualRatio: 1 - delivered / count,
    wireLost: w.linkStats('inet').ab.lost,
    recovered: snapB.fecRecovered ?? 0,
    unrecoverable: snapB.fecUnrecoverable ?? 0,
    parityShards: snapA.fecParitySent ?? 0,
    overheadRatio: (snapA.fecParitySent ?? 0) / count,
    overheadBytesRatio: snapA.fecOverheadRatio ?? 0,
    groups: enc.counters.groups,
    earlyFlushes: enc.counters.earlyFlushes,
    parityCapped: enc.counters.parityCapped,
    groupsByK,
    groupsByM,
    congestedTicks,
    ticks,
    meanMeasuredLoss: ticks > 0 ? lossSum / ticks : 0,
    meanAdaptiveM: ticks > 0 ? mSum / ticks : 0,
    finalK: snapA.fecK ?? 0,
    finalM: snapA.fecM ?? 0,
    lostFirst2s,
    firstParityAfterMs: firstParityMs,
  };
}

const pct = (r: number, d = 3): string => `${(r * 100).toFixed(d)}%`;

function hist(h: number[]): string {
  const parts: string[] = [];
  h.forEach((n, i) => {
    if (n > 0) parts.push(`${i}:${n}`);
  });
  return parts.join(' ');
}

export function formatRun(r: SingleLinkRun): string {
  return (
    `seed ${String(r.seed).padStart(2)}: residual ${pct(r.residualRatio)} (${r.sent - r.delivered} of ${r.sent}), wire lost ${r.wireLost}, recovered ${r.recovered}, ` +
    `parity ${r.parityShards} (overhead ${pct(r.overheadRatio, 1)} packets, ${pct(r.overheadBytesRatio, 1)} bytes), groups ${r.groups} (early ${r.earlyFlushes}), capped ${r.parityCapped}, ` +
    `lost in the first 2 s ${r.lostFirst2s}, first parity by +${r.firstParityAfterMs} ms, measured loss ${pct(r.meanMeasuredLoss, 2)}, adaptive m ${r.meanAdaptiveM.toFixed(2)}, congested ${r.congestedTicks}/${r.ticks} ticks; ` +
    `groups by k' {${hist(r.groupsByK)}} by m {${hist(r.groupsByM)}}`
  );
}

function parseSeeds(s: string): number[] {
  const m = /^(\d+)-(\d+)$/.exec(s);
  if (m) {
    const out: number[] = [];
    for (let i = Number(m[1]); i <= Number(m[2]); i++) out.push(i);
    return out;
  }
  return s.split(',').map(Number);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  const seeds = parseSeeds(arg('--seeds', '1-2'));
  const lossRatio = args.includes('--clean') ? 0 : Number(arg('--loss', '0.05'));
  const seconds = Number(arg('--seconds', '40'));
  const calls = Number(arg('--calls', '10'));
  const netem = arg('--netem', '');
  const fec = JSON.parse(arg('--fec', '{}')) as Partial<ClassFecPolicy>;
  const lossFromMs = Number(arg('--loss-from-ms', '0'));
  const callsFromMs = Number(arg('--calls-from-ms', '5000'));
  let worst = 0;
  let overheadSum = 0;
  for (const seed of seeds) {
    const r = runSingleLinkVoice(seed, { lossRatio, seconds, calls, lossFromMs, callsFromMs, fec, ...(netem ? { netem } : {}) });
    console.log(formatRun(r));
    worst = Math.max(worst, r.residualRatio);
    overheadSum += r.overheadRatio;
  }
  console.log(`${seeds.length} seeds, ${calls} calls, loss ${pct(lossRatio, 1)}, ${seconds} s: worst residual ${pct(worst)}, mean overhead ${pct(overheadSum / seeds.length, 1)} (parity packets per data packet)`);
}
