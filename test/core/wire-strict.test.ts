/**
 * Issue 14 finding 6: the receive path's decoders (decodeEnvelopeStrict, decodeFrameStrict) cap
 * the datagram size at the link MTU and never fall back to protobufjs's generic decoder, yet take
 * every message Braid sends.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEnvelope,
  decodeEnvelopeStrict,
  decodeFrame,
  decodeFrameStrict,
  encodeDataDatagram,
  encodeEnvelope,
  encodeFrame,
  receiveCapBytes,
  type Frame,
} from '../../src/core/wire/codec.ts';
import { MAX_RECEIVE_DATAGRAM_BYTES } from '../../src/core/constants.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const link = fc.integer({ min: 0, max: 15 });
const report = fc.option(fc.record({ received: u32, highestSeq: u32, jitterUs: u32 }), { nil: null });
/** Every frame kind the edge sends, with field values in their legal ranges. */
const frames: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ link, pathSeq: u32, packet: fc.uint8Array({ minLength: 1, maxLength: 300 }), fecGroup: u32, fecIndex: fc.integer({ min: 0, max: 63 }), dupSeq: u32, fecK: fc.integer({ min: 0, max: 32 }), bondSeq: u32 }).map((data) => ({ kind: 'data' as const, data })),
  fc.record({ link, seq: u32, txUs: fc.maxSafeNat(), dscp: fc.integer({ min: 0, max: 63 }), report, epoch: u32 }).map((probe) => ({ kind: 'probe' as const, probe })),
  fc.record({ link, seq: u32, txUs: fc.maxSafeNat(), holdUs: u32, report }).map((probeReply) => ({ kind: 'probeReply' as const, probeReply })),
  fc.record({ link, pathSeq: u32, group: u32, index: fc.integer({ min: 0, max: 63 }), k: fc.integer({ min: 0, max: 32 }), m: fc.integer({ min: 0, max: 16 }), lengths: fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 32 }), shard: fc.uint8Array({ maxLength: 300 }), checksum: u32 }).map((fecParity) => ({ kind: 'fecParity' as const, fecParity })),
  fc.record({ link, linkName: fc.string({ unit: 'grapheme', maxLength: 16 }), site: fc.string({ unit: 'grapheme', maxLength: 16 }), tier: fc.integer({ min: 0, max: 2 }) }).map((hello) => ({ kind: 'control' as const, control: { hello } })),
  fc.record({ link, drained: fc.boolean() }).map((drain) => ({ kind: 'control' as const, control: { drain } })),
);

/** Frame.padding (field 15) appended, as wire/padding.ts does for path MTU probes. */
function padded(frame: Uint8Array, padBytes: number): Uint8Array {
  const out: number[] = [...frame, 0x7a];
  let v = padBytes;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v, ...new Array<number>(padBytes).fill(0));
  return new Uint8Array(out);
}

const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));

describe('strict receive decoders (issue 14, finding 6)', () => {
  it('take every frame Braid sends, padded or not, exactly as the generic decoder does', () => {
    fc.assert(
      fc.property(frames, fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }), (f, pad) => {
        const bytes = pad === undefined ? encodeFrame(f) : padded(encodeFrame(f), pad);
        const strict = decodeFrameStrict(bytes);
        const generic = decodeFrame(bytes);
        expect(strict.ok).toBe(true);
        expect(plain(strict)).toEqual(plain(generic));
        const env = encodeEnvelope({ version: 1, receiver: 7, counter: 2 ** 40, sealed: bytes });
        if (env.length <= MAX_RECEIVE_DATAGRAM_BYTES) expect(plain(decodeEnvelopeStrict(env))).toEqual(plain(decodeEnvelope(env)));
      }),
      { numRuns: 5_000 },
    );
    const handshake = encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: new Uint8Array(148).fill(1) });
    expect(decodeEnvelopeStrict(handshake).ok).toBe(true);
    expect(decodeEnvelopeStrict(encodeDataDatagram(0x8a31_0c07, 1_234_567, 1, 99, new Uint8Array(1400))).ok).toBe(true);
  });

  it('reject what misses the fast decoder instead of handing it to protobufjs', () => {
    // A Data frame with an extra unknown field: protobufjs skips the field, the strict path refuses.
    const data = encodeFrame({ kind: 'data', data: { link: 1, pathSeq: 2, packet: new Uint8Array([0x45, 0, 0, 20]), fecGroup: 0, fecIndex: 0, dupSeq: 0 } });
    const withUnknown = new Uint8Array([...data, 0x48, 0x01]); // field 9 varint, outside the Data body
    expect(decodeFrame(withUnknown).ok).toBe(true);
    expect(decodeFrameStrict(withUnknown)).toEqual({ ok: false, reason: 'malformed' });
    const env = encodeEnvelope({ version: 1, receiver: 7, counter: 1, sealed: data });
    const envUnknown = new Uint8Array([...env, 0x30, 0x05]); // field 6 varint
    expect(decodeEnvelope(envUnknown).ok).toBe(true);
    expect(decodeEnvelopeStrict(envUnknown)).toEqual({ ok: false, reason: 'malformed' });
    // Never an exception, and never ok where the generic decoder disagrees.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        const s = decodeFrameStrict(b);
        if (s.ok) expect(plain(s)).toEqual(plain(decodeFrame(b)));
        const e = decodeEnvelopeStrict(b);
        if (e.ok) expect(plain(e)).toEqual(plain(decodeEnvelope(b)));
      }),
      { numRuns: 20_000 },
    );
  });

  it('drop a datagram longer than the link MTU allows before parsing it', () => {
    // The crafted 64 KB envelope of the issue: one huge sealed field.
    const huge = encodeEnvelope({ version: 1, receiver: 7, counter: 1, sealed: new Uint8Array(65_000) });
    expect(decodeEnvelope(huge).ok).toBe(true); // the generic path still takes it (tools, tests)
    expect(decodeEnvelopeStrict(huge)).toEqual({ ok: false, reason: 'tooLarge' });
    expect(receiveCapBytes()).toBe(MAX_RECEIVE_DATAGRAM_BYTES);
    expect(MAX_RECEIVE_DATAGRAM_BYTES).toBe(1536);
    // A jumbo link (MTU 9000) takes its 8972-byte datagrams, and no more than its slack above.
    const jumbo = encodeEnvelope({ version: 1, receiver: 7, counter: 1, sealed: new Uint8Array(8950) });
    expect(jumbo.length).toBeLessThanOrEqual(8972);
    expect(decodeEnvelopeStrict(jumbo).ok).toBe(false);
    expect(decodeEnvelopeStrict(jumbo, receiveCapBytes(9000)).ok).toBe(true);
    expect(decodeEnvelopeStrict(huge, receiveCapBytes(9000))).toEqual({ ok: false, reason: 'tooLarge' });
  });

  it("take a hello's link tier (issue 16); a primary link's hello is the bytes it was before the field", () => {
    const hello = { link: 2, linkName: 'lte', site: 'b2' };
    const backup = decodeFrameStrict(encodeFrame({ kind: 'control', control: { hello: { ...hello, tier: 2 } } }));
    expect(backup.ok && backup.value.kind === 'control' ? backup.value.control.hello?.tier : undefined).toBe(2);
    const old = encodeFrame({ kind: 'control', control: { hello } });
    expect([...encodeFrame({ kind: 'control', control: { hello: { ...hello, tier: 0 } } })]).toEqual([...old]);
    const plainHello = decodeFrameStrict(old);
    expect(plainHello.ok && plainHello.value.kind === 'control' ? plainHello.value.control.hello?.tier : undefined).toBe(0);
  });
});
