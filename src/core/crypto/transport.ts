/**
 * Data-plane AEAD for one direction of one session.
 *
 * Stages per packet: write the 12-byte nonce (4 zero bytes + 64-bit little-endian counter, Noise's
 * and WireGuard's layout) into a reused buffer -> one node:crypto cipher object -> AAD -> body -> tag.
 *
 * node:crypto has no way to re-key or re-nonce a cipher object, so one object per packet is the floor:
 * createCipheriv alone is ~4 us of the ~6 us a 1400-byte seal costs on this box (best of 25 rounds;
 * AES-256-GCM ~5-10% faster than ChaCha20-Poly1305 with AES-NI; bench/crypto.ts). Holding the key as
 * a KeyObject instead of raw bytes measured the same within noise; we keep the KeyObject so the raw
 * key bytes can be wiped from the JS heap once the session is set up.
 *
 * The AAD is the cleartext envelope fields (wire version, receiver index, counter; overlay.proto says
 * so) so they are authenticated: `writeDataAad` gives their canonical 16-byte form. The counter is
 * also bound through the nonce.
 *
 * Pluggable implementation: the core only knows the `Aead` interface and builds one per key and
 * direction through an `AeadFactory`. The default is `AeadSession` below (node:crypto, works
 * everywhere, ~6 us per 1400-byte seal). The I/O shell passes a faster one in the Edge's config
 * (EdgeCryptoConfig.aead; src/io/native-aead.ts: OpenSSL contexts kept per key, ~1 us); the core
 * never imports the addon and holds no process-wide choice, so two Edges in one process may differ.
 */
import { Buffer } from 'node:buffer';
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type CipherChaCha20Poly1305,
  type CipherGCM,
  type DecipherChaCha20Poly1305,
  type DecipherGCM,
  type KeyObject,
} from 'node:crypto';
import { REJECT_AFTER_MESSAGES } from './constants.ts';
import type { DataCipher } from './types.ts';

export const AEAD_KEY_LENGTH = 32;
export const AEAD_TAG_LENGTH = 16;
export const AEAD_NONCE_LENGTH = 12;
export const DATA_AAD_LENGTH = 16;

const TWO_POW_32 = 2 ** 32;

/** Writes the Noise/WireGuard nonce for `counter` (an integer below 2^64) into `nonce` (12 bytes). */
export function writeNonce(nonce: Uint8Array, counter: number): void {
  nonce[0] = 0;
  nonce[1] = 0;
  nonce[2] = 0;
  nonce[3] = 0;
  writeU64LE(nonce, 4, counter);
}

function writeU64LE(out: Uint8Array, offset: number, value: number): void {
  // `>>> 0` is exact modulo 2^32 for any integer-valued double, and dividing by 2^32 is exact, so
  // both halves are exact for every integer below 2^64.
  const low = value >>> 0;
  const high = Math.floor(value / TWO_POW_32) >>> 0;
  out[offset] = low & 0xff;
  out[offset + 1] = (low >>> 8) & 0xff;
  out[offset + 2] = (low >>> 16) & 0xff;
  out[offset + 3] = low >>> 24;
  out[offset + 4] = high & 0xff;
  out[offset + 5] = (high >>> 8) & 0xff;
  out[offset + 6] = (high >>> 16) & 0xff;
  out[offset + 7] = high >>> 24;
}

/**
 * Canonical data AAD: wire version (u32 LE), receiver index (u32 LE), counter (u64 LE), i.e. the
 * envelope fields a receiver reads before decrypting. `out` must hold DATA_AAD_LENGTH bytes.
 */
export function writeDataAad(out: Uint8Array, wireVersion: number, receiverIndex: number, counter: number): Uint8Array {
  writeU32LE(out, 0, wireVersion);
  writeU32LE(out, 4, receiverIndex);
  writeU64LE(out, 8, counter);
  return out;
}

function writeU32LE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = (value >>> 8) & 0xff;
  out[offset + 2] = (value >>> 16) & 0xff;
  out[offset + 3] = value >>> 24;
}

/**
 * True when a received `counter` is acceptable at all: an integer in [0, REJECT_AFTER_MESSAGES).
 * Integers above 2^53 are allowed here because every double that is an integer below 2^64 maps to
 * an exact nonce (the wire may carry them); senders are stricter, see `isValidSendCounter`.
 */
export function isValidCounter(counter: number): boolean {
  return Number.isInteger(counter) && counter >= 0 && counter < REJECT_AFTER_MESSAGES;
}

/**
 * Senders also need exact increments, which doubles stop giving at 2^53: `counter + 1` would round
 * back to `counter` and reuse a nonce. Unreachable in practice (REJECT_AFTER_TIME bounds a session).
 */
export function isValidSendCounter(counter: number): boolean {
  return Number.isSafeInteger(counter) && isValidCounter(counter);
}

/**
 * One key's AEAD (one direction of one session). Both implementations (node:crypto `AeadSession`,
 * the native addon's contexts) must give byte-identical output.
 */
export interface Aead {
  readonly cipher: DataCipher;
  /**
   * Returns ciphertext || 16-byte tag (plaintext.length + AEAD_TAG_LENGTH bytes): a fresh plain
   * Uint8Array, or, when `out` is given (at least that long), a view of out's first bytes. The
   * counter must never repeat under one key; callers own that. A counter that fails
   * `isValidSendCounter` throws (programmer error: nonce reuse is worse than a crash).
   */
  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * Seals buf[offset, offset + length) in place and writes the tag after it (buf must have the
   * room: a programmer error otherwise, which throws). The same bytes as seal(); the data path's
   * form, with no views to make per packet.
   */
  sealAt(counter: number, buf: Uint8Array, offset: number, length: number, aad: Uint8Array): void;
  /**
   * Returns the plaintext (ciphertext.length - AEAD_TAG_LENGTH bytes; fresh, or a view of `out`),
   * or null when authentication fails or the input is malformed. Never throws for bad input; an
   * `out` too small is a programmer error and does.
   */
  open(counter: number, ciphertext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array | null;
  /** Releases the key material now instead of at garbage collection, where that means anything. */
  dispose?(): void;
}

/** Builds the AEAD for one key. The factory must not keep `key`: the caller wipes it afterwards. */
export type AeadFactory = (key: Uint8Array, cipher: DataCipher) => Aead;

/** The portable default: node:crypto, one cipher object per packet. */
export const nodeCryptoAeadFactory: AeadFactory = (key, cipher) => new AeadSession(key, cipher);

export class AeadSession implements Aead {
  readonly cipher: DataCipher;
  private readonly key: KeyObject;
  // Reused per packet: createCipheriv copies the IV, so rewriting it afterwards is safe.
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LENGTH);

  constructor(key: Uint8Array, cipher: DataCipher) {
    if (key.length !== AEAD_KEY_LENGTH) throw new Error(`AEAD key must be ${AEAD_KEY_LENGTH} bytes, got ${key.length}`);
    this.cipher = cipher;
    this.key = createSecretKey(key);
  }

  /** See `Aead.seal`. */
  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array {
    if (!isValidSendCounter(counter)) throw new Error(`invalid AEAD send counter ${counter}`);
    const sealedLength = plaintext.length + AEAD_TAG_LENGTH;
    if (out !== undefined && out.length < sealedLength) {
      throw new RangeError(`AEAD seal: out holds ${out.length} bytes, needs ${sealedLength}`);
    }
    writeNonce(this.nonce, counter);
    const cipher = this.makeCipher();
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final(); // stream ciphers: always empty, but required before getAuthTag
    // A plain Uint8Array (not a pooled Buffer): callers may slice() it expecting a copy.
    const sealed = out === undefined ? new Uint8Array(sealedLength) : out.subarray(0, sealedLength);
    sealed.set(body, 0);
    sealed.set(cipher.getAuthTag(), body.length);
    return sealed;
  }

  /** See `Aead.sealAt`. */
  sealAt(counter: number, buf: Uint8Array, offset: number, length: number, aad: Uint8Array): void {
    this.seal(counter, buf.subarray(offset, offset + length), aad, buf.subarray(offset));
  }

  /** See `Aead.open`. */
  open(counter: number, ciphertext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array | null {
    if (!isValidCounter(counter) || ciphertext.length < AEAD_TAG_LENGTH) return null;
    const bodyLength = ciphertext.length - AEAD_TAG_LENGTH;
    if (out !== undefined && out.length < bodyLength) {
      throw new RangeError(`AEAD open: out holds ${out.length} bytes, needs ${bodyLength}`);
    }
    writeNonce(this.nonce, counter);
    let plaintext: Buffer;
    try {
      const decipher = this.makeDecipher();
      decipher.setAuthTag(ciphertext.subarray(bodyLength));
      decipher.setAAD(aad, { plaintextLength: bodyLength });
      plaintext = decipher.update(ciphertext.subarray(0, bodyLength));
      decipher.final(); // throws on a bad tag; the plaintext is only returned after this passed
    } catch {
      return null;
    }
    if (out === undefined) return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    const view = out.subarray(0, bodyLength);
    view.set(plaintext);
    return view;
  }

  // Two literal calls because node's typings pick the AEAD interface from the algorithm literal.
  private makeCipher(): CipherGCM | CipherChaCha20Poly1305 {
    return this.cipher === 'aes-256-gcm'
      ? createCipheriv('aes-256-gcm', this.key, this.nonce, { authTagLength: AEAD_TAG_LENGTH })
      : createCipheriv('chacha20-poly1305', this.key, this.nonce, { authTagLength: AEAD_TAG_LENGTH });
  }

  private makeDecipher(): DecipherGCM | DecipherChaCha20Poly1305 {
    return this.cipher === 'aes-256-gcm'
      ? createDecipheriv('aes-256-gcm', this.key, this.nonce, { authTagLength: AEAD_TAG_LENGTH })
      : createDecipheriv('chacha20-poly1305', this.key, this.nonce, { authTagLength: AEAD_TAG_LENGTH });
  }
}
