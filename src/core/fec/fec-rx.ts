/**
 * FEC receive side of one peer: a decoder per class, made on the first protected frame of it.
 *
 * Stages: protected data -> delivered at once unless already delivered (rebuilt before it came),
 * then kept for its group; parity -> the class decoder, whose rebuilt packets are delivered.
 * The decoders belong to the peer's epoch: a restarted peer numbers groups afresh, so a new epoch
 * forgets every group in flight (counters stay).
 */
import { CLASS_NAMES } from '../steer/classes.ts';
import type { FecParityFrame as WireParityFrame } from '../wire/codec.ts';
import type { ErasureCodec } from './codec.ts';
import { FecDecoder, type FecParityFrame, type RecoveredPacket } from './decoder.ts';
import { FEC_GROUP_COUNTER_MASK, FEC_GROUP_TAG_SHIFT, FEC_MAX_K } from './limits.ts';

/** Residual-loss window of the class snapshot: 30 one-second marks. */
const FEC_RESIDUAL_MARKS = 30;
/** A class decoder's byte budget per peer (a 20+10 group of 1400-byte shards is ~60 KiB). */
export const FEC_DECODER_BUDGET_BYTES = 4 * 1024 * 1024;

interface ClassRx {
  decoder: FecDecoder;
  dataReceived: number;
  lateOriginals: number;
  markExpected: Float64Array;
  markLost: Float64Array;
  markHead: number;
  markCount: number;
}

export interface FecRxHost {
  deliver(packet: Uint8Array): void;
  countDrop(reason: 'fecMalformed', n?: number): void;
  countDuplicate(): void;
}

export class FecReceiver {
  private readonly rx: (ClassRx | undefined)[] = CLASS_NAMES.map(() => undefined);
  private peerEpoch: number | undefined;
  private markMs: number;
  private readonly parityIn: { groupId: number; index: number; k: number; m: number; lengths: ArrayLike<number>; checksum: number; shard: Uint8Array } = { groupId: 0, index: 0, k: 0, m: 0, lengths: [], checksum: 0, shard: new Uint8Array(0) };
  private readonly uniformLengths: number[] = [];
  /** Earliest expiry of a group held by a decoder (bookkeeping only); Infinity when none. */
  expireAtMs = Infinity;

  constructor(
    private readonly codec: ErasureCodec,
    private readonly host: FecRxHost,
    nowMs: number,
    private readonly budgetBytes = FEC_DECODER_BUDGET_BYTES,
  ) {
    this.markMs = nowMs;
  }

  /** The peer's epoch as seen in a probe: a new one (a restart) forgets every group in flight. */
  onPeerEpoch(epoch: number): void {
    if (epoch === this.peerEpoch) return;
    if (this.peerEpoch !== undefined) for (const r of this.rx) r?.decoder.reset();
    this.peerEpoch = epoch;
  }

  private classFor(groupId: number): ClassRx | undefined {
    const classId = groupId >>> FEC_GROUP_TAG_SHIFT;
    if (classId >= CLASS_NAMES.length || (groupId & FEC_GROUP_COUNTER_MASK) === 0) return undefined;
    let r = this.rx[classId];
    if (r === undefined) {
      r = {
        decoder: new FecDecoder(this.codec, { budgetBytes: this.budgetBytes }),
        dataReceived: 0,
        lateOriginals: 0,
        markExpected: new Float64Array(FEC_RESIDUAL_MARKS),
        markLost: new Float64Array(FEC_RESIDUAL_MARKS),
        markHead: 0,
        markCount: 0,
      };
      this.rx[classId] = r;
    }
    return r;
  }

  onData(nowMs: number, groupId: number, index: number, fecK: number | undefined, packet: Uint8Array): void {
    const r = this.classFor(groupId);
    if (r === undefined) {
      // Authenticated data with a FEC tag we cannot place: deliver it, count the bad tag.
      this.host.countDrop('fecMalformed');
      this.host.deliver(packet);
      return;
    }
    const dec = r.decoder;
    if (dec.isDelivered(groupId, index)) {
      // Usually an original that was rebuilt from parity before it arrived (a slower data path).
      r.lateOriginals++;
      this.host.countDuplicate();
      return;
    }
    r.dataReceived++;
    this.host.deliver(packet);
    const before = dec.counters.malformed;
    this.after(nowMs, dec, before, dec.onData(nowMs, groupId, index, fecK !== undefined && fecK !== 0 ? fecK : undefined, packet));
  }

  onParity(nowMs: number, f: WireParityFrame): void {
    const r = this.classFor(f.group);
    if (r === undefined) return this.host.countDrop('fecMalformed');
    const a = this.parityIn;
    a.groupId = f.group;
    a.index = f.index;
    a.k = f.k;
    a.m = f.m;
    if (f.lengths.length === 0 && f.k >= 1 && f.k <= FEC_MAX_K) {
      // Lengths left out: every data packet of the group is as long as the shard.
      const u = this.uniformLengths;
      u.length = f.k;
      u.fill(f.shard.length);
      a.lengths = u;
    } else {
      a.lengths = f.lengths;
    }
    a.checksum = f.checksum ?? 0;
    a.shard = f.shard;
    const dec = r.decoder;
    const before = dec.counters.malformed;
    this.after(nowMs, dec, before, dec.onParity(nowMs, a as FecParityFrame));
  }

  private after(nowMs: number, dec: FecDecoder, malformedBefore: number, rebuilt: readonly RecoveredPacket[]): void {
    const bad = dec.counters.malformed - malformedBefore;
    if (bad !== 0) this.host.countDrop('fecMalformed', bad);
    for (let i = 0; i < rebuilt.length; i++) this.host.deliver(rebuilt[i]!.packet);
    if (this.expireAtMs === Infinity && dec.liveGroups > 0) this.expireAtMs = nowMs + dec.expireMs;
  }

  /** At expireAtMs: decoders give up old groups. */
  onTimeout(nowMs: number): void {
    if (nowMs - this.markMs >= 1000) this.mark(nowMs);
    if (nowMs < this.expireAtMs) return;
    let next = Infinity;
    for (const r of this.rx) {
      if (r === undefined) continue;
      const before = r.decoder.counters.malformed;
      r.decoder.onTimeout(nowMs);
      const bad = r.decoder.counters.malformed - before;
      if (bad !== 0) this.host.countDrop('fecMalformed', bad);
      const d = r.decoder.nextDeadlineMs();
      if (d !== undefined && d < next) next = d;
    }
    this.expireAtMs = next;
  }

  /** Once a second (called from the probe tick): the residual-loss window marks. */
  mark(nowMs: number): void {
    if (nowMs - this.markMs < 1000) return;
    this.markMs = nowMs;
    for (const r of this.rx) {
      if (r === undefined) continue;
      const c = r.decoder.counters;
      r.markExpected[r.markHead] = r.dataReceived + c.recovered + c.unrecoverable;
      r.markLost[r.markHead] = c.unrecoverable;
      r.markHead = (r.markHead + 1) % FEC_RESIDUAL_MARKS;
      if (r.markCount < FEC_RESIDUAL_MARKS) r.markCount++;
    }
  }

  /** Receive-side fields of a class snapshot. */
  snapshot(classId: number): { fecRecovered: number; fecUnrecoverable: number; fecMalformed: number; fecLateOriginals: number; residualLossRatio?: number } | undefined {
    const r = this.rx[classId];
    if (r === undefined) return undefined;
    const c = r.decoder.counters;
    const expected = r.dataReceived + c.recovered + c.unrecoverable;
    const full = r.markCount >= FEC_RESIDUAL_MARKS;
    const e0 = full ? r.markExpected[r.markHead]! : 0;
    const l0 = full ? r.markLost[r.markHead]! : 0;
    const de = expected - e0;
    const out = { fecRecovered: c.recovered, fecUnrecoverable: c.unrecoverable, fecMalformed: c.malformed, fecLateOriginals: r.lateOriginals };
    return de > 0 ? { ...out, residualLossRatio: (c.unrecoverable - l0) / de } : out;
  }
}
