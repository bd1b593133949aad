/**
 * JIT warm-up of the data path, run by `braid up` before its Endpoint sees a packet (issue 13,
 * idle RTT).
 *
 * Why: V8 runs a function in its interpreter until it has run enough to be compiled (TurboFan,
 * after a few hundred calls). Under load that happens within milliseconds; on an idle tunnel it
 * does not: after start, a ping every 50 ms ran the whole per-packet path (route, flow table,
 * frame, seal or open, steer) interpreted, ~210-260 us of JS per packet per edge instead of
 * ~40-90 after traffic had compiled it, and an echo crosses that path four times (TUN read and UDP
 * read at each edge). docs/BENCHMARKS.md "Idle RTT and `cipher: auto`" and "Idle RTT, 2026-12-06
 * session 6" have the measurements.
 *
 * How: a throwaway pair of Endpoints built from the real configuration (the same links, classes,
 * rules, cipher setting and AEAD factory; fresh keys; documentation addresses) exchanges a few
 * thousand packets in virtual time: TCP data one way, ACKs back, ICMP echoes and replies, the
 * handshake and the probes. Methods are shared by every instance of a class, so the real Endpoint
 * starts with compiled code. Each side runs through the real Driver over stand-ins for the TUN
 * and the link sockets (jit-warmup-shell.ts): batches of Buffers viewed into a slab, as the readers
 * hand them, SendBatch, SourceEndpointCache and the TUN write branch the real TUN will take, so
 * the shell's code is compiled too. Nothing is sent, nothing leaves the process, the pair's
 * deliveries are counted and dropped.
 *
 * Bounded: WARMUP_ROUND_TRIPS round trips, and it stops early past WARMUP_BUDGET_MS of wall time
 * (a slow or busy box starts a little colder rather than later).
 *
 * Limits, measured (docs/BENCHMARKS.md): part of the compiled code deoptimizes at the real edge's
 * first packets (node --trace-deopt: "wrong map" in buildData, decodeEnvelopeStrict, PathStats,
 * ...: the real peer's objects are not the pair's), and V8 then recompiles it at its usual pace.
 * So the pair is kept and runs again, in slices, once real traffic has been through
 * (DataPathRewarm, below). Lowering V8's tier-up budget
 * (--interrupt-budget=4096) made that recompiling quicker but cost each edge ~80% more CPU at 50
 * pings/s (compile churn), so it is not done.
 */
import { Buffer } from 'node:buffer';
import { Endpoint, type EndpointConfig } from '../core/endpoint.ts';
import { generateKeyPair, type X25519KeyPair } from '../core/crypto/keys.ts';
import type { Endpoint as UdpEndpoint } from '../core/types.ts';
import { SystemRng, monotonicNowMs } from './clock.ts';
import { Driver } from './driver.ts';
import { formatIpv4 } from './ipv4.ts';
import { WarmLink, WarmTun } from './jit-warmup-shell.ts';

/** Round trips of the warm-up: 4 packets each (data, echo; ACK, reply). ~1,000 compile the path (node --trace-opt). */
export const WARMUP_ROUND_TRIPS = 1000;
/** Round trips run whatever the wall clock says (fewer compile too little to matter). */
const MIN_ROUND_TRIPS = 256;
/** Wall-clock bound of the whole warm-up (past MIN_ROUND_TRIPS). */
export const WARMUP_BUDGET_MS = 400;
/** Added to every virtual time step: the pair's clock is fractional, as monotonicNowMs() is. */
const TIME_FRACTION_MS = 0.137;
/** Virtual time the pair may take for the handshake and the paths' first probes before data flows. */
const SETTLE_MS = 3000;

export interface WarmupResult {
  roundTrips: number;
  /** Inner packets the pair delivered (4 per round trip once the paths are up). */
  delivered: number;
  /** Virtual ms until the first packet got through (handshake, first probes). */
  settleMs: number;
  elapsedMs: number;
}

const A_INNER = [10, 255, 0, 1];
const B_INNER = [10, 255, 0, 2];

/**
 * Flows the pair cycles through (TCP ports and ICMP ids). One flow each way was not enough: a
 * flow's table slot comes from a keyed hash, a uint32 that is a V8 small integer (below 2^30)
 * only a quarter of the time; with two flows the pair often compiled the flow table for small
 * integers only, and the real edge's first flow deoptimised it ("not a Smi" in probeKey, and in
 * sendInner, which inlines it), leaving the send path in the baseline tier for the next ~500
 * packets: at an idle tunnel's ping rate, the whole measurement (issue 13, idle RTT).
 */
const WARM_FLOWS = 16;
/**
 * Every SPARSE_EVERY-th round trip the pair's clock jumps SPARSE_GAP_MS, as between the packets of
 * a ping or a voice call: code that only runs after a pause (sent-mark ring's ageing, path
 * timers) must have run here too, or its first real pause deoptimises it ("insufficient type
 * feedback" in PathStats.onSent / ReportRing.note on the first idle pings).
 */
const SPARSE_EVERY = 16;
const SPARSE_GAP_MS = 50;

/** A minimal IPv4 packet in a Buffer view (no checksums: the core does not verify them). */
function ipv4(src: readonly number[], dst: readonly number[], protocol: 1 | 6, payloadBytes: number, icmpType = 8, flow = 0): Buffer {
  const p = Buffer.alloc(2048).subarray(0, 20 + payloadBytes);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = protocol;
  p.set(src, 12);
  p.set(dst, 16);
  if (protocol === 6) {
    const a = icmpType === 8; // the A -> B direction of the flow
    p.writeUInt16BE(a ? 40000 + flow : 5201, 20);
    p.writeUInt16BE(a ? 5201 : 40000 + flow, 22);
    p[32] = 0x50; // data offset: 5 words
    p[33] = payloadBytes > 20 ? 0x18 : 0x10; // PSH+ACK / ACK
  } else {
    p[20] = icmpType;
    p.writeUInt16BE(0x4242 + flow, 24); // echo identifier: one flow per id
  }
  return p;
}

/** Endpoints made the way SourceEndpointCache makes them (formatted strings), one per link. */
function endpointsOn(links: EndpointConfig['links'], addressU32: number): UdpEndpoint[] {
  return links.map((_, i) => ({ address: formatIpv4(addressU32), port: 51900 + i }));
}

/**
 * The throwaway pair, kept so that it can run again later (DataPathRewarm). Its clock is virtual:
 * it starts at the wall clock's monotonic time and advances ~1.14 ms per round trip, whatever
 * the wall clock does, so its timers (probes, keepalives) never fire in bulk.
 */
export class DataPathWarmer {
  private readonly a: Endpoint;
  private readonly b: Endpoint;
  /** The real Driver over stand-ins (jit-warmup-shell.ts), one per side: the shell's code warms too. */
  private readonly tunA: WarmTun;
  private readonly tunB: WarmTun;
  private readonly linksA: WarmLink[];
  private readonly linksB: WarmLink[];
  private readonly driverA: Driver;
  private readonly driverB: Driver;
  private readonly data = Array.from({ length: WARM_FLOWS }, (_, f) => ipv4(A_INNER, B_INNER, 6, 1380, 8, f));
  private readonly ack = Array.from({ length: WARM_FLOWS }, (_, f) => ipv4(B_INNER, A_INNER, 6, 20, 0, f));
  private readonly echo = Array.from({ length: WARM_FLOWS }, (_, f) => ipv4(A_INNER, B_INNER, 1, 64, 8, f));
  private readonly reply = Array.from({ length: WARM_FLOWS }, (_, f) => ipv4(B_INNER, A_INNER, 1, 64, 0, f));
  /** pulse()'s one-packet batches, built once. */
  private readonly echoOne = this.echo.map((p) => [p]);
  private readonly replyOne = this.reply.map((p) => [p]);
  private now: number;
  /** pulse() calls so far. */
  pulses = 0;
  /** Round trips run so far, over every run. */
  roundTrips = 0;
  /** Virtual ms until the first packet got through (handshake, first probes); Infinity if none did. */
  readonly settleMs: number;

  /**
   * Builds the pair from `base` and runs the handshake and the first probes (bounded by SETTLE_MS
   * of virtual time). `shell`: the real TUN's MTU and offload setting, mirrored by the stand-in.
   */
  constructor(base: EndpointConfig, shell: { tunMtuBytes?: number; tunOffload?: boolean } = {}) {
    const started = monotonicNowMs();
    const rng = new SystemRng();
    const keys = { a: generateKeyPair(rng), b: generateKeyPair(rng) };
    const address = { a: 0xc0000201, b: 0xc0000202 }; // 192.0.2.1, 192.0.2.2
    const mk = (me: 'a' | 'b', far: 'a' | 'b', own: X25519KeyPair): Endpoint =>
      new Endpoint(
        {
          ...base,
          site: `warm-${me}`,
          ...(base.crypto ? { crypto: { ...base.crypto, privateKey: own.privateKey } } : {}),
          peers: [
            {
              name: `warm-${far}`,
              // Both families, as the two-site setup's lone peer gets (up.ts peerConfigsFrom): the
              // prefix table compiled for the shape the real one most often has.
              prefixes: ['0.0.0.0/0', '::/0'],
              ...(base.crypto ? { publicKey: keys[far].publicKey } : {}),
              endpoints: Object.fromEntries(base.links.map((l, i) => [l.name, endpointsOn(base.links, address[far])[i]!])),
            },
          ],
        },
        started,
        rng,
      );
    this.a = mk('a', 'b', keys.a);
    this.b = mk('b', 'a', keys.b);
    const mtu = shell.tunMtuBytes ?? 1420;
    this.tunA = new WarmTun(mtu, shell.tunOffload === true);
    this.tunB = new WarmTun(mtu, shell.tunOffload === true);
    this.linksA = base.links.map((_, i) => new WarmLink(address.a, 51900 + i));
    this.linksB = base.links.map((_, i) => new WarmLink(address.b, 51900 + i));
    const clock = (): number => this.now;
    this.driverA = new Driver({ edge: this.a, tun: this.tunA, links: this.linksA, now: clock });
    this.driverB = new Driver({ edge: this.b, tun: this.tunB, links: this.linksB, now: clock });
    // Stopped before started: the Drivers never arm a timer (the pair's clock is virtual; tick()
    // runs its timeouts), and start() only subscribes them to the stand-ins.
    for (const d of [this.driverA, this.driverB]) {
      d.stop();
      d.start();
    }
    // The real Endpoint sees monotonicNowMs(): fractional milliseconds. A pair run at 0, 1, 2, ...
    // ms compiled its time arithmetic and fields for small integers (V8 "Smi"), and the real
    // edge's first packets deoptimised that code ("not a Smi", "lost precision").
    this.now = started + TIME_FRACTION_MS;
    // Handshake (the first packet starts it) and the paths' first probes, until an echo gets through.
    for (let t = 0; t < SETTLE_MS && this.delivered === 0; t += 10) {
      this.tunA.feed([this.echo[0]!]);
      this.tick(10 + TIME_FRACTION_MS);
    }
    this.settleMs = this.delivered > 0 ? this.now - started : Infinity;
  }

  /** Inner packets the pair delivered (wrote to its stand-in TUNs) so far. */
  get delivered(): number {
    return this.tunA.counters.txPackets + this.tunB.counters.txPackets;
  }

  /**
   * Runs up to `roundTrips` round trips, stopping early once past `budgetMs` of wall time
   * (checked before each round trip past the first `minRoundTrips`). Returns how many it ran; 0
   * when the pair never got a packet through (a configuration it cannot mirror).
   */
  run(roundTrips: number, budgetMs: number, minRoundTrips = 0): number {
    if (this.delivered === 0) return 0;
    const until = monotonicNowMs() + budgetMs;
    let n = 0;
    for (; n < roundTrips; n++) {
      if (n >= minRoundTrips && monotonicNowMs() > until) break;
      const f = this.roundTrips % WARM_FLOWS;
      this.tunA.feed([this.data[f]!, this.echo[f]!]);
      this.exchange();
      this.tunB.feed([this.ack[f]!, this.reply[f]!]);
      this.roundTrips++;
      // ~1 ms per round trip (~11 Mbit/s of data, under the shaper of most configured links), and a
      // pause now and then (SPARSE_EVERY).
      this.tick((this.roundTrips % SPARSE_EVERY === 0 ? SPARSE_GAP_MS : 1) + TIME_FRACTION_MS);
    }
    return n;
  }

  /**
   * One inner packet through the pair (keep-warm.ts): an echo A -> B, the next call its reply
   * B -> A. Either way the process runs its whole send path (TUN batch, flow, frame, seal, link
   * batch) and its whole receive path (open, reorder, TUN write) once; the pair's clock moves
   * ~1.14 ms and its timers run. Nothing leaves the process.
   */
  pulse(): void {
    if (this.delivered === 0) return;
    const k = this.pulses++;
    const f = (k >> 1) % WARM_FLOWS;
    if ((k & 1) === 0) this.tunA.feed(this.echoOne[f]!);
    else this.tunB.feed(this.replyOne[f]!);
    this.exchange();
    this.tick(1 + TIME_FRACTION_MS);
  }

  /** Carries what each side sent to the other until nothing moves (bounded). */
  private exchange(): void {
    for (let moved = true, rounds = 0; moved && rounds < 64; rounds++) {
      moved = false;
      for (let i = 0; i < this.linksA.length; i++) {
        if (this.linksA[i]!.deliverTo(this.linksB[i]!)) moved = true;
        if (this.linksB[i]!.deliverTo(this.linksA[i]!)) moved = true;
      }
    }
  }

  private tick(stepMs: number): void {
    this.now += stepMs;
    for (const d of [this.driverA, this.driverB]) {
      d.command((e, now) => {
        const due = e.pollTimeout();
        if (due !== undefined && due <= now) e.handleTimeout(now);
      });
    }
    this.exchange();
  }
}

/**
 * Runs the warm-up for `base`, the configuration the real Endpoint is about to be built from.
 * A pair that delivers nothing (a configuration the pair cannot mirror) costs only its time.
 * `warmer` is the pair, for DataPathRewarm.
 */
export function warmUpDataPath(base: EndpointConfig, shell: { tunMtuBytes?: number; tunOffload?: boolean } = {}): WarmupResult & { warmer: DataPathWarmer } {
  const started = monotonicNowMs();
  const warmer = new DataPathWarmer(base, shell);
  // At least MIN_ROUND_TRIPS, however slow the box: fewer compile nothing.
  const roundTrips = warmer.run(WARMUP_ROUND_TRIPS, Math.max(0, WARMUP_BUDGET_MS - (monotonicNowMs() - started)), MIN_ROUND_TRIPS);
  return { roundTrips, delivered: warmer.delivered, settleMs: warmer.settleMs, elapsedMs: monotonicNowMs() - started, warmer };
}

/** What the edge has carried so far, for DataPathRewarm's triggers. */
export interface TrafficSeen {
  /** Datagrams received on the link that has received the fewest (handshake, probes, data). */
  fewestLinkDatagrams: number;
  /** Inner packets read from the TUN (sent into the overlay). */
  tunReads: number;
  /** Inner packets written to the TUN (received from the overlay). */
  tunWrites: number;
}

/** One re-warm: when it runs and how many round trips. */
interface RewarmStep {
  readonly due: (t: TrafficSeen) => boolean;
  readonly roundTrips: number;
}

/**
 * The re-warms, in order: one, once every link has received a datagram (the real session is up
 * and each path answers probes: most deopts happen there, before any data), as early as possible
 * so that its ~0.5 s of CPU is over before the first real packets. A second one at the first
 * inner packets both ways (the data path's own objects) ran into them: on the shared 2-core box
 * (load ~6) the first 50 pings after start had 20-125 ms outliers while both edges re-warmed, so
 * it is not done (docs/BENCHMARKS.md "Idle RTT, 2026-12-06 session 6").
 */
export const REWARMS: readonly RewarmStep[] = [{ due: (t) => t.fewestLinkDatagrams >= 1, roundTrips: 600 }];
/** Wall time of one slice: a real packet that arrives meanwhile waits at most about this long. */
const REWARM_SLICE_MS = 1;
/** Wall time of all the slices of one re-warm together. */
const REWARM_BUDGET_MS = 400;
/** How often the traffic is looked at until the last re-warm (the only wake-ups it adds). */
const REWARM_POLL_MS = 100;
/** Stops watching after this long even if the traffic never came (the pair's memory is freed). */
const REWARM_WATCH_MS = 30 * 60_000;

export interface RewarmResult {
  /** Which re-warm (index into REWARMS). */
  index: number;
  roundTrips: number;
  slices: number;
  /** Wall time inside the slices. */
  busyMs: number;
}

/**
 * Runs the start warm-up's pair again once the real Endpoint has carried real traffic (REWARMS),
 * in slices of REWARM_SLICE_MS between the event loop's turns.
 *
 * Why (issue 13, docs/BENCHMARKS.md "Idle RTT, 2026-12-06 session 6"): the real edge's first
 * packets deoptimise part of the code the start warm-up compiled, because the real peer's objects
 * and values are not the pair's ("wrong map", branches the pair never took, numbers past the
 * small-integer range), and at an idle tunnel's ~20-100 packets a second V8 took many seconds to
 * compile it again. Once the real objects have been through, every call site's feedback has both
 * the pair's and the real ones, so what the pair compiles then serves the real edge too. Nothing
 * is sent; the pair's deliveries are dropped as before.
 */
export class DataPathRewarm {
  private warmer: DataPathWarmer | undefined;
  private next = 0;
  private poll: NodeJS.Timeout | undefined;
  private slice: NodeJS.Immediate | undefined;
  private running: RewarmResult | undefined;
  private readonly watchUntilMs: number;

  constructor(
    warmer: DataPathWarmer,
    private readonly traffic: () => TrafficSeen,
    private readonly onDone: (result: RewarmResult) => void = () => undefined,
  ) {
    this.warmer = warmer.settleMs === Infinity ? undefined : warmer;
    this.watchUntilMs = monotonicNowMs() + REWARM_WATCH_MS;
  }

  start(): void {
    if (this.warmer === undefined || this.poll !== undefined) return;
    this.poll = setInterval(() => this.check(), REWARM_POLL_MS);
    this.poll.unref();
  }

  /** Stops watching and any re-warm in progress, and lets the pair go. */
  stop(): void {
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.slice !== undefined) clearImmediate(this.slice);
    this.poll = undefined;
    this.slice = undefined;
    this.warmer = undefined;
  }

  private check(): void {
    if (this.running !== undefined) return;
    const step = REWARMS[this.next];
    if (step === undefined || monotonicNowMs() > this.watchUntilMs) {
      this.stop();
      return;
    }
    if (!step.due(this.traffic())) return;
    this.running = { index: this.next, roundTrips: 0, slices: 0, busyMs: 0 };
    this.next++;
    this.runSlice();
  }

  private readonly runSlice = (): void => {
    this.slice = undefined;
    const r = this.running;
    const warmer = this.warmer;
    if (r === undefined || warmer === undefined) return;
    const target = REWARMS[r.index]!.roundTrips;
    const t0 = monotonicNowMs();
    r.roundTrips += warmer.run(target - r.roundTrips, REWARM_SLICE_MS, 1);
    r.slices++;
    r.busyMs += monotonicNowMs() - t0;
    if (r.roundTrips < target && r.busyMs < REWARM_BUDGET_MS) {
      this.slice = setImmediate(this.runSlice);
      return;
    }
    this.running = undefined;
    if (this.next >= REWARMS.length) this.stop();
    this.onDone(r);
  };
}
