/**
 * Where a peer is reached, from what it proved: a path endpoint learned from an authenticated
 * handshake initiation. (Data frames move endpoints in peer.ts pathFor; a silent configured path
 * goes back to its configured endpoint in peer-timers.ts.) And a peer given up on whom we must
 * reach is called again.
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

/**
 * The session manager gave up on `peer` (no answer for REKEY_ATTEMPT_TIME, 90 s of initiations,
 * as WireGuard does): start a new round at once when we hold a configured endpoint for it (a
 * spoke's hub, a mesh peer from the registry), and say whether we did. WireGuard only tries again
 * on traffic to send, which a quiet LAN may never have: a spoke whose links were down for more than
 * 90 s then stayed cut off for good, since a hub that restarted meanwhile knows no spoke address to
 * call it back (VOPR seed 91000171 --long: spoke d, both links down for 130 s, the hub restarted;
 * d gave up 4 s after the heal and its hub's flow to it never came back). The cost is one 148-byte
 * initiation per REKEY_TIMEOUT (5 s) while the peer is unreachable. Learned endpoints (a hub's,
 * of its spokes) get no new round: the spoke calls, and the address may be gone for good.
 */
export function callAgain(peer: Peer, nowMs: number): boolean {
  const sessions = peer.host.sessions;
  if (sessions === undefined || !peer.paths.some((p) => p.configured && p.hasEndpoint)) return false;
  sessions.connect(nowMs, peer.name);
  return true;
}

/** Plaintext mode (benchmarks only) has no session to name the peer: the only one, or by endpoint. */
export function plaintextPeer(peers: ReadonlyMap<string, Peer>, linkId: number, from: Endpoint): Peer | undefined {
  if (peers.size === 1) return peers.values().next().value;
  for (const peer of peers.values()) {
    for (const p of peer.paths) if (p.linkId === linkId && p.remote.port === from.port && p.remote.address === from.address) return peer;
  }
  return undefined;
}
