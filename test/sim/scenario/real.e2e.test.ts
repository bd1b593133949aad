/**
 * The MPLS-blackout scenario in real time (root): two `braid up` processes with TUN devices in
 * network namespaces, the WAN links through a third namespace impaired by the detected backend
 * (tc netem where the kernel has sch_netem, else one userspace relay per link), real UDP voice and
 * video from traffic agents, iperf3 TCP for bulk. Its report must pass the scenario's
 * expectations and agree with the virtual-time report of the same scenario within:
 *
 *   detection time            +-300 ms
 *   voice time to reroute     +-300 ms
 *   voice longest gap         +-500 ms
 *   voice lost in the switch  +-60 packets (+-0.3 s of 4 calls both ways)
 *   voice and video loss      +-2 percentage points
 *
 * Skipped with a printed reason when not root; CI runs as root. Namespaces are brt-simrt-*.
 */
import { describe, expect, it } from 'vitest';
import { isRoot } from '../../../sim/netns.ts';
import { parseNetemSpec } from '../../../sim/netem/spec.ts';
import { reportText, type ScenarioReport } from '../../../sim/scenario/report.ts';
import { runReal, tcCommandsFor } from '../../../src/io/realtime/run-real.ts';
import { runVirtual } from '../../../sim/scenario/run-virtual.ts';
import { loadScenario } from '../../../sim/scenario/schema.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/sim/scenario/real.e2e.test.ts (real-time run): needs root (network namespaces, TUN); CI runs it as root');

const TOLERANCE = { detectionMs: 300, rerouteMs: 300, maxGapMs: 500, lostDuringSwitch: 60, lossRatio: 0.02 };

function classOf(r: ScenarioReport, name: string): ScenarioReport['classes'][number] {
  const c = r.classes.find((x) => x.className === name);
  if (!c) throw new Error(`no class ${name} in the report`);
  return c;
}

describe('tc backend commands', () => {
  it('puts the up direction on the WAN namespace interface towards b, the down direction towards a', () => {
    const topo = { r: { ns: 'brt-x-r', links: [{ name: 'mpls', toA: 'ra0', toB: 'rb0', aAddress: '10.200.1.1', bAddress: '10.210.1.2', tun: 'brtxr0', table: 100 }] } };
    const spec = parseNetemSpec('delay 15ms 500us distribution normal loss 0.05% rate 20mbit');
    expect(tcCommandsFor(topo, 0, 'up', spec)).toEqual([['tc', '-n', 'brt-x-r', 'qdisc', 'replace', 'dev', 'rb0', 'root', 'netem', 'delay', '15ms', '500us', 'distribution', 'normal', 'loss', '0.05%', 'rate', '20mbit']]);
    expect(tcCommandsFor(topo, 0, 'down', parseNetemSpec('loss 100%'))[0]!.slice(0, 8)).toEqual(['tc', '-n', 'brt-x-r', 'qdisc', 'replace', 'dev', 'ra0', 'root']);
  });
});

describe.skipIf(!ROOT)('mpls-blackout in real time agrees with virtual time', () => {
  it('passes its expectations in both, within the stated tolerances', async () => {
    const scenario = loadScenario('mpls-blackout');
    const virtual = runVirtual(scenario).report;
    const real = await runReal(scenario, { tag: 'simrt', onProgress: (line) => console.log(line) });
    console.log(reportText(virtual));
    console.log(reportText(real));
    console.log(`real-time backend: ${real.backend}`);
    const rows: Array<[string, number | undefined, number | undefined, number]> = [
      ['detection ms', virtual.events[0]!.detectionMs, real.events[0]!.detectionMs, TOLERANCE.detectionMs],
      ['voice reroute ms', classOf(virtual, 'voice').rerouteMs, classOf(real, 'voice').rerouteMs, TOLERANCE.rerouteMs],
      ['voice max gap ms', classOf(virtual, 'voice').maxGapMs, classOf(real, 'voice').maxGapMs, TOLERANCE.maxGapMs],
      ['voice lost during switch', classOf(virtual, 'voice').lostDuringSwitch, classOf(real, 'voice').lostDuringSwitch, TOLERANCE.lostDuringSwitch],
      ['voice loss ratio', classOf(virtual, 'voice').lossRatio, classOf(real, 'voice').lossRatio, TOLERANCE.lossRatio],
      ['video loss ratio', classOf(virtual, 'video').lossRatio, classOf(real, 'video').lossRatio, TOLERANCE.lossRatio],
    ];
    console.log(rows.map(([what, v, r, tol]) => `${what.padEnd(26)} virtual ${v?.toFixed(3)}  real ${r?.toFixed(3)}  (tolerance ${tol})`).join('\n'));
    expect(virtual.expectations.filter((e) => !e.pass).map((e) => e.text), 'virtual expectations').toEqual([]);
    expect(real.expectations.filter((e) => !e.pass).map((e) => e.text), 'real-time expectations').toEqual([]);
    for (const [what, v, r, tol] of rows) {
      expect(v, `${what}: virtual`).toBeDefined();
      expect(r, `${what}: real`).toBeDefined();
      expect(Math.abs(r! - v!), `${what}: virtual ${v} vs real ${r}`).toBeLessThanOrEqual(tol);
    }
    expect(['tc', 'userspace']).toContain(real.backend);
    expect(real.notes[0]).toMatch(/^netem backend: (tc|userspace)/);
  }, 180_000);
});
