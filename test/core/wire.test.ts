import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  decodeEnvelope,
  decodeFrame,
  encodeDataDatagram,
  encodeEnvelope,
  encodeFrame,
  parityFrameSize,
  probeFrameSize,
  probeTxUsWritable,
  writeParityFrame,
  writeProbeFrame,
  type Frame,
} from '../../src/core/wire/codec.ts';
import { OVERHEAD_BUDGET_BYTES } from '../../src/core/constants.ts';
import { renderDescriptorModule } from '../../scripts/gen-proto.ts';
import protobuf from 'protobufjs';
import { overlayDescriptor } from '../../src/core/wire/descriptor.ts';

// The reference: protobufjs decoding the same descriptor (codec.ts set util.Long off, so 64-bit
// fields are numbers here too). decodeEnvelope/decodeFrame take a hand-written fast path for the
// per-packet messages and must agree with it on every input.
const refRoot = protobuf.Root.fromJSON(overlayDescriptor as unknown as protobuf.INamespace);
const RefEnvelope = refRoot.lookupType('braid.v1.Envelope');
const RefFrame = refRoot.lookupType('braid.v1.Frame');
const BODY_TYPES: Record<string, protobuf.Type> = {
  data: refRoot.lookupType('braid.v1.Data'),
  probe: refRoot.lookupType('braid.v1.Probe'),
  probeReply: refRoot.lookupType('braid.v1.ProbeReply'),
  control: refRoot.lookupType('braid.v1.Control'),
  fecParity: refRoot.lookupType('braid.v1.FecParity'),
};
const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true, longs: Number, bytes: Array };

/** Checks decodeEnvelope and decodeFrame against protobufjs on `bytes`. */
function agreesWithReference(bytes: Uint8Array): void {
  const env = decodeEnvelope(bytes);
  let refEnv: protobuf.Message | undefined;
  try {
    refEnv = RefEnvelope.decode(bytes);
  } catch {
    refEnv = undefined;
  }
  if (refEnv === undefined) expect(env).toEqual({ ok: false, reason: 'malformed' });
  else if (env.ok) expect(RefEnvelope.toObject(env.value as unknown as protobuf.Message, TO_OBJECT)).toEqual(RefEnvelope.toObject(refEnv, TO_OBJECT));
  const frame = decodeFrame(bytes);
  let refFrame: (protobuf.Message & { body?: string } & Record<string, unknown>) | undefined;
  try {
    refFrame = RefFrame.decode(bytes) as protobuf.Message & { body?: string } & Record<string, unknown>;
  } catch {
    refFrame = undefined;
  }
  if (refFrame === undefined) {
    expect(frame).toEqual({ ok: false, reason: 'malformed' });
    return;
  }
  if (!frame.ok) return; // field checks (badField, emptyFrame) run after either decoder
  expect(frame.value.kind).toBe(refFrame.body);
  const type = BODY_TYPES[frame.value.kind]!;
  const mine = (frame.value as unknown as Record<string, protobuf.Message>)[frame.value.kind]!;
  expect(type.toObject(mine, TO_OBJECT)).toEqual(type.toObject(refFrame[frame.value.kind] as protobuf.Message, TO_OBJECT));
}


describe('wire format v1', () => {
  it('descriptor.ts is generated from overlay.proto (run `npm run gen:proto` if this fails)', () => {
    const committed = readFileSync(new URL('../../src/core/wire/descriptor.ts', import.meta.url), 'utf8');
    expect(committed).toBe(renderDescriptorModule());
  });

  it('hand-written data encoder matches protobufjs byte for byte', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.maxSafeNat(),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ minLength: 1, maxLength: 2000 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (receiver, counter, link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq) => {
          const fast = encodeDataDatagram(receiver, counter, link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq);
          const frame = encodeFrame({ kind: 'data', data: { link, pathSeq, packet, fecGroup, fecIndex, dupSeq, fecK, bondSeq } });
          const slow = encodeEnvelope({ version: 1, receiver, counter, sealed: frame });
          expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
          const env = decodeEnvelope(fast);
          expect(env.ok).toBe(true);
          if (!env.ok) return;
          expect(env.value.receiver).toBe(receiver);
          expect(env.value.counter).toBe(counter);
          const f = decodeFrame(env.value.sealed);
          expect(f.ok && f.value.kind === 'data').toBe(true);
          if (f.ok && f.value.kind === 'data') {
            expect(f.value.data.pathSeq).toBe(pathSeq);
            expect(f.value.data.link).toBe(link);
            expect(Buffer.from(f.value.data.packet).equals(Buffer.from(packet))).toBe(true);
            expect(f.value.data.fecK ?? 0).toBe(fecK);
            expect(f.value.data.bondSeq ?? 0).toBe(bondSeq);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hand-written parity encoder matches protobufjs byte for byte', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 32 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 1500 }),
        (link, pathSeq, groupId, index, k, m, lengths, checksum, shard) => {
          const fields = { groupId, index, k, m, lengths, checksum, shard };
          const fast = new Uint8Array(parityFrameSize(link, pathSeq, fields));
          expect(writeParityFrame(fast, 0, link, pathSeq, fields)).toBe(fast.length);
          const slow = encodeFrame({ kind: 'fecParity', fecParity: { link, pathSeq, group: groupId, index, k, m, lengths, shard, checksum } });
          expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
          const back = decodeFrame(fast);
          expect(back.ok && back.value.kind === 'fecParity').toBe(true);
          if (back.ok && back.value.kind === 'fecParity') {
            expect(back.value.fecParity.group).toBe(groupId);
            expect(back.value.fecParity.checksum ?? 0).toBe(checksum);
            expect(Array.from(back.value.fecParity.lengths)).toEqual(lengths);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hand-written probe and probe reply encoders match protobufjs byte for byte', () => {
    // Any uint32 (and values the fields wrap: negatives, 2^32 and up), zeros often, txUs up to 2^53.
    const u32 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: -5, max: 2 ** 33 }));
    const txUs = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constant(2 ** 28), fc.constant(2 ** 35));
    let written = 0;
    fc.assert(
      fc.property(fc.boolean(), u32, u32, txUs, u32, u32, u32, u32, u32, u32, fc.tuple(u32, txUs, u32, fc.boolean()), (reply, link, seq, tx, fourth, epoch, received, highestSeq, jitterUs, pad, [echoSeq, echoTxUs, echoHoldUs, echoOk]) => {
        // A reply leaves the echo fields out whatever they hold (they are the Probe's only).
        const f = { link, seq, txUs: tx, dscp: reply ? pad : fourth, holdUs: reply ? fourth : pad, epoch, hasReport: true, received, highestSeq, jitterUs, echoSeq, echoTxUs, echoHoldUs, echoOk };
        expect(probeTxUsWritable(tx)).toBe(true);
        const size = probeFrameSize(f, reply);
        const fast = new Uint8Array(size + 3);
        expect(writeProbeFrame(fast, 3, f, reply)).toBe(size + 3);
        const report = { received, highestSeq, jitterUs };
        const slow = encodeFrame(
          reply
            ? { kind: 'probeReply', probeReply: { link, seq, txUs: tx, holdUs: fourth, report } }
            : { kind: 'probe', probe: { link, seq, txUs: tx, dscp: fourth, report, epoch, echoSeq, echoTxUs, echoHoldUs, echoOk } },
        );
        expect(Buffer.from(fast.subarray(3)).toString('hex')).toBe(Buffer.from(slow).toString('hex'));
        written++;
      }),
      { numRuns: 2000 },
    );
    expect(written).toBe(2000);
    for (const bad of [-1, 2 ** 53, 2 ** 64, 1.5, NaN, Infinity]) expect(probeTxUsWritable(bad)).toBe(false);
  });

  it('round-trips every frame kind', () => {
    const frames: Frame[] = [
      { kind: 'probe', probe: { link: 2, seq: 77, txUs: 123456789012, dscp: 46, report: { received: 10, highestSeq: 12 } } },
      { kind: 'probe', probe: { link: 1, seq: 78, txUs: 123456789999, dscp: 46, epoch: 7, echoSeq: 41, echoTxUs: 98765432101, echoHoldUs: 73_000 } },
      { kind: 'probe', probe: { link: 1, seq: 79, txUs: 123456790000, dscp: 0, echoOk: true } },
      { kind: 'probeReply', probeReply: { link: 1, seq: 77, txUs: 123456789012, holdUs: 15, report: { received: 3, highestSeq: 3 } } },
      { kind: 'control', control: { hello: { link: 0, linkName: 'mpls', site: 'branch-1' } } },
      { kind: 'control', control: { drain: { link: 3, drained: true } } },
      { kind: 'fecParity', fecParity: { link: 1, pathSeq: 9, group: 5, index: 8, k: 8, m: 2, lengths: [100, 1400, 3], shard: new Uint8Array([1, 2, 3]), checksum: 0xdeadbeef } },
    ];
    for (const f of frames) {
      const back = decodeFrame(encodeFrame(f));
      expect(back.ok).toBe(true);
      if (!back.ok) continue;
      expect(back.value.kind).toBe(f.kind);
      expect(plain(back.value)).toMatchObject(plain(f) as Record<string, unknown>);
    }
  });

  it('fast decoders agree with protobufjs on valid frames of every kind, random bytes and mutations', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const report = fc.option(fc.record({ received: u32, highestSeq: u32, jitterUs: u32 }), { nil: null });
    const frames: fc.Arbitrary<Frame> = fc.oneof(
      fc.record({ link: fc.integer({ min: 0, max: 15 }), pathSeq: u32, packet: fc.uint8Array({ minLength: 1, maxLength: 300 }), fecGroup: u32, fecIndex: fc.integer({ min: 0, max: 63 }), dupSeq: u32, fecK: fc.integer({ min: 0, max: 32 }), bondSeq: u32 }).map((data) => ({ kind: 'data' as const, data })),
      fc.record({ link: fc.integer({ min: 0, max: 15 }), seq: u32, txUs: fc.maxSafeNat(), dscp: fc.integer({ min: 0, max: 63 }), report, epoch: u32, echoSeq: u32, echoTxUs: fc.maxSafeNat(), echoHoldUs: u32, echoOk: fc.boolean() }).map((probe) => ({ kind: 'probe' as const, probe })),
      fc.record({ link: fc.integer({ min: 0, max: 15 }), seq: u32, txUs: fc.maxSafeNat(), holdUs: u32, report }).map((probeReply) => ({ kind: 'probeReply' as const, probeReply })),
      fc.record({ link: fc.integer({ min: 0, max: 15 }), pathSeq: u32, group: u32, index: fc.integer({ min: 0, max: 63 }), k: fc.integer({ min: 0, max: 32 }), m: fc.integer({ min: 0, max: 16 }), lengths: fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 32 }), shard: fc.uint8Array({ maxLength: 300 }), checksum: u32 }).map((fecParity) => ({ kind: 'fecParity' as const, fecParity })),
      // Control frames take the fast path too (issue 14: the receive path has no generic fallback).
      fc.record({ link: fc.integer({ min: 0, max: 15 }), linkName: fc.string({ unit: 'grapheme', maxLength: 16 }), site: fc.string({ unit: 'grapheme', maxLength: 16 }) }).map((hello) => ({ kind: 'control' as const, control: { hello } })),
      fc.record({ link: fc.integer({ min: 0, max: 15 }), drained: fc.boolean() }).map((drain) => ({ kind: 'control' as const, control: { drain } })),
    );
    fc.assert(
      fc.property(frames, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean(), (f, muts, cut, mutate) => {
        const valid = encodeFrame(f);
        agreesWithReference(valid);
        const env = encodeEnvelope({ version: 1, receiver: 7, counter: 12345, sealed: valid });
        agreesWithReference(env);
        if (!mutate) return;
        for (const base of [valid, env]) {
          const b = base.slice(0, 1 + (cut % base.length));
          for (const [i, v] of muts) b[i % b.length] = v;
          agreesWithReference(b);
        }
      }),
      { numRuns: 20_000 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => agreesWithReference(b)), { numRuns: 20_000 });
  });

  it('decoder is total: random bytes give a value or a reason, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const env = decodeEnvelope(bytes);
        if (env.ok) decodeFrame(env.value.sealed);
        decodeFrame(bytes);
      }),
      { numRuns: 20_000 },
    );
  });

  it('decoder is total on mutated valid datagrams', () => {
    const valid = encodeDataDatagram(0x01020304, 99, 1, 1234, new Uint8Array(200).fill(7));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(valid.length), (muts, cut) => {
        const b = valid.slice(0, cut);
        for (const [i, v] of muts) if (i < b.length) b[i] = v;
        const env = decodeEnvelope(b);
        if (env.ok) decodeFrame(env.value.sealed);
      }),
      { numRuns: 20_000 },
    );
  });

  it('rejects unknown versions and empty frames with a reason', () => {
    const bad = encodeEnvelope({ version: 9, receiver: 0, counter: 0, sealed: new Uint8Array() });
    expect(decodeEnvelope(bad)).toEqual({ ok: false, reason: 'badVersion' });
    expect(decodeFrame(new Uint8Array())).toEqual({ ok: false, reason: 'emptyFrame' });
    expect(decodeFrame(new Uint8Array([0x0a, 0x05, 0x08]))).toEqual({ ok: false, reason: 'malformed' });
  });

  it(`overhead per data packet stays within ${OVERHEAD_BUDGET_BYTES} bytes (AEAD tag included)`, () => {
    const AEAD_TAG_BYTES = 16;
    const packet = new Uint8Array(1420);
    // Worst cases: large session id, counter beyond 2^32, path seq beyond 2^28, and either every
    // FEC field (group id with a class tag, index 31, k 32) or a duplicated-class sequence. The
    // Edge never sets dup_seq and the FEC fields on one frame (duplicated flows are not
    // FEC-protected: the copy already is the redundancy), so the two are separate worst cases.
    const fec = encodeDataDatagram(0xffffffff, 2 ** 40, 15, 0xfffffff0, packet, 0xfffffff0, 31, 0, 32);
    const dup = encodeDataDatagram(0xffffffff, 2 ** 40, 15, 0xfffffff0, packet, 0, 0, 0xfffffff0, 0);
    // A bonded class's FEC-protected frame carries bond_seq too (issue 17): that is the worst case sent.
    const bonded = encodeDataDatagram(0xffffffff, 2 ** 40, 15, 0xfffffff0, packet, 0xfffffff0, 31, 0, 32, 0xfffffff0);
    const all = encodeDataDatagram(0xffffffff, 2 ** 40, 15, 0xfffffff0, packet, 0xfffffff0, 31, 0xfffffff0, 32, 0xfffffff0);
    const overhead = (dg: Uint8Array): number => dg.length - packet.length + AEAD_TAG_BYTES;
    console.log(
      `overlay overhead per 1420-byte data packet: FEC-protected ${overhead(fec)} bytes, duplicated ${overhead(dup)} bytes (envelope+frame ${fec.length - packet.length} / ${dup.length - packet.length}, AEAD tag ${AEAD_TAG_BYTES}); ` +
        `budget ${OVERHEAD_BUDGET_BYTES}; every field at once (never sent) would be ${overhead(all)}`,
    );
    expect(overhead(fec)).toBeLessThanOrEqual(OVERHEAD_BUDGET_BYTES);
    expect(overhead(dup)).toBeLessThanOrEqual(OVERHEAD_BUDGET_BYTES);
    expect(overhead(bonded)).toBeLessThanOrEqual(OVERHEAD_BUDGET_BYTES);
    expect(overhead(bonded)).toBe(overhead(fec) + 5);
  });
});

/** Deep copy with byte arrays as number arrays and no prototypes (protobufjs toJSON stringifies longs). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    // for-in: protobufjs keeps proto3 defaults (0, '') on the prototype.
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if (typeof x !== 'function' && !k.startsWith('$')) out[k] = plain(x);
    }
    return out;
  }
  return v;
}
