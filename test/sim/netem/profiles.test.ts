import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { distributionTable } from '../../../sim/netem/distributions.ts';
import { NetemEngine, type NetemDeparture } from '../../../sim/netem/engine.ts';
import { findLinkProfile, LinkProfileError, loadLinkProfile, loadLinkProfiles, parseLinkProfile } from '../../../sim/netem/profiles.ts';
import { formatNetemSpec, parseNetemSpec, type NetemSpec } from '../../../sim/netem/spec.ts';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';
import { expectedDelay, expectedLoss, pct, relativeError, runSpaced, TestRng, wireBytes, type TestPacket } from './helpers.ts';

const SEED = Number(process.env.BRAID_SEED ?? 20261127);
const profiles = loadLinkProfiles();

function log(line: string): void {
  console.log(`[netem seed ${SEED}] ${line}`);
}

describe('shipped link profiles load and are consistent', () => {
  it('has the eight link kinds', () => {
    expect(profiles.map((p) => p.name)).toEqual(['5g', 'cable', 'dsl', 'fibre', 'geo-satellite', 'leo-satellite', 'lte', 'mpls']);
  });

  for (const p of profiles) {
    it(`${p.name}: capacity fits the netem rate, specs print back to themselves`, () => {
      expect(['primary', 'overflow', 'backup']).toContain(p.costTier);
      expect(p.description.length).toBeGreaterThan(10);
      // Equal, or shaped below the line (dsl up: 80% of sync, for ATM cell overhead).
      expect(p.bandwidthBps.up).toBeLessThanOrEqual(p.up.rate!.rateBps);
      expect(p.bandwidthBps.up).toBeGreaterThanOrEqual(p.up.rate!.rateBps * 0.75);
      expect(p.bandwidthBps.down).toBeLessThanOrEqual(p.down.rate!.rateBps);
      expect(p.bandwidthBps.down).toBeGreaterThanOrEqual(p.down.rate!.rateBps * 0.75);
      for (const spec of [p.up, p.down]) {
        expect(parseNetemSpec(formatNetemSpec(spec))).toStrictEqual(spec);
        // Delays stay positive (netem would send a negative-delay packet at once, skewing the mean):
        // the most negative table entry times the jitter is below the delay.
        const d = spec.delay!;
        const lowestSigma = d.distribution === 'uniform' ? -1 : Math.min(...distributionTable(d.distribution)) / 8192;
        expect(d.delayMs + lowestSigma * d.jitterMs).toBeGreaterThan(0);
        // netem's limit counts packets in the delay line too: it must hold a bandwidth-delay
        // product of 256-byte packets plus 50 ms of queue, or the limit, not the rate, caps the link.
        const bdpPackets = (spec.rate!.rateBps * (d.delayMs + 4 * d.jitterMs + 50)) / 1000 / 8 / 256;
        expect(spec.limitPackets).toBeGreaterThanOrEqual(bdpPackets);
      }
    });
  }

  it('findLinkProfile finds by name and names the choices when it cannot', () => {
    expect(findLinkProfile('lte').bandwidthBps.down).toBe(40_000_000);
    let error: unknown;
    try {
      findLinkProfile('isdn');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BraidError);
    expect((error as BraidError).oneLine()).toMatch(/^no link profile "isdn" in .*; fix: use one of 5g, cable, dsl, fibre, geo-satellite, leo-satellite, lte, mpls$/);
  });
});

describe('link profile errors: one line, naming the field and the fix', () => {
  const good = {
    name: 'lte',
    description: 'test link',
    costTier: 'backup',
    bandwidthBps: { up: 10_000_000, down: 40_000_000 },
    up: 'delay 25ms rate 10mbit',
    down: 'delay 25ms rate 40mbit',
  };
  const yaml = (o: Record<string, unknown>): string => JSON.stringify(o); // JSON is YAML
  const cases: Array<[string, string, string]> = [
    ['a typo in a field name', yaml({ ...good, descriptoin: 'x' }), 'lte.yaml: descriptoin: unknown field; fix: remove it or fix its spelling (fields: name, description, costTier, bandwidthBps, up, down)'],
    ['a missing field', yaml({ ...good, costTier: undefined }), 'lte.yaml: costTier: missing; expected primary, overflow or backup'],
    ['a bad cost tier', yaml({ ...good, costTier: 'cheap' }), 'lte.yaml: costTier: expected primary, overflow or backup, got "cheap"'],
    ['a bandwidth as text', yaml({ ...good, bandwidthBps: { up: '10mbit', down: 1 } }), 'lte.yaml: bandwidthBps.up: expected bits per second, a number like 20000000, got "10mbit"'],
    ['a bad netem spec', yaml({ ...good, up: 'delay 25xs' }), 'lte.yaml: up: netem: "delay 25xs": expected a time like 10ms at token "25xs"'],
    ['a bandwidth above the line rate', yaml({ ...good, down: 'rate 20mbit' }), 'lte.yaml: down: bandwidthBps.down 40000000 is above the line rate 20mbit; fix: set bandwidthBps.down to at most 20000000 or the rate to at least 40mbit'],
    ['a name that is not the file name', yaml({ ...good, name: 'lte2' }), 'lte.yaml: name: "lte2" differs from the file name "lte"; fix: rename one to match the other'],
    ['a name with capitals', yaml({ ...good, name: 'LTE' }), 'lte.yaml: name: expected lowercase letters, digits and "-", like "leo-satellite", got "LTE"'],
    ['broken YAML', 'name: [lte', 'lte.yaml: not valid YAML'],
    ['not a mapping', '- a\n- b\n', 'lte.yaml: expected a mapping with name, description, costTier, bandwidthBps, up, down'],
  ];
  for (const [what, text, message] of cases) {
    it(what, () => {
      let error: unknown;
      try {
        parseLinkProfile(text, 'profiles/links/lte.yaml');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LinkProfileError);
      const e = error as LinkProfileError;
      expect(e.code).toBe(ErrorCode.CONFIG_INVALID);
      expect(e.oneLine()).not.toContain('\n');
      expect(e.oneLine()).toMatch(/^profiles\/links\/lte\.yaml:\d+:\d+: /); // FILE:LINE:COLUMN
      expect(e.oneLine().replace(/^(\S+?\.yaml):\d+:\d+:/, '$1:')).toContain(message);
    });
  }

  it('loads from files, and an unreadable path is an error too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'brt-profiles-'));
    try {
      writeFileSync(join(dir, 'lte.yaml'), yaml(good));
      expect(loadLinkProfile(join(dir, 'lte.yaml')).up.delay?.delayMs).toBe(25);
      expect(loadLinkProfiles(dir).map((p) => p.name)).toEqual(['lte']);
      expect(() => loadLinkProfile(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml: cannot read: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Loss statistics need many packets when loss is rare and bursty: the estimate's relative
 * standard error is sqrt(inflation / (n p)), inflation about 2b - 1 for bursts of mean b.
 * 1000 "effective losses" puts 10% at about 3.2 standard errors.
 */
function packetsFor10Percent(spec: NetemSpec): number {
  const want = expectedLoss(spec);
  return Math.max(200_000, Math.ceil((1000 * want.inflation) / want.lossRatio));
}

describe(`shipped link profiles: engine statistics match the spec (seed ${SEED})`, () => {
  const sizeBytes = 1000;
  for (const p of profiles) {
    for (const direction of ['up', 'down'] as const) {
      const spec = p[direction];
      it(`${p.name} ${direction}: mean delay within 2%, jitter within 10%, loss as expected`, () => {
        const want = expectedDelay(spec, sizeBytes);
        const d = spec.delay!;
        // One packet in flight at a time, so only the spec shapes the delay (no queueing behind
        // a rate-limited predecessor).
        const spacingMs = d.delayMs + 12 * d.jitterMs + want.meanMs;
        const packets = 200_000;
        const m = runSpaced(spec, { packets, spacingMs, sizeBytes, seed: SEED });
        const loss = expectedLoss(spec);
        // At 200k packets rare losses cannot resolve 10%: allow 4 standard errors here; the
        // dedicated runs below check every loss model to 10%.
        const se = Math.sqrt((loss.inflation * loss.lossRatio * (1 - loss.lossRatio)) / packets) / loss.lossRatio;
        const lossTolerance = Math.max(0.1, 4 * se);
        log(
          `${p.name} ${direction} "${formatNetemSpec(spec)}": n=${packets} ` +
            `mean ${m.meanDelayMs.toFixed(3)} ms (spec ${want.meanMs.toFixed(3)}, err ${pct(relativeError(m.meanDelayMs, want.meanMs))}), ` +
            `std ${m.stdDelayMs.toFixed(3)} ms (spec ${want.stdMs.toFixed(3)}, err ${pct(relativeError(m.stdDelayMs, want.stdMs), 2)}), ` +
            `loss ${pct(m.lossRatio)} (spec ${pct(loss.lossRatio)}, err ${pct(relativeError(m.lossRatio, loss.lossRatio), 1)}, allowed ${pct(lossTolerance, 0)})`,
        );
        expect(relativeError(m.meanDelayMs, want.meanMs)).toBeLessThan(0.02);
        expect(relativeError(m.stdDelayMs, want.stdMs)).toBeLessThan(0.1);
        expect(relativeError(m.lossRatio, loss.lossRatio)).toBeLessThan(lossTolerance);
      });

      it(`${p.name} ${direction}: saturated, throughput is the netem rate within 2%`, () => {
        const rate = spec.rate!;
        const wire = wireBytes(1500, rate);
        const spacingMs = (wire * 8 * 1000) / rate.rateBps / 1.25;
        const e = new NetemEngine<TestPacket>(spec, new TestRng(SEED));
        const bytes = new Uint8Array(1500);
        const departures: number[] = [];
        const out: Array<NetemDeparture<TestPacket>> = [];
        for (let i = 0; i < 20_000; i++) {
          e.poll(i * spacingMs, out);
          e.enqueue(i * spacingMs, { bytes, seq: i });
        }
        e.poll(Number.MAX_VALUE, out);
        for (const dep of out) departures.push(dep.departMs);
        // Skip the first quarter: until the backlog outgrows the jitter, the link idles now and then.
        const from = departures.length >> 2;
        const throughputBps = ((departures.length - 1 - from) * wire * 8 * 1000) / (departures[departures.length - 1]! - departures[from]!);
        const goodputBps = (throughputBps * 1500) / wire;
        log(`${p.name} ${direction}: throughput ${(throughputBps / 1e6).toFixed(3)} Mbit/s on the wire, ${(goodputBps / 1e6).toFixed(3)} Mbit/s of 1500-byte packets (rate ${rate.rateBps / 1e6} Mbit/s)`);
        expect(relativeError(throughputBps, rate.rateBps)).toBeLessThan(0.02);
      });
    }
  }

  // Every distinct loss model among the profiles, with enough packets to resolve 10%.
  const lossModels = new Map<string, { spec: NetemSpec; users: string[] }>();
  for (const p of profiles) {
    for (const direction of ['up', 'down'] as const) {
      const key = JSON.stringify(p[direction].loss);
      const entry = lossModels.get(key) ?? { spec: p[direction], users: [] };
      entry.users.push(`${p.name} ${direction}`);
      lossModels.set(key, entry);
    }
  }
  for (const { spec, users } of lossModels.values()) {
    const lossText = formatNetemSpec({ limitPackets: 1000, ecn: false, ...(spec.loss === undefined ? {} : { loss: spec.loss }) });
    it(`"${lossText}" (${users.join(', ')}): loss within 10% relative, Gilbert bursts within 15%`, () => {
      const packets = packetsFor10Percent(spec);
      // Loss is decided before the delay: spacing the packets far apart keeps the engine's queue
      // at one packet and the run fast.
      const m = runSpaced(spec, { packets, spacingMs: 1000, sizeBytes: 200, seed: SEED + 1 });
      const want = expectedLoss(spec);
      log(
        `"${lossText}": n=${packets} loss ${pct(m.lossRatio)} (spec ${pct(want.lossRatio)}, err ${pct(relativeError(m.lossRatio, want.lossRatio), 2)}), ` +
          `mean burst ${m.meanBurstPackets.toFixed(3)}${want.meanBurstPackets === undefined ? '' : ` (spec ${want.meanBurstPackets.toFixed(3)}, err ${pct(relativeError(m.meanBurstPackets, want.meanBurstPackets), 2)})`}`,
      );
      expect(relativeError(m.lossRatio, want.lossRatio)).toBeLessThan(0.1);
      if (spec.loss?.model === 'gemodel' && want.meanBurstPackets !== undefined) {
        expect(relativeError(m.meanBurstPackets, want.meanBurstPackets)).toBeLessThan(0.15);
      }
    });
  }
});
