/**
 * Edge: an Endpoint with exactly one peer, configured the two-site way (each link names the peer's
 * endpoint for it). Kept for the two-site demo, the benchmarks and the tests written before many
 * peers; everything else builds an Endpoint (endpoint.ts) from PeerConfigs. The peer gets every
 * destination (0.0.0.0/0 and ::/0) unless `prefixes` says otherwise.
 */
import { Endpoint, type EndpointConfig, type EndpointCryptoConfig } from './endpoint.ts';
import type { Rng } from './rng.ts';
import type { Endpoint as UdpEndpoint, LinkConfig } from './types.ts';

export interface EdgeLinkConfig extends LinkConfig {
  /** The peer's endpoint reached over this link. */
  remote: UdpEndpoint;
}

export interface EdgeCryptoConfig extends EndpointCryptoConfig {
  peerPublicKey: Uint8Array;
}

export interface EdgeConfig extends Omit<EndpointConfig, 'links' | 'peers' | 'crypto'> {
  links: EdgeLinkConfig[];
  crypto?: EdgeCryptoConfig;
  /** The one peer's name (default "peer") and prefixes (default everything). */
  peerName?: string;
  prefixes?: readonly string[];
}

export function edgeToEndpointConfig(config: EdgeConfig): EndpointConfig {
  const { links, crypto, peerName, prefixes, ...rest } = config;
  const endpoints: Record<string, UdpEndpoint> = {};
  for (const l of links) endpoints[l.name] = { address: l.remote.address, port: l.remote.port };
  const out: EndpointConfig = {
    ...rest,
    links: links.map(({ remote: _remote, ...l }) => l),
    peers: [{ name: peerName ?? 'peer', prefixes: prefixes ?? ['0.0.0.0/0', '::/0'], endpoints, ...(crypto ? { publicKey: crypto.peerPublicKey } : {}) }],
  };
  if (crypto) {
    const { peerPublicKey: _pk, ...c } = crypto;
    out.crypto = c;
  }
  return out;
}

export class Edge extends Endpoint {
  constructor(config: EdgeConfig, nowMs: number, rng: Rng) {
    super(edgeToEndpointConfig(config), nowMs, rng);
  }
}
