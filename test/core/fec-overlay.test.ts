/**
 * Issue 5 acceptance (FEC half), in virtual time: per-class Reed-Solomon FEC between two whole
 * Edges. Seeds are printed; BRAID_SEED overrides. Voice is 20 calls of 200-byte packets at 50 pps
 * each, the calls' phases spread over the 20 ms interval (1000 pps in all), 100,000 packets per
 * figure unless a test says otherwise.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { World, type WorldConfig } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, type ClassPolicy } from '../../src/core/steer/classes.ts';
import { decodeEnvelope, decodeFrame, encodeEnvelope, encodeFrame, type FecParityFrame } from '../../src/core/wire/codec.ts';
import type { ClassSnapshot } from '../../src/core/types.ts';
import { FecEncoder } from '../../src/core/fec/encoder.ts';
import { createGf256Codec } from '../../src/core/fec/gf256.ts';
import { parityTable, requiredParity, residualLossRatio } from '../../src/core/fec/adaptive.ts';
import { FEC_GROUP_COUNTER_MASK } from '../../src/core/fec/limits.ts';

const SEED = Number(process.env.BRAID_SEED ?? 5005);
const EF = 46;
const CALLS = 20;
const VOICE_BYTES = 200;

interface VoiceRun {
  sent: number;
  /** Per packet i (i = seq * CALLS + call): arrival time, NaN when never delivered. */
  arrivalMs: Float64Array;
  sentAtMs: Float64Array;
  duplicates: number;
  corrupted: number;
}

/** 20 voice calls from a to b, `count` packets, one every 1 ms (call i % 20, seq i / 20). */
function voice(w: World, startMs: number, count: number, opts: { checkBytes?: boolean } = {}): VoiceRun {
  const run: VoiceRun = { sent: 0, arrivalMs: new Float64Array(count).fill(NaN), sentAtMs: new Float64Array(count).fill(NaN), duplicates: 0, corrupted: 0 };
  const intervalMs = 20 / CALLS;
  w.every(intervalMs, { startMs, count }, (i) => {
    const call = i % CALLS;
    const seq = Math.floor(i / CALLS);
    run.sentAtMs[i] = w.nowMs;
    w.a.sendTun(makePacket({ ...flowSpec(call + 1, VOICE_BYTES, EF), seq }));
    run.sent++;
  });
  w.b.onDeliver = (p, at) => {
    const tag = readPacketTag(p);
    if (!tag || tag.flowId < 1 || tag.flowId > CALLS) return;
    const i = tag.seq * CALLS + (tag.flowId - 1);
    if (i >= count) return;
    if (!Number.isNaN(run.arrivalMs[i]!)) run.duplicates++;
    else run.arrivalMs[i] = at;
    if (opts.checkBytes && !Buffer.from(p).equals(Buffer.from(makePacket({ ...flowSpec(tag.flowId, VOICE_BYTES, EF), seq: tag.seq })))) run.corrupted++;
  };
  return run;
}

function delivered(run: VoiceRun): number {
  let n = 0;
  for (const t of run.arrivalMs) if (!Number.isNaN(t)) n++;
  return n;
}

function voiceClass(w: World, site: 'a' | 'b'): ClassSnapshot {
  return w[site].edge.snapshot(w.nowMs).classes.find((c) => c.name === 'voice')!;
}

const pct = (r: number, digits = 3): string => `${(r * 100).toFixed(digits)}%`;

function policiesWith(change: Partial<Record<string, Partial<ClassPolicy>>>): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => ({ ...p, ...(change[p.name] ?? {}) }));
}

describe(`per-class FEC over the overlay (seed ${SEED})`, () => {
  it('5% random loss on each of two paths: voice residual loss < 0.1% with FEC overhead <= 30% (100,000 packets)', () => {
    const w = new World({
      seed: SEED,
      recordDeliveries: false,
      links: [
        { name: 'mpls', delayMs: 10, lossRatio: 0.05 },
        { name: 'inet', delayMs: 15, lossRatio: 0.05 },
      ],
    });
    const N = 100_000;
    const run = voice(w, 1000, N, { checkBytes: true });
    w.runFor(1000 + N + 2000);
    const got = delivered(run);
    const residual = 1 - got / N;
    const a = voiceClass(w, 'a');
    const b = voiceClass(w, 'b');
    const wireLost = w.linkStats('mpls').ab.lost + w.linkStats('inet').ab.lost;
    const packetOverhead = a.fecParitySent! / a.txPackets;
    console.log(
      `seed ${SEED} voice 5%+5%: sent ${N}, delivered ${got}, residual ${pct(residual)} (target < 0.1%); recovered ${b.fecRecovered}, unrecoverable ${b.fecUnrecoverable}; ` +
        `FEC overhead ${pct(packetOverhead, 1)} in packets (${a.fecParitySent} parity datagrams), ${pct(a.fecOverheadRatio!, 1)} in bytes on the wire; ` +
        `now k+m ${a.fecK}+${a.fecM} at ${pct(a.fecLossRatio!, 2)} measured loss; datagrams lost a->b on the wire ${wireLost}; duplicates ${run.duplicates}; residual seen by b ${pct(b.residualLossRatio ?? NaN)}`,
    );
    expect(run.duplicates).toBe(0);
    expect(run.corrupted).toBe(0);
    expect(residual).toBeLessThan(0.001);
    expect(packetOverhead).toBeLessThanOrEqual(0.3);
    expect(a.fecOverheadRatio!).toBeLessThanOrEqual(0.3);
    expect(w.b.edge.snapshot(w.nowMs).drops.fecMalformed).toBe(0);
  });

  it("Gilbert-Elliott bursts (netem 'loss gemodel 2% 30%' a->b on both paths): parity spread over two paths recovers more than parity on one", () => {
    // Bursts in the data direction only: on the reverse direction's ~20 packets/s a burst of 3
    // probes is 300 ms of silence, which would take the path DOWN and move the calls, muddling
    // the comparison. The voice SLA is loosened for the same reason (6% loss is out of it).
    // Plaintext: crypto is not under test here and the runs are 3x faster.
    // Late originals (rebuilt from parity before they arrived) are not repairs: only
    // recovered - lateOriginals counts, against the data the network really lost.
    const runWith = (seed: number, placement: 'spread' | 'same') => {
      const w = new World({
        seed,
        insecurePlaintext: true,
        recordDeliveries: false,
        links: [
          { name: 'mpls', abNetem: 'delay 10ms loss gemodel 2% 30%', baNetem: 'delay 10ms' },
          { name: 'inet', abNetem: 'delay 15ms loss gemodel 2% 30%', baNetem: 'delay 15ms' },
        ],
        edge: { policies: policiesWith({ voice: { sla: { lossRatio: 0.5, rttMs: 300, jitterMs: 50 } } }), fec: { voice: { parityPlacement: placement } } },
      });
      const N = 100_000;
      const run = voice(w, 1000, N);
      w.runFor(1000 + N + 2000);
      const a = voiceClass(w, 'a');
      const b = voiceClass(w, 'b');
      const got = delivered(run);
      const repaired = b.fecRecovered! - b.fecLateOriginals!;
      const lostOnWire = N - (got - repaired);
      return { seed, residual: 1 - got / N, repaired, lostOnWire, overhead: a.fecParitySent! / a.txPackets, duplicates: run.duplicates };
    };
    const total = { spread: { repaired: 0, lost: 0 }, same: { repaired: 0, lost: 0 } };
    for (const seed of [SEED, SEED + 1]) {
      for (const placement of ['spread', 'same'] as const) {
        const r = runWith(seed, placement);
        total[placement].repaired += r.repaired;
        total[placement].lost += r.lostOnWire;
        console.log(
          `seed ${seed} GE 2%/30% parity ${placement.padEnd(6)}: data lost on the wire ${r.lostOnWire}, repaired ${r.repaired} (${pct(r.repaired / r.lostOnWire, 1)}), residual ${pct(r.residual)}, overhead ${pct(r.overhead, 1)}`,
        );
        expect(r.duplicates).toBe(0);
      }
    }
    const spread = total.spread.repaired / total.spread.lost;
    const same = total.same.repaired / total.same.lost;
    console.log(`seeds ${SEED}, ${SEED + 1} GE 2%/30%: parity spread repaired ${pct(spread, 1)} of the data lost on the wire, parity on the data's path ${pct(same, 1)} (200,000 packets each)`);
    expect(spread).toBeGreaterThan(same);
  });

  it('clean paths: 30 s at 0% loss costs < 1% overhead, and after a lossy spell the overhead falls under 1%', () => {
    // From a clean start.
    const w = new World({ seed: SEED, recordDeliveries: false, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 15 }] });
    voice(w, 1000, 30_000);
    w.runFor(1000 + 30_000 + 500);
    const clean = voiceClass(w, 'a');
    console.log(`seed ${SEED} clean 30 s: ${clean.txPackets} voice packets, ${clean.fecParitySent} parity (overhead ${pct(clean.fecOverheadRatio!, 2)}), m now ${clean.fecM}`);
    expect(clean.fecOverheadRatio!).toBeLessThan(0.01);

    // 10 s at 5% loss, then 30 s clean: overhead per 5 s slice after the loss stops.
    const w2 = new World({ seed: SEED, recordDeliveries: false, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 15 }] });
    voice(w2, 1000, 40_000);
    w2.impairAt(1000, 'mpls', { lossRatio: 0.05 });
    w2.impairAt(1000, 'inet', { lossRatio: 0.05 });
    const CLEAN_AT = 11_000;
    w2.impairAt(CLEAN_AT, 'mpls', { lossRatio: 0 });
    w2.impairAt(CLEAN_AT, 'inet', { lossRatio: 0 });
    const slices: string[] = [];
    const marks: { data: number; parity: number }[] = [];
    for (let t = CLEAN_AT; t <= CLEAN_AT + 30_000; t += 5000) {
      w2.at(t, () => {
        const c = voiceClass(w2, 'a');
        marks.push({ data: c.txPackets, parity: c.fecParitySent! });
      });
    }
    w2.runFor(CLEAN_AT + 30_000 + 10);
    const lossy = marks[0]!;
    for (let i = 1; i < marks.length; i++) {
      const d = marks[i]!.data - marks[i - 1]!.data;
      const p = marks[i]!.parity - marks[i - 1]!.parity;
      slices.push(`${(i - 1) * 5}-${i * 5} s ${pct(p / d, 1)}`);
    }
    const last20 = (marks[6]!.parity - marks[2]!.parity) / (marks[6]!.data - marks[2]!.data);
    console.log(
      `seed ${SEED} after 10 s at 5% loss (overhead then ${pct(lossy.parity / lossy.data, 1)}), overhead per 5 s of clean paths: ${slices.join(', ')}; last 20 of the 30 clean seconds ${pct(last20, 2)}; m now ${voiceClass(w2, 'a').fecM}`,
    );
    expect(last20).toBeLessThan(0.01);
    expect(voiceClass(w2, 'a').fecM).toBe(0);
  });

  it('packets that were not lost are not delayed by FEC: one-way latency with FEC on equals FEC off within 0.1 ms', () => {
    // Per-direction netem engines draw from their own seeded streams, so the data path (mpls a->b)
    // sees the same loss and jitter draws in both runs: parity goes on inet, never on mpls.
    const cfg = (fecOn: boolean): WorldConfig => ({
      seed: SEED,
      insecurePlaintext: true, // crypto adds no delay in virtual time; plaintext runs 3x faster
      recordDeliveries: false,
      links: [
        { name: 'mpls', abNetem: 'delay 20ms 3ms loss 2%', baNetem: 'delay 20ms' },
        { name: 'inet', abNetem: 'delay 30ms', baNetem: 'delay 30ms' },
      ],
      edge: {
        // Keep voice on the lossy mpls (its SLA would move it to the clean inet otherwise).
        policies: policiesWith({ voice: { sla: { lossRatio: 0.2, rttMs: 300, jitterMs: 50 } } }),
        fec: { voice: { enabled: fecOn } },
      },
    });
    const N = 100_000;
    const wOn = new World(cfg(true));
    const on = voice(wOn, 1000, N);
    wOn.runFor(1000 + N + 2000);
    const wOff = new World(cfg(false));
    const off = voice(wOff, 1000, N);
    wOff.runFor(1000 + N + 2000);
    let compared = 0;
    let maxDiffMs = 0;
    let recoveredOnly = 0;
    let lostWithFec = 0;
    let recoveredLatencySum = 0;
    for (let i = 0; i < N; i++) {
      const tOff = off.arrivalMs[i]!;
      const tOn = on.arrivalMs[i]!;
      if (Number.isNaN(tOff)) {
        if (!Number.isNaN(tOn)) {
          recoveredOnly++;
          recoveredLatencySum += tOn - on.sentAtMs[i]!;
        }
        continue;
      }
      if (Number.isNaN(tOn)) {
        lostWithFec++;
        continue;
      }
      compared++;
      maxDiffMs = Math.max(maxDiffMs, Math.abs(tOn - on.sentAtMs[i]! - (tOff - off.sentAtMs[i]!)));
    }
    const onSnap = voiceClass(wOn, 'a');
    console.log(
      `seed ${SEED} latency: ${compared} packets delivered in both runs, largest one-way latency difference FEC on vs off ${maxDiffMs.toFixed(4)} ms; ` +
        `${recoveredOnly} packets lost without FEC were rebuilt with it (mean latency ${(recoveredLatencySum / Math.max(1, recoveredOnly)).toFixed(1)} ms), ${lostWithFec} delivered without FEC but not with it; ` +
        `FEC k+m ${onSnap.fecK}+${onSnap.fecM}, overhead ${pct(onSnap.fecOverheadRatio!, 1)}`,
    );
    expect(compared).toBeGreaterThan(N * 0.95);
    expect(lostWithFec).toBe(0);
    expect(recoveredOnly).toBeGreaterThan(0);
    expect(maxDiffMs).toBeLessThanOrEqual(0.1);
  });

  it('bad parity into a running Edge (property): inconsistent k, m, lengths, group ids are counted drops, never a crash or a wrong delivery', () => {
    type Mutation =
      | { kind: 'k'; delta: number }
      | { kind: 'm'; value: number }
      | { kind: 'index'; value: number }
      | { kind: 'lengths'; at: number; value: number }
      | { kind: 'lengthsCount'; delta: number }
      | { kind: 'group'; value: number }
      | { kind: 'groupNeighbour'; delta: number }
      | { kind: 'shardBytes'; delta: number }
      | { kind: 'shardFlip'; at: number; xor: number }
      | { kind: 'checksum'; xor: number };
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constant('k' as const), delta: fc.integer({ min: -40, max: 40 }).filter((d) => d !== 0) }),
      fc.record({ kind: fc.constant('m' as const), value: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('index' as const), value: fc.integer({ min: 0, max: 80 }) }),
      fc.record({ kind: fc.constant('lengths' as const), at: fc.nat(40), value: fc.integer({ min: 0, max: 70_000 }) }),
      fc.record({ kind: fc.constant('lengthsCount' as const), delta: fc.integer({ min: -5, max: 5 }).filter((d) => d !== 0) }),
      fc.record({ kind: fc.constant('group' as const), value: fc.integer({ min: 0, max: 0xffffffff }) }),
      fc.record({ kind: fc.constant('groupNeighbour' as const), delta: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ kind: fc.constant('shardBytes' as const), delta: fc.integer({ min: -150, max: 150 }).filter((d) => d !== 0) }),
      fc.record({ kind: fc.constant('shardFlip' as const), at: fc.nat(300), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('checksum' as const), xor: fc.integer({ min: 1, max: 0xffffffff }) }),
    );
    const apply = (f: FecParityFrame, muts: Mutation[]): FecParityFrame => {
      const out: FecParityFrame = { ...f, lengths: [...f.lengths], shard: f.shard.slice() };
      for (const mu of muts) {
        switch (mu.kind) {
          case 'k':
            out.k = Math.max(0, out.k + mu.delta);
            break;
          case 'm':
            out.m = mu.value;
            break;
          case 'index':
            out.index = mu.value;
            break;
          case 'lengths':
            if (out.lengths.length > 0) out.lengths[mu.at % out.lengths.length] = mu.value;
            break;
          case 'lengthsCount':
            if (mu.delta > 0) for (let i = 0; i < mu.delta; i++) out.lengths.push(out.lengths[0] ?? 1);
            else out.lengths.length = Math.max(0, out.lengths.length + mu.delta);
            break;
          case 'group':
            out.group = mu.value;
            break;
          case 'groupNeighbour':
            out.group = (out.group + mu.delta) >>> 0;
            break;
          case 'shardBytes': {
            const n = Math.max(0, out.shard.length + mu.delta);
            const s = new Uint8Array(n);
            s.set(out.shard.subarray(0, n));
            out.shard = s;
            break;
          }
          case 'shardFlip':
            if (out.shard.length > 0) out.shard[mu.at % out.shard.length]! ^= mu.xor;
            break;
          case 'checksum':
            out.checksum = ((out.checksum ?? 0) ^ mu.xor) >>> 0;
            break;
        }
      }
      return out;
    };
    let runs = 0;
    let totalInjected = 0;
    let totalMalformed = 0;
    let totalRecovered = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(fc.array(mutation, { minLength: 1, maxLength: 3 }), { minLength: 10, maxLength: 60 }), (seed, attacks) => {
        runs++;
        // Plaintext World: the test can build frames the receiver accepts as authentic, the worst case.
        const w = new World({ seed: SEED + seed, insecurePlaintext: true, recordDeliveries: false, links: [{ name: 'mpls', delayMs: 10, lossRatio: 0.05 }, { name: 'inet', delayMs: 15, lossRatio: 0.05 }] });
        // Genuine parity frames a sends, captured to mutate.
        const genuine: { atMs: number; linkId: number; frame: FecParityFrame }[] = [];
        w.tap = (site, linkId, bytes, atMs) => {
          if (site !== 'a') return;
          const env = decodeEnvelope(bytes);
          if (!env.ok) return;
          const f = decodeFrame(env.value.sealed);
          if (f.ok && f.value.kind === 'fecParity') genuine.push({ atMs, linkId, frame: f.value.fecParity });
        };
        const N = 3000;
        const run = voice(w, 500, N, { checkBytes: true });
        let injected = 0;
        attacks.forEach((muts, j) => {
          w.at(1500 + j * 25, () => {
            const g = genuine[genuine.length - 1 - (j % Math.max(1, Math.min(genuine.length, 8)))];
            if (!g) return;
            const bad = apply(g.frame, muts);
            const bytes = encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: encodeFrame({ kind: 'fecParity', fecParity: bad }) });
            // Before, at the same time as, and after the genuine parity of the same group would arrive.
            w.injectAt(w.nowMs + (j % 3) * 6, 'b', w.linkNames[g.linkId]!, w.a.endpoints[g.linkId]!, bytes);
            injected++;
          });
        });
        w.runFor(500 + N + 1500);
        const snap = w.b.edge.snapshot(w.nowMs);
        const vc = snap.classes.find((c) => c.name === 'voice')!;
        totalInjected += injected;
        totalMalformed += snap.drops.fecMalformed;
        totalRecovered += vc.fecRecovered ?? 0;
        expect(run.corrupted, `seed ${SEED + seed}: a wrong packet was delivered`).toBe(0);
        expect(run.duplicates, `seed ${SEED + seed}: a packet was delivered twice`).toBe(0);
        // Every delivered packet is one that was sent; those not lost are all there.
        expect(delivered(run)).toBeGreaterThan(N * 0.9);
        expect(genuine.length).toBeGreaterThan(0);
      }),
      { numRuns: 25, seed: SEED },
    );
    console.log(`seed ${SEED} bad parity: ${runs} runs, ${totalInjected} mutated parity frames injected, ${totalMalformed} counted as fecMalformed, ${totalRecovered} packets still recovered from genuine parity, no crash, no wrong or duplicate delivery`);
    expect(totalMalformed).toBeGreaterThan(totalInjected * 0.5);
  });

  it("a peer restart resets the receiver's FEC groups and protected delivery resumes", () => {
    const w = new World({ seed: SEED, recordDeliveries: false, links: [{ name: 'mpls', delayMs: 10, lossRatio: 0.05 }, { name: 'inet', delayMs: 15, lossRatio: 0.05 }] });
    const run = voice(w, 500, 12_000);
    w.at(6000, () => w.restart('a'));
    w.runFor(14_000);
    const b = voiceClass(w, 'b');
    // From 1 s after the restart: the new edge needs a few loss reports before FEC is back on.
    const after = run.arrivalMs.slice(7000 - 500).filter((t) => !Number.isNaN(t)).length;
    const expectedAfter = 12_000 - (7000 - 500);
    console.log(`seed ${SEED} restart at 6 s: b delivered ${after}/${expectedAfter} of the packets sent from 7 s on (5% loss on both paths); recovered ${b.fecRecovered}, malformed ${b.fecMalformed}; duplicates ${run.duplicates}`);
    expect(run.duplicates).toBe(0);
    expect(after / expectedAfter).toBeGreaterThan(0.995);
  });

  it('duplicated flows are not FEC-protected: no frame carries dup_seq and FEC fields together (the 64-byte budget counts on it)', () => {
    const w = new World({
      seed: SEED,
      insecurePlaintext: true,
      recordDeliveries: false,
      links: [{ name: 'mpls', delayMs: 10, lossRatio: 0.05 }, { name: 'inet', delayMs: 15, lossRatio: 0.05 }],
      edge: { policies: policiesWith({ voice: { strategy: 'duplicate' } }), fec: { voice: { minM: 2, maxM: 2 } } },
    });
    let both = 0;
    let dup = 0;
    let parity = 0;
    w.tap = (site, _l, bytes) => {
      if (site !== 'a') return;
      const env = decodeEnvelope(bytes);
      const f = env.ok ? decodeFrame(env.value.sealed) : undefined;
      if (!f?.ok) return;
      if (f.value.kind === 'fecParity') parity++;
      if (f.value.kind !== 'data') return;
      if (f.value.data.dupSeq !== 0) dup++;
      if (f.value.data.dupSeq !== 0 && (f.value.data.fecGroup !== 0 || (f.value.data.fecK ?? 0) !== 0)) both++;
    };
    const run = voice(w, 500, 5000);
    w.runFor(500 + 5000 + 1000);
    console.log(`seed ${SEED} duplicate + FEC policy: ${dup} duplicated data frames, ${both} with FEC fields, ${parity} parity frames; delivered ${delivered(run)}/5000`);
    expect(dup).toBeGreaterThan(5000);
    expect(both).toBe(0);
    expect(parity).toBe(0);
    expect(run.duplicates).toBe(0);
  });

  it('congestion backoff: loss from our own queue overflowing caps parity; the same loss rate at random does not', () => {
    // Bulk with adaptive FEC (k 16, maxM 4). Congested: a 5 Mbit/s bottleneck with a 30-packet
    // queue, bulk ramps from 3 to 7 Mbit/s at 5.5 s (loss and RTT rise with our rate). Random:
    // 10% loss on an idle path at 3 Mbit/s.
    const run = (netem: string, rampBps: number) => {
      const w = new World({ seed: SEED, insecurePlaintext: true, recordDeliveries: false, links: [{ name: 'wan', abNetem: netem, baNetem: 'delay 20ms' }], edge: { fec: { bulk: { enabled: true } } } });
      let i = 0;
      const send = (): void => w.a.sendTun(makePacket({ ...flowSpec(100 + (i % 4), 1000, 10), seq: i++ }));
      w.every(1000 / (3e6 / 8000), { startMs: 500, untilMs: 5500 }, send);
      w.every(1000 / (rampBps / 8000), { startMs: 5500, untilMs: 20_000 }, send);
      const ms: number[] = [];
      let congestedAtMs: number | undefined;
      w.every(100, { startMs: 5500, untilMs: 20_000 }, () => {
        const c = w.a.edge.snapshot(w.nowMs).classes[6]!;
        ms.push(c.fecM!);
        if (c.fecCongested && congestedAtMs === undefined) congestedAtMs = w.nowMs;
      });
      w.runFor(20_000);
      const c = w.a.edge.snapshot(w.nowMs).classes[6]!;
      const last10s = ms.slice(-100);
      return { meanM: last10s.reduce((a, b) => a + b, 0) / last10s.length, loss: c.fecLossRatio!, congestedAtMs, rtt: w.a.edge.snapshot(w.nowMs).links[0]!.rttMs! };
    };
    const congested = run('delay 20ms rate 5mbit limit 30', 7e6);
    const random = run('delay 20ms loss 10%', 3e6);
    console.log(
      `seed ${SEED} congestion: bottleneck overflow (loss ${pct(congested.loss, 1)}, rtt ${congested.rtt.toFixed(0)} ms): congestion seen ${((congested.congestedAtMs ?? NaN) - 5500).toFixed(0)} ms after the ramp, mean m over the last 10 s ${congested.meanM.toFixed(2)}; ` +
        `random loss (${pct(random.loss, 1)}, rtt ${random.rtt.toFixed(0)} ms): congestion ${random.congestedAtMs === undefined ? 'never seen' : 'seen'}, mean m ${random.meanM.toFixed(2)}`,
    );
    expect(congested.congestedAtMs).toBeDefined();
    expect(congested.meanM).toBeLessThanOrEqual(1);
    expect(random.congestedAtMs).toBeUndefined();
    expect(random.meanM).toBeGreaterThanOrEqual(3);
  });
});

describe('FEC pieces the Edge relies on', () => {
  it("group ids carry the class in their top 4 bits and wrap inside the class's space, skipping 0", () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 1, m: 1, flushMs: 10, firstGroupId: FEC_GROUP_COUNTER_MASK - 1, groupTag: 6 });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(enc.push(0, new Uint8Array([i + 1]), 0)!.groupId);
      while (enc.pollParity());
    }
    expect(ids).toEqual([(6 << 28) + FEC_GROUP_COUNTER_MASK - 1, (6 << 28) + FEC_GROUP_COUNTER_MASK, (6 << 28) + 1].map((x) => x >>> 0));
  });

  it('a group flushed early gets the parity its size needs (parityTable), never more than it opened with', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 20, m: 5, flushMs: 20 });
    enc.setParityTable(parityTable(20, 0.05, 0.001, 5, 'packet'));
    enc.push(0, new Uint8Array(200), 0);
    enc.push(1, new Uint8Array(200), 0);
    enc.onTimeout(20);
    const shards = [];
    for (let p = enc.pollParity(); p; p = enc.pollParity()) shards.push(p);
    // Two packets at 5% loss: residual < 0.1% needs 2 parity shards (3 shards of 4 may not all go).
    expect(shards.map((p) => [p.k, p.m])).toEqual([
      [2, 2],
      [2, 2],
    ]);
  });

  it("the 'packet' criterion bounds the residual packet loss and costs no more parity than 'group'", () => {
    // The voice defaults: k = 20 at 5% loss needs m = 5 (25%); k = 16 needs m = 4 (but 5 under 'group').
    expect(requiredParity(20, 0.05, 0.001, 10, 'packet')).toBe(5);
    expect(requiredParity(16, 0.05, 0.001, 10, 'packet')).toBe(4);
    expect(requiredParity(16, 0.05, 0.001, 10, 'group')).toBe(5);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), fc.double({ min: 0.001, max: 0.3, noNaN: true }), fc.constantFrom(1e-2, 1e-3, 1e-4), (k, p, target) => {
        const m = requiredParity(k, p, target, 32, 'packet');
        if (m < 32) expect(residualLossRatio(k, m, p)).toBeLessThan(target);
        expect(m).toBeLessThanOrEqual(requiredParity(k, p, target, 32, 'group'));
      }),
    );
  });
});
