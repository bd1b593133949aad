/**
 * Issue 14 acceptance, handshake flood on the World (end to end through two Endpoints): 50,000
 * initiations with a valid mac2 from one IP over 4,096 source ports while the real peer rekeys.
 *
 * The attacker owns that one IP, so it can do what a real one does: first it fetches a cookie for
 * every one of its ports (it floods the responder with valid-mac1 probes until the responder is
 * under load and answers with cookie replies, which the World hands to the tap since no connection
 * leads to the attacker), then it sends initiations whose mac2 is valid for their source port. Its
 * own static key is unknown to the responder: every initiation that passes the limiter costs the
 * responder the Diffie-Hellman of consumeInitiation before it finds that out.
 *
 * The flood is aimed at the responder of the rekey (the side that did not initiate the first
 * session: the initiator's keypair ages to REKEY_AFTER_TIME first) and runs across the moment the
 * rekey starts. Checked: the new session is up on both sides within 2 s of the rekey's first
 * initiation, the traffic both ways never pauses for 2 s, and only one bucket of initiations per IP
 * reaches Diffie-Hellman. The CPU spent is reported (not asserted: no timed assertions in tests).
 */
import { describe, expect, it } from 'vitest';
import { World, type Site } from '../../sim/world.ts';
import { makePacket } from '../../sim/packets.ts';
import { consumeCookieReply, mac1Key, writeMacs } from '../../src/core/crypto/cookie.ts';
import { RATE_LIMIT_BURST, RATE_LIMIT_INITIATIONS_PER_SECOND, REKEY_AFTER_TIME_MS, REKEY_TIMEOUT_JITTER_MAX_MS, REKEY_TIMEOUT_MS, UNDER_LOAD_INITIATIONS_PER_SECOND } from '../../src/core/crypto/constants.ts';
import { generateKeyPair } from '../../src/core/crypto/keys.ts';
import { BRAID_PROLOGUE, COOKIE_REPLY_LENGTH, createInitiation, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, readHeaderIndex } from '../../src/core/crypto/noise.ts';
import { MAC_LENGTH } from '../../src/core/crypto/primitives.ts';
import { SeededRng } from '../../src/core/rng.ts';
import { decodeEnvelope, encodeEnvelope } from '../../src/core/wire/codec.ts';

const SEED = Number(process.env.BRAID_SEED ?? 1414);
const ATTACKER_IP = '198.51.100.7';
const PORTS = 4_096;
const FIRST_PORT = 20_000;
const FLOOD_INITIATIONS = 50_000;
const FLOOD_DURATION_MS = 10_000;
/** The flood starts this long before the rekey is due, so it runs across it. */
const FLOOD_LEAD_MS = 5_000;
const SEND_INTERVAL_MS = 20;
const RUN_UNTIL_MS = REKEY_AFTER_TIME_MS + 30_000;

function sessionEvents(site: Site, pattern: RegExp, afterMs: number): number[] {
  return site.events.filter((e) => e.kind === 'session' && pattern.test(e.message) && e.atMs >= afterMs).map((e) => e.atMs);
}

function largestGapMs(times: number[], fromMs: number, untilMs: number): number {
  let last = fromMs;
  let worst = 0;
  for (const t of times) {
    if (t < fromMs || t > untilMs) continue;
    worst = Math.max(worst, t - last);
    last = t;
  }
  return Math.max(worst, untilMs - last);
}

interface FloodRun {
  floodStartMs: number;
  rekeyStartMs: number | undefined;
  initiatorUpMs: number | undefined;
  responderUpMs: number | undefined;
  withCookie: number;
  /** Flood initiations that cost the victim its Diffie-Hellman (they failed only after it). */
  reachedDh: number;
  rateLimited: number;
  gapAtoBMs: number;
  gapBtoAMs: number;
}

/** Failures consumeInitiation reports only after the Diffie-Hellman work. */
const AFTER_DH = ['unknownPeer', 'indexMismatch', 'decryptFailed'];

function floodDuringRekey(): FloodRun {
    const w = new World({
      seed: SEED,
      recordDeliveries: false,
      sites: [
        { name: 'a', links: ['inet'], prefixes: ['10.1.0.0/16'] },
        { name: 'b', links: ['inet'], prefixes: ['10.2.0.0/16'] },
      ],
      connections: [{ a: 'a.inet', b: 'b.inet', delayMs: 10 }],
    });
    const a = w.site('a');
    const b = w.site('b');
    const arrivals: Record<string, number[]> = { a: [], b: [] };
    a.onDeliver = (_p, atMs) => arrivals['a']!.push(atMs);
    b.onDeliver = (_p, atMs) => arrivals['b']!.push(atMs);
    w.every(SEND_INTERVAL_MS, { startMs: 500, untilMs: RUN_UNTIL_MS }, (i) => {
      a.sendTun(makePacket({ src: [10, 1, 0, 5], dst: [10, 2, 0, 5], srcPort: 40_000, dstPort: 5000, sizeBytes: 200, flowId: 1, seq: i }));
      b.sendTun(makePacket({ src: [10, 2, 0, 5], dst: [10, 1, 0, 5], srcPort: 40_001, dstPort: 5000, sizeBytes: 200, flowId: 2, seq: i }));
    });

    // The attacker's side: cookie replies reach it through the tap (they are sent to its address).
    const cookieReplies: Uint8Array[] = [];
    let realInitiations: { site: string; atMs: number }[] = [];
    w.tap = (site, _linkId, bytes, atMs) => {
      const env = decodeEnvelope(bytes);
      if (!env.ok || env.value.handshake === undefined) return;
      const hs = env.value.handshake;
      if (hs[0] === MESSAGE_COOKIE_REPLY && hs.length === COOKIE_REPLY_LENGTH) cookieReplies.push(hs.slice());
      if (hs[0] === MESSAGE_INITIATION) realInitiations.push({ site, atMs });
    };

    // Quiet baseline, and which side rekeys (the first session's initiator).
    w.run(REKEY_AFTER_TIME_MS - 30_000);
    const firstInitiator = [a, b].find((s) => sessionEvents(s, /established .*initiator/, 0).length > 0);
    expect(firstInitiator, 'no first session').toBeDefined();
    const victim = firstInitiator === a ? b : a;
    const victimName = victim.name;
    const firstUpMs = Math.min(...sessionEvents(firstInitiator!, /established/, 0));
    const rekeyDueMs = firstUpMs + REKEY_AFTER_TIME_MS;
    const floodStartMs = Math.round(rekeyDueMs - FLOOD_LEAD_MS);

    const baseCpu = process.cpuUsage();
    w.runFor(FLOOD_DURATION_MS);
    const baseline = process.cpuUsage(baseCpu);

    // Well-formed initiations from a key the victim does not know, one per port with the port's
    // number as sender index, so that each cookie reply says which port it is for.
    const rng = new SeededRng(SEED ^ 0x5eed);
    const attacker = generateKeyPair(rng);
    const key1 = mac1Key(w.keys[victimName]!.publicKey);
    const portOf = (i: number): number => FIRST_PORT + i;
    const probes: Uint8Array[] = [];
    const sentMac1: Uint8Array[] = [];
    for (let i = 0; i < PORTS; i++) {
      const m = createInitiation({
        local: attacker,
        remoteStatic: w.keys[victimName]!.publicKey,
        prologue: BRAID_PROLOGUE,
        senderIndex: i,
        nowMs: 0,
        wallClockEpochMs: 1_800_000_000_000,
        ciphers: { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305'] },
        cookie: null,
        rng,
      })!.message;
      expect(readHeaderIndex(m)).toBe(i);
      sentMac1.push(m.slice(m.length - 2 * MAC_LENGTH, m.length - MAC_LENGTH));
      probes.push(m);
    }
    const flood: (Uint8Array | null)[] = new Array<Uint8Array | null>(PORTS).fill(null);
    const envelope = (hs: Uint8Array): Uint8Array => encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: hs });
    // Warm-up: two passes of probes 10 s before the flood (the first ~64 find the victim not yet
    // under load and get no cookie, so they ask again).
    for (let pass = 0; pass < 3; pass++) {
      const at = floodStartMs - 10_000 + pass * 400;
      let n = 0;
      for (let i = 0; i < PORTS; i++) {
        if (flood[i] !== null) continue;
        w.injectAt(at + n++ * 0.02, victimName, 'inet', { address: ATTACKER_IP, port: portOf(i) }, envelope(probes[i]!));
      }
      w.run(at + 300);
      for (const reply of cookieReplies.splice(0)) {
        const i = readHeaderIndex(reply);
        if (i >= PORTS || flood[i] !== null) continue;
        const cookie = consumeCookieReply(reply, w.keys[victimName]!.publicKey, sentMac1[i]!);
        if (cookie === null) continue;
        const m = probes[i]!.slice();
        writeMacs(m, key1, cookie);
        flood[i] = envelope(m);
      }
    }
    const withCookie = flood.filter((m) => m !== null).length;
    expect(withCookie).toBe(PORTS);

    for (let i = 0; i < FLOOD_INITIATIONS; i++) {
      const port = i % PORTS;
      w.injectAt(floodStartMs + (i * FLOOD_DURATION_MS) / FLOOD_INITIATIONS, victimName, 'inet', { address: ATTACKER_IP, port: portOf(port) }, flood[port]!);
    }
    w.run(floodStartMs - 1);
    // Time the victim spends handling the attacker's datagrams (envelope decode, macs, limiter, DH).
    let attackerHandlingMs = 0;
    const engine = victim.edge;
    const handleDatagram = engine.handleDatagram.bind(engine);
    engine.handleDatagram = (nowMs, linkId, from, datagram) => {
      if (from.address !== ATTACKER_IP) return handleDatagram(nowMs, linkId, from, datagram);
      const t = process.cpuUsage();
      handleDatagram(nowMs, linkId, from, datagram);
      const d = process.cpuUsage(t);
      attackerHandlingMs += (d.user + d.system) / 1000;
    };
    realInitiations = [];
    const before = victim.edge.snapshot(w.nowMs).session.handshakeDrops;
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    w.run(floodStartMs + FLOOD_DURATION_MS);
    const cpu = process.cpuUsage(cpuStart);
    const wallMs = performance.now() - wallStart;
    const after = victim.edge.snapshot(w.nowMs).session.handshakeDrops;
    w.run(RUN_UNTIL_MS);

    const rekeyStartMs = realInitiations.find((r) => r.site === firstInitiator!.name)?.atMs;
    const since = rekeyStartMs ?? Infinity;
    const initiatorUpMs = sessionEvents(firstInitiator!, /established .*initiator/, since)[0];
    // The responder's side is up when it confirms the rekey, or when its own handshake (both sides
    // may start one at once: a session each way) made a new session first; both end on one session.
    const responderUpMs = sessionEvents(victim, /confirmed|established/, since)[0];
    const delta = (k: string): number => (after[k as keyof typeof after] ?? 0) - (before[k as keyof typeof before] ?? 0);
    const reachedDh = AFTER_DH.reduce((n, k) => n + delta(k), 0);
    const rateLimited = delta('rateLimited');
    const gapAtoBMs = largestGapMs(arrivals['b']!, 1_000, RUN_UNTIL_MS - 100);
    const gapBtoAMs = largestGapMs(arrivals['a']!, 1_000, RUN_UNTIL_MS - 100);
    const ms = (c: NodeJS.CpuUsage): string => ((c.user + c.system) / 1000).toFixed(0);
    // Informational (not asserted: no timed assertions in tests).
    console.log(
      `seed ${SEED}: flood of ${FLOOD_INITIATIONS} valid-mac2 initiations from ${ATTACKER_IP} over ${PORTS} ports (${withCookie} with a cookie) into ${victimName}, ` +
        `${floodStartMs}-${floodStartMs + FLOOD_DURATION_MS} ms virtual; rekey by ${firstInitiator!.name} started at ${rekeyStartMs} ms, ` +
        `initiator up at ${initiatorUpMs} ms, responder confirmed at ${responderUpMs} ms; ${reachedDh} flood initiations reached Diffie-Hellman, ${rateLimited} rate-limited, ` +
        `victim's handshake drops in the window ${JSON.stringify(Object.fromEntries(Object.keys(after).map((k) => [k, delta(k)])))}; ` +
        `largest delivery gap a->b ${gapAtoBMs} ms, b->a ${gapBtoAMs} ms; ` +
        `victim's CPU in handleDatagram for the flood ${attackerHandlingMs.toFixed(0)} ms; CPU (whole World: both sites, traffic, scheduler) over the flood's 10 s window ${ms(cpu)} ms (wall ${wallMs.toFixed(0)} ms) vs ${ms(baseline)} ms for a quiet 10 s window`,
    );
    return { floodStartMs, rekeyStartMs, initiatorUpMs, responderUpMs, withCookie, reachedDh, rateLimited, gapAtoBMs, gapBtoAMs };
}

describe(`handshake flood on the World during a rekey (issue 14, seed ${SEED})`, () => {
  let memo: FloodRun | undefined;
  const run = (): FloodRun => (memo ??= floodDuringRekey());

  it('50,000 valid-mac2 initiations from one IP over 4,096 ports during a rekey: traffic never pauses, one bucket per IP reaches DH, the rekey completes', () => {
    const r = run();
    expect(r.withCookie).toBe(PORTS);
    expect(r.rekeyStartMs, 'the rekey did not start').toBeDefined();
    expect(r.rekeyStartMs!).toBeGreaterThanOrEqual(r.floodStartMs);
    expect(r.rekeyStartMs!).toBeLessThanOrEqual(r.floodStartMs + FLOOD_DURATION_MS - 2_000);
    expect(r.gapAtoBMs).toBeLessThanOrEqual(2_000);
    expect(r.gapBtoAMs).toBeLessThanOrEqual(2_000);
    // One bucket per IP (burst 5, then 20/s) reaches Diffie-Hellman, not one per port, plus the
    // initiations that arrive before the victim counts itself under load (WireGuard's design too:
    // below UNDER_LOAD_INITIATIONS_PER_SECOND neither cookies nor the limiter apply).
    expect(r.reachedDh).toBeLessThanOrEqual(UNDER_LOAD_INITIATIONS_PER_SECOND + RATE_LIMIT_BURST + RATE_LIMIT_INITIATIONS_PER_SECOND * (FLOOD_DURATION_MS / 1000) + 1);
    expect(r.rateLimited).toBeGreaterThanOrEqual(FLOOD_INITIATIONS - 300);
    // The rekey completes under the flood (today only on the retransmission after the cookie reply).
    expect(r.initiatorUpMs, 'rekey never completed on the initiator').toBeDefined();
    expect(r.responderUpMs, 'rekey never confirmed on the responder').toBeDefined();
    expect(Math.max(r.initiatorUpMs!, r.responderUpMs!) - r.rekeyStartMs!).toBeLessThanOrEqual(REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS + 1_000);
  });

  /*
   * Issue 14's acceptance: the real peer's rekey is up again within 2 s under the flood. The
   * rekey's first initiation meets a responder under load and gets a cookie reply; the initiator
   * resends at once with a valid mac2 (handshake-state.ts handleCookieReply; it used to wait for
   * the 5 s retransmission: 5.2 s).
   */
  it('the rekey is up again on both sides within 2 s of its first initiation', () => {
    const r = run();
    expect(r.initiatorUpMs).toBeDefined();
    expect(r.responderUpMs).toBeDefined();
    expect(Math.max(r.initiatorUpMs!, r.responderUpMs!) - r.rekeyStartMs!).toBeLessThanOrEqual(2_000);
  });
});
