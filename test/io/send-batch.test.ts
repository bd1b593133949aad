// Batched sends: SendBatch (the per-link slab the driver fills), UdpLink.sendBatch on the native
// link (sendmmsg, UDP GSO runs, partial failures, the GSO fallback) and the node:dgram fallback,
// and the Driver draining the Edge's transmits into one batch per link.
import { afterEach, describe, expect, it } from 'vitest';
import type { Edge } from '../../src/core/edge.ts';
import type { Endpoint, Transmit } from '../../src/core/types.ts';
import { Driver } from '../../src/io/driver.ts';
import { nativeLoadError, tryLoadNative, type BraidNative } from '../../src/io/native.ts';
import type { PacketBatch, TunDevice } from '../../src/io/tun.ts';
import {
  NativeUdpLink,
  NodeDgramLink,
  SEND_BATCH_MAX,
  SEND_BATCH_SLAB_BYTES,
  SendBatch,
  dscpToTos,
  type DatagramBatch,
  type UdpEndpoint,
  type UdpLink,
  type UdpLinkCounters,
} from '../../src/io/udp.ts';

const native = tryLoadNative();
if (!native) console.warn(`skipping native sendBatch tests: ${nativeLoadError()?.message}`);
const LOOPBACK = '127.0.0.1';

/** Datagram `seq`: 4-byte sequence number, then bytes (seq + k) & 255, so corruption shows. */
function datagram(seq: number, lengthBytes: number): Buffer {
  const out = Buffer.alloc(lengthBytes);
  out.writeUInt32BE(seq, 0);
  for (let k = 4; k < lengthBytes; k++) out[k] = (seq + k) & 255;
  return out;
}

interface Received {
  seq: number;
  length: number;
  tos: number;
  port: number;
  intact: boolean;
}

function collect(link: UdpLink, into: Received[]): void {
  link.onDatagrams((batch: DatagramBatch) => {
    for (let i = 0; i < batch.count; i++) {
      const bytes = batch.datagram(i);
      const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(0);
      let intact = true;
      for (let k = 4; k < bytes.length; k++) if (bytes[k] !== ((seq + k) & 255)) intact = false;
      into.push({ seq, length: bytes.length, tos: batch.tos(i), port: batch.fromPort(i), intact });
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

function openNative(options: { recvTos?: boolean; gso?: boolean } = {}, addon: BraidNative = native!): NativeUdpLink {
  const link = NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0, ...options }, addon);
  opened.push(link);
  return link;
}

describe('SendBatch', () => {
  const to: UdpEndpoint = { address: '10.1.2.3', port: 51900 };

  it('copies datagrams into its slab with destination and TOS, and empties on clear', () => {
    const batch = new SendBatch();
    const first = datagram(1, 100);
    expect(batch.push(first, to, 46)).toBe(true);
    expect(batch.push(datagram(2, 7), { address: '192.168.0.1', port: 9 }, 0)).toBe(true);
    first.fill(0); // the caller's buffer is free at once
    expect(batch.count).toBe(2);
    expect(batch.datagram(0).equals(datagram(1, 100))).toBe(true);
    expect(batch.datagram(1).equals(datagram(2, 7))).toBe(true);
    expect([batch.addrs[0], batch.ports[0], batch.tos[0]]).toEqual([0x0a010203, 51900, dscpToTos(46)]);
    expect([batch.addrs[1], batch.ports[1], batch.tos[1]]).toEqual([0xc0a80001, 9, 0]);
    expect(batch.offsets[1]! % 16).toBe(0);
    batch.clear();
    expect(batch.count).toBe(0);
    expect(batch.push(datagram(3, 5), to, 0)).toBe(true);
    expect(batch.offsets[0]).toBe(0);
  });

  it(`holds at most ${SEND_BATCH_MAX} datagrams and ${SEND_BATCH_SLAB_BYTES} bytes`, () => {
    const batch = new SendBatch();
    for (let i = 0; i < SEND_BATCH_MAX; i++) expect(batch.push(datagram(i, 20), to, 0)).toBe(true);
    expect(batch.isFullFor(1)).toBe(true);
    expect(batch.push(datagram(99, 20), to, 0)).toBe(false);
    expect(batch.count).toBe(SEND_BATCH_MAX);
    batch.clear();
    const big = SEND_BATCH_SLAB_BYTES / 4;
    for (let i = 0; i < 4; i++) expect(batch.push(new Uint8Array(big), to, 0)).toBe(true);
    expect(batch.isFullFor(1)).toBe(true);
    batch.clear();
    batch.push(new Uint8Array(1), to, 0); // takes 16 bytes: starts stay 16-byte aligned
    expect(batch.isFullFor(SEND_BATCH_SLAB_BYTES - 16)).toBe(false);
    expect(batch.isFullFor(SEND_BATCH_SLAB_BYTES - 15)).toBe(true);
  });

  it('refuses what it cannot batch: oversized datagrams and bad endpoints', () => {
    const batch = new SendBatch();
    expect(batch.push(new Uint8Array(SEND_BATCH_SLAB_BYTES / 4 + 1), to, 0)).toBe(false);
    expect(batch.push(new Uint8Array(1), { address: 'not-an-ip', port: 1 }, 0)).toBe(false);
    expect(batch.push(new Uint8Array(1), { address: '10.0.0.1', port: 0 }, 0)).toBe(false);
    expect(batch.push(new Uint8Array(1), { address: '10.0.0.1', port: 65536 }, 0)).toBe(false);
    expect(batch.count).toBe(0);
  });
});

describe.skipIf(!native)('native UdpLink.sendBatch', () => {
  for (const gso of [true, false]) {
    it(`delivers every datagram intact, in order, with its TOS (gso ${gso ? 'on' : 'off'})`, async () => {
      const sender = openNative({ gso });
      const r1 = openNative({ recvTos: true });
      const r2 = openNative({ recvTos: true });
      const got1: Received[] = [];
      const got2: Received[] = [];
      collect(r1, got1);
      collect(r2, got2);
      const batch = new SendBatch();
      const expected1: Received[] = [];
      const expected2: Received[] = [];
      let seq = 0;
      // Runs GSO can merge (same size, destination and TOS; a shorter last one), broken by a
      // change of TOS, of destination and of size, and single odd datagrams.
      const plan: [count: number, length: number, receiver: 1 | 2, dscp: number][] = [
        [20, 1400, 1, 0],
        [1, 600, 1, 0],
        [10, 1400, 1, 46],
        [5, 1400, 2, 46],
        [3, 1200, 2, 46],
        [1, 1300, 2, 46],
        [1, 9000, 1, 0],
        [23, 512, 1, 10],
      ];
      for (const [count, length, receiver, dscp] of plan) {
        for (let i = 0; i < count; i++, seq++) {
          const link = receiver === 1 ? r1 : r2;
          expect(batch.push(datagram(seq, length), { address: LOOPBACK, port: link.port }, dscp)).toBe(true);
          (receiver === 1 ? expected1 : expected2).push({ seq, length, tos: dscpToTos(dscp), port: sender.port, intact: true });
        }
      }
      expect(batch.count).toBe(64);
      expect(sender.sendBatch(batch)).toBe(64);
      await until(() => got1.length === expected1.length && got2.length === expected2.length, 'the batch');
      expect(got1).toEqual(expected1);
      expect(got2).toEqual(expected2);
      expect(sender.counters.txDatagrams).toBe(64);
      expect(sender.counters.txDropped).toBe(0);
      expect(sender.gso).toBe(gso); // loopback takes GSO: it stays on
    });
  }

  it('drops only the datagram the kernel refuses and sends the rest (partial sendmmsg)', async () => {
    const sender = openNative();
    const receiver = openNative();
    const got: Received[] = [];
    collect(receiver, got);
    const batch = new SendBatch();
    batch.push(datagram(0, 100), { address: LOOPBACK, port: receiver.port }, 0);
    batch.push(datagram(1, 100), { address: '255.255.255.255', port: receiver.port }, 0); // EACCES: no SO_BROADCAST
    batch.push(datagram(2, 100), { address: LOOPBACK, port: receiver.port }, 0);
    expect(sender.sendBatch(batch)).toBe(2);
    await until(() => got.length === 2, 'the two deliverable datagrams');
    expect(got.map((r) => r.seq)).toEqual([0, 2]);
    expect(sender.counters).toMatchObject({ txDatagrams: 2, txDropped: 1, lastTxError: 'EACCES' } satisfies Partial<UdpLinkCounters>);
  });

  it('turns GSO off for the link when the kernel refuses it and the same datagrams go out without', async () => {
    let gsoCalls = 0;
    const refusing: BraidNative = {
      ...native!,
      udpSendBatch: (...args: Parameters<BraidNative['udpSendBatch']>) => {
        if (args[9] === true) {
          gsoCalls++;
          return -5; // EIO: what a device without checksum offload answers
        }
        return native!.udpSendBatch(...args);
      },
    };
    const sender = openNative({}, refusing);
    const receiver = openNative();
    const got: Received[] = [];
    collect(receiver, got);
    const batch = new SendBatch();
    for (let i = 0; i < 10; i++) batch.push(datagram(i, 1000), { address: LOOPBACK, port: receiver.port }, 0);
    expect(sender.sendBatch(batch)).toBe(10);
    expect(sender.gso).toBe(false);
    expect(sender.gsoDisabledBy).toBe('EIO');
    expect(sender.sendBatch(batch)).toBe(10);
    expect(gsoCalls).toBe(1);
    await until(() => got.length === 20, 'both batches');
    expect(sender.counters.txDropped).toBe(0);
  });

  it('counts a batch on a closed link as dropped (EBADF) without throwing', () => {
    const sender = openNative();
    const batch = new SendBatch();
    batch.push(datagram(0, 10), { address: LOOPBACK, port: 9 }, 0);
    batch.push(datagram(1, 10), { address: LOOPBACK, port: 9 }, 0);
    sender.close();
    expect(sender.sendBatch(batch)).toBe(0);
    expect(sender.counters).toMatchObject({ txDropped: 2, lastTxError: 'EBADF' });
  });

  it('raw udpSendBatch: `first` skips what was sent, gso counts datagrams not messages', async () => {
    const addon = native!;
    const sender = addon.udpOpen({ bindAddress: LOOPBACK, port: 0 });
    const receiver = openNative();
    const got: Received[] = [];
    collect(receiver, got);
    try {
      const n = 6;
      const slab = Buffer.concat(Array.from({ length: n }, (_, i) => datagram(i, 256)));
      const offsets = Uint32Array.from({ length: n }, (_, i) => i * 256);
      const lengths = new Uint32Array(n).fill(256);
      const addrs = new Uint32Array(n).fill(0x7f000001);
      const ports = new Uint16Array(n).fill(receiver.port);
      expect(addon.udpSendBatch(sender.fd, slab, n, offsets, lengths, addrs, ports, null, 2, true)).toBe(4);
      expect(addon.udpSendBatch(sender.fd, slab, n, offsets, lengths, addrs, ports, null, 6, true)).toBe(0);
      expect(() => addon.udpSendBatch(sender.fd, slab, n, offsets, lengths, addrs, ports, null, 7)).toThrow(RangeError);
      await until(() => got.length === 4, 'datagrams 2..5');
      expect(got.map((r) => [r.seq, r.length, r.intact])).toEqual([2, 3, 4, 5].map((s) => [s, 256, true]));
    } finally {
      addon.closeFd(sender.fd);
    }
  });
});

describe('NodeDgramLink.sendBatch', () => {
  it('sends each datagram with send()', async () => {
    const sender = await NodeDgramLink.open({ bindAddress: LOOPBACK, port: 0 });
    const receiver = await NodeDgramLink.open({ bindAddress: LOOPBACK, port: 0 });
    opened.push(sender, receiver);
    const got: Received[] = [];
    collect(receiver, got);
    const batch = new SendBatch();
    for (let i = 0; i < 5; i++) batch.push(datagram(i, 50 + i), { address: LOOPBACK, port: receiver.port }, 46);
    expect(sender.sendBatch(batch)).toBe(5);
    await until(() => got.length === 5, 'five datagrams');
    expect(got.map((r) => [r.seq, r.length, r.intact])).toEqual([0, 1, 2, 3, 4].map((s) => [s, 50 + s, true]));
    expect(sender.counters.txDatagrams).toBe(5);
  });
});

// ---- Driver ------------------------------------------------------------------------------------

/** A link that records what it was asked to send; `batching` decides whether it has sendBatch. */
class RecordingLink implements UdpLink {
  readonly port = 1;
  readonly counters: UdpLinkCounters = { rxDatagrams: 0, rxBatches: 0, txDatagrams: 0, txDropped: 0, lastTxError: undefined };
  /** One entry per syscall-equivalent: a batch, or a single send. */
  readonly calls: { kind: 'batch' | 'send'; seqs: number[] }[] = [];
  sendBatch?: (batch: SendBatch) => number;

  constructor(batching: boolean, private readonly refuseSeq = -1) {
    if (batching) {
      this.sendBatch = (batch) => {
        const seqs = Array.from({ length: batch.count }, (_, i) => batch.datagram(i).readUInt32BE(0));
        this.calls.push({ kind: 'batch', seqs });
        const refused = seqs.filter((s) => s === this.refuseSeq).length;
        return batch.count - refused;
      };
    }
  }

  send(bytes: Uint8Array, to: UdpEndpoint): boolean {
    this.calls.push({ kind: 'send', seqs: [Buffer.from(bytes).readUInt32BE(0)] });
    return /^\d+\.\d+\.\d+\.\d+$/.test(to.address);
  }

  onDatagrams(): void {}
  close(): void {}
}

/** Just enough of an Edge for the driver: a queue of transmits to hand out. */
function fakeEdge(transmits: Transmit[]): Edge {
  return {
    pollDelivery: () => undefined,
    pollTransmit: () => transmits.shift(),
    pollEvent: () => undefined,
    pollTimeout: () => undefined,
  } as unknown as Edge;
}

const fakeTun: TunDevice = {
  name: 'fake',
  mtuBytes: 1420,
  counters: { rxPackets: 0, rxBatches: 0, txPackets: 0, txDropped: 0, lastTxError: undefined },
  onPackets: (_cb: (batch: PacketBatch) => void) => undefined,
  onError: () => undefined,
  write: () => true,
  close: () => undefined,
};

describe('Driver send batching', () => {
  const peer: Endpoint = { address: '10.0.0.2', port: 51900 };

  it('drains the transmits into one batch per link, 64 at most, in order; plain links get send()', () => {
    const transmits: Transmit[] = [];
    for (let seq = 0; seq < 150; seq++) transmits.push({ linkId: seq % 3 === 2 ? 1 : seq % 3 === 1 ? 2 : 0, to: peer, bytes: datagram(seq, 64), dscp: 0 } as Transmit);
    const links = [new RecordingLink(true), new RecordingLink(true), new RecordingLink(false)];
    const driver = new Driver({ edge: fakeEdge(transmits), tun: fakeTun, links });
    driver.start();
    const seqsOf = (id: number): number[] => Array.from({ length: 150 }, (_, s) => s).filter((s) => (s % 3 === 2 ? 1 : s % 3 === 1 ? 2 : 0) === id);
    expect(links[0]!.calls.every((c) => c.kind === 'batch')).toBe(true);
    expect(links[0]!.calls.flatMap((c) => c.seqs)).toEqual(seqsOf(0));
    expect(links[0]!.calls.map((c) => c.seqs.length)).toEqual([50]);
    expect(links[1]!.calls.flatMap((c) => c.seqs)).toEqual(seqsOf(1));
    expect(links[2]!.calls.every((c) => c.kind === 'send' && c.seqs.length === 1)).toBe(true);
    expect(links[2]!.calls.flatMap((c) => c.seqs)).toEqual(seqsOf(2));
    expect(driver.txRefused).toBe(0);

    transmits.push(...Array.from({ length: 130 }, (_, seq) => ({ linkId: 0, to: peer, bytes: datagram(1000 + seq, 64), dscp: 0 }) as Transmit));
    links[0]!.calls.length = 0;
    driver.command(() => undefined);
    expect(links[0]!.calls.map((c) => c.seqs.length)).toEqual([64, 64, 2]);
    expect(links[0]!.calls.flatMap((c) => c.seqs)).toEqual(Array.from({ length: 130 }, (_, i) => 1000 + i));
    driver.stop();
  });

  it('keeps the order around a transmit it cannot batch, and counts refusals', () => {
    const link = new RecordingLink(true, 3);
    const transmits = [0, 1, 2, 3, 4].map((seq) => ({ linkId: 0, to: seq === 2 ? { address: 'bogus', port: 1 } : peer, bytes: datagram(seq, 64), dscp: 0 }) as Transmit);
    transmits.push({ linkId: 7, to: peer, bytes: datagram(5, 64), dscp: 0 } as Transmit); // no such link
    const driver = new Driver({ edge: fakeEdge(transmits), tun: fakeTun, links: [link] });
    driver.start();
    expect(link.calls).toEqual([
      { kind: 'batch', seqs: [0, 1] },
      { kind: 'send', seqs: [2] },
      { kind: 'batch', seqs: [3, 4] },
    ]);
    // 2: bad endpoint (send refused it), 3: the link refused it in the batch, 5: unknown link.
    expect(driver.txRefused).toBe(3);
    driver.stop();
  });
});
