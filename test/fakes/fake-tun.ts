// In-memory TunDevice (wireguard-go's tun/tuntest idea): the test plays the LAN.
//   fromLan(packet)  -> the device delivers it to onPackets, as a read from the kernel would
//   write(packet)    -> recorded in toLan (and passed to onToLan), as the kernel would route it
// Delivery is asynchronous (setImmediate), batched up to BATCH_MAX like the native reader, and the
// batch buffers are poisoned after each callback so a consumer that keeps a borrowed view past
// its callback (breaking the PacketBatch contract) sees garbage in a test, not in production.

import type { PacketBatch, TunCounters, TunDevice } from '../../src/io/tun.ts';

const BATCH_MAX = 64;
const POISON_BYTE = 0xdd;

export interface FakeTunOptions {
  readonly name?: string;
  readonly mtuBytes?: number;
  /** Poison delivered buffers after the callback (default true). */
  readonly poison?: boolean;
}

class ArrayPacketBatch implements PacketBatch {
  packets: Buffer[] = [];
  get count(): number {
    return this.packets.length;
  }
  packet(index: number): Buffer {
    return this.packets[index];
  }
  lengthBytes(index: number): number {
    return this.packets[index].length;
  }
}

export class FakeTun implements TunDevice {
  readonly name: string;
  readonly mtuBytes: number;
  readonly counters: TunCounters = {
    rxPackets: 0,
    rxBatches: 0,
    txPackets: 0,
    txDropped: 0,
    lastTxError: undefined,
  };
  /** Packets the edge wrote towards the LAN, copied, in order. */
  readonly toLan: Buffer[] = [];
  private pending: Buffer[] = [];
  private scheduled = false;
  private closed = false;
  private readonly poison: boolean;
  private packetCallback: ((batch: PacketBatch) => void) | undefined;
  private toLanCallback: ((packet: Buffer) => void) | undefined;
  private readonly batch = new ArrayPacketBatch();

  constructor(options: FakeTunOptions = {}) {
    this.name = options.name ?? 'faketun0';
    this.mtuBytes = options.mtuBytes ?? 1420;
    this.poison = options.poison ?? true;
  }

  /** The LAN sends a packet into the device (copied now, delivered on setImmediate). */
  fromLan(packet: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(Buffer.from(packet));
    this.schedule();
  }

  /** Called for each packet the edge writes towards the LAN. */
  onToLan(callback: (packet: Buffer) => void): void {
    this.toLanCallback = callback;
  }

  onPackets(callback: (batch: PacketBatch) => void): void {
    this.packetCallback = callback;
    this.schedule();
  }

  onError(_callback: (error: Error) => void): void {
    // An in-memory device has no fatal read errors.
  }

  write(packet: Uint8Array): boolean {
    if (this.closed || packet.length > this.mtuBytes) {
      this.counters.txDropped++;
      this.counters.lastTxError = this.closed ? 'EBADF' : 'EMSGSIZE';
      return false;
    }
    const copy = Buffer.from(packet); // the kernel copies: the caller may reuse its buffer
    this.counters.txPackets++;
    this.toLan.push(copy);
    this.toLanCallback?.(copy);
    return true;
  }

  close(): void {
    this.closed = true;
    this.pending = [];
  }

  /** Delivers everything queued now, synchronously (for tests that do not want to await). */
  flush(): void {
    this.scheduled = false;
    while (!this.closed && this.packetCallback !== undefined && this.pending.length > 0) {
      const packets = this.pending.splice(0, BATCH_MAX);
      this.batch.packets = packets;
      this.counters.rxPackets += packets.length;
      this.counters.rxBatches++;
      this.packetCallback(this.batch);
      if (this.poison) for (const packet of packets) packet.fill(POISON_BYTE);
      this.batch.packets = [];
    }
  }

  private schedule(): void {
    if (this.scheduled || this.packetCallback === undefined || this.pending.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a microtask: two edges bouncing packets must still let timers run.
    setImmediate(() => this.flush());
  }
}
