/**
 * The send side of one peer: frames, numbers and seals datagrams on a path, straight to the
 * transmit queue (unshaped link) or through the link's shaper (PendingTx, built when it leaves).
 *
 * Stages of a data packet: [peer.ts: classify, flow, FEC stamp] -> sendData (queue or build) ->
 * buildData (path sequence, frame written in place, sealed in place, envelope header before it)
 * -> host.transmit. Parity and probes go the same way (sendParity/buildParity, sendProbe/buildProbe).
 */
import { allocBytes, allocDatagramBytes, copyBytes } from './bytes.ts';
import type { FecTx } from './fec/fec-tx.ts';
import { notePathTx, type PathRuntime } from './pathmon/path.ts';
import { PendingTx, TxKind, type LinkRuntime } from './qos/egress.ts';
import type { Endpoint } from './types.ts';
import {
  dataFrameSize,
  encodeDataDatagram,
  encodeEnvelope,
  encodeFrame,
  envelopeHeaderSize,
  parityFrameSize,
  probeFrameSize,
  probeTxUsWritable,
  writeDataFrame,
  writeEnvelopeHeader,
  writeParityFrame,
  writeProbeFrame,
  type Frame,
  type ParityFields,
  type ProbeFields,
} from './wire/codec.ts';
import type { Peer } from './peer.ts';
import { padFrame } from './wire/padding.ts';

const AEAD_TAG_BYTES = 16;
/** Queue accounting size of a probe (epoch, 64-bit timestamp, report, envelope, tag: ~60-80 bytes). */
const PROBE_DATAGRAM_BYTES = 96;
const NO_BYTES = new Uint8Array(0);
/**
 * An overflow or backup link's hello goes again after this long (at the peer's next probe): a lost
 * one would leave the peer taking the path for a primary one until one side restarts. A primary
 * link's hello goes once, as before (lost, the peer's default is right; only the name is missing).
 */
export const HELLO_REFRESH_MS = 30_000;
const NO_LENGTHS: readonly number[] = Object.freeze([]);
/** Network control: probes, handshakes, hellos and drains are queued as this class. */
export const CONTROL_CLASS = 0;

/** How long the answer held on `p` (peer-echo.ts) has waited, in whole microseconds: its hold time on the wire. */
function heldUs(p: PathRuntime, nowMs: number): number {
  return Math.max(0, Math.round((nowMs - p.echoRxMs) * 1000));
}

export class PeerTx {
  /** Reused probe fields for the frame writer (filled and written within one call). */
  private readonly probeOut: ProbeFields = { link: 0, seq: 0, txUs: 0, dscp: 0, holdUs: 0, epoch: 0, hasReport: true, received: 0, highestSeq: 0, jitterUs: 0, echoSeq: 0, echoTxUs: 0, echoHoldUs: 0, echoOk: false };
  /** Reused parity fields for the frame writer. */
  private readonly parityOut: { groupId: number; index: number; k: number; m: number; lengths: ArrayLike<number>; checksum: number; shard: Uint8Array } = { groupId: 0, index: 0, k: 0, m: 0, lengths: [], checksum: 0, shard: new Uint8Array(0) };

  constructor(private readonly peer: Peer) {}

  private link(p: PathRuntime): LinkRuntime {
    return this.peer.host.links[p.linkId]!;
  }

  private get encrypted(): boolean {
    return this.peer.host.sessions !== undefined;
  }

  /** Datagram size of a frame of `frameBytes` once enveloped (and sealed), for queue accounting. */
  private datagramSizeFor(frameBytes: number): number {
    if (!this.encrypted) return envelopeHeaderSize(0, 0, frameBytes) + frameBytes;
    const sealed = frameBytes + AEAD_TAG_BYTES;
    return envelopeHeaderSize(1, 1, sealed) + sealed;
  }

  /**
   * Sends (unshaped link) or queues (shaped link) one data frame. False when there is no session
   * to seal with: the caller stages the packet. A full queue is a counted drop (true: not staged).
   */
  sendData(p: PathRuntime, packet: Uint8Array, dscp: number, dupSeq: number, classId: number, fecGroup = 0, fecIndex = 0, fecK = 0): boolean {
    const peer = this.peer;
    const sched = this.link(p).sched;
    // A bonded class's number in the order the flow sent (peer-bond.ts); none for a staged packet.
    const bondSeq = this.encrypted && !peer.sessionUp ? 0 : peer.bond.nextSeq(classId);
    if (sched !== undefined) {
      if (this.encrypted && !peer.sessionUp) return false;
      const size = this.datagramSizeFor(dataFrameSize(p.linkId, (p.txSeq + 1) >>> 0, packet.length, fecGroup, fecIndex, dupSeq, fecK, bondSeq));
      if (!sched.admit(classId, size, peer.slot)) {
        peer.host.drop('queueFull');
        return true;
      }
      // Numbered and sealed when it leaves the queue: copy, the caller reuses its buffer.
      const item = new PendingTx(TxKind.Data, size, peer, peer.slot, p.id, p.remote, dscp, classId, copyBytes(packet));
      item.dupSeq = dupSeq;
      item.fecGroup = fecGroup;
      item.fecIndex = fecIndex;
      item.fecK = fecK;
      item.bondSeq = bondSeq;
      peer.host.enqueue(this.link(p), item);
      return true;
    }
    const bytes = this.buildData(p, packet, dupSeq, classId, fecGroup, fecIndex, fecK, bondSeq);
    if (bytes === undefined) return false;
    this.transmit(p, p.remote, bytes, dscp);
    return true;
  }

  /** Numbers, frames and seals a data frame on `p` now; undefined without a session. */
  buildData(p: PathRuntime, packet: Uint8Array, dupSeq: number, classId: number, fecGroup: number, fecIndex: number, fecK: number, bondSeq = 0): Uint8Array | undefined {
    const peer = this.peer;
    const sessions = peer.host.sessions;
    const seq = (p.txSeq + 1) >>> 0;
    let bytes: Uint8Array;
    if (sessions === undefined) {
      bytes = encodeDataDatagram(0, 0, p.linkId, seq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
    } else {
      // One buffer per datagram: the frame is written after room for the largest envelope header,
      // sealed in place, and the header written just before the ciphertext (the frame buffer and
      // envelope copy this replaces cost 3.7-5 us per packet plus GC: bench/overlay.ts profile).
      const frameLen = dataFrameSize(p.linkId, seq, packet.length, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
      const sealedLen = frameLen + AEAD_TAG_BYTES;
      const room = envelopeHeaderSize(0xffffffff, 2 ** 52, sealedLen);
      const buf = allocDatagramBytes(room + sealedLen);
      writeDataFrame(buf, room, p.linkId, seq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
      const r = sessions.sealAt(peer.host.nowMs, peer.name, buf, room, frameLen);
      if (!r.ok) {
        peer.host.drainCrypto();
        return undefined;
      }
      const start = room - envelopeHeaderSize(r.receiverIndex, r.counter, sealedLen);
      writeEnvelopeHeader(buf, start, r.receiverIndex, r.counter, sealedLen);
      bytes = buf.subarray(start);
    }
    p.txSeq = seq;
    p.stats.onSent(peer.host.nowMs, seq);
    p.txDataPackets++;
    peer.classWireBytes[classId]! += bytes.length;
    return bytes;
  }

  /** Sends (or queues) every parity shard the class's encoder has ready. */
  sendParity(fec: FecTx): void {
    const peer = this.peer;
    const enc = fec.encoder;
    const dscp = peer.host.policies()[fec.classId]!.outerDscp;
    for (let s = enc.pollParity(); s !== undefined; s = enc.pollParity()) {
      // A bonded class's parity spreads over the bond, by the same scheduler as its data.
      const p = peer.bond.parityPath(peer.host.nowMs, fec.classId, s.shard.length) ?? fec.parityPath(peer.paths, s, () => peer.bestUsablePath());
      if (p === undefined) {
        fec.parityUnsent++;
        continue;
      }
      // Lengths are left out when every data packet is as long as the shard (constant-size voice).
      let uniform = true;
      for (let i = 0; i < s.lengths.length; i++) {
        if (s.lengths[i] !== s.shardBytes) {
          uniform = false;
          break;
        }
      }
      const f = this.parityOut;
      f.groupId = s.groupId;
      f.index = s.index;
      f.k = s.k;
      f.m = s.m;
      f.checksum = s.checksum;
      f.shard = s.shard;
      f.lengths = uniform ? NO_LENGTHS : s.lengths;
      const sched = this.link(p).sched;
      if (sched !== undefined) {
        if (this.encrypted && !peer.sessionUp) {
          fec.parityUnsent++;
          continue;
        }
        const size = this.datagramSizeFor(parityFrameSize(p.linkId, (p.txSeq + 1) >>> 0, f));
        if (!sched.admit(fec.classId, size, peer.slot)) {
          peer.host.drop('queueFull');
          continue;
        }
        // The shard lives in the encoder's ring only for a few groups: the queue keeps a copy.
        const item = new PendingTx(TxKind.Parity, size, peer, peer.slot, p.id, p.remote, dscp, fec.classId, copyBytes(s.shard));
        item.fecGroup = s.groupId;
        item.fecIndex = s.index;
        item.fecK = s.k;
        item.parityM = s.m;
        item.checksum = s.checksum;
        item.lengths = f.lengths;
        peer.host.enqueue(this.link(p), item);
        continue;
      }
      const bytes = this.buildParity(p, fec, f);
      if (bytes !== undefined) this.transmit(p, p.remote, bytes, dscp);
    }
  }

  /** Numbers, frames and seals a parity frame on `p` now; undefined (counted) without a session. */
  buildParity(p: PathRuntime, fec: FecTx, f: ParityFields): Uint8Array | undefined {
    const seq = (p.txSeq + 1) >>> 0;
    const frameBytes = parityFrameSize(p.linkId, seq, f);
    let bytes: Uint8Array | undefined;
    if (!this.encrypted) {
      bytes = allocBytes(envelopeHeaderSize(0, 0, frameBytes) + frameBytes);
      writeParityFrame(bytes, writeEnvelopeHeader(bytes, 0, 0, 0, frameBytes), p.linkId, seq, f);
    } else {
      const frame = allocBytes(frameBytes);
      writeParityFrame(frame, 0, p.linkId, seq, f);
      bytes = this.seal(frame);
    }
    if (bytes === undefined) {
      fec.parityUnsent++;
      return undefined;
    }
    p.txSeq = seq;
    p.stats.onSent(this.peer.host.nowMs, seq);
    p.fecParitySent++;
    fec.paritySent++;
    fec.parityBytes += bytes.length;
    fec.countPacket(p.id);
    return bytes;
  }

  sendProbe(nowMs: number, p: PathRuntime): void {
    const peer = this.peer;
    if (this.encrypted && !peer.sessionUp) {
      p.echoSeq = 0; // nothing to seal with, the answer neither; the handshake is under way
      return;
    }
    const sched = this.link(p).sched;
    if (sched !== undefined) {
      // Framed when it leaves the queue: its sequence number and timestamp are the departure's.
      if (!sched.admit(CONTROL_CLASS, PROBE_DATAGRAM_BYTES, peer.slot)) return peer.host.drop('queueFull');
      peer.host.enqueue(this.link(p), new PendingTx(TxKind.Probe, PROBE_DATAGRAM_BYTES, peer, peer.slot, p.id, p.remote, p.dscp, CONTROL_CLASS, NO_BYTES));
      return;
    }
    const bytes = this.buildProbe(nowMs, p);
    if (bytes) this.transmit(p, p.remote, bytes, p.dscp);
  }

  buildProbe(nowMs: number, p: PathRuntime): Uint8Array | undefined {
    // Seq 0 marks a PMTU probe (peer-pmtu.ts): a wrapped sequence skips it.
    const seq = (p.txSeq + 1) >>> 0 || 1;
    const f = this.probeOut;
    f.link = p.linkId;
    f.seq = seq;
    f.txUs = Math.round(nowMs * 1000);
    f.dscp = p.dscp;
    f.holdUs = 0;
    f.epoch = this.peer.host.epoch;
    // The answer to the peer's last probe, held for this probe (peer.ts); without one, say we read them.
    f.echoSeq = p.echoSeq;
    f.echoTxUs = p.echoSeq !== 0 ? p.echoTxUs : 0;
    f.echoHoldUs = p.echoSeq !== 0 ? heldUs(p, nowMs) : 0;
    f.echoOk = p.echoSeq === 0;
    p.stats.reportInto(nowMs, f);
    const bytes = this.wrapProbe(f, false);
    if (bytes !== undefined) {
      p.echoSeq = 0;
      p.txSeq = seq;
      p.stats.onSent(nowMs, seq);
      p.pmtu.onSmallProbeSent(Math.round(nowMs * 1000) / 1000);
    }
    return bytes;
  }

  /**
   * A PMTU probe on `p` (peer-pmtu.ts): a seq-0 Probe padded so that the datagram (UDP payload)
   * is `datagramBytes`, sent now (DF like every datagram; a shaped link queues it as control).
   * Outside the path's sequence: a probe too big for the path is not path loss.
   */
  sendPmtuProbe(p: PathRuntime, datagramBytes: number, txUs: number): void {
    const frame = encodeFrame({ kind: 'probe', probe: { link: p.linkId, seq: 0, txUs, dscp: p.dscp } });
    let padded = padFrame(frame, this.encrypted ? datagramBytes : datagramBytes + AEAD_TAG_BYTES, 1, 1);
    if (padded === undefined) return;
    if (!this.encrypted) {
      // Plaintext (benchmarks only): no AEAD tag, and the envelope leaves its zero fields out;
      // wrapping costs nothing here, so measure and pad again by what is missing.
      const short = datagramBytes - this.wrap(padded)!.length;
      if (short !== 0) padded = padFrame(frame, datagramBytes + AEAD_TAG_BYTES + short, 1, 1);
      if (padded === undefined) return;
    }
    const bytes = this.wrap(padded);
    if (bytes === undefined) return;
    const bigTxAtMs = p.bigTxAtMs; // a probe is not traffic a black hole could hurt: it must not keep confirmations going
    this.transmit(p, p.remote, bytes, p.dscp);
    p.bigTxAtMs = bigTxAtMs;
  }

  /** A probe reply on `p` to `to`: echoes the probe's timestamp, carries what we received on the path. */
  sendProbeReply(p: PathRuntime, to: Endpoint, seq: number, txUs: number, nowMs: number, dscp: number, holdUs = 0): void {
    const f = this.probeOut;
    f.link = p.linkId;
    f.seq = seq;
    f.txUs = txUs;
    f.dscp = 0;
    f.holdUs = holdUs;
    f.epoch = 0;
    f.echoSeq = 0;
    f.echoTxUs = 0;
    f.echoHoldUs = 0;
    f.echoOk = false;
    p.stats.reportInto(nowMs, f);
    const bytes = this.wrapProbe(f, true);
    if (bytes) this.transmit(p, to, bytes, dscp);
  }

  /**
   * The answer held for our next probe on `p` (peer.ts), sent now as a ProbeReply instead: that
   * probe is not going (skipped, idle) or another probe of the peer's came first. Its hold time
   * keeps the RTT exact. Held answers only ever go to the path's endpoint, at its DSCP.
   */
  flushEcho(p: PathRuntime, nowMs: number): void {
    if (p.echoSeq === 0) return;
    const seq = p.echoSeq;
    p.echoSeq = 0;
    this.sendProbeReply(p, p.remote, seq, p.echoTxUs, nowMs, p.dscp, heldUs(p, nowMs));
  }

  /**
   * The datagram of a probe (reply false) or probe reply: the frame written in place by
   * writeProbeFrame after room for the envelope header and sealed in place, as buildData does
   * (encodeFrame's Writer, the sealed copy and the envelope copy were ~8% of the fleet's traffic
   * window, where probes and replies are two thirds of the datagrams). The same bytes.
   */
  private wrapProbe(f: ProbeFields, reply: boolean): Uint8Array | undefined {
    if (!probeTxUsWritable(f.txUs) || !probeTxUsWritable(f.echoTxUs)) {
      // Not a time we send (negative, or a peer's echo past 2^53): protobufjs writes it its way.
      const report = { received: f.received, highestSeq: f.highestSeq, jitterUs: f.jitterUs };
      const echo = { echoSeq: f.echoSeq, echoTxUs: f.echoTxUs, echoHoldUs: f.echoHoldUs, echoOk: f.echoOk };
      const frame: Frame = reply
        ? { kind: 'probeReply', probeReply: { link: f.link, seq: f.seq, txUs: f.txUs, holdUs: f.holdUs, report } }
        : { kind: 'probe', probe: { link: f.link, seq: f.seq, txUs: f.txUs, dscp: f.dscp, report, epoch: f.epoch, ...echo } };
      return this.wrap(encodeFrame(frame));
    }
    const frameLen = probeFrameSize(f, reply);
    if (!this.encrypted) {
      const frame = allocBytes(frameLen);
      writeProbeFrame(frame, 0, f, reply);
      return this.wrap(frame);
    }
    const sealedLen = frameLen + AEAD_TAG_BYTES;
    const room = envelopeHeaderSize(0xffffffff, 2 ** 52, sealedLen);
    const buf = allocBytes(room + sealedLen);
    writeProbeFrame(buf, room, f, reply);
    const host = this.peer.host;
    const r = host.sessions!.sealAt(host.nowMs, this.peer.name, buf, room, frameLen);
    if (!r.ok) {
      host.drainCrypto();
      return undefined;
    }
    const start = room - envelopeHeaderSize(r.receiverIndex, r.counter, sealedLen);
    writeEnvelopeHeader(buf, start, r.receiverIndex, r.counter, sealedLen);
    return buf.subarray(start);
  }

  /** A queued item leaves its link's shaper: frame and seal it now (undefined: lost, no session). */
  buildQueued(nowMs: number, item: PendingTx): Uint8Array | undefined {
    const p = this.peer.paths[item.pathId];
    if (p === undefined) return undefined;
    switch (item.kind) {
      case TxKind.Sealed:
        return item.bytes;
      case TxKind.Data:
        return this.buildData(p, item.bytes, item.dupSeq, item.classId, item.fecGroup, item.fecIndex, item.fecK, item.bondSeq);
      case TxKind.Parity: {
        const fec = this.peer.fecTx[item.classId];
        if (fec === undefined) return undefined;
        const f = this.parityOut;
        f.groupId = item.fecGroup;
        f.index = item.fecIndex;
        f.k = item.fecK;
        f.m = item.parityM;
        f.checksum = item.checksum;
        f.lengths = item.lengths;
        f.shard = item.bytes;
        return this.buildParity(p, fec, f);
      }
      case TxKind.Probe:
        return this.buildProbe(nowMs, p);
    }
  }

  sendHello(nowMs: number, p: PathRuntime): void {
    // The link's tier only when not primary: a primary link's hello stays what older peers take.
    const tier = p.linkTier === 'backup' ? 2 : p.linkTier === 'overflow' ? 1 : 0;
    p.helloAtMs = tier ? nowMs : Infinity;
    this.sendFrame(p, p.remote, encodeFrame({ kind: 'control', control: { hello: { link: p.linkId, linkName: p.name, site: this.peer.host.site, ...(tier ? { tier } : {}) } } }), p.dscp);
  }

  /** Seals (or, in plaintext mode, wraps) an encoded frame and sends it on `p` to `to`. */
  sendFrame(p: PathRuntime, to: Endpoint, frame: Uint8Array, dscp: number): void {
    const bytes = this.wrap(frame);
    if (bytes) this.transmit(p, to, bytes, dscp);
  }

  /** An authenticated empty packet (keepalive) on `p`. */
  sendKeepalive(p: PathRuntime): void {
    if (!this.encrypted) return;
    const bytes = this.seal(new Uint8Array(0));
    if (bytes) this.transmit(p, p.remote, bytes, p.dscp);
  }

  /** The datagram for an encoded frame: sealed, or enveloped in plaintext mode. */
  private wrap(frame: Uint8Array): Uint8Array | undefined {
    if (!this.encrypted) return encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: frame });
    return this.seal(frame);
  }

  /**
   * A new session is current (sessionEstablished, sessionConfirmed): every class's open FEC group
   * ends without parity (FecEncoder.abandon), so no parity of data sealed for the old session goes
   * out on the new one, where a peer that restarted in between would rebuild a packet its previous
   * life delivered. A rekey (every 2 min) costs one group's protection per class.
   */
  onSessionChange(): void {
    for (const fec of this.peer.fecTxList) fec.encoder.abandon();
  }

  /** Envelope around the sealed frame, or undefined without a session (a handshake is started). */
  private seal(frame: Uint8Array): Uint8Array | undefined {
    const host = this.peer.host;
    const r = host.sessions!.seal(host.nowMs, this.peer.name, frame);
    if (!r.ok) {
      host.drainCrypto();
      return undefined;
    }
    const ct = r.ciphertext;
    const out = allocBytes(envelopeHeaderSize(r.receiverIndex, r.counter, ct.length) + ct.length);
    out.set(ct, writeEnvelopeHeader(out, 0, r.receiverIndex, r.counter, ct.length));
    return out;
  }

  /** A sealed datagram out on the path's link (through the shaper as control when shaped). */
  transmit(p: PathRuntime, to: Endpoint, bytes: Uint8Array, dscp: number, classId = CONTROL_CLASS): void {
    notePathTx(p, bytes.length, this.peer.host.nowMs);
    this.peer.host.transmit(this.link(p), this.peer.slot, p.id, to, bytes, dscp, classId);
  }
}
