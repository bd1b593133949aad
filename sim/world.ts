/**
 * World: two core Edge engines joined by in-memory WAN links, in virtual time.
 *
 * The loop jumps from event to event (a datagram arriving, an edge timer, a scheduled action),
 * so a minute of traffic runs in milliseconds. One seed drives everything: the edges' Rngs and
 * every loss/jitter draw, so a failing run is reproduced by its seed (TigerBeetle's VOPR idea).
 *
 *   const w = new World({ seed: 7, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
 *   w.every(20, { count: 500 }, (i) => w.a.sendTun(makePacket({...flowSpec(1, 200), seq: i})));
 *   w.impairAt(3000, 'mpls', { up: false });
 *   w.runFor(12_000);
 *   w.b.deliveredCount; w.linkStats('mpls').ab.delivered;
 *
 * Link directions: "ab" carries what site A sends to site B, "ba" the reverse.
 */
import { Edge, type EdgeConfig } from '../src/core/edge.ts';
import { SeededRng, type Rng } from '../src/core/rng.ts';
import type { EdgeEvent, Endpoint } from '../src/core/types.ts';
import { MinHeap } from './heap.ts';
import { NetemEngine } from './netem/engine.ts';
import { copyBytes } from '../src/core/bytes.ts';
import { generateKeyPair, type X25519KeyPair } from '../src/core/crypto/keys.ts';
import { parseNetemSpec } from './netem/spec.ts';
import type { AeadFactory } from '../src/core/crypto/transport.ts';

/** Impairment of one direction of one link. Later issues plug netem specs in here. */
export interface Impairment {
  /** False: the link is cut, everything sent is lost. */
  up: boolean;
  /** One-way base delay. */
  delayMs: number;
  /** Uniform jitter: each packet gets delayMs + U(-jitterMs, +jitterMs), never below 0. */
  jitterMs: number;
  /** Independent random loss probability. */
  lossRatio: number;
  /** Serialization rate; 0 = unlimited. Packets queue behind each other at this rate. */
  rateBps: number;
  /** Queue limit in packets when rate-limited (netem's `limit`); excess is dropped. */
  queueLimitPackets: number;
}

export interface WorldLinkConfig extends Partial<Impairment> {
  name: string;
  /**
   * Impairment in netem's own syntax ("delay 30ms 5ms loss gemodel 1% 20% rate 20mbit"), run by
   * the userspace netem engine. When set it replaces the simple impairment fields.
   */
  netem?: string;
  abNetem?: string;
  baNetem?: string;
  /** Edge settings of this link on both sites. */
  costTier?: 'primary' | 'overflow' | 'backup';
  bandwidthBps?: number;
  /** Overrides for one direction only. */
  ab?: Partial<Impairment>;
  ba?: Partial<Impairment>;
}

export interface WorldConfig {
  seed: number;
  links: WorldLinkConfig[];
  /** Extra Edge settings applied to both sites. */
  edge?: Partial<Omit<EdgeConfig, 'links' | 'site'>>;
  /** Keep every delivered packet (with its arrival time) in site.delivered. Default true. */
  recordDeliveries?: boolean;
  /** Run the overlay unencrypted (benchmark comparisons only). Default false: Noise IK keys from the seed. */
  insecurePlaintext?: boolean;
  /** Virtual wall-clock epoch at t = 0 (handshake timestamps). */
  wallClockEpochMs?: number;
  /** Data AEAD for both Edges (EdgeCryptoConfig.aead); default the core's node:crypto one. */
  aead?: AeadFactory;
}

export interface DirectionStats {
  sent: number;
  lost: number;
  delivered: number;
  bytes: number;
}

export interface Delivery {
  atMs: number;
  bytes: Uint8Array;
}

const DEFAULT_IMPAIRMENT: Impairment = { up: true, delayMs: 10, jitterMs: 0, lossRatio: 0, rateBps: 0, queueLimitPackets: 1000 };

interface WirePacket {
  bytes: Uint8Array;
  site: Site;
  linkId: number;
  from: Endpoint;
}

class Direction {
  impairment: Impairment;
  readonly stats: DirectionStats = { sent: 0, lost: 0, delivered: 0, bytes: 0 };
  /** Userspace netem replacing the simple impairment, when a netem spec is set. */
  netem: NetemEngine<WirePacket> | undefined;
  /** Time of the poll already scheduled for `netem` (avoids one event per packet). */
  netemPollAtMs = Infinity;
  /** Engine drops already added to stats.lost. */
  netemDroppedSeen = 0;
  /** When the rate-limited link is next free. */
  private busyUntilMs = 0;
  private queued = 0;

  constructor(impairment: Impairment) {
    this.impairment = impairment;
  }

  /** Returns the arrival time, or undefined when the packet is lost. */
  admit(nowMs: number, sizeBytes: number, rng: Rng): number | undefined {
    const imp = this.impairment;
    this.stats.sent++;
    this.stats.bytes += sizeBytes;
    if (!imp.up || (imp.lossRatio > 0 && rng.nextFloat() < imp.lossRatio)) {
      this.stats.lost++;
      return undefined;
    }
    let departMs = nowMs;
    if (imp.rateBps > 0) {
      if (this.busyUntilMs <= nowMs) this.queued = 0;
      if (this.queued >= imp.queueLimitPackets) {
        this.stats.lost++;
        return undefined;
      }
      const start = Math.max(nowMs, this.busyUntilMs);
      this.busyUntilMs = start + ((sizeBytes + 28) * 8 * 1000) / imp.rateBps;
      this.queued++;
      departMs = this.busyUntilMs;
    }
    let delay = imp.delayMs;
    if (imp.jitterMs > 0) delay += (rng.nextFloat() * 2 - 1) * imp.jitterMs;
    return departMs + Math.max(0, delay);
  }
}

interface WorldLink {
  name: string;
  costTier: 'primary' | 'overflow' | 'backup' | undefined;
  bandwidthBps: number | undefined;
  ab: Direction;
  ba: Direction;
}

type Scheduled =
  | { atMs: number; seq: number; kind: 'arrive'; site: Site; linkId: number; from: Endpoint; bytes: Uint8Array; dir: Direction; injected?: boolean }
  | { atMs: number; seq: number; kind: 'call'; fn: () => void }
  | { atMs: number; seq: number; kind: 'netemPoll'; dir: Direction };

/** One site of the world: its Edge plus what it delivered. */
export class Site {
  readonly edge: Edge;
  readonly delivered: Delivery[] = [];
  deliveredCount = 0;
  readonly events: EdgeEvent[] = [];
  /** Called for every delivered inner packet (before it is recorded). */
  onDeliver: ((bytes: Uint8Array, atMs: number) => void) | undefined;
  /** Set by World. */
  peer!: Site;

  constructor(
    readonly name: 'a' | 'b',
    readonly world: World,
    edge: Edge,
    readonly endpoints: Endpoint[],
  ) {
    this.edge = edge;
  }

  /** Replaced by World.restart(): a crashed and restarted box, same keys, fresh state. */
  setEdge(edge: Edge): void {
    (this as { edge: Edge }).edge = edge;
  }

  /** An inner packet from this site's LAN, entering the edge now. */
  sendTun(packet: Uint8Array): void {
    this.edge.handleTunPacket(this.world.nowMs, packet);
    this.world.drain(this);
  }
}

export class World {
  nowMs = 0;
  readonly rng: SeededRng;
  readonly a: Site;
  readonly b: Site;
  readonly seed: number;
  /** Each site's static key pair (from the seed). */
  readonly keys: { a: X25519KeyPair; b: X25519KeyPair };
  private readonly links: WorldLink[];
  private readonly queue = new MinHeap<Scheduled>();
  private seqCounter = 0;
  private readonly record: boolean;
  /** Sees every datagram an edge hands to a link (before impairment): captures, attacks. */
  tap: ((site: 'a' | 'b', linkId: number, bytes: Uint8Array, atMs: number) => void) | undefined;
  private readonly edgeFactory: (site: 'a' | 'b') => Edge;
  /** Safety net: a run that processes more events than this is a livelock bug. */
  maxEventsPerRun = 50_000_000;

  constructor(config: WorldConfig) {
    this.seed = config.seed;
    this.rng = new SeededRng(config.seed);
    this.record = config.recordDeliveries ?? true;
    this.links = config.links.map((l) => {
      const base: Impairment = { ...DEFAULT_IMPAIRMENT, ...stripUndefined(l) };
      const link = { name: l.name, costTier: l.costTier, bandwidthBps: l.bandwidthBps, ab: new Direction({ ...base, ...l.ab }), ba: new Direction({ ...base, ...l.ba }) };
      const ab = l.abNetem ?? l.netem;
      const ba = l.baNetem ?? l.netem;
      if (ab) link.ab.netem = new NetemEngine(parseNetemSpec(ab), this.rng.fork());
      if (ba) link.ba.netem = new NetemEngine(parseNetemSpec(ba), this.rng.fork());
      return link;
    });
    const endpoints = (site: string): Endpoint[] => this.links.map((l, i) => ({ address: `${site}-${l.name}`, port: 51900 + i }));
    const aEndpoints = endpoints('a');
    const bEndpoints = endpoints('b');
    this.keys = { a: generateKeyPair(this.rng), b: generateKeyPair(this.rng) };
    const epoch = config.wallClockEpochMs ?? 1_800_000_000_000;
    const cryptoFor = (site: 'a' | 'b'): EdgeConfig['crypto'] =>
      config.insecurePlaintext
        ? undefined
        : { privateKey: this.keys[site].privateKey, peerPublicKey: this.keys[site === 'a' ? 'b' : 'a'].publicKey, wallClockEpochMs: epoch, ...(config.aead ? { aead: config.aead } : {}) };
    const mkEdge = (site: 'a' | 'b', remote: Endpoint[], rng: Rng, nowMs = 0): Edge =>
      new Edge(
        {
          crypto: cryptoFor(site),
          ...config.edge,
          site,
          links: this.links.map((l, i) => ({ name: l.name, remote: remote[i]!, ...(l.costTier ? { costTier: l.costTier } : {}), ...(l.bandwidthBps ? { bandwidthBps: l.bandwidthBps } : {}) })),
        },
        nowMs,
        rng,
      );
    this.edgeFactory = (site) => mkEdge(site, site === 'a' ? bEndpoints : aEndpoints, this.rng.fork(), this.nowMs);
    this.a = new Site('a', this, mkEdge('a', bEndpoints, this.rng.fork()), aEndpoints);
    this.b = new Site('b', this, mkEdge('b', aEndpoints, this.rng.fork()), bEndpoints);
    this.a.peer = this.b;
    this.b.peer = this.a;
  }

  // ---- scheduling ----------------------------------------------------------------------------

  /** Runs `fn` at absolute virtual time `atMs`. */
  at(atMs: number, fn: () => void): void {
    this.queue.push({ atMs: Math.max(atMs, this.nowMs), seq: this.seqCounter++, kind: 'call', fn });
  }

  /** Runs `fn(i)` every `intervalMs`, starting at `startMs` (default now), `count` times or until `untilMs`. */
  every(intervalMs: number, opts: { startMs?: number; count?: number; untilMs?: number }, fn: (i: number) => void): void {
    const start = opts.startMs ?? this.nowMs;
    const count = opts.count ?? Infinity;
    const until = opts.untilMs ?? Infinity;
    if (count === Infinity && until === Infinity) throw new Error('every(): give count or untilMs (limits on everything)');
    let i = 0;
    const tick = (): void => {
      if (i >= count || this.nowMs >= until) return;
      fn(i++);
      this.at(start + i * intervalMs, tick);
    };
    this.at(start, tick);
  }

  /** Changes the impairment of a link (both directions unless `direction` says otherwise). */
  impair(linkName: string, change: Partial<Impairment>, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    const link = this.link(linkName);
    if (direction !== 'ba') link.ab.impairment = { ...link.ab.impairment, ...change };
    if (direction !== 'ab') link.ba.impairment = { ...link.ba.impairment, ...change };
  }

  /**
   * Sets a link's impairment in netem syntax (like `tc qdisc change ... netem ...`), or back to
   * the simple impairment with null. Packets already in the emulator keep their schedule.
   */
  setNetem(linkName: string, spec: string | null, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    const link = this.link(linkName);
    const parsed = spec === null ? null : parseNetemSpec(spec);
    for (const d of direction === 'both' ? [link.ab, link.ba] : [direction === 'ab' ? link.ab : link.ba]) {
      if (parsed === null) d.netem = undefined;
      else if (d.netem) d.netem.setSpec(parsed);
      else {
        d.netem = new NetemEngine(parsed, this.rng.fork());
        d.netemDroppedSeen = 0;
      }
    }
  }

  setNetemAt(atMs: number, linkName: string, spec: string | null, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    this.link(linkName);
    if (spec !== null) parseNetemSpec(spec); // fail now on a bad spec, not at atMs
    this.at(atMs, () => this.setNetem(linkName, spec, direction));
  }

  impairAt(atMs: number, linkName: string, change: Partial<Impairment>, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    this.link(linkName); // fail now, not at atMs, on a typo
    this.at(atMs, () => this.impair(linkName, change, direction));
  }

  /** The site's box restarts now: a new Edge with the same keys and config, no memory of the old one. */
  restart(site: 'a' | 'b'): void {
    const s = site === 'a' ? this.a : this.b;
    s.setEdge(this.edgeFactory(site));
    this.drain(s);
  }

  /**
   * Delivers raw bytes to a site's link at `atMs` as if they came from `from` (an attacker, a
   * restarted peer, a fuzzer). They bypass the link impairment.
   */
  injectAt(atMs: number, site: 'a' | 'b', linkName: string, from: Endpoint, bytes: Uint8Array): void {
    const id = this.links.indexOf(this.link(linkName));
    const target = site === 'a' ? this.a : this.b;
    const dir = site === 'a' ? this.links[id]!.ba : this.links[id]!.ab;
    this.queue.push({ atMs: Math.max(atMs, this.nowMs), seq: this.seqCounter++, kind: 'arrive', site: target, linkId: id, from, bytes, dir, injected: true });
  }

  linkStats(linkName: string): { ab: DirectionStats; ba: DirectionStats } {
    const l = this.link(linkName);
    return { ab: { ...l.ab.stats }, ba: { ...l.ba.stats } };
  }

  get linkNames(): string[] {
    return this.links.map((l) => l.name);
  }

  // ---- running -------------------------------------------------------------------------------

  /** Runs until virtual time `untilMs` (inclusive of events at exactly that time). */
  run(untilMs: number): void {
    let budget = this.maxEventsPerRun;
    for (;;) {
      if (--budget < 0) throw new Error(`World(seed=${this.seed}): more than ${this.maxEventsPerRun} events before ${untilMs} ms: livelock?`);
      const next = this.nextEventMs();
      if (next === undefined || next > untilMs) break;
      this.nowMs = Math.max(this.nowMs, next);
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, untilMs);
  }

  runFor(durationMs: number): void {
    this.run(this.nowMs + durationMs);
  }

  private nextEventMs(): number | undefined {
    let t = this.queue.peek()?.atMs ?? Infinity;
    const ta = this.a.edge.pollTimeout() ?? Infinity;
    const tb = this.b.edge.pollTimeout() ?? Infinity;
    if (ta < t) t = ta;
    if (tb < t) t = tb;
    return t === Infinity ? undefined : t;
  }

  private step(): void {
    const now = this.nowMs;
    for (const site of [this.a, this.b]) {
      const t = site.edge.pollTimeout();
      if (t !== undefined && t <= now) {
        site.edge.handleTimeout(now);
        this.drain(site);
      }
    }
    const top = this.queue.peek();
    if (top && top.atMs <= now) {
      this.queue.pop();
      if (top.kind === 'call') {
        top.fn();
      } else if (top.kind === 'netemPoll') {
        this.pollNetem(top.dir);
      } else {
        if (!top.injected) top.dir.stats.delivered++;
        top.site.edge.handleDatagram(now, top.linkId, top.from, top.bytes);
        this.drain(top.site);
      }
    }
  }

  /** Moves a site's transmits onto the links and its deliveries into its record. */
  drain(site: Site): void {
    const edge = site.edge;
    for (let t = edge.pollTransmit(); t; t = edge.pollTransmit()) {
      const link = this.links[t.linkId];
      if (!link) continue;
      const dir = site.name === 'a' ? link.ab : link.ba;
      this.tap?.(site.name, t.linkId, t.bytes, this.nowMs);
      if (dir.netem) {
        dir.stats.sent++;
        dir.stats.bytes += t.bytes.length;
        dir.netem.enqueue(this.nowMs, { bytes: copyBytes(t.bytes), site: site.peer, linkId: t.linkId, from: site.endpoints[t.linkId]! });
        this.scheduleNetemPoll(dir);
        continue;
      }
      const arrive = dir.admit(this.nowMs, t.bytes.length, this.rng);
      if (arrive === undefined) continue;
      // The datagram is copied onto the "wire": the sender may not mutate what is in flight.
      this.queue.push({
        atMs: arrive,
        seq: this.seqCounter++,
        kind: 'arrive',
        site: site.peer,
        linkId: t.linkId,
        from: site.endpoints[t.linkId]!,
        bytes: copyBytes(t.bytes),
        dir,
      });
    }
    for (let p = edge.pollDelivery(); p; p = edge.pollDelivery()) {
      site.deliveredCount++;
      site.onDeliver?.(p, this.nowMs);
      if (this.record) site.delivered.push({ atMs: this.nowMs, bytes: p });
    }
    for (let e = edge.pollEvent(); e; e = edge.pollEvent()) site.events.push(e);
  }

  private scheduleNetemPoll(dir: Direction): void {
    const due = dir.netem?.nextDeadlineMs();
    if (due === undefined || due >= dir.netemPollAtMs) return;
    dir.netemPollAtMs = due;
    this.queue.push({ atMs: Math.max(due, this.nowMs), seq: this.seqCounter++, kind: 'netemPoll', dir });
  }

  private pollNetem(dir: Direction): void {
    dir.netemPollAtMs = Infinity;
    const engine = dir.netem;
    if (!engine) return;
    for (const d of engine.poll(this.nowMs)) {
      dir.stats.delivered++;
      const p = d.packet;
      p.site.edge.handleDatagram(this.nowMs, p.linkId, p.from, d.bytes);
      this.drain(p.site);
    }
    const c = engine.counters();
    const dropped = c.dropped.loss + c.dropped.limit;
    dir.stats.lost += dropped - dir.netemDroppedSeen;
    dir.netemDroppedSeen = dropped;
    this.scheduleNetemPoll(dir);
  }

  private link(name: string): WorldLink {
    const l = this.links.find((x) => x.name === name);
    if (!l) throw new Error(`World: no link named "${name}" (have: ${this.links.map((x) => x.name).join(', ')})`);
    return l;
  }
}

function stripUndefined(l: WorldLinkConfig): Partial<Impairment> {
  const out: Partial<Impairment> = {};
  if (l.up !== undefined) out.up = l.up;
  if (l.delayMs !== undefined) out.delayMs = l.delayMs;
  if (l.jitterMs !== undefined) out.jitterMs = l.jitterMs;
  if (l.lossRatio !== undefined) out.lossRatio = l.lossRatio;
  if (l.rateBps !== undefined) out.rateBps = l.rateBps;
  if (l.queueLimitPackets !== undefined) out.queueLimitPackets = l.queueLimitPackets;
  return out;
}
