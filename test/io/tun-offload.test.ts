// TUN offloads without a TUN: the addon's split of a TSO read (tunSplitForTest) and its coalescing
// of a write batch (tunCoalesceForTest) run the same C as the reader and tunWriteBatch. Checksums
// are checked here by an independent JS implementation; garbage and malformed vnet headers must
// come back as a drop reason, never a crash (the ASan pass runs this file too).
import { describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';

const native = tryLoadNative();
const hooks = native?.tunSplitForTest !== undefined && native.tunCoalesceForTest !== undefined;
const skipReason = !native ? `native addon missing: ${nativeLoadError()?.message}` : !hooks ? 'addon built before offloads' : undefined;
if (skipReason) console.warn(`skipping TUN offload tests: ${skipReason}`);

const split = (read: Uint8Array): Buffer[] | number => native!.tunSplitForTest!(read);
function coalesce(packets: readonly Uint8Array[]): Buffer[] {
  const slab = Buffer.concat(packets);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  let at = 0;
  packets.forEach((p, i) => {
    offsets[i] = at;
    lengths[i] = p.length;
    at += p.length;
  });
  return native!.tunCoalesceForTest!(slab, packets.length, offsets, lengths);
}

const VNET = 10;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_UDP = 3;
const GSO_TCPV6 = 4;
const NEEDS_CSUM = 1;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

function sum16(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) + (i + 1 < end ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function pseudo(p: Uint8Array, v6: boolean, proto: number, l4Len: number): number {
  const addrs = v6 ? sum16(p, 8, 40) : sum16(p, 12, 20);
  return sum16(new Uint8Array([0, proto, l4Len >> 8, l4Len & 0xff]), 0, 4, addrs);
}

/** True when the TCP (or UDP) checksum of packet p verifies. */
function l4ChecksumOk(p: Uint8Array, proto = 6): boolean {
  const v6 = p[0]! >> 4 === 6;
  const l4 = v6 ? 40 : (p[0]! & 0x0f) * 4;
  return sum16(p, l4, p.length, pseudo(p, v6, proto, p.length - l4)) === 0xffff;
}

const ipv4ChecksumOk = (p: Uint8Array): boolean => sum16(p, 0, (p[0]! & 0x0f) * 4) === 0xffff;

interface TcpSpec {
  v6?: boolean;
  seq: number;
  payload: Uint8Array;
  flags?: number;
  ipId?: number;
  srcPort?: number;
  ack?: number;
  window?: number;
  /** TCP options (a multiple of 4 bytes), e.g. a timestamp. */
  options?: Uint8Array;
  /** Leave the checksums as they fall (0): a super-segment's headers from the kernel. */
  noChecksum?: boolean;
}

/** A complete IPv4 or IPv6 TCP packet 10.9.0.1:srcPort -> 10.9.0.2:5201 (fd00::1 -> fd00::2). */
function tcpPacket(s: TcpSpec): Buffer {
  const options = s.options ?? new Uint8Array(0);
  const l4 = s.v6 ? 40 : 20;
  const thl = 20 + options.length;
  const p = Buffer.alloc(l4 + thl + s.payload.length);
  if (s.v6) {
    p[0] = 0x60;
    p.writeUInt16BE(thl + s.payload.length, 4);
    p[6] = 6;
    p[7] = 64;
    p[23] = 1;
    p[8] = 0xfd;
    p[24] = 0xfd;
    p[39] = 2;
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p.writeUInt16BE(s.ipId ?? 100, 4);
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p.set([10, 9, 0, 1, 10, 9, 0, 2], 12);
  }
  p.writeUInt16BE(s.srcPort ?? 40000, l4);
  p.writeUInt16BE(5201, l4 + 2);
  p.writeUInt32BE(s.seq >>> 0, l4 + 4);
  p.writeUInt32BE(s.ack ?? 777, l4 + 8);
  p[l4 + 12] = (thl / 4) << 4;
  p[l4 + 13] = s.flags ?? ACK;
  p.writeUInt16BE(s.window ?? 512, l4 + 14);
  p.set(options, l4 + 20);
  p.set(s.payload, l4 + thl);
  if (!s.noChecksum) {
    if (!s.v6) p.writeUInt16BE(~sum16(p, 0, 20) & 0xffff, 10);
    p.writeUInt16BE(~sum16(p, l4, p.length, pseudo(p, !!s.v6, 6, p.length - l4)) & 0xffff, l4 + 16);
  }
  return p;
}

function vnetHeader(h: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number }): Buffer {
  const b = Buffer.alloc(VNET);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? GSO_NONE;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}

function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A TSO read as the kernel gives it: GSO vnet header, the super-segment's headers unfinished. */
function tsoRead(v6: boolean, payload: Uint8Array, gsoSize: number, flags = ACK | PSH): Buffer {
  const l4 = v6 ? 40 : 20;
  const p = tcpPacket({ v6, seq: 0xfffff000, payload, flags, ipId: 0xfffe, noChecksum: true });
  const h = vnetHeader({ flags: NEEDS_CSUM, gsoType: v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: l4 + 20, gsoSize, csumStart: l4, csumOffset: 16 });
  return Buffer.concat([h, p]);
}

describe.skipIf(skipReason !== undefined)('TUN offload read side: split of a TSO super-segment', () => {
  for (const v6 of [false, true]) {
    it(`splits a 64 KB ${v6 ? 'IPv6' : 'IPv4'} super-segment into MSS packets with correct headers and checksums`, () => {
      const gsoSize = 1380;
      const payload = pattern(65_000);
      const segments = split(tsoRead(v6, payload, gsoSize, ACK | PSH | FIN));
      expect(Array.isArray(segments)).toBe(true);
      const segs = segments as Buffer[];
      expect(segs.length).toBe(Math.ceil(65_000 / gsoSize));
      const l4 = v6 ? 40 : 20;
      const joined: Buffer[] = [];
      segs.forEach((s, i) => {
        const last = i === segs.length - 1;
        expect(s.length).toBe(l4 + 20 + (last ? 65_000 - gsoSize * i : gsoSize));
        if (v6) expect(s.readUInt16BE(4)).toBe(s.length - 40);
        else {
          expect(s.readUInt16BE(2)).toBe(s.length);
          expect(s.readUInt16BE(4)).toBe((0xfffe + i) & 0xffff); // IP ID per segment, wrapping
          expect(ipv4ChecksumOk(s)).toBe(true);
        }
        expect(s.readUInt32BE(l4 + 4)).toBe((0xfffff000 + i * gsoSize) >>> 0); // seq, wrapping
        expect(s[l4 + 13]).toBe(last ? ACK | PSH | FIN : ACK);
        expect(l4ChecksumOk(s)).toBe(true);
        joined.push(s.subarray(l4 + 20));
      });
      expect(Buffer.concat(joined).equals(Buffer.from(payload))).toBe(true);
    });
  }

  it('completes a partial (NEEDS_CSUM) checksum of a non-GSO packet and passes a plain one through', () => {
    // A UDP packet as a local socket with checksum offload hands it over: the pseudo-header sum in the field.
    const udp = Buffer.alloc(20 + 8 + 333);
    udp[0] = 0x45;
    udp.writeUInt16BE(udp.length, 2);
    udp[8] = 64;
    udp[9] = 17;
    udp.set([10, 9, 0, 1, 10, 9, 0, 2], 12);
    udp.writeUInt16BE(0x1234, 20);
    udp.writeUInt16BE(53, 22);
    udp.writeUInt16BE(8 + 333, 24);
    udp.set(pattern(333, 7), 28);
    udp.writeUInt16BE(pseudo(udp, false, 17, 8 + 333), 26);
    const out = split(Buffer.concat([vnetHeader({ flags: NEEDS_CSUM, csumStart: 20, csumOffset: 6 }), udp])) as Buffer[];
    expect(out.length).toBe(1);
    expect(l4ChecksumOk(out[0]!, 17)).toBe(true);
    expect(out[0]!.subarray(0, 26).equals(udp.subarray(0, 26))).toBe(true);
    const plain = tcpPacket({ seq: 5, payload: pattern(100) });
    const passed = split(Buffer.concat([vnetHeader({}), plain])) as Buffer[];
    expect(passed.length).toBe(1);
    expect(passed[0]!.equals(plain)).toBe(true);
  });

  it('drops malformed vnet headers and packets with a reason', () => {
    const payload = pattern(5000);
    const good = tsoRead(false, payload, 1000);
    const withHeader = (h: Parameters<typeof vnetHeader>[0]): Buffer => Buffer.concat([vnetHeader(h), good.subarray(VNET)]);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_TCPV4, gsoSize: 0, csumStart: 20, csumOffset: 16 }))).toBe(-1);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_TCPV4, gsoSize: 1000, csumStart: 24, csumOffset: 16 }))).toBe(-1);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_TCPV6, gsoSize: 1000, csumStart: 40, csumOffset: 16 }))).toBe(-2);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_UDP, gsoSize: 1000, csumStart: 20, csumOffset: 6 }))).toBe(-3);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: 0x42, gsoSize: 1000 }))).toBe(-3);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_NONE, csumStart: 6000, csumOffset: 6 }))).toBe(-1);
    expect(split(withHeader({ flags: NEEDS_CSUM, gsoType: GSO_NONE, csumStart: 20, csumOffset: 60000 }))).toBe(-1);
    expect(split(withHeader({ gsoType: GSO_TCPV4, gsoSize: 65535 }))).toBe(-1);
    expect(split(Buffer.alloc(VNET))).toBe(-2); // a header and nothing else
    // Headers cut short: only the IP header, or a TCP data offset pointing past the packet.
    expect(split(Buffer.concat([good.subarray(0, VNET), good.subarray(VNET, VNET + 30)]))).toBe(-2);
    const badOffset = Buffer.from(good);
    badOffset[VNET + 20 + 12] = 0x10; // data offset 4 bytes
    expect(split(badOffset)).toBe(-2);
  });

  it('survives random and mutated reads: every result is packets or a drop reason', () => {
    const base = tsoRead(false, pattern(9000), 1400);
    let x = 12345;
    const rnd = (n: number): number => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x % n;
    };
    let packets = 0;
    let drops = 0;
    for (let round = 0; round < 4000; round++) {
      let read: Buffer;
      if (round % 4 === 0) {
        read = Buffer.from(pattern(1 + rnd(3000), round)); // garbage
      } else {
        read = Buffer.from(base.subarray(0, 1 + rnd(base.length))); // truncated
        for (let k = rnd(6); k > 0; k--) read[rnd(Math.min(read.length, 80))] = rnd(256); // mutated headers
      }
      const out = split(read);
      if (typeof out === 'number') {
        expect([-1, -2, -3]).toContain(out);
        drops++;
      } else {
        expect(out.every((s) => s.length > 0 && s.length <= 65_535)).toBe(true);
        packets += out.length;
      }
    }
    expect(drops).toBeGreaterThan(0);
    expect(packets).toBeGreaterThan(0);
  });
});

describe.skipIf(skipReason !== undefined)('TUN offload write side: coalescing a batch', () => {
  const mss = 1200;
  const flow = (n: number, opts: { v6?: boolean; srcPort?: number; seq0?: number; lastBytes?: number } = {}): Buffer[] =>
    Array.from({ length: n }, (_, i) =>
      tcpPacket({
        v6: opts.v6,
        srcPort: opts.srcPort,
        seq: (opts.seq0 ?? 1000) + i * mss,
        ipId: 500 + i,
        payload: pattern(i === n - 1 && opts.lastBytes !== undefined ? opts.lastBytes : mss, i + (opts.srcPort ?? 0)),
        flags: i === n - 1 ? ACK | PSH : ACK,
      }),
    );

  for (const v6 of [false, true]) {
    it(`joins one ${v6 ? 'IPv6' : 'IPv4'} flow's in-order segments into one GSO write that splits back into them`, () => {
      const packets = flow(20, { v6, lastBytes: 300 });
      const writes = coalesce(packets);
      expect(writes.length).toBe(1);
      const w = writes[0]!;
      const l4 = v6 ? 40 : 20;
      expect(w[0]).toBe(NEEDS_CSUM);
      expect(w[1]).toBe(v6 ? GSO_TCPV6 : GSO_TCPV4);
      expect(w.readUInt16LE(2)).toBe(l4 + 20); // hdr_len
      expect(w.readUInt16LE(4)).toBe(mss); // gso_size
      expect(w.readUInt16LE(6)).toBe(l4); // csum_start
      expect(w.readUInt16LE(8)).toBe(16);
      const ip = w.subarray(VNET);
      expect(ip.length).toBe(l4 + 20 + 19 * mss + 300);
      if (v6) expect(ip.readUInt16BE(4)).toBe(ip.length - 40);
      else {
        expect(ip.readUInt16BE(2)).toBe(ip.length);
        expect(ipv4ChecksumOk(ip)).toBe(true);
      }
      expect(ip[l4 + 13]).toBe(ACK | PSH); // the last member's PSH
      // The TCP checksum field holds the pseudo-header sum (the kernel adds the rest).
      expect(ip.readUInt16BE(l4 + 16)).toBe(pseudo(ip, v6, 6, ip.length - l4));
      // Reading it back through the split gives the original packets (IPv4 IDs follow the first's).
      const back = split(w) as Buffer[];
      expect(back.length).toBe(20);
      back.forEach((b, i) => expect(b.equals(packets[i]!)).toBe(true));
    });
  }

  it('keeps every flow in order: units in first-packet order, anything that cannot join closes its flow', () => {
    const a = flow(6, { srcPort: 1 });
    const b = flow(4, { srcPort: 2 });
    const udp = Buffer.from(tcpPacket({ seq: 0, payload: pattern(50) }));
    udp[9] = 17; // not TCP: written alone
    const corrupt = Buffer.from(a[4]!);
    corrupt[corrupt.length - 1]! ^= 0xff; // bad checksum: never joined
    const gap = tcpPacket({ seq: 1000 + 9 * mss, srcPort: 2, payload: pattern(mss), ipId: 1 });
    const pure = tcpPacket({ seq: 1000 + 4 * mss, srcPort: 2, payload: new Uint8Array(0) }); // a pure ACK
    const batch = [a[0]!, b[0]!, a[1]!, a[2]!, udp, b[1]!, a[3]!, corrupt, a[5]!, b[2]!, b[3]!, gap, pure];
    const writes = coalesce(batch);
    const members = writes.map((w) => {
      const segs = w[1] === GSO_NONE ? [w.subarray(VNET)] : (split(w) as Buffer[]);
      return segs.map((s) => batch.findIndex((p) => p.equals(s)));
    });
    // a0..a3 join; the corrupt a4 goes alone and closes a's unit, so a5 starts another. b0..b3 join
    // (b3 has PSH); the gap starts a unit of its own; the pure ACK goes alone.
    expect(members).toEqual([[0, 2, 3, 6], [1, 5, 9, 10], [4], [7], [8], [11], [12]]);
    for (const m of members) for (const i of m) expect(i).toBeGreaterThanOrEqual(0);
  });

  it('does not join segments that differ in ack, window, options, TTL or size, nor past 64 KB', () => {
    const base = (i: number, over: Partial<TcpSpec> = {}): Buffer =>
      tcpPacket({ seq: 1000 + i * mss, payload: pattern(mss, i), ...over });
    const units = (ps: Buffer[]): number => coalesce(ps).length;
    expect(units([base(0), base(1), base(2)])).toBe(1);
    expect(units([base(0), base(1, { ack: 778 })])).toBe(2);
    expect(units([base(0), base(1, { window: 513 })])).toBe(2);
    expect(units([base(0, { options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) }), base(1, { options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 2]) })])).toBe(2);
    const ttl = base(1);
    ttl[8] = 63;
    ttl.writeUInt16BE(0, 10);
    ttl.writeUInt16BE(~sum16(ttl, 0, 20) & 0xffff, 10);
    expect(units([base(0), ttl])).toBe(2);
    // A short segment ends a unit: nothing may follow it.
    expect(units([base(0), tcpPacket({ seq: 1000 + mss, payload: pattern(100) }), tcpPacket({ seq: 1000 + mss + 100, payload: pattern(mss) })])).toBe(2);
    // 60 full segments of 1200 bytes: 72,000 bytes is past 65,535, so two units.
    expect(units(Array.from({ length: 60 }, (_, i) => base(i)))).toBe(2);
  });
});
