/**
 * FecEncoder.abandon: at a session change (peer-tx.ts onSessionChange) the open group ends without
 * parity and unpolled parity is dropped, so nothing protecting data sealed for the old session goes
 * out on the new one (a restarted peer rebuilt a packet its previous life had delivered from a
 * k = 1 group's parity: VOPR long seed 99000318).
 */
import { describe, expect, it } from 'vitest';
import { FecEncoder } from '../../../src/core/fec/encoder.ts';
import { createGf256Codec } from '../../../src/core/fec/gf256.ts';

const packet = (b: number): Uint8Array => new Uint8Array(200).fill(b);

function drain(enc: FecEncoder): number[] {
  const groups: number[] = [];
  for (let s = enc.pollParity(); s !== undefined; s = enc.pollParity()) groups.push(s.groupId);
  return groups;
}

describe('FecEncoder.abandon', () => {
  it('the open group ends without parity, and the next packet opens a new group', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 4, m: 2, flushMs: 20 });
    const first = enc.push(0, packet(1), 0)!.groupId;
    enc.push(1, packet(2), 0);
    enc.abandon();
    // Its flush deadline passes: nothing comes of the abandoned group.
    enc.onTimeout(100);
    expect(drain(enc)).toEqual([]);
    expect(enc.nextDeadlineMs()).toBeUndefined();
    const next = enc.push(200, packet(3), 0)!;
    expect(next.groupId).not.toBe(first);
    expect(next.index).toBe(0);
    enc.onTimeout(300);
    expect(drain(enc)).toEqual([next.groupId, next.groupId]);
    expect(enc.counters).toMatchObject({ abandonedGroups: 1, abandonedShards: 0, groups: 1 });
  });

  it('drops parity closed but not yet polled', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 2, m: 2, flushMs: 20 });
    enc.push(0, packet(1), 0);
    enc.push(1, packet(2), 0); // k reached: closed, 2 shards queued
    enc.abandon();
    expect(drain(enc)).toEqual([]);
    expect(enc.counters).toMatchObject({ abandonedGroups: 0, abandonedShards: 2 });
  });

  it('with nothing open or queued it changes nothing', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 2, m: 1, flushMs: 20 });
    enc.abandon();
    const s = enc.push(0, packet(1), 0)!;
    expect(s.index).toBe(0);
    enc.push(1, packet(2), 0);
    expect(drain(enc)).toEqual([s.groupId]);
    expect(enc.counters).toMatchObject({ abandonedGroups: 0, abandonedShards: 0 });
  });
});
