/**
 * VOPR (TigerBeetle's Viewstamped Operation Replicator idea, for Braid): from one seed, a random
 * fabric (a hub "a" and 3-4 spokes "b", "c", ..., each spoke with 1-3 links of its own, some behind
 * NAT; each connection direction a random netem spec; random class policies; random flows between
 * any two sites, spoke to spoke through the hub), a faults phase with a random timeline
 * (blackouts, one-way cuts, brownouts, corruption, duplication, reordering, flaps on connections;
 * site restarts; NAT rebindings), then a liveness phase with every connection healed; invariants
 * are checked on every delivery and at the end.
 *
 * Invariants:
 *   integrity    every delivered packet is byte-identical to a packet its flow sent
 *   no dups      no packet is delivered twice
 *   right site   a packet arrives only at the site its flow sends to
 *   pmtu         no edge answers its LAN with Frag Needed (every path carries 1500 bytes)
 *   liveness     once faults stop, every flow delivers again within recoveryBoundMs (a flow
 *                through a site restarted in the faults phase: within restartRecoveryBoundMs)
 *   no crash     the engines and the World never throw
 *
 *   const r = voprRun(42);              // one seed: r.ok, r.violations, r.description
 *   vopr({ seed: 1, runs: 200 })         // seeds 1..200; failures say how to reproduce
 *
 * A failure names its seed; `braid sim vopr --seed N` replays exactly that run.
 */
import { performance } from 'node:perf_hooks';
import { SeededRng } from '../src/core/rng.ts';
import { DEFAULT_POLICIES, type ClassName, type ClassPolicy, type CostTier, type Strategy } from '../src/core/steer/classes.ts';
import type { SiteEngine } from './world.ts';
import { formatNetemSpec, parseNetemSpec } from './netem/spec.ts';
import { readPacketTag } from './packets.ts';
import { PacketFactory } from './scenario/fast-packet.ts';
import { CLASS_DSCP } from './scenario/schema.ts';
import { World } from './world.ts';
import type { AeadFactory } from '../src/core/crypto/transport.ts';
import { INITIATION_LENGTH, MESSAGE_INITIATION } from '../src/core/crypto/noise.ts';
import { REKEY_AFTER_TIME_MS } from '../src/core/crypto/constants.ts';

export interface VoprConfig {
  /** Length of the faults phase. */
  faultsMs: number;
  /** Length of the liveness phase (every link healed). */
  livenessMs: number;
  /** After the faults stop, every flow must deliver again within this. */
  recoveryBoundMs: number;
  /**
   * The same for a flow to or from a site restarted during the faults (or through a restarted
   * hub): a hub knows no spoke address, so the spokes must notice and handshake again.
   */
  restartRecoveryBoundMs: number;
  /**
   * The data AEAD (sim/ imports nothing from src/io: `braid sim vopr` and the tests inject the
   * addon's, as `braid up` uses); default the core's node:crypto one.
   */
  aead?: AeadFactory;
  /** Which sites may restart in the faults phase. Default 'any' (the hub too). */
  restarts?: 'any' | 'spokes' | 'none';
  /**
   * Test-only: run the overlay unencrypted. Without AEAD nothing stops netem's corrupt and
   * duplicate from reaching the sites: the invariants must then fail (a test shows they do).
   */
  insecurePlaintext?: boolean;
  /**
   * An adversary on the wire (default on): it copies datagrams seen on one connection into another
   * site link's socket, replays old ones, sends them from forged endpoints (a stranger's, or the
   * real sender's), and floods handshake initiations from one address over many ports, once in
   * the faults phase and once in the liveness phase (the real peers' sessions must survive it).
   */
  adversary?: boolean;
  /**
   * The long form: at least two rekeys per seed (REKEY_AFTER_TIME is 120 s), with a restart placed
   * right around each rekey (a rekey race). Set by LONG_VOPR_CONFIG.
   */
  long?: boolean;
  /** Scales every flow's packet rate (the long form runs its minutes at a quarter of the rate). */
  ppsScale?: number;
}

/**
 * A restarted site's first handshake may be lost to the faults; the initiator retries every
 * REKEY_TIMEOUT (5 s, WireGuard's), so flows through a restarted site get 6 s after the heal (the
 * liveness phase of such a run is stretched to fit).
 */
export const DEFAULT_VOPR_CONFIG: VoprConfig = { faultsMs: 6000, livenessMs: 4000, recoveryBoundMs: 3000, restartRecoveryBoundMs: 6000, adversary: true };

/**
 * The long form: 250 s of faults (two rekeys at 120 s and 240 s, each raced by a restart within
 * 300 ms of it), then the liveness phase; a quarter of the packet rate to keep a seed near 10 s.
 */
export const LONG_VOPR_CONFIG: VoprConfig = { ...DEFAULT_VOPR_CONFIG, faultsMs: 250_000, long: true, ppsScale: 0.25 };

/**
 * Test-only fault injection in the harness (never in src/core): a deliberately planted bug the
 * VOPR must catch. It wraps site b's engine's pollDelivery in the run with this seed.
 */
export interface InjectedBug {
  seed: number;
  kind: 'flipByte' | 'duplicate';
  /** Which delivery at site b goes wrong (default the 100th). */
  afterDeliveries?: number;
}

export interface VoprRunResult {
  seed: number;
  ok: boolean;
  /** The first violations found (at most 10), each one line. */
  violations: string[];
  /** The random world in one line (links, specs, flows, faults). */
  description: string;
  sent: number;
  delivered: number;
  wallMs: number;
  /** Per site, the engine's drop counters that grew after the heal (a diagnosis aid: noLink, noSession ...). */
  dropsAfterHeal: Record<string, Record<string, number>>;
  adversary?: AdversaryStats;
  /** The long form's seeds replay with --long. */
  long?: boolean;
}

export interface VoprSummary {
  firstSeed: number;
  runs: number;
  passed: number;
  failures: VoprRunResult[];
  wallMs: number;
  sent: number;
  delivered: number;
}

interface FlowDef {
  flowId: number;
  origin: string;
  dest: string;
  className: ClassName;
  intervalMs: number;
  factory: PacketFactory;
  sent: number;
  seen: Uint8Array;
  firstAfterHealMs: number;
  healSeq: number;
  /** The first seq sent after the liveness-phase restart, and when it (or a later one) arrived. */
  /** Per checkpoint: the first seq sent after it, and when one of those arrived. */
  cpSeq: number[];
  cpFirstMs: number[];
}

/** A moment after which flows must deliver again within a bound (a restart, a flood's end). */
interface Checkpoint {
  what: string;
  atMs: number;
  /** Only flows to or from these sites (all flows when absent). */
  sites?: string[];
  /** Leave out flows to or from a site restarted in the run (they have their own bounds). */
  skipRestarted?: boolean;
  boundMs: number;
}

/** The liveness-phase restart comes 1 s to this long after the heal. */
const LATE_RESTART_MAX_MS = 2000;

/** What the adversary did in one run (printed in the description, summed by the CLI). */
export interface AdversaryStats {
  copied: number;
  replayed: number;
  forged: number;
  floodInitiations: number;
  floodPorts: number;
}

const pick = <T>(rng: SeededRng, items: readonly T[]): T => items[Math.floor(rng.nextFloat() * items.length)]!;
const between = (rng: SeededRng, lo: number, hi: number): number => lo + rng.nextFloat() * (hi - lo);
const chance = (rng: SeededRng, p: number): boolean => rng.nextFloat() < p;
const fixed = (v: number, digits = 1): string => String(Number(v.toFixed(digits)));

/** A random base impairment for one link direction (what the link is like on a good day). */
function randomBaseSpec(rng: SeededRng): { text: string; delayMs: number; jitterMs: number; dist: string; rate: string | undefined } {
  const delayMs = Math.round(between(rng, 1, 80));
  const jitterMs = chance(rng, 0.6) ? Number(fixed(between(rng, 0, delayMs / 4))) : 0;
  const dist = pick(rng, ['uniform', 'normal', 'pareto', 'paretonormal'] as const);
  const rate = chance(rng, 0.5) ? `${Math.round(between(rng, 2, 50))}mbit` : undefined;
  const parts = [`delay ${delayMs}ms`];
  if (jitterMs > 0) parts.push(`${jitterMs}ms`, 'distribution', dist);
  if (chance(rng, 0.5)) parts.push('loss', `${fixed(between(rng, 0, 2), 2)}%`);
  if (chance(rng, 0.2)) parts.push('duplicate', `${fixed(between(rng, 0, 2), 2)}%`);
  if (chance(rng, 0.2)) parts.push('reorder', `${fixed(between(rng, 1, 10))}%`, 'gap', String(Math.round(between(rng, 1, 5))));
  if (chance(rng, 0.2)) parts.push('corrupt', `${fixed(between(rng, 0, 1), 2)}%`);
  if (rate) parts.push('rate', rate);
  return { text: parts.join(' '), delayMs, jitterMs, dist, rate };
}

/** A random fault: what a bad moment on a link looks like. */
function randomFaultSpec(rng: SeededRng, base: { delayMs: number; rate: string | undefined }): string {
  switch (Math.floor(rng.nextFloat() * 6)) {
    case 0:
    case 1:
      return 'loss 100%';
    case 2:
      return `delay ${base.delayMs}ms loss gemodel ${fixed(between(rng, 1, 10))}% ${fixed(between(rng, 10, 60))}%${base.rate ? ` rate ${base.rate}` : ''}`;
    case 3:
      return `delay ${Math.round(base.delayMs + between(rng, 50, 400))}ms ${Math.round(between(rng, 5, 80))}ms distribution normal`;
    case 4:
      return `delay ${base.delayMs}ms loss ${fixed(between(rng, 5, 60))}% corrupt ${fixed(between(rng, 0, 5))}% duplicate ${fixed(between(rng, 0, 10))}%`;
    default:
      return `delay ${base.delayMs}ms reorder ${fixed(between(rng, 10, 50))}% gap 2 loss ${fixed(between(rng, 0, 20))}%`;
  }
}

/** One VOPR run. Deterministic in `seed` (and `config`). */
export function voprRun(seed: number, config: VoprConfig = DEFAULT_VOPR_CONFIG, bug?: InjectedBug): VoprRunResult {
  const wallStart = performance.now();
  const rng = new SeededRng(seed ^ 0x5eed5eed);
  const violations: string[] = [];
  const violate = (text: string): void => {
    if (violations.length < 10) violations.push(text);
  };

  // ---- the random fabric -------------------------------------------------------------------
  // Hub "a" (links mpls, inet, lte, sat: every spoke link X reaches hub.X, or an lte/sat spoke link
  // the hub's inet), spokes "b", "c", ... with 1-3 links each, lte/inet sometimes behind NAT.
  const LINKS = ['mpls', 'inet', 'lte', 'sat'] as const;
  const spokeCount = 3 + Math.floor(rng.nextFloat() * 2);
  const spokes = ['b', 'c', 'd', 'e'].slice(0, spokeCount);
  const siteNames = ['a', ...spokes];
  const spokeLinks = spokes.map(() => {
    const n = 1 + Math.floor(rng.nextFloat() * 3);
    const pool = [...LINKS];
    const out: { name: string; tier: CostTier; nat: boolean; hubLink: string }[] = [];
    for (let i = 0; i < n; i++) {
      const name = pool.splice(Math.floor(rng.nextFloat() * pool.length), 1)[0]!;
      const tier: CostTier = i === 0 ? 'primary' : pick(rng, ['primary', 'overflow', 'backup'] as const);
      const nat = (name === 'lte' || name === 'inet') && chance(rng, 0.4);
      // Plaintext can only demultiplex configured endpoints: one hub link per spoke link then.
      const hubLink = !config.insecurePlaintext && (name === 'lte' || name === 'sat') && chance(rng, 0.5) ? 'inet' : name;
      out.push({ name, tier, nat, hubLink });
    }
    return out;
  });
  const conns = spokes.flatMap((sp, i) => spokeLinks[i]!.map((l) => ({ name: `${sp}.${l.name}`, a: `${sp}.${l.name}`, b: `a.${l.hubLink}`, base: { ab: randomBaseSpec(rng), ba: randomBaseSpec(rng) } })));
  const policies: ClassPolicy[] = DEFAULT_POLICIES.map((p) => {
    const strategies: Strategy[] = p.name === 'voice' || p.name === 'video' ? ['best', 'duplicate'] : ['best', 'balance', 'duplicate'];
    return { ...p, sla: { ...p.sla }, strategy: chance(rng, 0.5) ? p.strategy : pick(rng, strategies) };
  });
  const healMs = config.faultsMs;
  /** The longest run: a run with a restart stretches its liveness phase to the restart bound. */
  // A liveness-phase restart comes at most LATE_RESTART_MAX_MS after the heal.
  const maxEndMs = healMs + Math.max(config.livenessMs, LATE_RESTART_MAX_MS + config.restartRecoveryBoundMs + 1000);
  const lan = (site: string): [number, number, number, number] => [10, 1 + siteNames.indexOf(site), 0, 2];

  let world: World;
  try {
    world = new World({
      seed,
      recordDeliveries: false,
      ...(config.insecurePlaintext ? { insecurePlaintext: true } : {}),
      ...(config.aead ? { aead: config.aead } : {}),
      endpoint: { policies },
      sites: [
        { name: 'a', role: 'hub', links: [...LINKS], prefixes: [`10.1.0.0/16`] },
        ...spokes.map((sp, i) => ({
          name: sp,
          links: spokeLinks[i]!.map((l) => ({ name: l.name, costTier: l.tier, ...(l.nat ? { nat: true } : {}) })),
          prefixes: [`10.${2 + i}.0.0/16`],
          ...(spokeLinks[i]!.some((l) => l.nat) ? { persistentKeepaliveMs: 2000 } : {}),
        })),
      ],
      connections: conns.map((c) => ({ name: c.name, a: c.a, b: c.b, abNetem: c.base.ab.text, baNetem: c.base.ba.text })),
    });
  } catch (e) {
    return { seed, ok: false, violations: [`world setup threw: ${firstLine(e)}`], description: '', sent: 0, delivered: 0, wallMs: performance.now() - wallStart, dropsAfterHeal: {} };
  }

  const flowCount = 4 + Math.floor(rng.nextFloat() * 4);
  const flows: FlowDef[] = [];
  // Network control (CS6, duplicated by default: routing protocols) is in the mix, and the last
  // flow is always one, spoke to hub: a restarted spoke renumbers its duplicates from 1.
  const trafficClasses: ClassName[] = ['voice', 'video', 'business', 'default', 'bulk', 'signaling', 'control'];
  for (let i = 0; i < flowCount; i++) {
    // The first three: hub -> b, b -> hub, c -> b (spoke to spoke); then any two sites.
    let origin: string;
    let dest: string;
    if (i === 0) [origin, dest] = ['a', 'b'];
    else if (i === 1) [origin, dest] = ['b', 'a'];
    else if (i === 2) [origin, dest] = ['c', 'b'];
    else {
      origin = pick(rng, siteNames);
      dest = pick(
        rng,
        siteNames.filter((x) => x !== origin),
      );
    }
    let className = pick(rng, trafficClasses);
    if (i === flowCount - 1 && i >= 3) {
      className = 'control';
      origin = pick(rng, spokes);
      dest = 'a';
    }
    // Network control is small (routing updates) and stays under the LAN-side CS6 cap.
    const sizeBytes = Math.round(between(rng, 60, className === 'control' ? 300 : 1400));
    const pps = Math.max(2, Math.round(between(rng, 10, 50) * (config.ppsScale ?? 1)));
    const flowId = 1 + i;
    const protocol: 6 | 17 = chance(rng, 0.3) ? 6 : 17;
    const factory = new PacketFactory({ src: lan(origin), dst: lan(dest), srcPort: 20000 + flowId, dstPort: 5000, dscp: CLASS_DSCP[className], protocol, sizeBytes, flowId });
    flows.push({ flowId, origin, dest, className, intervalMs: 1000 / pps, factory, sent: 0, seen: new Uint8Array(Math.ceil((maxEndMs / 1000) * pps) + 16), firstAfterHealMs: NaN, healSeq: -1, cpSeq: [], cpFirstMs: [] });
  }

  // Faults: blackouts, one-way cuts, brownouts, wire faults, restores, flaps on connections; site
  // restarts and NAT rebindings; then heal every connection.
  const faultCount = config.long ? 20 + Math.floor(rng.nextFloat() * 40) : 3 + Math.floor(rng.nextFloat() * 8);
  const faults: string[] = [];
  const restarted = new Set<string>();
  const natLinks = spokes.flatMap((sp, i) => spokeLinks[i]!.filter((l) => l.nat).map((l) => [sp, l.name] as const));
  const restartable = config.restarts === 'none' ? [] : config.restarts === 'spokes' ? spokes : siteNames;
  // The long form races a restart with each rekey (sessions are made ~200 ms in and rekey
  // REKEY_AFTER_TIME later): a site restarts within 300 ms either side of it.
  if (config.long && restartable.length > 0) {
    for (let k = 1; k * REKEY_AFTER_TIME_MS < healMs - 1000; k++) {
      const at = Math.round(k * REKEY_AFTER_TIME_MS + 200 + between(rng, -300, 300));
      const site = pick(rng, restartable);
      world.restartAt(at, site);
      restarted.add(site);
      faults.push(`${at}ms restart ${site} (rekey race)`);
    }
  }
  for (let i = 0; i < faultCount; i++) {
    const at = Math.round(between(rng, 500, healMs - 200));
    const roll = rng.nextFloat();
    if (roll < 0.12 && restartable.length > 0) {
      const site = pick(rng, restartable);
      world.restartAt(at, site);
      restarted.add(site);
      faults.push(`${at}ms restart ${site}`);
      continue;
    }
    if (roll < 0.2 && natLinks.length > 0) {
      const [sp, link] = pick(rng, natLinks);
      world.natRebindAt(at, sp, link);
      faults.push(`${at}ms nat-rebind ${sp}.${link}`);
      continue;
    }
    const ci = Math.floor(rng.nextFloat() * conns.length);
    const c = conns[ci]!;
    const dir = pick(rng, ['ab', 'ba', 'both'] as const);
    const base = c.base;
    if (chance(rng, 0.25)) {
      // Flap: down/up a few times.
      const periodMs = Math.round(between(rng, 200, 1500));
      const times = 2 + Math.floor(rng.nextFloat() * 4);
      for (let k = 0; k < times && at + (2 * k + 1) * periodMs < healMs; k++) {
        world.setNetemAt(at + 2 * k * periodMs, c.name, 'loss 100%', dir);
        if (dir !== 'ba') world.setNetemAt(at + (2 * k + 1) * periodMs, c.name, base.ab.text, 'ab');
        if (dir !== 'ab') world.setNetemAt(at + (2 * k + 1) * periodMs, c.name, base.ba.text, 'ba');
      }
      faults.push(`${at}ms ${c.name} ${dir} flap x${times} every ${periodMs}ms`);
    } else if (chance(rng, 0.2)) {
      if (dir !== 'ba') world.setNetemAt(at, c.name, base.ab.text, 'ab');
      if (dir !== 'ab') world.setNetemAt(at, c.name, base.ba.text, 'ba');
      faults.push(`${at}ms ${c.name} ${dir} restore`);
    } else {
      const spec = randomFaultSpec(rng, dir === 'ba' ? base.ba : base.ab);
      world.setNetemAt(at, c.name, spec, dir);
      faults.push(`${at}ms ${c.name} ${dir} "${spec}"`);
    }
  }
  // Checkpoints: after each, every flow it names must deliver a packet sent after it within its
  // bound. In half the runs a spoke restarts in the liveness phase, links clean: every class,
  // duplicated ones included, must recover (a receiver that kept the old dedupe window would drop
  // the restarted sender's renumbered duplicates). The hub is left out: a restarted hub waits for
  // the spokes' rekey timeout (a known Endpoint bug, see test/sim/vopr.test.ts).
  const checkpoints: Checkpoint[] = [];
  const lateCandidates = restartable.filter((x) => x !== 'a');
  if (lateCandidates.length > 0 && chance(rng, 0.5)) {
    const site = pick(rng, lateCandidates);
    const atMs = Math.round(healMs + between(rng, 1000, LATE_RESTART_MAX_MS));
    world.restartAt(atMs, site);
    faults.push(`${atMs}ms restart ${site} (liveness phase)`);
    checkpoints.push({ what: `restart of ${site} at ${atMs} ms`, atMs, sites: [site], boundMs: config.restartRecoveryBoundMs });
  }
  const endMs = restarted.size > 0 || checkpoints.length > 0 ? maxEndMs : healMs + config.livenessMs;
  const targets = [...new Set(conns.flatMap((c) => [c.a, c.b]))].sort();
  const adversary = config.adversary ? installAdversary(world, seed, targets, healMs, endMs, faults, checkpoints, config.recoveryBoundMs) : undefined;
  // Liveness phase: every connection healthy (its base delay, jitter and rate; no loss or wire faults).
  for (const c of conns) {
    for (const d of ['ab', 'ba'] as const) {
      const b = c.base[d];
      const clean = [`delay ${b.delayMs}ms`, ...(b.jitterMs > 0 ? [`${b.jitterMs}ms`, 'distribution', b.dist] : []), ...(b.rate ? ['rate', b.rate] : [])].join(' ');
      parseNetemSpec(clean);
      world.setNetemAt(healMs, c.name, clean, d);
    }
  }

  const description = [
    `sites a(hub) ${spokes.map((sp, i) => `${sp}(${spokeLinks[i]!.map((l) => `${l.name}/${l.tier}${l.nat ? '/nat' : ''}${l.hubLink !== l.name ? `->a.${l.hubLink}` : ''}`).join(',')})`).join(' ')}`,
    `connections ${conns.map((c) => `${c.name} ab "${formatNetemSpec(parseNetemSpec(c.base.ab.text))}" ba "${formatNetemSpec(parseNetemSpec(c.base.ba.text))}"`).join('; ')}`,
    `policies ${policies.filter((p, i) => p.strategy !== DEFAULT_POLICIES[i]!.strategy).map((p) => `${p.name}=${p.strategy}`).join(',') || 'default'}`,
    `flows ${flows.map((f) => `${f.flowId}:${f.className}:${f.origin}->${f.dest}@${Math.round(1000 / f.intervalMs)}pps`).join(' ')}`,
    `faults ${faults.join(', ')}; heal at ${healMs}ms`,
  ].join(' | ');

  // ---- traffic and invariants ----------------------------------------------------------------
  const byId = new Map(flows.map((f) => [f.flowId, f]));
  checkpoints.forEach((cp, k) => {
    for (const f of flows) {
      f.cpSeq.push(-1);
      f.cpFirstMs.push(NaN);
    }
    world.at(cp.atMs, () => {
      for (const f of flows) f.cpSeq[k] = f.sent;
    });
  });
  for (const f of flows) {
    const start = 200 + rng.nextFloat() * f.intervalMs;
    world.every(f.intervalMs, { startMs: start, untilMs: endMs - 100 }, (seq) => {
      if (seq >= f.seen.length) return;
      f.sent = seq + 1;
      if (f.healSeq < 0 && world.nowMs >= healMs) f.healSeq = seq;
      world.site(f.origin).sendTun(f.factory.makeShared(seq));
    });
  }
  let delivered = 0;
  const onDeliver = (site: string) => (bytes: Uint8Array, atMs: number): void => {
    delivered++;
    const tag = readPacketTag(bytes);
    if (!tag) {
      // The edge's own Frag Needed for a LAN packet: no VOPR path is under 1500, so a false PMTU.
      if (bytes.length >= 28 && bytes[0]! >> 4 === 4 && bytes[9] === 1 && bytes[20] === 3 && bytes[21] === 4) {
        return violate(`pmtu: site ${site}'s edge answered a LAN packet with Frag Needed (MTU ${(bytes[26]! << 8) | bytes[27]!}) at ${atMs.toFixed(1)} ms, but every path carries 1500`);
      }
      return violate(`integrity: site ${site} got ${bytes.length} bytes at ${atMs.toFixed(1)} ms that carry no flow tag`);
    }
    const f = byId.get(tag.flowId);
    if (!f) return violate(`integrity: site ${site} got a packet of flow ${tag.flowId}, which does not exist`);
    if (f.dest !== site) return violate(`right site: site ${site} got flow ${f.flowId} seq ${tag.seq}, which ${f.origin} sends to ${f.dest}`);
    if (tag.seq >= f.sent) return violate(`integrity: flow ${f.flowId} seq ${tag.seq} delivered at site ${site} but only ${f.sent} were sent`);
    if (!f.factory.matches(bytes, tag.seq) && !remarkedCopyMatches(f.factory, bytes, tag.seq)) return violate(`integrity: flow ${f.flowId} seq ${tag.seq} delivered corrupted at site ${site} at ${atMs.toFixed(1)} ms (${diffAt(bytes, f.factory.make(tag.seq))})`);
    if (f.seen[tag.seq]! > 0) return violate(`no dups: flow ${f.flowId} seq ${tag.seq} delivered twice at site ${site} (again at ${atMs.toFixed(1)} ms)`);
    f.seen[tag.seq] = 1;
    if (f.healSeq >= 0 && tag.seq >= f.healSeq && Number.isNaN(f.firstAfterHealMs)) f.firstAfterHealMs = atMs;
    for (let k = 0; k < checkpoints.length; k++) {
      if (f.cpSeq[k]! >= 0 && tag.seq >= f.cpSeq[k]! && Number.isNaN(f.cpFirstMs[k]!)) f.cpFirstMs[k] = atMs;
    }
  };
  for (const site of world.sites) site.onDeliver = onDeliver(site.name);
  if (bug !== undefined && bug.seed === seed) {
    const b = world.site('b');
    plantBug(b.edge, bug);
    // A restarted b gets a fresh engine: plant the bug there too.
    const restart = world.restart.bind(world);
    world.restart = (name: string): void => {
      restart(name);
      if (name === 'b') plantBug(world.site('b').edge, bug);
    };
  }

  const dropsAtHeal = new Map<string, Record<string, number>>();
  world.at(healMs, () => {
    for (const site of world.sites) dropsAtHeal.set(site.name, { ...site.edge.snapshot(world.nowMs).drops });
  });
  try {
    world.run(endMs + 1000);
  } catch (e) {
    violate(`no crash: the world threw at ${world.nowMs.toFixed(1)} ms: ${firstLine(e)}`);
  }

  // Liveness: every flow delivers a packet sent after the heal within the bound.
  for (const f of flows) {
    if (f.healSeq < 0) continue;
    const viaRestart = restarted.has(f.origin) || restarted.has(f.dest) || restarted.has('a');
    const bound = viaRestart ? Math.max(config.recoveryBoundMs, config.restartRecoveryBoundMs) : config.recoveryBoundMs;
    const what = `flow ${f.flowId} (${f.className}, ${f.origin} -> ${f.dest}${viaRestart ? `; restarted: ${[...restarted].sort().join(',')}` : ''})`;
    if (Number.isNaN(f.firstAfterHealMs)) violate(`liveness: ${what} delivered nothing sent after the faults stopped at ${healMs} ms`);
    else if (f.firstAfterHealMs - healMs > bound) {
      violate(`liveness: ${what} took ${(f.firstAfterHealMs - healMs).toFixed(0)} ms after the faults stopped to deliver again (bound ${bound} ms)`);
    }
  }
  checkpoints.forEach((cp, k) => {
    for (const f of flows) {
      if (cp.sites && !cp.sites.includes(f.origin) && !cp.sites.includes(f.dest)) continue;
      const touched = (x: string): boolean => restarted.has(x) || checkpoints.some((c) => c.sites?.includes(x) === true);
      if (cp.skipRestarted && (touched(f.origin) || touched(f.dest) || touched('a'))) continue;
      if (f.cpSeq[k]! < 0 || f.cpSeq[k]! >= f.sent) continue;
      const what = `flow ${f.flowId} (${f.className}, ${f.origin} -> ${f.dest})`;
      const first = f.cpFirstMs[k]!;
      if (Number.isNaN(first)) violate(`recovery: ${what} delivered nothing sent after the ${cp.what}`);
      else if (first - cp.atMs > cp.boundMs) violate(`recovery: ${what} took ${(first - cp.atMs).toFixed(0)} ms after the ${cp.what} to deliver again (bound ${cp.boundMs} ms)`);
    }
  });
  const sent = flows.reduce((n, f) => n + f.sent, 0);
  const dropsAfterHeal: Record<string, Record<string, number>> = {};
  for (const site of world.sites) {
    const before = dropsAtHeal.get(site.name) ?? {};
    const grown = Object.entries(site.edge.snapshot(world.nowMs).drops).filter(([k, v]) => v > (before[k] ?? 0));
    if (grown.length > 0) dropsAfterHeal[site.name] = Object.fromEntries(grown.map(([k, v]) => [k, v - (before[k] ?? 0)]));
  }
  return { seed, ok: violations.length === 0, violations, description, sent, delivered, wallMs: performance.now() - wallStart, dropsAfterHeal, ...(adversary ? { adversary } : {}), ...(config.long ? { long: true } : {}) };
}

/** The flooder's address: every initiation comes from it, over FLOOD_PORTS source ports. */
const FLOOD_ADDRESS = '198.51.100.7';
const FLOOD_PORTS = 4096;
const FLOOD_INITIATIONS = 2000;
const FLOOD_DURATION_MS = 1000;
/** The most datagrams the adversary remembers for replays. */
const CAPTURE_CAP = 256;

/**
 * The adversary: watches every datagram handed to a link (World.tap) and, from its own random
 * stream (the fabric and faults of a seed do not change with it):
 *   copy      in the faults phase, a datagram just sent is also injected, within 5 ms, into
 *             another (or the same) site link's socket, from a stranger or from its real sender
 *   replay    every 20-80 ms, a datagram captured at least 1 s ago is injected into a random
 *             site link, from a stranger's endpoint or its real sender's (forged)
 *   flood     twice (once in the faults phase, once just after the heal): FLOOD_INITIATIONS
 *             initiations (captured ones: valid mac1) from one address over FLOOD_PORTS ports
 *             into the hub's links; every flow must deliver within recoveryBoundMs of the
 *             liveness-phase flood's end (the real peers' sessions survive it)
 */
function installAdversary(
  world: World,
  seed: number,
  targets: string[],
  healMs: number,
  endMs: number,
  faults: string[],
  checkpoints: Checkpoint[],
  recoveryBoundMs: number,
): AdversaryStats {
  const arng = new SeededRng((seed ^ 0xad7e5a21) >>> 0);
  const stats: AdversaryStats = { copied: 0, replayed: 0, forged: 0, floodInitiations: 0, floodPorts: FLOOD_PORTS };
  interface Captured {
    bytes: Uint8Array;
    atMs: number;
    from: { address: string; port: number };
  }
  const captured: Captured[] = [];
  let initiation: Uint8Array | undefined;
  const split = (ref: string): [string, string] => {
    const dot = ref.indexOf('.');
    return [ref.slice(0, dot), ref.slice(dot + 1)];
  };
  const stranger = (): { address: string; port: number } => ({ address: '203.0.113.66', port: 1024 + Math.floor(arng.nextFloat() * 60000) });
  const inject = (atMs: number, c: Captured): void => {
    const [site, link] = split(pick(arng, targets));
    const forged = chance(arng, 0.5);
    if (forged) stats.forged++;
    world.injectAt(atMs, site, link, forged ? c.from : stranger(), c.bytes);
  };
  world.tap = (siteName, linkId, bytes, atMs) => {
    if (bytes.length === INITIATION_LENGTH && bytes[0] === MESSAGE_INITIATION && siteName !== 'a') initiation = bytes.slice();
    const r = arng.nextFloat();
    if (r >= 0.03) return;
    const site = world.site(siteName);
    const link = site.linkNames[linkId];
    if (link === undefined) return;
    const c: Captured = { bytes: bytes.slice(), atMs, from: site.visibleEndpoint(link) };
    if (captured.length < CAPTURE_CAP) captured.push(c);
    else captured[Math.floor(arng.nextFloat() * CAPTURE_CAP)] = c;
    if (r < 0.005 && atMs < healMs - 10) {
      stats.copied++;
      inject(atMs + arng.nextFloat() * 5, c);
    }
  };
  world.every(20 + arng.nextFloat() * 60, { startMs: 1500, untilMs: endMs - 200 }, () => {
    const old = captured.filter((c) => c.atMs < world.nowMs - 1000);
    if (old.length === 0) return;
    stats.replayed++;
    inject(world.nowMs, pick(arng, old));
  });
  const hubTargets = targets.filter((t) => t.startsWith('a.'));
  const flood = (startMs: number): void => {
    world.at(startMs, () => {
      const bytes = initiation ?? new Uint8Array(INITIATION_LENGTH).fill(0x5a);
      bytes[0] = MESSAGE_INITIATION;
      for (let i = 0; i < FLOOD_INITIATIONS; i++) {
        const [site, link] = split(hubTargets[i % hubTargets.length]!);
        world.injectAt(startMs + (i * FLOOD_DURATION_MS) / FLOOD_INITIATIONS, site, link, { address: FLOOD_ADDRESS, port: 1024 + (i % FLOOD_PORTS) }, bytes);
        stats.floodInitiations++;
      }
    });
  };
  const faultFloodMs = Math.round(between(arng, 1000, Math.max(1001, healMs - FLOOD_DURATION_MS - 500)));
  flood(faultFloodMs);
  const healFloodMs = Math.round(healMs + between(arng, 100, 500));
  flood(healFloodMs);
  faults.push(`${faultFloodMs}ms and ${healFloodMs}ms handshake flood (${FLOOD_INITIATIONS} from ${FLOOD_ADDRESS} over ${FLOOD_PORTS} ports into ${hubTargets.join(',')})`);
  checkpoints.push({ what: `handshake flood at ${healFloodMs} ms`, atMs: healFloodMs + FLOOD_DURATION_MS, skipRestarted: true, boundMs: recoveryBoundMs });
  return stats;
}

/** Wraps the engine's pollDelivery so that one delivery goes wrong: the planted bug. */
function plantBug(edge: SiteEngine, bug: InjectedBug): void {
  const original = edge.pollDelivery.bind(edge);
  const nth = bug.afterDeliveries ?? 100;
  let count = 0;
  let replay: Uint8Array | undefined;
  edge.pollDelivery = (): Uint8Array | undefined => {
    if (replay) {
      const r = replay;
      replay = undefined;
      return r;
    }
    const p = original();
    if (p === undefined) return p;
    if (++count !== nth) return p;
    if (bug.kind === 'duplicate') {
      replay = p.slice();
      return p;
    }
    const copy = p.slice();
    const i = copy.length - 1; // filler after the flow tag: the packet still names its flow
    copy[i] = copy[i]! ^ 0x20;
    return copy;
  };
}

/**
 * The LAN-side DSCP trust boundary re-marks a class over its cap to best effort (DSCP 0, the IP
 * checksum redone): such a packet is the flow's packet with only those header bytes changed.
 */
function remarkedCopyMatches(factory: PacketFactory, bytes: Uint8Array, seq: number): boolean {
  if (bytes.length < 20 || (bytes[1]! & 0xfc) !== 0) return false;
  const want = factory.make(seq);
  if ((want[1]! & 0xfc) === 0) return false;
  const copy = bytes.slice();
  copy[1] = want[1]!;
  copy[10] = want[10]!;
  copy[11] = want[11]!;
  return factory.matches(copy, seq);
}

function diffAt(got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return `byte ${i} is 0x${got[i]!.toString(16)}, expected 0x${want[i]!.toString(16)}`;
  return 'identical';
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? `${e.message} ${e.stack?.split('\n')[1]?.trim() ?? ''}` : String(e);
  return text.split('\n')[0]!;
}

export interface VoprOptions {
  seed: number;
  runs: number;
  config?: VoprConfig;
  bug?: InjectedBug;
  /** After each run (progress, or printing failures as they come). */
  onRun?: (result: VoprRunResult, index: number) => void;
}

/** Runs seeds seed, seed+1, ..., seed+runs-1. */
export function vopr(options: VoprOptions): VoprSummary {
  const start = performance.now();
  const failures: VoprRunResult[] = [];
  let sent = 0;
  let delivered = 0;
  for (let i = 0; i < options.runs; i++) {
    const seed = (options.seed + i) >>> 0;
    const r = voprRun(seed, options.config, options.bug);
    sent += r.sent;
    delivered += r.delivered;
    if (!r.ok) failures.push(r);
    options.onRun?.(r, i);
  }
  return { firstSeed: options.seed, runs: options.runs, passed: options.runs - failures.length, failures, wallMs: performance.now() - start, sent, delivered };
}

export function formatFailure(r: VoprRunResult): string {
  return [
    `VOPR seed ${r.seed} FAILED (${r.violations.length} violation${r.violations.length === 1 ? '' : 's'}); reproduce: braid sim vopr --seed ${r.seed}${r.long ? ' --long' : ''}`,
    ...r.violations.map((v) => `  ${v}`),
    ...(Object.keys(r.dropsAfterHeal).length > 0 ? [`  drops after the heal: ${Object.entries(r.dropsAfterHeal).map(([site, d]) => `${site} ${JSON.stringify(d)}`).join('; ')}`] : []),
    `  world: ${r.description}`,
  ].join('\n');
}
