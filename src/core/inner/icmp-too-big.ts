/**
 * "Your packet is too big" back into the TUN, so the hosts' own path MTU discovery works through
 * the tunnel: ICMP Destination Unreachable / Fragmentation Needed (IPv4, type 3 code 4, RFC 1191:
 * the next-hop MTU in the second word) and ICMPv6 Packet Too Big (type 2, RFC 4443 3.2).
 *
 * Stage: send path, after parseInner and the path choice: an inner packet longer than the chosen
 * path's usable inner MTU (usableInnerMtu in src/core/wire/overhead.ts) that may not be
 * fragmented (IPv4 with DF; every IPv6 packet: routers never fragment IPv6) is dropped and, if the
 * rate limiter allows, answered with the packet built here, written to the TUN.
 *
 * Source address of the error: the offending packet's destination. The error is written into the
 * TUN, so the kernel sees it arrive on the TUN interface: a source that is one of the box's own
 * addresses (the tunnel's) would be dropped as a martian, and one that is not routed via the TUN
 * fails strict rp_filter; the original destination is routed via the TUN by construction (that is
 * how the packet got to us). Hosts match a Frag Needed/PTB to the connection by the quoted
 * header, not by who sent it, so this is what Linux's own ip tunnels' hosts accept.
 *
 * Limits (RFC 1812 4.3.2.3, RFC 4443 2.4): no error about an ICMP error, a non-first fragment, an
 * unspecified/multicast/broadcast/loopback source or (IPv4) a multicast/broadcast destination;
 * the error quotes as much of the original as fits 576 bytes (IPv4) or 1280 bytes (IPv6).
 */
import { allocBytes } from '../bytes.ts';
import { foldChecksum, ipv4HeaderChecksum, onesSum, readU16, writeU16 } from './checksum.ts';

/** RFC 1812 4.3.2.3: an ICMPv4 error is at most 576 bytes. */
export const ICMP4_ERROR_MAX_BYTES = 576;
/** RFC 4443 2.4(c): an ICMPv6 error is at most the IPv6 minimum MTU. */
export const ICMP6_ERROR_MAX_BYTES = 1280;
/** The IPv6 minimum link MTU (RFC 8200 5): a PTB never announces less. */
export const IPV6_MIN_MTU_BYTES = 1280;
/** The IPv4 minimum MTU (RFC 791): every router forwards 68 bytes without fragmenting. */
export const IPV4_MIN_MTU_BYTES = 68;
const ICMP_ERROR_HEADER_BYTES = 8;
const HOP_LIMIT = 64;

/** IPv4 DF bit set (the sender forbids fragmentation). */
export function ipv4DontFragment(packet: Uint8Array): boolean {
  return packet.length >= 20 && (packet[6]! & 0x40) !== 0;
}

/**
 * The ICMP error for an inner packet too big for a path whose usable inner MTU is `mtuBytes`:
 * IPv4 Frag Needed or IPv6 Packet Too Big by the packet's version. Undefined when the packet must
 * not get one (see the module doc) or is malformed: the caller just drops it.
 */
export function buildTooBig(original: Uint8Array, mtuBytes: number): Uint8Array | undefined {
  if (original.length < 1) return undefined;
  const version = original[0]! >> 4;
  if (version === 4) return buildIpv4FragNeeded(original, mtuBytes);
  if (version === 6) return buildIpv6PacketTooBig(original, mtuBytes);
  return undefined;
}

function ipv4SourceIsUnicast(a: number): boolean {
  // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4 reserved and broadcast.
  return a !== 0 && a !== 127 && a < 224;
}

/** ICMPv4 types that are errors (RFC 1812 4.3.2.7: never answer an error with an error). */
function isIcmp4Error(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

export function buildIpv4FragNeeded(original: Uint8Array, nextHopMtuBytes: number): Uint8Array | undefined {
  if (original.length < 20 || original[0]! >> 4 !== 4) return undefined;
  const ihl = (original[0]! & 0x0f) * 4;
  if (ihl < 20 || original.length < ihl) return undefined;
  const fragOffset = readU16(original, 6) & 0x1fff;
  if (fragOffset !== 0) return undefined;
  if (!ipv4SourceIsUnicast(original[12]!)) return undefined;
  const dst0 = original[16]!;
  if (dst0 >= 224) return undefined; // multicast, reserved, broadcast
  if (original[9] === 1 && original.length >= ihl + 1 && isIcmp4Error(original[ihl]!)) return undefined;
  const quoted = Math.min(original.length, ICMP4_ERROR_MAX_BYTES - 20 - ICMP_ERROR_HEADER_BYTES);
  const total = 20 + ICMP_ERROR_HEADER_BYTES + quoted;
  const out = allocBytes(total);
  out[0] = 0x45;
  out[1] = 0xc0; // precedence "internetwork control", like the kernel's ICMP errors
  writeU16(out, 2, total);
  // id 0, flags 0, offset 0 (bytes 4..7 are already zero)
  out[8] = HOP_LIMIT;
  out[9] = 1;
  out.set(original.subarray(16, 20), 12); // from the original destination (module doc)
  out.set(original.subarray(12, 16), 16); // to the original source
  writeU16(out, 10, ipv4HeaderChecksum(out, 0, 20));
  const icmp = 20;
  out[icmp] = 3;
  out[icmp + 1] = 4;
  writeU16(out, icmp + 6, Math.max(IPV4_MIN_MTU_BYTES, Math.min(0xffff, nextHopMtuBytes)));
  out.set(original.subarray(0, quoted), icmp + ICMP_ERROR_HEADER_BYTES);
  writeU16(out, icmp + 2, foldChecksum(onesSum(out, icmp, total)));
  return out;
}

function ipv6SourceIsUnicast(p: Uint8Array): boolean {
  if (p[8] === 0xff) return false; // multicast
  let zeroUpTo15 = true;
  for (let i = 8; i < 23; i++) if (p[i] !== 0) zeroUpTo15 = false;
  if (zeroUpTo15 && (p[23] === 0 || p[23] === 1)) return false; // :: and ::1
  return true;
}

export function buildIpv6PacketTooBig(original: Uint8Array, mtuBytes: number): Uint8Array | undefined {
  if (original.length < 40 || original[0]! >> 4 !== 6) return undefined;
  if (!ipv6SourceIsUnicast(original)) return undefined;
  // An ICMPv6 error (type < 128) right after the fixed header: never answered with an error.
  // (Behind extension headers it is not recognised; such packets are rare enough.)
  if (original[6] === 58 && original.length >= 41 && original[40]! < 128) return undefined;
  const quoted = Math.min(original.length, ICMP6_ERROR_MAX_BYTES - 40 - ICMP_ERROR_HEADER_BYTES);
  const icmpBytes = ICMP_ERROR_HEADER_BYTES + quoted;
  const total = 40 + icmpBytes;
  const out = allocBytes(total);
  out[0] = 0x60;
  writeU16(out, 4, icmpBytes);
  out[6] = 58;
  out[7] = HOP_LIMIT;
  out.set(original.subarray(24, 40), 8); // from the original destination (module doc)
  out.set(original.subarray(8, 24), 24); // to the original source
  const icmp = 40;
  out[icmp] = 2;
  out[icmp + 1] = 0;
  const mtu = Math.max(IPV6_MIN_MTU_BYTES, Math.min(0xffffffff, Math.floor(mtuBytes)));
  out[icmp + 4] = (mtu >>> 24) & 0xff;
  out[icmp + 5] = (mtu >>> 16) & 0xff;
  out[icmp + 6] = (mtu >>> 8) & 0xff;
  out[icmp + 7] = mtu & 0xff;
  out.set(original.subarray(0, quoted), icmp + ICMP_ERROR_HEADER_BYTES);
  writeU16(out, icmp + 2, icmp6Checksum(out, icmp, total));
  return out;
}

/** ICMPv6 checksum over the pseudo-header (RFC 8200 8.1) and the message [start, end). */
export function icmp6Checksum(packet: Uint8Array, start: number, end: number): number {
  const length = end - start;
  let sum = onesSum(packet, 8, 40); // source and destination
  sum += Math.floor(length / 65536) + (length & 0xffff) + 58;
  const c0 = packet[start + 2]!;
  const c1 = packet[start + 3]!;
  packet[start + 2] = 0;
  packet[start + 3] = 0;
  sum = onesSum(packet, start, end, sum);
  packet[start + 2] = c0;
  packet[start + 3] = c1;
  return foldChecksum(sum);
}

/** Default rate of too-big errors per edge: enough for every host's first packet of a burst. */
export const TOO_BIG_RATE_PER_SEC = 100;
export const TOO_BIG_BURST = 20;

/**
 * Token bucket for the errors (RFC 4443 2.4(f) requires one for ICMPv6; Linux does the same for
 * ICMPv4). Time is an argument; `allow` takes a token when there is one.
 */
export class TooBigRateLimiter {
  private tokens: number;
  private lastMs: number | undefined;

  constructor(
    private readonly ratePerSec = TOO_BIG_RATE_PER_SEC,
    private readonly burst = TOO_BIG_BURST,
  ) {
    this.tokens = burst;
  }

  allow(nowMs: number): boolean {
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerSec) / 1000);
    }
    if (this.lastMs === undefined || nowMs > this.lastMs) this.lastMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
