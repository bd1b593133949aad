/**
 * World: core engines joined by in-memory WAN connections, in virtual time.
 *
 * The loop jumps from event to event (a datagram arriving, an engine timer, a scheduled action),
 * so a minute of traffic runs in milliseconds. Engine timers are kept in a heap of the sites'
 * pollTimeout deadlines, re-read after every call the World makes into an engine (drain), after
 * every scheduled action (`at`, `every`: every site's, unless the action promises enginesViaWorld)
 * and at the start of every run: code that calls an engine
 * directly from elsewhere (a tap or onDeliver callback) calls w.drain(site) after it. One seed drives everything: the engines' Rngs, the
 * sites' keys and every loss/jitter draw, so a failing run is reproduced by its seed
 * (TigerBeetle's VOPR idea).
 *
 * Two shapes, one World:
 *
 * 1. Two sites (the original API): sites "a" and "b", each with every link of `links`, link i of a
 *    joined to link i of b by a connection of the same name. Each site runs an `Edge`.
 *
 *      const w = new World({ seed: 7, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 20 }] });
 *      w.every(20, { count: 500 }, (i) => w.a.sendTun(makePacket({...flowSpec(1, 200), seq: i})));
 *      w.impairAt(3000, 'mpls', { up: false });
 *      w.runFor(12_000);
 *      w.b.deliveredCount; w.linkStats('mpls').ab.delivered;
 *
 * 2. N sites (a hub and spokes, or any graph): each site has its own links, prefixes and role;
 *    `connections` say which site link reaches which other site link, each with its own
 *    impairment per direction. Each site runs an `Endpoint` (many peers).
 *
 *      const w = new World({
 *        seed: 7,
 *        sites: [
 *          { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/16'] },
 *          { name: 'b1', links: ['mpls', 'inet', { name: 'lte', nat: true }], prefixes: ['10.1.0.0/16'] },
 *        ],
 *        connections: [
 *          { a: 'b1.mpls', b: 'hub.mpls', delayMs: 10 },            // name "b1.mpls-hub.mpls"
 *          { a: 'b1.inet', b: 'hub.inet', netem: 'delay 20ms 2ms' },
 *          { name: 'b1-lte', a: 'b1.lte', b: 'hub.inet', abNetem: 'delay 40ms loss 1%', baNetem: 'delay 35ms' },
 *        ],
 *      });
 *      w.site('b1').sendTun(packet); w.impairAt(3000, 'b1.mpls-hub.mpls', { up: false });
 *      w.restartAt(5000, 'hub'); w.natRebindAt(8000, 'b1', 'lte');
 *
 * Connections: "ab" is what end `a` sends to end `b`, "ba" the reverse (put the branch first and
 * "ab" is its uplink, as in link profiles). impair/setNetem/linkStats take a connection name; in
 * the two-site shape the connection names are the link names.
 *
 * Peers (N sites): two sites peer when a connection joins them. A site's peer P is given P's
 * prefixes, and when P is a hub also the prefixes of every site it has no connection to (a spoke
 * reaches the other spokes through the hub). A spoke configures the hub's endpoint on each of its
 * links (one far link per local link and peer); a hub configures none: it learns its spokes'
 * endpoints from their authenticated packets (with insecurePlaintext, where nothing is
 * authenticated, every endpoint is configured). Keys come from the seed; `site.peerConfigs` is what
 * the site's Endpoint was given (for setPeers reload tests).
 *
 * NAT (per site link, `nat: true` or { idleTimeoutMs }): what the link sends leaves from a public
 * endpoint (`nat-<site>-<link>:<port>`), which is what the far side sees and answers to. Datagrams
 * to the public endpoint pass only from addresses the link has sent to since the mapping was made
 * (address-restricted filtering) and only to the current port. natRebind() gives the mapping a new
 * port (a CGNAT rebinding): in-flight and later datagrams to the old port are dropped
 * (DirectionStats.natDropped). With idleTimeoutMs the mapping also rebinds after that long without
 * an outbound datagram (what persistent keepalives prevent).
 *
 * Access lines (per site link, `uplinkNetem` / `downlinkNetem`): a netem stage every datagram the
 * link sends (receives) passes before (after) its connection, shared by all the link's
 * connections: a hub's 20 Mbit/s uplink that every spoke's traffic competes for.
 *
 * Sends to an endpoint no connection of that link leads to are counted in site.unroutable.
 */
import { Edge, type EdgeConfig } from '../src/core/edge.ts';
import { SeededRng, type Rng } from '../src/core/rng.ts';
import type { EdgeEvent, EdgeSnapshot, Endpoint, PeerConfig, Transmit } from '../src/core/types.ts';
import { IndexedHeap, MinHeap } from './heap.ts';
import { NetemEngine } from './netem/engine.ts';
import { copyBytes } from '../src/core/bytes.ts';
import { generateKeyPair, type X25519KeyPair } from '../src/core/crypto/keys.ts';
import { parseNetemSpec } from './netem/spec.ts';
import type { AeadFactory } from '../src/core/crypto/transport.ts';
import { Endpoint as CoreEndpoint, type EndpointConfig } from '../src/core/endpoint.ts';

/** The engine of an N-site World's site (the core's Endpoint). */
export type EndpointEngine = CoreEndpoint;
export type { EndpointConfig };

/** Impairment of one direction of one connection. */
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
  /**
   * Path MTU (outer packet bytes: the datagram plus 28 for IPv4/UDP); 0 = unlimited. A bigger
   * datagram is dropped here (DF: never fragmented) without an ICMP error (a black hole, what
   * packetization-layer PMTU discovery must cope with), counted in DirectionStats.tooBig.
   */
  mtuBytes: number;
}

/** How a connection's directions are impaired: simple fields, or netem syntax (userspace engine). */
export interface ImpairmentConfig extends Partial<Impairment> {
  /**
   * Impairment in netem's own syntax ("delay 30ms 5ms loss gemodel 1% 20% rate 20mbit"), run by
   * the userspace netem engine. When set it replaces the simple impairment fields.
   */
  netem?: string;
  abNetem?: string;
  baNetem?: string;
  /** Overrides for one direction only. */
  ab?: Partial<Impairment>;
  ba?: Partial<Impairment>;
}

/** Two-site shape: one link of both sites and the connection between them. */
export interface WorldLinkConfig extends ImpairmentConfig {
  name: string;
  /** Edge settings of this link on both sites. */
  costTier?: 'primary' | 'overflow' | 'backup';
  bandwidthBps?: number;
}

/** N-site shape: one local link of a site. */
export interface WorldSiteLinkConfig {
  name: string;
  costTier?: 'primary' | 'overflow' | 'backup';
  /** The Endpoint's shaper rate on this link (LinkConfig.bandwidthBps). */
  bandwidthBps?: number;
  dscp?: number;
  /** Behind NAT (see the file header). */
  nat?: boolean | { idleTimeoutMs?: number };
  /**
   * The site's access line on this link, shared by every connection of the link: what it sends
   * passes this netem spec first ("rate 20mbit limit 200"), what it receives passes downlinkNetem
   * last. Absent: only the connections' own impairments apply.
   */
  uplinkNetem?: string;
  downlinkNetem?: string;
}

export interface WorldSiteConfig {
  name: string;
  /** A hub forwards between its spokes: its peers route the other spokes' prefixes to it. Default spoke. */
  role?: 'hub' | 'spoke';
  /** Link names, or link configs. */
  links: (string | WorldSiteLinkConfig)[];
  /** The site's LAN prefixes ("10.1.0.0/16"). */
  prefixes: string[];
  /** persistentKeepaliveMs on every peer of this site (a site behind NAT). */
  persistentKeepaliveMs?: number;
  /**
   * A hub whose prefixes already cover every spoke (10.0.0.0/8): its peers are given only those,
   * not every other spoke's prefixes too (a thousand spokes would pass the per-peer prefix cap).
   */
  coversSpokes?: boolean;
  /** Endpoint settings for this site only (over WorldConfig.endpoint). */
  endpoint?: EndpointExtras;
}

export interface WorldConnectionConfig extends ImpairmentConfig {
  /** Default "<a>-<b>", e.g. "b1.mpls-hub.mpls". */
  name?: string;
  /** "site.link": end a ("ab" is what it sends; put the branch here). */
  a: string;
  /** "site.link": end b. */
  b: string;
}

/** Endpoint settings the World does not build itself. */
export type EndpointExtras = Partial<Omit<EndpointConfig, 'links' | 'site' | 'peers'>>;

export interface WorldConfig {
  seed: number;
  /** Two-site shape (sites "a" and "b"). Give either links or sites + connections. */
  links?: WorldLinkConfig[];
  /** Extra Edge settings applied to both sites (two-site shape). */
  edge?: Partial<Omit<EdgeConfig, 'links' | 'site'>>;
  /** N-site shape. */
  sites?: WorldSiteConfig[];
  connections?: WorldConnectionConfig[];
  /** Extra Endpoint settings applied to every site (N-site shape). */
  endpoint?: EndpointExtras;
  /** Keep every delivered packet (with its arrival time) in site.delivered. Default true. */
  recordDeliveries?: boolean;
  /** Run the overlay unencrypted (benchmark comparisons only). Default false: Noise IK keys from the seed. */
  insecurePlaintext?: boolean;
  /** Virtual wall-clock epoch at t = 0 (handshake timestamps). */
  wallClockEpochMs?: number;
  /** Data AEAD for every engine (crypto.aead); default the core's node:crypto one. */
  aead?: AeadFactory;
  /**
   * Every site says its CPU has AES instructions (crypto.aesAccelerated), so `cipher: auto` picks
   * AES-256-GCM as `braid up` does on such a box. Default false: ChaCha20-Poly1305.
   */
  aesAccelerated?: boolean;
  /**
   * Parallel runs (sim/parallel.ts): this World runs the engines of its partition's sites only.
   * The other sites are stand-ins that never act; a datagram to one of them leaves through
   * `exportArrival` instead of the queue, and arrives in the World that owns it (importArrival).
   * N-site shape only; connections between partitions take no NAT, netem or access line.
   */
  partition?: WorldPartition;
}

/** Which sites this World runs (WorldConfig.partition). */
export interface WorldPartition {
  /** This World's partition. */
  index: number;
  /** The partition that runs the site's engine. */
  of(siteName: string): number;
}

/** A datagram leaving for another partition: it arrives there at `atMs` on direction `dirKey` (importArrival). */
export type ExportArrival = (partition: number, atMs: number, dirKey: number, bytes: Uint8Array) => void;

export interface DirectionStats {
  sent: number;
  lost: number;
  delivered: number;
  bytes: number;
  /** Dropped by the receiving link's NAT (filtered, or sent to a port the NAT no longer maps). */
  natDropped: number;
  /** Dropped for being bigger than the direction's mtuBytes (also in sent, not in lost). */
  tooBig: number;
}

export interface Delivery {
  atMs: number;
  bytes: Uint8Array;
}

/** What the World drives: the core's Edge (two sites) or Endpoint (N sites), same call order. */
export interface SiteEngine {
  handleTunPacket(nowMs: number, packet: Uint8Array): void;
  handleDatagram(nowMs: number, linkId: number, from: Endpoint, datagram: Uint8Array): void;
  handleTimeout(nowMs: number): void;
  pollTransmit(): Transmit | undefined;
  pollDelivery(): Uint8Array | undefined;
  pollTimeout(): number | undefined;
  pollEvent(): EdgeEvent | undefined;
  snapshot(nowMs: number): EdgeSnapshot;
}

const DEFAULT_IMPAIRMENT: Impairment = { up: true, delayMs: 10, jitterMs: 0, lossRatio: 0, rateBps: 0, queueLimitPackets: 1000, mtuBytes: 0 };

/** A datagram on its way: source link's uplink (if shaped) -> connection direction -> target link's downlink (if shaped). */
class WirePacket {
  constructor(
    readonly bytes: Uint8Array,
    /** The sending site link. */
    readonly source: SiteLink,
    /** The receiving site link. */
    readonly target: SiteLink,
    /** The connection direction it crosses. */
    readonly dir: Direction,
    readonly from: Endpoint,
    readonly to: Endpoint,
  ) {}
}

class Direction {
  impairment: Impairment;
  readonly stats: DirectionStats = { sent: 0, lost: 0, delivered: 0, bytes: 0, natDropped: 0, tooBig: 0 };
  /** Userspace netem replacing the simple impairment, when a netem spec is set. */
  netem: NetemEngine<WirePacket> | undefined;
  /** Time of the poll already scheduled for `netem` (avoids one event per packet). */
  netemPollAtMs = Infinity;
  /** Engine drops already added to stats.lost. */
  netemDroppedSeen = 0;
  /** connection index * 2 + (0: ab, 1: ba): how partitions name a direction to each other. */
  key = -1;
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

/** A site's NAT on one link: one public mapping at a time (endpoint-independent, address-restricted). */
interface NatState {
  publicEndpoint: Endpoint;
  /** Addresses (address:port) the link has sent to since the mapping was made. */
  contacted: Set<string>;
  idleTimeoutMs: number | undefined;
  lastOutboundMs: number;
  rebinds: number;
}

/** One local link of a site: its socket address, its NAT, the connections it is part of. */
interface SiteLink {
  site: Site;
  id: number;
  name: string;
  privateEndpoint: Endpoint;
  nat: NatState | undefined;
  connections: Connection[];
  /** Where this link's datagrams go, one per connection in connection order; rebuilt after a NAT rebinding (routesVersion). */
  routes: Route[];
  /**
   * The routes by the far end's visible address, for links with many connections (a hub's link
   * has one per spoke). By address, not "address|port": the address strings are the World's own,
   * so their hash is cached and a lookup builds no key string.
   */
  routesByAddress: Map<string, Route[]> | undefined;
  routesVersion: number;
  /** The shared access line, when shaped (WorldSiteLinkConfig.uplinkNetem / downlinkNetem). */
  uplink: Direction | undefined;
  downlink: Direction | undefined;
}

/**
 * One connection as seen from one of its ends: what drain needs per datagram in one object (the
 * far end's visible port and address, the far link, the direction), not a walk through the
 * connection, its ends and their NATs, each a cache miss behind the engines' work.
 */
interface Route {
  readonly address: string;
  readonly port: number;
  readonly far: SiteLink;
  readonly dir: Direction;
}

interface Connection {
  name: string;
  a: SiteLink;
  b: SiteLink;
  ab: Direction;
  ba: Direction;
}

const enum EventKind {
  /** A datagram leaves `dir` (a connection direction or an access line). */
  Arrive,
  /** A datagram injected at its target link (injectAt). */
  Injected,
  Call,
  /** A call that reaches engines only through the World (CallOptions.enginesViaWorld). */
  CallViaWorld,
  NetemPoll,
}

/** How a scheduled call (World.at, World.every) touches the engines. */
export interface CallOptions {
  /** The call reaches engines only through the World (site.sendTun, w.drain after a direct call): no re-read of every site's deadline after it. */
  enginesViaWorld?: boolean;
}

/** A queued event. One class for every kind: the queue's comparisons see one shape. */
class Scheduled {
  constructor(
    readonly atMs: number,
    readonly seq: number,
    readonly kind: EventKind,
    readonly packet: WirePacket | undefined,
    readonly dir: Direction | undefined,
    readonly fn: (() => void) | undefined,
  ) {}
}

/** Another partition's site (WorldConfig.partition): never woken, never sent to; its traffic calls do nothing. */
class RemoteSiteEngine implements SiteEngine {
  constructor(private readonly site: string) {}
  handleTunPacket(): void {}
  handleDatagram(): void {
    throw new Error(`World: a datagram reached site ${this.site}, which another partition runs`);
  }
  handleTimeout(): void {}
  pollTransmit(): Transmit | undefined {
    return undefined;
  }
  pollDelivery(): Uint8Array | undefined {
    return undefined;
  }
  pollTimeout(): number | undefined {
    return undefined;
  }
  pollEvent(): EdgeEvent | undefined {
    return undefined;
  }
  snapshot(): EdgeSnapshot {
    throw new Error(`World: site ${this.site} runs in another partition; ask that one for its snapshot`);
  }
}

/** A site's entry in the World's wake-up heap: its engine's deadline when last asked. */
interface Wakeup {
  atMs: number;
  /** Bumped whenever the deadline is filed anew: ties wake in filing order. */
  seq: number;
  heapPos: number;
  readonly site: Site;
}

const endpointKey = (e: Endpoint): string => `${e.address}|${e.port}`;

/** Where the far side sees (and reaches) a site link: its NAT's public endpoint, or its own. */
function visibleEndpoint(l: SiteLink): Endpoint {
  return l.nat ? l.nat.publicEndpoint : l.privateEndpoint;
}

/** One site of the world: its engine plus what it delivered. */
export class Site<E extends SiteEngine = SiteEngine> {
  readonly edge: E;
  readonly delivered: Delivery[] = [];
  deliveredCount = 0;
  readonly events: EdgeEvent[] = [];
  /** Datagrams the engine sent to an endpoint none of the link's connections leads to. */
  unroutable = 0;
  /** Called for every delivered inner packet (before it is recorded). */
  onDeliver: ((bytes: Uint8Array, atMs: number) => void) | undefined;
  /** Two-site shape: the other site. */
  peer!: Site<E>;
  /** N-site shape: what the site's Endpoint was configured with (empty in the two-site shape). */
  peerConfigs: PeerConfig[] = [];
  /** The site's links, by link id. */
  readonly links: SiteLink[] = [];
  /** N-site shape. */
  role: 'hub' | 'spoke' = 'spoke';
  prefixes: string[] = [];
  /** The World's wake-up for this site: the engine's deadline when last asked, filed in the World's timer heap while heapPos >= 0. */
  readonly wakeup: Wakeup;
  /** Configuration order: due sites are woken in this order, as when the World polled every site. */
  index = 0;
  /** Partitioned World: the partition that runs this site's engine (-1: this World runs every site). */
  partition = -1;
  /** Run by another partition: the engine here is a stand-in that never acts. */
  remote = false;

  constructor(
    readonly name: string,
    readonly world: World,
    edge: E,
    /** Each link's own (private) endpoint, by link id. */
    readonly endpoints: Endpoint[],
  ) {
    this.edge = edge;
    this.wakeup = { atMs: Infinity, seq: 0, heapPos: -1, site: this as unknown as Site };
  }

  /** Replaced by World.restart(): a crashed and restarted box, same keys, fresh state. */
  setEdge(edge: E): void {
    (this as { edge: E }).edge = edge;
  }

  /** An inner packet from this site's LAN, entering the engine now. */
  sendTun(packet: Uint8Array): void {
    this.edge.handleTunPacket(this.world.nowMs, packet);
    this.world.drain(this);
  }

  get linkNames(): string[] {
    return this.links.map((l) => l.name);
  }

  /** Where the far side sees this site's link `linkName` now (its NAT's public endpoint when behind NAT). */
  visibleEndpoint(linkName: string): Endpoint {
    const l = this.links.find((x) => x.name === linkName);
    if (!l) throw new Error(`World: site ${this.name} has no link "${linkName}" (have: ${this.linkNames.join(', ')})`);
    return { ...visibleEndpoint(l) };
  }
}

export class World {
  nowMs = 0;
  readonly rng: SeededRng;
  readonly seed: number;
  /** Each site's static key pair (from the seed), by site name. */
  readonly keys: Record<string, X25519KeyPair>;
  /** Every site, in configuration order. */
  readonly sites: Site[];
  private readonly siteByName = new Map<string, Site>();
  private readonly connections: Connection[] = [];
  private readonly queue = new MinHeap<Scheduled>();
  private seqCounter = 0;
  /**
   * Every site's next engine deadline (pollTimeout), so an event costs O(log sites), not a poll of
   * every site. One entry per site with a deadline, moved in place when the deadline moves.
   */
  private readonly wakeups = new IndexedHeap<Wakeup>();
  private wakeSeqCounter = 0;
  private readonly dueScratch: Site[] = [];
  /** Bumped by every NAT rebinding: visible endpoints changed, the links' routes are stale. */
  private natVersion = 0;
  private readonly record: boolean;
  private readonly twoSite: boolean;
  /** Sees every datagram an engine hands to a link (before impairment): captures, attacks. */
  tap: ((site: string, linkId: number, bytes: Uint8Array, atMs: number) => void) | undefined;
  private readonly engineFactory = new Map<Site, (nowMs: number) => SiteEngine>();
  /** Safety net: a run that processes more events than this is a livelock bug. */
  maxEventsPerRun = 50_000_000;
  /** Partitioned World: where datagrams to other partitions' sites go (set by sim/parallel.ts). */
  exportArrival: ExportArrival | undefined;
  /**
   * Partitioned World: the lookahead its driver relies on (partitionLookaheadMs when it started):
   * a datagram to another partition must take at least this long, or that partition may already
   * have run past its arrival.
   */
  exportMinDelayMs = 0;

  constructor(config: WorldConfig) {
    this.seed = config.seed;
    this.rng = new SeededRng(config.seed);
    this.record = config.recordDeliveries ?? true;
    if ((config.links === undefined) === (config.sites === undefined)) throw new Error('World: give either links (two sites a and b) or sites + connections');
    this.twoSite = config.links !== undefined;
    if (this.twoSite && config.partition !== undefined) throw new Error('World: partition needs the N-site shape (sites + connections)');
    if (config.links) {
      this.sites = [];
      this.keys = {};
      this.buildTwoSite(config, config.links);
    } else {
      this.sites = [];
      this.keys = {};
      this.buildSites(config, config.sites!, config.connections ?? []);
    }
  }

  // ---- construction --------------------------------------------------------------------------

  private makeConnection(name: string, a: SiteLink, b: SiteLink, c: ImpairmentConfig): Connection {
    if (this.connections.some((x) => x.name === name)) throw new Error(`World: two connections named "${name}"`);
    const base: Impairment = { ...DEFAULT_IMPAIRMENT, ...stripUndefined(c) };
    const conn: Connection = { name, a, b, ab: new Direction({ ...base, ...c.ab }), ba: new Direction({ ...base, ...c.ba }) };
    const ab = c.abNetem ?? c.netem;
    const ba = c.baNetem ?? c.netem;
    if (ab) conn.ab.netem = new NetemEngine(parseNetemSpec(ab), this.rng.fork());
    if (ba) conn.ba.netem = new NetemEngine(parseNetemSpec(ba), this.rng.fork());
    a.connections.push(conn);
    b.connections.push(conn);
    a.routesVersion = b.routesVersion = -1;
    conn.ab.key = this.connections.length * 2;
    conn.ba.key = this.connections.length * 2 + 1;
    this.connections.push(conn);
    return conn;
  }

  private addSite<E extends SiteEngine>(name: string, linkNames: string[], nat: (WorldSiteLinkConfig['nat'] | undefined)[], lines: (WorldSiteLinkConfig | undefined)[] = []): Site<E> {
    if (this.siteByName.has(name)) throw new Error(`World: two sites named "${name}"`);
    const endpoints = linkNames.map((l, i) => ({ address: `${name}-${l}`, port: 51900 + i }));
    const site = new Site<E>(name, this, undefined as unknown as E, endpoints);
    linkNames.forEach((l, i) => {
      const n = nat[i];
      site.links.push({
        site: site as unknown as Site,
        id: i,
        name: l,
        privateEndpoint: endpoints[i]!,
        nat: n ? { publicEndpoint: { address: `nat-${name}-${l}`, port: 30000 + i * 1000 }, contacted: new Set(), idleTimeoutMs: typeof n === 'object' ? n.idleTimeoutMs : undefined, lastOutboundMs: -Infinity, rebinds: 0 } : undefined,
        connections: [],
        routes: [],
        routesByAddress: undefined,
        routesVersion: -1,
        uplink: this.accessLine(lines[i]?.uplinkNetem),
        downlink: this.accessLine(lines[i]?.downlinkNetem),
      });
    });
    site.index = this.sites.length;
    this.sites.push(site as unknown as Site);
    this.siteByName.set(name, site as unknown as Site);
    return site;
  }

  private accessLine(spec: string | undefined): Direction | undefined {
    if (spec === undefined) return undefined;
    const d = new Direction({ ...DEFAULT_IMPAIRMENT, delayMs: 0 });
    d.netem = new NetemEngine(parseNetemSpec(spec), this.rng.fork());
    return d;
  }

  /** The original shape: sites a and b, link i of a joined to link i of b. Rng draws in the original order. */
  private buildTwoSite(config: WorldConfig, links: WorldLinkConfig[]): void {
    const names = links.map((l) => l.name);
    const a = this.addSite<Edge>('a', names, []);
    const b = this.addSite<Edge>('b', names, []);
    links.forEach((l, i) => this.makeConnection(l.name, a.links[i]!, b.links[i]!, l));
    this.keys['a'] = generateKeyPair(this.rng);
    this.keys['b'] = generateKeyPair(this.rng);
    const epoch = config.wallClockEpochMs ?? 1_800_000_000_000;
    const cryptoFor = (site: 'a' | 'b'): EdgeConfig['crypto'] =>
      config.insecurePlaintext
        ? undefined
        : { privateKey: this.keys[site]!.privateKey, peerPublicKey: this.keys[site === 'a' ? 'b' : 'a']!.publicKey, wallClockEpochMs: epoch, openInPlace: true, ...(config.aead ? { aead: config.aead } : {}), ...(config.aesAccelerated ? { aesAccelerated: true } : {}) };
    const mkEdge = (site: 'a' | 'b', remote: Endpoint[], rng: Rng, nowMs = 0): Edge =>
      new Edge(
        {
          crypto: cryptoFor(site),
          ...config.edge,
          site,
          links: links.map((l, i) => ({ name: l.name, remote: remote[i]!, ...(l.costTier ? { costTier: l.costTier } : {}), ...(l.bandwidthBps ? { bandwidthBps: l.bandwidthBps } : {}) })),
        },
        nowMs,
        rng,
      );
    this.engineFactory.set(a as unknown as Site, (nowMs) => mkEdge('a', b.endpoints, this.rng.fork(), nowMs));
    this.engineFactory.set(b as unknown as Site, (nowMs) => mkEdge('b', a.endpoints, this.rng.fork(), nowMs));
    a.setEdge(mkEdge('a', b.endpoints, this.rng.fork()));
    b.setEdge(mkEdge('b', a.endpoints, this.rng.fork()));
    a.peer = b;
    b.peer = a;
  }

  /** The N-site shape: Endpoint engines, peers from the connections (see the file header). */
  private buildSites(config: WorldConfig, sites: WorldSiteConfig[], connections: WorldConnectionConfig[]): void {
    if (sites.length < 2) throw new Error('World: give at least two sites');
    const siteConfigs = new Map<string, WorldSiteConfig>();
    for (const s of sites) {
      const links = s.links.map((l) => (typeof l === 'string' ? { name: l } : l));
      if (new Set(links.map((l) => l.name)).size !== links.length) throw new Error(`World: site ${s.name} names a link twice`);
      this.addSite<SiteEngine>(
        s.name,
        links.map((l) => l.name),
        links.map((l) => l.nat),
        links,
      );
      const site = this.siteByName.get(s.name)!;
      site.role = s.role ?? 'spoke';
      site.prefixes = [...s.prefixes];
      siteConfigs.set(s.name, s);
    }
    for (const c of connections) {
      const a = this.siteLink(c.a);
      const b = this.siteLink(c.b);
      if (a.site === b.site) throw new Error(`World: connection ${c.a} - ${c.b} joins a site to itself`);
      // A site that configures its peers' endpoints has one per local link and peer; a hub learns
      // them, so one hub link may reach a spoke on several paths (the spoke's inet and lte).
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        const configures = x.site.role !== 'hub' || config.insecurePlaintext === true;
        if (configures && x.connections.some((k) => (k.a === x ? k.b : k.a).site === y.site)) {
          throw new Error(`World: ${x.site.name}.${x.name} reaches site ${y.site.name} twice (one far link per local link and peer; only a hub may have more, learned)`);
        }
      }
      this.makeConnection(c.name ?? `${c.a}-${c.b}`, a, b, c);
    }
    for (const s of this.sites) this.keys[s.name] = generateKeyPair(this.rng);
    const epoch = config.wallClockEpochMs ?? 1_800_000_000_000;

    for (const site of this.sites) {
      const sc = siteConfigs.get(site.name)!;
      const neighbours = this.neighbours(site);
      const peers: PeerConfig[] = [...neighbours.keys()].map((peer) => {
        const prefixes = [...peer.prefixes];
        if (peer.role === 'hub' && siteConfigs.get(peer.name)!.coversSpokes !== true) {
          for (const other of this.sites) if (other !== site && other !== peer && !neighbours.has(other)) prefixes.push(...other.prefixes);
        }
        const pairs = neighbours.get(peer)!;
        const endpoints: Record<string, Endpoint> = {};
        if (site.role !== 'hub' || config.insecurePlaintext) for (const [local, far] of pairs) endpoints[local.name] = { ...visibleEndpoint(far) };
        return {
          name: peer.name,
          ...(config.insecurePlaintext ? {} : { publicKey: this.keys[peer.name]!.publicKey }),
          prefixes,
          ...(Object.keys(endpoints).length > 0 ? { endpoints } : {}),
          links: [...new Set(pairs.map(([local]) => local.name))],
          ...(sc.persistentKeepaliveMs ? { persistentKeepaliveMs: sc.persistentKeepaliveMs } : {}),
        };
      });
      site.peerConfigs = peers;
      const linkConfigs = sc.links.map((l) => {
        const lc = typeof l === 'string' ? { name: l } : l;
        return {
          name: lc.name,
          ...(lc.costTier ? { costTier: lc.costTier } : {}),
          ...(lc.bandwidthBps ? { bandwidthBps: lc.bandwidthBps } : {}),
          ...(lc.dscp !== undefined ? { dscp: lc.dscp } : {}),
        };
      });
      const crypto: EndpointConfig['crypto'] = config.insecurePlaintext
        ? undefined
        : { privateKey: this.keys[site.name]!.privateKey, wallClockEpochMs: epoch, openInPlace: true, ...(config.aead ? { aead: config.aead } : {}), ...(config.aesAccelerated ? { aesAccelerated: true } : {}) };
      const endpointConfig = (): EndpointConfig => ({
        ...(crypto ? { crypto } : {}),
        ...config.endpoint,
        ...sc.endpoint,
        site: site.name,
        // A hub probes its spokes' idle paths, they yield (peer-idle.ts epochForRole).
        role: site.role,
        links: linkConfigs,
        peers: site.peerConfigs,
      });
      const factory = (nowMs: number): SiteEngine => new CoreEndpoint(endpointConfig(), nowMs, this.rng.fork());
      this.engineFactory.set(site, factory);
    }
    const part = config.partition;
    if (part !== undefined) {
      for (const site of this.sites) {
        site.partition = part.of(site.name);
        site.remote = site.partition !== part.index;
      }
      this.checkPartitionLinks();
    }
    for (const site of this.sites) site.setEdge(this.engineFor(site, 0));
  }

  /**
   * The site's engine, or for a site another partition runs a stand-in: the Rng is forked either
   * way, so every partition's engines get the streams the single World would give them.
   */
  private engineFor(site: Site, nowMs: number): SiteEngine {
    if (!site.remote) return this.engineFactory.get(site)!(nowMs);
    this.rng.fork();
    return new RemoteSiteEngine(site.name);
  }

  /** Connections between partitions: only what can be decided at send time (no NAT, netem or access line). */
  private checkPartitionLinks(): void {
    for (const c of this.connections) {
      if (c.a.site.partition === c.b.site.partition) continue;
      const bad = c.a.nat || c.b.nat ? 'NAT' : c.ab.netem || c.ba.netem ? 'netem' : c.a.uplink || c.a.downlink || c.b.uplink || c.b.downlink ? 'an access line' : undefined;
      if (bad !== undefined) throw new Error(`World: connection ${c.name} joins two partitions and has ${bad}; keep such connections plain (delay, jitter, loss, rate) or put both sites in one partition`);
    }
  }

  /**
   * The partitioned World's lookahead: the least time a datagram takes between partitions (delay
   * minus jitter over every connection that joins two). A partition may run this far ahead of the
   * others' last exchange. Infinity when no connection joins two partitions.
   */
  partitionLookaheadMs(): number {
    let min = Infinity;
    for (const c of this.connections) {
      if (c.a.site.partition === c.b.site.partition) continue;
      for (const d of [c.ab, c.ba]) min = Math.min(min, d.impairment.delayMs - d.impairment.jitterMs);
    }
    return min;
  }

  /** For each site `site` has a connection to: its (local link, far link) pairs. */
  private neighbours(site: Site): Map<Site, [SiteLink, SiteLink][]> {
    const out = new Map<Site, [SiteLink, SiteLink][]>();
    for (const l of site.links) {
      for (const c of l.connections) {
        const far = c.a === l ? c.b : c.a;
        const list = out.get(far.site) ?? [];
        list.push([l, far]);
        out.set(far.site, list);
      }
    }
    return out;
  }

  private siteLink(ref: string): SiteLink {
    const dot = ref.indexOf('.');
    const site = dot < 0 ? undefined : this.siteByName.get(ref.slice(0, dot));
    if (!site) throw new Error(`World: "${ref}" is not SITE.LINK of a configured site (sites: ${[...this.siteByName.keys()].join(', ')})`);
    const l = site.links.find((x) => x.name === ref.slice(dot + 1));
    if (!l) throw new Error(`World: site ${site.name} has no link "${ref.slice(dot + 1)}" (have: ${site.linkNames.join(', ')})`);
    return l;
  }

  // ---- sites ---------------------------------------------------------------------------------

  /** Two-site shape: site a. */
  get a(): Site<Edge> {
    return this.twoSiteSite('a');
  }

  /** Two-site shape: site b. */
  get b(): Site<Edge> {
    return this.twoSiteSite('b');
  }

  private twoSiteSite(name: 'a' | 'b'): Site<Edge> {
    if (!this.twoSite) throw new Error(`World: w.${name} is the two-site shape; this world has sites ${this.sites.map((s) => s.name).join(', ')}: use w.site(name)`);
    return this.siteByName.get(name)! as unknown as Site<Edge>;
  }

  /** N-site shape: a site by name; its `edge` is the site's Endpoint. */
  site(name: string): Site<EndpointEngine> {
    const s = this.siteByName.get(name);
    if (!s) throw new Error(`World: no site named "${name}" (have: ${this.sites.map((x) => x.name).join(', ')})`);
    return s as unknown as Site<EndpointEngine>;
  }

  /** Connection names (the link names in the two-site shape). */
  get linkNames(): string[] {
    return this.connections.map((c) => c.name);
  }

  get connectionNames(): string[] {
    return this.linkNames;
  }

  /** The two ends of a connection: { a: "site.link", b: "site.link" }. */
  connectionEnds(name: string): { a: string; b: string } {
    const c = this.connection(name);
    return { a: `${c.a.site.name}.${c.a.name}`, b: `${c.b.site.name}.${c.b.name}` };
  }

  // ---- scheduling ----------------------------------------------------------------------------

  /**
   * Runs `fn` at absolute virtual time `atMs`. Afterwards the World re-reads every site's deadline
   * (fn may have called an engine directly), unless `opts.enginesViaWorld` promises that fn reaches
   * engines only through the World (site.sendTun, or w.drain(site) after a direct call), which
   * re-reads the sites it touches: with 1,001 sites that poll of every site cost ~0.4 ms per call
   * (cache misses on cold sites), 4.6% of the fleet bench's traffic window.
   */
  at(atMs: number, fn: () => void, opts?: CallOptions): void {
    const kind = opts?.enginesViaWorld === true ? EventKind.CallViaWorld : EventKind.Call;
    this.queue.push(new Scheduled(Math.max(atMs, this.nowMs), this.seqCounter++, kind, undefined, undefined, fn));
  }

  /** Runs `fn(i)` every `intervalMs`, starting at `startMs` (default now), `count` times or until `untilMs`; enginesViaWorld as in at(). */
  every(intervalMs: number, opts: { startMs?: number; count?: number; untilMs?: number } & CallOptions, fn: (i: number) => void): void {
    const start = opts.startMs ?? this.nowMs;
    const count = opts.count ?? Infinity;
    const until = opts.untilMs ?? Infinity;
    if (count === Infinity && until === Infinity) throw new Error('every(): give count or untilMs (limits on everything)');
    const callOpts: CallOptions = { enginesViaWorld: opts.enginesViaWorld === true };
    let i = 0;
    const tick = (): void => {
      if (i >= count || this.nowMs >= until) return;
      fn(i++);
      this.at(start + i * intervalMs, tick, callOpts);
    };
    this.at(start, tick, callOpts);
  }

  /** Changes the impairment of a connection (both directions unless `direction` says otherwise). */
  impair(connectionName: string, change: Partial<Impairment>, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    const c = this.connection(connectionName);
    if (direction !== 'ba') c.ab.impairment = { ...c.ab.impairment, ...change };
    if (direction !== 'ab') c.ba.impairment = { ...c.ba.impairment, ...change };
  }

  /**
   * Sets a connection's impairment in netem syntax (like `tc qdisc change ... netem ...`), or back
   * to the simple impairment with null. Packets already in the emulator keep their schedule.
   */
  setNetem(connectionName: string, spec: string | null, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    const c = this.connection(connectionName);
    const parsed = spec === null ? null : parseNetemSpec(spec);
    for (const d of direction === 'both' ? [c.ab, c.ba] : [direction === 'ab' ? c.ab : c.ba]) {
      if (parsed === null) d.netem = undefined;
      else if (d.netem) d.netem.setSpec(parsed);
      else {
        d.netem = new NetemEngine(parsed, this.rng.fork());
        d.netemDroppedSeen = 0;
      }
    }
  }

  setNetemAt(atMs: number, connectionName: string, spec: string | null, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    this.connection(connectionName);
    if (spec !== null) parseNetemSpec(spec); // fail now on a bad spec, not at atMs
    this.at(atMs, () => this.setNetem(connectionName, spec, direction));
  }

  impairAt(atMs: number, connectionName: string, change: Partial<Impairment>, direction: 'ab' | 'ba' | 'both' = 'both'): void {
    this.connection(connectionName); // fail now, not at atMs, on a typo
    this.at(atMs, () => this.impair(connectionName, change, direction));
  }

  /** The site's box restarts now: a new engine with the same keys and config, no memory of the old one. */
  restart(siteName: string): void {
    const s = this.siteByName.get(siteName);
    if (!s) throw new Error(`World: no site named "${siteName}"`);
    s.setEdge(this.engineFor(s, this.nowMs));
    this.drain(s);
  }

  restartAt(atMs: number, siteName: string): void {
    if (!this.siteByName.has(siteName)) throw new Error(`World: no site named "${siteName}"`);
    this.at(atMs, () => this.restart(siteName));
  }

  /**
   * The NAT in front of a site's link gives it a new public port now (a CGNAT rebinding): the far
   * side sees the link's datagrams from the new port; datagrams to the old port are dropped.
   */
  natRebind(siteName: string, linkName: string): void {
    const l = this.natLink(siteName, linkName);
    this.rebind(l.nat!);
  }

  natRebindAt(atMs: number, siteName: string, linkName: string): void {
    this.natLink(siteName, linkName);
    this.at(atMs, () => this.natRebind(siteName, linkName));
  }

  private natLink(siteName: string, linkName: string): SiteLink {
    const l = this.siteLink(`${siteName}.${linkName}`);
    if (!l.nat) throw new Error(`World: ${siteName}.${linkName} is not behind NAT (give the link nat: true)`);
    return l;
  }

  private rebind(nat: NatState): void {
    nat.rebinds++;
    this.natVersion++;
    nat.publicEndpoint = { address: nat.publicEndpoint.address, port: nat.publicEndpoint.port + 1 };
    nat.contacted.clear();
  }

  /**
   * Delivers raw bytes to a site's link at `atMs` as if they came from `from` (an attacker, a
   * restarted peer, a fuzzer). They bypass the connection's impairment (and any NAT).
   */
  injectAt(atMs: number, siteName: string, linkName: string, from: Endpoint, bytes: Uint8Array): void {
    const target = this.siteLink(`${siteName}.${linkName}`);
    const conn = target.connections[0];
    if (!conn) throw new Error(`World: ${siteName}.${linkName} has no connection`);
    const dir = conn.a === target ? conn.ba : conn.ab;
    const packet = new WirePacket(bytes, conn.a === target ? conn.b : conn.a, target, dir, from, visibleEndpoint(target));
    this.queue.push(new Scheduled(Math.max(atMs, this.nowMs), this.seqCounter++, EventKind.Injected, packet, dir, undefined));
  }

  /** A site link's shared access line (uplinkNetem / downlinkNetem), where it has one. */
  accessStats(siteName: string, linkName: string): { uplink?: DirectionStats; downlink?: DirectionStats } {
    const l = this.siteLink(`${siteName}.${linkName}`);
    return { ...(l.uplink ? { uplink: { ...l.uplink.stats } } : {}), ...(l.downlink ? { downlink: { ...l.downlink.stats } } : {}) };
  }

  /** Changes a site link's shared access line now ("rate 5mbit"); the line must have been configured. */
  setAccessNetem(siteName: string, linkName: string, which: 'uplink' | 'downlink', spec: string): void {
    const d = this.siteLink(`${siteName}.${linkName}`)[which];
    if (!d?.netem) throw new Error(`World: ${siteName}.${linkName} has no ${which} line (give the link ${which}Netem)`);
    d.netem.setSpec(parseNetemSpec(spec));
  }

  linkStats(connectionName: string): { ab: DirectionStats; ba: DirectionStats } {
    const c = this.connection(connectionName);
    return { ab: { ...c.ab.stats }, ba: { ...c.ba.stats } };
  }

  // ---- running -------------------------------------------------------------------------------

  /** Runs until virtual time `untilMs` (inclusive of events at exactly that time). */
  run(untilMs: number): void {
    this.runLoop(untilMs, true);
  }

  /**
   * Runs every event before `untilMs` (not those at it): one window of a partitioned run
   * (sim/parallel.ts). `rearm: false` skips re-reading every site's deadline first, for windows
   * where nothing but the World called the engines since the last (1,001 sites: ~100 us a window).
   */
  runBefore(untilMs: number, rearm = true): void {
    this.runLoop(untilMs, false, rearm);
  }

  private runLoop(untilMs: number, inclusive: boolean, rearm = true): void {
    // Engines may have been called directly since the last run (tests reconfigure them).
    if (rearm) this.rearmAll();
    let budget = this.maxEventsPerRun;
    for (;;) {
      if (--budget < 0) throw new Error(`World(seed=${this.seed}): more than ${this.maxEventsPerRun} events before ${untilMs} ms: livelock?`);
      const next = this.nextEventMs();
      if (next === undefined || next > untilMs || (!inclusive && next === untilMs)) break;
      this.nowMs = Math.max(this.nowMs, next);
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, untilMs);
  }

  /**
   * A datagram another partition sent (its exportArrival): it leaves connection direction
   * `dirKey` at `atMs` into the site this World runs. `seq` orders it among the events of the same
   * time (default: after those filed so far); sim/parallel.ts gives imports seqs above every
   * local one, so where they sort does not depend on when the exchange happened.
   */
  importArrival(atMs: number, dirKey: number, bytes: Uint8Array, seq?: number): void {
    const conn = this.connections[dirKey >> 1];
    if (conn === undefined || atMs < this.nowMs) throw new Error(`World: import of direction ${dirKey} at ${atMs} ms (now ${this.nowMs} ms): no such connection, or the lookahead was broken`);
    const ab = (dirKey & 1) === 0;
    const source = ab ? conn.a : conn.b;
    const target = ab ? conn.b : conn.a;
    const dir = ab ? conn.ab : conn.ba;
    this.queue.push(new Scheduled(atMs, seq ?? this.seqCounter++, EventKind.Arrive, new WirePacket(bytes, source, target, dir, visibleEndpoint(source), visibleEndpoint(target)), dir, undefined));
  }

  runFor(durationMs: number): void {
    this.run(this.nowMs + durationMs);
  }

  /** Asks the site's engine for its deadline and files it in the wake-up heap when it changed. */
  private rearm(site: Site): void {
    const t = site.edge.pollTimeout() ?? Infinity;
    const w = site.wakeup;
    if (t === w.atMs && w.heapPos >= 0) return;
    w.atMs = t;
    if (t === Infinity) {
      this.wakeups.remove(w);
      return;
    }
    w.seq = this.wakeSeqCounter++;
    this.wakeups.update(w);
  }

  private rearmAll(): void {
    const sites = this.sites;
    for (let i = 0; i < sites.length; i++) this.rearm(sites[i]!);
  }

  private nextEventMs(): number | undefined {
    const t = Math.min(this.queue.peek()?.atMs ?? Infinity, this.wakeups.peek()?.atMs ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  /**
   * One event: every site whose deadline is due, in configuration order (a site made due by an
   * earlier one's callbacks in this pass too, if it comes later in the order), then one queued event.
   */
  private step(): void {
    const now = this.nowMs;
    // Most events are datagrams with no engine deadline due: no wake-up pass for them.
    const first = this.wakeups.peek();
    if (first !== undefined && first.atMs <= now) this.wakeDue(now);
    const top = this.queue.peek();
    if (top && top.atMs <= now) {
      this.queue.pop();
      switch (top.kind) {
        case EventKind.Arrive:
          top.dir!.stats.delivered++;
          this.next(top.packet!, top.dir);
          break;
        case EventKind.Injected:
          this.arrive(top.packet!, true);
          break;
        case EventKind.Call:
          top.fn!();
          this.rearmAll();
          break;
        case EventKind.CallViaWorld:
          top.fn!();
          break;
        case EventKind.NetemPoll:
          this.pollNetem(top.dir!);
          break;
      }
    }
  }

  /** Wakes every site whose deadline is due, in configuration order (see step). */
  private wakeDue(now: number): void {
    let last = -1;
    // One array for every pass (was a new one per due tick: 2% of a busy fleet's allocations).
    const due = this.dueScratch;
    due.length = 0;
    for (;;) {
      for (let top = this.wakeups.peek(); top && top.atMs <= now; top = this.wakeups.peek()) {
        this.wakeups.remove(top);
        due.push(top.site);
      }
      let pick = -1;
      for (let i = 0; i < due.length; i++) if (due[i]!.index > last && (pick < 0 || due[i]!.index < due[pick]!.index)) pick = i;
      if (pick < 0) break;
      const site = due[pick]!;
      due[pick] = due[due.length - 1]!;
      due.pop();
      last = site.index;
      site.edge.handleTimeout(now);
      this.drain(site);
    }
    // Due again, but earlier in the order than a site woken after them: the next pass.
    for (const site of due) this.rearm(site);
  }

  /** Sends a datagram on to the stage after `left` (undefined: it just left its site). */
  private next(p: WirePacket, left: Direction | undefined): void {
    if (left === undefined && p.source.uplink) return this.through(p.source.uplink, p);
    if (left === undefined || left === p.source.uplink) return this.through(p.dir, p);
    if (left === p.dir && p.target.downlink) return this.through(p.target.downlink, p);
    this.arrive(p, false);
  }

  /** Offers a datagram to one stage (a netem engine, or the simple impairment). */
  private through(d: Direction, p: WirePacket): void {
    if (d.impairment.mtuBytes > 0 && p.bytes.length + 28 > d.impairment.mtuBytes) {
      d.stats.sent++;
      d.stats.bytes += p.bytes.length;
      d.stats.tooBig++;
      return;
    }
    if (d.netem) {
      d.stats.sent++;
      d.stats.bytes += p.bytes.length;
      d.netem.enqueue(this.nowMs, p);
      this.scheduleNetemPoll(d);
      return;
    }
    const at = d.admit(this.nowMs, p.bytes.length, this.rng);
    if (at === undefined) return;
    const target = p.target.site;
    if (target.remote && d === p.dir) {
      // Another partition runs the target (no NAT, netem or access line on such a connection):
      // arrival time and bytes are all it needs, and they are known now.
      // (A microsecond of slack: 32768.2 - 32758.2 is 9.999999999996 in floating point; the
      // importing side compares sums, which round the same way on both sides.)
      if (at - this.nowMs < this.exportMinDelayMs - 1e-3) throw new Error(`World: a datagram sent at ${this.nowMs} ms on direction ${d.key} would arrive at ${at} ms, sooner than the ${this.exportMinDelayMs} ms lookahead: a connection between partitions got faster than the lookahead`);
      this.exportArrival!(target.partition, at, d.key, p.bytes);
      return;
    }
    this.queue.push(new Scheduled(at, this.seqCounter++, EventKind.Arrive, p, d, undefined));
  }

  /**
   * A datagram reaches its site link: through the link's NAT (if any) into the engine. A
   * connection counts it delivered when it leaves the connection; a NAT may still drop it.
   */
  private arrive(p: WirePacket, injected: boolean): void {
    const nat = p.target.nat;
    if (!injected && nat) {
      if (p.to.port !== nat.publicEndpoint.port || p.to.address !== nat.publicEndpoint.address || !nat.contacted.has(endpointKey(p.from))) {
        p.dir.stats.natDropped++;
        return;
      }
    }
    const site = p.target.site;
    site.edge.handleDatagram(this.nowMs, p.target.id, p.from, p.bytes);
    this.drain(site);
  }

  /** Moves a site's transmits onto the connections and its deliveries into its record. */
  drain(site: Site): void {
    const edge = site.edge;
    for (let t = edge.pollTransmit(); t; t = edge.pollTransmit()) {
      const link = site.links[t.linkId];
      if (!link) {
        site.unroutable++;
        continue;
      }
      this.tap?.(site.name, t.linkId, t.bytes, this.nowMs);
      const nat = link.nat;
      if (nat) {
        if (nat.idleTimeoutMs !== undefined && this.nowMs - nat.lastOutboundMs > nat.idleTimeoutMs && nat.lastOutboundMs > -Infinity) this.rebind(nat);
        nat.lastOutboundMs = this.nowMs;
        nat.contacted.add(endpointKey(t.to));
      }
      const route = this.routeTo(link, t.to);
      if (route === undefined) {
        // To a NAT's address on a port it no longer maps (after a rebinding): the NAT drops it.
        const stale = link.connections.find((c) => (c.a === link ? c.b : c.a).nat?.publicEndpoint.address === t.to.address);
        if (stale) {
          const d = stale.a === link ? stale.ab : stale.ba;
          d.stats.sent++;
          d.stats.natDropped++;
        } else site.unroutable++;
        continue;
      }
      // The datagram is copied onto the "wire": the sender may not mutate what is in flight. The
      // copy is the receiver's to keep, so the engines open data in place (openInPlace), as `braid
      // up` does: a netem duplicate shares its bytes, but it is dropped as a replay before decryption.
      this.next(new WirePacket(copyBytes(t.bytes), link, route.far, route.dir, visibleEndpoint(link), t.to), undefined);
    }
    for (let p = edge.pollDelivery(); p; p = edge.pollDelivery()) {
      site.deliveredCount++;
      site.onDeliver?.(p, this.nowMs);
      if (this.record) site.delivered.push({ atMs: this.nowMs, bytes: p });
    }
    for (let e = edge.pollEvent(); e; e = edge.pollEvent()) site.events.push(e);
    this.rearm(site);
  }

  /** The route of the first of the link's connections whose far end is visible at `to`. */
  private routeTo(link: SiteLink, to: Endpoint): Route | undefined {
    if (link.routesVersion !== this.natVersion) this.buildRoutes(link);
    const routes = link.routes.length <= 8 ? link.routes : link.routesByAddress!.get(to.address);
    if (routes === undefined) return undefined;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.port === to.port && r.address === to.address) return r;
    }
    return undefined;
  }

  private buildRoutes(link: SiteLink): void {
    link.routes = link.connections.map((conn) => {
      const far = conn.a === link ? conn.b : conn.a;
      const v = visibleEndpoint(far);
      return { address: v.address, port: v.port, far, dir: conn.a === link ? conn.ab : conn.ba };
    });
    link.routesByAddress = undefined;
    if (link.routes.length > 8) {
      const index = new Map<string, Route[]>();
      for (const r of link.routes) {
        const list = index.get(r.address);
        if (list) list.push(r);
        else index.set(r.address, [r]);
      }
      link.routesByAddress = index;
    }
    link.routesVersion = this.natVersion;
  }

  private scheduleNetemPoll(dir: Direction): void {
    const due = dir.netem?.nextDeadlineMs();
    if (due === undefined || due >= dir.netemPollAtMs) return;
    dir.netemPollAtMs = due;
    this.queue.push(new Scheduled(Math.max(due, this.nowMs), this.seqCounter++, EventKind.NetemPoll, undefined, dir, undefined));
  }

  private pollNetem(dir: Direction): void {
    dir.netemPollAtMs = Infinity;
    const engine = dir.netem;
    if (!engine) return;
    for (const d of engine.poll(this.nowMs)) {
      const p = d.packet;
      dir.stats.delivered++;
      this.next(d.bytes === p.bytes ? p : new WirePacket(d.bytes, p.source, p.target, p.dir, p.from, p.to), dir);
    }
    const c = engine.counters();
    const dropped = c.dropped.loss + c.dropped.limit;
    dir.stats.lost += dropped - dir.netemDroppedSeen;
    dir.netemDroppedSeen = dropped;
    this.scheduleNetemPoll(dir);
  }

  private connection(name: string): Connection {
    const c = this.connections.find((x) => x.name === name);
    if (!c) throw new Error(`World: no ${this.twoSite ? 'link' : 'connection'} named "${name}" (have: ${this.connections.map((x) => x.name).join(', ')})`);
    return c;
  }
}

function stripUndefined(l: Partial<Impairment>): Partial<Impairment> {
  const out: Partial<Impairment> = {};
  if (l.up !== undefined) out.up = l.up;
  if (l.delayMs !== undefined) out.delayMs = l.delayMs;
  if (l.jitterMs !== undefined) out.jitterMs = l.jitterMs;
  if (l.lossRatio !== undefined) out.lossRatio = l.lossRatio;
  if (l.rateBps !== undefined) out.rateBps = l.rateBps;
  if (l.queueLimitPackets !== undefined) out.queueLimitPackets = l.queueLimitPackets;
  if (l.mtuBytes !== undefined) out.mtuBytes = l.mtuBytes;
  return out;
}
