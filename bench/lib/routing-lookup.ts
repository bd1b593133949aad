/**
 * The routing lookup cost (issue 11): how long the core's PrefixTable (src/core/routing) takes to
 * pick the peer for an inner destination, with a hub's table of PEERS peers x 4 prefixes (two IPv4,
 * two IPv6: a /24 and a /26, a /48 and a /64 per peer, plus a hub-wide 10.0.0.0/8 aggregate that
 * the /24s lie in, so longest match matters), against a linear scan over the same prefixes as the
 * peer figure (what a table without a trie would cost).
 *
 * Stages: build both tables from the same prefix list -> build HIT packets (destinations inside a
 * random peer's prefix, half IPv4, half IPv6) and MISS packets (destinations in no prefix) ->
 * check that both tables answer the same for every packet (a benchmark of a wrong answer is
 * worthless) -> time lookupDestination over the packets, median of `reps` runs.
 *
 * `measureRoutingLookup()` is what `bench/routing.ts` prints and what the hub benchmark calls for
 * its "routing lookup cost at 4,096 peers" figure. Deterministic: addresses come from a fixed LCG.
 */
import { parsePrefix, type IpPrefix } from '../../src/core/routing/prefix.ts';
import { NO_PEER, PrefixTable } from '../../src/core/routing/prefix-table.ts';

export interface RoutingLookupOptions {
  /** Peers in the table (default 4,096). */
  peers?: number;
  /** Timed runs; the median is reported (default 7). */
  reps?: number;
  /** Lookups per timed run of the trie (default 300,000; the linear scan does 1/1000 of that, at least 200). */
  lookups?: number;
}

export interface RoutingLookupResult {
  peers: number;
  reps: number;
  lookups: number;
  prefixes: number;
  /** Trie nodes (prefixes plus branching nodes). */
  trieNodes: number;
  /** ns per lookup, destination inside some peer's prefix, IPv4 and IPv6 mixed. */
  hitNs: number;
  /** ns per lookup, destination in no prefix (a counted noRoute drop). */
  missNs: number;
  /** The same by family. */
  hitV4Ns: number;
  hitV6Ns: number;
  linearHitNs: number;
  linearMissNs: number;
}

/** Prefix -> peer by scanning every entry: the reference answer and the peer figure. */
class LinearTable {
  private readonly entries: Array<{ family: 4 | 6; bytes: Uint8Array; lengthBits: number; peer: number }> = [];

  insert(p: IpPrefix, peer: number): void {
    this.entries.push({ family: p.family, bytes: p.bytes, lengthBits: p.lengthBits, peer });
  }

  lookupDestination(packet: Uint8Array): number {
    const version = packet[0]! >> 4;
    const family = version === 4 ? 4 : version === 6 ? 6 : 0;
    const at = family === 4 ? 16 : 24;
    let best = NO_PEER;
    let bestLen = -1;
    for (const e of this.entries) {
      if (e.family !== family || e.lengthBits <= bestLen) continue;
      const whole = e.lengthBits >> 3;
      let ok = true;
      for (let i = 0; i < whole; i++) {
        if (e.bytes[i] !== packet[at + i]) {
          ok = false;
          break;
        }
      }
      const rest = e.lengthBits & 7;
      if (ok && rest !== 0) {
        const mask = (0xff << (8 - rest)) & 0xff;
        ok = (e.bytes[whole]! & mask) === (packet[at + whole]! & mask);
      }
      if (ok) {
        best = e.peer;
        bestLen = e.lengthBits;
      }
    }
    return best;
  }
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function packetTo(family: 4 | 6, dst: Uint8Array): Uint8Array {
  const p = new Uint8Array(family === 4 ? 60 : 60);
  p[0] = family === 4 ? 0x45 : 0x60;
  p.set(dst, family === 4 ? 16 : 24);
  return p;
}

/** An address inside `p` with random host bits. */
function inside(p: IpPrefix, rnd: () => number): Uint8Array {
  const a = Uint8Array.from(p.bytes);
  for (let bit = p.lengthBits; bit < a.length * 8; bit++) if (rnd() & 0x100) a[bit >> 3]! |= 0x80 >> (bit & 7);
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let sink = 0;
function timeNs(packets: Uint8Array[], lookups: number, reps: number, lookup: (p: Uint8Array) => number): number {
  const samples: number[] = [];
  const n = packets.length;
  for (let r = 0; r < reps + 2; r++) {
    // CPU time, not wall time: on a shared 2-core box a wall clock mostly measures the neighbours.
    const t0 = process.cpuUsage();
    for (let i = 0; i < lookups; i++) sink += lookup(packets[i % n]!);
    const used = process.cpuUsage(t0);
    const ns = ((used.user + used.system) * 1000) / lookups;
    if (r >= 2) samples.push(ns);
  }
  return median(samples);
}

/** The prefixes of peer `i` (0 <= i < 65,536): 10.a.b.0/24, 172.(16+a).b.0/26, 2001:db8:i::/48, fd00:0:0:i::/64. */
export function peerPrefixes(i: number): string[] {
  const a = i >> 8;
  const b = i & 255;
  return [`10.${a}.${b}.0/24`, `172.${16 + (a & 15)}.${b}.${(a >> 4) * 64}/26`, `2001:db8:${i.toString(16)}::/48`, `fd00:0:0:${i.toString(16)}::/64`];
}

export function measureRoutingLookup(options: RoutingLookupOptions = {}): RoutingLookupResult {
  const peers = options.peers ?? 4096;
  const reps = options.reps ?? 7;
  const lookups = options.lookups ?? 300_000;
  const trie = new PrefixTable();
  const linear = new LinearTable();
  const all: IpPrefix[][] = [];
  const hub = parsePrefix('10.0.0.0/8');
  trie.insert(hub, peers);
  linear.insert(hub, peers);
  for (let i = 0; i < peers; i++) {
    const ps = peerPrefixes(i).map((t) => parsePrefix(t));
    all.push(ps);
    for (const p of ps) {
      trie.insert(p, i);
      linear.insert(p, i);
    }
  }
  const rnd = lcg(0x5eed);
  const hitsV4: Uint8Array[] = [];
  const hitsV6: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) {
    const ps = all[rnd() % peers]!;
    hitsV4.push(packetTo(4, inside(ps[(rnd() >> 4) & 1]!, rnd)));
    hitsV6.push(packetTo(6, inside(ps[2 + ((rnd() >> 4) & 1)]!, rnd)));
  }
  const hits = hitsV4.flatMap((p, k) => [p, hitsV6[k]!]);
  const misses: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) {
    misses.push(packetTo(4, Uint8Array.of(192, 0, 2, rnd() & 255)));
    misses.push(packetTo(6, inside(parsePrefix('2001:db9::/32'), rnd)));
  }
  for (const p of [...hits, ...misses]) {
    const want = linear.lookupDestination(p);
    const got = trie.lookupDestination(p);
    if (got !== want) throw new Error(`routing bench: trie says ${got}, linear scan says ${want} for a packet of version ${p[0]! >> 4}`);
  }
  for (const p of hits) if (trie.lookupDestination(p) === NO_PEER) throw new Error('routing bench: a hit packet found no peer');
  for (const p of misses) if (trie.lookupDestination(p) !== NO_PEER) throw new Error('routing bench: a miss packet found a peer');
  const trieLookup = (p: Uint8Array): number => trie.lookupDestination(p);
  const linearLookup = (p: Uint8Array): number => linear.lookupDestination(p);
  const linearLookups = Math.max(200, Math.floor(lookups / 1000));
  const result: RoutingLookupResult = {
    peers,
    reps,
    lookups,
    prefixes: trie.size,
    trieNodes: trie.nodeCount(),
    hitNs: timeNs(hits, lookups, reps, trieLookup),
    missNs: timeNs(misses, lookups, reps, trieLookup),
    hitV4Ns: timeNs(hitsV4, lookups, reps, trieLookup),
    hitV6Ns: timeNs(hitsV6, lookups, reps, trieLookup),
    linearHitNs: timeNs(hits, linearLookups, Math.min(reps, 3), linearLookup),
    linearMissNs: timeNs(misses, linearLookups, Math.min(reps, 3), linearLookup),
  };
  if (sink === 0.5) process.stderr.write('unreachable\n');
  return result;
}
