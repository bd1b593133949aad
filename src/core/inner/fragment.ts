/**
 * IPv4 fragmentation inside the tunnel (RFC 791 3.2, RFC 815's reassembly on the far host): an
 * inner IPv4 packet without DF that is longer than the chosen path's usable inner MTU is cut
 * into fragments that each fit, and each fragment goes through the tunnel as its own inner
 * packet. The underlay is never fragmented; the far host reassembles.
 *
 * Stage: send path, where the too-big check is (see icmp-too-big.ts): DF set -> Frag Needed,
 * DF clear -> fragmentIpv4, each fragment then continues as an inner packet (same flow: parseInner
 * hashes fragments by addresses and protocol, so they all take one path).
 *
 * Rules kept: fragment data is a multiple of 8 bytes except in the last fragment; offsets are in
 * 8-byte units relative to the original's own offset (a fragment can be fragmented again); MF is
 * set on all but the last, which keeps the original's MF; the first fragment carries every
 * option, the others only options whose "copied" flag (0x80) is set, padded to 4 bytes with
 * End-of-Options; identification, TOS, TTL and protocol are the original's; every header
 * checksum is recomputed.
 */
import { allocBytes } from '../bytes.ts';
import { ipv4HeaderChecksum, readU16, writeU16 } from './checksum.ts';
import { IPV4_MIN_MTU_BYTES } from './icmp-too-big.ts';

/** Most fragments one packet may become (65535 bytes at the 68-byte minimum MTU needs 1366). */
export const MAX_FRAGMENTS_PER_PACKET = 1366;

const OPTION_END = 0;
const OPTION_NOP = 1;
const OPTION_COPIED = 0x80;

/**
 * The options of a non-first fragment: those marked "copied", in order, padded to 4 bytes.
 * Undefined for a malformed option list.
 */
function copiedOptions(packet: Uint8Array, ihl: number): Uint8Array | undefined {
  const kept: number[] = [];
  let at = 20;
  while (at < ihl) {
    const type = packet[at]!;
    if (type === OPTION_END) break;
    if (type === OPTION_NOP) {
      at++;
      continue;
    }
    if (at + 1 >= ihl) return undefined;
    const length = packet[at + 1]!;
    if (length < 2 || at + length > ihl) return undefined;
    if ((type & OPTION_COPIED) !== 0) for (let i = 0; i < length; i++) kept.push(packet[at + i]!);
    at += length;
  }
  const padded = new Uint8Array((kept.length + 3) & ~3);
  padded.set(kept);
  return padded;
}

/**
 * Fragments of `packet` that each fit `mtuBytes`, or undefined when it cannot be fragmented
 * (not IPv4, DF set, malformed, total length disagreeing with the packet, an MTU too small for
 * its header plus 8 bytes). A packet that already fits comes back as the one element.
 */
export function fragmentIpv4(packet: Uint8Array, mtuBytes: number): Uint8Array[] | undefined {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return undefined;
  const ihl = (packet[0]! & 0x0f) * 4;
  const total = readU16(packet, 2);
  if (ihl < 20 || total < ihl || total !== packet.length) return undefined;
  if (total <= mtuBytes) return [packet];
  const flags = packet[6]! & 0xe0;
  if ((flags & 0x40) !== 0) return undefined; // DF: the caller sends Frag Needed instead
  if (mtuBytes < IPV4_MIN_MTU_BYTES) return undefined;
  const originalOffsetUnits = readU16(packet, 6) & 0x1fff;
  const originalMf = (flags & 0x20) !== 0;
  if (originalOffsetUnits * 8 + total - ihl > 0xffff) return undefined; // beyond any datagram
  const laterOptions = copiedOptions(packet, ihl);
  if (laterOptions === undefined) return undefined;
  const laterIhl = 20 + laterOptions.length;
  const payloadBytes = total - ihl;
  const fragments: Uint8Array[] = [];
  let done = 0;
  while (done < payloadBytes) {
    const headerBytes = done === 0 ? ihl : laterIhl;
    const room = Math.floor((mtuBytes - headerBytes) / 8) * 8;
    if (room <= 0) return undefined;
    const chunk = Math.min(room, payloadBytes - done);
    const last = done + chunk === payloadBytes;
    if (fragments.length >= MAX_FRAGMENTS_PER_PACKET) return undefined;
    const out = allocBytes(headerBytes + chunk);
    if (done === 0) {
      out.set(packet.subarray(0, ihl), 0);
    } else {
      out.set(packet.subarray(0, 20), 0);
      out.set(laterOptions, 20);
      out[0] = 0x40 | (laterIhl / 4);
    }
    writeU16(out, 2, headerBytes + chunk);
    const offsetUnits = originalOffsetUnits + done / 8;
    const mf = !last || originalMf;
    writeU16(out, 6, (mf ? 0x2000 : 0) | (packet[6]! & 0x80 ? 0x8000 : 0) | offsetUnits);
    writeU16(out, 10, ipv4HeaderChecksum(out, 0, headerBytes));
    out.set(packet.subarray(ihl + done, ihl + done + chunk), headerBytes);
    fragments.push(out);
    done += chunk;
  }
  return fragments;
}
