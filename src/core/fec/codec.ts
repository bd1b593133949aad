/**
 * The erasure codec behind FEC: systematic Reed-Solomon over GF(2^8), k data + m parity shards.
 *
 * Two implementations share this interface and produce byte-identical parity (same field,
 * polynomial 0x11D, and the same Vandermonde-derived systematic matrix as the
 * `reed-solomon-erasure` crate / Backblaze / klauspost), so two edges may use different ones:
 *   - createRsCodec(wasm)   the reed-solomon-erasure crate compiled to WebAssembly
 *                           (@subspace/reed-solomon-erasure.wasm), DESIGN.md's choice; rs-wasm.ts
 *   - createGf256Codec()    pure TypeScript, caches matrices per (k, m); gf256.ts
 * The wasm bytes are read by the I/O shell (the core reads no files), see rs-wasm.ts.
 *
 * Shard layout contract, shared by encode and reconstruct:
 *   - 1 <= k <= FEC_MAX_K, 1 <= m <= FEC_MAX_M, 1 <= shardBytes <= FEC_MAX_SHARD_BYTES;
 *   - shards.length >= k + m; shard i of the group is shards[i]; only its first shardBytes bytes
 *     are read or written, so callers pass recycled buffers larger than the shard (no views made);
 *   - data shards shorter than shardBytes must be zero-padded by the caller up to shardBytes.
 * Neither method throws: bad arguments or an internal fault return false.
 */
import { FEC_MAX_K, FEC_MAX_M, FEC_MAX_SHARD_BYTES } from './limits.ts';

export interface ErasureCodec {
  /** For logs and benchmarks ("rs-wasm", "gf256-ts"). */
  readonly name: string;
  /**
   * Computes parity shards k..k+m-1 from data shards 0..k-1. Every shards[i], i < k + m, must have
   * length >= shardBytes. Returns false (parity unspecified) on bad arguments or a codec fault.
   */
  encode(shards: readonly Uint8Array[], k: number, m: number, shardBytes: number): boolean;
  /**
   * Rebuilds, in place, every data shard i < k with present[i] === 0 from any k present shards.
   * Present shards and all data shards must have length >= shardBytes; an absent parity shard may
   * be any array (it is neither read nor written). Parity shards are not rebuilt. Returns false
   * when fewer than k shards are present or on bad arguments (absent data shards unspecified).
   */
  reconstruct(shards: readonly Uint8Array[], present: Uint8Array, k: number, m: number, shardBytes: number): boolean;
}

/** True when (k, m, shardBytes) are within the codec contract and the shards fit it. */
export function codecArgsValid(
  shards: readonly Uint8Array[],
  k: number,
  m: number,
  shardBytes: number,
  present: Uint8Array | undefined,
): boolean {
  if (!Number.isInteger(k) || k < 1 || k > FEC_MAX_K) return false;
  if (!Number.isInteger(m) || m < 1 || m > FEC_MAX_M) return false;
  if (!Number.isInteger(shardBytes) || shardBytes < 1 || shardBytes > FEC_MAX_SHARD_BYTES) return false;
  const n = k + m;
  if (shards.length < n) return false;
  if (present !== undefined && present.length < n) return false;
  for (let i = 0; i < n; i++) {
    const needed = present === undefined ? true : i < k || present[i] !== 0;
    if (needed && shards[i]!.length < shardBytes) return false;
  }
  return true;
}
