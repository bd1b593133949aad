/**
 * Expectations of shipped scenarios that fail today because of the Edge, not the scenario: each
 * reported with a diagnosis rather than loosened. scenarios.test.ts (default seed),
 * scenarios-seeds.test.ts (seeds 2-20) and issue16-scenarios.test.ts (seeds 1-20) check that
 * everything else passes and print what still fails; the many-seed files fail once an entry no
 * longer shows on any seed (so it gets removed). BRAID_STRICT_SCENARIOS=1 ignores the list.
 *
 * History: empty since all-degraded's voice stopped chasing SLAs round the links (84 moves -> 12
 * with seed 1; SLA re-entry now needs evidence gathered after the breach, and the least-bad path
 * is judged over the long window). gray-failure removed at 43dec84 (24-48 voice moves on 16 of 20
 * seeds -> 16 on all 20: SLA exit and re-entry on confidence bounds); fec-repairable removed with
 * the FEC credit judged on sure loss (seeds 17 and 20 left mpls on a 6-7% early reading of 3%).
 * hub-and-branches removed when a path's cost tier became the worse of its two links' (the peer
 * announces its tier in its hello): seed 6's hub moved a b2 business flow onto the path to b2's
 * backup LTE, which it took for a path as good as any, its own end being inet.
 */
export const KNOWN_EDGE_WEAKNESSES: Record<string, { failing: string[]; why: string }> = {
  'lte-jitter-storm': {
    failing: ['voice.p99_ms < 200', 'video.reroute_ms < 3000', 'bulk.delivered_ratio > 0.99'],
    why:
      'voice p99 marginal: the storm\'s 90 ms paretonormal tail reaches the calls until voice has moved on both ' +
      'sides, and p99 straddles the 200 ms bound (p99 146-250 ms over seeds 1-20; which seeds fail moves with ' +
      'any change to the run). At c6d2169+1 it fails on seeds 4, 11, 13, 19 (p99 250, 214, 208, 206 ms; 16 of 20 ' +
      'pass, 17 of 20 at 5678fa9). Reroute takes 0.6-1.7 s: the storm\'s late packets read 3-5% "loss" in its first ' +
      'half second, a loss exit now needs sure evidence (docs/STEERING.md; a jump from a clean 9 s counts at 99% ' +
      'over the last second), else voice moves on jitter, which must hold ~1.5 s. Video reroute hit 3000 ms on ' +
      'seed 6 at c6d2169 (1.5-2 s since). Bulk delivered 98.71% on seed 14 at 5678fa9 (bulk flows placed during ' +
      'the start-up second), 99.4-100% on every seed since.',
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
