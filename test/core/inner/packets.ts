// Test helpers: inner packets built and checked by code independent of src/core/inner (a naive
// RFC 1071 sum, written the textbook way), so a bug in the module's checksum code cannot hide
// itself.

/** Textbook Internet checksum of a byte list (16-bit words, end-around carry at the end). */
export function naiveChecksum(bytes: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes[i]! * 256 + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum % 65536) + Math.floor(sum / 65536);
  return 0xffff - sum;
}

/** True when the IPv4 header checksums to zero (the receiver's check). */
export function ipv4HeaderOk(p: Uint8Array): boolean {
  const ihl = (p[0]! & 15) * 4;
  return naiveChecksum(Array.from(p.subarray(0, ihl))) === 0;
}

function pseudo4(p: Uint8Array, proto: number, l4Length: number): number[] {
  return [...p.subarray(12, 20), 0, proto, l4Length >> 8, l4Length & 255];
}

function pseudo6(p: Uint8Array, proto: number, l4Length: number): number[] {
  return [...p.subarray(8, 40), 0, 0, l4Length >> 8, l4Length & 255, 0, 0, 0, proto];
}

/** The transport checksum of the packet's L4 part (TCP, UDP, ICMP, ICMPv6) verifies. */
export function l4ChecksumOk(p: Uint8Array): boolean {
  if (p[0]! >> 4 === 4) {
    const ihl = (p[0]! & 15) * 4;
    const l4 = Array.from(p.subarray(ihl));
    const proto = p[9]!;
    return naiveChecksum(proto === 1 ? l4 : [...pseudo4(p, proto, l4.length), ...l4]) === 0;
  }
  const l4 = Array.from(p.subarray(40));
  return naiveChecksum([...pseudo6(p, p[6]!, l4.length), ...l4]) === 0;
}

function setChecksum(p: Uint8Array, at: number, value: number): void {
  p[at] = value >> 8;
  p[at + 1] = value & 255;
}

export interface TcpOptions {
  syn?: boolean;
  ack?: boolean;
  /** Raw TCP option bytes (the builder pads them to 4 bytes with End-of-Options). */
  options?: number[];
  payload?: number[];
  df?: boolean;
}

/** An IPv4 TCP segment 10.1.0.5:40000 -> 10.2.0.9:443 with correct checksums. */
export function ipv4Tcp(o: TcpOptions = {}): Uint8Array {
  const opts = [...(o.options ?? [])];
  while (opts.length % 4) opts.push(0);
  const payload = o.payload ?? [];
  const tcpLen = 20 + opts.length + payload.length;
  const p = new Uint8Array(20 + tcpLen);
  p.set([0x45, 0, (20 + tcpLen) >> 8, (20 + tcpLen) & 255, 0x12, 0x34, o.df === false ? 0 : 0x40, 0, 64, 6, 0, 0]);
  p.set([10, 1, 0, 5, 10, 2, 0, 9], 12);
  const t = 20;
  p.set([0x9c, 0x40, 0x01, 0xbb, 1, 2, 3, 4, 0, 0, 0, o.ack ? 9 : 0], t);
  p[t + 12] = ((20 + opts.length) / 4) << 4;
  p[t + 13] = (o.syn === false ? 0 : 0x02) | (o.ack ? 0x10 : 0);
  p[t + 14] = 0xfa;
  p.set(opts, t + 20);
  p.set(payload, t + 20 + opts.length);
  setChecksum(p, 10, naiveChecksum(Array.from(p.subarray(0, 20))));
  setChecksum(p, t + 16, naiveChecksum([...pseudo4(p, 6, tcpLen), ...p.subarray(t)]));
  return p;
}

/** An IPv6 TCP segment 2001:db8:1::5 -> 2001:db8:2::9 with a correct checksum. */
export function ipv6Tcp(o: TcpOptions = {}): Uint8Array {
  const opts = [...(o.options ?? [])];
  while (opts.length % 4) opts.push(0);
  const payload = o.payload ?? [];
  const tcpLen = 20 + opts.length + payload.length;
  const p = new Uint8Array(40 + tcpLen);
  p.set([0x60, 0, 0, 0, tcpLen >> 8, tcpLen & 255, 6, 64]);
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 1], 8);
  p[23] = 5;
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 2], 24);
  p[39] = 9;
  const t = 40;
  p.set([0x9c, 0x40, 0x01, 0xbb, 1, 2, 3, 4], t);
  p[t + 12] = ((20 + opts.length) / 4) << 4;
  p[t + 13] = (o.syn === false ? 0 : 0x02) | (o.ack ? 0x10 : 0);
  p[t + 14] = 0xfa;
  p.set(opts, t + 20);
  p.set(payload, t + 20 + opts.length);
  setChecksum(p, t + 16, naiveChecksum([...pseudo6(p, 6, tcpLen), ...p.subarray(t)]));
  return p;
}

/** An IPv4 UDP datagram of `total` bytes (DF as asked, optional raw IP options). */
export function ipv4Udp(total: number, df: boolean, ipOptions: number[] = [], fill = 7): Uint8Array {
  const opts = [...ipOptions];
  while (opts.length % 4) opts.push(0);
  const ihl = 20 + opts.length;
  const p = new Uint8Array(total);
  p.set([0x40 | (ihl / 4), 0, total >> 8, total & 255, 0xab, 0xcd, df ? 0x40 : 0, 0, 64, 17]);
  p.set([10, 1, 0, 5, 10, 2, 0, 9], 12);
  p.set(opts, 20);
  const udpLen = total - ihl;
  p.set([0x30, 0x39, 0x30, 0x3a, udpLen >> 8, udpLen & 255], ihl);
  for (let i = ihl + 8; i < total; i++) p[i] = (i * fill) & 255;
  setChecksum(p, 10, naiveChecksum(Array.from(p.subarray(0, ihl))));
  setChecksum(p, ihl + 6, naiveChecksum([...pseudo4(p, 17, udpLen), ...p.subarray(ihl)]));
  return p;
}

/** An IPv6 UDP datagram of `total` bytes. */
export function ipv6Udp(total: number): Uint8Array {
  const p = new Uint8Array(total);
  const len = total - 40;
  p.set([0x60, 0, 0, 0, len >> 8, len & 255, 17, 64]);
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 1], 8);
  p[23] = 5;
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 2], 24);
  p[39] = 9;
  p.set([0x30, 0x39, 0x30, 0x3a, len >> 8, len & 255], 40);
  for (let i = 48; i < total; i++) p[i] = i & 255;
  setChecksum(p, 46, naiveChecksum([...pseudo6(p, 17, len), ...p.subarray(40)]));
  return p;
}
