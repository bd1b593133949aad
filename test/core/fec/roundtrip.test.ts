import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FecEncoder } from '../../../src/core/fec/encoder.ts';
import { FecDecoder } from '../../../src/core/fec/decoder.ts';
import { bytesChecksum } from '../../../src/core/fec/buffers.ts';
import { FEC_PARITY_RING_GROUPS } from '../../../src/core/fec/limits.ts';
import { codecs, copyParity, decodeFrames, encodeStream, key, type Frame } from './helpers.ts';

const packetArb = fc.uint8Array({ minLength: 0, maxLength: 300 });

describe.each(codecs())('FEC round trip over %s', (_name, codec) => {
  it('with at most m losses per group, every packet arrives exactly once and byte-identical, in any order (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(packetArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 80 }),
        fc.integer(),
        fc.boolean(),
        (k, m, packets, lossWish, shuffleSeed, useKHint) => {
          const frames = encodeStream(codec, k, m, packets);
          // Lose what the pattern asks, but never more than m shards of one group.
          const lostPerGroup = new Map<number, number>();
          const kept: Frame[] = [];
          const lostData = new Set<string>();
          frames.forEach((f, i) => {
            const n = lostPerGroup.get(f.groupId) ?? 0;
            if (lossWish[i % Math.max(1, lossWish.length)] === true && n < m) {
              lostPerGroup.set(f.groupId, n + 1);
              if (f.kind === 'data') lostData.add(key(f.groupId, f.index));
            } else {
              kept.push(f);
            }
          });
          const arrived = shuffle(kept, shuffleSeed);
          const { dec, delivered } = decodeFrames(codec, arrived, {}, 0, useKHint);

          const originals = new Map<string, Uint8Array>();
          for (const f of frames) if (f.kind === 'data') originals.set(key(f.groupId, f.index), f.packet);
          const arrivedAt = new Map<string, number>();
          arrived.forEach((f, at) => {
            if (f.kind === 'data') arrivedAt.set(key(f.groupId, f.index), at);
          });
          const seen = new Set<string>();
          for (const d of delivered) {
            const id = key(d.groupId, d.index);
            expect(seen.has(id), `duplicate ${id}`).toBe(false);
            seen.add(id);
            expect(d.packet).toEqual(originals.get(id));
            // A lost packet can only come from parity. A received one is delivered when it arrives,
            // or earlier when k shards of its group overtook it (then rebuilt): never later.
            if (lostData.has(id)) expect(d.recovered).toBe(true);
            else expect(d.at).toBeLessThanOrEqual(arrivedAt.get(id)!);
          }
          expect(seen.size).toBe(packets.length);
          expect(dec.counters.recovered).toBeGreaterThanOrEqual(lostData.size);
          expect(dec.counters.malformed).toBe(0);
          expect(dec.counters.unrecoverable).toBe(0);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('with more than m losses a group recovers nothing wrong and counts what is missing', () => {
    const packets = Array.from({ length: 8 }, (_, i) => new Uint8Array(100 + i).fill(i + 1));
    const frames = encodeStream(codec, 8, 2, packets);
    // Lose 3 data packets of an 8+2 group: unrecoverable.
    const kept = frames.filter((f) => !(f.kind === 'data' && f.index < 3));
    const dec = new FecDecoder(codec, { expireMs: 50 });
    for (const f of kept) {
      if (f.kind === 'data') expect(dec.onData(0, f.groupId, f.index, undefined, f.packet)).toEqual([]);
      else expect(dec.onParity(0, f)).toEqual([]);
    }
    expect(dec.nextDeadlineMs()).toBe(50);
    dec.onTimeout(50);
    expect(dec.counters.unrecoverable).toBe(3);
    expect(dec.liveGroups).toBe(0);
    expect(dec.nextDeadlineMs()).toBeUndefined();
  });

  it('recovers as soon as k shards are in: parity first, then the data that completes k', () => {
    const packets = Array.from({ length: 4 }, (_, i) => Uint8Array.from([i, i, i]));
    const frames = encodeStream(codec, 4, 2, packets);
    const data = frames.filter((f) => f.kind === 'data');
    const parity = frames.filter((f) => f.kind === 'parity');
    const dec = new FecDecoder(codec);
    expect(dec.onParity(0, parity[0]!)).toEqual([]);
    expect(dec.onParity(0, parity[1]!)).toEqual([]);
    expect(dec.onData(0, data[0]!.groupId, 0, undefined, data[0]!.packet)).toEqual([]);
    const rec = dec.onData(0, data[1]!.groupId, 1, undefined, data[1]!.packet);
    expect(rec.map((r) => r.index)).toEqual([2, 3]);
    expect(rec.map((r) => [...r.packet])).toEqual([
      [2, 2, 2],
      [3, 3, 3],
    ]);
    // The late originals are recognised, not delivered twice.
    expect(dec.isDelivered(data[2]!.groupId, 2)).toBe(true);
    expect(dec.onData(0, data[2]!.groupId, 2, undefined, data[2]!.packet)).toEqual([]);
    expect(dec.counters.duplicate).toBe(1);
  });

  it('with the nominal k on data frames, a full group retires on its last data packet', () => {
    const packets = Array.from({ length: 6 }, (_, i) => new Uint8Array(64).fill(i));
    const frames = encodeStream(codec, 4, 2, packets); // one full group of 4, one early group of 2
    const dec = new FecDecoder(codec);
    for (const f of frames) {
      if (f.kind === 'data') dec.onData(0, f.groupId, f.index, f.k, f.packet);
    }
    // The full group is done without parity; the short one (k' = 2 < 4) must wait for its parity.
    expect(dec.liveGroups).toBe(1);
    for (const f of frames) if (f.kind === 'parity') dec.onParity(0, f);
    expect(dec.liveGroups).toBe(0);
    expect(dec.counters.parityLate).toBe(3); // both of the full group's, the short group's second

    expect(dec.counters.malformed).toBe(0);
  });

  it('duplicated frames are counted and never produce a second delivery', () => {
    const packets = Array.from({ length: 16 }, (_, i) => new Uint8Array(50 + i * 10).fill(i));
    const frames = encodeStream(codec, 8, 3, packets);
    const lossy = frames.filter((f) => !(f.kind === 'data' && f.index % 4 === 1));
    const doubled = lossy.flatMap((f) => [f, f]);
    const { dec, delivered } = decodeFrames(codec, doubled);
    const ids = delivered.map((d) => key(d.groupId, d.index));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(16);
    // Every duplicate of a data frame was stopped by isDelivered (the caller's check) or counted.
    expect(dec.counters.duplicate + dec.counters.parityLate).toBeGreaterThan(0);
    expect(dec.counters.malformed).toBe(0);
  });
});

describe('FecEncoder', () => {
  const [[, codec]] = codecs();

  it('hands back the stamp at once and never holds data (parity only after the k-th packet)', () => {
    const enc = new FecEncoder(codec, { k: 3, m: 2, flushMs: 10 });
    expect(enc.push(0, Uint8Array.of(1), 0)).toEqual({ groupId: 1, index: 0, k: 3 });
    expect(enc.pollParity()).toBeUndefined();
    expect(enc.push(1, Uint8Array.of(2, 2), 1)).toEqual({ groupId: 1, index: 1, k: 3 });
    expect(enc.pollParity()).toBeUndefined();
    expect(enc.nextDeadlineMs()).toBe(10);
    expect(enc.push(2, Uint8Array.of(3, 3, 3), 1)).toEqual({ groupId: 1, index: 2, k: 3 });
    const p0 = enc.pollParity()!;
    expect(p0).toMatchObject({ groupId: 1, index: 3, k: 3, m: 2, shardBytes: 3, lengths: [1, 2, 3], dataPathMask: 0b11 });
    expect(p0.shard.length).toBe(3);
    expect(p0.checksum).toBe(bytesChecksum(1, [Uint8Array.of(1), Uint8Array.of(2, 2), Uint8Array.of(3, 3, 3)], 3, 3));
    expect(enc.pollParity()!.index).toBe(4);
    expect(enc.pollParity()).toBeUndefined();
    expect(enc.nextDeadlineMs()).toBeUndefined();
  });

  it('flushes a short group at its deadline with k = packets so far', () => {
    const enc = new FecEncoder(codec, { k: 8, m: 2, flushMs: 3 });
    enc.push(100, new Uint8Array(40).fill(7), 0);
    enc.push(101, new Uint8Array(20).fill(9), 0);
    expect(enc.nextDeadlineMs()).toBe(103);
    enc.onTimeout(102.9);
    expect(enc.pollParity()).toBeUndefined();
    enc.onTimeout(103);
    const p = enc.pollParity()!;
    expect(p).toMatchObject({ k: 2, m: 2, index: 2, shardBytes: 40, lengths: [40, 20] });
    expect(enc.counters.earlyFlushes).toBe(1);
    // A push after the deadline (timer missed) flushes the old group first, then opens a new one.
    enc.push(200, Uint8Array.of(1), 0);
    expect(enc.push(210, Uint8Array.of(2), 0)).toMatchObject({ groupId: 3, index: 0 });
  });

  it('setM applies from the next group; m = 0 leaves packets unprotected', () => {
    const enc = new FecEncoder(codec, { k: 2, m: 1, flushMs: 5 });
    enc.push(0, Uint8Array.of(1), 0);
    enc.setM(0);
    expect(enc.push(0, Uint8Array.of(2), 0)).toMatchObject({ groupId: 1, index: 1 }); // group keeps m = 1
    expect(enc.pollParity()?.m).toBe(1);
    expect(enc.push(0, Uint8Array.of(3), 0)).toBeUndefined();
    expect(enc.counters.unprotectedPackets).toBe(1);
    enc.setM(3);
    enc.push(0, Uint8Array.of(4), 0);
    enc.push(0, Uint8Array.of(5), 0);
    const ms = [enc.pollParity()?.index, enc.pollParity()?.index, enc.pollParity()?.index];
    expect(ms).toEqual([2, 3, 4]);
    expect(() => enc.setM(33)).toThrow(RangeError);
  });

  it('group ids are a wrapping uint32 that skips 0 (0 means unprotected on the wire)', () => {
    const enc = new FecEncoder(codec, { k: 1, m: 1, flushMs: 0, firstGroupId: 0xffffffff });
    expect(enc.push(0, Uint8Array.of(1), 0)!.groupId).toBe(0xffffffff);
    expect(enc.push(0, Uint8Array.of(1), 0)!.groupId).toBe(1);
  });

  it('drops and counts parity the caller did not poll, keeping the newest groups', () => {
    const enc = new FecEncoder(codec, { k: 1, m: 2, flushMs: 0 });
    const groups = FEC_PARITY_RING_GROUPS + 2;
    for (let i = 0; i < groups; i++) enc.push(0, Uint8Array.of(i), 0);
    expect(enc.counters.parityOverrun).toBe(4);
    const polled: number[] = [];
    for (let p = enc.pollParity(); p !== undefined; p = enc.pollParity()) polled.push(p.groupId);
    expect(polled).toEqual([3, 3, 4, 4, 5, 5, 6, 6]);
  });

  it('grows buffers for a jumbo packet after short ones in the same group', () => {
    const enc = new FecEncoder(codec, { k: 3, m: 1, flushMs: 5 });
    const packets = [new Uint8Array(10).fill(1), new Uint8Array(9000).fill(2), new Uint8Array(3000).fill(3)];
    const frames = packets.map((p) => ({ ...enc.push(0, p, 0)!, packet: p }));
    const parity = copyParity(enc.pollParity()!);
    expect(parity.shard.length).toBe(9000);
    const dec = new FecDecoder(codec);
    dec.onData(0, frames[0]!.groupId, 0, undefined, packets[0]!);
    dec.onData(0, frames[2]!.groupId, 2, undefined, packets[2]!);
    const rec = dec.onParity(0, parity);
    expect(rec).toHaveLength(1);
    expect(rec[0]!.packet).toEqual(packets[1]);
  });

  it('passes packets over the shard limit through unprotected', () => {
    const enc = new FecEncoder(codec, { k: 2, m: 1, flushMs: 5 });
    expect(enc.push(0, new Uint8Array(65536), 0)).toBeUndefined();
    expect(enc.counters.oversizePackets).toBe(1);
  });

  it('rejects bad configuration loudly (programmer error)', () => {
    expect(() => new FecEncoder(codec, { k: 0, m: 1, flushMs: 1 })).toThrow(RangeError);
    expect(() => new FecEncoder(codec, { k: 33, m: 1, flushMs: 1 })).toThrow(RangeError);
    expect(() => new FecEncoder(codec, { k: 4, m: 1, flushMs: -1 })).toThrow(RangeError);
    expect(() => new FecEncoder(codec, { k: 4, m: 1, flushMs: 5, firstGroupId: 0 })).toThrow(RangeError);
  });
});

describe('FecDecoder bounds', () => {
  const [[, codec]] = codecs();

  it('expired groups leave tombstones: late parity is ignored, late data deduplicated', () => {
    const packets = Array.from({ length: 4 }, (_, i) => new Uint8Array(30).fill(i));
    const frames = encodeStream(codec, 4, 2, packets);
    const dec = new FecDecoder(codec, { expireMs: 100 });
    const d0 = frames[0]!;
    if (d0.kind !== 'data') throw new Error('expected data first');
    dec.onData(0, d0.groupId, d0.index, undefined, d0.packet);
    dec.onTimeout(100);
    expect(dec.liveGroups).toBe(0);
    for (const f of frames) if (f.kind === 'parity') expect(dec.onParity(150, f)).toEqual([]);
    expect(dec.counters.parityLate).toBe(2);
    expect(dec.isDelivered(d0.groupId, 0)).toBe(true);
    expect(dec.isDelivered(d0.groupId, 1)).toBe(false);
    dec.onData(150, d0.groupId, 1, undefined, packets[1]!);
    expect(dec.isDelivered(d0.groupId, 1)).toBe(true);
  });

  it('holds at most maxGroups groups, evicting the oldest', () => {
    const dec = new FecDecoder(codec, { maxGroups: 4 });
    for (let g = 1; g <= 10; g++) dec.onData(0, g, 0, undefined, new Uint8Array(100));
    expect(dec.liveGroups).toBe(4);
    expect(dec.counters.groupsEvicted).toBe(6);
  });

  it('never holds more shard bytes than its budget', () => {
    const budgetBytes = 256 * 1024;
    const dec = new FecDecoder(codec, { maxGroups: 4096, budgetBytes });
    for (let g = 1; g <= 300; g++) {
      for (let i = 0; i < 4; i++) dec.onData(0, g, i, undefined, new Uint8Array(i === 0 ? 20000 : 1400));
      expect(dec.bufferedBytes).toBeLessThanOrEqual(budgetBytes);
    }
    expect(dec.counters.groupsEvicted).toBeGreaterThan(0);
  });

  it('rejects bad configuration loudly (programmer error)', () => {
    expect(() => new FecDecoder(codec, { maxGroups: 0 })).toThrow(RangeError);
    expect(() => new FecDecoder(codec, { expireMs: 0 })).toThrow(RangeError);
    expect(() => new FecDecoder(codec, { budgetBytes: 1000 })).toThrow(RangeError);
  });

  it('reset forgets groups and tombstones (new peer session)', () => {
    const dec = new FecDecoder(codec);
    dec.onData(0, 5, 0, undefined, Uint8Array.of(1));
    dec.reset();
    expect(dec.liveGroups).toBe(0);
    expect(dec.isDelivered(5, 0)).toBe(false);
  });
});

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
