/**
 * Issue 14 finding 10: the flow table evicts the least recently used flow, and crafted 5-tuples
 * cannot share (and re-steer) a victim's entry: the key is a keyed hash seeded per start, and the
 * tuple itself is compared.
 */
import { describe, expect, it } from 'vitest';
import { newInnerInfo, parseInner, type InnerInfo } from '../../../src/core/inner.ts';
import { SeededRng } from '../../../src/core/rng.ts';
import { FlowTable, LRU_REFRESH_MS } from '../../../src/core/steer/flow-table.ts';

/** An IPv4 UDP packet 10.1.x.y:sport -> 10.2.0.9:dport. */
function udp4(src: number, sport: number, dport = 443): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[9] = 17;
  p.set([10, 1, (src >>> 8) & 0xff, src & 0xff], 12);
  p.set([10, 2, 0, 9], 16);
  p[20] = (sport >>> 8) & 0xff;
  p[21] = sport & 0xff;
  p[22] = (dport >>> 8) & 0xff;
  p[23] = dport & 0xff;
  return p;
}

function info(packet: Uint8Array): InnerInfo {
  const i = parseInner(packet, newInnerInfo());
  if (!i) throw new Error('bad packet');
  return { ...i };
}

/** Two different tuples with the same public FNV flow hash (what an attacker computes offline). */
function fnvCollision(): [Uint8Array, Uint8Array] {
  const seen = new Map<number, Uint8Array>();
  const rng = new SeededRng(99);
  for (let i = 0; i < 400_000; i++) {
    const r = rng.nextU32();
    const p = udp4(r & 0xffff, 1024 + (r >>> 16), 1 + (rng.nextU32() & 0xffff));
    const h = info(p).flowHash;
    const other = seen.get(h);
    if (other) return [other, p];
    seen.set(h, p);
  }
  throw new Error('no collision found');
}

describe('FlowTable (issue 14, finding 10)', () => {
  it('gives tuples that collide under the public FNV hash their own entries', () => {
    const [victim, attacker] = fnvCollision();
    expect(info(victim).flowHash).toBe(info(attacker).flowHash); // the old table's key: shared
    const t = new FlowTable<string>(new SeededRng(1));
    t.insert(0, victim, info(victim), 'victim');
    expect(t.lookup(1, attacker, info(attacker))).toBeUndefined();
    t.insert(1, attacker, info(attacker), 'attacker');
    expect(t.lookup(2, victim, info(victim))).toBe('victim');
    expect(t.lookup(2, attacker, info(attacker))).toBe('attacker');
    expect(t.size).toBe(2);
  });

  it('keeps flows apart even on a true collision of its own key (tuples compared)', () => {
    // A 1-slot-per-key worst case: find two tuples with the same keyed hash under this seed.
    const t = new FlowTable<number>(new SeededRng(7));
    const byHash = new Map<number, Uint8Array>();
    let pair: [Uint8Array, Uint8Array] | undefined;
    for (let src = 0; src < 65_536 && !pair; src++) {
      for (let sport = 1; sport <= 4 && !pair; sport++) {
        const p = udp4(src, sport);
        const h = t.hashOf(p, info(p));
        const other = byHash.get(h);
        if (other) pair = [other, p];
        else byHash.set(h, p);
      }
    }
    expect(pair).toBeDefined();
    const [a, b] = pair!;
    t.insert(0, a, info(a), 1);
    t.insert(0, b, info(b), 2);
    expect(t.lookup(1, a, info(a))).toBe(1);
    expect(t.lookup(1, b, info(b))).toBe(2);
    expect(t.counters.collisions).toBeGreaterThan(0);
  });

  it('seeds its hash per start: the same tuple keys differently under another seed', () => {
    const p = udp4(5, 5000);
    const hashes = new Set([1, 2, 3, 4].map((seed) => new FlowTable<number>(new SeededRng(seed)).hashOf(p, info(p))));
    expect(hashes.size).toBe(4);
    const t = new FlowTable<number>(new SeededRng(1));
    expect(t.hashOf(p, info(p))).toBe(t.hashOf(p, info(p)));
  });

  it('evicts the least recently used flow past the cap, not the oldest one', () => {
    const t = new FlowTable<string>(new SeededRng(3), 3);
    const busy = udp4(1, 1000); // created first, used all along
    t.insert(0, busy, info(busy), 'busy');
    t.insert(10, udp4(2, 1000), info(udp4(2, 1000)), 'idle-2');
    t.insert(20, udp4(3, 1000), info(udp4(3, 1000)), 'idle-3');
    expect(t.lookup(20 + LRU_REFRESH_MS, busy, info(busy))).toBe('busy');
    const evicted = t.insert(30 + LRU_REFRESH_MS, udp4(4, 1000), info(udp4(4, 1000)), 'new');
    expect(evicted).toBe('idle-2');
    expect(t.lookup(40 + LRU_REFRESH_MS, busy, info(busy))).toBe('busy');
    // A flood of new flows past the cap keeps evicting the idle ones while busy keeps sending.
    for (let i = 0; i < 50; i++) {
      const now = 1000 + i * LRU_REFRESH_MS;
      expect(t.lookup(now, busy, info(busy))).toBe('busy');
      t.insert(now + 1, udp4(100 + i, 2000), info(udp4(100 + i, 2000)), `flood-${i}`);
      expect(t.size).toBeLessThanOrEqual(3);
    }
    expect(t.counters.evicted).toBeGreaterThanOrEqual(50);
  });

  it('forgets idle flows on sweep', () => {
    const t = new FlowTable<string>(new SeededRng(4), 10, 1000);
    t.insert(0, udp4(1, 1), info(udp4(1, 1)), 'a');
    t.insert(0, udp4(2, 1), info(udp4(2, 1)), 'b');
    t.lookup(900, udp4(2, 1), info(udp4(2, 1)));
    expect(t.sweep(1500)).toBe(1);
    expect([...t.values()]).toEqual(['b']);
    expect(t.counters.expired).toBe(1);
  });

  it('remembers its last hit (one hash per train of one flow) but never returns a flow it forgot', () => {
    const t = new FlowTable<string>(new SeededRng(5), 2, 1000);
    const a = udp4(1, 1);
    const b = udp4(2, 1);
    t.insert(0, a, info(a), 'a');
    expect(t.lookup(1, a, info(a))).toBe('a');
    expect(t.lookup(2, a, info(a))).toBe('a'); // from the last-hit slot
    expect(t.lookup(3, b, info(b))).toBeUndefined(); // another tuple misses, not 'a'
    // Each way of forgetting the last-hit flow: lookup then misses, as the table says.
    t.deleteWhere((e) => e === 'a');
    expect(t.lookup(4, a, info(a))).toBeUndefined();
    t.insert(5, a, info(a), 'a2');
    expect(t.lookup(6, a, info(a))).toBe('a2');
    t.insert(7, a, info(a), 'a3'); // re-insert of a live tuple replaces it
    expect(t.lookup(8, a, info(a))).toBe('a3');
    expect(t.sweep(2000)).toBe(1);
    expect(t.lookup(2001, a, info(a))).toBeUndefined();
    t.insert(2002, a, info(a), 'a4');
    expect(t.lookup(2003, a, info(a))).toBe('a4');
    t.insert(2004, b, info(b), 'b');
    t.insert(2005, udp4(3, 1), info(udp4(3, 1)), 'c'); // cap 2: evicts the least recently used ('a4')
    expect(t.counters.evicted).toBe(1);
    expect(t.lookup(2006, a, info(a))).toBeUndefined();
    // The last hit still refreshes its LRU place: 'b' used, then a new flow evicts 'c', not 'b'.
    expect(t.lookup(2006 + LRU_REFRESH_MS, b, info(b))).toBe('b');
    expect(t.lookup(2007 + LRU_REFRESH_MS, b, info(b))).toBe('b');
    t.insert(2008 + LRU_REFRESH_MS, udp4(4, 1), info(udp4(4, 1)), 'd');
    expect([...t.values()].sort()).toEqual(['b', 'd']);
  });
});
