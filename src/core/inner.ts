/**
 * Reading what steering needs from an inner IP packet, without copying it: version, DSCP,
 * protocol and the 5-tuple as a 32-bit flow hash. Malformed packets return undefined (a counted
 * drop at the caller), never throw.
 */

export interface InnerInfo {
  /** 4 or 6. */
  ipVersion: number;
  /** Differentiated services code point (6 bits). */
  dscp: number;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 ...). */
  protocol: number;
  /** FNV-1a hash of (src, dst, protocol, src port, dst port): the flow's identity. */
  flowHash: number;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv(h: number, bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}

/** Parses the inner packet header. `out` is reused by the caller on the hot path. */
export function parseInner(packet: Uint8Array, out: InnerInfo): InnerInfo | undefined {
  if (packet.length < 1) return undefined;
  const version = packet[0]! >> 4;
  let h = FNV_OFFSET;
  let proto: number;
  let l4: number;
  if (version === 4) {
    if (packet.length < 20) return undefined;
    const ihl = (packet[0]! & 0x0f) * 4;
    if (ihl < 20 || packet.length < ihl) return undefined;
    out.dscp = packet[1]! >> 2;
    proto = packet[9]!;
    h = fnv(h, packet, 12, 20);
    // Fragments after the first carry no ports; hash them by addresses + protocol only so that
    // every fragment of a datagram follows the same path.
    const fragOffset = ((packet[6]! & 0x1f) << 8) | packet[7]!;
    l4 = fragOffset === 0 ? ihl : -1;
  } else if (version === 6) {
    if (packet.length < 40) return undefined;
    out.dscp = (((packet[0]! & 0x0f) << 4) | (packet[1]! >> 4)) >> 2;
    proto = packet[6]!;
    h = fnv(h, packet, 8, 40);
    l4 = 40; // extension headers are not walked: such flows hash by addresses only
  } else {
    return undefined;
  }
  h = Math.imul(h ^ proto, FNV_PRIME);
  if (l4 >= 0 && (proto === 6 || proto === 17 || proto === 132) && packet.length >= l4 + 4) {
    h = fnv(h, packet, l4, l4 + 4);
  }
  out.ipVersion = version;
  out.protocol = proto;
  out.flowHash = h >>> 0;
  return out;
}

export function newInnerInfo(): InnerInfo {
  return { ipVersion: 0, dscp: 0, protocol: 0, flowHash: 0 };
}
