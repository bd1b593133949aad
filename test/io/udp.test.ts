// UDP through the native addon on loopback (no root needed, except SO_BINDTODEVICE checks), and
// the node:dgram fallback behind the same UdpLink interface.
import { afterEach, describe, expect, it } from 'vitest';
import { BraidError } from '../../src/core/errors.ts';
import { parseIpv4 } from '../../src/io/ipv4.ts';
import { nativeLoadError, tryLoadNative, type BraidNative } from '../../src/io/native.ts';
import {
  NativeUdpLink,
  NodeDgramLink,
  dscpToTos,
  openUdpLink,
  type DatagramBatch,
  type UdpLink,
} from '../../src/io/udp.ts';

const native = tryLoadNative();
const isRoot = process.getuid?.() === 0;
if (!native) console.warn(`skipping native UDP tests: ${nativeLoadError()?.message}`);
if (!isRoot) console.warn('skipping SO_BINDTODEVICE test: needs root');

const LOOPBACK = '127.0.0.1';
const LOOPBACK_U32 = 0x7f000001;

interface Received {
  seq: number;
  fromU32: number;
  fromPort: number;
  tos: number;
  lengthBytes: number;
  intact: boolean;
}

/** Datagram i: 4-byte sequence number, then bytes (seq + k) & 255, so corruption shows. */
function datagram(seq: number, lengthBytes: number): Buffer {
  const out = Buffer.alloc(lengthBytes);
  out.writeUInt32BE(seq, 0);
  for (let k = 4; k < lengthBytes; k++) out[k] = (seq + k) & 255;
  return out;
}

function collect(link: UdpLink, into: Received[], batchSizes: number[] = []): void {
  link.onDatagrams((batch: DatagramBatch) => {
    batchSizes.push(batch.count);
    for (let i = 0; i < batch.count; i++) {
      const bytes = batch.datagram(i);
      const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(0);
      let intact = true;
      for (let k = 4; k < bytes.length; k++) if (bytes[k] !== ((seq + k) & 255)) intact = false;
      into.push({
        seq,
        fromU32: batch.fromAddressU32(i),
        fromPort: batch.fromPort(i),
        tos: batch.tos(i),
        lengthBytes: bytes.length,
        intact,
      });
    }
  });
}

function until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 1);
    };
    check();
  });
}

const opened: UdpLink[] = [];
afterEach(() => {
  for (const link of opened.splice(0)) link.close();
});

function openNative(options: Partial<Parameters<typeof NativeUdpLink.open>[0]> = {}): NativeUdpLink {
  const link = NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0, ...options }, native);
  opened.push(link);
  return link;
}

describe.skipIf(!native)('native UDP link', () => {
  it('exchanges 1000 datagrams each way in batches with the right source address and port', async () => {
    const a = openNative();
    const b = openNative();
    const atA: Received[] = [];
    const atB: Received[] = [];
    const batchesAtB: number[] = [];
    collect(a, atA);
    collect(b, atB, batchesAtB);

    const total = 1000;
    const burst = 100; // sent before yielding to the loop, so the reader finds many queued
    for (let start = 0; start < total; start += burst) {
      for (let seq = start; seq < start + burst; seq++) {
        expect(a.send(datagram(seq, 200 + (seq % 1200)), { address: LOOPBACK, port: b.port }, 0)).toBe(true);
        expect(b.send(datagram(seq, 64), { address: LOOPBACK, port: a.port }, 10)).toBe(true);
      }
      await until(() => atB.length >= start + burst && atA.length >= start + burst, `burst at ${start}`);
    }

    for (const [received, sender] of [
      [atB, a],
      [atA, b],
    ] as const) {
      expect(received.map((r) => r.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(received.every((r) => r.intact)).toBe(true);
      expect(received.every((r) => r.fromU32 === LOOPBACK_U32 && r.fromPort === sender.port)).toBe(true);
    }
    expect(atB.map((r) => r.lengthBytes)).toEqual(Array.from({ length: total }, (_, i) => 200 + (i % 1200)));
    // Batching happened: fewer callbacks than datagrams, and none above the batch size.
    expect(batchesAtB.length).toBeLessThan(total / 4);
    expect(Math.max(...batchesAtB)).toBeLessThanOrEqual(native!.BATCH_MAX);
    expect(Math.max(...batchesAtB)).toBeGreaterThan(1);
    expect(a.counters.txDatagrams).toBe(total);
    expect(b.counters.rxDatagrams).toBe(total);
    expect(a.counters.txDropped).toBe(0);
  });

  it('marks DSCP per packet (TOS = dscp << 2) and reports the received TOS', async () => {
    const sender = openNative();
    const receiver = openNative({ recvTos: true });
    const got: Received[] = [];
    collect(receiver, got);
    const dscps = [0, 46, 10, 46, 8, 0, 63];
    dscps.forEach((dscp, seq) => sender.send(datagram(seq, 32), { address: LOOPBACK, port: receiver.port }, dscp));
    await until(() => got.length === dscps.length, 'tos datagrams');
    expect(got.map((r) => r.tos)).toEqual(dscps.map(dscpToTos));
    expect(dscpToTos(46)).toBe(0xb8);
  });

  it('socket default TOS (udpOpen tos) applies when udpSend passes -1, and sendmmsg sets TOS per message', async () => {
    const addon = native as BraidNative;
    const sender = addon.udpOpen({ bindAddress: LOOPBACK, port: 0, tos: 0x20 });
    const receiver = openNative({ recvTos: true });
    const got: Received[] = [];
    collect(receiver, got);
    try {
      const one = datagram(0, 40);
      expect(addon.udpSend(sender.fd, one, 0, one.length, LOOPBACK, receiver.port, -1)).toBe(40);

      // A batch of 3 from one slab: offsets, lengths, per-message destination and TOS.
      const slab = Buffer.concat([datagram(1, 100), datagram(2, 50), datagram(3, 70)]);
      const sent = addon.udpSendBatch(
        sender.fd,
        slab,
        3,
        Uint32Array.of(0, 100, 150),
        Uint32Array.of(100, 50, 70),
        Uint32Array.of(LOOPBACK_U32, LOOPBACK_U32, LOOPBACK_U32),
        Uint16Array.of(receiver.port, receiver.port, receiver.port),
        Uint8Array.of(0xb8, 0x00, 0x48),
      );
      expect(sent).toBe(3);
      await until(() => got.length === 4, 'tos batch');
      expect(got.map((r) => [r.seq, r.lengthBytes, r.tos, r.intact])).toEqual([
        [0, 40, 0x20, true],
        [1, 100, 0xb8, true],
        [2, 50, 0x00, true],
        [3, 70, 0x48, true],
      ]);
    } finally {
      addon.closeFd(sender.fd);
    }
  });

  it('asks for 4 MiB buffers by default and gets them as root', () => {
    const link = openNative();
    // The kernel reports twice the granted size; without privilege the grant is capped by
    // net.core.rmem_max, so only check the exact figure as root.
    if (isRoot) expect(link.rcvbufBytes).toBe(2 * 4 * 1024 * 1024);
    expect(link.rcvbufBytes).toBeGreaterThan(0);
  });

  it('per-packet failures return false and count, never throw', () => {
    const a = openNative();
    expect(a.send(Buffer.alloc(10), { address: 'not-an-ip', port: 9 }, 0)).toBe(false);
    expect(a.counters.lastTxError).toBe('EINVAL');
    expect(a.send(Buffer.alloc(10), { address: LOOPBACK, port: 0 }, 0)).toBe(false);
    // Larger than any UDP/IPv4 datagram: the kernel refuses with EMSGSIZE.
    expect(a.send(Buffer.alloc(70_000), { address: LOOPBACK, port: 9 }, 0)).toBe(false);
    expect(a.counters.lastTxError).toBe('EMSGSIZE');
    expect(a.counters.txDropped).toBe(3);
    a.close();
    a.close(); // idempotent
    expect(a.send(Buffer.alloc(10), { address: LOOPBACK, port: 9 }, 0)).toBe(false);
    // Raw addon: a bad fd is a per-packet error too (negative errno, no throw).
    expect(native!.udpSend(1_000_000, Buffer.alloc(1), 0, 1, LOOPBACK_U32, 9, 0)).toBe(-9 /* EBADF */);
  });

  it('stopReader inside the callback stops delivery; the link can be closed there', async () => {
    const a = openNative();
    const b = openNative();
    let calls = 0;
    b.onDatagrams(() => {
      calls++;
      b.close();
    });
    for (let i = 0; i < 200; i++) a.send(datagram(i, 20), { address: LOOPBACK, port: b.port }, 0);
    await until(() => calls > 0, 'first batch');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls).toBe(1);
  });

  it('closeFd stops a reader that was never stopped, so a reused fd number reads normally', async () => {
    const addon = native as BraidNative;
    const first = addon.udpOpen({ bindAddress: LOOPBACK, port: 0 });
    let firstCalls = 0;
    addon.startReader(first.fd, 'udp', () => firstCalls++);
    addon.closeFd(first.fd);
    const second = addon.udpOpen({ bindAddress: LOOPBACK, port: 0 });
    let secondCount = 0;
    const handle = addon.startReader(second.fd, 'udp', (_slab, count) => {
      secondCount += count;
    });
    try {
      const one = Buffer.from('ping');
      expect(addon.udpSend(second.fd, one, 0, one.length, LOOPBACK, second.port, -1)).toBe(4);
      await until(() => secondCount === 1, 'datagram on the reused fd');
      expect(firstCalls).toBe(0);
    } finally {
      addon.stopReader(handle);
      addon.closeFd(second.fd);
    }
  });

  it('garbage arguments give clear errors', () => {
    const addon = native as BraidNative;
    const bad = (fn: () => unknown): { code: unknown; message: string } => {
      try {
        fn();
      } catch (error) {
        return { code: (error as { code?: unknown }).code, message: (error as Error).message };
      }
      throw new Error('expected a throw');
    };
    const asUnknown = addon as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(bad(() => asUnknown.udpOpen())).toEqual({
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'udpOpen: expected an options object {bindAddress, port, ...}',
    });
    expect(bad(() => asUnknown.udpOpen({ port: 1 })).message).toMatch(/bindAddress must be/);
    expect(bad(() => addon.udpOpen({ bindAddress: 'nope', port: 1 }))).toEqual({
      code: 'ERR_INVALID_IP_ADDRESS',
      message: "udpOpen: bindAddress 'nope' is not an IPv4 or IPv6 address",
    });
    expect(bad(() => addon.udpOpen({ bindAddress: LOOPBACK, port: 70000 })).code).toBe('ERR_OUT_OF_RANGE');
    expect(bad(() => addon.udpOpen({ bindAddress: LOOPBACK, port: 1.5 })).message).toMatch(/port must be an integer/);
    expect(bad(() => addon.udpOpen({ bindAddress: '192.0.2.99', port: 0 }))).toEqual({
      code: 'EADDRNOTAVAIL',
      message: 'bind 192.0.2.99:0: Cannot assign requested address (EADDRNOTAVAIL)',
    });
    expect(bad(() => asUnknown.udpSend(3, 'text', 0, 4, LOOPBACK, 9, 0)).message).toBe(
      'udpSend: buf must be a Buffer, TypedArray or DataView',
    );
    expect(bad(() => addon.udpSend(3, Buffer.alloc(4), 2, 4, LOOPBACK, 9, 0)).code).toBe('ERR_OUT_OF_RANGE');
    expect(bad(() => addon.udpSend(3, Buffer.alloc(4), 0, 4, '1.2.3', 9, 0)).code).toBe('ERR_INVALID_IP_ADDRESS');
    expect(bad(() => addon.udpSend(3, Buffer.alloc(4), 0, 4, LOOPBACK, 9, 256)).message).toMatch(/tos must be/);
    expect(bad(() => asUnknown.startReader(0, 'x', () => undefined)).message).toBe(
      "startReader: kind must be 'tun' or 'udp'",
    );
    expect(bad(() => asUnknown.startReader(0, 'udp', 'not a function')).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(bad(() => addon.startReader(1_000_000, 'udp', () => undefined)).code).toBe('EBADF');
    expect(bad(() => asUnknown.stopReader({})).message).toMatch(/handle must be a startReader handle/);
    expect(bad(() => addon.closeFd(1_000_000))).toEqual({ code: 'EBADF', message: 'close: Bad file descriptor (EBADF)' });
    expect(bad(() => asUnknown.tunOpen('x'.repeat(16), 1400)).code).toBe('ERR_OUT_OF_RANGE');
    expect(bad(() => addon.tunOpen('brt-x', 20)).message).toMatch(/mtuBytes must be an integer in \[68, 65535\]/);
  });

  it('wraps open failures in BraidError with the fix in one line', () => {
    const first = openNative();
    let error: unknown;
    try {
      NativeUdpLink.open({ bindAddress: LOOPBACK, port: first.port }, native);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BraidError);
    expect((error as BraidError).code).toBe('BRAID_SOCKET_FAILED');
    expect((error as BraidError).osCode).toBe('EADDRINUSE');
    expect((error as BraidError).message).toBe(
      `cannot open UDP link 127.0.0.1:${first.port}: the port is taken by another socket ` +
        `(bind 127.0.0.1:${first.port}: Address already in use (EADDRINUSE))`,
    );
  });

  it.skipIf(!isRoot)('binds to a device (SO_BINDTODEVICE) and names a missing one', async () => {
    const a = openNative({ device: 'lo' });
    const b = openNative({ device: 'lo' });
    const got: Received[] = [];
    collect(b, got);
    a.send(datagram(7, 30), { address: LOOPBACK, port: b.port }, 0);
    await until(() => got.length === 1, 'datagram over lo');
    let error: unknown;
    try {
      NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0, device: 'brt-nope0' }, native);
    } catch (caught) {
      error = caught;
    }
    expect((error as BraidError).osCode).toBe('ENODEV');
    expect((error as BraidError).message).toMatch(/interface brt-nope0 does not exist/);
  });
});

describe('node:dgram fallback link', () => {
  it('talks to the native link through the same interface', async () => {
    const dgramLink = await NodeDgramLink.open({ bindAddress: LOOPBACK, port: 0 });
    opened.push(dgramLink);
    const other: UdpLink = native ? openNative() : await NodeDgramLink.open({ bindAddress: LOOPBACK, port: 0 });
    if (!native) opened.push(other);
    const atDgram: Received[] = [];
    const atOther: Received[] = [];
    collect(dgramLink, atDgram);
    collect(other, atOther);
    for (let seq = 0; seq < 50; seq++) {
      dgramLink.send(datagram(seq, 100), { address: LOOPBACK, port: other.port }, 46);
      other.send(datagram(seq, 100), { address: LOOPBACK, port: dgramLink.port }, 46);
    }
    await until(() => atDgram.length === 50 && atOther.length === 50, 'dgram exchange');
    expect(atDgram.every((r) => r.intact && r.fromU32 === LOOPBACK_U32 && r.fromPort === other.port)).toBe(true);
    expect(atOther.every((r) => r.intact && r.fromPort === dgramLink.port)).toBe(true);
    expect(parseIpv4('127.0.0.1')).toBe(LOOPBACK_U32);
  });

  it('refuses options it cannot honour instead of silently ignoring them', async () => {
    await expect(NodeDgramLink.open({ bindAddress: LOOPBACK, port: 0, device: 'lo' })).rejects.toMatchObject({
      code: 'BRAID_NATIVE_MISSING',
    });
  });

  it('openUdpLink picks the native link when the addon is built', async () => {
    const { link, kind } = await openUdpLink({ bindAddress: LOOPBACK, port: 0 });
    opened.push(link);
    expect(kind).toBe(native ? 'native' : 'dgram');
  });
});
