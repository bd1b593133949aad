/**
 * Pure TypeScript Reed-Solomon over GF(2^8), wire-compatible with the reed-solomon-erasure crate
 * (and Backblaze JavaReedSolomon / klauspost/reedsolomon, which it ports).
 *
 * Field: GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11D), generator 2.
 * Code: systematic. V is the (k+m) x k Vandermonde matrix V[r][c] = r^c (with 0^0 = 1); the coding
 * matrix is E = V * inverse(V[0..k-1]), whose top k rows are the identity (data goes out
 * unchanged) and whose bottom m rows give parity: parity[r] = sum_c E[k+r][c] * data[c]. Any k
 * rows of E are linearly independent, so any k shards determine the data: take k present shards,
 * invert the k x k matrix of their rows, and multiply.
 *
 * Why keep this beside the wasm build: the crate as packaged rebuilds and inverts its matrix on
 * every call (ReedSolomon::new inside `encode`), ~22 us of fixed cost per group measured here;
 * this version caches the coding matrix per (k, m) and pays only the per-byte work. Measure both
 * with bench/fec.ts; parity is byte-identical (test/core/fec/codec.test.ts checks it).
 */
import type { ErasureCodec } from './codec.ts';
import { codecArgsValid } from './codec.ts';
import { FEC_MAX_K, FEC_MAX_M } from './limits.ts';

const FIELD_POLY = 0x11d;

/** EXP[i] = 2^i, doubled so EXP[LOG[a] + LOG[b]] needs no modulo. */
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= FIELD_POLY;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}

/** MUL[(a << 8) | b] = a * b: 64 KiB, one table load per byte in the hot loops. */
const MUL = new Uint8Array(256 * 256);
for (let a = 1; a < 256; a++) {
  for (let b = 1; b < 256; b++) MUL[(a << 8) | b] = EXP[LOG[a]! + LOG[b]!]!;
}

export function gfMul(a: number, b: number): number {
  return MUL[((a & 0xff) << 8) | (b & 0xff)]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return EXP[255 - LOG[a]!]!;
}

/** a^n as the crate defines it: n = 0 gives 1 (also for a = 0), else 0^n = 0. */
function gfExp(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a]! * n) % 255]!;
}

/** Inverts the n x n row-major matrix `a` in place into `out`; false when singular. */
function invert(a: Uint8Array, n: number, out: Uint8Array): boolean {
  out.fill(0, 0, n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * n + col] === 0) pivot++;
    if (pivot === n) return false;
    if (pivot !== col) {
      for (let j = 0; j < n; j++) {
        const t = a[col * n + j]!;
        a[col * n + j] = a[pivot * n + j]!;
        a[pivot * n + j] = t;
        const u = out[col * n + j]!;
        out[col * n + j] = out[pivot * n + j]!;
        out[pivot * n + j] = u;
      }
    }
    const scale = gfInv(a[col * n + col]!);
    for (let j = 0; j < n; j++) {
      a[col * n + j] = gfMul(a[col * n + j]!, scale);
      out[col * n + j] = gfMul(out[col * n + j]!, scale);
    }
    for (let r = 0; r < n; r++) {
      const f = a[r * n + col]!;
      if (r === col || f === 0) continue;
      for (let j = 0; j < n; j++) {
        a[r * n + j] ^= gfMul(f, a[col * n + j]!);
        out[r * n + j] ^= gfMul(f, out[col * n + j]!);
      }
    }
  }
  return true;
}

/**
 * The m x k parity rows of the coding matrix (row-major): E[k..k+m-1]. Exported for tests.
 */
export function parityMatrix(k: number, m: number): Uint8Array {
  const top = new Uint8Array(k * k);
  for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) top[r * k + c] = gfExp(r, c);
  const topInv = new Uint8Array(k * k);
  // Rows 0..k-1 evaluate at distinct points 0..k-1: the Vandermonde top is always invertible.
  if (!invert(top, k, topInv)) throw new Error(`Vandermonde top of k=${k} is singular`);
  const out = new Uint8Array(m * k);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < k; c++) {
      let acc = 0;
      for (let j = 0; j < k; j++) acc ^= gfMul(gfExp(k + r, j), topInv[j * k + c]!);
      out[r * k + c] = acc;
    }
  }
  return out;
}

// ---- Hot loops ----------------------------------------------------------------------------
//
// One table load per byte either way, but reading and writing 4 bytes per step through Int32Array
// views is ~3x faster in V8 than byte-wise read-modify-write (measured 0.85 vs 2.7 ns/byte on the
// bench machine), so shards whose byteOffset is 4-aligned go through 32-bit views. The recombined
// word puts each product back at the byte position it came from, so this is endian-neutral. Views
// are cached per Uint8Array object: FEC passes the same recycled buffers every time.

const wordViews = new WeakMap<Uint8Array, Int32Array>();

function wordsOf(b: Uint8Array): Int32Array | undefined {
  if ((b.byteOffset & 3) !== 0) return undefined;
  let w = wordViews.get(b);
  if (w === undefined) {
    w = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
    wordViews.set(b, w);
  }
  return w;
}

/** out[0..len) = c * inp[0..len) (xor = false) or out[0..len) ^= c * inp[0..len) (xor = true). */
function mulRegion(out: Uint8Array, inp: Uint8Array, c: number, len: number, xor: boolean): void {
  if (c === 0) {
    if (!xor) out.fill(0, 0, len);
    return;
  }
  const base = c << 8;
  let done = 0;
  const ow = wordsOf(out);
  const iw = ow === undefined ? undefined : wordsOf(inp);
  if (ow !== undefined && iw !== undefined) {
    const words = len >>> 2;
    if (xor) {
      for (let w = 0; w < words; w++) {
        const v = iw[w]!;
        ow[w] ^=
          MUL[base | (v & 0xff)]! |
          (MUL[base | ((v >>> 8) & 0xff)]! << 8) |
          (MUL[base | ((v >>> 16) & 0xff)]! << 16) |
          (MUL[base | (v >>> 24)]! << 24);
      }
    } else {
      for (let w = 0; w < words; w++) {
        const v = iw[w]!;
        ow[w] =
          MUL[base | (v & 0xff)]! |
          (MUL[base | ((v >>> 8) & 0xff)]! << 8) |
          (MUL[base | ((v >>> 16) & 0xff)]! << 16) |
          (MUL[base | (v >>> 24)]! << 24);
      }
    }
    done = words << 2;
  }
  if (xor) for (let x = done; x < len; x++) out[x] ^= MUL[base | inp[x]!]!;
  else for (let x = done; x < len; x++) out[x] = MUL[base | inp[x]!]!;
}

/** A GF(2^8) Reed-Solomon codec in TypeScript. Each instance caches parity matrices per (k, m). */
export function createGf256Codec(): ErasureCodec {
  // Indexed by k * (FEC_MAX_M + 1) + m; at most 32 x 32 entries of <= 1 KiB, made on first use.
  const matrices: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>((FEC_MAX_K + 1) * (FEC_MAX_M + 1));
  // Scratch for reconstruct, sized for the largest k, reused across calls.
  const sub = new Uint8Array(FEC_MAX_K * FEC_MAX_K);
  const inv = new Uint8Array(FEC_MAX_K * FEC_MAX_K);
  const chosen = new Int32Array(FEC_MAX_K);

  function matrixFor(k: number, m: number): Uint8Array {
    const key = k * (FEC_MAX_M + 1) + m;
    let mat = matrices[key];
    if (mat === undefined) {
      mat = parityMatrix(k, m);
      matrices[key] = mat;
    }
    return mat;
  }

  return {
    name: 'gf256-ts',

    encode(shards, k, m, shardBytes) {
      if (!codecArgsValid(shards, k, m, shardBytes, undefined)) return false;
      const mat = matrixFor(k, m);
      for (let r = 0; r < m; r++) {
        const out = shards[k + r]!;
        mulRegion(out, shards[0]!, mat[r * k]!, shardBytes, false);
        for (let c = 1; c < k; c++) mulRegion(out, shards[c]!, mat[r * k + c]!, shardBytes, true);
      }
      return true;
    },

    reconstruct(shards, present, k, m, shardBytes) {
      if (!codecArgsValid(shards, k, m, shardBytes, present)) return false;
      const n = k + m;
      let missingData = 0;
      for (let i = 0; i < k; i++) if (present[i] === 0) missingData++;
      if (missingData === 0) return true;
      // The first k present shards, in index order (any k would do; this matches the crate).
      let count = 0;
      for (let i = 0; i < n && count < k; i++) if (present[i] !== 0) chosen[count++] = i;
      if (count < k) return false;
      const mat = matrixFor(k, m);
      for (let r = 0; r < k; r++) {
        const idx = chosen[r]!;
        for (let c = 0; c < k; c++) {
          sub[r * k + c] = idx < k ? (idx === c ? 1 : 0) : mat[(idx - k) * k + c]!;
        }
      }
      if (!invert(sub, k, inv)) return false;
      // data[i] = sum_j inv[i][j] * shards[chosen[j]], for each missing data shard i.
      for (let i = 0; i < k; i++) {
        if (present[i] !== 0) continue;
        const out = shards[i]!;
        mulRegion(out, shards[chosen[0]!]!, inv[i * k]!, shardBytes, false);
        for (let j = 1; j < k; j++) mulRegion(out, shards[chosen[j]!]!, inv[i * k + j]!, shardBytes, true);
      }
      return true;
    },
  };
}
