import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ShardPool,
  bufferCapacityFor,
  bytesChecksum,
  checksumPaddedBytes,
  newShardBuffer,
  shardBuffersChecksum,
} from '../../../src/core/fec/buffers.ts';

describe('group checksum', () => {
  it('the word-view fast path equals the byte-wise spec for any shards (property)', () => {
    fc.assert(
      fc.property(
        fc.nat(0xffffffff),
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }),
        (groupId, packets) => {
          const k = packets.length;
          const shardBytes = Math.max(1, ...packets.map((p) => p.length));
          const bufs = packets.map((p) => {
            const b = newShardBuffer(shardBytes);
            b.bytes.fill(0xcc); // recycled garbage past the packet must not matter once padded
            b.bytes.set(p);
            b.bytes.fill(0, p.length, checksumPaddedBytes(shardBytes));
            return b;
          });
          expect(shardBuffersChecksum(groupId, packets.map((p) => p.length), bufs, k, shardBytes)).toBe(bytesChecksum(groupId, packets, k, shardBytes));
        },
      ),
    );
  });

  it('changes with the group id, k, size, a length, and any one byte', () => {
    const a = [Uint8Array.of(1, 2, 3, 4, 5), Uint8Array.of(9)];
    const base = bytesChecksum(7, a, 2, 5);
    expect(bytesChecksum(8, a, 2, 5)).not.toBe(base);
    expect(bytesChecksum(7, a, 1, 5)).not.toBe(base);
    expect(bytesChecksum(7, a, 2, 6)).not.toBe(base);
    // Same padded shards, different lengths: [9] vs [9, 0].
    expect(bytesChecksum(7, [a[0]!, Uint8Array.of(9, 0)], 2, 5)).not.toBe(base);
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < a[s]!.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const b = a.map((x) => x.slice());
          b[s]![i] ^= bit;
          expect(bytesChecksum(7, b, 2, 5)).not.toBe(base);
        }
      }
    }
  });
});

describe('ShardPool', () => {
  it('sizes buffers in power-of-two classes from 2 KiB to 64 KiB', () => {
    expect(bufferCapacityFor(0)).toBe(2048);
    expect(bufferCapacityFor(1400)).toBe(2048);
    expect(bufferCapacityFor(2049)).toBe(4096);
    expect(bufferCapacityFor(65535)).toBe(65536);
  });

  it('reuses released buffers and never exceeds its budget', () => {
    const pool = new ShardPool(256 * 1024);
    const a = pool.acquire(1400)!;
    pool.release(a);
    expect(pool.acquire(100)).toBe(a);
    const held = [];
    for (;;) {
      const b = pool.acquire(1400);
      if (b === undefined) break;
      held.push(b);
    }
    expect(pool.bytesAllocated).toBeLessThanOrEqual(256 * 1024);
    expect(held.length).toBe(127);
    // Idle small buffers are forgotten to make room for a large one.
    for (const b of held.splice(0, 40)) pool.release(b);
    expect(pool.acquire(65535)).toBeDefined();
    expect(pool.bytesAllocated).toBeLessThanOrEqual(256 * 1024);
  });

  it('refuses a budget that cannot hold one largest shard', () => {
    expect(() => new ShardPool(1000)).toThrow(RangeError);
  });
});
