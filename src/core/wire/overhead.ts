/**
 * What an overlay datagram adds to an inner packet, from the codec's own size functions (so this
 * follows the wire format when it changes), and the inner MTU a path can carry without the
 * underlay fragmenting.
 *
 * A data datagram is: outer IP (20 IPv4 / 40 IPv6) + UDP (8) + Envelope header (version 2,
 * receiver 5, counter 9, `sealed` tag + length 1 + 2) + Frame{Data} (tag + length 3, link 2,
 * path_seq up to 6, packet tag + length 3, FEC fields up to 10 or dup_seq up to 6, bond_seq 5 on
 * bonded classes) + the AEAD tag (16). The worst case is computed, not assumed: counters and sequence numbers are taken at their
 * largest encodings, since a path's MTU must hold every packet, not the average one.
 *
 * FEC parity datagrams are bigger than the data they protect (a shard is as long as the group's
 * longest packet, plus the group's lengths list): usableInnerMtu with `fecK` keeps them within
 * the path too.
 */
import { dataFrameSize, envelopeHeaderSize, parityFrameSize } from './codec.ts';
import { MAX_LINKS } from '../constants.ts';
import { FEC_MAX_K, FEC_MAX_M } from '../fec/limits.ts';

/** Poly1305 / GCM tag appended by the AEAD. */
export const AEAD_TAG_BYTES = 16;
export const UDP_HEADER_BYTES = 8;
export const IPV4_HEADER_BYTES = 20;
export const IPV6_HEADER_BYTES = 40;

export type IpFamily = 4 | 6;

/** Outer IP + UDP header bytes for a path over `family`. */
export function outerHeaderBytes(family: IpFamily): number {
  return (family === 6 ? IPV6_HEADER_BYTES : IPV4_HEADER_BYTES) + UDP_HEADER_BYTES;
}

const U32_MAX = 0xffffffff;
const COUNTER_MAX = 2 ** 52;

/**
 * Bytes a bonded class's data frame carries on top of an unbonded one (bond_seq, fixed32 with its
 * tag). Bonded flows fit their packets to the usable MTU less this (peer.ts), so the figures of
 * every other class stay as they were.
 */
export const BOND_SEQ_BYTES = 5;

/**
 * Worst-case bytes of envelope + sealed Frame{Data} around an inner packet of `innerBytes`
 * (outer IP/UDP not included): the sender's largest link index, path_seq and counter, and the
 * larger of the FEC fields (the proto never sets them together with dup_seq); with `bonded`, the
 * bond_seq too (it may come with the FEC fields: 64 bytes, the budget).
 */
export function dataOverheadBytes(innerBytes: number, bonded = false): number {
  const withFec = dataFrameSize(MAX_LINKS - 1, U32_MAX, innerBytes, U32_MAX, FEC_MAX_K + FEC_MAX_M - 1, 0, FEC_MAX_K, bonded ? U32_MAX : 0);
  const withDup = dataFrameSize(MAX_LINKS - 1, U32_MAX, innerBytes, 0, 0, U32_MAX, 0);
  const sealed = Math.max(withFec, withDup) + AEAD_TAG_BYTES;
  return envelopeHeaderSize(U32_MAX, COUNTER_MAX, sealed) + sealed - innerBytes;
}

/**
 * Worst-case bytes of envelope + sealed Frame{FecParity} around a shard of `shardBytes` for a
 * group of `k` data packets (lengths list at 2-byte varints: packets up to 16 KiB).
 */
export function parityOverheadBytes(shardBytes: number, k: number): number {
  const frame = parityFrameSize(MAX_LINKS - 1, U32_MAX, {
    groupId: U32_MAX,
    index: FEC_MAX_K + FEC_MAX_M - 1,
    k,
    m: FEC_MAX_M,
    lengths: new Array<number>(k).fill(Math.max(shardBytes, 128)),
    checksum: U32_MAX,
    shard: new Uint8Array(shardBytes),
  });
  const sealed = frame + AEAD_TAG_BYTES;
  return envelopeHeaderSize(U32_MAX, COUNTER_MAX, sealed) + sealed - shardBytes;
}

/**
 * Overhead of a typical data packet on an IPv4 path (outer headers included), the figure the
 * docs quote: 28 + envelope + frame + tag for a 1400-byte packet with a mid-session counter.
 */
export function typicalDataOverheadBytes(family: IpFamily): number {
  const frame = dataFrameSize(1, 100_000, 1400);
  const sealed = frame + AEAD_TAG_BYTES;
  return outerHeaderBytes(family) + envelopeHeaderSize(0x12345678, 100_000_000, sealed) + sealed - 1400;
}

/**
 * The largest inner packet a path whose MTU is `pathMtuBytes` carries in one unfragmented
 * datagram, over `family` (the outer IP version). With `fecK` (the class's FEC group size), the
 * group's parity datagrams fit too. 0 when nothing fits.
 *
 * Overheads grow with the packet (varint lengths), so the figure is computed for a packet as big
 * as the path itself, an upper bound: the answer is safe, at worst a byte under the exact one.
 */
export function usableInnerMtu(pathMtuBytes: number, family: IpFamily, fecK = 0): number {
  const room = pathMtuBytes - outerHeaderBytes(family);
  if (room <= 0) return 0;
  let overhead = dataOverheadBytes(room);
  if (fecK > 0) overhead = Math.max(overhead, parityOverheadBytes(room, Math.min(fecK, FEC_MAX_K)));
  return Math.max(0, room - overhead);
}
