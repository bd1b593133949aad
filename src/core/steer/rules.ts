/**
 * Application rules: classify inner packets by what they are, not only by their DSCP. Branch PCs
 * mostly send everything unmarked (Teams, Zoom, Webex and SIP phones included), so an ordered
 * list of rules matches protocol, source/destination prefixes, ports and the inner DSCP, and the
 * first rule that matches sets the class (and optionally the DSCP the packet is remarked with).
 *
 * Stages, per packet (classifyInner):
 *   1. parseInner (inner.ts) has read version, DSCP, protocol and where the ports are
 *   2. the addresses and ports are read once into numbers (IPv4: one uint32 each; IPv6: four)
 *   3. rules are tried in order; within a rule every given field must match (AND), and a field
 *      given as a list matches when any entry does (OR); the first matching rule wins
 *   4. its counters go up (packets, bytes; steering counts the flows it starts); the caller gets
 *      its index, class and DSCP
 *
 * Compiled for speed: RuleSet turns the specs into flat typed arrays once (at config load or
 * reload); matching allocates nothing and reads the packet in place. Measured in bench/rules.ts
 * (docs/BENCHMARKS.md "rules").
 *
 * Semantics worth knowing:
 *   - `ports` matches either side (source or destination), so the same rule classifies both
 *     directions of a call (the branch's edge sees the PC's port as source, the hub's edge sees
 *     it as destination). srcPorts/dstPorts match one side.
 *   - A rule with any port condition never matches a packet without ports (not TCP/UDP/SCTP, or
 *     a non-first fragment): those are classified by the rest of the list or by DSCP.
 *   - `dscp` in a match is the inner DSCP as it arrives; `set.dscp` remarks the inner packet
 *     (remarkDscp: the IPv4 header checksum is patched; IPv6 has none). Classes then follow the
 *     set class, or when a rule sets only a DSCP, that DSCP's class (classes.ts classOfDscp).
 */
import { CLASS_NAMES, classOfDscp, type ClassId, type ClassName } from './classes.ts';
import type { InnerInfo } from '../inner.ts';

/** Most rules a RuleSet holds (config and catalogues together). Move to constants.ts when integrating. */
export const MAX_RULES = 1024;
/** Most prefixes, port ranges per field of one rule. */
export const MAX_RULE_ENTRIES = 64;

export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, icmp6: 58, icmpv6: 58, sctp: 132 };

export interface RuleMatchSpec {
  /** IP protocol: a name (tcp, udp, icmp, icmp6, sctp, gre, esp) or a number 0..255. */
  protocol?: string | number;
  /** Source/destination prefixes ("10.1.0.0/16", "2603:1063::/38"; a bare address is a host). */
  srcPrefixes?: readonly string[];
  dstPrefixes?: readonly string[];
  /** Port ranges [low, high] inclusive, per side, or either side (`ports`). */
  srcPorts?: readonly (readonly [number, number])[];
  dstPorts?: readonly (readonly [number, number])[];
  ports?: readonly (readonly [number, number])[];
  /** Inner DSCP values (0..63) as the packet arrives. */
  dscp?: readonly number[];
}

export interface RuleSetSpec {
  class?: ClassName;
  /** Inner DSCP to remark matching packets with (0..63). */
  dscp?: number;
}

export interface RuleSpec {
  /** Shown in counters and the flows view ("teams-audio"). */
  name: string;
  match: RuleMatchSpec;
  set: RuleSetSpec;
}

/** Per-rule counters, in rule order. */
export interface RuleCounters {
  name: string;
  /** The class the rule sets (absent when it sets only a DSCP: that DSCP's class follows). */
  class?: ClassName;
  /** Packets and bytes the rule classified (LAN -> WAN, before remarking). */
  packets: number;
  bytes: number;
  /** Flows the rule started: new flows, and flows it moved to another class. */
  flows: number;
}

/** A rule as flows remember it: its name, and the flows it started (new, or moved to its class). */
export interface RuleRef {
  readonly name: string;
  flows: number;
}

/** What classifyInner decided for one packet. Reused: valid until the next call. */
export interface RuleVerdict {
  /** Index of the matching rule, -1 when none matched (classified by DSCP). */
  rule: number;
  /** The matching rule's ref, undefined when none matched. */
  ref: RuleRef | undefined;
  classId: ClassId;
  /** The packet's DSCP after the rule (remarked or as it arrived). */
  dscp: number;
  /** True when the rule sets a DSCP different from the packet's: call remarkDscp. */
  remark: boolean;
}

/** Throws a RangeError naming the rule and the field (config.ts validates first; this is the core's own check). */
function bad(rule: string, what: string): never {
  throw new RangeError(`rule ${rule}: ${what}`);
}

/** Parses "a.b.c.d[/len]" or an IPv6 "x:y::z[/len]" into 4 uint32 words (IPv4 in word 0) and a length. */
export function parsePrefix(text: string): { v6: boolean; words: Uint32Array; len: number } | undefined {
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const lenText = slash >= 0 ? text.slice(slash + 1) : undefined;
  if (lenText !== undefined && !/^\d{1,3}$/.test(lenText)) return undefined;
  const words = new Uint32Array(4);
  if (addr.includes(':')) {
    const len = lenText === undefined ? 128 : Number(lenText);
    if (len > 128) return undefined;
    const halves = addr.split('::');
    if (halves.length > 2) return undefined;
    const head = halves[0] ? halves[0].split(':') : [];
    const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
    const missing = 8 - head.length - tail.length;
    if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
    const groups = [...head, ...new Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
    for (let i = 0; i < 8; i++) {
      const g = groups[i]!;
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      words[i >> 1] = (words[i >> 1]! | (parseInt(g, 16) << (i & 1 ? 0 : 16))) >>> 0;
    }
    return { v6: true, words: maskWords(words, len), len };
  }
  const parts = addr.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    v = (v * 256 + Number(p)) >>> 0;
  }
  const len = lenText === undefined ? 32 : Number(lenText);
  if (len > 32) return undefined;
  words[0] = v;
  return { v6: false, words: maskWords(words, len), len };
}

/** Mask of the top `bits` (0..32) of a word. */
function maskOf(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

function maskWords(words: Uint32Array, len: number): Uint32Array {
  for (let i = 0; i < 4; i++) words[i] = (words[i]! & maskOf(len - 32 * i)) >>> 0;
  return words;
}

function protocolNumber(rule: string, p: string | number): number {
  const n = typeof p === 'number' ? p : (PROTOCOL_NUMBERS[p.toLowerCase()] ?? (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (!Number.isInteger(n) || n < 0 || n > 255) bad(rule, `protocol ${String(p)} is not tcp, udp, icmp, icmp6, sctp, gre, esp or 0..255`);
  return n;
}

// Field kinds, for the flat tables. A rule's prefixes/ports live in shared arrays at offsets.
const F_SRC = 0;
const F_DST = 1;
const F_EITHER = 2;

/**
 * A compiled, ordered rule list. Build one per config (re)load; classifyInner is the per-packet
 * call. Counters survive only as long as the RuleSet (a reload that changes rules starts afresh;
 * `carryCountersFrom` keeps those of rules whose name and position did not change).
 */
export class RuleSet {
  readonly names: readonly string[];
  readonly size: number;
  /** Per rule: protocol (-1 any), set class (-1: from DSCP), set DSCP (-1: keep). */
  private readonly proto: Int16Array;
  private readonly setClass: Int8Array;
  private readonly setDscp: Int8Array;
  /** Per rule: 64-bit DSCP mask as two words, and whether a DSCP condition exists. */
  private readonly dscpLo: Uint32Array;
  private readonly dscpHi: Uint32Array;
  private readonly hasDscp: Uint8Array;
  /** Per rule and side (src, dst): offset and count into the v4/v6 prefix tables (count 0 = any). */
  private readonly v4At: Int32Array;
  private readonly v4Count: Int32Array;
  private readonly v6At: Int32Array;
  private readonly v6Count: Int32Array;
  /** IPv4 prefixes: (network, mask) pairs. IPv6: 4 network words then 4 mask words each. */
  private readonly v4Table: Uint32Array;
  private readonly v6Table: Uint32Array;
  /** Per rule and side (src, dst, either): offset and count into portTable of [low, high] pairs. */
  private readonly portAt: Int32Array;
  private readonly portCount: Int32Array;
  private readonly portTable: Uint16Array;
  /** Rules that need ports / that have any address condition of the family (fast skips). */
  private readonly needsPorts: Uint8Array;
  private readonly hasAddr: Uint8Array;
  /**
   * Candidate rules per IP protocol, in order: those whose protocol is that one or any. A UDP
   * packet never looks at the TCP-only rules. `candidates[candidateAt[p] .. candidateAt[p] +
   * candidateCount[p])`; protocols no rule names share the "any protocol" list.
   */
  private readonly candidates: Int32Array;
  private readonly candidateAt = new Int32Array(256);
  private readonly candidateCount = new Int32Array(256);
  /** Counters per rule. */
  readonly packets: Float64Array;
  readonly bytes: Float64Array;
  /** Per rule: its name and the flows it started (steering counts them, flow-table.ts FlowEntry.rule). */
  readonly refs: RuleRef[];
  /** Scratch for an IPv6 address (src words 0..3, dst 4..7). */
  private readonly addr6 = new Uint32Array(8);
  private readonly verdict: RuleVerdict = { rule: -1, ref: undefined, classId: 0, dscp: 0, remark: false };

  constructor(specs: readonly RuleSpec[]) {
    if (specs.length > MAX_RULES) bad(String(specs.length), `at most ${MAX_RULES} rules`);
    const n = specs.length;
    this.size = n;
    this.names = specs.map((s) => s.name);
    this.proto = new Int16Array(n).fill(-1);
    this.setClass = new Int8Array(n).fill(-1);
    this.setDscp = new Int8Array(n).fill(-1);
    this.dscpLo = new Uint32Array(n);
    this.dscpHi = new Uint32Array(n);
    this.hasDscp = new Uint8Array(n);
    this.v4At = new Int32Array(2 * n);
    this.v4Count = new Int32Array(2 * n);
    this.v6At = new Int32Array(2 * n);
    this.v6Count = new Int32Array(2 * n);
    this.portAt = new Int32Array(3 * n);
    this.portCount = new Int32Array(3 * n);
    this.needsPorts = new Uint8Array(n);
    this.hasAddr = new Uint8Array(n);
    this.packets = new Float64Array(n);
    this.bytes = new Float64Array(n);
    this.refs = this.names.map((name) => ({ name, flows: 0 }));
    const v4: number[] = [];
    const v6: number[] = [];
    const ports: number[] = [];
    specs.forEach((s, r) => {
      const m = s.match;
      if (m.protocol !== undefined) this.proto[r] = protocolNumber(s.name, m.protocol);
      if (s.set.class !== undefined) {
        const c = CLASS_NAMES.indexOf(s.set.class);
        if (c < 0) bad(s.name, `set.class ${s.set.class} is not one of ${CLASS_NAMES.join(', ')}`);
        this.setClass[r] = c;
      }
      if (s.set.dscp !== undefined) {
        if (!Number.isInteger(s.set.dscp) || s.set.dscp < 0 || s.set.dscp > 63) bad(s.name, `set.dscp ${s.set.dscp} is not 0..63`);
        this.setDscp[r] = s.set.dscp;
      }
      if (s.set.class === undefined && s.set.dscp === undefined) bad(s.name, 'set needs a class or a dscp');
      if (m.dscp !== undefined && m.dscp.length > 0) {
        this.hasDscp[r] = 1;
        for (const d of m.dscp) {
          if (!Number.isInteger(d) || d < 0 || d > 63) bad(s.name, `match.dscp ${d} is not 0..63`);
          if (d < 32) this.dscpLo[r] = (this.dscpLo[r]! | (1 << d)) >>> 0;
          else this.dscpHi[r] = (this.dscpHi[r]! | (1 << (d - 32))) >>> 0;
        }
      }
      const sides: [readonly string[] | undefined, number, string][] = [
        [m.srcPrefixes, F_SRC, 'srcPrefixes'],
        [m.dstPrefixes, F_DST, 'dstPrefixes'],
      ];
      for (const [list, side, field] of sides) {
        const slot = 2 * r + side;
        this.v4At[slot] = v4.length / 2;
        this.v6At[slot] = v6.length / 8;
        if (list === undefined || list.length === 0) continue;
        if (list.length > MAX_RULE_ENTRIES) bad(s.name, `${field}: at most ${MAX_RULE_ENTRIES} prefixes`);
        this.hasAddr[r] = 1;
        for (const text of list) {
          const p = parsePrefix(text);
          if (!p) bad(s.name, `${field}: "${text}" is not an IPv4 or IPv6 prefix`);
          if (p.v6) {
            for (let i = 0; i < 4; i++) v6.push(p.words[i]!);
            for (let i = 0; i < 4; i++) v6.push(maskOf(p.len - 32 * i));
            this.v6Count[slot]!++;
          } else {
            v4.push(p.words[0]!, maskOf(p.len));
            this.v4Count[slot]!++;
          }
        }
      }
      const portSides: [readonly (readonly [number, number])[] | undefined, number, string][] = [
        [m.srcPorts, F_SRC, 'srcPorts'],
        [m.dstPorts, F_DST, 'dstPorts'],
        [m.ports, F_EITHER, 'ports'],
      ];
      for (const [list, side, field] of portSides) {
        const slot = 3 * r + side;
        this.portAt[slot] = ports.length / 2;
        if (list === undefined || list.length === 0) continue;
        if (list.length > MAX_RULE_ENTRIES) bad(s.name, `${field}: at most ${MAX_RULE_ENTRIES} ranges`);
        this.needsPorts[r] = 1;
        for (const [lo, hi] of list) {
          if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 65535 && lo <= hi)) bad(s.name, `${field}: ${lo}-${hi} is not a port range within 0..65535`);
          ports.push(lo, hi);
        }
        this.portCount[slot] = list.length;
      }
    });
    // Candidate lists: one per protocol some rule names, one shared by every other protocol.
    const named = new Set<number>();
    for (let r = 0; r < n; r++) if (this.proto[r]! >= 0) named.add(this.proto[r]!);
    const lists: number[] = [];
    const anyAt = lists.length;
    for (let r = 0; r < n; r++) if (this.proto[r] === -1) lists.push(r);
    const anyCount = lists.length - anyAt;
    this.candidateAt.fill(anyAt);
    this.candidateCount.fill(anyCount);
    for (const proto of named) {
      this.candidateAt[proto] = lists.length;
      for (let r = 0; r < n; r++) if (this.proto[r] === -1 || this.proto[r] === proto) lists.push(r);
      this.candidateCount[proto] = lists.length - this.candidateAt[proto]!;
    }
    this.candidates = Int32Array.from(lists);
    this.v4Table = Uint32Array.from(v4);
    this.v6Table = Uint32Array.from(v6);
    this.portTable = Uint16Array.from(ports);
  }

  /**
   * The first rule matching `packet` (parsed into `info` by parseInner), with its counters
   * counted, or the DSCP's class when none matches. No allocation; the verdict object is reused.
   */
  classifyInner(packet: Uint8Array, info: InnerInfo): RuleVerdict {
    const v = this.verdict;
    const r = this.match(packet, info);
    v.rule = r;
    v.ref = this.refs[r];
    if (r < 0) {
      v.dscp = info.dscp;
      v.classId = classOfDscp(info.dscp);
      v.remark = false;
      return v;
    }
    this.packets[r]!++;
    this.bytes[r]! += packet.length;
    const sd = this.setDscp[r]!;
    v.dscp = sd >= 0 ? sd : info.dscp;
    v.remark = sd >= 0 && sd !== info.dscp;
    const sc = this.setClass[r]!;
    v.classId = sc >= 0 ? sc : classOfDscp(v.dscp);
    return v;
  }

  /** The rule the last classifyInner matched (undefined: none, the DSCP classified the packet). */
  get lastMatch(): RuleRef | undefined {
    return this.verdict.ref;
  }

  /** Index of the first matching rule, or -1. Counts nothing. */
  match(packet: Uint8Array, info: InnerInfo): number {
    if (this.size === 0) return -1;
    const v4 = info.ipVersion === 4;
    let src4 = 0;
    let dst4 = 0;
    if (v4) {
      src4 = ((packet[12]! << 24) | (packet[13]! << 16) | (packet[14]! << 8) | packet[15]!) >>> 0;
      dst4 = ((packet[16]! << 24) | (packet[17]! << 16) | (packet[18]! << 8) | packet[19]!) >>> 0;
    } else {
      const a = this.addr6;
      for (let i = 0; i < 8; i++) {
        const o = 8 + 4 * i;
        a[i] = ((packet[o]! << 24) | (packet[o + 1]! << 16) | (packet[o + 2]! << 8) | packet[o + 3]!) >>> 0;
      }
    }
    const hasPorts = info.portsAt >= 0;
    const sport = hasPorts ? (packet[info.portsAt]! << 8) | packet[info.portsAt + 1]! : 0;
    const dport = hasPorts ? (packet[info.portsAt + 2]! << 8) | packet[info.portsAt + 3]! : 0;
    const proto = info.protocol & 0xff;
    const dscp = info.dscp;
    const cand = this.candidates;
    for (let c = this.candidateAt[proto]!, end = c + this.candidateCount[proto]!; c < end; c++) {
      const r = cand[c]!;
      if (this.hasDscp[r] === 1) {
        const bit = dscp < 32 ? (this.dscpLo[r]! >>> dscp) & 1 : (this.dscpHi[r]! >>> (dscp - 32)) & 1;
        if (bit === 0) continue;
      }
      if (this.needsPorts[r] === 1) {
        if (!hasPorts) continue;
        if (!this.portsMatch(3 * r + F_SRC, sport)) continue;
        if (!this.portsMatch(3 * r + F_DST, dport)) continue;
        const e = 3 * r + F_EITHER;
        if (this.portCount[e]! > 0 && !this.portsMatch(e, sport) && !this.portsMatch(e, dport)) continue;
      }
      if (this.hasAddr[r] === 1) {
        if (v4) {
          if (!this.v4Match(2 * r + F_SRC, src4)) continue;
          if (!this.v4Match(2 * r + F_DST, dst4)) continue;
        } else {
          if (!this.v6Match(2 * r + F_SRC, 0)) continue;
          if (!this.v6Match(2 * r + F_DST, 4)) continue;
        }
      }
      return r;
    }
    return -1;
  }

  /** True when the side has no port condition or `port` is in one of its ranges. */
  private portsMatch(slot: number, port: number): boolean {
    const count = this.portCount[slot]!;
    if (count === 0) return true;
    const t = this.portTable;
    for (let i = this.portAt[slot]!, end = i + count; i < end; i++) {
      if (port >= t[2 * i]! && port <= t[2 * i + 1]!) return true;
    }
    return false;
  }

  /**
   * IPv4 side: true when the side has no address condition at all, or one of its IPv4 prefixes
   * holds `addr`. A side with only IPv6 prefixes does not match an IPv4 packet.
   */
  private v4Match(slot: number, addr: number): boolean {
    const c4 = this.v4Count[slot]!;
    if (c4 === 0) return this.v6Count[slot] === 0;
    const t = this.v4Table;
    for (let i = this.v4At[slot]!, end = i + c4; i < end; i++) {
      if (((addr & t[2 * i + 1]!) >>> 0) === t[2 * i]!) return true;
    }
    return false;
  }

  private v6Match(slot: number, at: number): boolean {
    const c6 = this.v6Count[slot]!;
    if (c6 === 0) return this.v4Count[slot] === 0;
    const t = this.v6Table;
    const a = this.addr6;
    for (let i = this.v6At[slot]!, end = i + c6; i < end; i++) {
      const o = 8 * i;
      if (
        ((a[at]! & t[o + 4]!) >>> 0) === t[o]! &&
        ((a[at + 1]! & t[o + 5]!) >>> 0) === t[o + 1]! &&
        ((a[at + 2]! & t[o + 6]!) >>> 0) === t[o + 2]! &&
        ((a[at + 3]! & t[o + 7]!) >>> 0) === t[o + 3]!
      ) {
        return true;
      }
    }
    return false;
  }

  /** Counters per rule, in order (for the snapshot, status and metrics). */
  counters(): RuleCounters[] {
    return this.names.map((name, i) => {
      const c = this.setClass[i]!;
      return { name, ...(c >= 0 ? { class: CLASS_NAMES[c]! } : {}), packets: this.packets[i]!, bytes: this.bytes[i]!, flows: this.refs[i]!.flows };
    });
  }

  /** After a reload: keep the counts of rules that kept their name and position. */
  carryCountersFrom(old: RuleSet): void {
    const n = Math.min(this.size, old.size);
    for (let i = 0; i < n; i++) {
      if (this.names[i] !== old.names[i]) continue;
      this.packets[i] = old.packets[i]!;
      this.bytes[i] = old.bytes[i]!;
      this.refs[i]!.flows = old.refs[i]!.flows;
    }
  }
}

/**
 * Remarks the inner packet's DSCP in place, keeping its ECN bits; patches the IPv4 header checksum
 * (RFC 1624 incremental update). IPv6 has no header checksum.
 */
export function remarkDscp(packet: Uint8Array, info: InnerInfo, dscp: number): void {
  if (info.ipVersion === 4) {
    const oldWord = (packet[0]! << 8) | packet[1]!;
    packet[1] = ((dscp & 0x3f) << 2) | (packet[1]! & 0x03);
    const newWord = (packet[0]! << 8) | packet[1]!;
    // HC' = ~(~HC + ~m + m')
    let sum = (~((packet[10]! << 8) | packet[11]!) & 0xffff) + (~oldWord & 0xffff) + newWord;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    const hc = ~sum & 0xffff;
    packet[10] = hc >>> 8;
    packet[11] = hc & 0xff;
  } else if (info.ipVersion === 6) {
    // Traffic class straddles bytes 0 and 1: version(4) | TC(8) | flow label(20).
    const tc = ((dscp & 0x3f) << 2) | (((packet[1]! >> 4) & 0x03));
    packet[0] = (packet[0]! & 0xf0) | (tc >> 4);
    packet[1] = ((tc & 0x0f) << 4) | (packet[1]! & 0x0f);
  }
  info.dscp = dscp & 0x3f;
}
