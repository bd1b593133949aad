/**
 * Issue 16 acceptance: unmarked UDP on Teams' media ports from a LAN host is classified as voice by
 * the shipped catalogue. Two sites in a World, both configured with `rules: [{ catalogue: teams }]`
 * expanded the way the config loader does it (config-rules.ts parseRules + expandRules). A branch
 * PC sends unmarked (DSCP 0) audio from UDP 50004 to a Teams relay port (3479), plus unmarked
 * traffic on ports the catalogue does not name; the branch's voice class must count exactly the
 * Teams packets, its default class the others, and the far site must count the replies as voice
 * too (`ports` matches either side). The same traffic without rules is all default: the
 * classification comes from the catalogue, not from the packets.
 */
import { describe, expect, it } from 'vitest';
import { makePacket } from '../../sim/packets.ts';
import { World } from '../../sim/world.ts';
import { expandRules, parseRules } from '../../src/control/config-rules.ts';
import type { RuleSpec } from '../../src/core/steer/rules.ts';

const SEED = Number(process.env.BRAID_SEED ?? 16);
const PACKETS = 500;

interface Run {
  a: Record<string, number>;
  b: Record<string, number>;
  delivered: { a: number; b: number };
  topA: string[];
  /** Site a's rules that matched anything, as the snapshot counts them. */
  rulesA: { name: string; class?: string; packets: number; bytes: number; flows: number }[] | undefined;
}

function run(rules: readonly RuleSpec[] | undefined): Run {
  const w = new World({
    seed: SEED,
    links: [
      { name: 'mpls', delayMs: 15 },
      { name: 'inet', delayMs: 10, jitterMs: 2 },
    ],
    ...(rules ? { edge: { rules } } : {}),
  });
  // 20 ms voice-like packets, unmarked: Teams audio (client 50004 -> relay 3479), a web flow
  // (40000 -> 443) and a game-ish flow on a port near Teams' range (49999 -> 3477).
  const flows = [
    { flowId: 1, srcPort: 50004, dstPort: 3479 },
    { flowId: 2, srcPort: 40000, dstPort: 443 },
    { flowId: 3, srcPort: 49999, dstPort: 3477 },
  ];
  w.every(20, { startMs: 1000, count: PACKETS }, (seq) => {
    for (const f of flows) {
      w.a.sendTun(makePacket({ src: [10, 1, 0, 23], dst: [10, 2, 0, 9], srcPort: f.srcPort, dstPort: f.dstPort, dscp: 0, sizeBytes: 200, flowId: f.flowId, seq }));
      // The reply of each flow, from the far site (ports swapped), unmarked too.
      w.b.sendTun(makePacket({ src: [10, 2, 0, 9], dst: [10, 1, 0, 23], srcPort: f.dstPort, dstPort: f.srcPort, dscp: 0, sizeBytes: 200, flowId: 100 + f.flowId, seq }));
    }
  });
  w.runFor(1000 + PACKETS * 20 + 2000);
  const classes = (site: 'a' | 'b'): Record<string, number> =>
    Object.fromEntries(w[site].edge.snapshot(w.nowMs).classes.filter((c) => c.txPackets > 0).map((c) => [c.name, c.txPackets]));
  return {
    a: classes('a'),
    b: classes('b'),
    delivered: { a: w.a.deliveredCount, b: w.b.deliveredCount },
    topA: w.a.edge.snapshot(w.nowMs).topFlows.map((f) => `${f.flow} ${f.class}${f.rule !== undefined ? ` rule=${f.rule}` : ''}`),
    rulesA: w.a.edge.snapshot(w.nowMs).rules?.filter((r) => r.packets > 0),
  };
}

describe(`shipped catalogue classifies unmarked Teams media as voice (World, seed ${SEED})`, () => {
  it('voice counts the Teams flow at both sites; other unmarked flows stay default; without rules all is default', () => {
    const rules = expandRules(parseRules([{ catalogue: 'teams' }], 'test'), 'test');
    expect(rules.length).toBeGreaterThan(0);
    const withRules = run(rules);
    const without = run(undefined);
    console.log(`seed ${SEED} with teams catalogue: a tx by class ${JSON.stringify(withRules.a)}, b ${JSON.stringify(withRules.b)}; delivered a ${withRules.delivered.a} b ${withRules.delivered.b}`);
    console.log(`  top flows at a: ${withRules.topA.join('; ')}`);
    console.log(`seed ${SEED} without rules: a ${JSON.stringify(without.a)}, b ${JSON.stringify(without.b)}`);
    // Every packet reached the other side (clean links): counters are about real traffic.
    expect(withRules.delivered).toEqual({ a: 3 * PACKETS, b: 3 * PACKETS });
    // The branch's voice class is exactly the Teams flow; the other two flows are default.
    expect(withRules.a['voice']).toBe(PACKETS);
    expect(withRules.a['default']).toBe(2 * PACKETS);
    // The far site classifies the relay's replies (source port 3479) as voice as well.
    expect(withRules.b['voice']).toBe(PACKETS);
    expect(withRules.b['default']).toBe(2 * PACKETS);
    // The flows view names the rule that chose the class; flows classified by DSCP name none.
    const teamsFlow = withRules.topA.find((f) => f.includes(':50004 '));
    expect(teamsFlow).toMatch(/ voice rule=\S+$/);
    expect(withRules.topA.filter((f) => f.includes(' rule='))).toHaveLength(1);
    // Per-rule counters: one rule matched, its 500 packets of 200 bytes, in one flow.
    console.log(`  rules matched at a: ${JSON.stringify(withRules.rulesA)}`);
    expect(withRules.rulesA).toHaveLength(1);
    expect(withRules.rulesA![0]).toMatchObject({ class: 'voice', packets: PACKETS, bytes: 200 * PACKETS, flows: 1 });
    expect(teamsFlow).toContain(`rule=${withRules.rulesA![0]!.name}`);
    expect(without.rulesA).toBeUndefined();
    // Without the catalogue the same unmarked packets are default, all of them.
    expect(without.a['voice']).toBeUndefined();
    expect(without.a['default']).toBe(3 * PACKETS);
  }, 60_000);
});
