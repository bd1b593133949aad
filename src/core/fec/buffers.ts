/**
 * Shard buffers for the FEC encoder and decoder, and the group checksum computed over them.
 *
 * Hot path (DESIGN.md): every protected data packet is copied once into a shard buffer (the
 * encoder keeps a copy for parity, the decoder keeps one in case a sibling is lost). These
 * buffers are recycled instead of allocated per packet, and carry a 32-bit word view made once,
 * so the checksum reads 4 bytes per step without building a view per call.
 */
import { FEC_MAX_SHARD_BYTES, FEC_MIN_BUFFER_BYTES } from './limits.ts';

/** A recyclable shard buffer: `bytes` and `words` view the same memory, offset 0. */
export interface ShardBuffer {
  /** Capacity is a power of two >= FEC_MIN_BUFFER_BYTES, so always a multiple of 4. */
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
}

/** Capacity class for a shard of `minBytes`: the next power of two, at least FEC_MIN_BUFFER_BYTES. */
export function bufferCapacityFor(minBytes: number): number {
  let cap = FEC_MIN_BUFFER_BYTES;
  while (cap < minBytes) cap *= 2;
  return cap;
}

export function newShardBuffer(minBytes: number): ShardBuffer {
  const cap = bufferCapacityFor(minBytes);
  const ab = new ArrayBuffer(cap);
  return { bytes: new Uint8Array(ab), words: new Int32Array(ab) };
}

/** Size classes 2 KiB .. 64 KiB (FEC_MAX_SHARD_BYTES rounds up to 64 KiB). */
const CLASS_COUNT = Math.log2(bufferCapacityFor(FEC_MAX_SHARD_BYTES) / FEC_MIN_BUFFER_BYTES) + 1;

function classOf(capacityBytes: number): number {
  return Math.log2(capacityBytes / FEC_MIN_BUFFER_BYTES);
}

/**
 * Free lists of shard buffers under a byte budget that counts every buffer the pool made and has
 * not forgotten (lent out or free), so a peer sending jumbo shards cannot make us hold more than
 * the budget. acquire() returns undefined when the budget is spent; the caller evicts and retries.
 */
export class ShardPool {
  private readonly free: ShardBuffer[][] = [];
  /** Bytes of all buffers this pool made that are lent out or in a free list. */
  private allocatedBytes = 0;

  constructor(readonly budgetBytes: number) {
    if (!(Number.isInteger(budgetBytes) && budgetBytes >= bufferCapacityFor(FEC_MAX_SHARD_BYTES))) {
      throw new RangeError(`ShardPool budget ${budgetBytes} must hold at least one largest shard`);
    }
    for (let i = 0; i < CLASS_COUNT; i++) this.free.push([]);
  }

  get bytesAllocated(): number {
    return this.allocatedBytes;
  }

  acquire(minBytes: number): ShardBuffer | undefined {
    const cap = bufferCapacityFor(minBytes);
    const list = this.free[classOf(cap)]!;
    const reused = list.pop();
    if (reused !== undefined) return reused;
    // Forget free buffers of other sizes before refusing: they only cost budget while idle.
    for (let c = CLASS_COUNT - 1; c >= 0 && this.allocatedBytes + cap > this.budgetBytes; c--) {
      const l = this.free[c]!;
      while (l.length > 0 && this.allocatedBytes + cap > this.budgetBytes) {
        l.pop();
        this.allocatedBytes -= FEC_MIN_BUFFER_BYTES << c;
      }
    }
    if (this.allocatedBytes + cap > this.budgetBytes) return undefined;
    this.allocatedBytes += cap;
    return newShardBuffer(cap);
  }

  release(buf: ShardBuffer): void {
    this.free[classOf(buf.bytes.length)]!.push(buf);
  }
}

// ---- Group checksum ------------------------------------------------------------------------
//
// Reed-Solomon is an erasure code: it cannot tell a wrong shard from a right one, so one bad
// parity shard (a sender bug, a group id reused after a restart, a stale group mixed with a new
// one) would make the decoder "recover" garbage. Each parity frame therefore carries a 32-bit
// checksum of the group's id, its k packet lengths and its k data shards (zero-padded); the
// decoder recomputes it over received + recovered shards and delivers nothing when it differs.
// The id is in it so a self-consistent frame filed under the wrong group cannot pass; the lengths
// because padding is zeros: [1, 0] with length 2 and [1] with length 1 pad to the same shard.
//
// Definition (both edges must agree):
//   mix(h, w) = rotl32((h ^ w) * 0x01000193, 13)     (the rotate brings high bits down; a plain
//                                                     FNV multiply only carries upward)
//   s = 0x811c9dc5 ^ (k << 16) ^ shardBytes, then s = mix(s, w) for w = groupId, lengths[0..k-1]
//   four lanes h_l = s ^ (l * 0x9e3779b9), l = 0..3
//   each data shard, in index order, zero-padded to a multiple of 16 bytes and read as
//   little-endian uint32 words w[0..]: for each 4-word block b, h_l = mix(h_l, w[4b + l])
//   result = fmix32(mix(mix(mix(mix(s, h0), h1), h2), h3))   (fmix32 from murmur3)
// Four independent lanes because one mix chain is latency-bound (imul then rotate, every word
// waiting on the last); measured in bench/fec.ts as fec-checksum-k8.

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LANE_SALT = 0x9e3779b9;

/** Bytes of a shard the checksum reads: shardBytes rounded up to a 16-byte block. Callers zero
 *  everything past the packet up to here. */
export function checksumPaddedBytes(shardBytes: number): number {
  return (shardBytes + 15) & ~15;
}

function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mix(h0: number, w: number): number {
  const h = Math.imul(h0 ^ w, 0x01000193);
  return (h << 13) | (h >>> 19);
}

function seed(groupId: number, lengths: ArrayLike<number>, k: number, shardBytes: number): number {
  let h = mix(0x811c9dc5 ^ (k << 16) ^ shardBytes, groupId);
  for (let i = 0; i < k; i++) h = mix(h, lengths[i]!);
  return h;
}

function finish(s: number, h0: number, h1: number, h2: number, h3: number): number {
  return fmix32(mix(mix(mix(mix(s, h0), h1), h2), h3));
}

/**
 * Checksum of data shards 0..k-1 held in shard buffers, with their packet lengths. Precondition:
 * in each buffer, bytes from the packet's length up to checksumPaddedBytes(shardBytes) are zero.
 */
export function shardBuffersChecksum(
  groupId: number,
  lengths: ArrayLike<number>,
  bufs: readonly ShardBuffer[],
  k: number,
  shardBytes: number,
): number {
  const s = seed(groupId, lengths, k, shardBytes);
  if (!HOST_LITTLE_ENDIAN) {
    // Big-endian host (s390x): the word view would read the other byte order; use the spec path.
    return bytesLanes(s, bufs.map((b) => b.bytes), k, shardBytes);
  }
  const wordCount = checksumPaddedBytes(shardBytes) >>> 2;
  let h0 = s ^ 0;
  let h1 = s ^ LANE_SALT;
  let h2 = s ^ Math.imul(2, LANE_SALT);
  let h3 = s ^ Math.imul(3, LANE_SALT);
  for (let i = 0; i < k; i++) {
    const w = bufs[i]!.words;
    // mix() inlined by hand: this loop is the checksum's whole cost.
    for (let j = 0; j < wordCount; j += 4) {
      h0 = Math.imul(h0 ^ w[j]!, 0x01000193);
      h1 = Math.imul(h1 ^ w[j + 1]!, 0x01000193);
      h2 = Math.imul(h2 ^ w[j + 2]!, 0x01000193);
      h3 = Math.imul(h3 ^ w[j + 3]!, 0x01000193);
      h0 = (h0 << 13) | (h0 >>> 19);
      h1 = (h1 << 13) | (h1 >>> 19);
      h2 = (h2 << 13) | (h2 >>> 19);
      h3 = (h3 << 13) | (h3 >>> 19);
    }
  }
  return finish(s, h0, h1, h2, h3);
}

/**
 * The same checksum straight from the definition, over the packets themselves (any alignment;
 * bytes past a packet's end count as zero), lengths being the packets' lengths. States the
 * definition for tests; shardBytes must be max(1, longest packet).
 */
export function bytesChecksum(groupId: number, packets: readonly Uint8Array[], k: number, shardBytes: number): number {
  const lengths: number[] = [];
  for (let i = 0; i < k; i++) lengths.push(packets[i]!.length);
  return bytesLanes(seed(groupId, lengths, k, shardBytes), packets, k, shardBytes);
}

function bytesLanes(s: number, shards: readonly Uint8Array[], k: number, shardBytes: number): number {
  const h = [s ^ 0, s ^ LANE_SALT, s ^ Math.imul(2, LANE_SALT), s ^ Math.imul(3, LANE_SALT)];
  const wordCount = checksumPaddedBytes(shardBytes) >>> 2;
  for (let i = 0; i < k; i++) {
    const b = shards[i]!;
    const n = Math.min(b.length, shardBytes);
    for (let j = 0; j < wordCount; j++) {
      const o = j * 4;
      const w =
        (o < n ? b[o]! : 0) |
        (o + 1 < n ? b[o + 1]! << 8 : 0) |
        (o + 2 < n ? b[o + 2]! << 16 : 0) |
        (o + 3 < n ? b[o + 3]! << 24 : 0);
      h[j & 3] = mix(h[j & 3]!, w);
    }
  }
  return finish(s, h[0]!, h[1]!, h[2]!, h[3]!);
}
