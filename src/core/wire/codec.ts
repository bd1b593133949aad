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
 *
 * Layout: message types in frames.ts, the fast decoders in fast-decode.ts, the hand-written
 * per-packet encoders in writers.ts; this module holds the protobufjs schema, the public decoders
 * with their range checks, the slow-path encoders, and re-exports the rest, so the overlay imports
 * only './wire/codec.ts'.
 */
import protobuf from 'protobufjs';
import { overlayDescriptor } from './descriptor.ts';
import { DEFAULT_LINK_MTU_BYTES, MAX_DATAGRAM_BYTES, MAX_LINKS, MAX_RECEIVE_DATAGRAM_BYTES, RECEIVE_DATAGRAM_SLACK_BYTES, WIRE_VERSION } from '../constants.ts';
import type { DecodeResult, Envelope, Frame, RawFrame } from './frames.ts';
import { fastEnvelope, fastFrame } from './fast-decode.ts';

export type {
  ControlFrame,
  DataFrame,
  DecodeError,
  DecodeResult,
  DrainControl,
  Envelope,
  FecParityFrame,
  Frame,
  HelloControl,
  PathReport,
  ProbeFrame,
  ProbeReplyFrame,
} from './frames.ts';
export type { ParityFields, ProbeFields } from './writers.ts';
export {
  dataFrameSize,
  encodeDataDatagram,
  envelopeHeaderSize,
  parityFrameSize,
  probeFrameSize,
  probeTxUsWritable,
  writeDataFrame,
  writeEnvelopeHeader,
  writeParityFrame,
  writeProbeFrame,
} from './writers.ts';

// 64-bit fields decode as JS numbers: counters stay below 2^53 in any real session
// (2^53 packets at 10 Mpps is 28 years), and numbers avoid an allocation per packet.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const root = protobuf.Root.fromJSON(overlayDescriptor as unknown as protobuf.INamespace);
const EnvelopeType = root.lookupType('braid.v1.Envelope');
const FrameType = root.lookupType('braid.v1.Frame');

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
