import { describe, expect, it } from 'vitest';
import { DEDUPE_WINDOW, DedupeWindow, RECENT_DUPS, RecentDups } from '../../../src/core/steer/dedupe.ts';

describe('DedupeWindow', () => {
  it('delivers the first copy, drops the second, and refuses what fell out of the window', () => {
    const w = new DedupeWindow();
    expect(w.accept(0xfffffff0)).toBe(true); // any start, wrapping uint32
    expect(w.accept(0xfffffff0)).toBe(false);
    expect(w.accept(5)).toBe(true); // past the wrap
    expect(w.accept(0xfffffff1)).toBe(true); // late, inside
    expect(w.accept(0xfffffff1)).toBe(false);
    expect(w.accept(5 + DEDUPE_WINDOW)).toBe(true);
    expect(w.accept(5)).toBe(false); // ancient
    expect(w.accept(6)).toBe(true); // the oldest still inside
  });
});

describe('RecentDups (the epoch handover ring, made at the first note)', () => {
  const all = (r: RecentDups): [number, number][] => {
    const out: [number, number][] = [];
    r.forEach((seq, index) => out.push([seq, index]));
    return out;
  };

  it('yields nothing before the first note, then every slot in ring order with unused ones as (0, 0)', () => {
    const r = new RecentDups();
    expect(all(r)).toEqual([]);
    r.note(7, 70);
    r.note(8, 80);
    const slots = all(r);
    expect(slots).toHaveLength(RECENT_DUPS);
    expect(slots.slice(0, 3)).toEqual([[7, 70], [8, 80], [0, 0]]);
  });

  it('keeps the last RECENT_DUPS notes, overwriting the oldest', () => {
    const r = new RecentDups();
    for (let i = 1; i <= RECENT_DUPS + 2; i++) r.note(i, 1000 + i);
    const slots = all(r);
    expect(slots[0]).toEqual([RECENT_DUPS + 1, 1000 + RECENT_DUPS + 1]);
    expect(slots[1]).toEqual([RECENT_DUPS + 2, 1000 + RECENT_DUPS + 2]);
    expect(slots[2]).toEqual([3, 1003]);
  });
});
