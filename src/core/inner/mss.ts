/**
 * TCP MSS clamping of inner SYN and SYN-ACK packets (what `iptables -j TCPMSS --clamp-mss-to-pmtu`
 * does on a router), so that TCP through the tunnel never sends segments bigger than the smallest
 * usable path can carry.
 *
 * Where: after parseInner (src/core/inner.ts, the one parser: it gives the protocol and the TCP
 * header's offset in `portsAt`), in both directions. The MSS a host announces limits what the
 * OTHER side sends, so the SYN-ACK that arrives from the peer (receive path, before the TUN
 * write) is the one that keeps our hosts' segments within our send paths' MTU; the SYN our hosts
 * send (send path, before sealing) is clamped too, for a peer that does not clamp.
 *
 * The packet is rewritten in place; the TCP checksum is updated incrementally (RFC 1624), so the
 * payload is not read. Only an existing MSS option is lowered: a SYN without one means 536 (IPv4)
 * or 1220 (IPv6), already below any usable MTU we allow, and growing the packet to add one is not
 * worth it.
 */
import type { InnerInfo } from '../inner.ts';
import { readU16, updateChecksum16, writeU16 } from './checksum.ts';

/** IPv4 (20) + TCP (20) header bytes: MSS = MTU - 40. */
const IPV4_TCP_HEADERS_BYTES = 40;
/** IPv6 (40) + TCP (20) header bytes: MSS = MTU - 60. */
const IPV6_TCP_HEADERS_BYTES = 60;
const TCP_FLAG_SYN = 0x02;
const TCP_OPTION_END = 0;
const TCP_OPTION_NOP = 1;
const TCP_OPTION_MSS = 2;

/** The largest MSS whose segments fit an inner MTU of `innerMtuBytes` (0 when none does). */
export function mssForMtu(innerMtuBytes: number, ipVersion: number): number {
  return Math.max(0, innerMtuBytes - (ipVersion === 6 ? IPV6_TCP_HEADERS_BYTES : IPV4_TCP_HEADERS_BYTES));
}

/**
 * Lowers the MSS option of a TCP SYN (or SYN-ACK) to `maxMss` when it is higher. `info` is
 * parseInner's result for this packet. Returns true when the packet was changed. Anything that is
 * not a well-formed TCP SYN with an MSS option is left alone (false); never throws.
 */
export function clampTcpMss(packet: Uint8Array, info: InnerInfo, maxMss: number): boolean {
  if (info.protocol !== 6 || info.portsAt < 0) return false;
  const tcp = info.portsAt;
  if (packet.length < tcp + 20) return false;
  if ((packet[tcp + 13]! & TCP_FLAG_SYN) === 0) return false;
  const headerBytes = (packet[tcp + 12]! >> 4) * 4;
  if (headerBytes <= 20 || packet.length < tcp + headerBytes) return false;
  const end = tcp + headerBytes;
  let at = tcp + 20;
  while (at < end) {
    const kind = packet[at]!;
    if (kind === TCP_OPTION_END) return false;
    if (kind === TCP_OPTION_NOP) {
      at++;
      continue;
    }
    if (at + 1 >= end) return false;
    const length = packet[at + 1]!;
    if (length < 2 || at + length > end) return false;
    if (kind === TCP_OPTION_MSS) {
      if (length !== 4) return false;
      const mss = readU16(packet, at + 2);
      if (mss <= maxMss) return false;
      const clamped = Math.max(0, Math.min(maxMss, 0xffff));
      writeU16(packet, at + 2, clamped);
      // The MSS value is one 16-bit word of the segment only when the option starts at an even
      // offset from the TCP header; otherwise it straddles two words and each changes.
      if (((at + 2 - tcp) & 1) === 0) {
        writeU16(packet, tcp + 16, updateChecksum16(readU16(packet, tcp + 16), mss, clamped));
      } else {
        let c = readU16(packet, tcp + 16);
        const w0 = (packet[at + 1]! << 8) | (mss >>> 8);
        const w0n = (packet[at + 1]! << 8) | (clamped >>> 8);
        // (the byte after the option shares the second word; it is unchanged, so it cancels out)
        const w1 = (mss & 0xff) << 8;
        const w1n = (clamped & 0xff) << 8;
        c = updateChecksum16(c, w0, w0n);
        c = updateChecksum16(c, w1, w1n);
        writeU16(packet, tcp + 16, c);
      }
      return true;
    }
    at += length;
  }
  return false;
}
