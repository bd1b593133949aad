/**
 * Stand-ins for the TUN and the link sockets, so that the warm-up pair (jit-warmup.ts) runs
 * through the real Driver: its batch loops, SourceEndpointCache, SendBatch and the TUN write
 * branch get compiled with the Endpoint's code instead of running in V8's interpreter at the real
 * edge's first packets (issue 13: the shell's functions were not warmed at all). Nothing here
 * touches a file descriptor: "sent" datagrams are copied into the far side's next batch and
 * "written" packets are counted.
 *
 * The batches hand out Buffer views into one slab per batch, slot by slot, as the addon's readers
 * do, so the compiled code sees the same kind of objects as with the real devices.
 */
import { Buffer } from 'node:buffer';
import { formatIpv4 } from './ipv4.ts';
import { writeV4Mapped } from './ipv6.ts';
import type { PacketBatch, TunCounters, TunDevice } from './tun.ts';
import type { DatagramBatch, SendBatch, UdpEndpoint, UdpLink, UdpLinkCounters } from './udp.ts';

/** Bytes per slot: any datagram or packet of the pair (full-size data is ~1,450 bytes). */
const SLOT_BYTES = 2048;
/** Packets per batch, as the addon's (a batch that is full drops the rest: counted). */
const BATCH_MAX = 64;

/** One batch over one slab, for the TUN side (PacketBatch) and the link side (DatagramBatch). */
export class WarmBatch implements PacketBatch, DatagramBatch {
  count = 0;
  /** Packets that did not fit (more than BATCH_MAX, or larger than a slot). */
  dropped = 0;
  // A plain Uint8Array, as the real batches hand out (the JIT warms the same shapes).
  private readonly slab = new Uint8Array(SLOT_BYTES * BATCH_MAX);
  private readonly lengths = new Uint32Array(BATCH_MAX);
  private readonly address6 = new Uint8Array(16);

  /** `fromU32`/`port`: the source every datagram of the batch has (the link side). */
  constructor(
    private readonly fromU32 = 0,
    private readonly port = 0,
  ) {}

  add(bytes: Uint8Array): boolean {
    if (this.count >= BATCH_MAX || bytes.length > SLOT_BYTES) {
      this.dropped++;
      return false;
    }
    this.slab.set(bytes, this.count * SLOT_BYTES);
    this.lengths[this.count++] = bytes.length;
    return true;
  }

  packet(index: number): Uint8Array {
    const start = index * SLOT_BYTES;
    return this.slab.subarray(start, start + this.lengths[index]!);
  }

  datagram(index: number): Uint8Array {
    return this.packet(index);
  }

  lengthBytes(index: number): number {
    return this.lengths[index]!;
  }

  fromAddressU32(): number {
    return this.fromU32;
  }

  fromFamily(): 4 | 6 {
    return 4;
  }

  fromAddress6(): Uint8Array {
    writeV4Mapped(this.fromU32, this.address6);
    return this.address6;
  }

  fromAddress(): string {
    return formatIpv4(this.fromU32);
  }

  fromPort(): number {
    return this.port;
  }

  tos(): number {
    return 0;
  }
}

/** The TUN: feed() hands the Driver a batch, as the reader does; writes are counted. */
export class WarmTun implements TunDevice {
  readonly name = 'warm';
  readonly counters: TunCounters = { rxPackets: 0, rxBatches: 0, txPackets: 0, txDropped: 0, lastTxError: undefined };
  private callback: ((batch: PacketBatch) => void) | undefined;
  private readonly batch = new WarmBatch();

  /** `offload`: as the real TUN has it, so that the Driver's write branch is the one it will take. */
  constructor(
    readonly mtuBytes: number,
    readonly offload: boolean,
  ) {}

  onPackets(callback: (batch: PacketBatch) => void): void {
    this.callback = callback;
  }

  onError(): void {}

  feed(packets: readonly Uint8Array[]): void {
    const batch = this.batch;
    batch.count = 0;
    for (const p of packets) batch.add(p);
    this.counters.rxPackets += batch.count;
    this.counters.rxBatches++;
    this.callback?.(batch);
  }

  write(): boolean {
    this.counters.txPackets++;
    return true;
  }

  queueWrite(): boolean {
    this.counters.txPackets++;
    return true;
  }

  flushWrites(): number {
    return 0;
  }

  close(): void {}
}

/** A link socket: what the Driver sends waits in `outbox` until deliverTo() hands it to the far side. */
export class WarmLink implements UdpLink {
  readonly counters: UdpLinkCounters = { rxDatagrams: 0, rxBatches: 0, txDatagrams: 0, txDropped: 0, lastTxError: undefined, txTooBig: 0 };
  private callback: ((batch: DatagramBatch) => void) | undefined;
  private readonly outbox: WarmBatch;

  /** `addressU32`, `port`: this side's address, the source the far side sees. */
  constructor(
    addressU32: number,
    readonly port: number,
  ) {
    this.outbox = new WarmBatch(addressU32, port);
  }

  send(bytes: Uint8Array, _to: UdpEndpoint, _dscp: number): boolean {
    return this.queue(bytes);
  }

  sendBatch(batch: SendBatch): number {
    let sent = 0;
    for (let i = 0; i < batch.count; i++) if (this.queue(batch.datagram(i))) sent++;
    return sent;
  }

  private queue(bytes: Uint8Array): boolean {
    if (!this.outbox.add(bytes)) {
      this.counters.txDropped++;
      return false;
    }
    this.counters.txDatagrams++;
    return true;
  }

  onDatagrams(callback: (batch: DatagramBatch) => void): void {
    this.callback = callback;
  }

  /** Hands what this side sent to `far`'s Driver as one received batch; false when there was nothing. */
  deliverTo(far: WarmLink): boolean {
    const batch = this.outbox;
    if (batch.count === 0) return false;
    far.counters.rxDatagrams += batch.count;
    far.counters.rxBatches++;
    far.callback?.(batch);
    batch.count = 0;
    return true;
  }

  close(): void {}
}
