import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeDataDatagram, encodeEnvelope, encodeFrame } from '../../src/core/wire/codec.ts';
import {
  AEAD_TAG_BYTES,
  BOND_SEQ_BYTES,
  dataOverheadBytes,
  outerHeaderBytes,
  parityOverheadBytes,
  usableInnerMtu,
} from '../../src/core/wire/overhead.ts';
import { DEFAULT_TUN_MTU, OVERHEAD_BUDGET_BYTES } from '../../src/core/constants.ts';

// The datagram as the edge sends it: envelope(counter, receiver) around the sealed frame (frame
// bytes + the AEAD tag; the tag's content does not change sizes, so a zero tag stands in).
function dataDatagramBytes(o: { link: number; pathSeq: number; packet: number; fecGroup: number; fecIndex: number; dupSeq: number; fecK: number; counter: number; receiver: number }): number {
  const plain = encodeDataDatagram(o.receiver, o.counter, o.link, o.pathSeq, new Uint8Array(o.packet), o.fecGroup, o.fecIndex, o.dupSeq, o.fecK);
  // Re-wrap with a sealed payload AEAD_TAG_BYTES longer to count the tag's effect on the length varint.
  const frameBytes = encodeFrame({ kind: 'data', data: { link: o.link, pathSeq: o.pathSeq, packet: new Uint8Array(o.packet), fecGroup: o.fecGroup, fecIndex: o.fecIndex, dupSeq: o.dupSeq, fecK: o.fecK } });
  const sealed = new Uint8Array(frameBytes.length + AEAD_TAG_BYTES);
  const env = encodeEnvelope({ version: 1, receiver: o.receiver, counter: o.counter, sealed });
  expect(plain.length).toBeLessThanOrEqual(env.length);
  return env.length;
}

describe('overlay overhead and usable inner MTU', () => {
  it('stays within the design budget of 64 bytes on top of outer IP/UDP', () => {
    expect(dataOverheadBytes(1500)).toBeLessThanOrEqual(OVERHEAD_BUDGET_BYTES);
    expect(dataOverheadBytes(1500)).toBe(59);
    // A bonded class's FEC-protected frame adds bond_seq: exactly the budget (issue 17).
    expect(dataOverheadBytes(1500, true)).toBe(59 + BOND_SEQ_BYTES);
    expect(dataOverheadBytes(1500, true)).toBeLessThanOrEqual(OVERHEAD_BUDGET_BYTES);
  });

  it('a bonded packet of the usable size less BOND_SEQ_BYTES fits the path with every field at its largest', () => {
    for (const [mtu, family] of [[1500, 4], [1500, 6], [1280, 6], [9000, 4]] as const) {
      const packet = usableInnerMtu(mtu, family) - BOND_SEQ_BYTES;
      const frame = encodeFrame({ kind: 'data', data: { link: 15, pathSeq: 0xffffffff, packet: new Uint8Array(packet), fecGroup: 0xffffffff, fecIndex: 63, dupSeq: 0, fecK: 32, bondSeq: 0xffffffff } });
      const env = encodeEnvelope({ version: 1, receiver: 0xffffffff, counter: 2 ** 52, sealed: new Uint8Array(frame.length + AEAD_TAG_BYTES) });
      expect(env.length + outerHeaderBytes(family)).toBeLessThanOrEqual(mtu);
    }
  });

  it('known figures: 1500-byte IPv4 path carries 1413, IPv6 1393; 1280 IPv6 carries 1173', () => {
    expect(usableInnerMtu(1500, 4)).toBe(1500 - 28 - 59);
    expect(usableInnerMtu(1500, 6)).toBe(1500 - 48 - 59);
    expect(usableInnerMtu(1280, 6)).toBe(1173);
    expect(usableInnerMtu(40, 4)).toBe(0);
  });

  it('a data packet of the usable size fits the path, whatever the field values (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 576, max: 9000 }),
        fc.constantFrom<4 | 6>(4, 6),
        fc.record({
          link: fc.integer({ min: 0, max: 15 }),
          pathSeq: fc.nat({ max: 0xffffffff }),
          counter: fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 0, max: 2 ** 52 })),
          receiver: fc.nat({ max: 0xffffffff }),
          fec: fc.boolean(),
          fecGroup: fc.nat({ max: 0xffffffff }),
          fecIndex: fc.nat({ max: 63 }),
          fecK: fc.nat({ max: 32 }),
          dupSeq: fc.nat({ max: 0xffffffff }),
        }),
        (pathMtu, family, f) => {
          const packet = usableInnerMtu(pathMtu, family);
          const bytes = dataDatagramBytes({
            ...f,
            packet,
            fecGroup: f.fec ? f.fecGroup : 0,
            fecIndex: f.fec ? f.fecIndex : 0,
            fecK: f.fec ? f.fecK : 0,
            dupSeq: f.fec ? 0 : f.dupSeq,
          });
          expect(bytes + outerHeaderBytes(family)).toBeLessThanOrEqual(pathMtu);
        },
      ),
    );
  });

  it('the worst case is reached: a usable+1 packet with the largest fields does not fit', () => {
    const packet = usableInnerMtu(1500, 4) + 1;
    const bytes = dataDatagramBytes({ link: 15, pathSeq: 0xffffffff, counter: 2 ** 52, receiver: 0xffffffff, fecGroup: 0xffffffff, fecIndex: 63, dupSeq: 0, fecK: 32, packet });
    expect(bytes + 28).toBeGreaterThan(1500);
  });

  it('with FEC, parity of a group of full-size packets fits too', () => {
    for (const k of [4, 16, 32]) {
      const inner = usableInnerMtu(1500, 4, k);
      expect(inner).toBeLessThan(usableInnerMtu(1500, 4));
      const frame = encodeFrame({
        kind: 'fecParity',
        fecParity: { link: 15, pathSeq: 0xffffffff, group: 0xffffffff, index: 63, k, m: 32, lengths: new Array<number>(k).fill(inner), shard: new Uint8Array(inner), checksum: 0xffffffff },
      });
      const env = encodeEnvelope({ version: 1, receiver: 0xffffffff, counter: 2 ** 52, sealed: new Uint8Array(frame.length + AEAD_TAG_BYTES) });
      expect(env.length + 28).toBeLessThanOrEqual(1500);
      expect(parityOverheadBytes(inner, k)).toBeGreaterThan(dataOverheadBytes(inner));
    }
  });
});

describe('the default TUN MTU', () => {
  it('is the largest inner packet a 1500-byte path carries over IPv6 (and so over IPv4), worst case', () => {
    expect(DEFAULT_TUN_MTU).toBe(usableInnerMtu(1500, 6));
    expect(DEFAULT_TUN_MTU).toBeLessThanOrEqual(usableInnerMtu(1500, 4));
  });
});
