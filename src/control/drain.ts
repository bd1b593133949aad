/**
 * The control socket's drain and undrain (`{"cmd":"drain","link":"mpls"[,"peer":"branch-1"]}`):
 * by link name for every peer, or for the path of one (peer, link). Names are checked here, so an
 * operator's typo is an error naming what exists instead of a silent no-op in the core.
 */
import type { ControlHandlers } from './control-socket.ts';

/** How the names reach the core: Endpoint.setLinkAdmin(now, linkId, drained, peer) through the driver. */
export type SetLinkAdmin = (linkId: number, drained: boolean, peer: string | undefined) => void;

/** Lists at most this many names in an error. */
const NAMES_IN_ERROR = 10;

function names(list: readonly string[]): string {
  return list.length <= NAMES_IN_ERROR ? list.join(', ') : `${list.slice(0, NAMES_IN_ERROR).join(', ')}, ... (${list.length})`;
}

/**
 * A ControlHandlers.drain over `linkNames` (link ids are their indexes) and the peers `hasPeer`
 * knows (read at each request: peers come and go with reloads).
 */
export function drainHandler(linkNames: readonly string[], peers: { has(name: string): boolean; names(): readonly string[] }, setLinkAdmin: SetLinkAdmin): ControlHandlers['drain'] {
  return (link, drained, peer) => {
    const id = linkNames.indexOf(link);
    if (id < 0) return `no link named "${link}" (have: ${names(linkNames)})`;
    if (peer !== undefined && !peers.has(peer)) {
      const known = peers.names();
      return `no peer named "${peer}" (${known.length ? `have: ${names(known)}` : 'the edge has no peers'})`;
    }
    setLinkAdmin(id, drained, peer);
    return undefined;
  };
}
