/**
 * X25519 keys as raw 32-byte arrays (WireGuard's model: a peer *is* its static public key).
 *
 * node:crypto only does X25519 on KeyObjects, and importing one is costly (measured here: ~85 us for
 * a private key via JWK, ~580 us via PKCS8 DER, ~21 us for a public key via JWK, ~69 us for the DH
 * itself), so KeyObjects are cached per byte array in WeakMaps. Contract: key arrays handed to this
 * module are never mutated afterwards (we copy what we take from the wire).
 */
import { Buffer } from 'node:buffer';
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import type { Rng } from './types.ts';

export const KEY_LENGTH = 32;
/** Length of a key in `wg`'s text form: standard base64 of 32 bytes, with one '=' of padding. */
export const KEY_TEXT_LENGTH = 44;

export interface X25519KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>();
const publicKeyObjects = new WeakMap<Uint8Array, KeyObject>();
// JWK import insists on an `x`, but OpenSSL recomputes the public key from `d` (checked: a wrong x
// still yields the right public key and DH output), so any well-formed placeholder does.
const PLACEHOLDER_X = Buffer.alloc(KEY_LENGTH).toString('base64url');

function assertKey(key: Uint8Array, what: string): void {
  if (key.length !== KEY_LENGTH) throw new Error(`${what} must be ${KEY_LENGTH} bytes, got ${key.length}`);
}

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  let object = privateKeyObjects.get(privateKey);
  if (object === undefined) {
    assertKey(privateKey, 'X25519 private key');
    object = createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(privateKey).toString('base64url'), x: PLACEHOLDER_X },
      format: 'jwk',
    });
    privateKeyObjects.set(privateKey, object);
  }
  return object;
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  let object = publicKeyObjects.get(publicKey);
  if (object === undefined) {
    assertKey(publicKey, 'X25519 public key');
    object = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    publicKeyObjects.set(publicKey, object);
  }
  return object;
}

/**
 * A new private key from 32 Rng bytes, clamped as `wg genkey` does (X25519 clamps anyway; clamping
 * the stored form keeps our keys byte-identical to wg's for the same bytes).
 */
export function generatePrivate(rng: Rng): Uint8Array {
  const key = new Uint8Array(KEY_LENGTH);
  rng.fillBytes(key);
  key[0] &= 248;
  key[31] &= 127;
  key[31] |= 64;
  return key;
}

export function publicFromPrivate(privateKey: Uint8Array): Uint8Array {
  const jwk = createPublicKey(privateKeyObject(privateKey)).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('X25519 public key export returned no x');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

export function keyPairFromPrivate(privateKey: Uint8Array): X25519KeyPair {
  return { privateKey, publicKey: publicFromPrivate(privateKey) };
}

export function generateKeyPair(rng: Rng): X25519KeyPair {
  return keyPairFromPrivate(generatePrivate(rng));
}

/**
 * X25519(privateKey, publicKey), or null when the result is all zeros (the peer sent a low-order
 * point, which would make the "shared secret" public). Never throws: public keys come off the wire.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  if (privateKey.length !== KEY_LENGTH || publicKey.length !== KEY_LENGTH) return null;
  let shared: Buffer;
  try {
    // OpenSSL itself refuses an all-zero result ("failed during derivation"); we also check, so the
    // guarantee does not depend on the OpenSSL build.
    shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(publicKey) });
  } catch {
    return null;
  }
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i];
  return acc === 0 ? null : new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
}

/** `wg`'s text form: standard base64, 44 characters. */
export function encodeKey(key: Uint8Array): string {
  assertKey(key, 'key');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

const KEY_TEXT_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * Parses `wg`'s text form. Returns null for anything that is not exactly the canonical encoding of
 * 32 bytes (Buffer.from would silently skip junk characters and accept truncated input).
 */
export function decodeKey(text: string): Uint8Array | null {
  if (text.length !== KEY_TEXT_LENGTH || !KEY_TEXT_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== KEY_LENGTH) return null;
  return new Uint8Array(bytes);
}
