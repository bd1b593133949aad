/**
 * The external health target of a link (an ISP gateway pinged through it by the shell,
 * io/health.ts) in the path state: unreachable means the ISP is down, so the link's paths go DOWN
 * at once with that reason, sooner than probes would say when some still trickle through (a modem
 * that answers while its uplink is dead); reachable again, each path is what its probes say.
 */
import type { EventFields } from '../events.ts';
import type { Peer } from '../peer.ts';
import type { EdgeEventKind } from '../types.ts';

/** Applies the link's health to one peer's paths on it; true when something changed. */
export function applyLinkHealth(
  nowMs: number,
  peer: Peer,
  linkId: number,
  reachable: boolean,
  detail: string,
  emit: (atMs: number, kind: EdgeEventKind, fields: EventFields) => void,
): boolean {
  const reason = reachable ? undefined : `health target ${detail} unreachable`;
  let changed = false;
  for (const p of peer.paths) {
    if (p.linkId !== linkId || p.healthDown === reason) continue;
    const from = p.healthDown !== undefined ? 'down' : p.sm.state;
    p.healthDown = reason;
    changed = true;
    if (reason !== undefined) peer.steering.onTransition(nowMs, p, { from, to: 'down', reason });
    else if (p.sm.usable) peer.steering.onTransition(nowMs, p, { from: 'down', to: 'up', reason: `health target ${detail} reachable` });
    else emit(nowMs, 'pathState', { peer: peer.name, link: p.name, text: `${p.name}: health target ${detail} reachable; the path is still ${p.sm.state} by its probes` });
  }
  return changed;
}
