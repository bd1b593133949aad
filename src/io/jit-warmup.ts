/**
 * JIT warm-up of the data path, run by `braid up` before its Endpoint sees a packet (issue 13,
 * idle RTT).
 *
 * Why: V8 runs a function in its interpreter until it has run enough to be compiled (TurboFan,
 * after a few hundred calls). Under load that happens within milliseconds; on an idle tunnel it
 * does not: after start, a ping every 50 ms ran the whole per-packet path (route, flow table,
 * frame, seal or open, steer) interpreted, ~210-260 us of JS per packet per edge instead of
 * ~40-90 after traffic had compiled it, and an echo crosses that path four times (TUN read and UDP
 * read at each edge). docs/BENCHMARKS.md "Idle RTT: where the time went" has the measurements.
 *
 * How: a throwaway pair of Endpoints built from the real configuration (the same links, classes,
 * rules, cipher setting and AEAD factory; fresh keys; documentation addresses) exchanges a few
 * thousand packets in virtual time: TCP data one way, ACKs back, ICMP echoes and replies, the
 * handshake and the probes. Methods are shared by every instance of a class, so the real Endpoint
 * starts with compiled code. The packets are Buffers viewed into a larger slab, as the TUN reader
 * hands them, so the compiled code expects the same object shapes. SendBatch (the shell's sendmmsg
 * batch) is filled and cleared with the pair's transmits too; nothing is sent, nothing leaves
 * the process, the pair's deliveries are dropped.
 *
 * Bounded: WARMUP_ROUND_TRIPS round trips, and it stops early past WARMUP_BUDGET_MS of wall time
 * (a slow or busy box starts a little colder rather than later).
 *
 * Limits, measured (docs/BENCHMARKS.md): part of the compiled code deoptimizes at the first real
 * packets (node --trace-deopt: "wrong map" in sendInner, buildData, decodeEnvelopeStrict, ...: the
 * real peer's objects are not the pair's), and V8 then recompiles it at its usual pace, so the gain
 * is largest for the first few dozen packets after start. Lowering V8's tier-up budget
 * (--interrupt-budget=4096) made that recompiling quicker but cost each edge ~80% more CPU at 50
 * pings/s (compile churn), so it is not done.
 */
import { Buffer } from 'node:buffer';
import { Endpoint, type EndpointConfig } from '../core/endpoint.ts';
import { generateKeyPair, type X25519KeyPair } from '../core/crypto/keys.ts';
import type { Endpoint as UdpEndpoint } from '../core/types.ts';
import { SystemRng, monotonicNowMs } from './clock.ts';
import { formatIpv4 } from './ipv4.ts';
import { SendBatch } from './udp.ts';

/** Round trips of the warm-up: 4 packets each (data, echo; ACK, reply). ~1,000 compile the path (node --trace-opt). */
export const WARMUP_ROUND_TRIPS = 1000;
/** Round trips run whatever the wall clock says (fewer compile too little to matter). */
const MIN_ROUND_TRIPS = 256;
/** Wall-clock bound of the whole warm-up (past MIN_ROUND_TRIPS). */
export const WARMUP_BUDGET_MS = 400;
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

/** A minimal IPv4 packet in a Buffer view (no checksums: the core does not verify them). */
function ipv4(src: readonly number[], dst: readonly number[], protocol: 1 | 6, payloadBytes: number, icmpType = 8): Buffer {
  const p = Buffer.alloc(2048).subarray(0, 20 + payloadBytes);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = protocol;
  p.set(src, 12);
  p.set(dst, 16);
  if (protocol === 6) {
    p.writeUInt16BE(40000, 20);
    p.writeUInt16BE(5201, 22);
    p[32] = 0x50; // data offset: 5 words
    p[33] = payloadBytes > 20 ? 0x18 : 0x10; // PSH+ACK / ACK
  } else {
    p[20] = icmpType;
  }
  return p;
}

/** Endpoints made the way SourceEndpointCache makes them (formatted strings), one per link. */
function endpointsOn(links: EndpointConfig['links'], addressU32: number): UdpEndpoint[] {
  return links.map((_, i) => ({ address: formatIpv4(addressU32), port: 51900 + i }));
}

/** The datagram as the UDP reader hands it: a Buffer view into a slab. */
function received(slab: Buffer, bytes: Uint8Array): Buffer {
  slab.set(bytes, 0);
  return slab.subarray(0, bytes.length);
}

/**
 * Runs the warm-up for `base`, the configuration the real Endpoint is about to be built from.
 * A pair that delivers nothing (a configuration the pair cannot mirror) costs only its time.
 */
export function warmUpDataPath(base: EndpointConfig): WarmupResult {
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
      0,
      rng,
    );
  const a = mk('a', 'b', keys.a);
  const b = mk('b', 'a', keys.b);
  const fromA = endpointsOn(base.links, address.a);
  const fromB = endpointsOn(base.links, address.b);
  const batch = new SendBatch();
  const slab = Buffer.alloc(65536);
  let now = 0;
  let delivered = 0;
  const exchange = (): void => {
    for (let moved = true, rounds = 0; moved && rounds < 64; rounds++) {
      moved = false;
      for (let t = a.pollTransmit(); t; t = a.pollTransmit()) {
        if (batch.isFullFor(t.bytes.length)) batch.clear();
        batch.push(t.bytes, t.to, t.dscp);
        b.handleDatagram(now, t.linkId, fromA[t.linkId]!, received(slab, t.bytes));
        moved = true;
      }
      batch.clear();
      for (let t = b.pollTransmit(); t; t = b.pollTransmit()) {
        a.handleDatagram(now, t.linkId, fromB[t.linkId]!, received(slab, t.bytes));
        moved = true;
      }
      for (let d = a.pollDelivery(); d; d = a.pollDelivery()) delivered++;
      for (let d = b.pollDelivery(); d; d = b.pollDelivery()) delivered++;
      while (a.pollEvent());
      while (b.pollEvent());
    }
  };
  const tick = (stepMs: number): void => {
    now += stepMs;
    for (const e of [a, b]) {
      const due = e.pollTimeout();
      if (due !== undefined && due <= now) e.handleTimeout(now);
    }
    exchange();
  };
  const data = ipv4(A_INNER, B_INNER, 6, 1380);
  const ack = ipv4(B_INNER, A_INNER, 6, 20);
  const echo = ipv4(A_INNER, B_INNER, 1, 64, 8);
  const reply = ipv4(B_INNER, A_INNER, 1, 64, 0);
  // Handshake (the first packet starts it) and the paths' first probes, until an echo gets through.
  for (let t = 0; t < SETTLE_MS && delivered === 0; t += 10) {
    a.handleTunPacket(now, echo);
    tick(10);
  }
  const settleMs = now;
  let roundTrips = 0;
  if (delivered > 0) {
    for (; roundTrips < WARMUP_ROUND_TRIPS; roundTrips++) {
      // At least MIN_ROUND_TRIPS, however slow the box: fewer compile nothing.
      if (roundTrips >= MIN_ROUND_TRIPS && (roundTrips & 63) === 0 && monotonicNowMs() - started > WARMUP_BUDGET_MS) break;
      a.handleTunPacket(now, data);
      a.handleTunPacket(now, echo);
      exchange();
      b.handleTunPacket(now, ack);
      b.handleTunPacket(now, reply);
      tick(1); // 1 ms per round trip: ~11 Mbit/s of data, under the shaper of most configured links
    }
  }
  return { roundTrips, delivered, settleMs, elapsedMs: monotonicNowMs() - started };
}
