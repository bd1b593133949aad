/** Snapshots of a hub with many peers for the status, dashboard and metrics tests. */
import type { EdgeSnapshot, LinkSnapshot, PeerSnapshot } from '../../src/core/types.ts';
import { failoverSnapshot, link } from './fixtures.ts';

export function peer(name: string, over: Partial<PeerSnapshot> = {}): PeerSnapshot {
  return {
    name,
    site: name,
    prefixes: [`10.${name.length}.0.0/16`],
    pathsUp: 2,
    paths: 2,
    state: 'up',
    session: { established: true, ageMs: 42_000, cipher: 'chacha20-poly1305', handshakeAttempts: 1 },
    txPackets: 1000,
    txBytes: 1_200_000,
    rxPackets: 900,
    rxBytes: 800_000,
    forwardedPackets: 0,
    sourceNotAllowed: 0,
    duplicatesSuppressed: 0,
    flows: 3,
    flowMoves: 0,
    worstRttMs: 20,
    worstTxLossRatio: 0,
    ...over,
  };
}

/**
 * A hub with `n` spokes "b001".."bNNN", each with paths on mpls and inet. Spoke 7 is down, spoke
 * 13 loses 5% on inet, spoke 21 has 300 ms RTT, spoke 2 has no endpoint yet (idle).
 */
export function hubSnapshot(n: number): EdgeSnapshot {
  const peers: PeerSnapshot[] = [];
  const links: LinkSnapshot[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `b${String(i).padStart(3, '0')}`;
    let p = peer(name, { prefixes: [`10.${Math.floor(i / 256)}.${i % 256}.0/24`] });
    const mpls = link(0, 'mpls', { peer: name, pathId: 0, remote: `192.0.2.${i}:51900` });
    const inet = link(1, 'inet', { peer: name, pathId: 1, remote: `198.51.100.${i}:51901` });
    if (i === 7) {
      p = { ...p, state: 'down', pathsUp: 0, worstRttMs: undefined, worstTxLossRatio: undefined, session: { established: false, handshakeAttempts: 5 } };
      mpls.state = 'down';
      inet.state = 'down';
    }
    if (i === 13) {
      p = { ...p, worstTxLossRatio: 0.05, forwardedPackets: 77 };
      inet.txLossRatio = 0.05;
    }
    if (i === 21) p = { ...p, worstRttMs: 300 };
    if (i === 2) {
      p = { ...p, state: 'idle', paths: 0, pathsUp: 0, worstRttMs: undefined, worstTxLossRatio: undefined, session: { established: false, handshakeAttempts: 0 } };
    } else links.push(mpls, inet);
    peers.push(p);
  }
  return failoverSnapshot({
    site: 'hub',
    links,
    peers,
    topFlows: [
      { flow: '10.0.13.5:5060 > 10.1.0.9:5060 udp', class: 'voice', links: 'mpls', packets: 10, bytes: 2000, ageMs: 1000, rateBps: 16000, peer: 'b013' },
      { flow: '10.0.1.5:443 > 10.1.0.9:5555 tcp', class: 'default', links: 'inet', packets: 5, bytes: 1000, ageMs: 1000, rateBps: 8000, peer: 'b001' },
    ],
    recentEvents: [
      { atMs: 9000, kind: 'pathState', peer: 'b007', link: 'mpls', from: 'up', to: 'down', message: 'b007 mpls: up -> down (nothing heard for 300 ms)' },
      { atMs: 9500, kind: 'sla', peer: 'b013', link: 'inet', class: 'voice', message: 'b013 voice: inet out of SLA (loss 5.0% > 1.0%)' },
    ],
  });
}
