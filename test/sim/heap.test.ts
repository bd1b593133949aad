// The World's event queue (MinHeap) and wake-up heap (IndexedHeap): both must pop in exactly
// (atMs, seq) order, whatever the sequence of pushes, key changes and removals, or a run's event
// order (and so every seeded result) changes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IndexedHeap, MinHeap, type IndexedHeapItem } from '../../sim/heap.ts';

const byKey = (x: { atMs: number; seq: number }, y: { atMs: number; seq: number }): number => x.atMs - y.atMs || x.seq - y.seq;

describe('MinHeap', () => {
  it('pops in (atMs, seq) order, interleaved with pushes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const h = new MinHeap<{ atMs: number; seq: number }>();
        const ref: { atMs: number; seq: number }[] = [];
        let seq = 0;
        for (const op of ops) {
          if (op < 0) {
            ref.sort(byKey);
            expect(h.pop()).toBe(ref.shift());
          } else {
            const item = { atMs: op, seq: seq++ };
            h.push(item);
            ref.push(item);
          }
          expect(h.size).toBe(ref.length);
        }
        ref.sort(byKey);
        for (const want of ref) expect(h.pop()).toBe(want);
        expect(h.pop()).toBeUndefined();
      }),
    );
  });
});

describe('IndexedHeap', () => {
  it('keeps one entry per item through key changes and removals, peeks the least, and tracks positions (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 39 }), fc.integer({ min: -1, max: 30 })), { maxLength: 600 }), (ops) => {
        const items: (IndexedHeapItem & { id: number })[] = Array.from({ length: 40 }, (_, id) => ({ id, atMs: 0, seq: 0, heapPos: -1 }));
        const h = new IndexedHeap<IndexedHeapItem & { id: number }>();
        let seq = 0;
        for (const [which, atMs] of ops) {
          const item = items[which]!;
          if (atMs < 0) h.remove(item);
          else if (atMs === 30) {
            // Pop the least, as the World's wake pass does.
            const top = h.peek();
            if (top) h.remove(top);
          } else {
            item.atMs = atMs;
            item.seq = seq++;
            h.update(item);
          }
          const live = items.filter((x) => x.heapPos >= 0).sort(byKey);
          expect(h.size).toBe(live.length);
          expect(h.peek()).toBe(live[0]);
        }
        const order: number[] = [];
        for (let top = h.peek(); top; top = h.peek()) {
          h.remove(top);
          order.push(top.id);
        }
        expect(order).toEqual(
          items
            .filter((x) => order.includes(x.id))
            .sort(byKey)
            .map((x) => x.id),
        );
        expect(items.every((x) => x.heapPos === -1)).toBe(true);
      }),
    );
  });

  it('moves the last entry up when an entry under a larger parent is removed', () => {
    // A case where sifting the moved last entry only down leaves it under a larger parent and pops
    // 24 before 16 (found by search against that bug).
    const keys = [15, 27, 7, 36, 24, 16, 4, 47, 49, 32, 43, 40, 8];
    const items = keys.map((atMs, seq) => ({ atMs, seq, heapPos: -1 }));
    const h = new IndexedHeap<IndexedHeapItem>();
    for (const x of items) h.update(x);
    h.remove(items[7]!);
    const order: number[] = [];
    for (let top = h.peek(); top; top = h.peek()) {
      h.remove(top);
      order.push(top.atMs);
    }
    expect(order).toEqual([4, 7, 8, 15, 16, 24, 27, 32, 36, 40, 43, 49]);
  });
});
