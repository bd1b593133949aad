/**
 * Driver: the shell's one loop. Feeds the Edge its inputs (TUN batches, link datagram batches,
 * the one timer) and drains its outputs (transmits to link sockets, deliveries to the TUN,
 * events to the logger). It holds no policy.
 *
 * Stages per input batch, in order:
 *   1. edge.handleTunPacket / handleDatagram for every packet of the batch (borrowed views)
 *   2. drain pollDelivery -> tun.write (before the batch's memory is reused: Edge buffer contract);
 *      with TUN offloads, tun.queueWrite (a copy) then one tun.flushWrites, which coalesces
 *   3. drain pollTransmit into one SendBatch per link (bytes copied into the batch's slab), and
 *      send each with link.sendBatch: one sendmmsg per link per 64 datagrams, runs of equal-sized
 *      datagrams as one UDP GSO message each, instead of one sendmsg per datagram (links without
 *      sendBatch get link.send per datagram). docs/BENCHMARKS.md "Hot path" has what each bought.
 *   4. drain pollEvent -> onEvent
 *   5. re-arm the timer if the Edge's next deadline moved earlier
 */
import type { Endpoint as Edge } from '../core/endpoint.ts';
import type { EdgeEvent } from '../core/types.ts';
import { monotonicNowMs } from './clock.ts';
import type { TunDevice, PacketBatch } from './tun.ts';
import { SendBatch, type UdpLink, type DatagramBatch } from './udp.ts';
import { SourceEndpointCache } from './source-endpoints.ts';

export interface DriverOptions {
  edge: Edge;
  tun: TunDevice;
  /** By link id (same order as the Edge's links). */
  links: UdpLink[];
  onEvent?: (event: EdgeEvent) => void;
  now?: () => number;
}

export class Driver {
  private readonly edge: Edge;
  private readonly tun: TunDevice;
  private readonly links: UdpLink[];
  private readonly onEvent: (event: EdgeEvent) => void;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private armedAtMs = Infinity;
  /** Source endpoints of received datagrams (both families), one object per source. */
  private readonly endpoints = new SourceEndpointCache();
  /** Per link (same index), reused for every flush; undefined for links without sendBatch. */
  private readonly sendBatches: (SendBatch | undefined)[];
  private stopped = false;
  /** Count of sends the sockets refused (also counted by each link). */
  txRefused = 0;
  tunWriteRefused = 0;

  constructor(opts: DriverOptions) {
    this.edge = opts.edge;
    this.tun = opts.tun;
    this.links = opts.links;
    this.onEvent = opts.onEvent ?? (() => undefined);
    this.now = opts.now ?? monotonicNowMs;
    this.sendBatches = this.links.map((link) => (link.sendBatch ? new SendBatch() : undefined));
  }

  start(): void {
    this.tun.onPackets((batch) => this.onTunBatch(batch));
    this.links.forEach((link, id) => link.onDatagrams((batch) => this.onLinkBatch(id, batch)));
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs `fn` against the Edge (operator commands) and then drains its outputs. */
  command(fn: (edge: Edge, nowMs: number) => void): void {
    fn(this.edge, this.now());
    this.flush();
  }

  private onTunBatch(batch: PacketBatch): void {
    const now = this.now();
    for (let i = 0; i < batch.count; i++) this.edge.handleTunPacket(now, batch.packet(i));
    this.flush();
  }

  private onLinkBatch(linkId: number, batch: DatagramBatch): void {
    const now = this.now();
    for (let i = 0; i < batch.count; i++) {
      this.edge.handleDatagram(now, linkId, this.endpoints.get(batch, i), batch.datagram(i));
    }
    this.flush();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.armedAtMs = Infinity;
    if (this.stopped) return;
    const now = this.now();
    const due = this.edge.pollTimeout();
    if (due !== undefined && due <= now) this.edge.handleTimeout(now);
    this.flush();
  }

  private flush(): void {
    const edge = this.edge;
    const tun = this.tun;
    if (tun.queueWrite !== undefined && tun.flushWrites !== undefined && tun.offload === true) {
      // TUN offloads: the batch's deliveries are copied out now and written together, so a
      // flow's in-order TCP segments reach the kernel as one super-segment (one TCP receive).
      for (let p = edge.pollDelivery(); p; p = edge.pollDelivery()) {
        if (!tun.queueWrite(p)) this.tunWriteRefused++;
      }
      this.tunWriteRefused += tun.flushWrites();
    } else {
      for (let p = edge.pollDelivery(); p; p = edge.pollDelivery()) {
        if (!tun.write(p)) this.tunWriteRefused++;
      }
    }
    let queued = false;
    for (let t = edge.pollTransmit(); t; t = edge.pollTransmit()) {
      const link = this.links[t.linkId];
      if (!link) {
        this.txRefused++;
        continue;
      }
      const batch = this.sendBatches[t.linkId];
      if (batch === undefined) {
        if (!link.send(t.bytes, t.to, t.dscp)) this.txRefused++;
        continue;
      }
      if (batch.isFullFor(t.bytes.length)) this.sendBatch(link, batch);
      if (batch.push(t.bytes, t.to, t.dscp)) {
        queued = true;
        continue;
      }
      // Not batchable (oversized, or an endpoint send() will refuse and count): keep the order.
      this.sendBatch(link, batch);
      if (!link.send(t.bytes, t.to, t.dscp)) this.txRefused++;
    }
    if (queued) {
      for (let id = 0; id < this.links.length; id++) {
        const batch = this.sendBatches[id];
        if (batch !== undefined && batch.count > 0) this.sendBatch(this.links[id]!, batch);
      }
    }
    for (let e = edge.pollEvent(); e; e = edge.pollEvent()) this.onEvent(e);
    this.arm();
  }

  private sendBatch(link: UdpLink, batch: SendBatch): void {
    if (batch.count === 0) return;
    const sent = link.sendBatch!(batch);
    this.txRefused += batch.count - sent;
    batch.clear();
  }

  private arm(): void {
    if (this.stopped) return;
    const due = this.edge.pollTimeout();
    if (due === undefined) return;
    // Re-arm only when the deadline moved earlier: clearTimeout/setTimeout per batch is not free.
    if (this.timer && due >= this.armedAtMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAtMs = due;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, due - this.now()));
  }
}
