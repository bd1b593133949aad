/**
 * Hash, HMAC, HKDF and the handshake AEAD as the Noise spec defines them for the BLAKE2s / ChaChaPoly
 * suite, all on node:crypto (OpenSSL's blake2s256; HMAC over it uses BLAKE2s's 64-byte block, as
 * Noise requires; the cacophony test vectors confirm both). The 16-byte MACs of the flood defence
 * use our own keyed BLAKE2s instead (blake2s.ts).
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { blake2s } from './blake2s.ts';
import { AEAD_TAG_LENGTH, writeNonce } from './transport.ts';

export const HASH_LENGTH = 32;
export const MAC_LENGTH = 16;

const EMPTY = new Uint8Array(0);

/**
 * node:crypto returns Buffers, whose slice() is a view where Uint8Array's is a copy: callers typed
 * against Uint8Array would alias memory they think they copied. Everything we hand out is a plain
 * Uint8Array over the same bytes (no copy).
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);

export function hash(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const part of parts) h.update(part);
  return plainBytes(h.digest());
}

export function hmac(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHmac('blake2s256', key);
  for (const part of parts) h.update(part);
  return plainBytes(h.digest());
}

/** Noise's HKDF (section 4.3) with two outputs (IK without PSKs never needs three). */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmac(chainingKey, inputKeyMaterial);
  const out1 = hmac(tempKey, ONE);
  const out2 = hmac(tempKey, out1, TWO);
  return [out1, out2];
}

/** WireGuard's MAC for mac1/mac2/cookies: keyed BLAKE2s with a 16-byte output (see blake2s.ts for why not node). */
export function mac(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  return blake2s(MAC_LENGTH, key, ...parts);
}

/** Constant-time equality for MACs and keys (length is not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** ChaCha20-Poly1305 with a Noise nonce, for the handshake. Returns ciphertext || tag. */
export function chachaSeal(key: Uint8Array, counter: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = Buffer.alloc(12);
  writeNonce(nonce, counter);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  cipher.final();
  return plainBytes(Buffer.concat([body, cipher.getAuthTag()]));
}

/** Returns the plaintext or null; never throws. */
export function chachaOpen(key: Uint8Array, counter: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length < AEAD_TAG_LENGTH) return null;
  const bodyLength = ciphertext.length - AEAD_TAG_LENGTH;
  const nonce = Buffer.alloc(12);
  writeNonce(nonce, counter);
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
    decipher.setAuthTag(ciphertext.subarray(bodyLength));
    decipher.setAAD(ad, { plaintextLength: bodyLength });
    const plaintext = decipher.update(ciphertext.subarray(0, bodyLength));
    decipher.final();
    return plainBytes(plaintext);
  } catch {
    return null;
  }
}

export { EMPTY as EMPTY_BYTES };
