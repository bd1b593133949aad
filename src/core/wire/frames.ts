/**
 * Overlay message shapes (overlay.proto's Envelope and Frame as TypeScript) and the decode result.
 *
 * Types only: no code, no protobufjs. codec.ts re-exports all of them, so importers keep using
 * './wire/codec.ts'. RawFrame is protobufjs's view of a Frame (a oneof name and the bodies), what
 * the decoders produce before codec.ts's range checks turn it into a Frame.
 */
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
  /** Bonded classes: class id (top 4 bits) and the class's bond sequence (low 28); 0 = not bonded. */
  bondSeq?: number;
}

export interface ProbeFrame {
  link: number;
  seq: number;
  txUs: number;
  dscp: number;
  report?: PathReport | null;
  epoch?: number;
  /** The answer to the peer's last probe (overlay.proto Probe.echo_*): its seq (0: none), tx_us and hold. */
  echoSeq?: number;
  echoTxUs?: number;
  echoHoldUs?: number;
  /** The sender reads echoes (or this probe carries one): our answers to it may ride our probes. */
  echoOk?: boolean;
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
  /** The sender's link cost tier (0 primary or not sent, 1 overflow, 2 backup; others: primary). */
  tier?: number;
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

/** A Frame as decoded, before range checks: `body` names the oneof member that is set. */
export interface RawFrame {
  body?: string;
  data?: DataFrame;
  probe?: ProbeFrame;
  probeReply?: ProbeReplyFrame;
  control?: ControlFrame;
  fecParity?: FecParityFrame;
}
