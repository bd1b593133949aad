/**
 * Edge: the whole overlay protocol of one branch box as a deterministic state machine
 * (quinn-proto's design). It owns no socket, no file and no timer and never reads the clock:
 * time arrives as `nowMs` (monotonic milliseconds, any origin), randomness from an injected Rng.
 *
 * Call order (the shell's loop, src/io/driver.ts; the simulator's World does the same in virtual time):
 *   inputs   handleTunPacket(now, packet)          an inner IP packet from the site
 *            handleDatagram(now, linkId, from, b)  an overlay datagram from a WAN link
 *            handleTimeout(now)                    when now >= pollTimeout()
 *            setLinkAdmin(now, linkId, drained)    operator commands
 *   outputs  pollTransmit()  -> Transmit | undefined   datagrams to send, in order
 *            pollDelivery()  -> Uint8Array | undefined inner packets for the TUN, in order
 *            pollTimeout()   -> number | undefined     the next deadline (absolute ms)
 *            pollEvent()     -> EdgeEvent | undefined  state changes with reasons
 *            snapshot(now)   -> EdgeSnapshot           counters and link state
 * After any input, the shell drains the poll* outputs and re-arms its one timer to pollTimeout().
 *
 * Buffer contract: `handleDatagram` may hand out views into `datagram` through pollDelivery, so
 * the shell must not reuse that buffer until it has drained pollDelivery. `handleTunPacket` copies
 * what it needs: the packet buffer may be reused as soon as the call returns.
 *
 * Per-packet problems never throw: they are counted in snapshot().drops.
 *
 * Issue-2 scope: one peer, plaintext frames, liveness = "heard anything in the last second".
 * Flows (inner 5-tuple hash) stick to a live link; when their link dies they move.
 */
import {
  FLOW_IDLE_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  LINK_DEAD_AFTER_MS,
  MAX_DELIVERY_QUEUE,
  MAX_EVENT_QUEUE,
  MAX_FLOWS,
  MAX_INNER_PACKET_BYTES,
  MAX_LINKS,
  MAX_TRANSMIT_QUEUE,
  RECENT_EVENTS_KEPT,
} from './constants.ts';
import { newInnerInfo, parseInner } from './inner.ts';
import type { Rng } from './rng.ts';
import {
  DROP_REASONS,
  formatEndpoint,
  type DropReason,
  type EdgeEvent,
  type EdgeEventKind,
  type EdgeSnapshot,
  type Endpoint,
  type LinkSnapshot,
  type Transmit,
} from './types.ts';
import { decodeEnvelope, decodeFrame, encodeDataDatagram, encodeEnvelope, encodeFrame, type Frame } from './wire/codec.ts';
import { Fifo } from './fifo.ts';

export interface EdgeLinkConfig {
  /** Operator's name for the link ("mpls", "inet", "lte"). */
  name: string;
  /** The peer's endpoint reached over this link. */
  remote: Endpoint;
  /** Outer DSCP for this link's traffic until per-class marking lands (issue 5). */
  dscp?: number;
}

export interface EdgeConfig {
  site: string;
  /** Links by index: the index is the link id on the wire and in Transmit.linkId. */
  links: EdgeLinkConfig[];
  keepaliveIntervalMs?: number;
  linkDeadAfterMs?: number;
  flowIdleTimeoutMs?: number;
  maxFlows?: number;
}

/** Timers live in a table keyed by this enum; the shell arms one OS timer for the earliest. */
const enum Timer {
  Keepalive = 0,
  FlowSweep = 1,
  Count = 2,
}

interface LinkRuntime {
  id: number;
  name: string;
  remote: Endpoint;
  dscp: number;
  /** Undefined until the first datagram. */
  lastHeardMs: number | undefined;
  up: boolean;
  drained: boolean;
  pathSeq: number;
  probeSeq: number;
  srttMs: number | undefined;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  txDataPackets: number;
  rxDataPackets: number;
  peerLinkName: string | undefined;
  helloSent: boolean;
}

interface FlowEntry {
  linkId: number;
  lastSeenMs: number;
}

export class Edge {
  private readonly site: string;
  private readonly links: LinkRuntime[];
  private readonly keepaliveIntervalMs: number;
  private readonly linkDeadAfterMs: number;
  private readonly flowIdleTimeoutMs: number;
  private readonly maxFlows: number;
  private readonly startMs: number;
  private readonly rng: Rng;

  private readonly timers = new Float64Array(Timer.Count).fill(Infinity);
  private readonly transmits = new Fifo<Transmit>();
  private readonly deliveries = new Fifo<Uint8Array>();
  private readonly events = new Fifo<EdgeEvent>();
  private readonly recentEvents: EdgeEvent[] = [];
  private readonly flows = new Map<number, FlowEntry>();
  private readonly drops: Record<DropReason, number>;
  private readonly inner = newInnerInfo();
  /** Scratch list of usable link ids, rebuilt when link states change. */
  private usable: number[] = [];
  private tunPacketsIn = 0;
  private deliveredPackets = 0;

  constructor(config: EdgeConfig, nowMs: number, rng: Rng) {
    if (config.links.length > MAX_LINKS) throw new Error(`at most ${MAX_LINKS} links`);
    this.site = config.site;
    this.rng = rng;
    this.keepaliveIntervalMs = config.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS;
    this.linkDeadAfterMs = config.linkDeadAfterMs ?? LINK_DEAD_AFTER_MS;
    this.flowIdleTimeoutMs = config.flowIdleTimeoutMs ?? FLOW_IDLE_TIMEOUT_MS;
    this.maxFlows = config.maxFlows ?? MAX_FLOWS;
    this.startMs = nowMs;
    this.links = config.links.map((l, id) => ({
      id,
      name: l.name,
      remote: { ...l.remote },
      dscp: l.dscp ?? 0,
      lastHeardMs: undefined,
      // Optimistic at start: a link is usable until it has been silent for linkDeadAfterMs.
      up: true,
      drained: false,
      pathSeq: 0,
      probeSeq: 0,
      srttMs: undefined,
      txPackets: 0,
      txBytes: 0,
      rxPackets: 0,
      rxBytes: 0,
      txDataPackets: 0,
      rxDataPackets: 0,
      peerLinkName: undefined,
      helloSent: false,
    }));
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
    this.rebuildUsable();
    // Spread the first probes of many edges started at once (a fleet reboot) over one interval.
    this.timers[Timer.Keepalive] = nowMs + Math.floor(this.rng.nextFloat() * Math.min(this.keepaliveIntervalMs, 10));
    this.timers[Timer.FlowSweep] = nowMs + 1000;
  }

  // ---- inputs ------------------------------------------------------------------------------

  handleTunPacket(nowMs: number, packet: Uint8Array): void {
    this.tunPacketsIn++;
    if (packet.length > MAX_INNER_PACKET_BYTES) return this.drop('tooLarge');
    const info = parseInner(packet, this.inner);
    if (!info) return this.drop('badInner');
    const linkId = this.chooseLink(nowMs, info.flowHash);
    if (linkId < 0) return this.drop('noLink');
    const link = this.links[linkId]!;
    link.pathSeq = (link.pathSeq + 1) >>> 0;
    const bytes = encodeDataDatagram(0, 0, linkId, link.pathSeq, packet);
    link.txDataPackets++;
    this.transmit(link, bytes);
  }

  handleDatagram(nowMs: number, linkId: number, from: Endpoint, datagram: Uint8Array): void {
    const link = this.links[linkId];
    if (!link) return this.drop('unknownLink');
    link.rxPackets++;
    link.rxBytes += datagram.length;
    const env = decodeEnvelope(datagram);
    if (!env.ok) return this.drop(env.reason);
    const frame = decodeFrame(env.value.sealed);
    if (!frame.ok) return this.drop(frame.reason);
    this.heard(nowMs, link);
    this.handleFrame(nowMs, link, from, frame.value);
  }

  handleTimeout(nowMs: number): void {
    if (nowMs >= this.timers[Timer.Keepalive]!) {
      this.checkLiveness(nowMs);
      for (const link of this.links) this.sendProbe(nowMs, link);
      this.timers[Timer.Keepalive] = nowMs + this.keepaliveIntervalMs;
    }
    if (nowMs >= this.timers[Timer.FlowSweep]!) {
      this.sweepFlows(nowMs);
      this.timers[Timer.FlowSweep] = nowMs + 1000;
    }
  }

  /** Operator drain: a drained link carries no data (probes continue so its state stays known). */
  setLinkAdmin(nowMs: number, linkId: number, drained: boolean): void {
    const link = this.links[linkId];
    if (!link || link.drained === drained) return;
    link.drained = drained;
    this.rebuildUsable();
    this.emit(nowMs, drained ? 'linkDown' : 'linkUp', link.name, `${link.name} ${drained ? 'drained' : 'undrained'} by operator`);
  }

  // ---- outputs -----------------------------------------------------------------------------

  pollTransmit(): Transmit | undefined {
    return this.transmits.shift();
  }

  pollDelivery(): Uint8Array | undefined {
    return this.deliveries.shift();
  }

  pollTimeout(): number | undefined {
    let t = Infinity;
    for (let i = 0; i < Timer.Count; i++) if (this.timers[i]! < t) t = this.timers[i]!;
    return t === Infinity ? undefined : t;
  }

  pollEvent(): EdgeEvent | undefined {
    return this.events.shift();
  }

  snapshot(nowMs: number): EdgeSnapshot {
    const links: LinkSnapshot[] = this.links.map((l) => ({
      id: l.id,
      name: l.name,
      state: l.up && !l.drained ? 'up' : 'down',
      remote: formatEndpoint(l.remote),
      rttMs: l.srttMs,
      lastHeardAgoMs: l.lastHeardMs === undefined ? undefined : nowMs - l.lastHeardMs,
      txPackets: l.txPackets,
      txBytes: l.txBytes,
      rxPackets: l.rxPackets,
      rxBytes: l.rxBytes,
      txDataPackets: l.txDataPackets,
      rxDataPackets: l.rxDataPackets,
      peerLinkName: l.peerLinkName,
    }));
    return {
      nowMs,
      site: this.site,
      links,
      flows: this.flows.size,
      tunPacketsIn: this.tunPacketsIn,
      deliveredPackets: this.deliveredPackets,
      drops: { ...this.drops },
      recentEvents: this.recentEvents.slice(),
    };
  }

  // ---- internals ---------------------------------------------------------------------------

  private handleFrame(nowMs: number, link: LinkRuntime, from: Endpoint, frame: Frame): void {
    switch (frame.kind) {
      case 'data':
        link.rxDataPackets++;
        this.deliver(frame.data.packet);
        return;
      case 'probe': {
        const p = frame.probe;
        const reply = encodeFrame({ kind: 'probeReply', probeReply: { link: link.id, seq: p.seq, txUs: p.txUs, holdUs: 0 } });
        // Reply to where the probe came from: the reply path is the probe's path reversed.
        this.transmitTo(link, from, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: reply }));
        if (!link.helloSent) this.sendHello(link);
        return;
      }
      case 'probeReply': {
        const r = frame.probeReply;
        const rttMs = Math.max(0, nowMs - r.txUs / 1000 - r.holdUs / 1000);
        link.srttMs = link.srttMs === undefined ? rttMs : link.srttMs + (rttMs - link.srttMs) / 8;
        return;
      }
      case 'control': {
        const hello = frame.control.hello;
        if (hello && hello.linkName !== link.peerLinkName) {
          link.peerLinkName = hello.linkName;
          this.emit(nowMs, 'peerHello', link.name, `${link.name}: peer ${hello.site} link ${hello.linkName}`);
        }
        return;
      }
      case 'fecParity':
        return; // FEC lands with issue 5
    }
  }

  private heard(nowMs: number, link: LinkRuntime): void {
    link.lastHeardMs = nowMs;
    if (!link.up) {
      link.up = true;
      this.rebuildUsable();
      this.emit(nowMs, 'linkUp', link.name, `${link.name} up (heard from peer)`);
    }
  }

  private checkLiveness(nowMs: number): void {
    let changed = false;
    for (const link of this.links) {
      const since = link.lastHeardMs ?? this.startMs;
      if (link.up && nowMs - since >= this.linkDeadAfterMs) {
        link.up = false;
        changed = true;
        this.emit(nowMs, 'linkDown', link.name, `${link.name} down (nothing heard for ${Math.round(nowMs - since)} ms)`);
      }
    }
    if (changed) this.rebuildUsable();
  }

  private rebuildUsable(): void {
    this.usable = this.links.filter((l) => l.up && !l.drained).map((l) => l.id);
  }

  /** Sticky per-flow choice: a flow stays on its link while that link is usable. */
  private chooseLink(nowMs: number, flowHash: number): number {
    if (this.links.length === 0) return -1;
    const flow = this.flows.get(flowHash);
    if (flow) {
      const link = this.links[flow.linkId]!;
      if (link.up && !link.drained) {
        flow.lastSeenMs = nowMs;
        return flow.linkId;
      }
    }
    // No usable link at all: still try every link rather than black-holing the site.
    const candidates = this.usable.length > 0 ? this.usable : this.links.map((l) => l.id);
    const linkId = candidates[flowHash % candidates.length]!;
    if (flow) {
      const from = this.links[flow.linkId]!.name;
      flow.linkId = linkId;
      flow.lastSeenMs = nowMs;
      this.emit(nowMs, 'flowMoved', this.links[linkId]!.name, `flow ${flowHash.toString(16)}: ${from} -> ${this.links[linkId]!.name} (${from} down)`);
    } else {
      if (this.flows.size >= this.maxFlows) {
        // Map iterates in insertion order: the first key is the oldest-created flow.
        const oldest = this.flows.keys().next().value;
        if (oldest !== undefined) this.flows.delete(oldest);
      }
      this.flows.set(flowHash, { linkId, lastSeenMs: nowMs });
    }
    return linkId;
  }

  private sweepFlows(nowMs: number): void {
    for (const [hash, flow] of this.flows) {
      if (nowMs - flow.lastSeenMs > this.flowIdleTimeoutMs) this.flows.delete(hash);
    }
  }

  private sendProbe(nowMs: number, link: LinkRuntime): void {
    link.probeSeq = (link.probeSeq + 1) >>> 0;
    const frame = encodeFrame({
      kind: 'probe',
      probe: { link: link.id, seq: link.probeSeq, txUs: Math.round(nowMs * 1000), dscp: link.dscp },
    });
    this.transmit(link, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: frame }));
  }

  private sendHello(link: LinkRuntime): void {
    link.helloSent = true;
    const frame = encodeFrame({ kind: 'control', control: { hello: { link: link.id, linkName: link.name, site: this.site } } });
    this.transmit(link, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: frame }));
  }

  private transmit(link: LinkRuntime, bytes: Uint8Array): void {
    this.transmitTo(link, link.remote, bytes);
  }

  private transmitTo(link: LinkRuntime, to: Endpoint, bytes: Uint8Array): void {
    if (this.transmits.length >= MAX_TRANSMIT_QUEUE) return this.drop('transmitQueueFull');
    link.txPackets++;
    link.txBytes += bytes.length;
    this.transmits.push({ linkId: link.id, to, dscp: link.dscp, bytes });
  }

  private deliver(packet: Uint8Array): void {
    if (this.deliveries.length >= MAX_DELIVERY_QUEUE) return this.drop('deliveryQueueFull');
    this.deliveredPackets++;
    this.deliveries.push(packet);
  }

  private drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  private emit(atMs: number, kind: EdgeEventKind, link: string | undefined, message: string): void {
    const event: EdgeEvent = link === undefined ? { atMs, kind, message } : { atMs, kind, link, message };
    if (this.events.length >= MAX_EVENT_QUEUE) this.events.shift();
    this.events.push(event);
    this.recentEvents.push(event);
    if (this.recentEvents.length > RECENT_EVENTS_KEPT) this.recentEvents.shift();
  }
}
