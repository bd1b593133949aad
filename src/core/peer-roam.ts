/**
 * Where a peer is reached, from what it proved: a path endpoint learned from an authenticated
 * handshake initiation. (Data frames move endpoints in peer.ts pathFor; a silent configured path
 * goes back to its configured endpoint in peer-timers.ts.)
 */
import type { Peer } from './peer.ts';
import { formatEndpoint, type Endpoint } from './types.ts';

/**
 * The peer's initiation on local link `linkId` came from `from` (authenticated by its static key,
 * newer than any before: WireGuard roams on it too). A hub knows no spoke address until the spoke's
 * first data frame; when our response is lost that frame never comes, and a NATed spoke's next try
 * is REKEY_TIMEOUT (5 s) away (VOPR seed 129: the hub->spoke flow back 4.8 s after the heal). With
 * a path to `from`, our own data can start a handshake toward the spoke (crypto AWAIT_CONFIRMATION_MS).
 * Only where we have no path on that link: an existing one follows the peer's data frames. The
 * path is not bound to a remote link: the peer's first authenticated frame on it binds it.
 */
export function learnFromInitiation(peer: Peer | undefined, nowMs: number, linkId: number, from: Endpoint): void {
  if (peer === undefined || !peer.linkAllowed(linkId) || peer.paths.some((p) => p.linkId === linkId)) return;
  const p = peer.newPath(nowMs, peer.host.links[linkId]!, from, false, -1);
  if (p === undefined) return;
  peer.host.emit(nowMs, 'pathLearned', { peer: peer.name, link: p.name, to: formatEndpoint(from), reason: 'handshake initiation' });
  if (peer.stagedCount > 0) peer.host.resendStaged(peer);
}

/** Plaintext mode (benchmarks only) has no session to name the peer: the only one, or by endpoint. */
export function plaintextPeer(peers: ReadonlyMap<string, Peer>, linkId: number, from: Endpoint): Peer | undefined {
  if (peers.size === 1) return peers.values().next().value;
  for (const peer of peers.values()) {
    for (const p of peer.paths) if (p.linkId === linkId && p.remote.port === from.port && p.remote.address === from.address) return peer;
  }
  return undefined;
}
