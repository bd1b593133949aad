/**
 * Fast decoders for the messages Braid sends per packet: bytes -> Envelope / RawFrame, or undefined.
 *
 * Contract: `undefined` means "not taken here" (unknown field, second body, truncation, ...), never
 * "invalid"; codec.ts then runs protobufjs (decodeEnvelope/decodeFrame) or drops the datagram as
 * 'malformed' (the strict receive-path decoders). What these return has NOT been range-checked:
 * codec.ts's checkEnvelope/checkFrame do that. No exceptions escape.
 */
import type { ControlFrame, DataFrame, Envelope, FecParityFrame, PathReport, ProbeFrame, ProbeReplyFrame, RawFrame } from './frames.ts';

// ---- Hot path: decoding -----------------------------------------------------------------------
//
// protobufjs's generic decoder (reflection-built code, a Reader object per call, try/catch) cost
// ~10% of a virtual-time scenario run (decodeFrame 6.9%, decodeEnvelope 2.7% of the profile). The
// fast decoders below read the messages Braid sends per packet (Envelope; Frame with Data, Probe,
// ProbeReply or FecParity) and give up, returning undefined, on anything else: unknown fields,
// groups, a second body, non-packed lengths, varints longer than this code reads, truncation. The
// caller then runs protobufjs, so every input decodes exactly as before (a property test compares
// the two on valid, random and mutated inputs).

/** Position of the fast reader; -1 after a failed read (the caller gives up). */
let fpos = 0;

/** uint32 varint at fpos (at most 5 bytes, value below 2^32); -1 when the fast path gives up. */
function fUint32(b: Uint8Array, end: number): number {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (fpos >= end) return -1;
    const x = b[fpos++]!;
    if (shift === 28) {
      if (x > 0x0f) return -1;
      return (v | (x << 28)) >>> 0;
    }
    v |= (x & 0x7f) << shift;
    if (x < 0x80) return v >>> 0;
  }
  return -1;
}

/** uint64 varint at fpos as a number, exactly when below 2^53; -1 otherwise. */
function fUint64(b: Uint8Array, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (fpos >= end) return -1;
    const x = b[fpos++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80) return v <= Number.MAX_SAFE_INTEGER ? v : -1;
    mul *= 128;
  }
  return -1;
}

/** A length-delimited field's body [start, start+len) at fpos; -1 when it does not fit. */
function fLength(b: Uint8Array, end: number): number {
  const len = fUint32(b, end);
  if (len < 0 || len > end - fpos) return -1;
  return len;
}

function fFixed32(b: Uint8Array, end: number): number {
  if (end - fpos < 4) return -1;
  const v = (b[fpos]! | (b[fpos + 1]! << 8) | (b[fpos + 2]! << 16) | (b[fpos + 3]! << 24)) >>> 0;
  fpos += 4;
  return v;
}

const EMPTY_BYTES = new Uint8Array(0);
const NO_LENGTHS: number[] = [];

export function fastEnvelope(b: Uint8Array): Envelope | undefined {
  const end = b.length;
  fpos = 0;
  let version = 0;
  let receiver = 0;
  let counter = 0;
  let sealed: Uint8Array = EMPTY_BYTES;
  let handshake: Uint8Array | undefined;
  while (fpos < end) {
    switch (b[fpos++]) {
      case 0x08:
        if ((version = fUint32(b, end)) < 0) return undefined;
        break;
      case 0x15:
        if ((receiver = fFixed32(b, end)) < 0) return undefined;
        break;
      case 0x19: {
        if (end - fpos < 8) return undefined;
        const lo = fFixed32(b, end);
        const hi = fFixed32(b, end);
        counter = lo + hi * 4294967296;
        break;
      }
      case 0x22: {
        const len = fLength(b, end);
        if (len < 0) return undefined;
        sealed = b.subarray(fpos, fpos + len);
        fpos += len;
        break;
      }
      case 0x2a: {
        const len = fLength(b, end);
        if (len < 0) return undefined;
        handshake = b.subarray(fpos, fpos + len);
        fpos += len;
        break;
      }
      default:
        return undefined;
    }
  }
  return handshake === undefined ? { version, receiver, counter, sealed } : { version, receiver, counter, sealed, handshake };
}

/** Frame.padding (field 15, bytes): filler after the body (wire/padding.ts), skipped. */
const PADDING_TAG = 0x7a;

export function fastFrame(b: Uint8Array): RawFrame | undefined {
  let end = b.length;
  fpos = 0;
  if (end < 2) return undefined;
  const tag = b[fpos++];
  const len = fLength(b, end);
  if (len < 0) return undefined;
  // Exactly one body, then at most one padding field filling the rest; anything else goes to protobufjs.
  if (fpos + len !== end) {
    const bodyEnd = fpos + len;
    fpos = bodyEnd;
    if (b[fpos++] !== PADDING_TAG) return undefined;
    const pad = fLength(b, b.length);
    if (pad < 0 || fpos + pad !== b.length) return undefined;
    end = bodyEnd;
    fpos = bodyEnd - len;
  }
  switch (tag) {
    case 0x0a: {
      const data = fastData(b, end);
      return data && { body: 'data', data };
    }
    case 0x12: {
      const probe = fastProbe(b, end);
      return probe && { body: 'probe', probe };
    }
    case 0x1a: {
      const probeReply = fastProbeReply(b, end);
      return probeReply && { body: 'probeReply', probeReply };
    }
    case 0x22: {
      const control = fastControl(b, end);
      return control && { body: 'control', control };
    }
    case 0x2a: {
      const fecParity = fastParity(b, end);
      return fecParity && { body: 'fecParity', fecParity };
    }
    default:
      return undefined;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A string field's text; undefined when it does not fit or is not valid UTF-8 (protobufjs would not reject it: fall back). */
function fString(b: Uint8Array, end: number): string | undefined {
  const len = fLength(b, end);
  if (len < 0) return undefined;
  const start = fpos;
  fpos += len;
  if (len === 0) return '';
  try {
    return utf8.decode(b.subarray(start, start + len));
  } catch {
    return undefined;
  }
}

/** Control{drain | hello}: exactly one body filling the message. */
function fastControl(b: Uint8Array, end: number): ControlFrame | undefined {
  if (fpos >= end) return undefined;
  const tag = b[fpos++];
  const len = fLength(b, end);
  if (len < 0 || fpos + len !== end) return undefined;
  if (tag === 0x0a) {
    let link = 0;
    let drained = 0;
    while (fpos < end) {
      let v: number;
      switch (b[fpos++]) {
        case 0x08:
          v = link = fUint32(b, end);
          break;
        case 0x10:
          v = drained = fUint32(b, end);
          break;
        default:
          return undefined;
      }
      if (v < 0) return undefined;
    }
    return { drain: { link, drained: drained !== 0 } };
  }
  if (tag === 0x12) {
    let link = 0;
    let linkName = '';
    let site = '';
    let tier = 0;
    while (fpos < end) {
      switch (b[fpos++]) {
        case 0x08:
          if ((link = fUint32(b, end)) < 0) return undefined;
          break;
        case 0x20:
          if ((tier = fUint32(b, end)) < 0) return undefined;
          break;
        case 0x12: {
          const t = fString(b, end);
          if (t === undefined) return undefined;
          linkName = t;
          break;
        }
        case 0x1a: {
          const t = fString(b, end);
          if (t === undefined) return undefined;
          site = t;
          break;
        }
        default:
          return undefined;
      }
    }
    return { hello: { link, linkName, site, tier } };
  }
  return undefined;
}

function fastData(b: Uint8Array, end: number): DataFrame | undefined {
  let link = 0;
  let pathSeq = 0;
  let packet: Uint8Array = EMPTY_BYTES;
  let fecGroup = 0;
  let fecIndex = 0;
  let dupSeq = 0;
  let fecK = 0;
  let bondSeq = 0;
  while (fpos < end) {
    let v: number;
    switch (b[fpos++]) {
      case 0x08:
        v = link = fUint32(b, end);
        break;
      case 0x10:
        v = pathSeq = fUint32(b, end);
        break;
      case 0x1a:
        v = fLength(b, end);
        if (v >= 0) {
          packet = b.subarray(fpos, fpos + v);
          fpos += v;
        }
        break;
      case 0x20:
        v = fecGroup = fUint32(b, end);
        break;
      case 0x28:
        v = fecIndex = fUint32(b, end);
        break;
      case 0x30:
        v = dupSeq = fUint32(b, end);
        break;
      case 0x38:
        v = fecK = fUint32(b, end);
        break;
      case 0x45:
        v = bondSeq = fFixed32(b, end);
        break;
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq };
}

function fastReport(b: Uint8Array, end: number): PathReport | undefined {
  const len = fLength(b, end);
  if (len < 0) return undefined;
  const stop = fpos + len;
  let received = 0;
  let highestSeq = 0;
  let jitterUs = 0;
  while (fpos < stop) {
    let v: number;
    switch (b[fpos++]) {
      case 0x08:
        v = received = fUint32(b, stop);
        break;
      case 0x10:
        v = highestSeq = fUint32(b, stop);
        break;
      case 0x18:
        v = jitterUs = fUint32(b, stop);
        break;
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { received, highestSeq, jitterUs };
}

function fastProbe(b: Uint8Array, end: number): ProbeFrame | undefined {
  let link = 0;
  let seq = 0;
  let txUs = 0;
  let dscp = 0;
  let report: PathReport | null = null;
  let epoch = 0;
  let echoSeq = 0;
  let echoTxUs = 0;
  let echoHoldUs = 0;
  let echoOk = false;
  while (fpos < end) {
    let v: number;
    switch (b[fpos++]) {
      case 0x08:
        v = link = fUint32(b, end);
        break;
      case 0x10:
        v = seq = fUint32(b, end);
        break;
      case 0x18:
        v = txUs = fUint64(b, end);
        break;
      case 0x20:
        v = dscp = fUint32(b, end);
        break;
      case 0x2a: {
        // A repeated message field merges in protobufjs; the fast path takes only one.
        if (report !== null) return undefined;
        const r = fastReport(b, end);
        if (r === undefined) return undefined;
        report = r;
        v = 0;
        break;
      }
      case 0x30:
        v = epoch = fUint32(b, end);
        break;
      case 0x38:
        v = echoSeq = fUint32(b, end);
        break;
      case 0x40:
        v = echoTxUs = fUint64(b, end);
        break;
      case 0x48:
        v = echoHoldUs = fUint32(b, end);
        break;
      case 0x50:
        // A bool: protobufjs reads any varint, nonzero as true.
        v = fUint32(b, end);
        echoOk = v > 0;
        break;
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, seq, txUs, dscp, report, epoch, echoSeq, echoTxUs, echoHoldUs, echoOk };
}

function fastProbeReply(b: Uint8Array, end: number): ProbeReplyFrame | undefined {
  let link = 0;
  let seq = 0;
  let txUs = 0;
  let holdUs = 0;
  let report: PathReport | null = null;
  while (fpos < end) {
    let v: number;
    switch (b[fpos++]) {
      case 0x08:
        v = link = fUint32(b, end);
        break;
      case 0x10:
        v = seq = fUint32(b, end);
        break;
      case 0x18:
        v = txUs = fUint64(b, end);
        break;
      case 0x20:
        v = holdUs = fUint32(b, end);
        break;
      case 0x2a: {
        if (report !== null) return undefined;
        const r = fastReport(b, end);
        if (r === undefined) return undefined;
        report = r;
        v = 0;
        break;
      }
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, seq, txUs, holdUs, report };
}

function fastParity(b: Uint8Array, end: number): FecParityFrame | undefined {
  let link = 0;
  let pathSeq = 0;
  let group = 0;
  let index = 0;
  let k = 0;
  let m = 0;
  let lengths = NO_LENGTHS;
  let shard: Uint8Array = EMPTY_BYTES;
  let checksum = 0;
  while (fpos < end) {
    let v: number;
    switch (b[fpos++]) {
      case 0x08:
        v = link = fUint32(b, end);
        break;
      case 0x10:
        v = pathSeq = fUint32(b, end);
        break;
      case 0x18:
        v = group = fUint32(b, end);
        break;
      case 0x20:
        v = index = fUint32(b, end);
        break;
      case 0x28:
        v = k = fUint32(b, end);
        break;
      case 0x30:
        v = m = fUint32(b, end);
        break;
      case 0x3a: {
        // Packed lengths; protobufjs appends a second run to the first: the fast path takes one.
        if (lengths !== NO_LENGTHS) return undefined;
        v = fLength(b, end);
        if (v < 0) return undefined;
        const stop = fpos + v;
        lengths = [];
        while (fpos < stop) {
          const x = fUint32(b, stop);
          if (x < 0) return undefined;
          lengths.push(x);
        }
        break;
      }
      case 0x42:
        v = fLength(b, end);
        if (v >= 0) {
          shard = b.subarray(fpos, fpos + v);
          fpos += v;
        }
        break;
      case 0x4d:
        v = checksum = fFixed32(b, end);
        break;
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, pathSeq, group, index, k, m, lengths, shard, checksum };
}
