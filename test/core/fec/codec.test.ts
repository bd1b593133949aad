import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRsCodec, RsWasmSetupError } from '../../../src/core/fec/rs-wasm.ts';
import { createGf256Codec, gfInv, gfMul, parityMatrix } from '../../../src/core/fec/gf256.ts';
import { codecs, rsWasmBytes } from './helpers.ts';

function randomShards(k: number, m: number, shardBytes: number, seed: number, capacity = shardBytes): Uint8Array[] {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s & 0xff;
  };
  const shards: Uint8Array[] = [];
  for (let i = 0; i < k + m; i++) {
    const b = new Uint8Array(capacity);
    if (i < k) for (let j = 0; j < shardBytes; j++) b[j] = next();
    shards.push(b);
  }
  return shards;
}

describe('GF(2^8) field', () => {
  it('every non-zero element has an inverse', () => {
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
  });
  it('multiplication distributes over xor (addition)', () => {
    fc.assert(
      fc.property(fc.nat(255), fc.nat(255), fc.nat(255), (a, b, c) => gfMul(a, b ^ c) === (gfMul(a, b) ^ gfMul(a, c))),
    );
  });
  it('k = 1: parity is a copy of the data (the code is systematic)', () => {
    expect([...parityMatrix(1, 3)]).toEqual([1, 1, 1]);
  });
});

describe('rs-wasm loading', () => {
  it('instantiates synchronously from the bytes the shell reads', () => {
    const codec = createRsCodec(rsWasmBytes());
    expect(codec.name).toBe('rs-wasm');
    expect(codec.faults).toBe(0);
  });
  it('also accepts a compiled WebAssembly.Module', () => {
    const mod = new WebAssembly.Module(new Uint8Array(rsWasmBytes()));
    expect(createRsCodec(mod).name).toBe('rs-wasm');
  });
  it('refuses bytes that are not wasm, or wasm that is not the RS build, with a typed error', () => {
    expect(() => createRsCodec(new Uint8Array([1, 2, 3]))).toThrow(RsWasmSetupError);
    // The smallest valid module: magic + version, no exports.
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(() => createRsCodec(empty)).toThrow(/no export encode/);
  });
});

describe.each(codecs())('%s codec', (name, codec) => {
  it('rebuilds any pattern of up to m lost shards, for k, m in 1..32 (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer(),
        fc.array(fc.nat(63), { maxLength: 32 }),
        (k, m, shardBytes, seed, lossPicks) => {
          const shards = randomShards(k, m, shardBytes, seed);
          expect(codec.encode(shards, k, m, shardBytes)).toBe(true);
          const original = shards.map((s) => s.slice());
          const present = new Uint8Array(k + m).fill(1);
          let lost = 0;
          for (const pick of lossPicks) {
            const i = pick % (k + m);
            if (present[i] === 1 && lost < m) {
              present[i] = 0;
              shards[i]!.fill(0xee);
              lost++;
            }
          }
          expect(codec.reconstruct(shards, present, k, m, shardBytes)).toBe(true);
          for (let i = 0; i < k; i++) expect(shards[i]).toEqual(original[i]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses when fewer than k shards are present', () => {
    const shards = randomShards(4, 2, 10, 7);
    codec.encode(shards, 4, 2, 10);
    expect(codec.reconstruct(shards, Uint8Array.from([0, 0, 0, 1, 1, 1]), 4, 2, 10)).toBe(false);
  });

  it('reads and writes only the first shardBytes bytes of larger buffers', () => {
    const shards = randomShards(5, 3, 100, 11, 256);
    for (const s of shards) s.fill(0xab, 100);
    expect(codec.encode(shards, 5, 3, 100)).toBe(true);
    for (const s of shards) expect(s.subarray(100).every((b) => b === 0xab)).toBe(true);
    const present = Uint8Array.from([0, 1, 0, 1, 1, 1, 1, 0]);
    expect(codec.reconstruct(shards, present, 5, 3, 100)).toBe(true);
    for (const s of shards) expect(s.subarray(100).every((b) => b === 0xab)).toBe(true);
  });

  it('returns false, never throws, on arguments out of contract', () => {
    const shards = randomShards(4, 4, 8, 3);
    const present = new Uint8Array(8).fill(1);
    const bad: Array<[number, number, number]> = [
      [0, 2, 8],
      [4, 0, 8],
      [33, 1, 8],
      [4, 33, 8],
      [4, 2, 0],
      [4, 2, 9], // shards shorter than shardBytes
      [4, 2, 65536],
      [1.5, 2, 8],
      [Number.NaN, 2, 8],
      [6, 4, 8], // more shards than given
    ];
    for (const [k, m, bytes] of bad) {
      expect(codec.encode(shards, k, m, bytes), `${name} encode ${k},${m},${bytes}`).toBe(false);
      expect(codec.reconstruct(shards, present, k, m, bytes), `${name} reconstruct ${k},${m},${bytes}`).toBe(false);
    }
    expect(codec.reconstruct(shards, new Uint8Array(3), 4, 2, 8)).toBe(false); // present too short
  });
});

describe('the two codecs are wire-compatible', () => {
  const [[, wasm], [, ts]] = codecs() as [[string, ReturnType<typeof createGf256Codec>], [string, ReturnType<typeof createGf256Codec>]];

  it('produce byte-identical parity for any k, m, size (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer(),
        (k, m, shardBytes, seed) => {
          const a = randomShards(k, m, shardBytes, seed);
          const b = a.map((s) => s.slice());
          expect(wasm.encode(a, k, m, shardBytes)).toBe(true);
          expect(ts.encode(b, k, m, shardBytes)).toBe(true);
          for (let i = k; i < k + m; i++) expect(b[i]).toEqual(a[i]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('TS codec agrees on unaligned views (byte path) and aligned buffers (word path)', () => {
    const k = 6;
    const m = 3;
    const len = 1399;
    const aligned = randomShards(k, m, len, 99, 2048);
    const backing = new Uint8Array((k + m) * 1500 + 1);
    const unaligned = aligned.map((s, i) => {
      const v = backing.subarray(1 + i * 1500, 1 + i * 1500 + len);
      v.set(s.subarray(0, len));
      return v;
    });
    ts.encode(aligned, k, m, len);
    ts.encode(unaligned, k, m, len);
    for (let i = k; i < k + m; i++) expect(unaligned[i]).toEqual(aligned[i]!.subarray(0, len));
  });
});

describe('rs-wasm memory handling', () => {
  it('keeps the wasm allocator sound over many encode/reconstruct calls of changing sizes, error paths included', () => {
    const codec = createRsCodec(rsWasmBytes());
    const sizes: Array<[number, number, number]> = [
      [8, 2, 1400],
      [4, 2, 60],
      [16, 4, 1400],
      [32, 32, 1500],
      [3, 1, 1],
    ];
    for (let it = 0; it < 1000; it++) {
      const [k, m, bytes] = sizes[it % sizes.length]!;
      const shards = randomShards(k, m, bytes, it + 1);
      expect(codec.encode(shards, k, m, bytes)).toBe(true);
      const want = shards[0]!.slice();
      shards[0]!.fill(0);
      const present = new Uint8Array(k + m).fill(1);
      present[0] = 0;
      if (it % 7 === 0) present.fill(0, 0, m + 1); // too few: the error path must free too
      const ok = codec.reconstruct(shards, present, k, m, bytes);
      if (it % 7 !== 0) {
        expect(ok).toBe(true);
        expect(shards[0]).toEqual(want);
      } else {
        expect(ok).toBe(false);
      }
    }
    expect(codec.faults).toBe(0);
  });
});
