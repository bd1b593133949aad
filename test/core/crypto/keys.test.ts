import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeKey,
  dh,
  encodeKey,
  generateKeyPair,
  generatePrivate,
  KEY_TEXT_LENGTH,
  keyPairFromPrivate,
  publicFromPrivate,
} from '../../../src/core/crypto/keys.ts';
import { hex, SeededRng, toHex } from './helpers.ts';

// RFC 7748 section 6.1 (Alice and Bob).
const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_PRIVATE = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

describe('X25519 keys', () => {
  it('matches RFC 7748 public keys and shared secret', () => {
    expect(toHex(publicFromPrivate(hex(ALICE_PRIVATE)))).toBe(ALICE_PUBLIC);
    expect(toHex(publicFromPrivate(hex(BOB_PRIVATE)))).toBe(BOB_PUBLIC);
    expect(toHex(dh(hex(ALICE_PRIVATE), hex(BOB_PUBLIC))!)).toBe(SHARED);
    expect(toHex(dh(hex(BOB_PRIVATE), hex(ALICE_PUBLIC))!)).toBe(SHARED);
  });

  it('generates clamped private keys from Rng bytes, reproducibly by seed', () => {
    const a = generatePrivate(new SeededRng(7));
    const b = generatePrivate(new SeededRng(7));
    expect(toHex(a)).toBe(toHex(b));
    expect(a[0]! & 7).toBe(0);
    expect(a[31]! & 0x80).toBe(0);
    expect(a[31]! & 0x40).toBe(0x40);
    expect(toHex(generatePrivate(new SeededRng(8)))).not.toBe(toHex(a));
  });

  it('agrees on DH for random key pairs', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const rng = new SeededRng(seed);
        const a = generateKeyPair(rng);
        const b = generateKeyPair(rng);
        expect(toHex(dh(a.privateKey, b.publicKey)!)).toBe(toHex(dh(b.privateKey, a.publicKey)!));
      }),
      { numRuns: 25 },
    );
  });

  it('rejects low-order public keys (all-zero output) and wrong lengths without throwing', () => {
    const priv = hex(ALICE_PRIVATE);
    expect(dh(priv, new Uint8Array(32))).toBeNull();
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(dh(priv, one)).toBeNull();
    // A point of order 8 on Curve25519 (from the libsodium / WireGuard blacklist).
    expect(dh(priv, hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'))).toBeNull();
    expect(dh(priv, new Uint8Array(31))).toBeNull();
    expect(dh(new Uint8Array(5), hex(BOB_PUBLIC))).toBeNull();
  });

  it('encodes keys like wg (44 base64 chars) and decodes them back', () => {
    const pair = keyPairFromPrivate(hex(ALICE_PRIVATE));
    const text = encodeKey(pair.publicKey);
    expect(text).toHaveLength(KEY_TEXT_LENGTH);
    expect(text).toBe(Buffer.from(ALICE_PUBLIC, 'hex').toString('base64'));
    expect(toHex(decodeKey(text)!)).toBe(ALICE_PUBLIC);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(toHex(decodeKey(encodeKey(bytes))!)).toBe(toHex(bytes));
      }),
    );
  });

  it('refuses non-canonical or malformed key text', () => {
    const good = encodeKey(hex(ALICE_PUBLIC));
    for (const bad of ['', good.slice(0, 43), good + '=', good.replace('=', 'A'), ' ' + good.slice(1), good.slice(0, 42) + 'B=', good.replace(/./, '-')]) {
      expect(decodeKey(bad)).toBeNull();
    }
    fc.assert(fc.property(fc.string(), (text) => {
      const decoded = decodeKey(text);
      if (decoded !== null) expect(encodeKey(decoded)).toBe(text);
    }));
  });
});
