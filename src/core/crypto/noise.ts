/**
 * Noise_IK_25519_ChaChaPoly_BLAKE2s handshake (WireGuard's choice of primitives) and Braid's
 * handshake messages built on it.
 *
 *   <- s                      (the initiator knows the responder's static key from config)
 *   ...
 *   -> e, es, s, ss           initiation: initiator's static key travels encrypted
 *   <- e, ee, se              response: both sides now hold forward-secret transport keys
 *
 * `NoiseIkHandshake` is the plain Noise state machine (checked byte-for-byte against the cacophony
 * test vectors). The message functions below wrap it the way WireGuard does: cleartext routing
 * indices, a TAI64N timestamp against replayed initiations, and mac1/mac2 (see cookie.ts) so
 * unauthenticated garbage costs one MAC and no state.
 *
 * Message layouts (integers little-endian; `enc(x)` is x plus a 16-byte tag):
 *   initiation, 156 bytes: type=1 u8 | 3 zero | sender u32 | e 32 | enc(s) 48
 *                          | enc(sender u32 | tai64n 12 | preferred cipher u8 | accepted mask u8 | cipher flags u8 | 1 zero) 36
 *                          | mac1 16 | mac2 16
 *   response, 100 bytes:   type=2 u8 | 3 zero | receiver u32 | e 32
 *                          | enc(sender u32 | receiver u32 | chosen cipher u8 | cipher flags u8 | 2 zero) 28 | mac1 16 | mac2 16
 * The cipher flags (cipher-choice.ts: `cipher: auto`, AES instructions) were zero bytes before;
 * an old peer leaves them zero and ignores ours.
 * The cleartext indices are routing hints (the responder must address a cookie reply before doing
 * any DH); the copies inside the encrypted payloads authenticate them, so a tampered index fails the
 * handshake instead of silently misrouting the session.
 */
import { Buffer } from 'node:buffer';
import { dh, generatePrivate, KEY_LENGTH, publicFromPrivate, type X25519KeyPair } from './keys.ts';
import {
  chachaOpen,
  chachaSeal,
  EMPTY_BYTES,
  hash,
  HASH_LENGTH,
  hkdf2,
  MAC_LENGTH,
  plainBytes,
} from './primitives.ts';
import type { KeyedBlake2s } from './blake2s.ts';
import { mac1Key, writeMacs, verifyMac1 } from './cookie.ts';
import { AEAD_TAG_LENGTH } from './transport.ts';
import { DATA_CIPHER_IDS, dataCipherFromId, type DataCipher, type Rng } from './types.ts';
import { CIPHER_FLAG_DIFFERENT, CIPHER_FLAG_NEGOTIATES, chooseCipher, cipherFlags, type CipherPolicy } from './cipher-choice.ts';

export type { CipherPolicy } from './cipher-choice.ts';

export const NOISE_PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
/** Default prologue: binds both sides to this protocol and version, so a mismatch fails the handshake. */
export const BRAID_PROLOGUE: Uint8Array = new TextEncoder().encode('braid overlay v1');

// ---------------------------------------------------------------------------------------------
// Noise SymmetricState and the IK HandshakeState
// ---------------------------------------------------------------------------------------------

class SymmetricState {
  chainingKey: Uint8Array;
  handshakeHash: Uint8Array;
  private key: Uint8Array | null = null;
  private nonce = 0;

  constructor(protocolName: Uint8Array) {
    if (protocolName.length <= HASH_LENGTH) {
      this.handshakeHash = new Uint8Array(HASH_LENGTH);
      this.handshakeHash.set(protocolName);
    } else {
      this.handshakeHash = hash(protocolName);
    }
    this.chainingKey = this.handshakeHash;
  }

  snapshot(): readonly [Uint8Array, Uint8Array, Uint8Array | null, number] {
    return [this.chainingKey, this.handshakeHash, this.key, this.nonce];
  }

  restore(saved: readonly [Uint8Array, Uint8Array, Uint8Array | null, number]): void {
    [this.chainingKey, this.handshakeHash, this.key, this.nonce] = saved;
  }

  mixHash(data: Uint8Array): void {
    this.handshakeHash = hash(this.handshakeHash, data);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, key] = hkdf2(this.chainingKey, inputKeyMaterial);
    this.chainingKey = chainingKey;
    this.key = key;
    this.nonce = 0;
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.key === null ? plaintext : chachaSeal(this.key, this.nonce++, this.handshakeHash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array | null {
    let plaintext: Uint8Array | null = ciphertext;
    if (this.key !== null) {
      plaintext = chachaOpen(this.key, this.nonce, this.handshakeHash, ciphertext);
      if (plaintext === null) return null;
      this.nonce++;
    }
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [Uint8Array, Uint8Array] {
    return hkdf2(this.chainingKey, EMPTY_BYTES);
  }
}

export type NoiseRole = 'initiator' | 'responder';

/** Keys for one session, oriented for the side holding them. */
export interface SplitKeys {
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
}

/**
 * The Noise IK handshake state machine. Steps: initiator writeMessage -> readMessage -> split;
 * responder readMessage -> writeMessage -> split. Methods return null instead of throwing. A failed
 * readMessage leaves the state as it was, so a forged message cannot kill a handshake in progress
 * (WireGuard does the same by working on a copy).
 */
export class NoiseIkHandshake {
  readonly role: NoiseRole;
  private readonly symmetric: SymmetricState;
  private readonly local: X25519KeyPair;
  private remoteStaticKey: Uint8Array | null;
  private ephemeralPrivate: Uint8Array | null = null;
  private remoteEphemeral: Uint8Array | null = null;
  private step = 0;

  private constructor(role: NoiseRole, local: X25519KeyPair, remoteStatic: Uint8Array | null, prologue: Uint8Array) {
    this.role = role;
    this.local = local;
    this.remoteStaticKey = remoteStatic;
    this.symmetric = new SymmetricState(new TextEncoder().encode(NOISE_PROTOCOL_NAME));
    this.symmetric.mixHash(prologue);
    // Pre-message "<- s": both sides hash the responder's static public key.
    this.symmetric.mixHash(role === 'initiator' ? remoteStatic! : local.publicKey);
  }

  static initiator(local: X25519KeyPair, remoteStatic: Uint8Array, prologue: Uint8Array): NoiseIkHandshake {
    if (remoteStatic.length !== KEY_LENGTH) throw new Error('remote static key must be 32 bytes');
    return new NoiseIkHandshake('initiator', local, remoteStatic, prologue);
  }

  static responder(local: X25519KeyPair, prologue: Uint8Array): NoiseIkHandshake {
    return new NoiseIkHandshake('responder', local, null, prologue);
  }

  /** The peer's static public key: known from the start for the initiator, after message 1 for the responder. */
  get remoteStatic(): Uint8Array | null {
    return this.remoteStaticKey;
  }

  get handshakeHash(): Uint8Array {
    return this.symmetric.handshakeHash;
  }

  get isComplete(): boolean {
    return this.step === 2;
  }

  /** Message length on the wire for a payload of `payloadLength` bytes. */
  static messageLength(message: 1 | 2, payloadLength: number): number {
    return message === 1
      ? KEY_LENGTH + KEY_LENGTH + AEAD_TAG_LENGTH + payloadLength + AEAD_TAG_LENGTH
      : KEY_LENGTH + payloadLength + AEAD_TAG_LENGTH;
  }

  /** Writes the next message. The ephemeral key is made from `rng` bytes, so runs are reproducible. */
  writeMessage(payload: Uint8Array, rng: Rng): Uint8Array | null {
    const isFirst = this.role === 'initiator' && this.step === 0;
    const isSecond = this.role === 'responder' && this.step === 1;
    if (!isFirst && !isSecond) return null;
    const s = this.symmetric;
    const ephemeralPrivate = generatePrivate(rng);
    const ephemeralPublic = publicFromPrivate(ephemeralPrivate);
    this.ephemeralPrivate = ephemeralPrivate;
    const parts: Uint8Array[] = [ephemeralPublic];
    s.mixHash(ephemeralPublic); // e
    if (isFirst) {
      const es = dh(ephemeralPrivate, this.remoteStaticKey!);
      if (es === null) return this.fail();
      s.mixKey(es);
      parts.push(s.encryptAndHash(this.local.publicKey)); // s
      const ss = dh(this.local.privateKey, this.remoteStaticKey!);
      if (ss === null) return this.fail();
      s.mixKey(ss);
    } else {
      const ee = dh(ephemeralPrivate, this.remoteEphemeral!);
      if (ee === null) return this.fail();
      s.mixKey(ee);
      const se = dh(ephemeralPrivate, this.remoteStaticKey!);
      if (se === null) return this.fail();
      s.mixKey(se);
    }
    parts.push(s.encryptAndHash(payload));
    this.step = isFirst ? 1 : 2;
    return plainBytes(Buffer.concat(parts));
  }

  /** Reads the next message and returns its payload, or null (state unchanged) if it does not verify. */
  readMessage(message: Uint8Array): Uint8Array | null {
    const isFirst = this.role === 'responder' && this.step === 0;
    const isSecond = this.role === 'initiator' && this.step === 1;
    if (!isFirst && !isSecond) return null;
    const minimum = NoiseIkHandshake.messageLength(isFirst ? 1 : 2, 0);
    if (message.length < minimum) return null;
    const s = this.symmetric;
    const saved = s.snapshot();
    const remoteEphemeral = new Uint8Array(message.subarray(0, KEY_LENGTH)); // a copy even if `message` is a Buffer
    s.mixHash(remoteEphemeral); // e
    let offset = KEY_LENGTH;
    let remoteStatic = this.remoteStaticKey;
    if (isFirst) {
      const es = dh(this.local.privateKey, remoteEphemeral);
      if (es === null) return this.undo(saved);
      s.mixKey(es);
      const decrypted = s.decryptAndHash(message.subarray(offset, offset + KEY_LENGTH + AEAD_TAG_LENGTH)); // s
      if (decrypted === null) return this.undo(saved);
      remoteStatic = new Uint8Array(decrypted);
      offset += KEY_LENGTH + AEAD_TAG_LENGTH;
      const ss = dh(this.local.privateKey, remoteStatic);
      if (ss === null) return this.undo(saved);
      s.mixKey(ss);
    } else {
      const ee = dh(this.ephemeralPrivate!, remoteEphemeral);
      if (ee === null) return this.undo(saved);
      s.mixKey(ee);
      const se = dh(this.local.privateKey, remoteEphemeral);
      if (se === null) return this.undo(saved);
      s.mixKey(se);
    }
    const payload = s.decryptAndHash(message.subarray(offset));
    if (payload === null) return this.undo(saved);
    this.remoteEphemeral = remoteEphemeral;
    this.remoteStaticKey = remoteStatic;
    this.step = isFirst ? 1 : 2;
    return payload;
  }

  /** Transport keys, oriented for this side; null until both messages went through. */
  split(): SplitKeys | null {
    if (this.step !== 2) return null;
    const [initiatorToResponder, responderToInitiator] = this.symmetric.split();
    return this.role === 'initiator'
      ? { sendKey: initiatorToResponder, receiveKey: responderToInitiator }
      : { sendKey: responderToInitiator, receiveKey: initiatorToResponder };
  }

  private fail(): null {
    this.step = -1; // a failed write (only a bad configured key can cause it) is terminal
    return null;
  }

  private undo(saved: readonly [Uint8Array, Uint8Array, Uint8Array | null, number]): null {
    this.symmetric.restore(saved);
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// TAI64N timestamps (replay protection for initiations)
// ---------------------------------------------------------------------------------------------

export const TIMESTAMP_LENGTH = 12;
// WireGuard rounds nanoseconds down to 2^24 ns (~16.8 ms) so initiations do not reveal a precise
// clock (a fingerprint); its per-peer initiation limit (20 ms) is coarser than that anyway.
const TIMESTAMP_WHITENER_NS = 0x1000000;

/** TAI64N label for a wall-clock time in ms since the Unix epoch (12 bytes, big-endian, comparable as bytes). */
export function tai64n(wallClockMs: number): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_LENGTH);
  const seconds = Math.floor(wallClockMs / 1000) + 10; // TAI64 label is 2^62 + 10 + Unix seconds
  const nanoseconds = Math.floor((wallClockMs - Math.floor(wallClockMs / 1000) * 1000) * 1_000_000);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x40000000 + Math.floor(seconds / 2 ** 32));
  view.setUint32(4, seconds >>> 0);
  view.setUint32(8, nanoseconds - (nanoseconds % TIMESTAMP_WHITENER_NS));
  return out;
}

/** Negative, zero or positive as a is before, equal to or after b. */
export function compareTimestamps(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

// ---------------------------------------------------------------------------------------------
// Braid handshake messages
// ---------------------------------------------------------------------------------------------

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export type HandshakeMessageType = typeof MESSAGE_INITIATION | typeof MESSAGE_RESPONSE | typeof MESSAGE_COOKIE_REPLY;

const INITIATION_PAYLOAD_LENGTH = 20;
const RESPONSE_PAYLOAD_LENGTH = 12;
const HEADER_LENGTH = 8; // type, 3 reserved, one index
export const INITIATION_LENGTH = HEADER_LENGTH + NoiseIkHandshake.messageLength(1, INITIATION_PAYLOAD_LENGTH) + 2 * MAC_LENGTH;
export const RESPONSE_LENGTH = HEADER_LENGTH + NoiseIkHandshake.messageLength(2, RESPONSE_PAYLOAD_LENGTH) + 2 * MAC_LENGTH;
export const COOKIE_REPLY_LENGTH = 64;

/** The handshake message type if `bytes` has a valid type byte, zero reserved bytes and the right length. */
export function peekMessageType(bytes: Uint8Array): HandshakeMessageType | null {
  if (bytes.length < 4 || bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) return null;
  const type = bytes[0];
  if (type === MESSAGE_INITIATION && bytes.length === INITIATION_LENGTH) return MESSAGE_INITIATION;
  if (type === MESSAGE_RESPONSE && bytes.length === RESPONSE_LENGTH) return MESSAGE_RESPONSE;
  if (type === MESSAGE_COOKIE_REPLY && bytes.length === COOKIE_REPLY_LENGTH) return MESSAGE_COOKIE_REPLY;
  return null;
}

/** The cleartext index at bytes 4..8: sender index of an initiation, receiver index of a response or cookie reply. */
export function readHeaderIndex(bytes: Uint8Array): number {
  return (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = value >>> 24;
}

/** Why a handshake message was refused. Stable names: they become drop counters. */
export const HANDSHAKE_FAILURES = [
  'malformed', // wrong length, type or reserved bytes
  'badMac1', // not made for our public key: scanners, other protocols, misconfigured peers
  'decryptFailed', // Noise AEAD failed: wrong keys, tampering, or a low-order point
  'indexMismatch', // cleartext index differs from the authenticated copy
  'unknownPeer', // authenticated static key is not a configured peer
  'replayedTimestamp', // initiation not newer than the last one accepted from this peer
  'initiationFlood', // peer initiated again within MIN_INITIATION_INTERVAL_MS
  'noCommonCipher', // no data cipher both sides accept
  'unknownIndex', // response or cookie reply for no handshake we have pending
] as const;
export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

/** Everything a session needs from a completed handshake. */
export interface TransportKeys {
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
  /** Index the peer puts in packets for us (we chose it). */
  readonly localIndex: number;
  /** Index we put in packets for the peer (it chose it). */
  readonly remoteIndex: number;
  readonly cipher: DataCipher;
  /** Why this cipher, in words (cipher-choice.ts), for the session event. */
  readonly cipherWhy?: string;
  readonly isInitiator: boolean;
  readonly remoteStatic: Uint8Array;
  /** Noise handshake hash: a channel binding both sides share. */
  readonly handshakeHash: Uint8Array;
}

/** The initiator's state between sending an initiation and receiving its response. */
export class PendingInitiation {
  constructor(
    readonly senderIndex: number,
    readonly remoteStatic: Uint8Array,
    /** mac1 of the initiation we sent: a cookie reply must be encrypted against it. */
    readonly mac1: Uint8Array,
    readonly ciphers: CipherPolicy,
    private readonly local: X25519KeyPair,
    private readonly noise: NoiseIkHandshake,
  ) {}

  /** @internal used by consumeResponse */
  get state(): { readonly local: X25519KeyPair; readonly noise: NoiseIkHandshake } {
    return { local: this.local, noise: this.noise };
  }
}

export interface CreateInitiationParams {
  readonly local: X25519KeyPair;
  readonly remoteStatic: Uint8Array;
  readonly prologue: Uint8Array;
  readonly senderIndex: number;
  readonly nowMs: number;
  /** Wall-clock ms since the Unix epoch at nowMs = 0; the timestamp is epoch + now. */
  readonly wallClockEpochMs: number;
  readonly ciphers: CipherPolicy;
  /** A fresh cookie from the responder's cookie reply, for mac2; null when we have none. */
  readonly cookie: Uint8Array | null;
  readonly rng: Rng;
}

function cipherMask(ciphers: readonly DataCipher[]): number {
  let mask = 0;
  for (const cipher of ciphers) mask |= 1 << DATA_CIPHER_IDS[cipher];
  return mask;
}

/** Builds an initiation. Returns null only if the configured remote static key is unusable (low order). */
export function createInitiation(p: CreateInitiationParams): { message: Uint8Array; pending: PendingInitiation } | null {
  const noise = NoiseIkHandshake.initiator(p.local, p.remoteStatic, p.prologue);
  const payload = new Uint8Array(INITIATION_PAYLOAD_LENGTH);
  writeU32(payload, 0, p.senderIndex);
  payload.set(tai64n(p.wallClockEpochMs + p.nowMs), 4);
  payload[16] = DATA_CIPHER_IDS[p.ciphers.preferred];
  payload[17] = cipherMask(p.ciphers.accepted);
  payload[18] = cipherFlags(p.ciphers);
  const body = noise.writeMessage(payload, p.rng);
  if (body === null) return null;
  const message = new Uint8Array(INITIATION_LENGTH);
  message[0] = MESSAGE_INITIATION;
  writeU32(message, 4, p.senderIndex);
  message.set(body, HEADER_LENGTH);
  const mac1 = writeMacs(message, mac1Key(p.remoteStatic), p.cookie);
  return { message, pending: new PendingInitiation(p.senderIndex, p.remoteStatic, mac1, p.ciphers, p.local, noise) };
}

/** What the responder learned from an authenticated initiation. */
export interface ReceivedInitiation {
  readonly remoteStatic: Uint8Array;
  readonly senderIndex: number;
  readonly timestamp: Uint8Array;
  readonly preferredCipher: DataCipher | null;
  readonly acceptedCipherMask: number;
  /** The initiator's cipher flags (cipher-choice.ts); 0 from a peer that predates them. */
  readonly cipherFlags: number;
}

export interface ConsumeInitiationParams {
  readonly local: X25519KeyPair;
  readonly prologue: Uint8Array;
  readonly message: Uint8Array;
  /** The index we choose for this session (the initiator will put it in its packets). */
  readonly responderIndex: number;
  readonly ciphers: CipherPolicy;
  readonly rng: Rng;
  /** mac1Key(local.publicKey), if the caller keeps one (saves a hash and a compression per message). */
  readonly localMac1Key?: KeyedBlake2s;
  /**
   * Called once the initiator's static key and payload are authenticated, before any response is
   * made: return null to accept, or why not (unknown peer, replayed timestamp, too frequent).
   */
  readonly authorize: (initiation: ReceivedInitiation) => HandshakeFailure | null;
}

export type ConsumeInitiationResult =
  | { readonly ok: true; readonly response: Uint8Array; readonly keys: TransportKeys; readonly initiation: ReceivedInitiation }
  | { readonly ok: false; readonly reason: HandshakeFailure };

/** Responder: verifies an initiation and, if `authorize` agrees, returns the response and session keys. */
export function consumeInitiation(p: ConsumeInitiationParams): ConsumeInitiationResult {
  const message = p.message;
  if (peekMessageType(message) !== MESSAGE_INITIATION) return { ok: false, reason: 'malformed' };
  if (!verifyMac1(message, p.localMac1Key ?? mac1Key(p.local.publicKey))) return { ok: false, reason: 'badMac1' };
  const noise = NoiseIkHandshake.responder(p.local, p.prologue);
  const payload = noise.readMessage(message.subarray(HEADER_LENGTH, INITIATION_LENGTH - 2 * MAC_LENGTH));
  if (payload === null || payload.length !== INITIATION_PAYLOAD_LENGTH) return { ok: false, reason: 'decryptFailed' };
  const senderIndex = readU32(payload, 0);
  if (senderIndex !== readHeaderIndex(message)) return { ok: false, reason: 'indexMismatch' };
  const initiation: ReceivedInitiation = {
    remoteStatic: noise.remoteStatic!,
    senderIndex,
    timestamp: new Uint8Array(payload.subarray(4, 16)),
    preferredCipher: dataCipherFromId(payload[16]),
    acceptedCipherMask: payload[17],
    cipherFlags: payload[18],
  };
  const refusal = p.authorize(initiation);
  if (refusal !== null) return { ok: false, reason: refusal };
  const choice = chooseCipher(initiation.preferredCipher, initiation.acceptedCipherMask, initiation.cipherFlags, p.ciphers);
  if (choice === null) return { ok: false, reason: 'noCommonCipher' };
  const cipher = choice.cipher;

  const responsePayload = new Uint8Array(RESPONSE_PAYLOAD_LENGTH);
  writeU32(responsePayload, 0, p.responderIndex);
  writeU32(responsePayload, 4, senderIndex);
  responsePayload[8] = DATA_CIPHER_IDS[cipher];
  responsePayload[9] = cipherFlags(p.ciphers) | (choice.different ? CIPHER_FLAG_DIFFERENT : 0);
  const body = noise.writeMessage(responsePayload, p.rng);
  const keys = noise.split();
  if (body === null || keys === null) return { ok: false, reason: 'decryptFailed' }; // peer sent a low-order static key
  const response = new Uint8Array(RESPONSE_LENGTH);
  response[0] = MESSAGE_RESPONSE;
  writeU32(response, 4, senderIndex);
  response.set(body, HEADER_LENGTH);
  writeMacs(response, mac1Key(initiation.remoteStatic), null);
  return {
    ok: true,
    response,
    initiation,
    keys: {
      ...keys,
      localIndex: p.responderIndex,
      remoteIndex: senderIndex,
      cipher,
      cipherWhy: choice.why,
      isInitiator: false,
      remoteStatic: initiation.remoteStatic,
      handshakeHash: noise.handshakeHash,
    },
  };
}

export type ConsumeResponseResult =
  | { readonly ok: true; readonly keys: TransportKeys }
  | { readonly ok: false; readonly reason: HandshakeFailure };

/** Initiator: verifies the response to `pending` and returns the session keys. A failure leaves `pending` usable. */
export function consumeResponse(pending: PendingInitiation, message: Uint8Array): ConsumeResponseResult {
  if (peekMessageType(message) !== MESSAGE_RESPONSE) return { ok: false, reason: 'malformed' };
  if (readHeaderIndex(message) !== pending.senderIndex) return { ok: false, reason: 'unknownIndex' };
  const { local, noise } = pending.state;
  if (!verifyMac1(message, mac1Key(local.publicKey))) return { ok: false, reason: 'badMac1' };
  const payload = noise.readMessage(message.subarray(HEADER_LENGTH, RESPONSE_LENGTH - 2 * MAC_LENGTH));
  if (payload === null || payload.length !== RESPONSE_PAYLOAD_LENGTH) return { ok: false, reason: 'decryptFailed' };
  if (readU32(payload, 4) !== pending.senderIndex) return { ok: false, reason: 'indexMismatch' };
  const cipher = dataCipherFromId(payload[8]);
  if (cipher === null || !pending.ciphers.accepted.includes(cipher)) return { ok: false, reason: 'noCommonCipher' };
  const keys = noise.split()!;
  const cipherWhy = initiatorCipherWhy(cipher, payload[9], pending.ciphers);
  return {
    ok: true,
    keys: {
      ...keys,
      localIndex: pending.senderIndex,
      remoteIndex: readU32(payload, 0),
      cipher,
      cipherWhy,
      isInitiator: true,
      remoteStatic: pending.remoteStatic,
      handshakeHash: noise.handshakeHash,
    },
  };
}


/**
 * The initiator's words for the responder's choice: the same rule seen from this end (the
 * responder's explicit setting is the chosen cipher, or with DIFFERENT the other one).
 */
function initiatorCipherWhy(cipher: DataCipher, responderFlags: number, local: CipherPolicy): string {
  if ((responderFlags & CIPHER_FLAG_NEGOTIATES) === 0) return 'chosen by a peer that predates cipher: auto';
  const different = (responderFlags & CIPHER_FLAG_DIFFERENT) !== 0;
  const theirs: DataCipher = different ? (local.preferred === 'aes-256-gcm' ? 'chacha20-poly1305' : 'aes-256-gcm') : cipher;
  const all = cipherMask(['chacha20-poly1305', 'aes-256-gcm']);
  return chooseCipher(theirs, all, responderFlags & ~CIPHER_FLAG_DIFFERENT, local)?.why ?? 'chosen by the peer';
}
