/**
 * Hand-written encoders for the per-packet messages: data frames, FEC parity frames and the
 * envelope header, written in place into a caller's buffer (one allocation per datagram).
 *
 * Contract: the bytes are identical to protobufjs's FrameType/EnvelopeType.encode for the same
 * values (same field order, zero values omitted); a property test checks it byte for byte. The
 * *Size functions give the exact length the matching write* function produces.
 */
import { WIRE_VERSION } from '../constants.ts';
import { allocBytes } from '../bytes.ts';

// ---- Hot path: data frames -------------------------------------------------------------------

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Size of the encoded Data frame (inside Frame) for a packet, without writing it. */
export function dataFrameSize(link: number, pathSeq: number, packetBytes: number, fecGroup = 0, fecIndex = 0, dupSeq = 0, fecK = 0, bondSeq = 0): number {
  const inner = dataInnerSize(link, pathSeq, packetBytes, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
  return 1 + varintSize(inner) + inner;
}

function dataInnerSize(link: number, pathSeq: number, packetBytes: number, fecGroup: number, fecIndex: number, dupSeq: number, fecK: number, bondSeq: number): number {
  let n = 0;
  if (link !== 0) n += 1 + varintSize(link);
  if (pathSeq !== 0) n += 1 + varintSize(pathSeq);
  n += 1 + varintSize(packetBytes) + packetBytes;
  if (fecGroup !== 0) n += 1 + varintSize(fecGroup);
  if (fecIndex !== 0) n += 1 + varintSize(fecIndex);
  if (dupSeq !== 0) n += 1 + varintSize(dupSeq);
  if (fecK !== 0) n += 1 + varintSize(fecK);
  if (bondSeq !== 0) n += 5; // fixed32
  return n;
}

/**
 * Writes Frame{data: Data{...}} into `out` at `pos`; returns the end position. Field order and
 * omission of zero values match protobufjs, so the bytes are identical to FrameType.encode.
 */
export function writeDataFrame(
  out: Uint8Array,
  pos: number,
  link: number,
  pathSeq: number,
  packet: Uint8Array,
  fecGroup = 0,
  fecIndex = 0,
  dupSeq = 0,
  fecK = 0,
  bondSeq = 0,
): number {
  const inner = dataInnerSize(link, pathSeq, packet.length, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
  out[pos++] = 0x0a; // field 1 (data), wire type 2
  pos = writeVarint(out, pos, inner);
  if (link !== 0) {
    out[pos++] = 0x08;
    pos = writeVarint(out, pos, link);
  }
  if (pathSeq !== 0) {
    out[pos++] = 0x10;
    pos = writeVarint(out, pos, pathSeq >>> 0);
  }
  out[pos++] = 0x1a;
  pos = writeVarint(out, pos, packet.length);
  out.set(packet, pos);
  pos += packet.length;
  if (fecGroup !== 0) {
    out[pos++] = 0x20;
    pos = writeVarint(out, pos, fecGroup >>> 0);
  }
  if (fecIndex !== 0) {
    out[pos++] = 0x28;
    pos = writeVarint(out, pos, fecIndex);
  }
  if (dupSeq !== 0) {
    out[pos++] = 0x30;
    pos = writeVarint(out, pos, dupSeq >>> 0);
  }
  if (fecK !== 0) {
    out[pos++] = 0x38;
    pos = writeVarint(out, pos, fecK);
  }
  if (bondSeq !== 0) {
    out[pos++] = 0x45; // field 8, fixed32 little-endian
    out[pos++] = bondSeq & 0xff;
    out[pos++] = (bondSeq >>> 8) & 0xff;
    out[pos++] = (bondSeq >>> 16) & 0xff;
    out[pos++] = (bondSeq >>> 24) & 0xff;
  }
  return pos;
}

/** Envelope header size for a sealed payload of `sealedBytes`. */
export function envelopeHeaderSize(receiver: number, counter: number, sealedBytes: number): number {
  let n = 2; // version: tag + 1-byte varint
  if (receiver !== 0) n += 5;
  if (counter !== 0) n += 9;
  n += 1 + varintSize(sealedBytes);
  return n;
}

/**
 * Writes the envelope header (everything before the sealed bytes) at `pos`; the caller then
 * writes exactly `sealedBytes` of sealed payload. Returns the position where the payload starts.
 */
export function writeEnvelopeHeader(out: Uint8Array, pos: number, receiver: number, counter: number, sealedBytes: number): number {
  out[pos++] = 0x08;
  out[pos++] = WIRE_VERSION;
  if (receiver !== 0) {
    out[pos++] = 0x15; // field 2, fixed32
    out[pos++] = receiver & 0xff;
    out[pos++] = (receiver >>> 8) & 0xff;
    out[pos++] = (receiver >>> 16) & 0xff;
    out[pos++] = (receiver >>> 24) & 0xff;
  }
  if (counter !== 0) {
    out[pos++] = 0x19; // field 3, fixed64 little-endian
    const lo = counter >>> 0;
    const hi = Math.floor(counter / 4294967296) >>> 0;
    out[pos++] = lo & 0xff;
    out[pos++] = (lo >>> 8) & 0xff;
    out[pos++] = (lo >>> 16) & 0xff;
    out[pos++] = (lo >>> 24) & 0xff;
    out[pos++] = hi & 0xff;
    out[pos++] = (hi >>> 8) & 0xff;
    out[pos++] = (hi >>> 16) & 0xff;
    out[pos++] = (hi >>> 24) & 0xff;
  }
  out[pos++] = 0x22; // field 4, length-delimited
  pos = writeVarint(out, pos, sealedBytes);
  return pos;
}

/** One-allocation encoder of a plaintext data datagram (envelope + frame). */
export function encodeDataDatagram(
  receiver: number,
  counter: number,
  link: number,
  pathSeq: number,
  packet: Uint8Array,
  fecGroup = 0,
  fecIndex = 0,
  dupSeq = 0,
  fecK = 0,
  bondSeq = 0,
): Uint8Array {
  const frameBytes = dataFrameSize(link, pathSeq, packet.length, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
  const header = envelopeHeaderSize(receiver, counter, frameBytes);
  const out = allocBytes(header + frameBytes);
  const pos = writeEnvelopeHeader(out, 0, receiver, counter, frameBytes);
  writeDataFrame(out, pos, link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
  return out;
}

// ---- FEC parity frames (one per parity shard: hand-written too, bulk FEC sends thousands/s) ----

/** What writeParityFrame needs; FecEncoder's FecParityShard fits it. */
export interface ParityFields {
  readonly groupId: number;
  readonly index: number;
  readonly k: number;
  readonly m: number;
  readonly lengths: ArrayLike<number>;
  readonly checksum: number;
  readonly shard: Uint8Array;
}

function parityInnerSize(link: number, pathSeq: number, f: ParityFields): number {
  let n = 0;
  if (link !== 0) n += 1 + varintSize(link);
  if (pathSeq !== 0) n += 1 + varintSize(pathSeq >>> 0);
  if (f.groupId !== 0) n += 1 + varintSize(f.groupId >>> 0);
  if (f.index !== 0) n += 1 + varintSize(f.index);
  if (f.k !== 0) n += 1 + varintSize(f.k);
  if (f.m !== 0) n += 1 + varintSize(f.m);
  const lens = packedSize(f.lengths);
  if (f.lengths.length > 0) n += 1 + varintSize(lens) + lens;
  if (f.shard.length > 0) n += 1 + varintSize(f.shard.length) + f.shard.length;
  if (f.checksum !== 0) n += 5;
  return n;
}

function packedSize(xs: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < xs.length; i++) n += varintSize(xs[i]! >>> 0);
  return n;
}

/** Size of Frame{fec_parity: FecParity{...}}. */
export function parityFrameSize(link: number, pathSeq: number, f: ParityFields): number {
  const inner = parityInnerSize(link, pathSeq, f);
  return 1 + varintSize(inner) + inner;
}

/** Writes Frame{fec_parity} at `pos`, byte-identical to protobufjs; returns the end position. */
export function writeParityFrame(out: Uint8Array, pos: number, link: number, pathSeq: number, f: ParityFields): number {
  const inner = parityInnerSize(link, pathSeq, f);
  out[pos++] = 0x2a; // field 5 (fec_parity), wire type 2
  pos = writeVarint(out, pos, inner);
  if (link !== 0) {
    out[pos++] = 0x08;
    pos = writeVarint(out, pos, link);
  }
  if (pathSeq !== 0) {
    out[pos++] = 0x10;
    pos = writeVarint(out, pos, pathSeq >>> 0);
  }
  if (f.groupId !== 0) {
    out[pos++] = 0x18;
    pos = writeVarint(out, pos, f.groupId >>> 0);
  }
  if (f.index !== 0) {
    out[pos++] = 0x20;
    pos = writeVarint(out, pos, f.index);
  }
  if (f.k !== 0) {
    out[pos++] = 0x28;
    pos = writeVarint(out, pos, f.k);
  }
  if (f.m !== 0) {
    out[pos++] = 0x30;
    pos = writeVarint(out, pos, f.m);
  }
  if (f.lengths.length > 0) {
    out[pos++] = 0x3a;
    pos = writeVarint(out, pos, packedSize(f.lengths));
    for (let i = 0; i < f.lengths.length; i++) pos = writeVarint(out, pos, f.lengths[i]! >>> 0);
  }
  if (f.shard.length > 0) {
    out[pos++] = 0x42;
    pos = writeVarint(out, pos, f.shard.length);
    out.set(f.shard, pos);
    pos += f.shard.length;
  }
  if (f.checksum !== 0) {
    const c = f.checksum >>> 0;
    out[pos++] = 0x4d; // field 9, fixed32 little-endian
    out[pos++] = c & 0xff;
    out[pos++] = (c >>> 8) & 0xff;
    out[pos++] = (c >>> 16) & 0xff;
    out[pos++] = (c >>> 24) & 0xff;
  }
  return pos;
}

// ---- Probes and probe replies (every path sends 10 probes a second and answers the peer's) ----

/** What writeProbeFrame / writeProbeReplyFrame need; `report` absent leaves the field out. */
export interface ProbeFields {
  link: number;
  seq: number;
  txUs: number;
  /** Probe: the outer DSCP it went with. Reply: unused. */
  dscp: number;
  /** Reply: the peer's hold time (us). Probe: unused. */
  holdUs: number;
  /** Probe only: the sender's epoch (0 leaves it out). */
  epoch: number;
  /** Probe only: the answer to the peer's last probe (echoSeq 0: none; echoTxUs probeTxUsWritable). */
  echoSeq: number;
  echoTxUs: number;
  echoHoldUs: number;
  /** Probe only: we read echoes (overlay.proto Probe.echo_ok). */
  echoOk: boolean;
  hasReport: boolean;
  received: number;
  highestSeq: number;
  jitterUs: number;
}

/** txUs is written as protobufjs writes a uint64 number; others (negative, past 2^53, NaN) take encodeFrame. */
export function probeTxUsWritable(txUs: number): boolean {
  return txUs >= 0 && txUs <= Number.MAX_SAFE_INTEGER && Number.isInteger(txUs);
}

function varint64Size(v: number): number {
  if (v < 0x10000000) return varintSize(v);
  let n = 4;
  for (v = Math.floor(v / 0x10000000); v > 0; v = Math.floor(v / 0x80)) n++;
  return n;
}

function writeVarint64(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

function reportSize(f: ProbeFields): number {
  let n = 0;
  if (f.received >>> 0 !== 0) n += 1 + varintSize(f.received >>> 0);
  if (f.highestSeq >>> 0 !== 0) n += 1 + varintSize(f.highestSeq >>> 0);
  if (f.jitterUs >>> 0 !== 0) n += 1 + varintSize(f.jitterUs >>> 0);
  return n;
}

function probeInnerSize(f: ProbeFields, reply: boolean): number {
  let n = 0;
  if (f.link >>> 0 !== 0) n += 1 + varintSize(f.link >>> 0);
  if (f.seq >>> 0 !== 0) n += 1 + varintSize(f.seq >>> 0);
  if (f.txUs !== 0) n += 1 + varint64Size(f.txUs);
  const fourth = reply ? f.holdUs >>> 0 : f.dscp >>> 0;
  if (fourth !== 0) n += 1 + varintSize(fourth);
  if (f.hasReport) {
    const r = reportSize(f);
    n += 1 + varintSize(r) + r;
  }
  if (!reply) {
    if (f.epoch >>> 0 !== 0) n += 1 + varintSize(f.epoch >>> 0);
    if (f.echoSeq >>> 0 !== 0) n += 1 + varintSize(f.echoSeq >>> 0);
    if (f.echoTxUs !== 0) n += 1 + varint64Size(f.echoTxUs);
    if (f.echoHoldUs >>> 0 !== 0) n += 1 + varintSize(f.echoHoldUs >>> 0);
    if (f.echoOk) n += 2;
  }
  return n;
}

/** Size of Frame{probe} (reply false) or Frame{probe_reply} (reply true); txUs must be probeTxUsWritable. */
export function probeFrameSize(f: ProbeFields, reply: boolean): number {
  const inner = probeInnerSize(f, reply);
  return 1 + varintSize(inner) + inner;
}

/**
 * Writes Frame{probe} or Frame{probe_reply} at `pos`, byte-identical to protobufjs's encodeFrame of
 * the same values (uint32 fields as `>>> 0`, zero values left out, a present report written even
 * when empty); returns the end position. encodeFrame cost a Writer, its buffer and a copy per
 * probe: ~4% of the fleet's traffic window with the envelope copy after it.
 */
export function writeProbeFrame(out: Uint8Array, pos: number, f: ProbeFields, reply: boolean): number {
  out[pos++] = reply ? 0x1a : 0x12; // field 3 (probe_reply) or 2 (probe), wire type 2
  pos = writeVarint(out, pos, probeInnerSize(f, reply));
  if (f.link >>> 0 !== 0) {
    out[pos++] = 0x08;
    pos = writeVarint(out, pos, f.link >>> 0);
  }
  if (f.seq >>> 0 !== 0) {
    out[pos++] = 0x10;
    pos = writeVarint(out, pos, f.seq >>> 0);
  }
  if (f.txUs !== 0) {
    out[pos++] = 0x18;
    pos = writeVarint64(out, pos, f.txUs);
  }
  const fourth = reply ? f.holdUs >>> 0 : f.dscp >>> 0;
  if (fourth !== 0) {
    out[pos++] = 0x20;
    pos = writeVarint(out, pos, fourth);
  }
  if (f.hasReport) {
    out[pos++] = 0x2a;
    pos = writeVarint(out, pos, reportSize(f));
    if (f.received >>> 0 !== 0) {
      out[pos++] = 0x08;
      pos = writeVarint(out, pos, f.received >>> 0);
    }
    if (f.highestSeq >>> 0 !== 0) {
      out[pos++] = 0x10;
      pos = writeVarint(out, pos, f.highestSeq >>> 0);
    }
    if (f.jitterUs >>> 0 !== 0) {
      out[pos++] = 0x18;
      pos = writeVarint(out, pos, f.jitterUs >>> 0);
    }
  }
  if (reply) return pos;
  if (f.epoch >>> 0 !== 0) {
    out[pos++] = 0x30;
    pos = writeVarint(out, pos, f.epoch >>> 0);
  }
  if (f.echoSeq >>> 0 !== 0) {
    out[pos++] = 0x38;
    pos = writeVarint(out, pos, f.echoSeq >>> 0);
  }
  if (f.echoTxUs !== 0) {
    out[pos++] = 0x40;
    pos = writeVarint64(out, pos, f.echoTxUs);
  }
  if (f.echoHoldUs >>> 0 !== 0) {
    out[pos++] = 0x48;
    pos = writeVarint(out, pos, f.echoHoldUs >>> 0);
  }
  if (f.echoOk) {
    out[pos++] = 0x50;
    out[pos++] = 1;
  }
  return pos;
}
