/**
 * The peers view's arithmetic, pure so tests check it without rendering: the filter (by name,
 * case-insensitive substring), the page that holds the selection, and which paths are a peer's.
 */
import type { EdgeSnapshot, LinkSnapshot, PeerSnapshot } from '../core/types.ts';

/** A path's identity across snapshots: "peer/link" on edges with several peers, the link name otherwise. */
export function pathKey(l: LinkSnapshot): string {
  return l.peer !== undefined ? `${l.peer}/${l.name}` : l.name;
}

/** How a path is labelled in tables: the link, prefixed by its peer when the edge has several. */
export function pathLabel(l: LinkSnapshot): string {
  return l.peer !== undefined ? `${l.peer}/${l.name}` : l.name;
}

export function filterPeers(peers: readonly PeerSnapshot[], filter: string): PeerSnapshot[] {
  const f = filter.trim().toLowerCase();
  return f === '' ? peers.slice() : peers.filter((p) => p.name.toLowerCase().includes(f) || (p.site?.toLowerCase().includes(f) ?? false));
}

/** The page of `pageSize` rows that holds `selected`: its first index. */
export function pageStart(selected: number, count: number, pageSize: number): number {
  if (pageSize <= 0 || count <= 0) return 0;
  const sel = Math.min(Math.max(0, selected), count - 1);
  return Math.floor(sel / pageSize) * pageSize;
}

/** The paths of `peer`; on a single-peer edge (links name no peer) all links are its paths. */
export function peerPaths(snap: EdgeSnapshot, peer: string | undefined): LinkSnapshot[] {
  if (peer === undefined) return [];
  if (snap.links.some((l) => l.peer !== undefined)) return snap.links.filter((l) => l.peer === peer);
  return (snap.peers ?? []).length <= 1 ? snap.links.slice() : [];
}

/** Rows the peers list gets in the peers view: the rest goes to the title, header and the paths pane. */
export function peerListRows(bodyRows: number, pathCount: number): number {
  // title + header, then a blank, the paths title, the paths header and one row per path.
  const pathsPane = 3 + Math.max(1, pathCount);
  return Math.max(3, bodyRows - 2 - pathsPane);
}
