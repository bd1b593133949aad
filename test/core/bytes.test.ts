/**
 * The core's slab allocators (core/bytes.ts): every view is memory of its own, zero-filled and
 * 8-byte aligned, like `new Uint8Array(n)`; small views share slabs (that is their point).
 */
import { describe, expect, it } from 'vitest';
import { allocBytes, allocDatagramBytes, copyBytes } from '../../src/core/bytes.ts';

describe('core/bytes', () => {
  for (const [name, alloc, slabBytes] of [['allocBytes', allocBytes, 16 * 1024], ['allocDatagramBytes', allocDatagramBytes, 64 * 1024]] as const) {
    it(`${name}: distinct, zero-filled, aligned views, ~${slabBytes / 1024} KiB of them per slab`, () => {
      const views: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const v = alloc(1460);
        expect(v.length).toBe(1460);
        expect(v.byteOffset % 8).toBe(0);
        expect(v.every((b) => b === 0)).toBe(true);
        v.fill(i & 0xff);
        views.push(v);
      }
      // Writing one never touched another.
      views.forEach((v, i) => expect(v.every((b) => b === (i & 0xff))).toBe(true));
      const slabs = new Set(views.map((v) => v.buffer));
      const perSlab = Math.floor(slabBytes / 1464);
      expect(slabs.size).toBeGreaterThanOrEqual(Math.floor(200 / perSlab));
      expect(slabs.size).toBeLessThanOrEqual(Math.ceil(200 / perSlab) + 1);
      for (const b of slabs) expect(b.byteLength).toBe(slabBytes);
    });

    it(`${name}: large and empty requests get arrays of their own`, () => {
      expect(alloc(8192).buffer.byteLength).toBe(8192);
      expect(alloc(0).length).toBe(0);
    });
  }

  it('copyBytes copies (a later write to the source does not show)', () => {
    const src = new Uint8Array([1, 2, 3]);
    const c = copyBytes(src);
    src[0] = 9;
    expect([...c]).toEqual([1, 2, 3]);
  });
});
