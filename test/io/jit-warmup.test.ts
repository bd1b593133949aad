/**
 * The data-path warm-up `braid up` runs before its Endpoint sees a packet (src/io/jit-warmup.ts):
 * the throwaway pair built from the real configuration must really carry traffic both ways
 * (a pair that delivers nothing would warm nothing), encrypted and in plaintext, and leave no
 * trace in the process but compiled code.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { edgeConfigFrom } from '../../src/cli/up.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { generateKeyPair } from '../../src/core/crypto/keys.ts';
import { SystemRng } from '../../src/io/clock.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';
import { DataPathRewarm, REWARMS, WARMUP_ROUND_TRIPS, warmUpDataPath, type RewarmResult, type TrafficSeen } from '../../src/io/jit-warmup.ts';

const peerKey = Buffer.from(generateKeyPair(new SystemRng()).publicKey).toString('base64');
const CONFIG = `
site: branch-1
privateKeyFile: /nonexistent/key
tun: { address: 10.99.0.1/24 }
links:
  - { name: mpls, interface: brt-none0, port: 51900 }
  - { name: inet, interface: brt-none1, port: 51901, bandwidthUp: 50mbit }
  - { name: lte, interface: brt-none2, port: 51902, costTier: backup }
peers:
  - name: hub
    publicKey: ${peerKey}
    endpoints: { mpls: 192.0.2.20:51900, inet: 198.51.100.7:51901, lte: 203.0.113.9:51902 }
rules:
  - { name: erp, match: { protocol: tcp, dstPorts: [5201] }, set: { class: business } }
`;

describe('data-path warm-up', () => {
  it('an encrypted pair from the real configuration (native AEAD, auto cipher) carries every packet of every round trip', () => {
    const cfg = parseConfigText(CONFIG, 'braid.yaml');
    const config = edgeConfigFrom(cfg, generateKeyPair(new SystemRng()).privateKey, nativeAeadFactory()?.factory, true);
    const r = warmUpDataPath(config);
    expect(r.roundTrips).toBeGreaterThan(0);
    expect(r.roundTrips).toBeLessThanOrEqual(WARMUP_ROUND_TRIPS);
    // 4 inner packets per round trip (data, echo; ACK, reply), plus the settle phase's echoes.
    expect(r.delivered).toBeGreaterThanOrEqual(4 * r.roundTrips);
  });

  it('a plaintext configuration warms too', () => {
    const cfg = parseConfigText(CONFIG.replace('privateKeyFile: /nonexistent/key', 'insecurePlaintext: true'), 'braid.yaml');
    const r = warmUpDataPath(edgeConfigFrom(cfg, undefined));
    expect(r.roundTrips).toBeGreaterThan(0);
    expect(r.delivered).toBeGreaterThanOrEqual(4 * r.roundTrips);
  });

  it('through the Driver with the offload TUN branch too (queueWrite/flushWrites), as a TUN with offloads has it', () => {
    const cfg = parseConfigText(CONFIG.replace('privateKeyFile: /nonexistent/key', 'insecurePlaintext: true'), 'braid.yaml');
    const r = warmUpDataPath(edgeConfigFrom(cfg, undefined), { tunMtuBytes: 1420, tunOffload: true });
    expect(r.roundTrips).toBeGreaterThan(0);
    expect(r.delivered).toBeGreaterThanOrEqual(4 * r.roundTrips);
  });

  it('the pair runs again later: more round trips, every packet delivered', () => {
    const cfg = parseConfigText(CONFIG, 'braid.yaml');
    const { warmer, roundTrips, delivered } = warmUpDataPath(edgeConfigFrom(cfg, generateKeyPair(new SystemRng()).privateKey, nativeAeadFactory()?.factory, true));
    expect(warmer.roundTrips).toBe(roundTrips);
    expect(warmer.run(50, 60_000)).toBe(50);
    expect(warmer.roundTrips).toBe(roundTrips + 50);
    expect(warmer.delivered).toBeGreaterThanOrEqual(delivered + 4 * 50);
  });
});

describe('re-warm after real traffic', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs each re-warm once, in order, only when its traffic has been seen, then stops watching', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
    const cfg = parseConfigText(CONFIG.replace('privateKeyFile: /nonexistent/key', 'insecurePlaintext: true'), 'braid.yaml');
    const { warmer } = warmUpDataPath(edgeConfigFrom(cfg, undefined));
    const traffic: TrafficSeen = { fewestLinkDatagrams: 0, tunReads: 0, tunWrites: 0 };
    const done: RewarmResult[] = [];
    const rewarm = new DataPathRewarm(warmer, () => traffic, (r) => done.push({ ...r }));
    rewarm.start();
    const before = warmer.roundTrips;
    const settle = (): void => {
      for (let i = 0; i < 2000 && vi.getTimerCount() > 0; i++) vi.advanceTimersByTime(100);
    };
    vi.advanceTimersByTime(1000);
    expect(done).toEqual([]);
    expect(warmer.roundTrips).toBe(before);
    // Data both ways but a link that has received nothing: the re-warm waits for every link.
    traffic.tunReads = 10;
    traffic.tunWrites = 10;
    vi.advanceTimersByTime(1000);
    expect(done).toEqual([]);
    traffic.fewestLinkDatagrams = 1;
    settle();
    expect(done.map((r) => r.index)).toEqual(REWARMS.map((_, i) => i));
    for (const [i, r] of done.entries()) {
      expect(r.roundTrips).toBeGreaterThan(0);
      expect(r.roundTrips).toBeLessThanOrEqual(REWARMS[i]!.roundTrips);
    }
    expect(warmer.roundTrips).toBe(before + done.reduce((s, r) => s + r.roundTrips, 0));
    // Nothing left to watch: no timer remains, and more traffic runs nothing more.
    expect(vi.getTimerCount()).toBe(0);
    traffic.fewestLinkDatagrams = 1000;
    vi.advanceTimersByTime(1000);
    expect(done).toHaveLength(REWARMS.length);
  });

  it('stop() ends a re-warm in progress and the watching', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
    const cfg = parseConfigText(CONFIG.replace('privateKeyFile: /nonexistent/key', 'insecurePlaintext: true'), 'braid.yaml');
    const { warmer } = warmUpDataPath(edgeConfigFrom(cfg, undefined));
    const done: RewarmResult[] = [];
    const rewarm = new DataPathRewarm(warmer, () => ({ fewestLinkDatagrams: 5, tunReads: 5, tunWrites: 5 }), (r) => done.push(r));
    rewarm.start();
    vi.advanceTimersByTime(100); // the first check starts re-warm 0 with one slice
    rewarm.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(done).toEqual([]);
  });
});
