/**
 * The send-path stage that keeps inner packets within a path's usable MTU (issue 13: never
 * fragment the underlay). One call per inner packet after the path is chosen, before FEC and
 * sealing:
 *
 *   packet <= usable MTU             -> 'fits' (the common case: one comparison, no allocation)
 *   IPv4 without DF                  -> 'fragments': send each fragment as an inner packet
 *   IPv4 with DF, or any IPv6        -> 'tooBig': drop it; write `icmp` (when present: rate
 *                                       limited, and never about an ICMP error) into the TUN
 *   anything else (malformed)        -> 'drop'
 *
 * Plus clampMss, for SYN and SYN-ACK in both directions. Counters are for the snapshot.
 */
import type { InnerInfo } from '../inner.ts';
import { buildTooBig, ipv4DontFragment, TooBigRateLimiter } from './icmp-too-big.ts';
import { fragmentIpv4 } from './fragment.ts';
import { clampTcpMss, mssForMtu } from './mss.ts';

export type InnerFit =
  | { readonly kind: 'fits' }
  | { readonly kind: 'fragments'; readonly fragments: Uint8Array[] }
  | { readonly kind: 'tooBig'; readonly icmp: Uint8Array | undefined }
  | { readonly kind: 'drop' };

const FITS: InnerFit = { kind: 'fits' };
const DROP: InnerFit = { kind: 'drop' };

export interface InnerMtuCounters {
  /** SYN / SYN-ACK whose MSS was lowered. */
  mssClamped: number;
  /** Packets cut into inner fragments, and the fragments that made. */
  fragmented: number;
  fragmentsOut: number;
  /** Packets dropped as too big (DF / IPv6), and the ICMP errors written back for them. */
  tooBig: number;
  tooBigIcmpSent: number;
  /** Too-big packets that got no ICMP because of the rate limit. */
  tooBigIcmpRateLimited: number;
  /** Too big and neither fragmentable nor answerable (malformed). */
  dropped: number;
}

export class InnerMtuStage {
  readonly counters: InnerMtuCounters = {
    mssClamped: 0,
    fragmented: 0,
    fragmentsOut: 0,
    tooBig: 0,
    tooBigIcmpSent: 0,
    tooBigIcmpRateLimited: 0,
    dropped: 0,
  };

  constructor(private readonly limiter = new TooBigRateLimiter()) {}

  /** Lowers a SYN's MSS to what `usableMtuBytes` carries; true when the packet changed. */
  clampMss(packet: Uint8Array, info: InnerInfo, usableMtuBytes: number): boolean {
    if (info.protocol !== 6) return false;
    const changed = clampTcpMss(packet, info, mssForMtu(usableMtuBytes, info.ipVersion));
    if (changed) this.counters.mssClamped++;
    return changed;
  }

  /** What to do with an inner packet on a path whose usable inner MTU is `usableMtuBytes`. */
  fit(nowMs: number, packet: Uint8Array, usableMtuBytes: number): InnerFit {
    if (packet.length <= usableMtuBytes) return FITS;
    const version = packet.length > 0 ? packet[0]! >> 4 : 0;
    if (version === 4 && !ipv4DontFragment(packet)) {
      const fragments = fragmentIpv4(packet, usableMtuBytes);
      if (fragments !== undefined) {
        this.counters.fragmented++;
        this.counters.fragmentsOut += fragments.length;
        return { kind: 'fragments', fragments };
      }
      this.counters.dropped++;
      return DROP;
    }
    if (version !== 4 && version !== 6) {
      this.counters.dropped++;
      return DROP;
    }
    this.counters.tooBig++;
    const icmp = buildTooBig(packet, usableMtuBytes);
    if (icmp === undefined) return { kind: 'tooBig', icmp: undefined };
    if (!this.limiter.allow(nowMs)) {
      this.counters.tooBigIcmpRateLimited++;
      return { kind: 'tooBig', icmp: undefined };
    }
    this.counters.tooBigIcmpSent++;
    return { kind: 'tooBig', icmp };
  }
}
