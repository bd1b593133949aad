/**
 * Every shipped scenario in virtual time (DESIGN.md "Simulator"): its report is printed, and its
 * expectations must pass.
 *
 * KNOWN_EDGE_WEAKNESSES lists expectations that fail today because of the Edge, not the
 * scenario: they were reported with a diagnosis rather than loosened. For those, the test checks
 * that everything else passes and prints what still fails; when one starts to pass, the test
 * fails and asks for the entry to be removed. BRAID_STRICT_SCENARIOS=1 ignores the list.
 */
import { describe, expect, it } from 'vitest';
import { reportJson, reportText } from '../../../sim/scenario/report.ts';
import { runVirtual } from '../../../sim/scenario/run-virtual.ts';
import { listScenarios, loadScenario } from '../../../sim/scenario/schema.ts';
import { nativeAeadFactory } from '../../../src/io/native-aead.ts';

// The AEAD `braid sim run` injects (the addon's when built), so reports match the CLI's.
const AEAD = nativeAeadFactory()?.factory;
const WITH_AEAD = AEAD ? { aead: AEAD } : {};

const SEED = process.env.BRAID_SEED === undefined ? undefined : Number(process.env.BRAID_SEED);
const STRICT = process.env.BRAID_STRICT_SCENARIOS === '1';

// Empty since all-degraded's voice stopped chasing SLAs round the links (84 moves -> 12 with
// seed 1; SLA re-entry now needs evidence gathered after the breach, and the least-bad path is
// judged over the long window). Keep the mechanism for the next weakness a scenario finds.
export const KNOWN_EDGE_WEAKNESSES: Record<string, { failing: string[]; why: string }> = {};

describe(`shipped scenarios in virtual time${SEED === undefined ? '' : ` (seed ${SEED})`}`, () => {
  for (const name of listScenarios()) {
    it(`${name} passes its expectations`, () => {
      const scenario = loadScenario(name);
      const { report } = runVirtual(scenario, SEED === undefined ? WITH_AEAD : { ...WITH_AEAD, seed: SEED });
      console.log(reportText(report));
      const known = STRICT ? undefined : KNOWN_EDGE_WEAKNESSES[name];
      const failing = report.expectations.filter((e) => !e.pass).map((e) => e.text);
      if (!known) {
        expect(failing, `${name} (seed ${report.seed}): failed expectations`).toEqual([]);
        return;
      }
      console.warn(`KNOWN EDGE WEAKNESS in ${name}: ${known.why}\n  still failing: ${failing.join('; ') || 'nothing'}`);
      expect(failing.filter((f) => !known.failing.includes(f)), `${name} (seed ${report.seed}): failed expectations beyond the known Edge weakness`).toEqual([]);
      // With another seed a known weakness may just not show; with the default seed it must.
      if (SEED === undefined) expect(failing.length, `${name}: the known Edge weakness is fixed: remove it from KNOWN_EDGE_WEAKNESSES`).toBeGreaterThan(0);
    }, 120_000);
  }

  // One seed can hide a marginal expectation (lte-jitter-storm's video passed on seed 1 while the
  // uplink's storm read under video's SLA on 5 of 16 seeds). Three more seeds per scenario in CI;
  // `BRAID_SEED=N` runs the whole file on another.
  if (SEED === undefined) {
    it('every shipped scenario also passes on seeds 2, 3 and 4', () => {
      const failing: string[] = [];
      for (const name of listScenarios()) {
        for (const seed of [2, 3, 4]) {
          const { report } = runVirtual(loadScenario(name), { ...WITH_AEAD, seed });
          for (const e of report.expectations) if (!e.pass) failing.push(`${name} seed ${seed}: ${e.text} (actual ${e.actual})`);
        }
      }
      expect(failing).toEqual([]);
    }, 240_000);
  }

  it('is deterministic: the same seed gives the same report', () => {
    const scenario = loadScenario('mpls-blackout');
    // Wall-clock figures (and the first-run-in-process speed note) are not part of determinism.
    const strip = (j: Record<string, unknown>): Record<string, unknown> => ({
      ...j,
      wallMs: 0,
      speedup: 0,
      notes: (j['notes'] as string[] | undefined)?.filter((n) => !n.startsWith('speed:')),
    });
    const one = strip(reportJson(runVirtual(scenario, { ...WITH_AEAD, seed: 7 }).report));
    const two = strip(reportJson(runVirtual(scenario, { ...WITH_AEAD, seed: 7 }).report));
    expect(two).toEqual(one);
  }, 120_000);
});
