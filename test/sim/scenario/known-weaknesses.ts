/**
 * Expectations of shipped scenarios that fail today because of the Edge, not the scenario: each
 * reported with a diagnosis rather than loosened. scenarios.test.ts (default seed),
 * scenarios-seeds.test.ts (seeds 2-20) and issue16-scenarios.test.ts (seeds 1-20) check that
 * everything else passes and print what still fails; the many-seed files fail once an entry no
 * longer shows on any seed (so it gets removed). BRAID_STRICT_SCENARIOS=1 ignores the list.
 *
 * History: empty since all-degraded's voice stopped chasing SLAs round the links (84 moves -> 12
 * with seed 1; SLA re-entry now needs evidence gathered after the breach, and the least-bad path
 * is judged over the long window).
 */
export const KNOWN_EDGE_WEAKNESSES: Record<string, { failing: string[]; why: string }> = {
  'fec-repairable': {
    failing: ['voice.moves == 0'],
    why:
      'voice stays on the 3% path on 18 of 20 seeds since FEC credit is given for the m the adaptation would choose ' +
      '(was 3 of 20 at 70f420d, when credit needed parity already out) with the cap at 6x the SLA; it still moves on ' +
      'seeds 17 (20 moves) and 20 (10): a short-window reading above the 6% cap, and re-entry is judged raw so voice ' +
      'stays off. Residual loss after FEC is under 0.1% on all 20 seeds.',
  },
  'lte-jitter-storm': {
    failing: ['voice.p99_ms < 200', 'video.reroute_ms < 3000', 'bulk.delivered_ratio > 0.99'],
    why:
      'marginal on 3 of 20 seeds at ee7b7f6 and 70f420d (same figures): voice p99 218 ms (seed 5) and 210 ms ' +
      '(seed 11), the storm\'s 90 ms paretonormal tail until voice has moved (reroute 809 and 1208 ms there, 401-707 ms ' +
      'on most seeds); video reroute 3602 ms on seed 17 (the uplink\'s storm reads under video\'s 50 ms SLA for a while). ' +
      'Seeds 1-4 (the old CI set) pass. Since 3af457b (an unmeasured RTT scores last, not first) bulk delivered ' +
      '98.71% on seed 14 (bound 99%): bulk flows placed during the start-up second land on a different path; not triaged.',
  },
  'gray-failure': {
    failing: ['voice.moves <= 16'],
    why:
      'voice returns to mpls during the "just under" step (0.9% loss, RTT ~220 ms) because 125-300 packets of ' +
      're-entry evidence read under the 0.8% slack threshold by chance (P ~ 0.5 at a true 0.9%), then leaves ' +
      'again within ~1.5 s ("mpls loss 1.1% > 1.0%"): 24-48 moves on 16 of 20 seeds instead of <= 16 (seed 1: ' +
      'back at 38.9 s, out again at 40.3 s). Re-entry needs evidence that tells 0.9% from 0.8%, or a path that ' +
      'left must read under the slack over the long window as well (issue 16 "Gray failures").',
  },
};

/**
 * Runs `run(seed)` for each seed, prints one line of figures per seed, and returns what an
 * `expect` must hold: failures beyond the scenario's known weakness (must be empty) and whether
 * a listed known weakness showed at all (it must, or the entry is stale).
 */
export function judgeSeeds(
  name: string,
  seeds: readonly number[],
  run: (seed: number) => { text: string; actual: number | undefined; pass: boolean }[],
  strict: boolean,
): { unexpected: string[]; knownStale: boolean } {
  const fmt = (v: number | undefined): string => (v === undefined ? 'n/a' : Number.isFinite(v) ? String(+v.toPrecision(4)) : 'never');
  const known = strict ? undefined : KNOWN_EDGE_WEAKNESSES[name];
  const unexpected: string[] = [];
  let knownShown = 0;
  for (const seed of seeds) {
    const results = run(seed);
    console.log(`${name} seed ${seed}: ${results.map((e) => `${e.text.split(/\s+/)[0]}=${fmt(e.actual)}${e.pass ? '' : ' FAIL'}`).join(', ')}`);
    for (const e of results) {
      if (e.pass) continue;
      if (known?.failing.includes(e.text)) knownShown++;
      else unexpected.push(`${name} seed ${seed}: ${e.text} (actual ${fmt(e.actual)})`);
    }
  }
  if (known) console.warn(`KNOWN EDGE WEAKNESS in ${name}: ${known.why}\n  shown ${knownShown} times over seeds ${seeds[0]}-${seeds[seeds.length - 1]}`);
  return { unexpected, knownStale: known !== undefined && knownShown === 0 };
}
