/**
 * Reading what steering and routing need from an inner IP packet, without copying it: version,
 * DSCP, protocol, the 5-tuple as a 32-bit flow hash, and where the source and destination
 * addresses sit (routing/prefix-table.ts looks them up in place: `table.lookup(packet,
 * info.ipVersion, info.dstAt)`, no second parse). Malformed packets return undefined (a counted
 * drop at the caller), never throw; a returned InnerInfo guarantees both addresses are inside
 * the packet.
 */

/** Where the addresses sit in an inner IP header (bytes from the start of the packet). */
export const IPV4_SRC_AT = 12;
export const IPV4_DST_AT = 16;
export const IPV6_SRC_AT = 8;
export const IPV6_DST_AT = 24;

export interface InnerInfo {
  /** 4 or 6. */
  ipVersion: number;
  /** Differentiated services code point (6 bits). */
  dscp: number;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 ...). */
  protocol: number;
  /** FNV-1a hash of (src, dst, protocol, src port, dst port): the flow's identity. */
  flowHash: number;
  /** Offset of the TCP/UDP/SCTP ports in the packet, or -1 when they are not part of the identity. */
  portsAt: number;
  /** Offset of the source address (4 bytes for IPv4 at 12, 16 for IPv6 at 8). */
  srcAt: number;
  /** Offset of the destination address (IPv4 at 16, IPv6 at 24). */
  dstAt: number;
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
    out.srcAt = IPV4_SRC_AT;
    out.dstAt = IPV4_DST_AT;
  } else if (version === 6) {
    if (packet.length < 40) return undefined;
    out.dscp = (((packet[0]! & 0x0f) << 4) | (packet[1]! >> 4)) >> 2;
    proto = packet[6]!;
    h = fnv(h, packet, 8, 40);
    l4 = 40; // extension headers are not walked: such flows hash by addresses only
    out.srcAt = IPV6_SRC_AT;
    out.dstAt = IPV6_DST_AT;
  } else {
    return undefined;
  }
  h = Math.imul(h ^ proto, FNV_PRIME);
  out.portsAt = -1;
  if (l4 >= 0 && (proto === 6 || proto === 17 || proto === 132) && packet.length >= l4 + 4) {
    h = fnv(h, packet, l4, l4 + 4);
    out.portsAt = l4;
  }
  out.ipVersion = version;
  out.protocol = proto;
  out.flowHash = h >>> 0;
  return out;
}

export function newInnerInfo(): InnerInfo {
  return { ipVersion: 0, dscp: 0, protocol: 0, flowHash: 0, portsAt: -1, srcAt: -1, dstAt: -1 };
}

/**
 * The flow's identity as bytes, for the operator's top-flows list: [version, protocol, src, dst,
 * src port, dst port] (ports 0 when not part of the identity). Copied once per new flow.
 */
export function flowTuple(packet: Uint8Array, info: InnerInfo): Uint8Array {
  const addrBytes = info.ipVersion === 4 ? 8 : 32;
  const out = new Uint8Array(2 + addrBytes + 4);
  out[0] = info.ipVersion;
  out[1] = info.protocol;
  out.set(packet.subarray(info.ipVersion === 4 ? 12 : 8, info.ipVersion === 4 ? 20 : 40), 2);
  if (info.portsAt >= 0) out.set(packet.subarray(info.portsAt, info.portsAt + 4), 2 + addrBytes);
  return out;
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmp6', 132: 'sctp' };

/** "10.1.0.5:5060 > 10.2.0.9:5060 udp" (IPv6: "[2001:db8::1]:443 > [...]:51000 tcp"). */
export function formatFlowTuple(t: Uint8Array): string {
  const v4 = t[0] === 4;
  const addrBytes = v4 ? 4 : 16;
  const addr = (at: number): string => {
    if (v4) return `${t[at]}.${t[at + 1]}.${t[at + 2]}.${t[at + 3]}`;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((t[at + i]! << 8) | t[at + i + 1]!).toString(16));
    return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]`;
  };
  const portsAt = 2 + 2 * addrBytes;
  const sport = (t[portsAt]! << 8) | t[portsAt + 1]!;
  const dport = (t[portsAt + 2]! << 8) | t[portsAt + 3]!;
  const hasPorts = sport !== 0 || dport !== 0;
  const proto = PROTOCOL_NAMES[t[1]!] ?? `proto ${t[1]}`;
  const src = addr(2) + (hasPorts ? `:${sport}` : '');
  const dst = addr(2 + addrBytes) + (hasPorts ? `:${dport}` : '');
  return `${src} > ${dst} ${proto}`;
}
