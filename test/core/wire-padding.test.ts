import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeEnvelope, decodeFrame, encodeEnvelope, encodeFrame } from '../../src/core/wire/codec.ts';
import { padFrame } from '../../src/core/wire/padding.ts';
import { AEAD_TAG_BYTES } from '../../src/core/wire/overhead.ts';
import { PmtuDiscovery } from '../../src/core/pathmon/pmtu.ts';

const probe = (seq: number): Uint8Array =>
  encodeFrame({ kind: 'probe', probe: { link: 3, seq, txUs: 123456789, dscp: 46, report: { received: 10, highestSeq: 12, jitterUs: 300 }, epoch: 7 } });

describe('padded probes', () => {
  it('makes the sealed datagram exactly the probe size and still decodes as the probe', () => {
    const pmtu = new PmtuDiscovery({ family: 4, maxMtuBytes: 1500 }, 0);
    const target = pmtu.probeDatagramBytes(1500);
    expect(target).toBe(1472);
    const frame = probe(99);
    const padded = padFrame(frame, target, 0xdeadbeef, 5_000_000)!;
    const env = encodeEnvelope({ version: 1, receiver: 0xdeadbeef, counter: 5_000_000, sealed: new Uint8Array(padded.length + AEAD_TAG_BYTES) });
    expect(env.length).toBe(1472);
    expect(decodeEnvelope(env).ok).toBe(true);
    const decoded = decodeFrame(padded);
    expect(decoded.ok && decoded.value.kind === 'probe' && decoded.value.probe.seq).toBe(99);
  });

  it('hits every target from the frame size up to jumbo sizes, at most one byte over (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9000 }), fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 2 ** 52 }), fc.nat({ max: 100_000 }), (target, receiver, counter, seq) => {
        const frame = probe(seq);
        const padded = padFrame(frame, target, receiver, counter);
        const bare = encodeEnvelope({ version: 1, receiver, counter, sealed: new Uint8Array(frame.length + AEAD_TAG_BYTES) }).length;
        if (target < bare) {
          expect(padded).toBeUndefined();
          return;
        }
        const env = encodeEnvelope({ version: 1, receiver, counter, sealed: new Uint8Array(padded!.length + AEAD_TAG_BYTES) });
        expect(env.length - target).toBeGreaterThanOrEqual(0);
        expect(env.length - target).toBeLessThanOrEqual(1);
        const d = decodeFrame(padded!);
        expect(d.ok && d.value.kind).toBe('probe');
      }),
      { numRuns: 300 },
    );
  });
});
