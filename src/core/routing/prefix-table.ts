/**
 * The routing table: IP prefix -> peer index, WireGuard's AllowedIPs (wireguard-go
 * device/allowedips.go): one path-compressed binary trie per family, longest prefix wins.
 *
 * Contract:
 * - Outbound, `lookupDestination(packet)` (or lookupV4/lookupV6 at an address offset) gives the
 *   peer whose prefix holds the inner destination, or NO_PEER: the caller counts a `noRoute` drop.
 * - Inbound, `sourceAllowed(packet, peer)`: the inner source must lie in the sending peer's
 *   prefixes (longest match, as WireGuard: a more specific prefix of another peer wins), else the
 *   caller counts a `sourceNotAllowed` drop. A peer's overlay address is one more /32 or /128.
 * - Lookups read the address straight from the packet bytes: no allocation, no string, no throw;
 *   an address past the end of the bytes is NO_PEER. They walk a flattened copy of the trie, one
 *   node per branching on the way down (at most 33 / 129; about 14 with 4,096 peers): see
 *   bench/routing.ts. The first lookup after a change rebuilds that copy unless compile() did.
 * - Changes (insert, setPeerPrefixes, remove, removePeer) happen at config and reload time and may throw
 *   BraidError: PREFIX_INVALID (text that is not a prefix, host bits set), PREFIX_CONFLICT (the
 *   same prefix on another peer: longest match cannot choose between them; `replace` moves it),
 *   PREFIX_LIMIT (more than MAX_ROUTE_PREFIXES). Overlapping prefixes of different lengths are
 *   fine: the longest match wins.
 *
 * Stages of a change: parse (routing/prefix.ts) -> place (walk down while the node's prefix holds
 * the new one) -> link (as a leaf, above the node it holds, or under a new branching node) ->
 * index by peer (for removePeer and entries). Removal is the reverse: unlink the node, and splice
 * out a branching node left with one child.
 */
import { MAX_ROUTE_PREFIXES } from '../constants.ts';
import { BraidError, ErrorCode } from '../errors.ts';
import { IPV4_DST_AT, IPV4_SRC_AT, IPV6_DST_AT, IPV6_SRC_AT } from '../inner.ts';
import { parsePrefix, type IpPrefix } from './prefix.ts';

/** What the lookups return when no prefix holds the address. */
export const NO_PEER = -1;

export { IPV4_DST_AT, IPV4_SRC_AT, IPV6_DST_AT, IPV6_SRC_AT };

export interface RouteEntry {
  /** Canonical prefix text, e.g. `10.1.0.0/16`. */
  prefix: string;
  peer: number;
}

export interface InsertOptions {
  /** Move the prefix when another peer holds it instead of throwing PREFIX_CONFLICT. */
  readonly replace?: boolean;
}

/**
 * One trie node. Key words are signed 32-bit big-endian chunks of the address (IPv4 uses k0
 * only), masked to `cidr` bits; m0..m3 are the matching masks, so "does this node's prefix hold
 * the address" is four xor-and-ors with no branch per bit.
 */
class TrieNode {
  k0: number;
  k1: number;
  k2: number;
  k3: number;
  m0: number;
  m1: number;
  m2: number;
  m3: number;
  /** Index of the key word holding the bit that picks the child (bit number `cidr`). */
  readonly bitWord: number;
  /** Right shift that brings that bit to bit 0. */
  readonly bitShift: number;
  readonly cidr: number;
  readonly family: 4 | 6;
  /** Owner, or NO_PEER for a branching node (one that only splits the trie). */
  peer: number;
  /** Canonical text while the node has a peer. */
  text: string;
  child0: TrieNode | null = null;
  child1: TrieNode | null = null;
  parent: TrieNode | null = null;

  constructor(family: 4 | 6, key: Int32Array, cidr: number, peer: number, text: string) {
    this.family = family;
    this.cidr = cidr;
    this.m0 = maskWord(cidr, 0);
    this.m1 = maskWord(cidr, 1);
    this.m2 = maskWord(cidr, 2);
    this.m3 = maskWord(cidr, 3);
    this.k0 = key[0]! & this.m0;
    this.k1 = key[1]! & this.m1;
    this.k2 = key[2]! & this.m2;
    this.k3 = key[3]! & this.m3;
    this.bitWord = cidr >>> 5;
    this.bitShift = 31 - (cidr & 31);
    this.peer = peer;
    this.text = text;
  }

  word(i: number): number {
    return i === 0 ? this.k0 : i === 1 ? this.k1 : i === 2 ? this.k2 : this.k3;
  }
}

/** The mask of word `w` (bits 32w..32w+31) for a prefix of `cidr` bits, as a signed int32. */
function maskWord(cidr: number, w: number): number {
  const bits = cidr - 32 * w;
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return -1 << (32 - bits);
}

/** Bit number `node.cidr` of `key`: which child the key goes to under `node`. */
function choose(node: TrieNode, key: Int32Array): number {
  return (key[node.bitWord]! >>> node.bitShift) & 1;
}

function chooseNode(node: TrieNode, other: TrieNode): number {
  return (other.word(node.bitWord) >>> node.bitShift) & 1;
}

/** How many leading bits of the node's key and `key` agree (capped at maxBits). */
function commonBits(node: TrieNode, key: Int32Array, maxBits: number): number {
  for (let i = 0; i < maxBits >>> 5; i++) {
    const x = node.word(i) ^ key[i]!;
    if (x !== 0) return Math.min(32 * i + Math.clz32(x), maxBits);
  }
  return maxBits;
}

function keyOf(p: IpPrefix, out: Int32Array): Int32Array {
  out.fill(0);
  for (let i = 0; i < p.bytes.length; i += 4) {
    out[i >>> 2] = (p.bytes[i]! << 24) | (p.bytes[i + 1]! << 16) | (p.bytes[i + 2]! << 8) | p.bytes[i + 3]!;
  }
  return out;
}

export class PrefixTable {
  private rootV4: TrieNode | null = null;
  private rootV6: TrieNode | null = null;
  private readonly byPeer = new Map<number, Set<TrieNode>>();
  private count = 0;
  private readonly scratch = new Int32Array(4);
  /**
   * The tries flattened for lookups: nodes in depth-first order, V4_STRIDE / V6_STRIDE int32s each
   * (V6's node is one 64-byte cache line), children as node numbers, -1 for none. Pointer-chasing
   * objects of ~150 bytes scattered over the heap cost a cache miss or two per level at 4,096 peers:
   * bench/routing.ts measured mixed IPv4/IPv6 hits at ~390 ns (CPU time, 3 runs, box at load 10)
   * walking the objects and ~245 ns on this layout. Rebuilt by compile() after changes.
   */
  private flatV4: Int32Array = new Int32Array(0);
  private flatV6: Int32Array = new Int32Array(0);
  private flatV4Root = -1;
  private flatV6Root = -1;
  private dirty = false;

  constructor(private readonly maxPrefixes: number = MAX_ROUTE_PREFIXES) {}

  /** Prefixes held, both families. */
  get size(): number {
    return this.count;
  }

  /**
   * Gives `prefix` to `peer`. Returns false when the peer already had it (no change). Throws
   * BraidError PREFIX_INVALID, PREFIX_CONFLICT (another peer holds exactly this prefix and
   * `replace` is not set) or PREFIX_LIMIT.
   */
  insert(prefix: string | IpPrefix, peer: number, options: InsertOptions = {}): boolean {
    if (!Number.isInteger(peer) || peer < 0 || peer > 0x7fffffff) throw new RangeError(`peer index ${peer} is not a non-negative int32`);
    const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
    const key = keyOf(p, this.scratch);
    const maxBits = p.family === 4 ? 32 : 128;
    const cidr = p.lengthBits;
    const root = p.family === 4 ? this.rootV4 : this.rootV6;

    // Place: the deepest node whose prefix holds the new one (the node itself when it exists).
    let node: TrieNode | null = root;
    let parent: TrieNode | null = null;
    while (node !== null && node.cidr <= cidr && commonBits(node, key, maxBits) >= node.cidr) {
      parent = node;
      if (node.cidr === cidr) break;
      node = choose(node, key) === 0 ? node.child0 : node.child1;
    }
    if (parent !== null && parent.cidr === cidr) {
      if (parent.peer === peer) return false;
      if (parent.peer !== NO_PEER) {
        if (!options.replace) {
          throw new BraidError(ErrorCode.PREFIX_CONFLICT, `prefix ${p.text} is given to two peers (${parent.peer} and ${peer})`, {
            fix: `keep ${p.text} on one peer only (a more specific prefix may go to the other: the longest match wins)`,
          });
        }
        this.unindex(parent);
      } else {
        this.checkLimit(p);
        this.count++;
      }
      parent.peer = peer;
      parent.text = p.text;
      this.index(parent);
      return true;
    }
    this.checkLimit(p);
    const fresh = new TrieNode(p.family, key, cidr, peer, p.text);
    this.count++;
    this.index(fresh);

    // Link.
    let down: TrieNode;
    if (parent === null) {
      if (root === null) {
        this.setRoot(p.family, fresh);
        return true;
      }
      down = root;
    } else {
      const bit = choose(parent, key);
      const c = bit === 0 ? parent.child0 : parent.child1;
      if (c === null) {
        setChild(parent, bit, fresh);
        return true;
      }
      down = c;
    }
    const common = Math.min(commonBits(down, key, maxBits), cidr);
    let top: TrieNode;
    if (common === cidr) {
      // The new prefix holds `down`: it goes above it.
      setChild(fresh, chooseNode(fresh, down), down);
      top = fresh;
    } else {
      // They part at bit `common`: a branching node there takes both.
      top = new TrieNode(p.family, key, common, NO_PEER, '');
      setChild(top, chooseNode(top, down), down);
      setChild(top, choose(top, key), fresh);
    }
    if (parent === null) this.setRoot(p.family, top);
    else setChild(parent, choose(parent, key), top);
    return true;
  }

  /**
   * Makes `peer`'s prefixes exactly `prefixes` (a peer added or edited by a reload), all or
   * nothing: every prefix is parsed and checked against the other peers and the cap before
   * anything changes, so a failed reload leaves the table as it was. Other peers' prefixes are not
   * touched. Returns the canonical prefixes added and removed.
   */
  setPeerPrefixes(peer: number, prefixes: ReadonlyArray<string | IpPrefix>): { added: string[]; removed: string[] } {
    const wanted = new Map<string, IpPrefix>();
    for (const x of prefixes) {
      const p = typeof x === 'string' ? parsePrefix(x) : x;
      wanted.set(p.text, p);
    }
    const current = new Set(this.prefixesOf(peer));
    const added = [...wanted.keys()].filter((t) => !current.has(t)).sort();
    const removed = [...current].filter((t) => !wanted.has(t)).sort();
    for (const t of added) {
      const owner = this.peerOf(wanted.get(t)!);
      if (owner !== NO_PEER && owner !== peer) {
        throw new BraidError(ErrorCode.PREFIX_CONFLICT, `prefix ${t} is given to two peers (${owner} and ${peer})`, {
          fix: `keep ${t} on one peer only (a more specific prefix may go to the other: the longest match wins)`,
        });
      }
    }
    if (this.count - removed.length + added.length > this.maxPrefixes) {
      throw new BraidError(ErrorCode.PREFIX_LIMIT, `peer ${peer}: ${added.length} more prefixes overflow the routing table (${this.maxPrefixes} prefixes)`, {
        fix: 'summarise prefixes (one /16 instead of many /24s) or serve fewer peers from this edge',
      });
    }
    for (const t of removed) this.remove(t);
    for (const t of added) this.insert(wanted.get(t)!, peer);
    return { added, removed };
  }

  /** Removes `prefix` (whoever holds it). Returns the peer that held it, or NO_PEER. */
  remove(prefix: string | IpPrefix): number {
    const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
    const node = this.find(p);
    if (node === null || node.peer === NO_PEER) return NO_PEER;
    const peer = node.peer;
    this.unindex(node);
    this.unlink(node);
    return peer;
  }

  /** Removes every prefix of `peer`. Returns how many there were. */
  removePeer(peer: number): number {
    const nodes = this.byPeer.get(peer);
    if (!nodes) return 0;
    const n = nodes.size;
    for (const node of [...nodes]) {
      this.unindex(node);
      this.unlink(node);
    }
    return n;
  }

  /** The peer holding exactly `prefix`, or NO_PEER. */
  peerOf(prefix: string | IpPrefix): number {
    const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
    return this.find(p)?.peer ?? NO_PEER;
  }

  /** The prefixes of one peer, canonical text, sorted. */
  prefixesOf(peer: number): string[] {
    return [...(this.byPeer.get(peer) ?? [])].map((n) => n.text).sort();
  }

  /** Every (prefix, peer), for status: by peer, then prefix text. */
  entries(): RouteEntry[] {
    const out: RouteEntry[] = [];
    for (const peer of [...this.byPeer.keys()].sort((a, b) => a - b)) {
      for (const prefix of this.prefixesOf(peer)) out.push({ prefix, peer });
    }
    return out;
  }

  /**
   * Nodes in both tries, prefixes plus branching nodes: at most 2n - 1 per family for n prefixes
   * (every branching node splits two subtries). For tests and memory figures; walks the tries.
   */
  nodeCount(): number {
    let n = 0;
    const stack: TrieNode[] = [];
    if (this.rootV4) stack.push(this.rootV4);
    if (this.rootV6) stack.push(this.rootV6);
    while (stack.length > 0) {
      const node = stack.pop()!;
      n++;
      if (node.child0) stack.push(node.child0);
      if (node.child1) stack.push(node.child1);
    }
    return n;
  }

  clear(): void {
    this.dirty = true;
    this.rootV4 = null;
    this.rootV6 = null;
    this.byPeer.clear();
    this.count = 0;
  }

  // ---- lookups (hot path: no allocation, no throw) ------------------------------------------

  /**
   * Flattens the tries for the lookups. Lookups do it themselves on first use after a change (an
   * O(prefixes) pause, about a millisecond per 10,000); call it after a batch of changes (config
   * load, reload) to keep that pause off the packet path.
   */
  compile(): void {
    if (!this.dirty) return;
    const v4 = flatten(this.rootV4, V4_STRIDE, this.flatV4);
    const v6 = flatten(this.rootV6, V6_STRIDE, this.flatV6);
    this.flatV4 = v4;
    this.flatV6 = v6;
    this.flatV4Root = this.rootV4 === null ? -1 : 0;
    this.flatV6Root = this.rootV6 === null ? -1 : 0;
    this.dirty = false;
  }

  /** The peer whose longest prefix holds the IPv4 address at `bytes[addrAt..addrAt+4)`. */
  lookupV4(bytes: Uint8Array, addrAt: number): number {
    if (addrAt < 0 || addrAt + 4 > bytes.length) return NO_PEER;
    if (this.dirty) this.compile();
    const a = (bytes[addrAt]! << 24) | (bytes[addrAt + 1]! << 16) | (bytes[addrAt + 2]! << 8) | bytes[addrAt + 3]!;
    const n = this.flatV4;
    let found = NO_PEER;
    let i = this.flatV4Root;
    while (i >= 0) {
      const b = i * V4_STRIDE;
      if (((n[b]! ^ a) & n[b + 1]!) !== 0) break;
      const peer = n[b + 3]!;
      if (peer !== NO_PEER) found = peer;
      const cidr = n[b + 2]!;
      if (cidr === 32) break;
      i = ((a >>> (31 - cidr)) & 1) === 0 ? n[b + 4]! : n[b + 5]!;
    }
    return found;
  }

  /** The peer whose longest prefix holds the IPv6 address at `bytes[addrAt..addrAt+16)`. */
  lookupV6(bytes: Uint8Array, addrAt: number): number {
    if (addrAt < 0 || addrAt + 16 > bytes.length) return NO_PEER;
    if (this.dirty) this.compile();
    const o = addrAt;
    const a0 = (bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!;
    const a1 = (bytes[o + 4]! << 24) | (bytes[o + 5]! << 16) | (bytes[o + 6]! << 8) | bytes[o + 7]!;
    const a2 = (bytes[o + 8]! << 24) | (bytes[o + 9]! << 16) | (bytes[o + 10]! << 8) | bytes[o + 11]!;
    const a3 = (bytes[o + 12]! << 24) | (bytes[o + 13]! << 16) | (bytes[o + 14]! << 8) | bytes[o + 15]!;
    const n = this.flatV6;
    let found = NO_PEER;
    let i = this.flatV6Root;
    while (i >= 0) {
      const b = i * V6_STRIDE;
      if ((((n[b]! ^ a0) & n[b + 4]!) | ((n[b + 1]! ^ a1) & n[b + 5]!) | ((n[b + 2]! ^ a2) & n[b + 6]!) | ((n[b + 3]! ^ a3) & n[b + 7]!)) !== 0) break;
      const peer = n[b + 9]!;
      if (peer !== NO_PEER) found = peer;
      const cidr = n[b + 8]!;
      if (cidr === 128) break;
      const w = cidr >>> 5;
      const word = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      i = ((word >>> (31 - (cidr & 31))) & 1) === 0 ? n[b + 10]! : n[b + 11]!;
    }
    return found;
  }

  /**
   * The peer for the address at `addrAt` of an IP packet of `ipVersion` (4 or 6; anything else is
   * NO_PEER). With parseInner's result: `lookup(packet, info.ipVersion, info.dstAt)` outbound,
   * `lookup(packet, info.ipVersion, info.srcAt) === peer` inbound.
   */
  lookup(packet: Uint8Array, ipVersion: number, addrAt: number): number {
    return ipVersion === 4 ? this.lookupV4(packet, addrAt) : ipVersion === 6 ? this.lookupV6(packet, addrAt) : NO_PEER;
  }

  /** Outbound: the peer for the packet's destination (version from its first nibble), or NO_PEER. */
  lookupDestination(packet: Uint8Array): number {
    if (packet.length === 0) return NO_PEER;
    const version = packet[0]! >> 4;
    return version === 4 ? this.lookupV4(packet, IPV4_DST_AT) : version === 6 ? this.lookupV6(packet, IPV6_DST_AT) : NO_PEER;
  }

  /** The peer whose prefixes hold the packet's source, or NO_PEER. */
  lookupSource(packet: Uint8Array): number {
    if (packet.length === 0) return NO_PEER;
    const version = packet[0]! >> 4;
    return version === 4 ? this.lookupV4(packet, IPV4_SRC_AT) : version === 6 ? this.lookupV6(packet, IPV6_SRC_AT) : NO_PEER;
  }

  /** Inbound check: may `peer` send a packet with this inner source? */
  sourceAllowed(packet: Uint8Array, peer: number): boolean {
    return peer !== NO_PEER && this.lookupSource(packet) === peer;
  }

  // ---- internals ---------------------------------------------------------------------------

  private checkLimit(p: IpPrefix): void {
    if (this.count >= this.maxPrefixes) {
      throw new BraidError(ErrorCode.PREFIX_LIMIT, `prefix ${p.text}: the routing table is full (${this.maxPrefixes} prefixes)`, {
        fix: 'summarise prefixes (one /16 instead of many /24s) or serve fewer peers from this edge',
      });
    }
  }

  private find(p: IpPrefix): TrieNode | null {
    const key = keyOf(p, this.scratch);
    const maxBits = p.family === 4 ? 32 : 128;
    let node = p.family === 4 ? this.rootV4 : this.rootV6;
    while (node !== null && node.cidr <= p.lengthBits && commonBits(node, key, maxBits) >= node.cidr) {
      if (node.cidr === p.lengthBits) return node;
      node = choose(node, key) === 0 ? node.child0 : node.child1;
    }
    return null;
  }

  private setRoot(family: 4 | 6, node: TrieNode | null): void {
    if (node !== null) node.parent = null;
    if (family === 4) this.rootV4 = node;
    else this.rootV6 = node;
  }

  private index(node: TrieNode): void {
    this.dirty = true;
    let set = this.byPeer.get(node.peer);
    if (!set) this.byPeer.set(node.peer, (set = new Set()));
    set.add(node);
  }

  private unindex(node: TrieNode): void {
    const set = this.byPeer.get(node.peer);
    if (set) {
      set.delete(node);
      if (set.size === 0) this.byPeer.delete(node.peer);
    }
  }

  /** Takes the prefix off a node (already unindexed) and tidies the trie (allowedips.go's remove). */
  private unlink(node: TrieNode): void {
    node.peer = NO_PEER;
    node.text = '';
    this.count--;
    this.dirty = true;
    if (node.child0 !== null && node.child1 !== null) return; // stays as a branching node
    const child = node.child0 ?? node.child1;
    const parent = node.parent;
    this.replace(node, child);
    if (child !== null || parent === null || parent.peer !== NO_PEER) return;
    // The parent only branched; with one child left it has nothing to split.
    const other = parent.child0 ?? parent.child1;
    this.replace(parent, other);
  }

  /** Puts `child` where `node` hangs (in its parent, or as the root). */
  private replace(node: TrieNode, child: TrieNode | null): void {
    const parent = node.parent;
    if (parent === null) {
      this.setRoot(node.family, child);
    } else if (parent.child0 === node) {
      parent.child0 = child;
      if (child !== null) child.parent = parent;
    } else {
      parent.child1 = child;
      if (child !== null) child.parent = parent;
    }
    node.parent = null;
  }
}

/** Int32s per flattened node: IPv4 [key, mask, cidr, peer, child0, child1, -, -]. */
const V4_STRIDE = 8;
/** IPv6 [k0..k3, m0..m3, cidr, peer, child0, child1, -, -, -, -]: 64 bytes. */
const V6_STRIDE = 16;

/** The trie under `root` in depth-first order (reusing `into` when it is big enough). */
function flatten(root: TrieNode | null, stride: number, into: Int32Array): Int32Array {
  const nodes: TrieNode[] = [];
  const stack: TrieNode[] = root === null ? [] : [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    nodes.push(node);
    // child1 first so that child0 follows its parent: one of the two steps down stays close.
    if (node.child1) stack.push(node.child1);
    if (node.child0) stack.push(node.child0);
  }
  const numberOf = new Map<TrieNode, number>();
  nodes.forEach((node, i) => numberOf.set(node, i));
  const out = into.length >= nodes.length * stride && into.length <= 2 * nodes.length * stride ? into : new Int32Array(nodes.length * stride);
  nodes.forEach((node, i) => {
    const b = i * stride;
    const child0 = node.child0 === null ? -1 : numberOf.get(node.child0)!;
    const child1 = node.child1 === null ? -1 : numberOf.get(node.child1)!;
    if (stride === V4_STRIDE) {
      out[b] = node.k0;
      out[b + 1] = node.m0;
      out[b + 2] = node.cidr;
      out[b + 3] = node.peer;
      out[b + 4] = child0;
      out[b + 5] = child1;
    } else {
      out[b] = node.k0;
      out[b + 1] = node.k1;
      out[b + 2] = node.k2;
      out[b + 3] = node.k3;
      out[b + 4] = node.m0;
      out[b + 5] = node.m1;
      out[b + 6] = node.m2;
      out[b + 7] = node.m3;
      out[b + 8] = node.cidr;
      out[b + 9] = node.peer;
      out[b + 10] = child0;
      out[b + 11] = child1;
    }
  });
  return out;
}

function setChild(parent: TrieNode, bit: number, child: TrieNode): void {
  if (bit === 0) parent.child0 = child;
  else parent.child1 = child;
  child.parent = parent;
}
