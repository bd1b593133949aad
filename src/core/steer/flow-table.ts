/**
 * The flow table, hardened (issue 14, finding 10): a bounded map from an inner packet's 5-tuple
 * to its flow's entry, for src/core/steer/steering.ts to use instead of `Map<flowHash, FlowEntry>`.
 *
 * What it fixes in a table keyed by inner.ts's unseeded 32-bit FNV-1a hash alone:
 * - Crafted collisions. FNV is public and unkeyed: a LAN host can compute 5-tuples that hash like
 *   a victim's flow and then share (and re-steer) its entry. Here the key is HalfSipHash-1-3 (the
 *   kernel's hsiphash, built for hash tables fed by attackers) under a 64-bit key drawn from the
 *   injected Rng at construction, i.e. once per start; and the tuple is compared on every hit, so
 *   even a true 32-bit collision gets its own entry (the next of up to PROBES keys) instead of
 *   someone else's.
 * - Eviction order. Past `maxFlows` the least recently *used* flow goes (Map order, a flow moved
 *   to the end when used, at most once per LRU_REFRESH_MS so the hot path stays one lookup), never
 *   a busy long-lived flow because it happens to be old.
 *
 * Pure: no clock (nowMs is an argument), no Math.random, no node:* imports.
 */
import { FLOW_IDLE_TIMEOUT_MS, MAX_FLOWS } from '../constants.ts';
import type { InnerInfo } from '../inner.ts';
import type { Rng } from '../rng.ts';

/** Alternative keys tried for a tuple whose key is taken by another tuple. */
const PROBES = 4;
/** A used flow moves to the LRU end at most this often (a Map delete + set per packet costs). */
export const LRU_REFRESH_MS = 250;
/** [version, protocol, src, dst, src port, dst port]: 14 bytes for IPv4, 38 for IPv6. */
const MAX_TUPLE_BYTES = 38;

interface Slot<E> {
  readonly tuple: Uint8Array;
  readonly entry: E;
  refreshedMs: number;
  lastSeenMs: number;
  /** Removed from the table (the last-hit cache must not return it). */
  dead: boolean;
}

export interface FlowTableCounters {
  /** Flows forgotten because the table was full (least recently used first). */
  evicted: number;
  /** Flows forgotten because they were idle for idleTimeoutMs. */
  expired: number;
  /** Lookups whose first key held another tuple (a 32-bit collision; rare under a secret key). */
  collisions: number;
}

export class FlowTable<E> {
  private readonly slots = new Map<number, Slot<E>>();
  private readonly k0: number;
  private readonly k1: number;
  private readonly scratch = new Uint8Array(MAX_TUPLE_BYTES);
  private scratchLength = 0;
  /**
   * The slot of the last hit and its key: a TCP super-segment's ~45 segments reach lookup() one
   * after another with the same tuple, so the keyed hash and the Map probe run once per train, not
   * per packet (they were ~3.5% of the sending edge under one TCP stream: perf, session 10).
   */
  private lastSlot: Slot<E> | undefined = undefined;
  private lastKey = 0;
  readonly counters: FlowTableCounters = { evicted: 0, expired: 0, collisions: 0 };

  constructor(
    rng: Rng,
    readonly maxFlows: number = MAX_FLOWS,
    readonly idleTimeoutMs: number = FLOW_IDLE_TIMEOUT_MS,
  ) {
    // Signed 32-bit (the same bits): halfSipHash13's `k | 0` then never meets a double beyond
    // int32, which deoptimised it ("lost precision") when the real edge's key was >= 2^31 and the
    // JIT warm-up's had not been (issue 13, idle RTT).
    this.k0 = rng.nextU32() | 0;
    this.k1 = rng.nextU32() | 0;
  }

  get size(): number {
    return this.slots.size;
  }

  /**
   * The keyed hash of the packet's 5-tuple (a secret per table): use it where the flow hash
   * chooses between paths too (select.ts), so nobody can aim flows at one path either.
   */
  hashOf(packet: Uint8Array, info: InnerInfo): number {
    this.loadTuple(packet, info);
    return halfSipHash13(this.k0, this.k1, this.scratch, this.scratchLength);
  }

  /** The entry of the packet's flow, or undefined (then insert one). Refreshes its LRU place. */
  lookup(nowMs: number, packet: Uint8Array, info: InnerInfo): E | undefined {
    this.loadTuple(packet, info);
    const last = this.lastSlot;
    if (last !== undefined && !last.dead && this.sameTuple(last.tuple)) return this.hit(nowMs, this.lastKey, last);
    const h = halfSipHash13(this.k0, this.k1, this.scratch, this.scratchLength);
    for (let i = 0; i < PROBES; i++) {
      const key = probeKey(h, i);
      const slot = this.slots.get(key);
      if (slot === undefined) return undefined;
      if (this.sameTuple(slot.tuple)) {
        this.lastSlot = slot;
        this.lastKey = key;
        return this.hit(nowMs, key, slot);
      }
      if (i === 0) this.counters.collisions++;
    }
    return undefined;
  }

  private hit(nowMs: number, key: number, slot: Slot<E>): E {
    slot.lastSeenMs = nowMs;
    if (nowMs - slot.refreshedMs >= LRU_REFRESH_MS) {
      slot.refreshedMs = nowMs;
      this.slots.delete(key);
      this.slots.set(key, slot);
    }
    return slot.entry;
  }

  /** Removes the slot at `key` for good. */
  private remove(key: number): Slot<E> {
    const slot = this.slots.get(key)!;
    slot.dead = true;
    this.slots.delete(key);
    return slot;
  }

  /**
   * Adds `entry` as the packet's flow (after lookup() found none). Past maxFlows the least
   * recently used flow is evicted and returned (the caller may count it); else undefined.
   */
  insert(nowMs: number, packet: Uint8Array, info: InnerInfo, entry: E): E | undefined {
    const h = this.hashOf(packet, info);
    let evicted: E | undefined;
    let key = -1;
    for (let i = 0; i < PROBES; i++) {
      const k = probeKey(h, i);
      const slot = this.slots.get(k);
      if (slot === undefined || this.sameTuple(slot.tuple)) {
        if (slot !== undefined) this.remove(k); // re-insert of a live tuple: replace it
        key = k;
        break;
      }
    }
    if (key < 0) {
      // Every probe key holds another flow: astronomically rare under a secret key. Evict the
      // least recently used of them rather than the whole table's LRU.
      let oldest: number = probeKey(h, 0);
      for (let i = 1; i < PROBES; i++) {
        const k = probeKey(h, i);
        if (this.slots.get(k)!.refreshedMs < this.slots.get(oldest)!.refreshedMs) oldest = k;
      }
      evicted = this.remove(oldest).entry;
      this.counters.evicted++;
      key = oldest;
    }
    if (this.slots.size >= this.maxFlows) {
      const lru = this.slots.keys().next();
      if (!lru.done) {
        evicted = this.remove(lru.value).entry;
        this.counters.evicted++;
      }
    }
    this.slots.set(key, { tuple: this.scratch.slice(0, this.scratchLength), entry, refreshedMs: nowMs, lastSeenMs: nowMs, dead: false });
    return evicted;
  }

  /** Forgets flows idle for idleTimeoutMs; returns how many. Call now and then (not per packet). */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [key, slot] of this.slots) {
      if (nowMs - slot.lastSeenMs > this.idleTimeoutMs) {
        this.remove(key);
        n++;
      }
    }
    this.counters.expired += n;
    return n;
  }

  /** Forgets every flow `which` selects; returns how many. */
  deleteWhere(which: (entry: E) => boolean): number {
    let n = 0;
    for (const [key, slot] of this.slots) {
      if (which(slot.entry)) {
        this.remove(key);
        n++;
      }
    }
    return n;
  }

  /** Entries, least recently used first. */
  *values(): IterableIterator<E> {
    for (const slot of this.slots.values()) yield slot.entry;
  }

  /** The 5-tuple bytes of each entry's flow (for the top-flows list: inner.ts formatFlowTuple). */
  *entries(): IterableIterator<[Uint8Array, E]> {
    for (const slot of this.slots.values()) yield [slot.tuple, slot.entry];
  }

  /** Same layout as inner.ts flowTuple, into the reused scratch buffer. */
  private loadTuple(packet: Uint8Array, info: InnerInfo): void {
    const s = this.scratch;
    const v4 = info.ipVersion === 4;
    const addrBytes = v4 ? 8 : 32;
    s[0] = info.ipVersion;
    s[1] = info.protocol;
    const from = info.srcAt;
    for (let i = 0; i < addrBytes; i++) s[2 + i] = packet[from + i]!;
    const p = 2 + addrBytes;
    if (info.portsAt >= 0) {
      s[p] = packet[info.portsAt]!;
      s[p + 1] = packet[info.portsAt + 1]!;
      s[p + 2] = packet[info.portsAt + 2]!;
      s[p + 3] = packet[info.portsAt + 3]!;
    } else {
      s[p] = s[p + 1] = s[p + 2] = s[p + 3] = 0;
    }
    this.scratchLength = p + 4;
  }

  private sameTuple(tuple: Uint8Array): boolean {
    if (tuple.length !== this.scratchLength) return false;
    for (let i = 0; i < tuple.length; i++) if (tuple[i] !== this.scratch[i]) return false;
    return true;
  }
}

function probeKey(h: number, i: number): number {
  return (h + Math.imul(i, 0x9e3779b1)) >>> 0;
}

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/**
 * HalfSipHash-1-3 with a 32-bit output (Aumasson and Bernstein; Linux's hsiphash): a keyed hash
 * for hash tables, over bytes[0, length).
 */
export function halfSipHash13(k0: number, k1: number, bytes: Uint8Array, length: number): number {
  // The state lives in module variables and the round is a top-level function: a closure made per
  // call costs an allocation, and under tsx (esbuild keepNames) an Object.defineProperty too, which
  // was 8% of the sending edge's busy time in the overlay profile (issue 13).
  sv0 = k0 | 0;
  sv1 = k1 | 0;
  sv2 = (0x6c796765 ^ k0) | 0;
  sv3 = (0x74656462 ^ k1) | 0;
  const full = length & ~3;
  for (let i = 0; i < full; i += 4) {
    const m = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    sv3 ^= m;
    sipRound();
    sv0 ^= m;
  }
  let b = length << 24;
  const left = length & 3;
  if (left >= 3) b |= bytes[full + 2]! << 16;
  if (left >= 2) b |= bytes[full + 1]! << 8;
  if (left >= 1) b |= bytes[full]!;
  sv3 ^= b;
  sipRound();
  sv0 ^= b;
  sv2 ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  return (sv1 ^ sv3) >>> 0;
}

/** HalfSipHash state (v0..v3) of the hash being computed: one at a time, no re-entry. */
let sv0 = 0;
let sv1 = 0;
let sv2 = 0;
let sv3 = 0;

function sipRound(): void {
  sv0 = (sv0 + sv1) | 0;
  sv1 = rotl(sv1, 5) ^ sv0;
  sv0 = rotl(sv0, 16);
  sv2 = (sv2 + sv3) | 0;
  sv3 = rotl(sv3, 8) ^ sv2;
  sv0 = (sv0 + sv3) | 0;
  sv3 = rotl(sv3, 7) ^ sv0;
  sv2 = (sv2 + sv1) | 0;
  sv1 = rotl(sv1, 13) ^ sv2;
  sv2 = rotl(sv2, 16);
}
