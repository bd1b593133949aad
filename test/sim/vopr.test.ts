/**
 * VOPR (sim/vopr.ts): 200 random fabrics (a hub and 3-4 spokes with their own links, NAT,
 * restarts) from consecutive seeds, every invariant holding (wall time printed against a budget, not asserted); and the proof that the invariants bite: a planted bug (a byte flipped in one
 * decoded packet, or one packet delivered twice, wrapped around the Edge's pollDelivery by the
 * harness, never in src/core) is caught and its seed printed, and so is the real thing (netem
 * corruption and duplication reaching the sites when the overlay runs without AEAD).
 *
 * BRAID_VOPR_SEED=N starts the 200 at N (CI uses 1, so a failure reproduces with
 * `braid sim vopr --seed <printed seed>`).
 */
import { describe, expect, it } from 'vitest';
import { formatFailure, vopr, voprRun, DEFAULT_VOPR_CONFIG as BASE_CONFIG, LONG_VOPR_CONFIG, type VoprRunResult } from '../../sim/vopr.ts';
import { Peer } from '../../src/core/peer.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';

// What `braid sim vopr` injects: the addon's AEAD when it is built.
const AEAD = nativeAeadFactory()?.factory;
const DEFAULT_VOPR_CONFIG = { ...BASE_CONFIG, ...(AEAD ? { aead: AEAD } : {}) };

const FIRST_SEED = Number(process.env.BRAID_VOPR_SEED ?? 1);
const STRICT = process.env.BRAID_STRICT_VOPR === '1';

/**
 * Liveness failures the many-peer Endpoint causes today, reported to the lead with seeds rather
 * than hidden by a looser bound. A failing run is "known" only when every violation is a liveness
 * one and it carries the bug's signature; any other failure fails the test. When none shows in
 * the 200 default seeds, the test fails and asks for the entry to be removed.
 * BRAID_STRICT_VOPR=1 ignores the list.
 */
// The first entry that matches names a failure. Empty since 230f95f: "hub flow stuck on an
// endpoint-less path" (seeds 7, 10, 44, 48 fixed by 489f6c7; its slower variant, seed 129, by the
// hub learning a spoke from its initiation) and "a datagram of the previous epoch re-opens the
// dedupe window" (seeds 152, long 3; fixed by ec4b3eb) no longer show in seeds 1-200 nor in 20 long
// seeds. Add an entry (name, why with seeds, matches) for a new bug reported rather than fixed.
export const KNOWN_ENDPOINT_BUGS: { name: string; why: string; matches: (r: VoprRunResult) => boolean; allowsDups?: boolean; optional?: boolean }[] = [];

function knownBug(r: VoprRunResult): string | undefined {
  if (STRICT) return undefined;
  if (r.violations.every((v) => v.startsWith('liveness:') || v.startsWith('recovery:'))) return KNOWN_ENDPOINT_BUGS.find((b) => b.matches(r))?.name;
  if (!r.violations.every((v) => v.startsWith('liveness:') || v.startsWith('recovery:') || v.startsWith('no dups:'))) return undefined;
  return KNOWN_ENDPOINT_BUGS.find((b) => b.allowsDups === true && b.matches(r))?.name;
}
const RUNS = 200;
// Four or five Endpoints per world: ~0.2-0.55 s per seed on the shared 2-core box (two sites took ~0.3 s).
const BUDGET_MS = 200_000;

describe('VOPR', () => {
  it(`${RUNS} seeds from ${FIRST_SEED}: no corrupted, duplicated or misdelivered packet, every flow back within ${DEFAULT_VOPR_CONFIG.recoveryBoundMs} ms of the faults stopping (${DEFAULT_VOPR_CONFIG.restartRecoveryBoundMs} ms through a restarted site)`, () => {
    const known = new Map<string, number[]>();
    const summary = vopr({
      seed: FIRST_SEED,
      runs: RUNS,
      config: DEFAULT_VOPR_CONFIG,
      onRun: (r) => {
        if (r.ok) return;
        const bug = knownBug(r);
        if (bug === undefined) console.error(formatFailure(r));
        else known.set(bug, [...(known.get(bug) ?? []), r.seed]);
      },
    });
    for (const [bug, seeds] of known) console.warn(`KNOWN ENDPOINT BUG "${bug}": seeds ${seeds.join(', ')}`);
    console.log(
      `VOPR: ${summary.passed}/${summary.runs} seeds (${FIRST_SEED}..${FIRST_SEED + RUNS - 1}) passed in ${(summary.wallMs / 1000).toFixed(1)} s ` +
        `(${(summary.wallMs / RUNS).toFixed(0)} ms per seed; budget ${BUDGET_MS / 1000} s); ${summary.sent} packets sent, ${summary.delivered} delivered`,
    );
    expect(summary.failures.filter((f) => knownBug(f) === undefined).map((f) => `seed ${f.seed}: ${f.violations[0]}`)).toEqual([]);
    if (!STRICT && process.env.BRAID_VOPR_SEED === undefined) {
      for (const b of KNOWN_ENDPOINT_BUGS.filter((x) => x.optional !== true)) expect(known.has(b.name), `known Endpoint bug "${b.name}" no longer shows: remove it from KNOWN_ENDPOINT_BUGS`).toBe(true);
    }
    // The wall time is printed against the budget, never asserted: a test's verdict must not depend
    // on how loaded the box is (241 s on a box at load 10 today). Speed lives in bench/.
    if (summary.wallMs > BUDGET_MS) console.warn(`VOPR took ${(summary.wallMs / 1000).toFixed(1)} s, over its ${BUDGET_MS / 1000} s budget (a loaded box, or a slower World)`);
  }, 600_000);

  it('is deterministic: one seed, one world, one outcome', () => {
    const a = voprRun(4242, DEFAULT_VOPR_CONFIG);
    const b = voprRun(4242, DEFAULT_VOPR_CONFIG);
    expect(b.description).toBe(a.description);
    expect([b.sent, b.delivered, b.ok]).toEqual([a.sent, a.delivered, a.ok]);
  });

  for (const kind of ['flipByte', 'duplicate'] as const) {
    it(`catches a planted bug (${kind} in one decoded packet) and prints the seed that reproduces it`, () => {
      const buggy = FIRST_SEED + 2;
      const summary = vopr({ seed: FIRST_SEED, runs: 4, config: DEFAULT_VOPR_CONFIG, bug: { seed: buggy, kind } });
      const report = summary.failures.map(formatFailure).join('\n');
      console.log(report);
      expect(summary.failures.map((f) => f.seed)).toEqual([buggy]);
      expect(report).toContain(`VOPR seed ${buggy} FAILED`);
      expect(report).toContain(`braid sim vopr --seed ${buggy}`);
      expect(report).toMatch(kind === 'flipByte' ? /integrity: flow \d+ seq \d+ delivered corrupted at site b/ : /no dups: flow \d+ seq \d+ delivered twice at site b/);
    });
  }

  it('catches a planted regression of issue 14 finding 1 (the dedupe window kept across a peer epoch) within 200 seeds', () => {
    // The bug, planted from here (nothing in src/core knows): a new peer epoch keeps the old
    // duplicate-suppression window, so a restarted sender's renumbered duplicates (network control,
    // CS6, duplicated by default) are dropped until their numbers pass the old ones.
    const proto = Peer.prototype as unknown as { onPeerEpoch(this: { dedupe: unknown }, epoch: number): void };
    const original = proto.onPeerEpoch;
    let caught: VoprRunResult | undefined;
    let tried = 0;
    const start = performance.now();
    try {
      proto.onPeerEpoch = function (this: { dedupe: unknown }, epoch: number): void {
        const kept = this.dedupe;
        original.call(this, epoch);
        this.dedupe = kept;
      };
      for (let seed = FIRST_SEED; seed < FIRST_SEED + 200 && caught === undefined; seed++) {
        tried++;
        const r = voprRun(seed, DEFAULT_VOPR_CONFIG);
        if (r.violations.some((v) => /^(recovery|liveness): flow \d+ \(control,/.test(v))) {
          // Only a seed whose control flow is fine without the planted bug counts.
          proto.onPeerEpoch = original;
          const clean = voprRun(seed, DEFAULT_VOPR_CONFIG);
          proto.onPeerEpoch = function (this: { dedupe: unknown }, epoch: number): void {
            const kept = this.dedupe;
            original.call(this, epoch);
            this.dedupe = kept;
          };
          if (!clean.violations.some((v) => /\(control,/.test(v))) caught = r;
        }
      }
    } finally {
      proto.onPeerEpoch = original;
    }
    console.log(
      caught
        ? `planted finding-1 regression caught at seed ${caught.seed} (${tried} seeds tried from ${FIRST_SEED}, ${((performance.now() - start) / 1000).toFixed(1)} s):\n${formatFailure(caught)}`
        : `planted finding-1 regression NOT caught in ${tried} seeds`,
    );
    expect(caught).toBeDefined();
    expect(formatFailure(caught!)).toContain(`braid sim vopr --seed ${caught!.seed}`);
  }, 300_000);

  it('long form: seeds of 250 s of faults, each crossing two rekeys raced by restarts, under the adversary', () => {
    // A few seeds in CI (~2-8 s each on the shared box, bounded well under 60 s); `braid sim vopr --long --runs 20` runs more.
    const LONG_RUNS = Number(process.env.BRAID_VOPR_LONG_RUNS ?? 8);
    const config = { ...LONG_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) };
    const known = new Map<string, number[]>();
    const summary = vopr({
      seed: FIRST_SEED,
      runs: LONG_RUNS,
      config,
      onRun: (r) => {
        expect(r.description).toMatch(/restart \w \(rekey race\).*restart \w \(rekey race\)/);
        if (r.ok) return;
        const bug = knownBug(r);
        if (bug === undefined) console.error(formatFailure(r));
        else known.set(bug, [...(known.get(bug) ?? []), r.seed]);
      },
    });
    for (const [bug, seeds] of known) console.warn(`KNOWN ENDPOINT BUG "${bug}" (long form): seeds ${seeds.join(', ')}`);
    console.log(
      `VOPR long form: ${summary.passed}/${summary.runs} seeds (${FIRST_SEED}..${FIRST_SEED + LONG_RUNS - 1}) passed in ${(summary.wallMs / 1000).toFixed(1)} s ` +
        `(${(config.faultsMs / 1000).toFixed(0)} s of faults each); ${summary.sent} packets sent, ${summary.delivered} delivered`,
    );
    expect(summary.failures.filter((f) => knownBug(f) === undefined).map((f) => `seed ${f.seed}: ${f.violations[0]}`)).toEqual([]);
  }, 300_000);

  // Found by `braid sim vopr --long --seed 91000000 --runs 1500` (2026-12-07), both liveness:
  // 91000171: a spoke gave up handshaking with its hub 4 s after the heal (90 s of no answer, as
  //   WireGuard) and nothing called again: its LAN was quiet, and the restarted hub knew no spoke
  //   address (fixed: src/core/peer-roam.ts callAgain);
  // 91000240: a restarted spoke's flows to its hub delivered nothing after the heal: the hub read
  //   100% loss on its paths to it (the spoke's first "nothing received yet" report taken as the
  //   baseline; fixed: src/core/pathmon/path-stats.ts onPeerReport). Its paths also stayed down
  //   ~20 s counting only the idle hub's 2 s probes; counting our replies as well fixed that but
  //   lost liveness under the adversary in 2 of 200 other long seeds (93000118, 93000150), so
  //   that part stays open (src/core/peer-idle.ts, header).
  it.each([91000171, 91000240])('long-form regression seed %i passes', (seed) => {
    const r = voprRun(seed, { ...LONG_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) });
    expect(r.ok, formatFailure(r)).toBe(true);
  }, 120_000);

  // Found by `braid sim vopr --seed 94000000 --runs 600` (2026-12-07): the adversary raced copies of
  // spoke c's initiations into other hub links, twice; the hub answered only the copies and took the
  // real initiations for replays, and c waited REKEY_TIMEOUT each time: cut off 4 s past the heal
  // (fixed: src/core/crypto/peer-session.ts noteDuplicateSource).
  it('short-form regression seed 94000463 passes', () => {
    const r = voprRun(94000463, { ...DEFAULT_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) });
    expect(r.ok, formatFailure(r)).toBe(true);
  }, 120_000);

  // Found by `braid sim vopr --seed 96000000 --runs 1000` and `--long --seed 97000000 --runs 200`
  // (2026-12-07): a spoke without a working session (96000889: never made, both initiations lost in
  // the faults; 97000092: expired while its rekeys went unanswered) retried every REKEY_TIMEOUT and
  // delivered again only 4.6-4.9 s past the heal (fixed: NO_SESSION_RETRY_MS, crypto/constants.ts).
  it('short-form regression seed 96000889 passes', () => {
    const r = voprRun(96000889, { ...DEFAULT_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) });
    expect(r.ok, formatFailure(r)).toBe(true);
  }, 120_000);

  it('long-form regression seed 97000092 passes', () => {
    const r = voprRun(97000092, { ...LONG_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) });
    expect(r.ok, formatFailure(r)).toBe(true);
  }, 120_000);

  // 99000318, found by `braid sim vopr --long --seed 99000100 --runs 300` (2026-12-07, with the 2 s
  // retry): spoke e restarted between the hub's voice packet (FEC group of k = 1, flushed 20 ms later) and
  // its parity; the parity went out on the new session, and the new e rebuilt from it the packet its
  // previous life had delivered (fixed: FecEncoder.abandon at a session change, peer-tx.ts).
  // 99100119, found by `braid sim vopr --long --seed 99100000 --runs 150` (2026-12-07): spoke c's voice sat on a
  // path that went DOWN while c's other paths were DOWN too; the one that came back was outside
  // voice's SLA, and a recovered path took only flows within their SLA, so voice stayed on the dead
  // path (fixed: steering.ts onPathRecovered; test/sim/world-recovery.test.ts shows it alone).
  it.each([99000318, 99100119])('long-form regression seed %i passes', (seed) => {
    const r = voprRun(seed, { ...LONG_VOPR_CONFIG, ...(AEAD ? { aead: AEAD } : {}) });
    expect(r.ok, formatFailure(r)).toBe(true);
  }, 120_000);

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
