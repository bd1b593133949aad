import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';
import { MAX_PEERS, MAX_ROUTE_PREFIXES } from '../../../src/core/constants.ts';
import { parsePrefix, type IpPrefix } from '../../../src/core/routing/prefix.ts';
import { IPV4_DST_AT, IPV6_DST_AT, NO_PEER, PrefixTable } from '../../../src/core/routing/prefix-table.ts';

/** A minimal IPv4 header (20 bytes) with these addresses. */
function v4Packet(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p.set(parsePrefix(src).bytes, 12);
  p.set(parsePrefix(dst).bytes, 16);
  return p;
}

function v6Packet(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p.set(parsePrefix(src).bytes, 8);
  p.set(parsePrefix(dst).bytes, 24);
  return p;
}

function addr(a: string): Uint8Array {
  return parsePrefix(a).bytes;
}

function errorOf(f: () => unknown): BraidError {
  try {
    f();
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

describe('PrefixTable', () => {
  it('finds the longest match among overlapping prefixes of several peers (IPv4)', () => {
    const t = new PrefixTable();
    t.insert('0.0.0.0/0', 9);
    t.insert('10.0.0.0/8', 1);
    t.insert('10.1.0.0/16', 2);
    t.insert('10.1.2.0/24', 3);
    t.insert('10.1.2.7/32', 4);
    expect(t.lookupV4(addr('10.1.2.7'), 0)).toBe(4);
    expect(t.lookupV4(addr('10.1.2.8'), 0)).toBe(3);
    expect(t.lookupV4(addr('10.1.3.1'), 0)).toBe(2);
    expect(t.lookupV4(addr('10.200.0.1'), 0)).toBe(1);
    expect(t.lookupV4(addr('192.0.2.1'), 0)).toBe(9);
    expect(t.size).toBe(5);
  });

  it('finds the longest match (IPv6) and keeps the families apart', () => {
    const t = new PrefixTable();
    t.insert('2001:db8::/32', 1);
    t.insert('2001:db8:1::/48', 2);
    t.insert('2001:db8:1:0:8000::/65', 3);
    t.insert('10.0.0.0/8', 4);
    expect(t.lookupV6(addr('2001:db8:1::1'), 0)).toBe(2);
    expect(t.lookupV6(addr('2001:db8:1:0:8000::1'), 0)).toBe(3);
    expect(t.lookupV6(addr('2001:db8:2::1'), 0)).toBe(1);
    expect(t.lookupV6(addr('2001:db9::1'), 0)).toBe(NO_PEER);
    // ::a00:1 has the same first 32 bits as 10.0.0.1 would in a shared trie: it must not match.
    expect(t.lookupV6(addr('a00:1::'), 0)).toBe(NO_PEER);
    expect(t.lookupV4(addr('10.0.0.1'), 0)).toBe(4);
  });

  it('reads the destination and the source straight from the packet', () => {
    const t = new PrefixTable();
    t.insert('10.1.0.0/16', 1);
    t.insert('10.2.0.0/16', 2);
    t.insert('2001:db8:1::/48', 1);
    t.insert('2001:db8:2::/48', 2);
    const p4 = v4Packet('10.1.0.5', '10.2.0.9');
    expect(t.lookupDestination(p4)).toBe(2);
    expect(t.lookupSource(p4)).toBe(1);
    expect(t.sourceAllowed(p4, 1)).toBe(true);
    expect(t.sourceAllowed(p4, 2)).toBe(false);
    expect(t.lookupV4(p4, IPV4_DST_AT)).toBe(2);
    const p6 = v6Packet('2001:db8:2::5', '2001:db8:1::9');
    expect(t.lookupDestination(p6)).toBe(1);
    expect(t.sourceAllowed(p6, 2)).toBe(true);
    expect(t.sourceAllowed(p6, 1)).toBe(false);
    expect(t.lookupV6(p6, IPV6_DST_AT)).toBe(1);
    // Spoofed source (outside every prefix): no peer may send it.
    expect(t.sourceAllowed(v4Packet('192.0.2.1', '10.2.0.9'), 1)).toBe(false);
    expect(t.sourceAllowed(v4Packet('192.0.2.1', '10.2.0.9'), NO_PEER)).toBe(false);
  });

  it('returns NO_PEER for short or non-IP packets instead of throwing', () => {
    const t = new PrefixTable();
    t.insert('0.0.0.0/0', 1);
    t.insert('::/0', 2);
    expect(t.lookupDestination(new Uint8Array(0))).toBe(NO_PEER);
    expect(t.lookupDestination(new Uint8Array([0x45, 0, 0]))).toBe(NO_PEER);
    expect(t.lookupDestination(new Uint8Array(30).fill(0x60, 0, 1))).toBe(NO_PEER);
    expect(t.lookupDestination(new Uint8Array(40).fill(0x50, 0, 1))).toBe(NO_PEER);
    expect(t.lookupV4(new Uint8Array(8), 5)).toBe(NO_PEER);
    expect(t.lookupV4(new Uint8Array(8), -1)).toBe(NO_PEER);
    expect(t.lookupV4(new Uint8Array(8), 4)).toBe(1);
  });

  it('refuses the same prefix on two peers, names it, and moves it with replace', () => {
    const t = new PrefixTable();
    expect(t.insert('10.1.0.0/16', 1)).toBe(true);
    expect(t.insert('10.1.0.0/16', 1)).toBe(false); // idempotent
    const e = errorOf(() => t.insert('10.1.0.0/16', 2));
    expect(e.code).toBe(ErrorCode.PREFIX_CONFLICT);
    expect(e.message).toContain('10.1.0.0/16');
    expect(t.lookupV4(addr('10.1.0.1'), 0)).toBe(1);
    expect(t.insert('10.1.0.0/16', 2, { replace: true })).toBe(true);
    expect(t.lookupV4(addr('10.1.0.1'), 0)).toBe(2);
    expect(t.prefixesOf(1)).toEqual([]);
    expect(t.prefixesOf(2)).toEqual(['10.1.0.0/16']);
    expect(t.size).toBe(1);
  });

  it('refuses a prefix with host bits, naming it', () => {
    const e = errorOf(() => new PrefixTable().insert('10.1.2.3/16', 1));
    expect(e.code).toBe(ErrorCode.PREFIX_INVALID);
    expect(e.message).toContain('10.1.2.3/16');
  });

  it('removes one prefix, then a whole peer, and the lookups follow', () => {
    const t = new PrefixTable();
    t.insert('10.0.0.0/8', 1);
    t.insert('10.1.0.0/16', 2);
    t.insert('10.1.1.0/24', 2);
    t.insert('2001:db8:1::/48', 2);
    t.insert('10.1.1.128/25', 3);
    expect(t.remove('10.1.0.0/16')).toBe(2);
    expect(t.remove('10.1.0.0/16')).toBe(NO_PEER);
    expect(t.lookupV4(addr('10.1.2.1'), 0)).toBe(1);
    expect(t.lookupV4(addr('10.1.1.1'), 0)).toBe(2);
    expect(t.removePeer(2)).toBe(2);
    expect(t.removePeer(2)).toBe(0);
    expect(t.lookupV4(addr('10.1.1.1'), 0)).toBe(1);
    expect(t.lookupV4(addr('10.1.1.200'), 0)).toBe(3);
    expect(t.lookupV6(addr('2001:db8:1::1'), 0)).toBe(NO_PEER);
    expect(t.entries()).toEqual([
      { prefix: '10.0.0.0/8', peer: 1 },
      { prefix: '10.1.1.128/25', peer: 3 },
    ]);
    expect(t.size).toBe(2);
  });

  it('sets one peer\'s prefixes all or nothing (a reload editing a peer)', () => {
    const t = new PrefixTable(6);
    t.insert('10.1.0.0/16', 1);
    t.insert('10.9.0.0/16', 9);
    expect(t.setPeerPrefixes(1, ['10.1.0.0/16', '10.11.0.0/16', '2001:db8:1::/48'])).toEqual({ added: ['10.11.0.0/16', '2001:db8:1::/48'], removed: [] });
    expect(t.setPeerPrefixes(1, ['10.11.0.0/16', '10.12.0.0/16'])).toEqual({ added: ['10.12.0.0/16'], removed: ['10.1.0.0/16', '2001:db8:1::/48'] });
    expect(t.prefixesOf(1)).toEqual(['10.11.0.0/16', '10.12.0.0/16']);
    // A conflict with another peer: nothing changes, not even the prefixes that were fine.
    const before = t.entries();
    const e = errorOf(() => t.setPeerPrefixes(1, ['10.13.0.0/16', '10.9.0.0/16']));
    expect(e.code).toBe(ErrorCode.PREFIX_CONFLICT);
    expect(e.message).toContain('10.9.0.0/16');
    expect(t.entries()).toEqual(before);
    // Over the cap: nothing changes either.
    const full = errorOf(() => t.setPeerPrefixes(2, ['10.21.0.0/16', '10.22.0.0/16', '10.23.0.0/16', '10.24.0.0/16']));
    expect(full.code).toBe(ErrorCode.PREFIX_LIMIT);
    expect(t.entries()).toEqual(before);
    // A bad prefix: nothing changes.
    expect(errorOf(() => t.setPeerPrefixes(1, ['10.14.0.0/16', '10.15.1.0/16'])).code).toBe(ErrorCode.PREFIX_INVALID);
    expect(t.entries()).toEqual(before);
    expect(t.lookupV4(addr('10.12.3.4'), 0)).toBe(1);
    expect(t.setPeerPrefixes(1, [])).toEqual({ added: [], removed: ['10.11.0.0/16', '10.12.0.0/16'] });
    expect(t.lookupV4(addr('10.12.3.4'), 0)).toBe(NO_PEER);
  });

  it('lists entries by peer then prefix, canonical text', () => {
    const t = new PrefixTable();
    t.insert('2001:DB8:2::/48', 2);
    t.insert('10.2.0.0/16', 2);
    t.insert(parsePrefix('10.1.0.0/16'), 1);
    expect(t.entries()).toEqual([
      { prefix: '10.1.0.0/16', peer: 1 },
      { prefix: '10.2.0.0/16', peer: 2 },
      { prefix: '2001:db8:2::/48', peer: 2 },
    ]);
    expect(t.peerOf('10.2.0.0/16')).toBe(2);
    expect(t.peerOf('10.2.0.0/17')).toBe(NO_PEER);
  });

  it('stops at its cap with PREFIX_LIMIT, and the default cap holds 4,096 peers x 16 prefixes', () => {
    expect(MAX_ROUTE_PREFIXES).toBeGreaterThanOrEqual(4096 * 16);
    expect(MAX_PEERS).toBeGreaterThanOrEqual(4096);
    const t = new PrefixTable(3);
    t.insert('10.0.0.0/24', 1);
    t.insert('10.0.1.0/24', 1);
    t.insert('10.0.2.0/24', 2);
    const e = errorOf(() => t.insert('10.0.3.0/24', 2));
    expect(e.code).toBe(ErrorCode.PREFIX_LIMIT);
    expect(e.message).toContain('10.0.3.0/24');
    expect(t.insert('10.0.2.0/24', 1, { replace: true })).toBe(true); // a move is not a new entry
    t.remove('10.0.0.0/24');
    t.insert('10.0.3.0/24', 2);
    expect(t.size).toBe(3);
  });

  it('holds 4,096 peers x 16 prefixes (both families) and finds every one', () => {
    const t = new PrefixTable();
    for (let peer = 0; peer < 4096; peer++) {
      for (let i = 0; i < 8; i++) t.insert(`10.${peer >> 4}.${((peer & 15) << 4) | i}.0/24`, peer);
      for (let i = 0; i < 8; i++) t.insert(`2001:db8:${peer.toString(16)}:${i}::/64`, peer);
    }
    expect(t.size).toBe(4096 * 16);
    for (let peer = 0; peer < 4096; peer += 37) {
      expect(t.lookupV4(addr(`10.${peer >> 4}.${((peer & 15) << 4) | 7}.9`), 0)).toBe(peer);
      expect(t.lookupV6(addr(`2001:db8:${peer.toString(16)}:7::9`), 0)).toBe(peer);
    }
  });
});

// ---- property: the trie against a brute-force longest-match scan ----------------------------

interface ModelEntry {
  prefix: IpPrefix;
  peer: number;
}

function holds(p: IpPrefix, a: Uint8Array): boolean {
  for (let bit = 0; bit < p.lengthBits; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((p.bytes[bit >> 3]! & m) !== (a[bit >> 3]! & m)) return false;
  }
  return true;
}

function bruteForce(model: Map<string, ModelEntry>, family: 4 | 6, a: Uint8Array): number {
  let best: ModelEntry | undefined;
  for (const e of model.values()) {
    if (e.prefix.family !== family || !holds(e.prefix, a)) continue;
    if (!best || e.prefix.lengthBits > best.prefix.lengthBits) best = e;
  }
  return best?.peer ?? NO_PEER;
}

/**
 * Prefixes near a few base addresses (a base with up to two bits flipped, any length), so that
 * random prefixes overlap, share long common parts (branching deep in IPv6's third and fourth
 * words) and addresses built from them hit.
 */
const V4_BASES = ['10.0.0.0', '10.128.0.0', '192.0.2.0'].map((a) => parsePrefix(a).bytes);
const V6_BASES = ['2001:db8::', '2001:db8::8000:0:0:0', '2001:db8::1:0:8000:0', 'fd00::ffff:0:0'].map((a) => parsePrefix(a).bytes);
const prefixArb = fc.boolean().chain((v4) =>
  fc
    .record({
      base: fc.constantFrom(...(v4 ? V4_BASES : V6_BASES)),
      flips: fc.array(fc.nat(v4 ? 31 : 127), { maxLength: 2 }),
      len: fc.oneof(fc.nat(v4 ? 32 : 128), fc.constantFrom(...(v4 ? [0, 31, 32] : [0, 63, 64, 127, 128]))),
    })
    .map(({ base, flips, len }) => {
      const raw = Uint8Array.from(base);
      for (const bit of flips) raw[bit >> 3]! ^= 0x80 >> (bit & 7);
      const text = v4 ? `${raw.join('.')}/${len}` : `${[...Array(8).keys()].map((i) => ((raw[2 * i]! << 8) | raw[2 * i + 1]!).toString(16)).join(':')}/${len}`;
      return parsePrefix(text, { normalise: true });
    }),
);

type Op = { kind: 'insert'; prefix: IpPrefix; peer: number } | { kind: 'remove'; prefix: IpPrefix } | { kind: 'removePeer'; peer: number };
const peerArb = fc.nat(7);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('insert' as const), prefix: prefixArb, peer: peerArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), prefix: prefixArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removePeer' as const), peer: peerArb }) },
);

/** An address inside `p` with random host bits (so that lookups hit), or a fully random one. */
function addressNear(p: IpPrefix, noise: Uint8Array): Uint8Array {
  const a = Uint8Array.from(p.bytes);
  for (let bit = p.lengthBits; bit < a.length * 8; bit++) {
    if (noise[bit % noise.length]! & (1 << (bit & 7))) a[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  return a;
}

describe('PrefixTable property: same answers as a brute-force longest-match scan', () => {
  it('after random inserts, removals and peer removals, both families', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 20 }), (ops, noises) => {
        const t = new PrefixTable();
        const model = new Map<string, ModelEntry>();
        for (const op of ops) {
          if (op.kind === 'insert') {
            const held = model.get(op.prefix.text);
            if (held && held.peer !== op.peer) {
              expect(() => t.insert(op.prefix, op.peer)).toThrow(BraidError);
            } else {
              expect(t.insert(op.prefix, op.peer)).toBe(!held);
              model.set(op.prefix.text, { prefix: op.prefix, peer: op.peer });
            }
          } else if (op.kind === 'remove') {
            expect(t.remove(op.prefix)).toBe(model.get(op.prefix.text)?.peer ?? NO_PEER);
            model.delete(op.prefix.text);
          } else {
            let n = 0;
            for (const [k, e] of model) if (e.peer === op.peer) (model.delete(k), n++);
            expect(t.removePeer(op.peer)).toBe(n);
          }
          // A lookup between changes: the flattened copy must follow every change.
          if (op.kind !== 'removePeer') {
            const a = addressNear(op.prefix, noises[0]!);
            expect(op.prefix.family === 4 ? t.lookupV4(a, 0) : t.lookupV6(a, 0)).toBe(bruteForce(model, op.prefix.family, a));
          }
        }
        expect(t.size).toBe(model.size);
        const perFamily = (f: 4 | 6): number => [...model.values()].filter((e) => e.prefix.family === f).length;
        expect(t.nodeCount()).toBeLessThanOrEqual(Math.max(0, 2 * perFamily(4) - 1) + Math.max(0, 2 * perFamily(6) - 1));
        const want = [...model.values()].map((e) => ({ prefix: e.prefix.text, peer: e.peer }));
        want.sort((a, b) => a.peer - b.peer || (a.prefix < b.prefix ? -1 : 1));
        expect(t.entries()).toEqual(want);
        // Probe: addresses inside every prefix ever named (held or removed), plus random ones.
        const probes: Array<{ family: 4 | 6; a: Uint8Array }> = [];
        for (const op of ops) if (op.kind !== 'removePeer') for (const n of noises.slice(0, 3)) probes.push({ family: op.prefix.family, a: addressNear(op.prefix, n) });
        for (const n of noises) probes.push({ family: 4, a: n.subarray(0, 4) }, { family: 6, a: n });
        for (const { family, a } of probes) {
          const got = family === 4 ? t.lookupV4(a, 0) : t.lookupV6(a, 0);
          expect(got, `${family === 4 ? 'v4' : 'v6'} ${[...a].join('.')}`).toBe(bruteForce(model, family, a));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('PrefixTable with parseInner (one parse: the addresses where parseInner says)', () => {
  it('routes by info.dstAt and checks the source by info.srcAt, both families', async () => {
    const { newInnerInfo, parseInner } = await import('../../../src/core/inner.ts');
    const t = new PrefixTable();
    t.insert('10.1.0.0/16', 1);
    t.insert('10.2.0.0/16', 2);
    t.insert('2001:db8:1::/48', 1);
    t.insert('2001:db8:2::/48', 2);
    const info = newInnerInfo();
    const p4 = v4Packet('10.1.0.5', '10.2.0.9');
    p4[2] = 0;
    p4[3] = 28;
    expect(parseInner(p4, info)).toBeDefined();
    expect([info.srcAt, info.dstAt]).toEqual([12, 16]);
    expect(t.lookup(p4, info.ipVersion, info.dstAt)).toBe(2);
    expect(t.lookup(p4, info.ipVersion, info.srcAt)).toBe(1);
    const p6 = v6Packet('2001:db8:2::5', '2001:db8:1::9');
    expect(parseInner(p6, info)).toBeDefined();
    expect([info.srcAt, info.dstAt]).toEqual([8, 24]);
    expect(t.lookup(p6, info.ipVersion, info.dstAt)).toBe(1);
    expect(t.lookup(p6, info.ipVersion, info.srcAt)).toBe(2);
    expect(t.lookup(p6, 5, info.dstAt)).toBe(NO_PEER);
  });
});
