import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blake2s, KeyedBlake2s } from '../../../src/core/crypto/blake2s.ts';
import { hex, toHex } from './helpers.ts';

// Keyed vectors from https://blake2.net/blake2s-test.txt, as quoted in bcgit/bc-java
// core/src/test/java/org/bouncycastle/crypto/test/Blake2sDigestTest.java. Inputs are 00 01 02 ...
const KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const KEYED_VECTORS: readonly [number, string][] = [
  [0, '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49'],
  [1, '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1'],
  [2, '6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803'],
  [78, '172ffc67153d12e0ca76a8b6cd5d4731885b39ce0cac93a8972a18006c8b8baf'],
  [164, '4f8ce1e51d2fe7f24043a904d898ebfc91975418753413aa099b795ecb35cedb'],
  [255, '3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd'],
];

function counting(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => i);
}

/** RFC 7693 Appendix E: deterministic input (Fibonacci generator). */
function selftestSequence(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < length; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

describe('BLAKE2s', () => {
  it('matches the blake2.net keyed test vectors (one, two, three and four blocks)', () => {
    for (const [length, expected] of KEYED_VECTORS) {
      expect(toHex(blake2s(32, hex(KEY), counting(length)))).toBe(expected);
      expect(toHex(new KeyedBlake2s(hex(KEY), 32).digest(counting(length)))).toBe(expected);
    }
  });

  it('passes the RFC 7693 Appendix E self-test (keyed and unkeyed, 16..32-byte outputs)', () => {
    const grand = createHash('blake2s256');
    for (const outputLength of [16, 20, 28, 32]) {
      for (const inputLength of [0, 3, 64, 65, 255, 1024]) {
        const input = selftestSequence(inputLength, inputLength);
        grand.update(blake2s(outputLength, new Uint8Array(0), input));
        grand.update(blake2s(outputLength, selftestSequence(outputLength, outputLength), input));
      }
    }
    expect(grand.digest('hex')).toBe('6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe');
  });

  it('agrees with node:crypto blake2s256 on any input, however it is split into parts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(400), fc.nat(400), (data, cut1, cut2) => {
        const [x, y] = [Math.min(cut1, cut2, data.length), Math.min(Math.max(cut1, cut2), data.length)];
        const expected = createHash('blake2s256').update(data).digest('hex');
        expect(toHex(blake2s(32, new Uint8Array(0), data.subarray(0, x), data.subarray(x, y), data.subarray(y)))).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('KeyedBlake2s (precomputed key block) equals the one-shot function, including empty input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 32 }), (key, data, outputLength) => {
        expect(toHex(new KeyedBlake2s(key, outputLength).digest(data))).toBe(toHex(blake2s(outputLength, key, data)));
      }),
    );
  });

  it('rejects out-of-range lengths', () => {
    expect(() => blake2s(0, new Uint8Array(0))).toThrow();
    expect(() => blake2s(33, new Uint8Array(0))).toThrow();
    expect(() => blake2s(16, new Uint8Array(33))).toThrow();
    expect(() => new KeyedBlake2s(new Uint8Array(0), 16)).toThrow();
  });
});
