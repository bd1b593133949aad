/**
 * FecDecoder: recovers lost data packets of one peer's FEC groups from parity.
 *
 * Pipeline, per frame:
 *   data     caller delivers the packet at once (never held here), then onData(): the decoder
 *            keeps a copy in case a sibling is lost; when parity already told it the group's
 *            shape and this makes k shards, the missing packets are rebuilt and returned
 *   parity   onParity(): validated field by field and against the group (k, m, lengths,
 *            checksum, sizes must agree with everything seen so far), stored, and as soon as any k
 *            of the k+m shards are in, the missing data packets are rebuilt and returned
 *   verify   rebuilt shards must have zero padding past their packet's length and the group's
 *            data must match the checksum the sender put in every parity frame; else nothing
 *            is delivered and the group is given up (counted malformed)
 *   retire   a group that is complete, recovered, given up, expired (expireMs after its first
 *            frame) or evicted (maxGroups) releases its buffers and leaves a tombstone: its id and
 *            which data indices were delivered, so a late copy of a recovered packet is a
 *            duplicate (isDelivered) and late parity cannot bring the group back
 *
 * Guarantees: never throws on any frame content; never returns a packet that was received or
 * already recovered; never returns bytes that fail the checksum. Every drop is a counter.
 *
 * Caller pattern (Edge):
 *   if (dec.isDelivered(g, i)) count duplicate; else { deliver(packet); for (r of dec.onData(...)) deliver(r.packet) }
 *   for (r of dec.onParity(now, frame)) deliver(r.packet)
 * isDelivered matters with multipath: a packet late on a slow path is often rebuilt from parity
 * first, and the crypto replay window cannot catch the late original (it has its own counter).
 *
 * Buffer contract: onData and onParity copy what they keep; the caller may reuse its buffers on
 * return. Recovered packets are fresh arrays owned by the caller.
 */
import type { ErasureCodec } from './codec.ts';
import type { ParityFields } from '../wire/codec.ts';
import { ShardPool, checksumPaddedBytes, shardBuffersChecksum, type ShardBuffer } from './buffers.ts';
import {
  FEC_DEFAULT_DECODER_BUDGET_BYTES,
  FEC_DEFAULT_EXPIRE_MS,
  FEC_DEFAULT_MAX_GROUPS,
  FEC_DEFAULT_TOMBSTONES,
  FEC_MAX_GROUPS_LIMIT,
  FEC_MAX_K,
  FEC_MAX_M,
  FEC_MAX_SHARD_BYTES,
  FEC_MAX_TOMBSTONES_LIMIT,
  FEC_UNPROTECTED_GROUP_ID,
} from './limits.ts';

export interface FecDecoderConfig {
  /** Groups holding shards at once; the oldest is evicted past it. Default 64. */
  maxGroups?: number;
  /** A group is given up this long after its first frame arrived. Default 1000 ms. */
  expireMs?: number;
  /** Byte budget for shard copies (live and pooled). Default 8 MiB. */
  budgetBytes?: number;
  /** Finished groups remembered for duplicate detection. Default 1024. */
  maxTombstones?: number;
}

/**
 * A parity frame as decoded from the wire (FecParity); FecEncoder's FecParityShard fits it. The
 * same fields the codec writes (wire/codec.ts ParityFields): one declaration, not two copies.
 * `shard`'s length is the group's shardBytes.
 */
export type FecParityFrame = ParityFields;

export interface RecoveredPacket {
  readonly groupId: number;
  readonly index: number;
  /** A fresh copy, owned by the caller. */
  readonly packet: Uint8Array;
}

export interface FecDecoderCounters {
  /** Data packets rebuilt from parity and returned. */
  recovered: number;
  /** Data packets known missing (the group's k came from parity) when their group was retired unrecovered. */
  unrecoverable: number;
  /** Parity frames passed to onParity, valid or not. */
  parityReceived: number;
  /** Frames with bad or inconsistent fields, and groups whose rebuilt data failed verification. */
  malformed: number;
  /** Data or parity for an index the group already had (data: received or recovered). */
  duplicate: number;
  /** Parity for a group already retired (complete, recovered, expired or given up). */
  parityLate: number;
  /** Groups pushed out by maxGroups before they finished. */
  groupsEvicted: number;
  /** Shards not kept because the byte budget was spent even after evicting. */
  overBudget: number;
  /** Reconstructions the codec refused (never expected; the group is given up). */
  codecFailures: number;
}

const EMPTY: readonly RecoveredPacket[] = Object.freeze([]);
const NO_SHARD = new Uint8Array(0);

function popcount32(x: number): number {
  const u = x >>> 0;
  let v = u - ((u >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Bits 0..k-1 set (k <= 32; `1 << 32` is 1 in JS, hence the special case). */
function maskOf(k: number): number {
  return k >= 32 ? 0xffffffff : ((1 << k) - 1) >>> 0;
}

function isUint32(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function intIn(x: unknown, lo: number, hi: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
}

/** One group holding shards. Pooled: reset() on reuse, buffers go back to the ShardPool. */
class LiveGroup {
  groupId = 0;
  createdMs = 0;
  /** 0 until the first valid parity frame tells the group's shape. */
  k = 0;
  m = 0;
  shardBytes = 0;
  checksum = 0;
  /** Group size carried by data frames, when the wire has it (0 = not told). */
  kHint = 0;
  readonly lengths = new Int32Array(FEC_MAX_K);
  /** Lengths of data packets as received. */
  readonly dataLengths = new Int32Array(FEC_MAX_K);
  readonly bufs: (ShardBuffer | undefined)[] = new Array<ShardBuffer | undefined>(FEC_MAX_K + FEC_MAX_M).fill(
    undefined,
  );
  /** present[i] = 1 when bufs[i] holds shard i (the codec's availability flags). */
  readonly present = new Uint8Array(FEC_MAX_K + FEC_MAX_M);
  /** Bit i: data index i was delivered (received or recovered), whether or not a copy is held. */
  deliveredMask = 0;

  reset(groupId: number, nowMs: number): void {
    this.groupId = groupId;
    this.createdMs = nowMs;
    this.k = 0;
    this.m = 0;
    this.shardBytes = 0;
    this.checksum = 0;
    this.kHint = 0;
    this.present.fill(0);
    this.deliveredMask = 0;
  }
}

export class FecDecoder {
  readonly counters: FecDecoderCounters = {
    recovered: 0,
    unrecoverable: 0,
    parityReceived: 0,
    malformed: 0,
    duplicate: 0,
    parityLate: 0,
    groupsEvicted: 0,
    overBudget: 0,
    codecFailures: 0,
  };

  readonly maxGroups: number;
  readonly expireMs: number;
  readonly maxTombstones: number;

  /** Live groups in creation order (Map keeps insertion order): the first is the oldest. */
  private readonly live = new Map<number, LiveGroup>();
  /** Retired groups: id -> delivered mask, oldest first. */
  private readonly tombstones = new Map<number, number>();
  private readonly freeGroups: LiveGroup[] = [];
  private readonly pool: ShardPool;
  private readonly shardRefs: Uint8Array[] = [];

  constructor(
    private readonly codec: ErasureCodec,
    config: FecDecoderConfig = {},
  ) {
    const maxGroups = config.maxGroups ?? FEC_DEFAULT_MAX_GROUPS;
    const expireMs = config.expireMs ?? FEC_DEFAULT_EXPIRE_MS;
    const budget = config.budgetBytes ?? FEC_DEFAULT_DECODER_BUDGET_BYTES;
    const tombs = config.maxTombstones ?? FEC_DEFAULT_TOMBSTONES;
    if (!intIn(maxGroups, 1, FEC_MAX_GROUPS_LIMIT)) throw new RangeError(`FecDecoder: maxGroups=${maxGroups}`);
    if (!(Number.isFinite(expireMs) && expireMs > 0)) throw new RangeError(`FecDecoder: expireMs=${expireMs}`);
    if (!intIn(tombs, 0, FEC_MAX_TOMBSTONES_LIMIT)) throw new RangeError(`FecDecoder: maxTombstones=${tombs}`);
    this.maxGroups = maxGroups;
    this.expireMs = expireMs;
    this.maxTombstones = tombs;
    this.pool = new ShardPool(budget);
    for (let i = 0; i < FEC_MAX_K + FEC_MAX_M; i++) this.shardRefs.push(NO_SHARD);
  }

  /** Groups currently holding shards. */
  get liveGroups(): number {
    return this.live.size;
  }

  /** Bytes of shard buffers held (live and pooled), always <= budgetBytes. */
  get bufferedBytes(): number {
    return this.pool.bytesAllocated;
  }

  /**
   * True when data index `index` of group `groupId` was already received or recovered: a data
   * frame for it is a duplicate and must not be delivered again.
   */
  isDelivered(groupId: number, index: number): boolean {
    if (!intIn(index, 0, FEC_MAX_K - 1)) return false;
    const bit = 1 << index;
    const g = this.live.get(groupId);
    if (g !== undefined) return (g.deliveredMask & bit) !== 0;
    const t = this.tombstones.get(groupId);
    return t !== undefined && (t & bit) !== 0;
  }

  /**
   * Records a data packet the caller has just delivered (group `groupId`, position `index`).
   * `kHint` is the sender's nominal k (FecStamp.k) when the data frame carries it: an upper bound
   * (a group flushed early has fewer), which lets a full group finish without waiting for parity,
   * so under load groups free their buffers instead of being evicted. Returns the packets this
   * completed the recovery of, usually none.
   */
  onData(
    nowMs: number,
    groupId: number,
    index: number,
    kHint: number | undefined,
    packet: Uint8Array,
  ): readonly RecoveredPacket[] {
    this.expire(nowMs);
    if (
      !isUint32(groupId) ||
      groupId === FEC_UNPROTECTED_GROUP_ID ||
      !intIn(index, 0, FEC_MAX_K - 1) ||
      !(packet instanceof Uint8Array) ||
      packet.length > FEC_MAX_SHARD_BYTES
    ) {
      this.counters.malformed++;
      return EMPTY;
    }
    // A bad k hint still names a real (group, index) the caller has delivered: record that below
    // (so it is never rebuilt and delivered twice), then give the inconsistent group up.
    const badHint = kHint !== undefined && (!intIn(kHint, 1, FEC_MAX_K) || index >= kHint);
    const bit = 1 << index;
    const tomb = this.tombstones.get(groupId);
    if (tomb !== undefined) {
      if ((tomb & bit) !== 0) this.counters.duplicate++;
      else this.tombstones.set(groupId, (tomb | bit) >>> 0);
      if (badHint) this.counters.malformed++;
      return EMPTY;
    }
    const g = this.live.get(groupId) ?? this.open(nowMs, groupId);
    if ((g.deliveredMask & bit) !== 0) {
      this.counters.duplicate++;
      return EMPTY;
    }
    g.deliveredMask = (g.deliveredMask | bit) >>> 0;
    if (kHint !== undefined) {
      if (badHint || (g.kHint !== 0 && g.kHint !== kHint) || (g.k !== 0 && g.k > kHint)) {
        // Data frames of one group disagree on its size: trust none of it for recovery.
        this.counters.malformed++;
        this.retire(g);
        return EMPTY;
      }
      g.kHint = kHint;
    }
    if (g.k !== 0 && (index >= g.k || packet.length !== g.lengths[index])) {
      // The packet contradicts the shape parity announced; either side may be wrong, so rebuild nothing.
      this.counters.malformed++;
      this.retire(g);
      return EMPTY;
    }
    g.dataLengths[index] = packet.length;
    // All data in (k from parity, or the sender's nominal k for a full group): nothing can be
    // missing, so retire now instead of copying and holding the group until parity or expiry.
    const knownK = g.k !== 0 ? g.k : g.kHint;
    if (knownK !== 0 && (maskOf(knownK) & ~g.deliveredMask) === 0) {
      this.retire(g);
      return EMPTY;
    }
    const buf = this.acquire(g, packet.length);
    if (buf !== undefined) {
      buf.bytes.set(packet);
      g.bufs[index] = buf;
      g.present[index] = 1;
    }
    return g.k === 0 ? EMPTY : this.tryRecover(g);
  }

  /** Takes one parity frame; returns the data packets it completed the recovery of. */
  onParity(nowMs: number, frame: FecParityFrame): readonly RecoveredPacket[] {
    this.expire(nowMs);
    this.counters.parityReceived++;
    const shardBytes = this.validParityShardBytes(frame);
    if (shardBytes === 0) {
      this.counters.malformed++;
      return EMPTY;
    }
    const { groupId, k, m, index, lengths, checksum } = frame;
    if (this.tombstones.has(groupId)) {
      this.counters.parityLate++;
      return EMPTY;
    }
    const g = this.live.get(groupId) ?? this.open(nowMs, groupId);
    if (g.k === 0) {
      if (!this.shapeFitsData(g, k, lengths)) {
        this.counters.malformed++;
        return EMPTY;
      }
      g.k = k;
      g.m = m;
      g.shardBytes = shardBytes;
      g.checksum = checksum;
      for (let i = 0; i < k; i++) g.lengths[i] = lengths[i]!;
    } else if (!this.shapeMatches(g, k, m, shardBytes, checksum, lengths)) {
      this.counters.malformed++;
      return EMPTY;
    }
    if (g.present[index] !== 0) {
      this.counters.duplicate++;
      return EMPTY;
    }
    if ((maskOf(k) & ~g.deliveredMask) === 0) {
      // This parity only told us the data was all there already.
      this.retire(g);
      return EMPTY;
    }
    const buf = this.acquire(g, shardBytes);
    if (buf === undefined) return this.tryRecover(g);
    buf.bytes.set(frame.shard);
    g.bufs[index] = buf;
    g.present[index] = 1;
    return this.tryRecover(g);
  }

  /** When the oldest group expires (absolute ms), or undefined when none is held. */
  nextDeadlineMs(): number | undefined {
    for (const g of this.live.values()) return g.createdMs + this.expireMs;
    return undefined;
  }

  onTimeout(nowMs: number): void {
    this.expire(nowMs);
  }

  /** Forget everything, e.g. when the peer's session changes (group ids restart). Counters stay. */
  reset(): void {
    for (const g of [...this.live.values()]) this.release(g);
    this.tombstones.clear();
  }

  // ---- internals ---------------------------------------------------------------------------

  /** shardBytes when every field of the frame is in range and self-consistent, else 0. */
  private validParityShardBytes(frame: FecParityFrame): number {
    if (frame === null || typeof frame !== 'object') return 0;
    const { groupId, k, m, index, lengths, checksum, shard } = frame;
    if (!isUint32(groupId) || groupId === FEC_UNPROTECTED_GROUP_ID) return 0;
    if (!intIn(k, 1, FEC_MAX_K) || !intIn(m, 1, FEC_MAX_M) || !intIn(index, k, k + m - 1)) return 0;
    if (!isUint32(checksum)) return 0;
    if (!(shard instanceof Uint8Array) || shard.length < 1 || shard.length > FEC_MAX_SHARD_BYTES) return 0;
    if (lengths === null || typeof lengths !== 'object' || lengths.length !== k) return 0;
    const shardBytes = shard.length;
    let longest = 0;
    for (let i = 0; i < k; i++) {
      const len = lengths[i];
      if (!intIn(len, 0, shardBytes)) return 0;
      if (len > longest) longest = len;
    }
    // The sender pads to the longest packet (at least 1 byte): anything else is not its frame.
    if (Math.max(1, longest) !== shardBytes) return 0;
    return shardBytes;
  }

  /** The first parity's shape must fit the data already seen in the group. */
  private shapeFitsData(g: LiveGroup, k: number, lengths: ArrayLike<number>): boolean {
    if (g.kHint !== 0 && k > g.kHint) return false;
    if ((g.deliveredMask & ~maskOf(k)) !== 0) return false;
    for (let i = 0; i < k; i++) {
      if ((g.deliveredMask & (1 << i)) !== 0 && g.dataLengths[i] !== lengths[i]) return false;
    }
    return true;
  }

  private shapeMatches(
    g: LiveGroup,
    k: number,
    m: number,
    shardBytes: number,
    checksum: number,
    lengths: ArrayLike<number>,
  ): boolean {
    if (g.k !== k || g.m !== m || g.shardBytes !== shardBytes || g.checksum !== checksum) return false;
    for (let i = 0; i < k; i++) if (g.lengths[i] !== lengths[i]) return false;
    return true;
  }

  private open(nowMs: number, groupId: number): LiveGroup {
    while (this.live.size >= this.maxGroups) {
      const oldest = this.live.values().next().value;
      if (oldest === undefined) break;
      this.counters.groupsEvicted++;
      this.retire(oldest);
    }
    const g = this.freeGroups.pop() ?? new LiveGroup();
    g.reset(groupId, nowMs);
    this.live.set(groupId, g);
    return g;
  }

  /** A shard buffer within the budget, evicting older groups (never `g` itself) to make room. */
  private acquire(g: LiveGroup, bytes: number): ShardBuffer | undefined {
    for (;;) {
      const buf = this.pool.acquire(bytes);
      if (buf !== undefined) return buf;
      let victim: LiveGroup | undefined;
      for (const other of this.live.values()) {
        if (other !== g) {
          victim = other;
          break;
        }
      }
      if (victim === undefined) {
        this.counters.overBudget++;
        return undefined;
      }
      this.counters.groupsEvicted++;
      this.retire(victim);
    }
  }

  private expire(nowMs: number): void {
    for (const g of this.live.values()) {
      if (g.createdMs + this.expireMs > nowMs) break;
      this.retire(g);
    }
  }

  /**
   * Rebuilds the missing data once any k shards are in. Verification before anything leaves:
   * padding of rebuilt shards is zero and the group checksum matches.
   */
  private tryRecover(g: LiveGroup): readonly RecoveredPacket[] {
    const k = g.k;
    const m = g.m;
    const missing = maskOf(k) & ~g.deliveredMask;
    if (missing === 0) {
      this.retire(g);
      return EMPTY;
    }
    let have = 0;
    for (let i = 0; i < k + m; i++) have += g.present[i]!;
    if (have < k) return EMPTY;

    const shardBytes = g.shardBytes;
    const paddedBytes = checksumPaddedBytes(shardBytes);
    for (let i = 0; i < k; i++) {
      let buf = g.bufs[i];
      if (g.present[i] !== 0) {
        const len = g.dataLengths[i]!;
        if (buf!.bytes.length < paddedBytes) {
          // A short packet in a group padded to a longer one: move it to a buffer of shard size.
          const bigger = this.acquire(g, paddedBytes);
          if (bigger === undefined) return EMPTY;
          bigger.bytes.set(buf!.bytes.subarray(0, len));
          this.pool.release(buf!);
          g.bufs[i] = buf = bigger;
        }
        // Received copies were not padded (shardBytes was unknown then); the codec and checksum need it.
        buf!.bytes.fill(0, len, paddedBytes);
      } else {
        // Output slot for a rebuilt shard (also for a delivered packet we had no budget to copy).
        if (buf === undefined) {
          buf = this.acquire(g, paddedBytes);
          if (buf === undefined) return EMPTY;
          g.bufs[i] = buf;
        }
      }
      this.shardRefs[i] = buf!.bytes;
    }
    for (let i = k; i < k + m; i++) this.shardRefs[i] = g.present[i] !== 0 ? g.bufs[i]!.bytes : NO_SHARD;

    if (!this.codec.reconstruct(this.shardRefs, g.present, k, m, shardBytes)) {
      this.counters.codecFailures++;
      this.retire(g);
      return EMPTY;
    }
    let ok = true;
    for (let i = 0; i < k && ok; i++) {
      if (g.present[i] !== 0) continue;
      const bytes = g.bufs[i]!.bytes;
      for (let x = g.lengths[i]!; x < shardBytes; x++) {
        if (bytes[x] !== 0) {
          ok = false;
          break;
        }
      }
      bytes.fill(0, shardBytes, paddedBytes);
    }
    if (ok) ok = shardBuffersChecksum(g.groupId, g.lengths, g.bufs as readonly ShardBuffer[], k, shardBytes) === g.checksum;
    if (!ok) {
      this.counters.malformed++;
      this.retire(g);
      return EMPTY;
    }
    const out: RecoveredPacket[] = [];
    for (let i = 0; i < k; i++) {
      if ((missing & (1 << i)) === 0) continue;
      out.push({ groupId: g.groupId, index: i, packet: g.bufs[i]!.bytes.slice(0, g.lengths[i]!) });
    }
    this.counters.recovered += out.length;
    g.deliveredMask = (g.deliveredMask | missing) >>> 0;
    this.retire(g);
    return out;
  }

  /** Leaves a tombstone, counts data known missing, and returns the group to the pool. */
  private retire(g: LiveGroup): void {
    if (g.k !== 0) this.counters.unrecoverable += popcount32(maskOf(g.k) & ~g.deliveredMask);
    if (this.maxTombstones > 0) {
      this.tombstones.delete(g.groupId);
      while (this.tombstones.size >= this.maxTombstones) {
        const oldest = this.tombstones.keys().next().value;
        if (oldest === undefined) break;
        this.tombstones.delete(oldest);
      }
      this.tombstones.set(g.groupId, g.deliveredMask);
    }
    this.release(g);
  }

  private release(g: LiveGroup): void {
    for (let i = 0; i < g.bufs.length; i++) {
      const b = g.bufs[i];
      if (b !== undefined) {
        this.pool.release(b);
        g.bufs[i] = undefined;
      }
    }
    this.live.delete(g.groupId);
    if (this.freeGroups.length < this.maxGroups) this.freeGroups.push(g);
  }
}
