/**
 * Scenario files (profiles/scenarios/*.yaml): links, a traffic mix, an impairment timeline in
 * netem's own syntax, class-policy overrides and expectations, validated with zod and resolved
 * into a Scenario both runners (virtual time, real time) execute the same way.
 *
 *   name: mpls-blackout
 *   description: MPLS goes dark for 10 s
 *   durationS: 30
 *   links:
 *     - { name: mpls, profile: mpls }                      # profiles/links/mpls.yaml
 *     - { name: inet, netem: { up: "delay 10ms", down: "delay 10ms" }, costTier: overflow }
 *   traffic:
 *     - { class: voice, kind: voice, calls: 4 }            # 200 B at 50 pps each way per call
 *     - { class: video, kind: cbr, sizeBytes: 1000, pps: 100, flows: 2 }
 *     - { class: bulk, kind: bulk, flows: 4, rateMbps: 4 } # real time: iperf3 TCP
 *   timeline:
 *     - { at: 10s, link: mpls, set: "loss 100%" }          # replaces the spec, like `tc qdisc change`
 *     - { at: 15s, link: inet, add: "loss 2%", direction: up }  # merged onto the current spec
 *     - { at: 20s, link: mpls, restore: true }             # back to the link's own spec
 *     - { at: 25s, link: inet, health: unreachable, target: isp-gw }  # its health target stops answering (the branch's)
 *   policies: { voice: { strategy: duplicate } }
 *   expect: ["voice.max_gap_ms < 400", "bulk.delivered_ratio > 0.99"]
 *
 * Directions: site a is the branch, site b the hub. "up" is what the branch sends (a -> b, the
 * World's "ab"), "down" what it receives (b -> a, "ba"), as in link profiles.
 *
 * Many sites (a hub and branches; `sites:` instead of `links:`). A link with `to:` is a
 * connection to another site's link, impaired by its profile/netem ("up" = what this site sends
 * on it); a hub's links just name its uplinks. Each site gets a LAN prefix 10.(i+1).0.0/16 in list
 * order. Traffic names its two sites (`from`, `to`; "both" runs each way; spoke to spoke goes
 * through the hub). A timeline `link:` is SITE.LINK: a link with `to:` changes that one
 * connection, a hub link changes every connection to it; "up" is what SITE sends on it.
 *
 *   sites:
 *     - { name: hub, role: hub, links: [{ name: mpls }, { name: inet }] }
 *     - name: b1
 *       links:
 *         - { name: mpls, profile: mpls, to: hub.mpls }
 *         - { name: lte, profile: lte, to: hub.inet, nat: true }
 *     - { name: b2, links: [{ name: inet, profile: cable, to: hub.inet }] }
 *   traffic:
 *     - { class: voice, kind: voice, calls: 2, from: b1, to: b2 }
 *   timeline:
 *     - { at: 10s, link: b1.mpls, set: "loss 100%" }     # one connection
 *     - { at: 15s, link: hub.inet, set: "loss 100%", direction: up }  # the hub's inet uplink
 *   expect: ["voice.max_gap_ms < 400", "b2.voice.moves == 0", "b1>b2.voice.max_gap_ms < 400"]
 *
 * Every problem is a one-line ScenarioError naming the file, the field and the fix.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { parseYamlSource, YamlSyntaxError, type YamlSource } from '../../src/control/yaml-source.ts';
import { CLASS_NAMES, DEFAULT_POLICIES, type ClassName, type ClassPolicy, type CostTier } from '../../src/core/steer/classes.ts';
import { findLinkProfile, LINK_PROFILES_DIR } from '../netem/profiles.ts';
import { DEFAULT_LIMIT_PACKETS, NetemSpecError, parseNetemSpec, type NetemSpec } from '../netem/spec.ts';
import { parseExpectation, type Expectation } from './expect.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('../../profiles/scenarios/', import.meta.url));

/** Limits on everything a scenario can ask for, so a typo cannot ask for a day of 1 Mpps. */
export const SCENARIO_LIMITS = {
  durationS: 3600,
  links: 8,
  sites: 16,
  trafficItems: 32,
  flowsPerItem: 64,
  ppsPerFlow: 20_000,
  timelineEntries: 500,
  expectations: 100,
  rateMbps: 1000,
} as const;

export type TrafficKind = 'voice' | 'cbr' | 'bulk';
/** up: site a -> b only; down: b -> a only; both: each way. */
export type TrafficDirection = 'up' | 'down' | 'both';
export type LinkDirection = 'up' | 'down' | 'both';

/** The inner DSCP each class's generated traffic carries (RFC 4594 figure 3). */
export const CLASS_DSCP: Record<ClassName, number> = {
  control: 48,
  voice: 46,
  video: 34,
  signaling: 24,
  business: 18,
  default: 0,
  bulk: 10,
};

export interface ScenarioLink {
  name: string;
  /** The link profile it came from, if any. */
  profile: string | undefined;
  costTier: CostTier;
  bandwidthBps: { up: number; down: number } | undefined;
  up: NetemSpec;
  down: NetemSpec;
  upText: string;
  downText: string;
}

/** Many-site scenarios: one link of a site. */
export interface ScenarioSiteLink {
  name: string;
  costTier: CostTier;
  /** The site's shaper rate on this link (up), when given. */
  bandwidthBps: number | undefined;
  nat: boolean;
  /** The far site link this link connects to ("to: hub.inet"); undefined for a hub's uplinks. */
  to: { site: string; link: string } | undefined;
}

export interface ScenarioSite {
  name: string;
  role: 'hub' | 'spoke';
  /** LAN prefix (10.(i+1).0.0/16) and the host the traffic uses in it. */
  prefix: string;
  host: [number, number, number, number];
  links: ScenarioSiteLink[];
}

/** Many-site scenarios: a connection (named SITE.LINK after the link that has `to:`). */
export interface ScenarioConnection extends ScenarioLink {
  /** The site link with `to:` (its "up" is what it sends). */
  from: { site: string; link: string };
  to: { site: string; link: string };
}

export interface ScenarioTraffic {
  /** Position in the scenario's traffic list. */
  index: number;
  /** Many-site scenarios: the two sites (direction up: from -> to). Two-site: a and b. */
  from: string;
  to: string;
  className: ClassName;
  classId: number;
  dscp: number;
  kind: TrafficKind;
  direction: TrafficDirection;
  /** Flows per direction (voice: calls). */
  flows: number;
  /** Inner IP packet size. */
  sizeBytes: number;
  /** Packets per second per flow (bulk: derived from rateMbps). */
  pps: number;
  /** Bulk only: total rate per direction. */
  rateMbps: number | undefined;
  startMs: number;
  stopMs: number;
}

export interface ScenarioStep {
  index: number;
  atMs: number;
  /** Link name (two sites) or SITE.LINK (many sites). */
  link: string;
  /**
   * Many sites: the connections this step changes, each with the World direction ("ab" is what
   * the connection's `from` end sends) of the step's up and down.
   */
  connections?: { name: string; up: 'ab' | 'ba'; result: { up?: NetemSpec; down?: NetemSpec } }[];
  direction: LinkDirection;
  action: 'set' | 'add' | 'restore' | 'health';
  /**
   * Health steps: the link's external health target (probed by the site through that link) stops
   * or starts answering. The site is SITE of SITE.LINK (many sites) or the branch, a (two sites).
   * Nothing changes on the wire: pair it with a netem step for what the outage does to packets.
   */
  health?: { reachable: boolean; target: string; site: string; link: string };
  /** The spec as written (empty for restore and health). */
  text: string;
  /** The full spec of each affected direction after this step (what gets installed). */
  result: { up?: NetemSpec; down?: NetemSpec };
  /** set/add and health unreachable are faults (detection and reroute are measured); restore and health reachable are recoveries. */
  kind: 'fault' | 'restore';
}

export interface Scenario {
  name: string;
  description: string;
  durationMs: number;
  seed: number | undefined;
  /** Two sites: the links. Many sites: the connections (ScenarioConnection, named SITE.LINK). */
  links: ScenarioLink[];
  /** Many-site scenarios only. */
  sites: ScenarioSite[] | undefined;
  connections: ScenarioConnection[] | undefined;
  traffic: ScenarioTraffic[];
  timeline: ScenarioStep[];
  /** Full class policies (defaults with the scenario's overrides applied). */
  policies: ClassPolicy[];
  /** Classes whose policy the scenario overrides. */
  overriddenClasses: ClassName[];
  expectations: Expectation[];
  /** File (or label) it came from. */
  source: string;
}

export class ScenarioError extends BraidError {
  /** `location`: `FILE:LINE:COLUMN` (yaml-source.ts), in place of `scenario FILE`. */
  constructor(source: string, field: string | undefined, message: string, fix?: string, location?: string) {
    super(ErrorCode.SCENARIO_INVALID, `${location ?? `scenario ${source}`}: ${field === undefined ? '' : `${field}: `}${message}`, {
      ...(fix === undefined ? {} : { fix }),
      ...(field === undefined ? {} : { field }),
    });
    this.name = 'ScenarioError';
  }
}

// ---- schema ---------------------------------------------------------------------------------

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const LINK_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** "10s", "1500ms", "1.5s", "2m", or a number of seconds. */
const duration = z.union([z.number({ error: 'expected a time like 10s or 1500ms' }), z.string({ error: 'expected a time like 10s or 1500ms' })]);

const netemText = z.string({ error: 'expected a netem spec in quotes, like "delay 20ms 2ms loss 1%"' });

const LinkSchema = z.strictObject({
  name: z.string({ error: 'expected a link name like "mpls"' }).regex(LINK_NAME_RE, { error: 'expected a short lowercase name like "mpls" (a-z, 0-9, - and _)' }),
  profile: z.string({ error: 'expected a link profile name like "mpls" or "lte"' }).optional(),
  netem: z
    .strictObject({ up: netemText, down: netemText }, { error: 'expected { up: "<netem spec>", down: "<netem spec>" }' })
    .optional(),
  costTier: z.enum(['primary', 'overflow', 'backup'], { error: 'expected primary, overflow or backup' }).optional(),
  bandwidthBps: z
    .strictObject({ up: z.number().positive(), down: z.number().positive() }, { error: 'expected { up: BITS_PER_S, down: BITS_PER_S }' })
    .optional(),
});

const SiteLinkSchema = LinkSchema.extend({
  to: z.string({ error: 'expected the far site link as SITE.LINK, like "hub.inet"' }).optional(),
  nat: z.boolean({ error: 'expected true or false' }).optional(),
}).strict();

const SiteSchema = z.strictObject({
  name: z.string({ error: 'expected a site name like "hub" or "b1"' }).regex(NAME_RE, { error: 'expected lowercase letters, digits and "-", like "branch-1"' }),
  role: z.enum(['hub', 'spoke'], { error: 'expected hub or spoke' }).optional(),
  links: z.array(SiteLinkSchema, { error: 'expected a list of links' }).min(1, { error: 'expected at least one link' }).max(SCENARIO_LIMITS.links, { error: `expected at most ${SCENARIO_LIMITS.links} links` }),
});

const classEnum = z.enum(CLASS_NAMES, { error: `expected a class: ${CLASS_NAMES.join(', ')}` });

const TrafficSchema = z.strictObject({
  class: classEnum,
  kind: z.enum(['voice', 'cbr', 'bulk'], { error: 'expected voice, cbr or bulk' }),
  calls: z.number().int({ error: 'expected a whole number of calls' }).min(1).max(SCENARIO_LIMITS.flowsPerItem).optional(),
  flows: z.number().int({ error: 'expected a whole number of flows' }).min(1).max(SCENARIO_LIMITS.flowsPerItem).optional(),
  sizeBytes: z.number().int({ error: 'expected a packet size in bytes' }).min(60, { error: 'expected at least 60 bytes' }).max(1400, { error: 'expected at most 1400 bytes (the TUN MTU is 1420)' }).optional(),
  pps: z.number().positive({ error: 'expected packets per second above 0' }).max(SCENARIO_LIMITS.ppsPerFlow).optional(),
  rateMbps: z.number().positive({ error: 'expected Mbit/s above 0' }).max(SCENARIO_LIMITS.rateMbps).optional(),
  direction: z.enum(['up', 'down', 'both'], { error: 'expected up (a -> b), down (b -> a) or both' }).optional(),
  from: z.string({ error: 'expected a site name' }).optional(),
  to: z.string({ error: 'expected a site name' }).optional(),
  startS: z.number().min(0).optional(),
  stopS: z.number().positive().optional(),
});

const StepSchema = z.strictObject({
  at: duration,
  link: z.string({ error: 'expected the name of a link of this scenario' }),
  set: netemText.optional(),
  add: netemText.optional(),
  restore: z.literal(true, { error: 'expected restore: true' }).optional(),
  direction: z.enum(['up', 'down', 'both'], { error: 'expected up, down or both' }).optional(),
  /** The link's external health target (an ISP gateway) stops or starts answering; the link itself is untouched. */
  health: z.enum(['unreachable', 'reachable'], { error: 'expected unreachable or reachable' }).optional(),
  /** What the health target is called in the edge's reason (default "isp-gateway"). */
  target: z.string({ error: 'expected a name like "isp-gateway" or an address' }).regex(/^[A-Za-z0-9.:_-]{1,64}$/, { error: 'expected a short name or address (letters, digits, . : _ -)' }).optional(),
});

const PolicySchema = z.strictObject({
  strategy: z.enum(['best', 'balance', 'duplicate'], { error: 'expected best, balance or duplicate' }).optional(),
  sla: z
    .strictObject({
      lossRatio: z.number().min(0).max(1, { error: 'expected a ratio from 0 to 1 (1% is 0.01)' }).optional(),
      rttMs: z.number().positive().optional(),
      jitterMs: z.number().positive().optional(),
    })
    .optional(),
});

const ScenarioSchema = z.strictObject({
  name: z.string({ error: 'expected a name like "mpls-blackout"' }).regex(NAME_RE, { error: 'expected lowercase letters, digits and "-", like "mpls-blackout"' }),
  description: z.string({ error: 'expected a one-line description' }).min(1, { error: 'expected a one-line description' }),
  durationS: z.number({ error: 'expected the run length in seconds' }).positive({ error: 'expected seconds above 0' }).max(SCENARIO_LIMITS.durationS, { error: `expected at most ${SCENARIO_LIMITS.durationS} s` }),
  seed: z.number().int({ error: 'expected a whole-number seed' }).min(0).max(2 ** 32 - 1).optional(),
  links: z.array(LinkSchema, { error: 'expected a list of links' }).min(1, { error: 'expected at least one link' }).max(SCENARIO_LIMITS.links, { error: `expected at most ${SCENARIO_LIMITS.links} links` }).optional(),
  sites: z.array(SiteSchema, { error: 'expected a list of sites' }).min(2, { error: 'expected at least two sites' }).max(SCENARIO_LIMITS.sites, { error: `expected at most ${SCENARIO_LIMITS.sites} sites` }).optional(),
  traffic: z.array(TrafficSchema, { error: 'expected a list of traffic items' }).min(1, { error: 'expected at least one traffic item' }).max(SCENARIO_LIMITS.trafficItems),
  timeline: z.array(StepSchema, { error: 'expected a list of steps' }).max(SCENARIO_LIMITS.timelineEntries).default([]),
  policies: z.partialRecord(classEnum, PolicySchema, { error: 'expected class names mapped to { strategy, sla }' }).optional(),
  expect: z.array(z.string({ error: 'expected an expectation like "voice.max_gap_ms < 400"' }), { error: 'expected a list of expectations' }).max(SCENARIO_LIMITS.expectations).default([]),
});

const FIELDS = Object.keys(ScenarioSchema.shape).join(', ');

/** The fields allowed in the object at `path`, for "unknown field" messages. */
function fieldsAt(path: readonly PropertyKey[]): string {
  const names = path.filter((p) => typeof p === 'string');
  const keys = (o: { shape: object }): string => Object.keys(o.shape).join(', ');
  if (names.length === 0) return FIELDS;
  switch (names[0]) {
    case 'links':
      return names[1] === 'netem' ? 'up, down' : names[1] === 'bandwidthBps' ? 'up, down' : keys(LinkSchema);
    case 'sites':
      return names[1] !== 'links' ? keys(SiteSchema) : names[2] === 'netem' || names[2] === 'bandwidthBps' ? 'up, down' : keys(SiteLinkSchema);
    case 'traffic':
      return keys(TrafficSchema);
    case 'timeline':
      return keys(StepSchema);
    case 'policies':
      return names.length > 2 ? 'lossRatio, rttMs, jitterMs' : keys(PolicySchema);
    default:
      return FIELDS;
  }
}

// ---- loading --------------------------------------------------------------------------------

/** A scenario name (profiles/scenarios/NAME.yaml) or a path to a YAML file. */
export function resolveScenarioPath(nameOrPath: string, dir: string = SCENARIOS_DIR): string {
  if (/[/\\]/.test(nameOrPath) || /\.ya?ml$/.test(nameOrPath)) {
    if (!existsSync(nameOrPath)) {
      throw new ScenarioError(nameOrPath, undefined, 'no such file', 'check the path, or give a shipped scenario by name (braid sim list)');
    }
    return nameOrPath;
  }
  const path = join(dir, `${nameOrPath}.yaml`);
  if (!existsSync(path)) {
    throw new ScenarioError(nameOrPath, undefined, 'no shipped scenario of that name', `use one of ${listScenarios(dir).join(', ')}, or a path to a YAML file`);
  }
  return path;
}

/** Names of the shipped scenarios. */
export function listScenarios(dir: string = SCENARIOS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

export function loadScenario(nameOrPath: string, dir: string = SCENARIOS_DIR): Scenario {
  const path = resolveScenarioPath(nameOrPath, dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(path, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'check the path and permissions');
  }
  return parseScenario(text, path);
}

/** Parses and resolves one scenario. `source` names it in errors. */
export function parseScenario(text: string, source: string): Scenario {
  let src: YamlSource;
  try {
    src = parseYamlSource(text, source);
  } catch (e) {
    if (!(e instanceof YamlSyntaxError)) throw e;
    throw new ScenarioError(source, undefined, `not valid YAML: ${e.reason}`, 'fix the YAML syntax at that line', e.location);
  }
  try {
    return resolveScenario(src.value, source);
  } catch (e) {
    // `scenario FILE: field: problem` -> `FILE:LINE:COLUMN: field: problem` (the key, for an unknown field).
    const prefix = `scenario ${source}: ${e instanceof ScenarioError && e.field !== undefined ? `${e.field}: ` : ''}`;
    if (!(e instanceof ScenarioError) || !e.message.startsWith(prefix)) throw e;
    const rest = e.message.slice(prefix.length);
    throw new ScenarioError(source, e.field, rest, e.fix, src.where(e.field ?? [], { key: rest === 'unknown field' }));
  }
}

function resolveScenario(doc: unknown, source: string): Scenario {
  const result = ScenarioSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!;
    const field = fieldPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const key = [field === '(top level)' ? '' : field, issue.keys[0]].filter((p) => p !== '').join('.');
      throw new ScenarioError(source, key, 'unknown field', `remove it or fix its spelling (fields here: ${fieldsAt(issue.path)})`);
    }
    if (issue.path.length === 0) throw new ScenarioError(source, undefined, `expected a mapping with ${FIELDS}`);
    const value = valueAt(doc, issue.path);
    if (value === undefined) throw new ScenarioError(source, field, `missing; ${issue.message}`, `add ${field}`);
    throw new ScenarioError(source, field, `${issue.message}, got ${shortJson(value)}`, `correct ${field}`);
  }
  const s = result.data;
  const stem = basename(source).replace(/\.ya?ml$/, '');
  if (stem !== basename(source) && stem !== s.name) {
    throw new ScenarioError(source, 'name', `"${s.name}" differs from the file name "${stem}"`, 'rename one to match the other');
  }
  const durationMs = s.durationS * 1000;

  // Links (two sites) or sites and their connections
  if ((s.links === undefined) === (s.sites === undefined)) {
    throw new ScenarioError(source, s.links ? 'sites' : 'links', s.links ? 'give links (two sites) or sites, not both' : 'missing; expected links (two sites) or sites (a hub and branches)', 'add links: [...] or sites: [...]');
  }
  /** A link's impairment and tier from its profile or netem specs. */
  const linkOf = (l: z.infer<typeof LinkSchema>, name: string, field: string): ScenarioLink => {
    if ((l.profile === undefined) === (l.netem === undefined)) {
      throw new ScenarioError(source, field, 'needs exactly one of profile or netem', 'use profile: mpls (profiles/links) or netem: { up: "...", down: "..." }');
    }
    if (l.profile !== undefined) {
      let p;
      try {
        p = findLinkProfile(l.profile, LINK_PROFILES_DIR);
      } catch (e) {
        throw new ScenarioError(source, `${field}.profile`, e instanceof BraidError ? e.message : String(e), e instanceof BraidError ? e.fix : undefined);
      }
      return { name, profile: p.name, costTier: l.costTier ?? p.costTier, bandwidthBps: l.bandwidthBps ?? p.bandwidthBps, up: p.up, down: p.down, upText: p.upText, downText: p.downText };
    }
    const n = l.netem!;
    return {
      name,
      profile: undefined,
      costTier: l.costTier ?? 'primary',
      bandwidthBps: l.bandwidthBps ?? rateOf(n.up, n.down, source, field),
      up: spec(source, `${field}.netem.up`, n.up),
      down: spec(source, `${field}.netem.down`, n.down),
      upText: n.up,
      downText: n.down,
    };
  };
  const links: ScenarioLink[] = [];
  let sites: ScenarioSite[] | undefined;
  let connections: ScenarioConnection[] | undefined;
  if (s.links) {
    s.links.forEach((l, i) => {
      const field = `links[${i}]`;
      if (links.some((x) => x.name === l.name)) throw new ScenarioError(source, `${field}.name`, `duplicate link name "${l.name}"`, 'give every link a unique name');
      links.push(linkOf(l, l.name, field));
    });
  } else {
    sites = [];
    connections = [];
    const siteList = s.sites!;
    siteList.forEach((site, i) => {
      if (sites!.some((x) => x.name === site.name)) throw new ScenarioError(source, `sites[${i}].name`, `duplicate site name "${site.name}"`, 'give every site a unique name');
      site.links.forEach((l, j) => {
        if (site.links.findIndex((x) => x.name === l.name) !== j) throw new ScenarioError(source, `sites[${i}].links[${j}].name`, `duplicate link name "${l.name}" in site ${site.name}`, 'give every link of a site a unique name');
      });
      sites!.push({ name: site.name, role: site.role ?? 'spoke', prefix: `10.${i + 1}.0.0/16`, host: [10, i + 1, 0, 2], links: [] });
    });
    siteList.forEach((site, i) => {
      site.links.forEach((l, j) => {
        const field = `sites[${i}].links[${j}]`;
        let to: { site: string; link: string } | undefined;
        if (l.to !== undefined) {
          const [toSite, toLink, extra] = l.to.split('.');
          const far = siteList.find((x) => x.name === toSite);
          if (!far || toLink === undefined || extra !== undefined) throw new ScenarioError(source, `${field}.to`, `"${l.to}" is not SITE.LINK of a site of this scenario`, `use e.g. ${siteList.find((x) => x.name !== site.name)?.name ?? 'hub'}.inet`);
          if (far.name === site.name) throw new ScenarioError(source, `${field}.to`, 'joins the site to itself', 'name a link of another site');
          if (!far.links.some((x) => x.name === toLink)) throw new ScenarioError(source, `${field}.to`, `site ${far.name} has no link "${toLink}"`, `use one of ${far.links.map((x) => `${far.name}.${x.name}`).join(', ')}`);
          if (far.links.find((x) => x.name === toLink)!.to !== undefined) throw new ScenarioError(source, `${field}.to`, `${l.to} has a to: of its own`, 'give to: on one end of a connection only');
          to = { site: far.name, link: toLink };
          const conn = linkOf(l, `${site.name}.${l.name}`, field);
          connections!.push({ ...conn, from: { site: site.name, link: l.name }, to });
        } else if (l.profile !== undefined || l.netem !== undefined) {
          throw new ScenarioError(source, field, 'has an impairment but no to:', 'add to: SITE.LINK (the link it connects to), or put the profile on the link that connects to this one');
        }
        const conn = connections!.find((c) => c.name === `${site.name}.${l.name}`);
        sites![i]!.links.push({
          name: l.name,
          costTier: l.costTier ?? conn?.costTier ?? 'primary',
          bandwidthBps: l.bandwidthBps?.up ?? conn?.bandwidthBps?.up,
          nat: l.nat ?? false,
          to,
        });
      });
    });
    for (const site of sites) {
      for (const l of site.links) {
        if (l.to === undefined && !connections.some((c) => c.to.site === site.name && c.to.link === l.name)) {
          throw new ScenarioError(source, `sites[${sites.indexOf(site)}].links[${site.links.indexOf(l)}]`, `${site.name}.${l.name} connects to nothing`, 'add to: on it, or name it in another site link\'s to:');
        }
      }
    }
    links.push(...connections);
  }
  const siteNames = sites?.map((x) => x.name);

  // Traffic
  const traffic: ScenarioTraffic[] = s.traffic.map((t, i) => {
    const field = `traffic[${i}]`;
    const classId = CLASS_NAMES.indexOf(t.class);
    const startMs = (t.startS ?? 1) * 1000;
    const stopMs = Math.min((t.stopS ?? s.durationS) * 1000, durationMs);
    if (startMs >= stopMs) throw new ScenarioError(source, `${field}.startS`, `starts at ${startMs / 1000} s, after it stops (${stopMs / 1000} s)`, 'start earlier or raise durationS/stopS');
    let from = 'a';
    let to = 'b';
    if (siteNames) {
      for (const key of ['from', 'to'] as const) {
        const v = t[key];
        if (v === undefined) throw new ScenarioError(source, `${field}.${key}`, 'missing: a scenario with sites needs both ends of its traffic', `add ${key}: one of ${siteNames.join(', ')}`);
        if (!siteNames.includes(v)) throw new ScenarioError(source, `${field}.${key}`, `no site named "${v}"`, `use one of ${siteNames.join(', ')}`);
      }
      from = t.from!;
      to = t.to!;
      if (from === to) throw new ScenarioError(source, `${field}.to`, 'is the same site as from', 'name two different sites');
    } else {
      for (const key of ['from', 'to'] as const) if (t[key] !== undefined) throw new ScenarioError(source, `${field}.${key}`, 'only for scenarios with sites', 'remove it (two-site traffic goes a -> b, direction up)');
    }
    const base = { index: i, from, to, className: t.class, classId, dscp: CLASS_DSCP[t.class], kind: t.kind, startMs, stopMs };
    const forbid = (key: keyof typeof t, why: string): void => {
      if (t[key] !== undefined) throw new ScenarioError(source, `${field}.${key}`, `not used by kind ${t.kind}`, why);
    };
    if (t.kind === 'voice') {
      forbid('flows', 'voice traffic counts calls: use calls: N');
      forbid('rateMbps', 'voice is 200 B at 50 pps per call; use kind cbr for other rates');
      return { ...base, direction: t.direction ?? 'both', flows: t.calls ?? 1, sizeBytes: t.sizeBytes ?? 200, pps: t.pps ?? 50, rateMbps: undefined };
    }
    forbid('calls', 'calls is for kind voice; use flows: N');
    if (t.kind === 'cbr') {
      forbid('rateMbps', 'cbr is set by sizeBytes and pps');
      if (t.sizeBytes === undefined) throw new ScenarioError(source, `${field}.sizeBytes`, 'missing for kind cbr', 'add sizeBytes: 1000 (inner IP packet size)');
      if (t.pps === undefined) throw new ScenarioError(source, `${field}.pps`, 'missing for kind cbr', 'add pps: 100 (packets per second per flow)');
      return { ...base, direction: t.direction ?? 'both', flows: t.flows ?? 1, sizeBytes: t.sizeBytes, pps: t.pps, rateMbps: undefined };
    }
    forbid('pps', 'bulk is set by rateMbps (the total per direction)');
    if (t.rateMbps === undefined) throw new ScenarioError(source, `${field}.rateMbps`, 'missing for kind bulk', 'add rateMbps: 4 (total per direction)');
    const flows = t.flows ?? 1;
    const sizeBytes = t.sizeBytes ?? 1400;
    const pps = (t.rateMbps * 1e6) / 8 / sizeBytes / flows;
    if (pps > SCENARIO_LIMITS.ppsPerFlow) throw new ScenarioError(source, `${field}.rateMbps`, `needs ${pps.toFixed(0)} pps per flow`, `use more flows or at most ${SCENARIO_LIMITS.ppsPerFlow} pps per flow`);
    return { ...base, direction: t.direction ?? 'up', flows, sizeBytes, pps, rateMbps: t.rateMbps };
  });

  // Timeline: resolve each step to the full spec it installs, in time order.
  const current = new Map(links.map((l) => [l.name, { up: l.up, down: l.down }]));
  const order = s.timeline.map((step, i) => ({ step, i, atMs: timeMs(source, `timeline[${i}].at`, step.at) }));
  for (const o of order) {
    if (o.atMs > durationMs) throw new ScenarioError(source, `timeline[${o.i}].at`, `${o.atMs / 1000} s is after the end of the run (${s.durationS} s)`, 'move it earlier or raise durationS');
  }
  order.sort((x, y) => x.atMs - y.atMs || x.i - y.i);
  const timeline: ScenarioStep[] = order.map(({ step, i, atMs }) => {
    const field = `timeline[${i}]`;
    // The connections the step changes; flip: the step's site is the connection's far end (its up is their down).
    let targets: { link: ScenarioLink; flip: boolean }[];
    if (sites && connections) {
      const [siteName, linkName, extra] = step.link.split('.');
      const site = sites.find((x) => x.name === siteName);
      const siteLink = site?.links.find((x) => x.name === linkName);
      if (!site || !siteLink || extra !== undefined) {
        throw new ScenarioError(source, `${field}.link`, `"${step.link}" is not SITE.LINK of this scenario`, `use one of ${sites.flatMap((x) => x.links.map((l) => `${x.name}.${l.name}`)).join(', ')}`);
      }
      targets = siteLink.to
        ? [{ link: connections.find((c) => c.name === step.link)!, flip: false }]
        : connections.filter((c) => c.to.site === site.name && c.to.link === siteLink.name).map((c) => ({ link: c, flip: true }));
    } else {
      const link = links.find((l) => l.name === step.link);
      if (!link) throw new ScenarioError(source, `${field}.link`, `no link named "${step.link}"`, `use one of ${links.map((l) => l.name).join(', ')}`);
      targets = [{ link, flip: false }];
    }
    const actions = [step.set !== undefined, step.add !== undefined, step.restore === true, step.health !== undefined].filter(Boolean).length;
    if (actions !== 1) throw new ScenarioError(source, field, 'needs exactly one of set, add, restore or health', 'e.g. set: "loss 100%", add: "delay 50ms", restore: true, or health: unreachable');
    if (step.target !== undefined && step.health === undefined) throw new ScenarioError(source, `${field}.target`, 'only for health steps', 'add health: unreachable (or reachable), or remove target');
    if (step.health !== undefined) {
      if (step.direction !== undefined) throw new ScenarioError(source, `${field}.direction`, 'not used by health steps', 'remove it (a health target is reached over the whole link)');
      const reachable = step.health === 'reachable';
      const [siteName, linkName] = sites ? step.link.split('.') : ['a', targets[0]!.link.name];
      return {
        index: i,
        atMs,
        link: sites ? step.link : targets[0]!.link.name,
        ...(sites ? { connections: targets.map(({ link, flip }) => ({ name: link.name, up: (flip ? 'ba' : 'ab') as 'ab' | 'ba', result: {} })) } : {}),
        direction: 'both',
        action: 'health',
        health: { reachable, target: step.target ?? 'isp-gateway', site: siteName!, link: linkName! },
        text: `health target ${step.target ?? 'isp-gateway'} ${step.health}`,
        result: {},
        kind: reachable ? 'restore' : 'fault',
      } satisfies ScenarioStep;
    }
    const direction = step.direction ?? 'both';
    const dirs = direction === 'both' ? (['up', 'down'] as const) : ([direction] as const);
    const action: ScenarioStep['action'] = step.restore ? 'restore' : step.set !== undefined ? 'set' : 'add';
    const text = step.set ?? step.add ?? '';
    const parsed = action === 'restore' ? undefined : spec(source, `${field}.${action}`, text);
    const results = targets.map(({ link, flip }) => {
      const cur = current.get(link.name)!;
      const out: { up?: NetemSpec; down?: NetemSpec } = {};
      for (const d of dirs) {
        const cd = flip ? (d === 'up' ? 'down' : 'up') : d;
        out[d] = action === 'restore' ? link[cd] : action === 'set' ? parsed! : mergeNetemSpecs(cur[cd], parsed!);
        cur[cd] = out[d]!;
      }
      return { name: link.name, up: (flip ? 'ba' : 'ab') as 'ab' | 'ba', result: out };
    });
    return {
      index: i,
      atMs,
      link: sites ? step.link : targets[0]!.link.name,
      ...(sites ? { connections: results } : {}),
      direction,
      action,
      text,
      result: results[0]!.result,
      kind: action === 'restore' ? 'restore' : 'fault',
    };
  });

  // Policies
  const overriddenClasses: ClassName[] = [];
  const policies: ClassPolicy[] = DEFAULT_POLICIES.map((p) => {
    const o = s.policies?.[p.name];
    if (!o) return { ...p, sla: { ...p.sla } };
    overriddenClasses.push(p.name);
    return { ...p, strategy: o.strategy ?? p.strategy, sla: { ...p.sla, ...stripUndefined(o.sla ?? {}) } };
  });

  // Expectations
  const classesWithTraffic = [...new Set(traffic.map((t) => t.className))];
  const expectations = s.expect.map((text, i) => {
    try {
      return parseExpectation(text, classesWithTraffic, siteNames);
    } catch (e) {
      if (e instanceof Error) throw new ScenarioError(source, `expect[${i}]`, e.message, (e as BraidError).fix ?? 'write CLASS.METRIC OP NUMBER, e.g. "voice.max_gap_ms < 400"');
      throw e;
    }
  });

  return { name: s.name, description: s.description, durationMs, seed: s.seed, links, sites, connections, traffic, timeline, policies, overriddenClasses, expectations, source };
}

/**
 * `add` semantics: the options written in `add` replace the same options of `base`; the rest of
 * base stays (`add: "loss 3%"` on "delay 15ms rate 20mbit" gives "delay 15ms loss 3% rate 20mbit").
 */
export function mergeNetemSpecs(base: NetemSpec, add: NetemSpec): NetemSpec {
  const out: NetemSpec = { ...base };
  if (add.delay !== undefined) out.delay = add.delay;
  if (add.loss !== undefined) out.loss = add.loss;
  if (add.duplicate !== undefined) out.duplicate = add.duplicate;
  if (add.corrupt !== undefined) out.corrupt = add.corrupt;
  if (add.reorder !== undefined) out.reorder = add.reorder;
  if (add.rate !== undefined) out.rate = add.rate;
  if (add.slot !== undefined) out.slot = add.slot;
  if (add.limitPackets !== DEFAULT_LIMIT_PACKETS) out.limitPackets = add.limitPackets;
  if (add.ecn) out.ecn = true;
  return out;
}

/** "10s" / "1500ms" / "1.5s" / "2m" / a number of seconds -> ms. */
export function timeMs(source: string, field: string, v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new ScenarioError(source, field, `expected a time of 0 or more, got ${v}`, 'write e.g. 10s or 1500ms');
    return v * 1000;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new ScenarioError(source, field, `expected a time like 10s or 1500ms, got "${v}"`, 'write e.g. 10s, 1.5s, 1500ms or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000;
}

function spec(source: string, field: string, text: string): NetemSpec {
  try {
    return parseNetemSpec(text);
  } catch (e) {
    if (e instanceof NetemSpecError) throw new ScenarioError(source, field, e.message, e.fix ?? 'write it as for `tc qdisc ... netem`, e.g. "delay 20ms 2ms loss 1%"');
    throw e;
  }
}

function rateOf(up: string, down: string, source: string, field: string): { up: number; down: number } | undefined {
  const u = spec(source, `${field}.netem.up`, up).rate?.rateBps;
  const d = spec(source, `${field}.netem.down`, down).rate?.rateBps;
  return u !== undefined && d !== undefined ? { up: u, down: d } : undefined;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = doc;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}
