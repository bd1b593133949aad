/**
 * The fleet registry's values and what an edge makes of them (issue 12). Pure: no etcd here
 * (src/control/registry.ts talks to etcd), so the parsing and the peer choice are unit-tested.
 *
 * Key `PREFIX/sites/NAME`, value JSON (version 1):
 *
 *   {"version":1,"role":"spoke","mesh":false,"publicKey":"3Jc1...=",
 *    "prefixes":["10.1.0.0/16"],"links":{"mpls":{"endpoint":"203.0.113.7:51900"},"lte":{}}}
 *
 * Unknown fields are ignored (a newer site may publish more); anything else wrong makes the value
 * invalid: `parseSiteRecord` returns one line naming the field, the watcher counts and logs it and
 * keeps the site's previous value (if any) out of the peer set.
 */
import { z } from 'zod';
import { MAX_LINKS, MAX_PEER_PREFIXES } from '../core/constants.ts';
import { BraidError } from '../core/errors.ts';
import { parsePrefix, type IpPrefix } from '../core/routing/prefix.ts';
import { parseEndpoint, type PeerConfig, type PeerEndpoint } from './config-peers.ts';
import { isSiteName } from './config-registry.ts';

export const SITE_RECORD_VERSION = 1;
/** Values longer than this are refused unparsed (a site record is a few hundred bytes). */
export const MAX_SITE_RECORD_BYTES = 16 * 1024;

const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;
const LINK_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const recordSchema = z.object({
  version: z.literal(SITE_RECORD_VERSION, `expected 1 (this braid reads version ${SITE_RECORD_VERSION})`),
  role: z.enum(['hub', 'spoke']),
  mesh: z.boolean().default(false),
  publicKey: z.string().regex(KEY_RE, 'expected a base64 X25519 public key (44 characters)'),
  prefixes: z
    .array(
      z.string().transform((s, ctx) => {
        try {
          return parsePrefix(s).text;
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: e instanceof BraidError ? e.message : String(e) });
          return z.NEVER;
        }
      }),
    )
    .max(MAX_PEER_PREFIXES),
  links: z
    .record(
      z.string().regex(LINK_RE, 'expected a link name (a-z, 0-9, - and _)'),
      z.object({
        endpoint: z
          .string()
          .transform((s, ctx) => {
            const r = parseEndpoint(s);
            if (typeof r === 'string') {
              ctx.addIssue({ code: 'custom', message: r });
              return z.NEVER;
            }
            return r;
          })
          .optional(),
      }),
    )
    .refine((l) => Object.keys(l).length >= 1 && Object.keys(l).length <= MAX_LINKS, `expected 1 to ${MAX_LINKS} links`),
});

/** One site as the registry lists it. */
export interface SiteRecord {
  name: string;
  role: 'hub' | 'spoke';
  mesh: boolean;
  publicKey: string;
  prefixes: string[];
  /** Link name -> public endpoint (absent: behind NAT, learned from its packets). */
  links: Record<string, { endpoint?: PeerEndpoint }>;
}

function fieldOf(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || 'value';
}

/** A registry value -> SiteRecord, or one line saying what is wrong (field: problem). */
export function parseSiteRecord(name: string, value: string): SiteRecord | string {
  if (!isSiteName(name)) return `"${name.slice(0, 40)}" is not a site name (a-z, 0-9, - and _, at most 32)`;
  if (value.length > MAX_SITE_RECORD_BYTES) return `value of ${value.length} bytes (at most ${MAX_SITE_RECORD_BYTES})`;
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return `not JSON (starts ${JSON.stringify(value.slice(0, 24))})`;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'expected a JSON object';
  const res = recordSchema.safeParse(doc);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    // zod reports a bad record key as "Invalid key in record" with the reason nested.
    const message = issue.code === 'invalid_key' ? 'expected a link name (a-z, 0-9, - and _, at most 32)' : issue.message.replace(/^Invalid input: /, '');
    return `${fieldOf(issue.path)}: ${message}`;
  }
  const r = res.data;
  const links: SiteRecord['links'] = {};
  for (const [l, v] of Object.entries(r.links)) links[l] = v.endpoint ? { endpoint: v.endpoint } : {};
  return { name, role: r.role, mesh: r.mesh, publicKey: r.publicKey, prefixes: r.prefixes, links };
}

function endpointText(e: PeerEndpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** The JSON value a site publishes (or `braid fleet add` writes). */
export function encodeSiteRecord(r: Omit<SiteRecord, 'name'>): string {
  const links: Record<string, { endpoint?: string }> = {};
  for (const [l, v] of Object.entries(r.links)) links[l] = v.endpoint ? { endpoint: endpointText(v.endpoint) } : {};
  return JSON.stringify({ version: SITE_RECORD_VERSION, role: r.role, mesh: r.mesh, publicKey: r.publicKey, prefixes: r.prefixes, links });
}

/** This site as the fleet computation sees it. */
export interface LocalSite {
  name: string;
  role: 'hub' | 'spoke';
  mesh: boolean;
  /** Base64 public key (a registry site with it is this site under another name: skipped). */
  publicKey?: string;
  /** The local link names, in config order. */
  linkNames: readonly string[];
  /** Seconds, on every registry peer (behind NAT). */
  persistentKeepalive?: number;
}

export interface FleetPeers {
  /** The peers from the registry, in name order, in the YAML peers' format. */
  peers: PeerConfig[];
  /** Sites not made peers, each with one line why (no common link, a key or prefix already taken). */
  skipped: { name: string; reason: string }[];
}

function covers(outer: IpPrefix, inner: IpPrefix): boolean {
  if (outer.family !== inner.family || outer.lengthBits > inner.lengthBits) return false;
  for (let bit = 0; bit < outer.lengthBits; bit++) {
    const i = bit >> 3;
    const m = 0x80 >> (bit & 7);
    if ((outer.bytes[i]! & m) !== (inner.bytes[i]! & m)) return false;
  }
  return true;
}

/**
 * Which registry sites this site peers with, and how: a hub peers with every site; a spoke with
 * the hubs, and with the spokes that share `mesh: true` with it. A peer joins on the links both
 * sites name alike; its endpoints are its published ones on those links. Without mesh, a spoke
 * routes the other spokes' prefixes to the first hub (by name), unless a hub prefix covers them
 * already (a hub publishing 10.0.0.0/8 keeps every spoke's route table short). YAML peers win: a
 * registry site of the same name, key or prefix is skipped with the reason.
 */
export function fleetPeers(local: LocalSite, sites: Iterable<SiteRecord>, yamlPeers: readonly PeerConfig[] = []): FleetPeers {
  const skipped: FleetPeers['skipped'] = [];
  const names = new Set(yamlPeers.map((p) => p.name));
  const keys = new Set(yamlPeers.flatMap((p) => (p.publicKey ? [p.publicKey] : [])));
  if (local.publicKey) keys.add(local.publicKey);
  const taken = new Set(yamlPeers.flatMap((p) => p.prefixes));
  const sorted = [...sites].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const peers: PeerConfig[] = [];
  const notPeers: SiteRecord[] = [];
  for (const s of sorted) {
    if (s.name === local.name) continue;
    const wanted = local.role === 'hub' || s.role === 'hub' || (local.mesh && s.mesh);
    if (!wanted) {
      notPeers.push(s);
      continue;
    }
    if (names.has(s.name)) {
      skipped.push({ name: s.name, reason: 'a peer of that name is in the YAML peers (they win)' });
      continue;
    }
    if (keys.has(s.publicKey)) {
      skipped.push({ name: s.name, reason: s.publicKey === local.publicKey ? "this site's own public key" : 'the public key of another peer' });
      continue;
    }
    const links = local.linkNames.filter((l) => s.links[l] !== undefined);
    if (links.length === 0) {
      skipped.push({ name: s.name, reason: `no link in common (it has ${Object.keys(s.links).join(', ')}; this site ${local.linkNames.join(', ')})` });
      continue;
    }
    const dup = s.prefixes.find((p) => taken.has(p));
    if (dup !== undefined) {
      skipped.push({ name: s.name, reason: `prefix ${dup} is already another peer's` });
      continue;
    }
    const endpoints: Record<string, PeerEndpoint> = {};
    for (const l of links) {
      const e = s.links[l]!.endpoint;
      if (e) endpoints[l] = e;
    }
    for (const p of s.prefixes) taken.add(p);
    names.add(s.name);
    keys.add(s.publicKey);
    peers.push({
      name: s.name,
      publicKey: s.publicKey,
      prefixes: [...s.prefixes],
      ...(Object.keys(endpoints).length ? { endpoints } : {}),
      links,
      ...(local.persistentKeepalive ? { persistentKeepalive: local.persistentKeepalive } : {}),
    });
  }
  // A spoke reaches the spokes it does not peer with through a hub.
  const hubs = peers.filter((p) => sorted.find((s) => s.name === p.name)?.role === 'hub');
  const via = hubs[0];
  if (local.role === 'spoke' && via && notPeers.length > 0) {
    const hubPrefixes = hubs.flatMap((h) => h.prefixes.map((p) => parsePrefix(p)));
    for (const s of notPeers) {
      for (const text of s.prefixes) {
        const p = parsePrefix(text);
        if (taken.has(text) || hubPrefixes.some((h) => covers(h, p))) continue;
        if (via.prefixes.length >= MAX_PEER_PREFIXES) {
          skipped.push({ name: s.name, reason: `prefix ${text} not routed via ${via.name}: ${MAX_PEER_PREFIXES} prefixes already (publish a summary prefix on the hub)` });
          continue;
        }
        via.prefixes.push(text);
        taken.add(text);
      }
    }
  }
  return { peers, skipped };
}

/** What `braid status` shows of the registry (EdgeSnapshot.registry). */
export interface RegistryStatus {
  endpoints: string[];
  prefix: string;
  /** connecting: no answer yet; connected: listing and watch work; unreachable: the last call or the watch failed. */
  state: 'connecting' | 'connected' | 'unreachable';
  /** How long etcd has been unreachable (present only when it is). */
  unreachableForMs?: number;
  /** The last error from etcd, one line. */
  lastError?: string;
  /** Valid sites listed (this site included when it publishes). */
  sites: number;
  /** Peers the registry gives this edge (set by braid up). */
  peers?: number;
  /** Values under the prefix that did not parse, since the start. */
  invalidValues: number;
  /** This site's record is in etcd under its lease. */
  published: boolean;
}
