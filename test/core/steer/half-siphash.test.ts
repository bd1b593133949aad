// halfSipHash13 (the flow table's keyed hash) against a plain transcription of HalfSipHash-1-3
// (state in locals, the round as a closure: how it was written before the round moved to module
// scope for speed), on random keys and inputs of every length up to 64 bytes.
import { describe, expect, it } from 'vitest';
import { halfSipHash13 } from '../../../src/core/steer/flow-table.ts';

function reference(k0: number, k1: number, bytes: Uint8Array, length: number): number {
  const rotl = (x: number, b: number): number => (x << b) | (x >>> (32 - b));
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  const round = (): void => {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  };
  const full = length & ~3;
  for (let i = 0; i < full; i += 4) {
    const m = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    v3 ^= m;
    round();
    v0 ^= m;
  }
  let b = length << 24;
  const left = length & 3;
  if (left >= 3) b |= bytes[full + 2]! << 16;
  if (left >= 2) b |= bytes[full + 1]! << 8;
  if (left >= 1) b |= bytes[full]!;
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}

describe('halfSipHash13', () => {
  it('equals the reference on random keys and inputs of 0..64 bytes', () => {
    let seed = 0x12345678;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const bytes = new Uint8Array(64);
    const seen = new Set<number>();
    for (let trial = 0; trial < 2000; trial++) {
      for (let i = 0; i < bytes.length; i++) bytes[i] = rnd() & 0xff;
      const k0 = rnd() | 0;
      const k1 = rnd() | 0;
      const length = trial % 65;
      const h = halfSipHash13(k0, k1, bytes, length);
      expect(h).toBe(reference(k0, k1, bytes, length));
      seen.add(h);
    }
    expect(seen.size).toBeGreaterThan(1990); // a hash, not a constant
  });
});
