import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { distributionTable, erf, NETEM_TABLE_ENTRIES, rint, tableMoments } from '../../../sim/netem/distributions.ts';

/** Where distros install iproute2's generated tables. */
const TC_LIB_DIRS = ['/usr/lib/tc', '/usr/lib/x86_64-linux-gnu/tc', '/usr/lib/aarch64-linux-gnu/tc', '/usr/lib64/tc', '/usr/share/tc'];
const tcLib = TC_LIB_DIRS.find((d) => existsSync(`${d}/normal.dist`));

function readDist(path: string): number[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join(' ')
    .trim()
    .split(/\s+/)
    .map(Number);
}

/** Acklam's inverse normal CDF (relative error < 1.2e-9): an independent check on the table walk. */
function inverseNormal(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

describe('netem distribution tables', () => {
  it.skipIf(tcLib === undefined)(`equal iproute2's installed tables entry for entry (${tcLib ?? 'none installed'})`, () => {
    for (const name of ['normal', 'pareto', 'paretonormal'] as const) {
      const installed = readDist(`${tcLib}/${name}.dist`);
      expect(installed).toHaveLength(NETEM_TABLE_ENTRIES);
      expect(Array.from(distributionTable(name)), name).toEqual(installed);
    }
  });

  it('normal: entry k is the inverse normal CDF at (4k + 0.5) / 16384, in units of 1/8192', () => {
    const table = distributionTable('normal');
    for (let k = 1; k < NETEM_TABLE_ENTRIES; k++) {
      // The generator walks x in steps of 0.00005 (0.41 table units), so allow one unit.
      expect(Math.abs(table[k]! - inverseNormal((4 * k + 0.5) / 16384) * 8192)).toBeLessThanOrEqual(1);
    }
    expect(table[0]).toBe(-32768); // -4.01 sigma, clamped to a short
  });

  it('pareto: (u^(-1/3) - 1.5) * 4/3, capped at 4 sigma; paretonormal is a quarter normal plus three quarters pareto', () => {
    const pareto = distributionTable('pareto');
    const normal = distributionTable('normal');
    const paretonormal = distributionTable('paretonormal');
    for (let k = 0; k < NETEM_TABLE_ENTRIES; k++) {
      const u = (65536 - 16 * k) / 65536;
      expect(pareto[k]).toBe(Math.min(32767, rint((u ** (-1 / 3) - 1.5) * (4 / 3) * 8192)));
      // Normal entries before clamping differ from `normal` only at the clamped first entry.
      if (k > 0) expect(Math.abs(paretonormal[k]! - Math.trunc((normal[k]! + 3 * pareto[k]!) / 4))).toBeLessThanOrEqual(0);
    }
  });

  it('moments, in sigma units, that the engine statistics tests rely on', () => {
    const m = Object.fromEntries((['normal', 'pareto', 'paretonormal'] as const).map((d) => [d, tableMoments(distributionTable(d))]));
    console.log(`[netem] table moments: ${JSON.stringify(m)}`);
    expect(m.normal!.mean).toBeCloseTo(0, 2);
    expect(m.normal!.std).toBeCloseTo(1, 3);
    expect(m.pareto!.std).toBeGreaterThan(0.8);
    expect(m.pareto!.std).toBeLessThan(0.85);
  });

  it('erf matches known values to 1e-15 and rint rounds half to even', () => {
    const known: Array<[number, number]> = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [1.5, 0.9661051464753108],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [-1, -0.8427007929497149],
    ];
    for (const [x, want] of known) expect(Math.abs(erf(x) - want)).toBeLessThan(1e-15);
    expect(erf(10)).toBe(1);
    expect([rint(0.5), rint(1.5), rint(2.5), rint(-0.5), rint(-1.5), rint(2.4), rint(-2.6)]).toEqual([0, 2, 2, -0, -2, 2, -3]);
  });
});
