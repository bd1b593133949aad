/**
 * Test helpers for the netem engine: a seeded RNG of our own (so these tests do not move when
 * src/core/rng.ts changes) and a harness that pushes packets through an engine and measures
 * what came out.
 */
import { NetemEngine, type NetemDeparture, type Rng } from '../../../sim/netem/engine.ts';
import { distributionTable, tableMoments } from '../../../sim/netem/distributions.ts';
import type { NetemRate, NetemSpec } from '../../../sim/netem/spec.ts';

/** sfc32 (Chris Doty-Humphrey's small fast counter): 128-bit state, passes PractRand to 2^40+. */
export class TestRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9 | 0;
    this.b = 0x243f6a88 | 0;
    this.c = 0xb7e15162 | 0;
    this.d = seed | 0;
    for (let i = 0; i < 16; i++) this.nextFloat();
  }

  nextFloat(): number {
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
}

export interface TestPacket {
  readonly bytes: Uint8Array;
  readonly seq: number;
}

export interface Measured {
  sent: number;
  /** Departures, copies included. */
  departures: number;
  meanDelayMs: number;
  stdDelayMs: number;
  /** Sequence numbers of which no copy came out. */
  lostPackets: number;
  lossRatio: number;
  /** Runs of consecutive lost sequence numbers. */
  lossBursts: number;
  meanBurstPackets: number;
  /** Delay per sequence number (first copy), NaN when lost; only when keepDelays. */
  delayBySeqMs?: Float64Array;
  /** Departures whose sequence number is below one that left earlier. */
  outOfOrder: number;
  engine: NetemEngine<TestPacket>;
}

export interface RunOptions {
  packets: number;
  spacingMs: number;
  sizeBytes?: number;
  seed?: number;
  keepDelays?: boolean;
}

/**
 * Sends `packets` packets, one every `spacingMs`, polling before each send (so the output does not
 * wait), then drains. All packets share one buffer: the engine must never write to it.
 */
export function runSpaced(spec: NetemSpec, options: RunOptions): Measured {
  const { packets, spacingMs } = options;
  const bytes = new Uint8Array(options.sizeBytes ?? 1000);
  const engine = new NetemEngine<TestPacket>(spec, new TestRng(options.seed ?? 1));
  const copies = new Uint8Array(packets);
  const delayBySeqMs = options.keepDelays ? new Float64Array(packets).fill(NaN) : undefined;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  let highestSeq = -1;
  let outOfOrder = 0;
  const out: Array<NetemDeparture<TestPacket>> = [];
  const take = (): void => {
    for (let k = 0; k < out.length; k++) {
      const d = out[k]!;
      const delay = d.departMs - d.enqueuedMs;
      sum += delay;
      sumSq += delay * delay;
      n++;
      const seq = d.packet.seq;
      if (copies[seq] === 0 && delayBySeqMs !== undefined) delayBySeqMs[seq] = delay;
      copies[seq]!++;
      if (seq < highestSeq) outOfOrder++;
      else highestSeq = seq;
    }
    out.length = 0;
  };
  for (let i = 0; i < packets; i++) {
    const now = i * spacingMs;
    engine.poll(now, out);
    take();
    engine.enqueue(now, { bytes, seq: i });
  }
  engine.poll(Number.MAX_VALUE, out);
  take();

  let lost = 0;
  let bursts = 0;
  for (let i = 0; i < packets; i++) {
    if (copies[i] === 0) {
      lost++;
      if (i === 0 || copies[i - 1] !== 0) bursts++;
    }
  }
  const mean = sum / n;
  return {
    sent: packets,
    departures: n,
    meanDelayMs: mean,
    stdDelayMs: Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
    lostPackets: lost,
    lossRatio: lost / packets,
    lossBursts: bursts,
    meanBurstPackets: bursts === 0 ? 0 : lost / bursts,
    ...(delayBySeqMs === undefined ? {} : { delayBySeqMs }),
    outOfOrder,
    engine,
  };
}

/** Bytes on the wire for one packet, as netem's packet_time_ns counts them. */
export function wireBytes(sizeBytes: number, rate: NetemRate): number {
  const len = sizeBytes + rate.packetOverheadBytes;
  if (rate.cellSizeBytes === 0) return len;
  return Math.ceil(len / rate.cellSizeBytes) * (rate.cellSizeBytes + rate.cellOverheadBytes);
}

/** What an unloaded packet's delay should average and spread, from the spec alone. */
export function expectedDelay(spec: NetemSpec, sizeBytes: number): { meanMs: number; stdMs: number } {
  const d = spec.delay;
  const txMs = spec.rate === undefined ? 0 : (wireBytes(sizeBytes, spec.rate) * 8 * 1000) / spec.rate.rateBps;
  if (d === undefined) return { meanMs: txMs, stdMs: 0 };
  if (d.distribution === 'uniform') return { meanMs: d.delayMs + txMs, stdMs: d.jitterMs / Math.sqrt(3) };
  const m = tableMoments(distributionTable(d.distribution));
  return { meanMs: d.delayMs + d.jitterMs * m.mean + txMs, stdMs: d.jitterMs * m.std };
}

/** Long-run loss ratio and mean loss-burst length of a spec's loss model. */
export function expectedLoss(spec: NetemSpec): { lossRatio: number; meanBurstPackets: number | undefined; inflation: number } {
  const loss = spec.loss;
  if (loss === undefined) return { lossRatio: 0, meanBurstPackets: undefined, inflation: 1 };
  switch (loss.model) {
    case 'random':
      return { lossRatio: loss.lossRatio, meanBurstPackets: 1 / (1 - loss.lossRatio), inflation: 1 };
    case 'gemodel': {
      const bad = loss.pRatio / (loss.pRatio + loss.rRatio);
      const lossRatio = bad * loss.oneMinusHRatio + (1 - bad) * loss.oneMinusKRatio;
      // Pure Gilbert (every bad-state packet lost, none in good): bursts are the bad runs.
      const pure = loss.oneMinusHRatio === 1 && loss.oneMinusKRatio === 0;
      const burst = pure ? 1 / loss.rRatio : undefined;
      // Variance of a loss-ratio estimate grows with burstiness: about (2b - 1) for runs of mean b.
      return { lossRatio, meanBurstPackets: burst, inflation: burst === undefined ? 4 : 2 * burst - 1 };
    }
    case 'state':
      return { lossRatio: fourStateLossRatio(loss.p13Ratio, loss.p31Ratio, loss.p32Ratio, loss.p23Ratio, loss.p14Ratio), meanBurstPackets: undefined, inflation: 4 };
  }
}

/**
 * Stationary loss ratio of the 4-state GI model, from Salsano et al.'s definition (not from the
 * engine): states 1 (rx in gap), 2 (rx in burst), 3 (loss in burst), 4 (isolated loss); a packet
 * is lost when the chain steps into 3 or 4.
 */
export function fourStateLossRatio(p13: number, p31: number, p32: number, p23: number, p14: number): number {
  const P = [
    [1 - p13 - p14, 0, p13, p14],
    [0, 1 - p23, p23, 0],
    [p31, p32, 1 - p31 - p32, 0],
    [1, 0, 0, 0],
  ];
  let pi = [1, 0, 0, 0];
  for (let iter = 0; iter < 200_000; iter++) {
    const next = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) next[j]! += pi[i]! * P[i]![j]!;
    const diff = next.reduce((acc, v, j) => acc + Math.abs(v - pi[j]!), 0);
    pi = next;
    if (diff < 1e-15) break;
  }
  return pi[2]! + pi[3]!;
}

export function relativeError(measured: number, expected: number): number {
  return Math.abs(measured - expected) / Math.abs(expected);
}

export function pct(ratio: number, digits = 3): string {
  return `${(ratio * 100).toFixed(digits)}%`;
}
