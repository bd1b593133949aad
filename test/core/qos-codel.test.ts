// CoDel on a shaped link's WFQ class (issue 13: active queue management on Braid's own queues,
// not bigger buffers). A responsive sender (AIMD on its rate, slowing down once per RTT when it
// loses a packet, the way TCP does) through a 20 Mbit/s LinkScheduler in virtual time: with tail
// drop alone the class's queue fills to its 100 ms bound before the sender hears anything; with
// CoDel the standing queue stays near the 5 ms target and the link stays busy.
import { describe, expect, it } from 'vitest';
import { LinkScheduler } from '../../src/core/qos/scheduler.ts';
import { CODEL_TARGET_MS, DEFAULT_QUEUE_POLICIES, checkQueuePolicy, type ClassQueuePolicy } from '../../src/core/qos/policy.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { edgeConfigFrom } from '../../src/cli/up.ts';
import { Endpoint } from '../../src/core/endpoint.ts';
import { SeededRng } from '../../src/core/rng.ts';

const DEFAULT_CLASS = 5;
const RATE_BPS = 20e6;
const PACKET_BYTES = 1400;
const BASE_RTT_MS = 20;

interface Run {
  meanDelayMs: number;
  maxDelayMs: number;
  utilisation: number;
  dropped: number;
  aqmDropped: number;
}

function run(codelTargetMs: number | undefined, seconds = 20): Run {
  const classes: ClassQueuePolicy[] = DEFAULT_QUEUE_POLICIES.map((p, i) => (i === DEFAULT_CLASS && codelTargetMs !== undefined ? { ...p, codelTargetMs } : p));
  const s = new LinkScheduler<{ sizeBytes: number }>({ rateBps: RATE_BPS, classes }, 0);
  const c = s.counters[DEFAULT_CLASS]!;
  let rateBps = 5e6;
  let credit = 0;
  let lastCutMs = -Infinity;
  let seenDrops = 0;
  // Drops are heard one RTT (base + the queue) later; at most one cut per RTT, as TCP.
  const pendingCuts: number[] = [];
  let sentAtWarm = 0;
  let delayAtWarm = 0;
  let sentBytesAtWarm = 0;
  let maxDelayMs = 0;
  const warmMs = 5000;
  for (let now = 0; now < seconds * 1000; now += 0.1) {
    credit += (rateBps / 8 / 1000) * 0.1;
    while (credit >= PACKET_BYTES) {
      credit -= PACKET_BYTES;
      s.enqueue(now, DEFAULT_CLASS, { sizeBytes: PACKET_BYTES });
    }
    for (let d = s.dequeue(now); d; d = s.dequeue(now)) {
      // dequeue's delay bookkeeping: the newest max is the one of this packet or an earlier one
    }
    if (now >= warmMs) maxDelayMs = Math.max(maxDelayMs, c.delayMaxMs);
    if (c.dropped > seenDrops) {
      seenDrops = c.dropped;
      const queueMs = s.queuedBytesOf(DEFAULT_CLASS) / (RATE_BPS / 8 / 1000);
      pendingCuts.push(now + BASE_RTT_MS + queueMs);
    }
    while (pendingCuts.length > 0 && pendingCuts[0]! <= now) {
      pendingCuts.shift();
      if (now - lastCutMs >= BASE_RTT_MS) {
        rateBps /= 2;
        lastCutMs = now;
      }
    }
    // Additive increase: one packet per RTT per RTT, roughly (rate + MSS/RTT each RTT).
    rateBps += ((PACKET_BYTES * 8) / (BASE_RTT_MS / 1000)) * (0.1 / BASE_RTT_MS);
    if (Math.abs(now - warmMs) < 0.05) {
      sentAtWarm = c.sent;
      delayAtWarm = c.delaySumMs;
      sentBytesAtWarm = c.sentBytes;
      c.delayMaxMs = 0;
    }
  }
  const sent = c.sent - sentAtWarm;
  return {
    meanDelayMs: (c.delaySumMs - delayAtWarm) / sent,
    maxDelayMs,
    utilisation: ((c.sentBytes - sentBytesAtWarm) * 8) / (RATE_BPS * (seconds - warmMs / 1000)),
    dropped: c.dropped,
    aqmDropped: c.aqmDropped,
  };
}

describe('CoDel on a shaped link (LinkScheduler, virtual time)', () => {
  it('keeps a responsive sender\'s standing queue near the target where tail drop fills the 100 ms bound', () => {
    const tail = run(undefined);
    const codel = run(CODEL_TARGET_MS);
    console.log(`tail drop: ${JSON.stringify(tail)}\ncodel:     ${JSON.stringify(codel)}`);
    expect(tail.aqmDropped).toBe(0);
    expect(tail.meanDelayMs).toBeGreaterThan(25);
    expect(codel.aqmDropped).toBeGreaterThan(0);
    expect(codel.meanDelayMs).toBeLessThan(15);
    expect(codel.maxDelayMs).toBeLessThan(tail.maxDelayMs);
    // ... with the link as busy as tail drop kept it (this sender's sawtooth idles it either way), and far fewer drops.
    expect(codel.utilisation).toBeGreaterThan(0.8);
    expect(codel.utilisation).toBeGreaterThanOrEqual(tail.utilisation);
    expect(codel.dropped).toBeLessThan(tail.dropped / 5);
  });

  it('leaves priority classes to tail drop and refuses a target out of range', () => {
    const classes = DEFAULT_QUEUE_POLICIES.map((p) => ({ ...p, codelTargetMs: 5 }));
    const s = new LinkScheduler<{ sizeBytes: number }>({ rateBps: 1e6, classes }, 0);
    // Voice (priority) 300 ms deep in a 1 Mbit/s link: nothing is dropped from its head.
    for (let i = 0; i < 25; i++) s.enqueue(0, 1, { sizeBytes: 1400 });
    for (let now = 0; now < 400; now += 1) while (s.dequeue(now));
    expect(s.counters[1]!.sent).toBe(25);
    expect(s.counters[1]!.aqmDropped).toBe(0);
    expect(() => checkQueuePolicy({ ...DEFAULT_QUEUE_POLICIES[5]!, codelTargetMs: 0 }, 'class default')).toThrow(/codelTargetMs=0 must be 0\.5\.\.1000/);
  });
});

describe('config: classes.NAME.queue.codelTargetMs', () => {
  const BASE = `site: b1
insecurePlaintext: true
tun: { address: 10.0.0.1/30 }
links: [{ name: mpls, interface: eth0, bandwidthUp: 10mbit }]
peers: [{ name: hub, endpoints: { mpls: "192.0.2.1:51900" } }]
`;
  it('braid up runs CoDel at 5 ms on the WFQ classes by default; a number sets the target, "off" leaves tail drop', () => {
    const dflt = edgeConfigFrom(parseConfigText(BASE, 'b1.yaml'), undefined).queues!;
    expect(dflt.default).toEqual({ codelTargetMs: 5 });
    expect(dflt.voice).toBeUndefined();
    const cfg = parseConfigText(`${BASE}classes:\n  bulk: { queue: { codelTargetMs: 20 } }\n  default: { queue: { codelTargetMs: off } }\n`, 'b1.yaml');
    const e = edgeConfigFrom(cfg, undefined);
    expect(e.queues!.bulk).toEqual({ codelTargetMs: 20 });
    expect(e.queues!.default).toBeUndefined();
    // The Edge takes it: the default class drops only at its tail, bulk's heads go by CoDel.
    const edge = new Endpoint(e, 0, new SeededRng(1));
    expect(edge.snapshot(0).links[0]!.shaperRateBps).toBe(10_000_000);
    expect(() => parseConfigText(`${BASE}classes:\n  bulk: { queue: { codelTargetMs: 0 } }\n`, 'b1.yaml')).toThrow(/classes\.bulk\.queue\.codelTargetMs/);
  });
});
