import { Buffer } from 'node:buffer';
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REJECT_AFTER_MESSAGES } from '../../../src/core/crypto/constants.ts';
import {
  AEAD_TAG_LENGTH,
  AeadSession,
  DATA_AAD_LENGTH,
  isValidCounter,
  writeDataAad,
  writeNonce,
} from '../../../src/core/crypto/transport.ts';
import type { DataCipher } from '../../../src/core/crypto/types.ts';
import { SeededRng, toHex } from './helpers.ts';

const CIPHERS: DataCipher[] = ['chacha20-poly1305', 'aes-256-gcm'];

function randomBytes(rng: SeededRng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  rng.fillBytes(out);
  return out;
}

/** Reference sealing with an independently built nonce (bigint arithmetic). */
function referenceSeal(cipher: DataCipher, key: Uint8Array, counter: bigint, plaintext: Uint8Array, aad: Uint8Array): string {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  const c =
    cipher === 'aes-256-gcm'
      ? createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 })
      : createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  return toHex(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

describe.each(CIPHERS)('AeadSession %s', (cipher) => {
  const rng = new SeededRng(42);
  const key = randomBytes(rng, 32);
  const sender = new AeadSession(key, cipher);
  const receiver = new AeadSession(key, cipher);
  const aad = writeDataAad(new Uint8Array(DATA_AAD_LENGTH), 1, 0xdeadbeef, 7);

  it('round-trips any payload, including empty (keepalive)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.nat(), (plaintext, counter) => {
        const sealed = sender.seal(counter, plaintext, aad);
        expect(sealed.length).toBe(plaintext.length + AEAD_TAG_LENGTH);
        expect(toHex(receiver.open(counter, sealed, aad)!)).toBe(toHex(plaintext));
      }),
      { numRuns: 200 },
    );
  });

  it('returns plain Uint8Arrays, so slice() copies as callers expect', () => {
    const sealed = sender.seal(1, new Uint8Array(10), aad);
    expect(Buffer.isBuffer(sealed)).toBe(false);
    const opened = receiver.open(1, sealed, aad)!;
    expect(Buffer.isBuffer(opened)).toBe(false);
    const copy = sealed.slice();
    copy[0]! ^= 1;
    expect(receiver.open(1, sealed, aad)).not.toBeNull();
  });

  it('matches a reference nonce layout (4 zero bytes + u64 LE counter)', () => {
    const plaintext = randomBytes(rng, 100);
    for (const counter of [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      expect(toHex(sender.seal(counter, plaintext, aad))).toBe(referenceSeal(cipher, key, BigInt(counter), plaintext, aad));
    }
  });

  it('returns null (never throws) for any tampering: body, tag, AAD, counter, key, truncation', () => {
    const plaintext = randomBytes(rng, 64);
    const sealed = sender.seal(5, plaintext, aad);
    fc.assert(
      fc.property(fc.nat({ max: sealed.length - 1 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
        const tampered = sealed.slice();
        tampered[byte]! ^= 1 << bit;
        expect(receiver.open(5, tampered, aad)).toBeNull();
      }),
    );
    const otherAad = aad.slice();
    otherAad[4]! ^= 1; // receiver index
    expect(receiver.open(5, sealed, otherAad)).toBeNull();
    expect(receiver.open(6, sealed, aad)).toBeNull();
    expect(new AeadSession(randomBytes(rng, 32), cipher).open(5, sealed, aad)).toBeNull();
    expect(receiver.open(5, sealed.subarray(0, 15), aad)).toBeNull();
    expect(receiver.open(5, new Uint8Array(0), aad)).toBeNull();
    expect(receiver.open(-1, sealed, aad)).toBeNull();
    expect(receiver.open(1.5, sealed, aad)).toBeNull();
    expect(receiver.open(Number.NaN, sealed, aad)).toBeNull();
  });

  it('handles counters near 2^60: opens below REJECT_AFTER_MESSAGES, rejects at and above', () => {
    const plaintext = randomBytes(rng, 32);
    // Senders stop at 2^53 (doubles), so make the near-2^60 packets with the reference sealer.
    for (const counter of [2 ** 60 - 4096, 2 ** 60 - 256]) {
      const sealed = Buffer.from(referenceSeal(cipher, key, BigInt(counter), plaintext, aad), 'hex');
      expect(toHex(receiver.open(counter, sealed, aad)!)).toBe(toHex(plaintext));
    }
    const atLimit = Buffer.from(referenceSeal(cipher, key, 2n ** 60n, plaintext, aad), 'hex');
    expect(receiver.open(REJECT_AFTER_MESSAGES, atLimit, aad)).toBeNull();
    expect(receiver.open(2 ** 61, atLimit, aad)).toBeNull();
    expect(isValidCounter(2 ** 60 - 256)).toBe(true);
    expect(isValidCounter(2 ** 60)).toBe(false);
  });

  it('refuses to seal with a counter that could repeat a nonce (programmer error)', () => {
    expect(() => sender.seal(Number.MAX_SAFE_INTEGER + 1, new Uint8Array(1), aad)).toThrow();
    expect(() => sender.seal(-1, new Uint8Array(1), aad)).toThrow();
  });
});

describe('nonce and AAD layout', () => {
  it('writes the counter little-endian after four zero bytes', () => {
    const nonce = new Uint8Array(12).fill(0xff);
    writeNonce(nonce, 0x0102030405);
    expect(toHex(nonce)).toBe('000000000504030201000000');
  });

  it('writes version, receiver index and counter', () => {
    expect(toHex(writeDataAad(new Uint8Array(16), 1, 0x11223344, 2 ** 32 + 2))).toBe('01000000443322110200000001000000');
  });
});
