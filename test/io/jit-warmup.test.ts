/**
 * The data-path warm-up `braid up` runs before its Endpoint sees a packet (src/io/jit-warmup.ts):
 * the throwaway pair built from the real configuration must really carry traffic both ways
 * (a pair that delivers nothing would warm nothing), encrypted and in plaintext, and leave no
 * trace in the process but compiled code.
 */
import { describe, expect, it } from 'vitest';
import { edgeConfigFrom } from '../../src/cli/up.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { generateKeyPair } from '../../src/core/crypto/keys.ts';
import { SystemRng } from '../../src/io/clock.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';
import { WARMUP_ROUND_TRIPS, warmUpDataPath } from '../../src/io/jit-warmup.ts';

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
});
