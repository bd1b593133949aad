/**
 * VOPR (sim/vopr.ts): 200 random worlds from consecutive seeds, every invariant holding, in under
 * two minutes; and the proof that the invariants bite: a planted bug (a byte flipped in one
 * decoded packet, or one packet delivered twice, wrapped around the Edge's pollDelivery by the
 * harness, never in src/core) is caught and its seed printed, and so is the real thing (netem
 * corruption and duplication reaching the sites when the overlay runs without AEAD).
 *
 * BRAID_VOPR_SEED=N starts the 200 at N (CI uses 1, so a failure reproduces with
 * `braid sim vopr --seed <printed seed>`).
 */
import { describe, expect, it } from 'vitest';
import { formatFailure, vopr, voprRun, DEFAULT_VOPR_CONFIG } from '../../sim/vopr.ts';

const FIRST_SEED = Number(process.env.BRAID_VOPR_SEED ?? 1);
const RUNS = 200;
const BUDGET_MS = 120_000;

describe('VOPR', () => {
  it(`${RUNS} seeds from ${FIRST_SEED}: no corrupted, duplicated or misdelivered packet, every flow back within ${DEFAULT_VOPR_CONFIG.recoveryBoundMs} ms of the faults stopping`, () => {
    const summary = vopr({
      seed: FIRST_SEED,
      runs: RUNS,
      onRun: (r) => {
        if (!r.ok) console.error(formatFailure(r));
      },
    });
    console.log(
      `VOPR: ${summary.passed}/${summary.runs} seeds (${FIRST_SEED}..${FIRST_SEED + RUNS - 1}) passed in ${(summary.wallMs / 1000).toFixed(1)} s ` +
        `(${(summary.wallMs / RUNS).toFixed(0)} ms per seed; budget ${BUDGET_MS / 1000} s); ${summary.sent} packets sent, ${summary.delivered} delivered`,
    );
    expect(summary.failures.map((f) => `seed ${f.seed}: ${f.violations[0]}`)).toEqual([]);
    expect(summary.wallMs).toBeLessThan(BUDGET_MS);
  }, 240_000);

  it('is deterministic: one seed, one world, one outcome', () => {
    const a = voprRun(4242);
    const b = voprRun(4242);
    expect(b.description).toBe(a.description);
    expect([b.sent, b.delivered, b.ok]).toEqual([a.sent, a.delivered, a.ok]);
  });

  for (const kind of ['flipByte', 'duplicate'] as const) {
    it(`catches a planted bug (${kind} in one decoded packet) and prints the seed that reproduces it`, () => {
      const buggy = FIRST_SEED + 2;
      const summary = vopr({ seed: FIRST_SEED, runs: 4, bug: { seed: buggy, kind } });
      const report = summary.failures.map(formatFailure).join('\n');
      console.log(report);
      expect(summary.failures.map((f) => f.seed)).toEqual([buggy]);
      expect(report).toContain(`VOPR seed ${buggy} FAILED`);
      expect(report).toContain(`braid sim vopr --seed ${buggy}`);
      expect(report).toMatch(kind === 'flipByte' ? /integrity: flow \d+ seq \d+ delivered corrupted at site b/ : /no dups: flow \d+ seq \d+ delivered twice at site b/);
    });
  }

  it('catches the real thing: without AEAD, netem corruption and duplication reach the sites', () => {
    const config = { ...DEFAULT_VOPR_CONFIG, insecurePlaintext: true };
    const failures = [];
    for (let seed = 1; seed <= 40 && failures.length < 3; seed++) {
      const r = voprRun(seed, config);
      if (!r.ok) failures.push(r);
    }
    console.log(failures.map((f) => `seed ${f.seed} (plaintext): ${f.violations[0]}`).join('\n'));
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.flatMap((f) => f.violations).some((v) => /^(integrity|no dups):/.test(v))).toBe(true);
  }, 60_000);
});
