// In-memory UDP network (wireguard-go's conn/bindtest idea): FakeUdpLinks attached to one
// FakeUdpNetwork reach each other by address:port, with no sockets. Delivery is asynchronous
// (setImmediate per destination), batched like the native reader, poisoned after the callback
// like FakeTun, and the DSCP a sender chose arrives as the datagram's TOS byte. A test can drop
// or inspect datagrams with network.setFilter().

import type { DatagramBatch, UdpEndpoint, UdpLink, UdpLinkCounters } from '../../src/io/udp.ts';
import { dscpToTos } from '../../src/io/udp.ts';
import { formatIpv4, parseIpv4 } from '../../src/io/ipv4.ts';
import { writeV4Mapped } from '../../src/io/ipv6.ts';

const BATCH_MAX = 64;
const POISON_BYTE = 0xdd;
const FIRST_EPHEMERAL_PORT = 40_000;

interface FakeDatagram {
  readonly payload: Buffer;
  readonly fromAddressU32: number;
  readonly fromPort: number;
  readonly tos: number;
}

export interface FakeDatagramInfo {
  readonly from: UdpEndpoint;
  readonly to: UdpEndpoint;
  readonly bytes: Buffer;
  readonly dscp: number;
}

/** Returns false to drop the datagram. */
export type FakeUdpFilter = (datagram: FakeDatagramInfo) => boolean;

class ArrayDatagramBatch implements DatagramBatch {
  items: FakeDatagram[] = [];
  get count(): number {
    return this.items.length;
  }
  datagram(index: number): Buffer {
    return this.items[index].payload;
  }
  fromAddressU32(index: number): number {
    return this.items[index].fromAddressU32;
  }
  fromFamily(): 4 | 6 {
    return 4; // the fake network is IPv4 only
  }
  fromAddress6(index: number): Uint8Array {
    const out = new Uint8Array(16);
    writeV4Mapped(this.items[index].fromAddressU32, out);
    return out;
  }
  fromAddress(index: number): string {
    return formatIpv4(this.items[index].fromAddressU32);
  }
  fromPort(index: number): number {
    return this.items[index].fromPort;
  }
  tos(index: number): number {
    return this.items[index].tos;
  }
}

export class FakeUdpNetwork {
  readonly counters = { delivered: 0, filtered: 0, unreachable: 0 };
  private readonly links = new Map<string, FakeUdpLink>();
  private nextPort = FIRST_EPHEMERAL_PORT;
  private filter: FakeUdpFilter | undefined;

  /** Attaches a link at address:port (port 0 or omitted picks a free one). */
  createLink(address: string, port = 0): FakeUdpLink {
    if (parseIpv4(address) === undefined) throw new Error(`FakeUdpNetwork: bad address ${address}`);
    let chosen = port;
    if (chosen === 0) {
      while (this.links.has(`${address}:${this.nextPort}`)) this.nextPort++;
      chosen = this.nextPort++;
    }
    const key = `${address}:${chosen}`;
    if (this.links.has(key)) throw new Error(`FakeUdpNetwork: ${key} is in use (EADDRINUSE)`);
    const link = new FakeUdpLink(this, address, chosen);
    this.links.set(key, link);
    return link;
  }

  setFilter(filter: FakeUdpFilter | undefined): void {
    this.filter = filter;
  }

  /** @internal used by FakeUdpLink */
  route(from: FakeUdpLink, bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean {
    const copy = Buffer.from(bytes);
    const target = this.links.get(`${to.address}:${to.port}`);
    if (
      this.filter &&
      !this.filter({ from: from.endpoint, to, bytes: copy, dscp })
    ) {
      this.counters.filtered++;
      return true; // lost on the wire: the sender cannot tell
    }
    if (target === undefined) {
      this.counters.unreachable++;
      return true; // UDP: no listener is not a send error
    }
    this.counters.delivered++;
    target.enqueue({
      payload: copy,
      fromAddressU32: from.addressU32,
      fromPort: from.port,
      tos: dscpToTos(dscp),
    });
    return true;
  }

  /** @internal */
  detach(link: FakeUdpLink): void {
    this.links.delete(`${link.endpoint.address}:${link.port}`);
  }
}

export class FakeUdpLink implements UdpLink {
  readonly counters: UdpLinkCounters = {
    rxDatagrams: 0,
    rxBatches: 0,
    txDatagrams: 0,
    txDropped: 0,
    lastTxError: undefined,
  };
  readonly endpoint: UdpEndpoint;
  readonly addressU32: number;
  private pending: FakeDatagram[] = [];
  private scheduled = false;
  private closed = false;
  private datagramCallback: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch = new ArrayDatagramBatch();

  constructor(
    private readonly network: FakeUdpNetwork,
    address: string,
    readonly port: number,
  ) {
    this.endpoint = { address, port };
    this.addressU32 = parseIpv4(address) ?? 0;
  }

  send(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean {
    if (this.closed || parseIpv4(to.address) === undefined) {
      this.counters.txDropped++;
      this.counters.lastTxError = this.closed ? 'EBADF' : 'EINVAL';
      return false;
    }
    this.counters.txDatagrams++;
    return this.network.route(this, bytes, to, dscp);
  }

  onDatagrams(callback: (batch: DatagramBatch) => void): void {
    this.datagramCallback = callback;
    this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.network.detach(this);
  }

  /** Delivers everything queued now, synchronously. */
  flush(): void {
    this.scheduled = false;
    while (!this.closed && this.datagramCallback !== undefined && this.pending.length > 0) {
      const items = this.pending.splice(0, BATCH_MAX);
      this.batch.items = items;
      this.counters.rxDatagrams += items.length;
      this.counters.rxBatches++;
      this.datagramCallback(this.batch);
      for (const item of items) item.payload.fill(POISON_BYTE);
      this.batch.items = [];
    }
  }

  /** @internal */
  enqueue(datagram: FakeDatagram): void {
    if (this.closed) return;
    this.pending.push(datagram);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.datagramCallback === undefined || this.pending.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a microtask: two edges bouncing packets must still let timers run.
    setImmediate(() => this.flush());
  }
}
