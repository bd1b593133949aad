/**
 * The fleet role reaches the core (up.ts edgeConfigFrom): registry.role becomes EndpointConfig.role,
 * which orders the idle probers (src/core/peer-idle.ts epochForRole); without a registry, no role.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/control/config.ts';
import { edgeConfigFrom } from '../../src/cli/up.ts';
import { Endpoint } from '../../src/core/endpoint.ts';
import { SeededRng } from '../../src/core/rng.ts';

const base = `site: hub
privateKeyFile: /k
tun: { address: 10.0.0.1/24 }
links: [{ name: inet, interface: eth0 }]
`;

describe('config -> EndpointConfig.role', () => {
  it('a registry hub is a hub (its epoch below every spoke\'s), a registry spoke a spoke, no registry no role', () => {
    const hub = edgeConfigFrom(parseConfigText(`${base}registry:\n  etcd: { endpoints: [http://127.0.0.1:2379] }\n  role: hub\n`, 'hub.yaml'), undefined);
    const spoke = edgeConfigFrom(parseConfigText(`${base}registry:\n  etcd: { endpoints: [http://127.0.0.1:2379] }\n`, 'spoke.yaml'), undefined);
    const plain = edgeConfigFrom(parseConfigText(`${base}peers: [{ name: b1, publicKey: "${Buffer.alloc(32, 7).toString('base64')}", endpoints: { inet: "192.0.2.1:51900" } }]\n`, 'plain.yaml'), undefined);
    expect(hub.role).toBe('hub');
    expect(spoke.role).toBe('spoke');
    expect(plain.role).toBeUndefined();
    for (let seed = 1; seed <= 50; seed++) {
      const h = new Endpoint(hub, 0, new SeededRng(seed));
      const s = new Endpoint(spoke, 0, new SeededRng(seed + 1000));
      expect(h.epoch).toBeLessThan(s.epoch);
    }
  });
});
