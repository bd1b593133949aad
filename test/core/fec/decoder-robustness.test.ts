import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FecDecoder, type FecParityFrame } from '../../../src/core/fec/decoder.ts';
import { codecs, encodeStream, key, type DataFrame, type Frame, type ParityFrameCopy } from './helpers.ts';

type Mutation =
  | { kind: 'k'; v: number }
  | { kind: 'm'; v: number }
  | { kind: 'index'; v: number }
  | { kind: 'lengthAt'; at: number; v: number }
  | { kind: 'lengthsCount'; delta: number }
  | { kind: 'checksum'; v: number }
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'resize'; len: number }
  | { kind: 'group'; pick: number; raw: number | undefined };

const weirdNumber = fc.oneof(
  fc.integer({ min: -3, max: 70 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, 2 ** 32, 2 ** 53),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('k' as const), v: weirdNumber }),
  fc.record({ kind: fc.constant('m' as const), v: weirdNumber }),
  fc.record({ kind: fc.constant('index' as const), v: weirdNumber }),
  fc.record({ kind: fc.constant('lengthAt' as const), at: fc.nat(40), v: fc.oneof(weirdNumber, fc.integer({ min: 0, max: 400 })) }),
  fc.record({ kind: fc.constant('lengthsCount' as const), delta: fc.constantFrom(-1, 1, 5) }),
  fc.record({ kind: fc.constant('checksum' as const), v: fc.oneof(fc.nat(0xffffffff), weirdNumber) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(400), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('resize' as const), len: fc.integer({ min: 0, max: 500 }) }),
  fc.record({
    kind: fc.constant('group' as const),
    pick: fc.nat(50),
    raw: fc.option(fc.constantFrom(0, -1, 2 ** 32, Number.NaN), { nil: undefined }),
  }),
);

function mutate(p: ParityFrameCopy, mu: Mutation, groupIds: readonly number[]): ParityFrameCopy {
  const f: ParityFrameCopy = { ...p, lengths: [...p.lengths], shard: p.shard.slice() };
  switch (mu.kind) {
    case 'k':
      return { ...f, k: mu.v };
    case 'm':
      return { ...f, m: mu.v };
    case 'index':
      return { ...f, index: mu.v };
    case 'lengthAt':
      f.lengths[mu.at % f.lengths.length] = mu.v;
      return f;
    case 'lengthsCount':
      if (mu.delta < 0) f.lengths.pop();
      else for (let i = 0; i < mu.delta; i++) f.lengths.push(1);
      return f;
    case 'checksum':
      return { ...f, checksum: mu.v };
    case 'flip':
      f.shard[mu.at % f.shard.length] ^= mu.xor;
      return f;
    case 'resize': {
      const shard = new Uint8Array(mu.len);
      shard.set(f.shard.subarray(0, mu.len));
      return { ...f, shard };
    }
    case 'group':
      return { ...f, groupId: mu.raw ?? groupIds[mu.pick % groupIds.length]! };
  }
}

const garbageDataArb = fc.record({
  groupPick: fc.nat(50),
  rawGroup: fc.option(fc.constantFrom(0, -5, 2 ** 32, 1.5), { nil: undefined }),
  index: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.constant(Number.NaN)),
  kHint: fc.option(fc.oneof(fc.integer({ min: -1, max: 40 }), fc.constant(Number.NaN)), { nil: undefined }),
  packet: fc.uint8Array({ maxLength: 400 }),
});

describe.each(codecs())('FecDecoder under garbage (%s)', (_name, codec) => {
  it('inconsistent or garbage frames never throw and never yield a wrong packet (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        fc.array(fc.tuple(fc.nat(200), fc.nat(1000), mutationArb), { maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(1000), garbageDataArb), { maxLength: 6 }),
        fc.boolean(),
        (k, m, packets, lossWish, parityGarbage, dataGarbage, useKHint) => {
          const frames = encodeStream(codec, k, m, packets);
          const originals = new Map<string, Uint8Array>();
          for (const f of frames) if (f.kind === 'data') originals.set(key(f.groupId, f.index), f.packet);
          const groupIds = [...new Set(frames.map((f) => f.groupId))];
          const parity = frames.filter((f): f is ParityFrameCopy => f.kind === 'parity');

          const arrival: Frame[] = frames.filter((_, i) => lossWish[i % Math.max(1, lossWish.length)] !== true);
          for (const [pick, pos, mu] of parityGarbage) {
            if (parity.length === 0) break;
            arrival.splice(pos % (arrival.length + 1), 0, mutate(parity[pick % parity.length]!, mu, groupIds));
          }
          for (const [pos, g] of dataGarbage) {
            const d: DataFrame = {
              kind: 'data',
              groupId: g.rawGroup ?? groupIds[g.groupPick % groupIds.length]!,
              index: g.index,
              packet: g.packet,
              seq: -1,
              k: g.kHint,
            };
            arrival.splice(pos % (arrival.length + 1), 0, d);
          }

          const dec = new FecDecoder(codec, { maxGroups: 8 });
          const recoveredKeys = new Set<string>();
          const dataKeys = new Set<string>();
          arrival.forEach((f, at) => {
            const nowMs = at; // time moves too, so expiry and eviction paths run
            const out =
              f.kind === 'data'
                ? dec.onData(nowMs, f.groupId, f.index, useKHint || f.seq < 0 ? f.k : undefined, f.packet)
                : dec.onParity(nowMs, f);
            if (f.kind === 'data') dataKeys.add(key(f.groupId, f.index));
            for (const r of out) {
              const id = key(r.groupId, r.index);
              // Never a packet the sender did not send at that position, never one twice, never
              // one the decoder had already been given.
              expect(r.packet).toEqual(originals.get(id));
              expect(recoveredKeys.has(id)).toBe(false);
              expect(dataKeys.has(id)).toBe(false);
              recoveredKeys.add(id);
            }
          });
          const c = dec.counters;
          expect(c.recovered).toBe(recoveredKeys.size);
          if (parityGarbage.length + dataGarbage.length === 0) expect(c.malformed).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('each kind of inconsistency is one counted malformed drop', () => {
    const packets = Array.from({ length: 4 }, (_, i) => new Uint8Array(10 + i).fill(i + 1));
    const frames = encodeStream(codec, 4, 2, packets);
    const p = frames.find((f): f is ParityFrameCopy => f.kind === 'parity')!;
    const cases: Array<[string, FecParityFrame]> = [
      ['k = 0', { ...p, k: 0 }],
      ['k > 32', { ...p, k: 33 }],
      ['m = 0', { ...p, m: 0 }],
      ['index < k', { ...p, index: 1 }],
      ['index >= k + m', { ...p, index: 6 }],
      ['index not an integer', { ...p, index: 4.5 }],
      ['group 0', { ...p, groupId: 0 }],
      ['group over uint32', { ...p, groupId: 2 ** 32 }],
      ['lengths count != k', { ...p, lengths: [10, 11, 12] }],
      ['a length over the shard', { ...p, lengths: [10, 11, 12, 14] }],
      ['negative length', { ...p, lengths: [10, -1, 12, 13] }],
      ['shard longer than the longest packet', { ...p, shard: new Uint8Array(14) }],
      ['empty shard', { ...p, shard: new Uint8Array(0), lengths: [0, 0, 0, 0] }],
      ['shard over 65535 bytes', { ...p, shard: new Uint8Array(65536), lengths: [65536, 1, 1, 1] }],
      ['checksum NaN', { ...p, checksum: Number.NaN }],
      ['not an object', null as unknown as FecParityFrame],
      ['lengths missing', { ...p, lengths: undefined } as unknown as FecParityFrame],
      ['shard not bytes', { ...p, shard: [1, 2, 3] } as unknown as FecParityFrame],
    ];
    for (const [what, frame] of cases) {
      const dec = new FecDecoder(codec);
      expect(dec.onParity(0, frame), what).toEqual([]);
      expect(dec.counters.malformed, what).toBe(1);
      expect(dec.liveGroups, what).toBe(0);
    }
  });

  it('a frame that disagrees with its group is dropped; the group still recovers from consistent ones', () => {
    const packets = Array.from({ length: 4 }, (_, i) => new Uint8Array(10 + i).fill(i + 1));
    const frames = encodeStream(codec, 4, 2, packets);
    const data = frames.filter((f): f is DataFrame => f.kind === 'data');
    const [p4, p5] = frames.filter((f): f is ParityFrameCopy => f.kind === 'parity');
    const dec = new FecDecoder(codec);
    dec.onData(0, data[0]!.groupId, 0, undefined, data[0]!.packet);
    dec.onData(0, data[1]!.groupId, 1, undefined, data[1]!.packet);
    expect(dec.onParity(0, p4!)).toEqual([]);
    for (const bad of [
      { ...p5!, m: 3 },
      { ...p5!, checksum: (p5!.checksum + 1) >>> 0 },
      { ...p5!, lengths: [10, 11, 13, 12] },
    ]) {
      expect(dec.onParity(0, bad)).toEqual([]);
    }
    expect(dec.counters.malformed).toBe(3);
    const rec = dec.onParity(0, p5!);
    expect(rec.map((r) => r.index)).toEqual([2, 3]);
    expect(rec[0]!.packet).toEqual(packets[2]);
    expect(rec[1]!.packet).toEqual(packets[3]);
  });

  it('a garbage shard with a consistent header is caught by the checksum, nothing delivered', () => {
    const packets = Array.from({ length: 8 }, (_, i) => new Uint8Array(1400).fill(i * 3 + 1));
    const frames = encodeStream(codec, 8, 2, packets);
    const data = frames.filter((f): f is DataFrame => f.kind === 'data');
    const parity = frames.filter((f): f is ParityFrameCopy => f.kind === 'parity');
    const dec = new FecDecoder(codec);
    for (const d of data.slice(1)) dec.onData(0, d.groupId, d.index, undefined, d.packet);
    const garbage = { ...parity[0]!, shard: parity[0]!.shard.map((b, i) => (i === 700 ? b ^ 0x40 : b)) };
    expect(dec.onParity(0, garbage)).toEqual([]);
    expect(dec.counters.malformed).toBe(1);
    expect(dec.counters.unrecoverable).toBe(1);
    // The group is given up: the genuine parity can no longer resurrect it.
    expect(dec.onParity(0, parity[1]!)).toEqual([]);
    expect(dec.counters.parityLate).toBe(1);
  });

  it('a data packet that contradicts the announced lengths gives the group up', () => {
    const packets = Array.from({ length: 3 }, (_, i) => new Uint8Array(20).fill(i + 1));
    const frames = encodeStream(codec, 3, 1, packets);
    const p = frames.find((f): f is ParityFrameCopy => f.kind === 'parity')!;
    const dec = new FecDecoder(codec);
    dec.onParity(0, p);
    expect(dec.onData(0, p.groupId, 0, undefined, new Uint8Array(19))).toEqual([]);
    expect(dec.counters.malformed).toBe(1);
    expect(dec.onData(0, p.groupId, 1, undefined, packets[1]!)).toEqual([]);
    expect(dec.counters.recovered).toBe(0);
  });

  it('data frames with fields out of range are counted, not thrown', () => {
    const dec = new FecDecoder(codec);
    const bad: Array<[number, number, number | undefined, Uint8Array]> = [
      [0, 0, undefined, new Uint8Array(1)],
      [-1, 0, undefined, new Uint8Array(1)],
      [1.5, 0, undefined, new Uint8Array(1)],
      [1, 32, undefined, new Uint8Array(1)],
      [1, -1, undefined, new Uint8Array(1)],
      [1, 0, undefined, new Uint8Array(65536)],
    ];
    for (const [g, i, kHint, pkt] of bad) expect(dec.onData(0, g, i, kHint, pkt)).toEqual([]);
    expect(dec.counters.malformed).toBe(bad.length);
    expect(dec.liveGroups).toBe(0);
  });

  it('a bad k hint is counted, and its (group, index) is still never rebuilt twice', () => {
    const packets = Array.from({ length: 4 }, (_, i) => new Uint8Array(8).fill(i + 1));
    const frames = encodeStream(codec, 4, 1, packets);
    const data = frames.filter((f): f is DataFrame => f.kind === 'data');
    const p = frames.find((f): f is ParityFrameCopy => f.kind === 'parity')!;
    for (const hint of [3, 0, Number.NaN, 40]) {
      const dec = new FecDecoder(codec);
      dec.onData(0, data[0]!.groupId, 3, hint, data[3]!.packet);
      expect(dec.counters.malformed, `hint ${hint}`).toBe(1);
      expect(dec.isDelivered(data[0]!.groupId, 3)).toBe(true);
      for (const d of data.slice(1, 3)) dec.onData(0, d.groupId, d.index, undefined, d.packet);
      expect(dec.onParity(0, p)).toEqual([]);
    }
  });
});
