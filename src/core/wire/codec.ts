/**
 * Overlay codec: Envelope and Frame (overlay.proto) <-> bytes.
 *
 * Stages, in order, for a received datagram:
 *   1. decodeEnvelope: bytes -> Envelope (version checked, sizes capped)
 *   2. (crypto, issue 3) open `sealed` with the session keyed by `receiver`
 *   3. decodeFrame: bytes -> Frame with exactly one body, fields range-checked
 *
 * Both decoders are total: any byte string gives a value or a DecodeError reason, never an
 * exception (protobufjs throws on truncated input, so the throw is caught here, once, at the edge
 * of the codec). The data-frame encoder is hand-written (headers written in place into one buffer)
 * because it runs once per packet; a property test checks it against protobufjs byte for byte.
 */
import protobuf from 'protobufjs';
import { overlayDescriptor } from './descriptor.ts';
import { DEFAULT_LINK_MTU_BYTES, MAX_DATAGRAM_BYTES, MAX_LINKS, MAX_RECEIVE_DATAGRAM_BYTES, RECEIVE_DATAGRAM_SLACK_BYTES, WIRE_VERSION } from '../constants.ts';
import { allocBytes } from '../bytes.ts';

// 64-bit fields decode as JS numbers: counters stay below 2^53 in any real session
// (2^53 packets at 10 Mpps is 28 years), and numbers avoid an allocation per packet.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const root = protobuf.Root.fromJSON(overlayDescriptor as unknown as protobuf.INamespace);
const EnvelopeType = root.lookupType('braid.v1.Envelope');
const FrameType = root.lookupType('braid.v1.Frame');

export interface Envelope {
  version: number;
  receiver: number;
  counter: number;
  sealed: Uint8Array;
  /** Noise handshake message, when this envelope carries one (then `sealed` is empty). */
  handshake?: Uint8Array;
}

export interface PathReport {
  received: number;
  highestSeq: number;
  /** The reporter's jitter on this path (what we send arrives with), microseconds; 0 = unknown. */
  jitterUs?: number;
}

export interface DataFrame {
  link: number;
  pathSeq: number;
  packet: Uint8Array;
  fecGroup: number;
  fecIndex: number;
  dupSeq: number;
  /** Sender's nominal FEC group size (0 when unprotected or not told). */
  fecK?: number;
}

export interface ProbeFrame {
  link: number;
  seq: number;
  txUs: number;
  dscp: number;
  report?: PathReport | null;
  epoch?: number;
}

export interface ProbeReplyFrame {
  link: number;
  seq: number;
  txUs: number;
  holdUs: number;
  report?: PathReport | null;
}

export interface DrainControl {
  link: number;
  drained: boolean;
}

export interface HelloControl {
  link: number;
  linkName: string;
  site: string;
}

export interface ControlFrame {
  drain?: DrainControl | null;
  hello?: HelloControl | null;
}

export interface FecParityFrame {
  link: number;
  pathSeq: number;
  group: number;
  index: number;
  k: number;
  m: number;
  lengths: number[];
  shard: Uint8Array;
  /** Group checksum (src/core/fec/buffers.ts); 0 when absent. */
  checksum?: number;
}

/** Exactly one of the bodies is set. */
export type Frame =
  | { kind: 'data'; data: DataFrame }
  | { kind: 'probe'; probe: ProbeFrame }
  | { kind: 'probeReply'; probeReply: ProbeReplyFrame }
  | { kind: 'control'; control: ControlFrame }
  | { kind: 'fecParity'; fecParity: FecParityFrame };

/** Why a datagram could not be decoded; each is a drop counter. */
export type DecodeError = 'malformed' | 'badVersion' | 'tooLarge' | 'emptyFrame' | 'badField';

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: DecodeError };

interface RawFrame {
  body?: string;
  data?: DataFrame;
  probe?: ProbeFrame;
  probeReply?: ProbeReplyFrame;
  control?: ControlFrame;
  fecParity?: FecParityFrame;
}

export function decodeEnvelope(bytes: Uint8Array): DecodeResult<Envelope> {
  if (bytes.length > MAX_DATAGRAM_BYTES) return { ok: false, reason: 'tooLarge' };
  let env: Envelope | undefined = fastEnvelope(bytes);
  if (env === undefined) {
    try {
      env = EnvelopeType.decode(bytes) as unknown as Envelope;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
  }
  return checkEnvelope(env);
}

export function decodeFrame(bytes: Uint8Array): DecodeResult<Frame> {
  let raw: RawFrame | undefined = fastFrame(bytes);
  if (raw === undefined) {
    try {
      raw = FrameType.decode(bytes) as unknown as RawFrame;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
  }
  return checkFrame(raw);
}

/**
 * The receive path's envelope decoder (issue 14, finding 6): a datagram longer than `maxBytes`
 * (the link's MTU allows no more: receiveCapBytes) is 'tooLarge' before any parsing, and one the
 * fast decoder does not take is 'malformed': protobufjs's generic decoder, 60-120x the cost of a
 * whole legitimate datagram, never runs on unauthenticated input. Everything Braid sends takes the
 * fast path (a test encodes every kind of message and checks), so nothing legitimate is lost.
 * decodeEnvelope (with the fallback) stays for tests and tools.
 */
export function decodeEnvelopeStrict(bytes: Uint8Array, maxBytes: number = MAX_RECEIVE_DATAGRAM_BYTES): DecodeResult<Envelope> {
  if (bytes.length > maxBytes) return { ok: false, reason: 'tooLarge' };
  const env = fastEnvelope(bytes);
  return env === undefined ? { ok: false, reason: 'malformed' } : checkEnvelope(env);
}

/** The receive path's frame decoder: as decodeFrame, without the generic fallback (see decodeEnvelopeStrict). */
export function decodeFrameStrict(bytes: Uint8Array): DecodeResult<Frame> {
  const raw = fastFrame(bytes);
  return raw === undefined ? { ok: false, reason: 'malformed' } : checkFrame(raw);
}

/**
 * Largest datagram worth parsing from a link whose MTU is `linkMtuBytes`: the MTU less the outer
 * IPv4 and UDP headers, plus RECEIVE_DATAGRAM_SLACK_BYTES (a PMTU probe may overshoot a size by a
 * varint step). Nothing longer can come from a peer that respects the path.
 */
export function receiveCapBytes(linkMtuBytes: number = DEFAULT_LINK_MTU_BYTES): number {
  return Math.min(MAX_DATAGRAM_BYTES, Math.max(0, linkMtuBytes - 28) + RECEIVE_DATAGRAM_SLACK_BYTES);
}

function checkEnvelope(env: Envelope): DecodeResult<Envelope> {
  if (env.version !== WIRE_VERSION) return { ok: false, reason: 'badVersion' };
  if (!Number.isSafeInteger(env.counter) || env.counter < 0) return { ok: false, reason: 'badField' };
  return { ok: true, value: env };
}

function checkFrame(raw: RawFrame): DecodeResult<Frame> {
  switch (raw.body) {
    case 'data': {
      const d = raw.data!;
      if (d.link >= MAX_LINKS || d.packet.length === 0) return { ok: false, reason: 'badField' };
      return { ok: true, value: { kind: 'data', data: d } };
    }
    case 'probe': {
      const p = raw.probe!;
      if (p.link >= MAX_LINKS || p.dscp > 63) return { ok: false, reason: 'badField' };
      return { ok: true, value: { kind: 'probe', probe: p } };
    }
    case 'probeReply': {
      const p = raw.probeReply!;
      if (p.link >= MAX_LINKS) return { ok: false, reason: 'badField' };
      return { ok: true, value: { kind: 'probeReply', probeReply: p } };
    }
    case 'control': {
      const c = raw.control!;
      if (c.drain && c.drain.link >= MAX_LINKS) return { ok: false, reason: 'badField' };
      if (c.hello && (c.hello.link >= MAX_LINKS || c.hello.linkName.length > 64 || c.hello.site.length > 64)) {
        return { ok: false, reason: 'badField' };
      }
      if (!c.drain && !c.hello) return { ok: false, reason: 'emptyFrame' };
      return { ok: true, value: { kind: 'control', control: c } };
    }
    case 'fecParity': {
      const f = raw.fecParity!;
      if (f.link >= MAX_LINKS) return { ok: false, reason: 'badField' };
      return { ok: true, value: { kind: 'fecParity', fecParity: f } };
    }
    default:
      return { ok: false, reason: 'emptyFrame' };
  }
}

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

function fastEnvelope(b: Uint8Array): Envelope | undefined {
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

function fastFrame(b: Uint8Array): RawFrame | undefined {
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
    while (fpos < end) {
      switch (b[fpos++]) {
        case 0x08:
          if ((link = fUint32(b, end)) < 0) return undefined;
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
    return { hello: { link, linkName, site } };
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
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK };
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
      default:
        return undefined;
    }
    if (v < 0) return undefined;
  }
  return { link, seq, txUs, dscp, report, epoch };
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

/** Encodes any frame (slow path: probes, control, parity). */
export function encodeFrame(frame: Frame): Uint8Array {
  const { kind, ...rest } = frame;
  void kind;
  return FrameType.encode(FrameType.fromObject(rest)).finish();
}

/** Encodes an envelope around an already-encoded (or sealed) frame (slow path). */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return EnvelopeType.encode(env).finish();
}

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
export function dataFrameSize(link: number, pathSeq: number, packetBytes: number, fecGroup = 0, fecIndex = 0, dupSeq = 0, fecK = 0): number {
  const inner = dataInnerSize(link, pathSeq, packetBytes, fecGroup, fecIndex, dupSeq, fecK);
  return 1 + varintSize(inner) + inner;
}

function dataInnerSize(link: number, pathSeq: number, packetBytes: number, fecGroup: number, fecIndex: number, dupSeq: number, fecK: number): number {
  let n = 0;
  if (link !== 0) n += 1 + varintSize(link);
  if (pathSeq !== 0) n += 1 + varintSize(pathSeq);
  n += 1 + varintSize(packetBytes) + packetBytes;
  if (fecGroup !== 0) n += 1 + varintSize(fecGroup);
  if (fecIndex !== 0) n += 1 + varintSize(fecIndex);
  if (dupSeq !== 0) n += 1 + varintSize(dupSeq);
  if (fecK !== 0) n += 1 + varintSize(fecK);
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
): number {
  const inner = dataInnerSize(link, pathSeq, packet.length, fecGroup, fecIndex, dupSeq, fecK);
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
): Uint8Array {
  const frameBytes = dataFrameSize(link, pathSeq, packet.length, fecGroup, fecIndex, dupSeq, fecK);
  const header = envelopeHeaderSize(receiver, counter, frameBytes);
  const out = allocBytes(header + frameBytes);
  const pos = writeEnvelopeHeader(out, 0, receiver, counter, frameBytes);
  writeDataFrame(out, pos, link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK);
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
