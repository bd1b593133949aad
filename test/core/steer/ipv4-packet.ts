/** Hand-built IPv4 packets for classifier tests: every header byte written here, nothing borrowed. */

/** IPv4 header (20 bytes, valid checksum) + UDP/TCP ports + payload. */
export function ipv4Packet(o: { src: string; dst: string; protocol: number; sport?: number; dport?: number; dscp?: number; sizeBytes?: number; fragOffset?: number }): Uint8Array {
  const size = o.sizeBytes ?? 60;
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[1] = (o.dscp ?? 0) << 2;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[6] = ((o.fragOffset ?? 0) >> 8) & 0x1f;
  p[7] = (o.fragOffset ?? 0) & 0xff;
  p[8] = 64;
  p[9] = o.protocol;
  p.set(o.src.split('.').map(Number), 12);
  p.set(o.dst.split('.').map(Number), 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  if (o.sport !== undefined) {
    p[20] = o.sport >> 8;
    p[21] = o.sport & 0xff;
    p[22] = (o.dport ?? 0) >> 8;
    p[23] = (o.dport ?? 0) & 0xff;
  }
  return p;
}

