/**
 * Issue 5 acceptance (QoS half): the per-link scheduler alone (strict priority, DRR weights,
 * token bucket, bounded queues), then two whole Edges in virtual time over a shaped link.
 */
import { describe, expect, it } from 'vitest';
import { LinkScheduler } from '../../src/core/qos/scheduler.ts';
import { DEFAULT_QUEUE_POLICIES, OUTER_HEADER_BYTES, type ClassQueuePolicy } from '../../src/core/qos/policy.ts';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES, classOfDscp, type ClassPolicy } from '../../src/core/steer/classes.ts';
import { Edge } from '../../src/core/edge.ts';
import { Endpoint } from '../../src/core/endpoint.ts';
import { SeededRng } from '../../src/core/rng.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { decodeEnvelope, decodeFrame } from '../../src/core/wire/codec.ts';
import { edgeConfigFrom } from '../../src/cli/up.ts';

const SEED = Number(process.env.BRAID_SEED ?? 5151);
const EF = 46;
const AF11 = 10;

interface Item {
  sizeBytes: number;
  cls: number;
  seq: number;
}

function item(cls: number, size: number, seq = 0): Item {
  return { sizeBytes: size, cls, seq };
}

/** Runs the scheduler in virtual time until empty (or `untilMs`), releasing at its deadlines. */
function drainAll(s: LinkScheduler<Item>, startMs: number, untilMs = Infinity): { out: Item[]; atMs: number[]; endMs: number } {
  const out: Item[] = [];
  const atMs: number[] = [];
  let now = startMs;
  for (;;) {
    for (let t = s.dequeue(now); t; t = s.dequeue(now)) {
      out.push(t);
      atMs.push(now);
    }
    const next = s.nextReleaseMs(now);
    if (next === Infinity || next > untilMs) return { out, atMs, endMs: now };
    now = next;
  }
}

describe('LinkScheduler (qos/scheduler.ts)', () => {
  it('serves network control, then realtime, before anything else, whatever the arrival order', () => {
    const s = new LinkScheduler<Item>({ rateBps: 1e6, classes: DEFAULT_QUEUE_POLICIES }, 0);
    // Spend the burst so that everything below queues.
    for (let i = 0; i < 4; i++) s.enqueue(0, 6, item(6, 1400));
    drainAll(s, 0, 0);
    for (const c of [6, 5, 4, 3, 2, 1, 0]) for (let i = 0; i < 3; i++) s.enqueue(0, c, item(c, 200));
    const { out } = drainAll(s, 0);
    const order = out.map((x) => x.cls);
    // The bulk packets queued first wait: control, then voice, then the DRR classes.
    expect(order.slice(0, 6)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(order.length).toBe(2 + 21);
  });

  it('shares the link by DRR weight among backlogged classes (video 6 : business 4 : bulk 1)', () => {
    const s = new LinkScheduler<Item>({ rateBps: 10e6, classes: DEFAULT_QUEUE_POLICIES.map((p) => ({ ...p, maxPackets: 5000, maxBytes: 10e6 })) }, 0);
    for (let i = 0; i < 3000; i++) {
      s.enqueue(0, 2, item(2, 1200));
      s.enqueue(0, 4, item(4, 1200));
      s.enqueue(0, 6, item(6, 1200));
    }
    // One second of service: the queues stay backlogged throughout.
    const { out } = drainAll(s, 0, 1000);
    const bytes = [2, 4, 6].map((c) => out.filter((x) => x.cls === c).length * 1200);
    const total = bytes.reduce((a, b) => a + b, 0);
    const shares = bytes.map((b) => b / total);
    console.log(`DRR shares video/business/bulk: ${shares.map((x) => (x * 100).toFixed(1) + '%').join(' / ')} (weights 6/4/1 -> 54.5/36.4/9.1%)`);
    expect(shares[0]).toBeCloseTo(6 / 11, 2);
    expect(shares[1]).toBeCloseTo(4 / 11, 2);
    expect(shares[2]).toBeCloseTo(1 / 11, 2);
  });

  it('shapes to the configured rate (outer IP/UDP header counted) and bounds queues, counting drops per class', () => {
    const classes: ClassQueuePolicy[] = DEFAULT_QUEUE_POLICIES.map((p) => ({ ...p }));
    classes[6] = { ...classes[6]!, maxPackets: 100 };
    const s = new LinkScheduler<Item>({ rateBps: 8e6, classes }, 0);
    let accepted = 0;
    for (let i = 0; i < 150; i++) if (s.enqueue(0, 6, item(6, 972))) accepted++;
    expect(accepted).toBe(100);
    expect(s.counters[6]!.dropped).toBe(50);
    const { out, endMs } = drainAll(s, 0);
    expect(out.length).toBe(100);
    // 100 x (972 + 28) bytes at 1 MB/s = 100 ms, less the initial burst.
    const expectedMs = (100 * (972 + OUTER_HEADER_BYTES) - s.burstBytes) / 1000;
    console.log(`shaper: 100 x 1000 wire bytes at 8 Mbit/s released over ${endMs.toFixed(2)} ms (expected ${expectedMs.toFixed(2)} after a ${s.burstBytes}-byte burst)`);
    expect(Math.abs(endMs - expectedMs)).toBeLessThan(1.01);
    // Byte bound: default 100 ms at the rate (100 kB here, at least 64 KiB).
    const t = new LinkScheduler<Item>({ rateBps: 8e6, classes: DEFAULT_QUEUE_POLICIES }, 0);
    let n = 0;
    while (t.enqueue(0, 5, item(5, 1400))) n++;
    expect(n * 1400).toBeLessThanOrEqual(100_000);
    expect((n + 1) * 1400).toBeGreaterThan(100_000);
  });
});

describe(`QoS over a shaped link, two Edges in virtual time (seed ${SEED})`, () => {
  it('10 Mbit/s link, 20 Mbit/s of bulk + 20 voice calls: voice loses nothing, < 5 ms added queueing delay, bulk gets the rest (100,000 voice packets)', () => {
    const RATE = 10_000_000;
    const w = new World({
      seed: SEED,
      insecurePlaintext: true, // queueing is under test, not crypto; 2x faster (wire sizes are measured)
      recordDeliveries: false,
      // The modem serialises at 10 Mbit/s; the edge shapes to the same configured uplink rate so
      // that the queue forms in the edge, where voice can jump it.
      // (The World counts its queue limit from the last idle moment, not the current backlog, so a
      // modem kept busy at exactly its rate would drop after 1000 packets however short its
      // queue: the limit is raised; that the modem queue stays short is checked below.)
      links: [{ name: 'wan', delayMs: 10, rateBps: RATE, bandwidthBps: RATE, queueLimitPackets: 1_000_000 }],
    });
    const START_MS = 1000;
    const VOICE_N = 100_000;
    const CALLS = 20;
    const voiceSentAt = new Float64Array(VOICE_N).fill(NaN);
    const voiceLatency = new Float64Array(VOICE_N).fill(NaN);
    w.every(20 / CALLS, { startMs: START_MS, count: VOICE_N }, (i) => {
      voiceSentAt[i] = w.nowMs;
      w.a.sendTun(makePacket({ ...flowSpec(i % CALLS + 1, 200, EF), seq: Math.floor(i / CALLS) }));
    });
    // Bulk: 8 flows of 1400-byte AF11 packets, 20 Mbit/s in all.
    const BULK_BYTES = 1400;
    const bulkPps = 20e6 / 8 / BULK_BYTES;
    const END_MS = START_MS + VOICE_N * (20 / CALLS);
    let bulkSent = 0;
    w.every(1000 / bulkPps, { startMs: START_MS, untilMs: END_MS }, (i) => {
      w.a.sendTun(makePacket({ ...flowSpec(100 + (i % 8), BULK_BYTES, AF11), seq: i }));
      bulkSent++;
    });
    let bulkBytes = 0;
    let bulkFirstMs = Infinity;
    let bulkLastMs = 0;
    w.b.onDeliver = (p, at) => {
      const tag = readPacketTag(p);
      if (!tag) return;
      if (tag.flowId <= CALLS) {
        const i = tag.seq * CALLS + tag.flowId - 1;
        voiceLatency[i] = at - voiceSentAt[i]!;
      } else {
        bulkBytes += p.length;
        bulkFirstMs = Math.min(bulkFirstMs, at);
        bulkLastMs = Math.max(bulkLastMs, at);
      }
    };
    w.runFor(END_MS + 3000);

    const lat = Array.from(voiceLatency).filter((x) => !Number.isNaN(x));
    const lost = VOICE_N - lat.length;
    lat.sort((a, b) => a - b);
    // Unloaded one-way latency of a voice datagram: propagation + its own serialisation.
    const voiceWireBytes = w.a.edge.snapshot(w.nowMs).classes[1]!.fecDataWireBytes ?? 0;
    const ownSerialisationMs = ((voiceWireBytes / VOICE_N + 28) * 8 * 1000) / RATE;
    const baseMs = 10 + ownSerialisationMs;
    const added = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! - baseMs;
    const maxAdded = lat[lat.length - 1]! - baseMs;
    const durationS = (bulkLastMs - bulkFirstMs) / 1000;
    const bulkGoodputBps = (bulkBytes * 8) / durationS;
    const snapA = w.a.edge.snapshot(w.nowMs);
    const voiceClass = snapA.classes[1]!;
    const bulkClass = snapA.classes[6]!;
    // What is left for bulk: the link minus voice and probes on the wire, in inner bytes.
    const voiceWireBps = ((voiceWireBytes + VOICE_N * 28) * 8) / (VOICE_N / 1000);
    const dataOverheadBytes = voiceWireBytes / VOICE_N - 200; // envelope + frame (+ AEAD tag when sealed)
    const bulkWirePerPacket = BULK_BYTES + dataOverheadBytes + 28;
    const restForBulkBps = (RATE - voiceWireBps) * (BULK_BYTES / bulkWirePerPacket);
    console.log(
      `seed ${SEED} QoS 10 Mbit/s: voice ${VOICE_N} sent, ${lost} lost, added queueing delay p50 ${added(0.5).toFixed(2)} ms, p99 ${added(0.99).toFixed(2)} ms, max ${maxAdded.toFixed(2)} ms ` +
        `(base ${baseMs.toFixed(2)} ms; edge queue wait mean ${voiceClass.queueDelayAvgMs!.toFixed(3)} ms, max ${voiceClass.queueDelayMaxMs!.toFixed(2)} ms); ` +
        `bulk offered ${((bulkSent * BULK_BYTES * 8) / ((END_MS - START_MS) / 1000) / 1e6).toFixed(1)} Mbit/s, goodput ${(bulkGoodputBps / 1e6).toFixed(2)} Mbit/s of ${(restForBulkBps / 1e6).toFixed(2)} left by voice (${((bulkGoodputBps / restForBulkBps) * 100).toFixed(1)}%), ` +
        `bulk tail drops in the edge ${bulkClass.queueDrops}, voice ${voiceClass.queueDrops}; modem drops ${w.linkStats('wan').ab.lost}; path loss seen by the edge ${(snapA.links[0]!.txLossTotalRatio! * 100).toFixed(3)}%, voice parity sent ${voiceClass.fecParitySent}`,
    );
    expect(lost).toBe(0);
    expect(voiceClass.queueDrops).toBe(0);
    expect(maxAdded).toBeLessThan(5);
    expect(bulkGoodputBps).toBeGreaterThan(0.95 * restForBulkBps);
    expect(bulkGoodputBps).toBeLessThan(RATE);
    expect(w.linkStats('wan').ab.lost).toBe(0);
    expect(w.a.edge.snapshot(w.nowMs).drops.queueFull).toBe(bulkClass.queueDrops);
    // Datagrams the edge's own queue dropped were never numbered: the path shows no loss, so
    // steering and adaptive FEC do not mistake our tail drops for a lossy link.
    expect(snapA.links[0]!.txLossTotalRatio!).toBeLessThan(0.001);
    expect(voiceClass.fecParitySent).toBe(0);
  });

  it('outer DSCP follows the class map (configurable per class); probes and control go as network control', () => {
    const transmitsOf = (policies?: ClassPolicy[]) => {
      const edge = new Edge({ site: 'x', links: [{ name: 'wan', remote: { address: 'peer', port: 1 } }], ...(policies ? { policies } : {}) }, 0, new SeededRng(SEED));
      edge.handleTimeout(edge.pollTimeout()!); // the first probe
      const out = new Map<string, number>();
      for (let t = edge.pollTransmit(); t; t = edge.pollTransmit()) out.set('probe', t.dscp);
      for (const [name, dscp] of [['EF', EF], ['AF41', 34], ['BE', 0], ['AF11', AF11], ['CS6', 48]] as const) {
        edge.handleTunPacket(1, makePacket({ ...flowSpec(dscp + 1, 300, dscp), seq: 1 }));
        out.set(name, edge.pollTransmit()!.dscp);
      }
      return Object.fromEntries(out);
    };
    const defaults = transmitsOf();
    const overridden = transmitsOf(DEFAULT_POLICIES.map((p) => (p.name === 'video' ? { ...p, outerDscp: 32 } : p)));
    console.log(`outer DSCP by inner packet: default map ${JSON.stringify(defaults)}; video -> CS4 override ${JSON.stringify(overridden)}`);
    expect(defaults).toEqual({ probe: 48, EF: 46, AF41: 34, BE: 0, AF11: 8, CS6: 48 });
    expect(overridden).toEqual({ ...defaults, AF41: 32 });
    expect(classOfDscp(AF11)).toBe(6);
  });
});

describe('shaped-link queue keeps its own copies', () => {
  it('a packet queued behind the bucket is not a view of the caller buffer (Node Buffer.slice is a view)', () => {
    const edge = new Edge({ site: 'x', links: [{ name: 'wan', remote: { address: 'peer', port: 1 }, bandwidthBps: 1_000_000 }] }, 0, new SeededRng(SEED));
    const slab = Buffer.alloc(4 * 1400); // a TUN batch slab, reused by the shell for the next batch
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const p = makePacket({ ...flowSpec(7, 1400, AF11), seq: i });
      sent.push(p);
      slab.set(p, i * 1400);
      edge.handleTunPacket(1, slab.subarray(i * 1400, (i + 1) * 1400));
    }
    slab.fill(0xee); // the next batch overwrites the slab before the bucket lets the queue go
    const got: Uint8Array[] = [];
    for (let now = 1; now < 200; now++) {
      if ((edge.pollTimeout() ?? Infinity) <= now) edge.handleTimeout(now);
      for (let t = edge.pollTransmit(); t; t = edge.pollTransmit()) {
        const env = decodeEnvelope(t.bytes);
        const f = env.ok ? decodeFrame(env.value.sealed) : undefined;
        if (f?.ok && f.value.kind === 'data') got.push(f.value.data.packet.slice());
      }
    }
    expect(got.length).toBe(4);
    for (let i = 0; i < 4; i++) expect(Buffer.from(got[i]!).equals(Buffer.from(sent[i]!))).toBe(true);
  });
});

describe('config: classes section (src/control/config.ts -> edgeConfigFrom)', () => {
  const BASE = `site: b1
insecurePlaintext: true
tun: { address: 10.0.0.1/30 }
links: [{ name: mpls, interface: eth0, bandwidthUp: 10mbit }]
peers: [{ name: hub, endpoints: { mpls: "192.0.2.1:51900" } }]
`;
  it('maps outer DSCP, SLA, FEC and queue overrides onto the Edge config; bad ones name the field', () => {
    const cfg = parseConfigText(
      BASE +
        `classes:
  video: { outerDscp: 32 }
  voice: { sla: { lossRatio: 0.02 }, fec: { k: 16, maxM: 6 } }
  bulk: { fec: { enabled: true, minM: 4, maxM: 4 }, queue: { weight: 2 } }
`,
      'b1.yaml',
    );
    const e = edgeConfigFrom(cfg, undefined);
    expect(e.policies!.find((p) => p.name === 'video')!.outerDscp).toBe(32);
    expect(e.policies!.find((p) => p.name === 'voice')!.sla).toEqual({ ...DEFAULT_POLICIES[1]!.sla, lossRatio: 0.02 });
    expect(e.fec).toEqual({ voice: { k: 16, maxM: 6 }, bulk: { enabled: true, minM: 4, maxM: 4 } });
    // CoDel (5 ms) on every WFQ class's queue by default (test/core/qos-codel.test.ts).
    expect(e.queues).toEqual({ video: { codelTargetMs: 5 }, signaling: { codelTargetMs: 5 }, business: { codelTargetMs: 5 }, default: { codelTargetMs: 5 }, bulk: { weight: 2, codelTargetMs: 5 } });
    expect(e.links[0]!.bandwidthBps).toBe(10_000_000);
    // The Edge takes it: shaped link, bulk FEC fixed at 16+4.
    const edge = new Endpoint(e, 0, new SeededRng(1));
    const snap = edge.snapshot(0);
    expect(snap.links[0]!.shaperRateBps).toBe(10_000_000);
    expect(snap.classes[6]!.fecK).toBe(16);
    expect(snap.classes[6]!.fecM).toBe(4);
    expect(edgeConfigFrom(parseConfigText(BASE, 'b1.yaml'), undefined).policies).toBeUndefined();
    const err = (text: string): string => {
      try {
        parseConfigText(BASE + text, 'b1.yaml');
      } catch (x) {
        return (x as Error).message;
      }
      return 'no error';
    };
    expect(err('classes:\n  voise: { outerDscp: 1 }\n')).toMatch(/classes: unknown key "voise"/);
    expect(err('classes:\n  voice: { outerDscp: 64 }\n')).toMatch(/classes\.voice\.outerDscp/);
    expect(err('classes:\n  bulk: { fec: { minM: 6 } }\n')).toMatch(/classes\.bulk\.fec: minM=6 must be 0\.\.maxM \(4\)/);
    expect(err('classes:\n  bulk: { fec: { parityPlacement: both } }\n')).toMatch(/classes\.bulk\.fec\.parityPlacement/);
  });
});
