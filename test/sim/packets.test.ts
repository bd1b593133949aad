// makePacket's output is what receivers check identity by (readPacketTag, PacketFactory.matches):
// the payload fill must stay byte i = (i * 31 + seq) & 0xff for every seq, the IPv4 header
// checksum valid, whatever the fill is computed with.
import { describe, expect, it } from 'vitest';
import { makePacket, readPacketTag } from '../../sim/packets.ts';

function headerChecksumOk(p: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

describe('makePacket', () => {
  it('fills byte i of the payload with (i * 31 + seq) & 0xff, for any seq and size, with a valid header checksum', () => {
    for (const protocol of [6, 17] as const) {
      for (const sizeBytes of [52, 60, 200, 1400, 9000]) {
        for (const seq of [0, 1, 7, 255, 256, 257, 65_535, 70_001, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -1, -300]) {
          const p = makePacket({ src: [10, 1, 0, 2], dst: [10, 2, 0, 2], srcPort: 1, dstPort: 2, protocol, sizeBytes, flowId: 9, seq });
          expect(p.length).toBe(sizeBytes);
          const start = 20 + (protocol === 6 ? 20 : 8) + 12;
          for (let i = start; i < sizeBytes; i++) if (p[i] !== ((i * 31 + seq) & 0xff)) expect.fail(`seq ${seq} size ${sizeBytes}: byte ${i} is ${p[i]}`);
          expect(headerChecksumOk(p)).toBe(true);
          expect(readPacketTag(p)).toEqual({ flowId: 9, seq: seq >>> 0 });
        }
      }
    }
  });
});
