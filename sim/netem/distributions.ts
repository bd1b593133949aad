/**
 * netem's delay distribution tables, generated in process exactly as iproute2 generates its
 * `normal.dist`, `pareto.dist` and `paretonormal.dist` (netem/normal.c, pareto.c, paretonormal.c,
 * taken by iproute2 from NIST Net).
 *
 * Why tables and not Box-Muller: the kernel draws one (possibly correlated) uniform number and
 * uses it as an index into a table of the inverse CDF. Sampling the same way keeps netem's
 * quirks (truncated tails, the slightly negative mean of the normal table, pareto's cap at
 * +4 sigma) and makes correlation act on the table index the way netem intends.
 *
 * A table entry t stands for t / NETEM_DIST_SCALE standard units: delay = mu + sigma * t / 8192.
 */
export type TableDistribution = 'normal' | 'pareto' | 'paretonormal';

/** linux/pkt_sched.h NETEM_DIST_SCALE: table entries are in units of sigma / 8192. */
export const NETEM_DIST_SCALE = 8192;

/** Entries in each generated table (iproute2's TABLESIZE 16384, sampled every 4th). */
export const NETEM_TABLE_ENTRIES = 4096;

const TABLESIZE = 16384;
const SHRT_MIN = -32768;
const SHRT_MAX = 32767;
const PARETO_ALPHA = 3.0;

const cache = new Map<TableDistribution, Int16Array>();

/** The table for a distribution; generated once per process (a few milliseconds), then cached. */
export function distributionTable(distribution: TableDistribution): Int16Array {
  let table = cache.get(distribution);
  if (table === undefined) {
    table = generate(distribution);
    cache.set(distribution, table);
  }
  return table;
}

/** Mean and standard deviation of a table, in units of sigma. */
export function tableMoments(table: Int16Array): { mean: number; std: number } {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < table.length; i++) {
    const v = table[i]! / NETEM_DIST_SCALE;
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / table.length;
  return { mean, std: Math.sqrt(sumSq / table.length - mean * mean) };
}

function generate(distribution: TableDistribution): Int16Array {
  switch (distribution) {
    case 'normal': {
      const inv = normalInverseTable();
      const out = new Int16Array(NETEM_TABLE_ENTRIES);
      for (let i = 0, n = 0; i < TABLESIZE; i += 4) out[n++] = clampShort(rint(inv[i]! * NETEM_DIST_SCALE));
      return out;
    }
    case 'pareto': {
      const out = new Int16Array(NETEM_TABLE_ENTRIES);
      let n = 0;
      for (let i = 65536; i > 0; i -= 16) {
        let dvalue = i / 65536;
        dvalue = 1.0 / Math.pow(dvalue, 1.0 / PARETO_ALPHA);
        dvalue -= 1.5;
        dvalue *= (4.0 / 3.0) * NETEM_DIST_SCALE;
        if (dvalue > SHRT_MAX) dvalue = SHRT_MAX;
        out[n++] = rint(dvalue);
      }
      return out;
    }
    case 'paretonormal': {
      // Not a mixture: the sum of the two quantile functions at the same probability,
      // 0.25 * normal + 0.75 * pareto, with C's truncating integer division.
      const inv = normalInverseTable();
      const out = new Int16Array(NETEM_TABLE_ENTRIES);
      for (let i = 0, n = 0; i < TABLESIZE; i += 4) {
        const normvalue = rint(inv[i]! * NETEM_DIST_SCALE);
        const parvalue = paretoValue(i);
        out[n++] = clampShort(Math.trunc((normvalue + 3 * parvalue) / 4));
      }
      return out;
    }
  }
}

function paretoValue(index: number): number {
  const i = 65536 - 4 * index;
  let dvalue = i / 65536;
  dvalue = 1.0 / Math.pow(dvalue, 1.0 / PARETO_ALPHA);
  dvalue -= 1.5;
  dvalue *= (4.0 / 3.0) * NETEM_DIST_SCALE;
  if (dvalue > SHRT_MAX) dvalue = SHRT_MAX;
  return rint(dvalue);
}

/**
 * table[i] = the last x (stepping from -10 by 0.00005) whose normal CDF rounds to i / 16384.
 * The same floating-point walk as normal.c, so the same x values come out.
 */
let normalInverse: Float64Array | undefined;

function normalInverseTable(): Float64Array {
  if (normalInverse !== undefined) return normalInverse;
  const table = new Float64Array(TABLESIZE + 1);
  const sqrt2 = Math.sqrt(2.0);
  for (let x = -10.0; x < 10.05; x += 0.00005) {
    const i = rint(TABLESIZE * (0.5 + 0.5 * erf(x / sqrt2)));
    table[i] = x;
  }
  normalInverse = table;
  return table;
}

function clampShort(v: number): number {
  return v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v;
}

/** C rint() in the default rounding mode: round half to even (Math.round rounds half up). */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// erf() ported from musl/FreeBSD msun s_erf.c, the fdlibm code glibc's erf also derives from, so
// the table walk above lands on the same indices as iproute2's generator compiled against libm.
// Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved. Developed at SunSoft, a Sun
// Microsystems, Inc. business. Permission to use, copy, modify, and distribute this software is
// freely granted, provided that this notice is preserved.
const erx = 8.45062911510467529297e-1;
const efx8 = 1.02703333676410069053e0;
const pp0 = 1.28379167095512558561e-1;
const pp1 = -3.25042107247001499370e-1;
const pp2 = -2.84817495755985104766e-2;
const pp3 = -5.77027029648944159157e-3;
const pp4 = -2.37630166566501626084e-5;
const qq1 = 3.97917223959155352819e-1;
const qq2 = 6.50222499887672944485e-2;
const qq3 = 5.08130628187576562776e-3;
const qq4 = 1.32494738004321644526e-4;
const qq5 = -3.96022827877536812320e-6;
const pa0 = -2.36211856075265944077e-3;
const pa1 = 4.14856118683748331666e-1;
const pa2 = -3.72207876035701323847e-1;
const pa3 = 3.18346619901161753674e-1;
const pa4 = -1.10894694282396677476e-1;
const pa5 = 3.54783043256182359371e-2;
const pa6 = -2.16637559486879084300e-3;
const qa1 = 1.06420880400844228286e-1;
const qa2 = 5.40397917702171048937e-1;
const qa3 = 7.18286544141962662868e-2;
const qa4 = 1.26171219808761642112e-1;
const qa5 = 1.36370839120290507362e-2;
const qa6 = 1.19844998467991074170e-2;
const ra0 = -9.86494403484714822705e-3;
const ra1 = -6.93858572707181764372e-1;
const ra2 = -1.05586262253232909814e1;
const ra3 = -6.23753324503260060396e1;
const ra4 = -1.62396669462573470355e2;
const ra5 = -1.84605092906711035994e2;
const ra6 = -8.12874355063065934246e1;
const ra7 = -9.81432934416914548592e0;
const sa1 = 1.96512716674392571292e1;
const sa2 = 1.37657754143519042600e2;
const sa3 = 4.34565877475229228821e2;
const sa4 = 6.45387271733267880336e2;
const sa5 = 4.29008140027567833386e2;
const sa6 = 1.08635005541779435134e2;
const sa7 = 6.57024977031928170135e0;
const sa8 = -6.04244152148580987438e-2;
const rb0 = -9.86494292470009928597e-3;
const rb1 = -7.99283237680523006574e-1;
const rb2 = -1.77579549177547519889e1;
const rb3 = -1.60636384855821916062e2;
const rb4 = -6.37566443368389627722e2;
const rb5 = -1.02509513161107724954e3;
const rb6 = -4.83519191608651397019e2;
const sb1 = 3.03380607434824582924e1;
const sb2 = 3.25792512996573918826e2;
const sb3 = 1.53672958608443695994e3;
const sb4 = 3.19985821950859553908e3;
const sb5 = 2.55305040643316442583e3;
const sb6 = 4.74528541206955367215e2;
const sb7 = -2.24409524465858183362e1;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// Index of the high 32-bit word of a double in the typed-array view (little-endian hosts: 1).
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

function highWord(x: number): number {
  f64[0] = x;
  return u32[HI]!;
}

function clearLowWord(x: number): number {
  f64[0] = x;
  u32[1 - HI] = 0;
  return f64[0]!;
}

function erfc2(ix: number, x: number): number {
  if (ix < 0x3ff40000) {
    // 0.84375 <= |x| < 1.25
    const s = Math.abs(x) - 1;
    const P = pa0 + s * (pa1 + s * (pa2 + s * (pa3 + s * (pa4 + s * (pa5 + s * pa6)))));
    const Q = 1 + s * (qa1 + s * (qa2 + s * (qa3 + s * (qa4 + s * (qa5 + s * qa6)))));
    return 1 - erx - P / Q;
  }
  x = Math.abs(x);
  const s = 1 / (x * x);
  let R: number;
  let S: number;
  if (ix < 0x4006db6d) {
    // 1.25 <= |x| < 1/.35
    R = ra0 + s * (ra1 + s * (ra2 + s * (ra3 + s * (ra4 + s * (ra5 + s * (ra6 + s * ra7))))));
    S = 1 + s * (sa1 + s * (sa2 + s * (sa3 + s * (sa4 + s * (sa5 + s * (sa6 + s * (sa7 + s * sa8)))))));
  } else {
    // 1/.35 <= |x| < 28
    R = rb0 + s * (rb1 + s * (rb2 + s * (rb3 + s * (rb4 + s * (rb5 + s * rb6)))));
    S = 1 + s * (sb1 + s * (sb2 + s * (sb3 + s * (sb4 + s * (sb5 + s * (sb6 + s * sb7))))));
  }
  const z = clearLowWord(x);
  return (Math.exp(-z * z - 0.5625) * Math.exp((z - x) * (z + x) + R / S)) / x;
}

/** The error function, accurate to about 1 ulp (fdlibm). */
export function erf(x: number): number {
  const hx = highWord(x);
  const sign = hx >>> 31 === 1;
  const ix = hx & 0x7fffffff;
  if (ix >= 0x7ff00000) {
    // erf(nan) = nan, erf(+-inf) = +-1
    return 1 - 2 * (sign ? 1 : 0) + 1 / x;
  }
  if (ix < 0x3feb0000) {
    // |x| < 0.84375
    if (ix < 0x3e300000) return 0.125 * (8 * x + efx8 * x);
    const z = x * x;
    const r = pp0 + z * (pp1 + z * (pp2 + z * (pp3 + z * pp4)));
    const s = 1 + z * (qq1 + z * (qq2 + z * (qq3 + z * (qq4 + z * qq5))));
    const y = r / s;
    return x + x * y;
  }
  const y = ix < 0x40180000 ? 1 - erfc2(ix, x) : 1 - 2.2250738585072014e-308;
  return sign ? -y : y;
}
