/**
 * FecEncoder: groups one class's outgoing data packets and makes Reed-Solomon parity for them.
 *
 * Pipeline, per packet:
 *   1. push(now, packet)      the caller sends the packet at once, stamped with the returned
 *                             {groupId, index}; the encoder only copies it into the open group
 *   2. group closes           when k packets are in (in push), or at the flush deadline
 *                             (nextDeadlineMs / onTimeout) with k' < k packets: then k = k'
 *                             (a group on pace to fill k by maxFlushMs waits until then)
 *   3. parity                 shards are zero-padded to the longest packet, m parity shards are
 *                             computed and queued with the original lengths and a checksum (an
 *                             early-flushed group of k' gets min(m, table[k']) with setParityTable)
 *   4. pollParity()           the caller frames and sends each parity shard (ideally on a path
 *                             not in dataPathMask, DESIGN.md "FEC")
 *
 * Data is never delayed: the encoder holds copies, not packets. m = 0 turns protection off
 * (push returns undefined: send the packet unprotected, fec_group 0); setM applies from the next
 * group, so packets already stamped keep the m their group promised.
 *
 * Buffer contract: push copies the packet (the caller may reuse it on return). The stamp returned
 * by push is one reused object, valid until the next push. A parity shard returned by pollParity
 * (its `shard` bytes and `lengths`) stays valid until FEC_PARITY_RING_GROUPS - 1 more groups have
 * closed; the Edge frames and seals it at once, which copies it.
 */
import type { ErasureCodec } from './codec.ts';
import { checksumPaddedBytes, newShardBuffer, shardBuffersChecksum, type ShardBuffer } from './buffers.ts';
import {
  FEC_GROUP_COUNTER_MASK,
  FEC_GROUP_TAG_SHIFT,
  FEC_MAX_FLUSH_MS,
  FEC_MAX_GROUP_TAG,
  FEC_MAX_K,
  FEC_MAX_M,
  FEC_MAX_SHARD_BYTES,
  FEC_PARITY_RING_GROUPS,
  FEC_UNPROTECTED_GROUP_ID,
} from './limits.ts';

/** The empty shard for unused slots of shardRefs (never written: the codec sees only k + m slots). */
const NO_SHARD = new Uint8Array(0);

export interface FecEncoderConfig {
  /** Data packets per group, 1..FEC_MAX_K. */
  k: number;
  /** Parity shards per group, 0..FEC_MAX_M; 0 = FEC off. */
  m: number;
  /** Longest a group waits for its k-th packet after its first, 0..FEC_MAX_FLUSH_MS. */
  flushMs: number;
  /**
   * First group id (uint32, not 0). Seed it from the Edge's Rng per session so a restarted sender
   * does not reuse the ids of groups the receiver still holds. Default 1.
   */
  firstGroupId?: number;
  /**
   * Tag every group id with this value in its top 4 bits (FEC_GROUP_TAG_SHIFT): ids are then
   * tag << 28 | counter, the 28-bit counter starting at firstGroupId's low 28 bits (0 -> 1) and
   * wrapping within the tag's space, skipping 0. The Edge tags with the class id. Default: no tag,
   * the whole uint32 space.
   */
  groupTag?: number;
  /**
   * Most parity per protected data packet, over time (packet count; e.g. 0.3 = 30%). Each data
   * packet earns this much parity credit (up to a full group's worth); a closing group gets at
   * most the whole credit it holds. Full groups are unaffected when m/k is within the ratio; groups
   * flushed early with 1-2 packets (one call, one video flow) share parity instead of each getting
   * a copy's worth (m = 1 on k' = 1 is 100% overhead). Default: no cap.
   */
  maxOverheadRatio?: number;
  /**
   * Longest a group that is filling fast may wait (ms, flushMs..FEC_MAX_FLUSH_MS). At flushMs a
   * group that, at the pace it filled so far, reaches k by maxFlushMs waits for it (its deadline
   * moves to first packet + maxFlushMs, nextDeadlineMs says so); a slower one closes as before.
   * Default 2 x flushMs (capped at FEC_MAX_FLUSH_MS). Why: 10 voice calls give 10 packets per
   * 20 ms; groups of 10 get m = 3 within a 30% budget (0.1% residual at 5% loss), groups of 20
   * get m = 5-6 (0.006-0.03%); 2-4 calls (2-4 packets at 20 ms) still close at 20 ms. Only
   * repaired packets wait: data is never held.
   */
  maxFlushMs?: number;
}

/** What to stamp on a protected data frame (Data.fec_group, Data.fec_index, and k if carried). */
export interface FecStamp {
  readonly groupId: number;
  readonly index: number;
  /**
   * The encoder's nominal k: an upper bound on the group's size (it may flush early with fewer).
   * Optional on the wire; when carried, the decoder retires full groups without waiting for parity.
   */
  readonly k: number;
}

/** One parity shard to frame as FecParity. The decoder accepts this shape as its input. */
export interface FecParityShard {
  readonly groupId: number;
  /** k .. k+m-1. */
  readonly index: number;
  /** Data packets in the group (k' when the group flushed early). */
  readonly k: number;
  readonly m: number;
  /** Length of every shard of the group: the longest data packet (at least 1). */
  readonly shardBytes: number;
  /** Original lengths of the k data packets, in index order. */
  readonly lengths: readonly number[];
  /** Checksum of the group id and zero-padded data shards (buffers.ts); lets the receiver reject garbage. */
  readonly checksum: number;
  /** The parity bytes, exactly shardBytes long. */
  readonly shard: Uint8Array;
  /** Bit p set when a data packet of this group went on pathId p (0..31): put parity elsewhere. */
  readonly dataPathMask: number;
}

export interface FecEncoderCounters {
  /** Packets stamped into a group. */
  protectedPackets: number;
  /** Packets passed through unprotected because m was 0. */
  unprotectedPackets: number;
  /** Packets too long to protect (over FEC_MAX_SHARD_BYTES), passed through unprotected. */
  oversizePackets: number;
  /** Groups closed, and how many of those closed early (at the deadline with fewer than k). */
  groups: number;
  earlyFlushes: number;
  /** Parity shards queued, and dropped because the caller did not poll them in time. */
  parityShards: number;
  parityOverrun: number;
  /** Groups that went without parity because the codec refused (never expected). */
  codecFailures: number;
  /** Parity shards not made because the overhead budget (maxOverheadRatio) had no credit left. */
  parityCapped: number;
  /** Open groups dropped without parity, and unpolled parity shards dropped, by abandon(). */
  abandonedGroups: number;
  abandonedShards: number;
}

class ParityOut implements FecParityShard {
  groupId = 0;
  index = 0;
  k = 0;
  m = 0;
  shardBytes = 0;
  lengths: readonly number[] = [];
  checksum = 0;
  shard: Uint8Array;
  dataPathMask = 0;
  buf: ShardBuffer;
  constructor() {
    this.buf = newShardBuffer(0);
    this.shard = this.buf.bytes.subarray(0, 0);
  }
}

/** One closed group's parity, waiting in the ring for pollParity. */
interface RingSlot {
  readonly shards: ParityOut[];
  emitted: number;
  polled: number;
}

function assertConfig(cond: boolean, what: string): void {
  // Programmer errors: DESIGN.md keeps assertions on.
  if (!cond) throw new RangeError(`FecEncoder: ${what}`);
}

export class FecEncoder {
  readonly counters: FecEncoderCounters = {
    protectedPackets: 0,
    unprotectedPackets: 0,
    oversizePackets: 0,
    groups: 0,
    earlyFlushes: 0,
    parityShards: 0,
    parityOverrun: 0,
    codecFailures: 0,
    parityCapped: 0,
    abandonedGroups: 0,
    abandonedShards: 0,
  };

  readonly k: number;
  readonly flushMs: number;
  readonly maxFlushMs: number;
  private configuredM: number;
  /** Optional m per group size (index k'): a group flushed early with k' packets gets min(m, table[k']). */
  private parityTable: ArrayLike<number> | undefined;
  private readonly tag: number;
  /** Parity credit per protected packet, and what is held (capped at a full group's worth). */
  private readonly creditPerPacket: number;
  private readonly creditCap: number;
  private credit: number;

  // The open group.
  private groupId: number;
  private count = 0;
  private groupM = 0;
  private deadlineMs = 0;
  private openedAtMs = 0;
  private extended = false;
  private pathMask = 0;
  /** Made at the first push, as the ring's slots and shardRefs at the first close: a hub's idle peers never send (issue 12). */
  private lengths: Int32Array | undefined;
  private readonly dataBufs: ShardBuffer[] = [];

  // Closed groups' parity, oldest at ringHead.
  private readonly ring: RingSlot[] = [];
  private ringHead = 0;
  private ringCount = 0;

  /** Scratch list handed to the codec: data buffers then parity buffers. */
  private readonly shardRefs: Uint8Array[] = [];
  private readonly stamp = { groupId: 0, index: 0, k: 0 };

  constructor(
    private readonly codec: ErasureCodec,
    config: FecEncoderConfig,
  ) {
    const { k, m, flushMs } = config;
    assertConfig(Number.isInteger(k) && k >= 1 && k <= FEC_MAX_K, `k=${k} must be an integer in 1..${FEC_MAX_K}`);
    assertConfig(Number.isInteger(m) && m >= 0 && m <= FEC_MAX_M, `m=${m} must be an integer in 0..${FEC_MAX_M}`);
    assertConfig(
      Number.isFinite(flushMs) && flushMs >= 0 && flushMs <= FEC_MAX_FLUSH_MS,
      `flushMs=${flushMs} must be in 0..${FEC_MAX_FLUSH_MS}`,
    );
    const first = config.firstGroupId ?? 1;
    assertConfig(
      Number.isInteger(first) && first > 0 && first <= 0xffffffff,
      `firstGroupId=${first} must be a non-zero uint32`,
    );
    this.k = k;
    this.stamp.k = k;
    this.configuredM = m;
    this.flushMs = flushMs;
    const maxFlush = config.maxFlushMs ?? Math.min(FEC_MAX_FLUSH_MS, 2 * flushMs);
    assertConfig(Number.isFinite(maxFlush) && maxFlush >= flushMs && maxFlush <= FEC_MAX_FLUSH_MS, `maxFlushMs=${maxFlush} must be in flushMs..${FEC_MAX_FLUSH_MS}`);
    this.maxFlushMs = maxFlush;
    const tag = config.groupTag;
    assertConfig(tag === undefined || (Number.isInteger(tag) && tag >= 0 && tag <= FEC_MAX_GROUP_TAG), `groupTag=${tag} must be 0..${FEC_MAX_GROUP_TAG}`);
    this.tag = tag ?? -1;
    if (this.tag >= 0) this.groupId = ((this.tag << FEC_GROUP_TAG_SHIFT) | (first & FEC_GROUP_COUNTER_MASK || 1)) >>> 0;
    else this.groupId = first;
    const ratio = config.maxOverheadRatio;
    assertConfig(ratio === undefined || (Number.isFinite(ratio) && ratio > 0), `maxOverheadRatio=${ratio} must be a positive number`);
    this.creditPerPacket = ratio ?? Infinity;
    this.creditCap = ratio === undefined ? Infinity : Math.max(1, ratio * k);
    // Start with one shard of credit, so the first small group of a call is protected.
    this.credit = ratio === undefined ? Infinity : 1;
  }

  /** Parity per group from the next group on. */
  get m(): number {
    return this.configuredM;
  }

  /** Adaptive FEC (adaptive.ts): takes effect at the next group; 0 turns protection off. */
  setM(m: number): void {
    assertConfig(Number.isInteger(m) && m >= 0 && m <= FEC_MAX_M, `m=${m} must be an integer in 0..${FEC_MAX_M}`);
    this.configuredM = m;
  }

  /**
   * Parity for groups that close with fewer than k packets (flush deadline): table[k'] is the m a
   * group of k' needs for the same residual loss (adaptive.ts parityTable). The group keeps at
   * least 1 and at most the m it opened with. Undefined: every group gets the m it opened with.
   * The table is read at close time; the caller may replace (not mutate in place) it any time.
   */
  setParityTable(table: ArrayLike<number> | undefined): void {
    this.parityTable = table;
  }

  /** The id the next group will get. */
  get nextGroupId(): number {
    return this.groupId;
  }

  /**
   * Records a copy of `packet` in the open group and returns what to stamp on its data frame, or
   * undefined when it goes unprotected (m = 0 and no group open, or too long). `pathId` (0..31)
   * says which path the caller sends it on; other values are not tracked.
   */
  push(nowMs: number, packet: Uint8Array, pathId: number): FecStamp | undefined {
    if (this.count > 0 && nowMs >= this.deadlineMs && !this.extend(nowMs)) this.close(true);
    if (packet.length > FEC_MAX_SHARD_BYTES) {
      this.counters.oversizePackets++;
      return undefined;
    }
    if (this.count === 0) {
      if (this.configuredM === 0) {
        this.counters.unprotectedPackets++;
        return undefined;
      }
      this.groupM = this.configuredM;
      this.deadlineMs = nowMs + this.flushMs;
      this.openedAtMs = nowMs;
      this.extended = false;
      this.pathMask = 0;
    }
    const index = this.count;
    let buf = this.dataBufs[index];
    if (buf === undefined || buf.bytes.length < packet.length) {
      buf = newShardBuffer(packet.length);
      this.dataBufs[index] = buf;
    }
    buf.bytes.set(packet);
    (this.lengths ??= new Int32Array(FEC_MAX_K))[index] = packet.length;
    if (Number.isInteger(pathId) && pathId >= 0 && pathId < 32) this.pathMask |= 1 << pathId;
    this.count = index + 1;
    this.counters.protectedPackets++;
    if (this.credit < this.creditCap) this.credit = Math.min(this.creditCap, this.credit + this.creditPerPacket);
    this.stamp.groupId = this.groupId;
    this.stamp.index = index;
    if (this.count === this.k) this.close(false);
    return this.stamp;
  }

  /** When the open group must flush (absolute ms), or undefined when no group is open. */
  nextDeadlineMs(): number | undefined {
    return this.count > 0 ? this.deadlineMs : undefined;
  }

  onTimeout(nowMs: number): void {
    if (this.count > 0 && nowMs >= this.deadlineMs && !this.extend(nowMs)) this.close(true);
  }

  /**
   * At the flush deadline: moves it to openedAt + maxFlushMs when the group, at the pace it has
   * filled so far, reaches k by then (once per group). True when extended.
   */
  private extend(nowMs: number): boolean {
    if (this.extended || this.maxFlushMs <= this.flushMs) return false;
    const elapsed = Math.max(nowMs - this.openedAtMs, this.flushMs, 1e-3);
    if (this.count * (this.maxFlushMs / elapsed) < this.k) return false;
    this.extended = true;
    this.deadlineMs = this.openedAtMs + this.maxFlushMs;
    return nowMs < this.deadlineMs;
  }

  /** The next parity shard to send, oldest group first. */
  pollParity(): FecParityShard | undefined {
    while (this.ringCount > 0) {
      const slot = this.ring[this.ringHead]!;
      if (slot.polled < slot.emitted) return slot.shards[slot.polled++];
      this.ringHead = (this.ringHead + 1) % FEC_PARITY_RING_GROUPS;
      this.ringCount--;
    }
    return undefined;
  }

  /**
   * Drops the open group without parity, and every parity shard not yet polled: its data went out
   * on a session that is no longer the peer's (peer-tx.ts onSessionChange). A peer that restarted
   * in between would rebuild from that parity a packet its previous life had delivered already
   * (a k = 1 group's parity is the packet: VOPR seed 99000318, long form, delivered voice twice).
   */
  abandon(): void {
    if (this.count > 0) {
      this.count = 0;
      this.advanceGroupId();
      this.counters.abandonedGroups++;
    }
    while (this.ringCount > 0) {
      const slot = this.ring[this.ringHead]!;
      this.counters.abandonedShards += slot.emitted - slot.polled;
      slot.polled = slot.emitted;
      this.ringHead = (this.ringHead + 1) % FEC_PARITY_RING_GROUPS;
      this.ringCount--;
    }
  }

  private advanceGroupId(): void {
    if (this.tag >= 0) {
      // Wrap inside the tag's 28-bit space, skipping counter 0.
      const c = this.groupId & FEC_GROUP_COUNTER_MASK;
      this.groupId = ((this.tag << FEC_GROUP_TAG_SHIFT) | (c === FEC_GROUP_COUNTER_MASK ? 1 : c + 1)) >>> 0;
    } else {
      // uint32 wrap that skips FEC_UNPROTECTED_GROUP_ID (0), which means "not protected" on the wire.
      this.groupId = this.groupId === 0xffffffff ? FEC_UNPROTECTED_GROUP_ID + 1 : this.groupId + 1;
    }
  }

  /** Closes the open group: pads, checksums, encodes, queues m parity shards. */
  private close(early: boolean): void {
    const k = this.count;
    let m = this.groupM;
    const table = this.parityTable;
    if (table !== undefined && k < table.length) {
      const want = table[k]!;
      if (Number.isInteger(want) && want >= 1 && want < m) m = want;
    }
    if (m > this.credit) {
      // 1e-9: credit accumulated in steps of e.g. 0.3 must reach 1 after four packets, not 0.9999.
      const allowed = Math.floor(this.credit + 1e-9);
      this.counters.parityCapped += m - allowed;
      m = allowed;
    }
    if (m > 0) this.credit -= m;
    const groupId = this.groupId;
    this.count = 0;
    this.advanceGroupId();
    this.counters.groups++;
    if (early) this.counters.earlyFlushes++;
    if (m === 0) return; // the budget had nothing for this group: its data went out unprotected by parity

    let shardBytes = 1; // the codec needs non-empty shards, even for a group of empty packets
    const lengthsOf = this.lengths!; // a group has had a push
    for (let i = 0; i < k; i++) if (lengthsOf[i]! > shardBytes) shardBytes = lengthsOf[i]!;
    // One shared empty view for the unused slots: a fresh Uint8Array each cost a hub ~25 KB per idle peer (issue 12).
    if (this.shardRefs.length === 0) for (let i = 0; i < FEC_MAX_K + FEC_MAX_M; i++) this.shardRefs.push(NO_SHARD);
    // Zero-pad to the checksum's 16-byte blocks (the codec itself reads only shardBytes).
    const paddedBytes = checksumPaddedBytes(shardBytes);
    const lengths: number[] = new Array<number>(k);
    for (let i = 0; i < k; i++) {
      let buf = this.dataBufs[i]!;
      const len = lengthsOf[i]!;
      if (buf.bytes.length < paddedBytes) {
        // A longer packet came later in the group: this slot must hold the whole padded shard.
        const bigger = newShardBuffer(paddedBytes);
        bigger.bytes.set(buf.bytes.subarray(0, len));
        this.dataBufs[i] = buf = bigger;
      }
      buf.bytes.fill(0, len, paddedBytes);
      lengths[i] = len;
      this.shardRefs[i] = buf.bytes;
    }

    const slot = this.claimRingSlot();
    while (slot.shards.length < m) slot.shards.push(new ParityOut());
    for (let r = 0; r < m; r++) {
      const p = slot.shards[r]!;
      if (p.buf.bytes.length < shardBytes) {
        p.buf = newShardBuffer(shardBytes);
        p.shard = p.buf.bytes.subarray(0, 0);
      }
      this.shardRefs[k + r] = p.buf.bytes;
    }
    if (!this.codec.encode(this.shardRefs, k, m, shardBytes)) {
      this.counters.codecFailures++;
      slot.emitted = 0;
      slot.polled = 0;
      return;
    }
    const checksum = shardBuffersChecksum(groupId, lengthsOf, this.dataBufs, k, shardBytes);
    for (let r = 0; r < m; r++) {
      const p = slot.shards[r]!;
      p.groupId = groupId;
      p.index = k + r;
      p.k = k;
      p.m = m;
      p.shardBytes = shardBytes;
      p.lengths = lengths;
      p.checksum = checksum;
      // Groups of one class usually share a size (full-MTU packets): keep the view when it fits.
      if (p.shard.length !== shardBytes) p.shard = p.buf.bytes.subarray(0, shardBytes);
      p.dataPathMask = this.pathMask;
    }
    slot.emitted = m;
    slot.polled = 0;
    this.counters.parityShards += m;
  }

  /** The ring slot for a closing group; when the caller has not polled 4 groups, drops the oldest. */
  private claimRingSlot(): RingSlot {
    if (this.ringCount === FEC_PARITY_RING_GROUPS) {
      const oldest = this.ring[this.ringHead]!;
      this.counters.parityOverrun += oldest.emitted - oldest.polled;
      this.ringHead = (this.ringHead + 1) % FEC_PARITY_RING_GROUPS;
      this.ringCount--;
    }
    // Slots are claimed in ring order from 0, so a missing one is the next to push.
    const slot = (this.ring[(this.ringHead + this.ringCount) % FEC_PARITY_RING_GROUPS] ??= { shards: [], emitted: 0, polled: 0 });
    this.ringCount++;
    slot.emitted = 0;
    slot.polled = 0;
    return slot;
  }
}
