/**
 * Bonding and CoDel (issue 17, bonded TCP over links of 10/30/60 ms): the earliest-arrival bond
 * queues a fast path on purpose, up to the slowest member's extra one-way delay, so that arrivals
 * line up; the link's CoDel (5 ms target on the default class) must not take that queue for
 * bufferbloat, or it drops the bonded flow's packets until the flow never reaches the slow paths
 * (namespaces, before this: 2,226 CoDel drops on the fastest link in 10 s, 2,301 TCP retransmits,
 * the slowest link unused). LinkScheduler.setCodelSlack, BondScheduler.slackMs, PeerBond wiring.
 */
import { describe, expect, it } from 'vitest';
import { CODEL_SLACK_HOLD_MS, LinkScheduler } from '../../src/core/qos/scheduler.ts';
import { CODEL_TARGET_MS, DEFAULT_QUEUE_POLICIES, type ClassQueuePolicy } from '../../src/core/qos/policy.ts';
import { BondScheduler } from '../../src/core/steer/bond.ts';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';
import { DEFAULT_POLICIES } from '../../src/core/steer/classes.ts';

const DEFAULT_CLASS = 5;
const MBIT = 1_000_000;

/**
 * A standing queue of `standingMs` on a 10 Mbit/s link (CoDel on the default class): a backlog of
 * that many ms first, then packets offered at exactly the link's rate for `seconds`. `slackAt`
 * sets a slack at those times. Returns CoDel's drops.
 */
function standing(standingMs: number, seconds: number, slackAt: Array<{ atMs: number; slackMs: number }> = []): number {
  const rateBps = 10 * MBIT;
  const classes: ClassQueuePolicy[] = DEFAULT_QUEUE_POLICIES.map((p, i) => (i === DEFAULT_CLASS ? { ...p, codelTargetMs: CODEL_TARGET_MS } : p));
  const s = new LinkScheduler<{ sizeBytes: number }>({ rateBps, classes }, 0);
  const size = 1222; // + 28 outer = 1250 bytes: 1 ms at 10 Mbit/s
  const backlog = Math.round(standingMs);
  for (let i = 0; i < backlog; i++) s.enqueue(0, DEFAULT_CLASS, { sizeBytes: size });
  let k = 0;
  for (let now = 0; now < seconds * 1000; now += 1) {
    while (k < slackAt.length && slackAt[k]!.atMs <= now) s.setCodelSlack(now, DEFAULT_CLASS, slackAt[k++]!.slackMs);
    s.enqueue(now, DEFAULT_CLASS, { sizeBytes: size });
    while (s.dequeue(now) !== undefined) {
      // sent
    }
  }
  return s.counters[DEFAULT_CLASS]!.aqmDropped;
}

describe('LinkScheduler: CoDel slack for a bonded class', () => {
  it('a 40 ms standing queue: CoDel drops it without slack, leaves it alone with 50 ms of slack', () => {
    const plain = standing(40, 2);
    const slack = standing(40, 2, [{ atMs: 0, slackMs: 50 }]);
    console.log(`codel slack: 40 ms standing queue, 2 s: ${plain} CoDel drops without slack, ${slack} with 50 ms`);
    expect(plain).toBeGreaterThan(0);
    expect(slack).toBe(0);
  });

  it('what stands above the slack is still dropped (40 ms queue, 20 ms slack)', () => {
    expect(standing(40, 2, [{ atMs: 0, slackMs: 20 }])).toBeGreaterThan(0);
  });

  it('the slack lapses CODEL_SLACK_HOLD_MS after it was last set; the largest one set lately wins', () => {
    // Set once at 0: the drops start once it lapses.
    expect(standing(40, (CODEL_SLACK_HOLD_MS + 1000) / 1000, [{ atMs: 0, slackMs: 50 }])).toBeGreaterThan(0);
    // Refreshed every 500 ms: none.
    const refreshed = Array.from({ length: (CODEL_SLACK_HOLD_MS + 1000) / 500 }, (_, i) => ({ atMs: i * 500, slackMs: 50 }));
    expect(standing(40, (CODEL_SLACK_HOLD_MS + 1000) / 1000, refreshed)).toBe(0);
    // A smaller slack from another peer does not shrink a larger one set lately.
    expect(standing(40, 2, [{ atMs: 0, slackMs: 50 }, { atMs: 10, slackMs: 0 }])).toBe(0);
  });
});

describe('BondScheduler.slackMs', () => {
  it("eat: each member's slack is the slowest member's extra one-way delay; 0 for the slowest, non-members and wrr", () => {
    const paths = [
      { id: 0, spareBps: 100 * MBIT, srttMs: 20, baseRttMs: 20, lossRatio: 0, mtuBytes: 1400 },
      { id: 1, spareBps: 100 * MBIT, srttMs: 60, baseRttMs: 60, lossRatio: 0, mtuBytes: 1400 },
      { id: 2, spareBps: 100 * MBIT, srttMs: 120, baseRttMs: 120, lossRatio: 0, mtuBytes: 1400 },
      { id: 3, spareBps: 100 * MBIT, srttMs: 400, baseRttMs: 400, lossRatio: 0, mtuBytes: 1400 },
    ];
    const eat = new BondScheduler({ kind: 'eat', maxDelayGapMs: 80 });
    eat.setPaths(0, paths);
    expect(eat.memberIds()).toEqual([0, 1, 2]);
    expect([0, 1, 2, 3].map((id) => eat.slackMs(id))).toEqual([50, 30, 0, 0]);
    const wrr = new BondScheduler({ kind: 'wrr', maxDelayGapMs: 80 });
    wrr.setPaths(0, paths);
    expect([0, 1, 2].map((id) => wrr.slackMs(id))).toEqual([0, 0, 0]);
  });
});

describe('World: a bonded flow over 10 and 40 ms one way, CoDel on the default class', () => {
  it('the near path carries its queue up to the delay gap without CoDel drops; in order, both paths', () => {
    // Braid shapes a little under the line (as bandwidthUp under tbf in the namespaces).
    const bw = { bandwidthBps: 38 * MBIT, rateBps: 40 * MBIT };
    const w = new World({
      seed: 17,
      links: [{ name: 'near', delayMs: 10, ...bw }, { name: 'far', delayMs: 40, ...bw }],
      edge: {
        policies: DEFAULT_POLICIES.map((p) => (p.name === 'default' ? { ...p, strategy: 'bond' as const } : p)),
        queues: { default: { codelTargetMs: CODEL_TARGET_MS } },
      },
    });
    // 1200 bytes every 0.137 ms: 70 Mbit/s, more than the near path's 38, so the bond queues the
    // near path until its packets arrive no later than the far path's (~30 ms of queue).
    const N = 20_000;
    w.every(0.137, { startMs: 2000, count: N }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 1200), seq: i })));
    w.runFor(2000 + N * 0.137 + 3000);
    const seqs = w.b.delivered.map((d) => readPacketTag(d.bytes)).filter((t) => t !== undefined && t.flowId === 1).map((t) => t!.seq);
    const links = w.a.edge.links;
    const aqm = links.map((l) => l.sched?.counters[DEFAULT_CLASS]?.aqmDropped ?? 0);
    const delayMax = links.map((l) => l.sched?.counters[DEFAULT_CLASS]?.delayMaxMs ?? 0);
    let outOfOrder = 0;
    let max = -1;
    for (const s of seqs) {
      if (s < max) outOfOrder++;
      max = Math.max(max, s);
    }
    console.log(`bond + codel world: delivered ${seqs.length}/${N}, out of order ${outOfOrder}, CoDel drops near/far ${aqm.join('/')}, queue delay max near/far ${delayMax.map((d) => d.toFixed(1)).join('/')} ms, datagrams per link ${w.linkNames.map((n) => w.linkStats(n).ab.sent).join('/')}`);
    // The near path's queue did reach well past CoDel's target (the bond's own doing) ...
    expect(delayMax[0]).toBeGreaterThan(4 * CODEL_TARGET_MS);
    // ... and CoDel left it alone.
    expect(aqm).toEqual([0, 0]);
    expect(seqs.length).toBe(N);
    expect(outOfOrder).toBe(0);
    for (const n of w.linkNames.map((name) => w.linkStats(name).ab.sent)) expect(n).toBeGreaterThan(N * 0.2);
  });
});
