/**
 * Rebalancing of balanced classes (issue 17) in the World: eight long-lived flows over three
 * links; one link is cut and comes back. Before: the flows that left it never returned. Now they
 * move back one at a time, each only after an idle gap longer than the links' delay difference,
 * so no flow is delivered out of order; and two paths whose flows are placed unevenly at start
 * are left alone (rebalancing follows a recovery, not the hash).
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket, readPacketTag } from '../../sim/packets.ts';

const SEED = Number(process.env.BRAID_SEED ?? 1717);

describe(`World: balanced flows return to a recovered link (seed ${SEED})`, () => {
  it('8 bursty flows, inet cut 5 s and restored: flows move back onto it, one at a time, none reordered', () => {
    const w = new World({ seed: SEED, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 14 }, { name: 'lte', delayMs: 20 }] });
    const FLOWS = 8;
    // Each flow: a burst of 4 packets every 20 ms (TCP-like: idle gaps between bursts).
    w.every(20, { startMs: 1000, untilMs: 22_000 }, (i) => {
      for (let f = 0; f < FLOWS; f++) for (let k = 0; k < 4; k++) w.a.sendTun(makePacket({ ...flowSpec(f, 1000), seq: i * 4 + k }));
    });
    w.impairAt(5000, 'inet', { up: false });
    w.impairAt(10_000, 'inet', { up: true });
    const flowsOn = (t: number): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const l of w.a.edge.snapshot(t).links) out[l.name] = l.flows;
      return out;
    };
    let atCut: Record<string, number> = {};
    let beforeRestore: Record<string, number> = {};
    w.at(4900, () => (atCut = flowsOn(w.nowMs)));
    w.at(9900, () => (beforeRestore = flowsOn(w.nowMs)));
    w.runFor(23_000);
    const end = flowsOn(w.nowMs);
    const moves = w.a.events.filter((e) => e.kind === 'flowMoved' && /rebalance/.test(e.message));
    console.log(`seed ${SEED} rebalance: flows per link before the cut ${JSON.stringify(atCut)}, during ${JSON.stringify(beforeRestore)}, at the end ${JSON.stringify(end)}; ${moves.length} rebalance moves: ${moves.map((e) => `${(e.atMs / 1000).toFixed(1)}s ${e.message}`).join(' | ')}`);
    expect(beforeRestore['inet']).toBe(0);
    expect(end['inet']).toBeGreaterThan(0);
    expect(moves.length).toBeGreaterThan(0);
    // One at a time: consecutive rebalance moves at least the settle time apart.
    for (let i = 1; i < moves.length; i++) expect(moves[i]!.atMs - moves[i - 1]!.atMs).toBeGreaterThanOrEqual(500);
    // Every move came after the recovery, and the split ends within one flow of even.
    for (const m of moves) expect(m.atMs).toBeGreaterThan(10_000);
    expect(Math.max(...Object.values(end)) - Math.min(...Object.values(end))).toBeLessThanOrEqual(1);
    // No flow was delivered out of order (the moves waited for a gap longer than the delay difference).
    const last = new Map<number, number>();
    let reordered = 0;
    for (const d of w.b.delivered) {
      const t = readPacketTag(d.bytes);
      if (t === undefined) continue;
      if (t.seq < (last.get(t.flowId) ?? -1)) reordered++;
      last.set(t.flowId, Math.max(t.seq, last.get(t.flowId) ?? -1));
    }
    expect(reordered).toBe(0);
  });
});
