/**
 * The `peers:` section for many peers (issue 11): the schema of one peer and the checks across
 * peers and links that zod cannot express locally. config.ts embeds `peersSchema` in its
 * configSchema and calls `checkPeers` from validateConfig; the errors use its format
 * (`config FILE: peers[2].prefixes[0]: problem` with `field` set, which config.ts turns into
 * FILE:LINE:COLUMN), so each one names the field and the fix.
 *
 *   peers:
 *     - name: branch-7
 *       publicKey: 3Jc1...=                  # `braid pubkey` on that site
 *       prefixes: [10.7.0.0/16, 2001:db8:7::/48]
 *       endpoints:                           # optional per local link; absent: learned from the
 *         mpls: 203.0.113.7:51820            #   peer's first authenticated packet on that path
 *         lte: "[2001:db8::1]:51820"
 *       links: [mpls, lte]                   # optional: local links that may reach it (default all)
 *       persistentKeepalive: 25              # optional, seconds; for the side behind NAT (0 = off)
 *
 * Prefixes are canonicalised (core/routing/prefix.ts: `2001:DB8:7::/48` -> `2001:db8:7::/48`) and
 * host bits are refused (`10.7.1.0/16`, as `ip route` refuses it). The same prefix on two peers is
 * an error; overlapping prefixes of different lengths are not (the longest match wins).
 */
import { z } from 'zod';
import { MAX_LINKS, MAX_PEER_PREFIXES, MAX_PEERS, MAX_ROUTE_PREFIXES } from '../core/constants.ts';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { formatAddress, parsePrefix } from '../core/routing/prefix.ts';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;

export interface PeerEndpoint {
  /** Canonical address text (IPv6 without brackets). */
  address: string;
  port: number;
  family: 4 | 6;
}

/** `203.0.113.7:51820` or `[2001:db8::1]:51820` -> PeerEndpoint; the reason when it is not one. */
export function parseEndpoint(text: string): PeerEndpoint | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) {
    return text.includes(':') && !text.includes('[')
      ? `expected "[ADDRESS]:PORT" for IPv6 (brackets around the address), got "${text}"`
      : `expected "ADDRESS:PORT" like 203.0.113.7:51820 or [2001:db8::1]:51820, got "${text}"`;
  }
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${m[3]} is not 1..65535`;
  if (m[1] !== undefined && !host.includes(':')) return `brackets are for IPv6 addresses; write ${host}:${port}`;
  if (m[2] !== undefined && !/^[\d.]+$/.test(host)) return `"${host}" is not an IP address (names are not resolved: write the address)`;
  try {
    const p = parsePrefix(host);
    return { address: formatAddress(p.bytes), port, family: p.family };
  } catch (e) {
    return `"${host}" is not an IP address${e instanceof BraidError && e.fix ? ` (${e.fix})` : ''}`;
  }
}

/** "ADDRESS:PORT" (IPv6 in brackets) to a PeerEndpoint, with parseEndpoint's message on error. */
export const endpointSchema = z.string().transform((s, ctx): PeerEndpoint => {
  const r = parseEndpoint(s);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** A prefix in canonical text; host bits set or not a prefix is an issue naming it and the fix. */
const prefixSchema = z.string().transform((s, ctx): string => {
  try {
    return parsePrefix(s).text;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof BraidError ? `${e.message}; ${e.fix ?? ''}`.replace(/; $/, '') : String(e) });
    return z.NEVER;
  }
});

const linkNameSchema = z.string().regex(NAME_RE, 'expected a link name like "mpls" (a-z, 0-9, - and _, at most 32)');

/** One peer (a remote site). */
export const peerSchema = z.strictObject({
  name: z.string().regex(NAME_RE, 'expected a short lowercase name like "branch-7" (a-z, 0-9, - and _, at most 32)'),
  /** The peer's static public key (`braid pubkey` on that site). Required unless insecurePlaintext. */
  publicKey: z.string().regex(KEY_RE, 'expected a base64 X25519 key (44 characters, as printed by `braid pubkey`)').optional(),
  /** The site's LAN prefixes: outbound routing (longest match) and the inbound source check. */
  prefixes: z.array(prefixSchema).max(MAX_PEER_PREFIXES, `at most ${MAX_PEER_PREFIXES} prefixes per peer (summarise them)`).default([]),
  /** Peer endpoint per local link name; a link without one learns it from the peer's first authenticated packet. */
  endpoints: z.record(z.string(), endpointSchema).optional(),
  /** Local links that may reach this peer (default: all). */
  links: z.array(linkNameSchema).min(1, 'list at least one link, or leave links out for all').max(MAX_LINKS).optional(),
  /** Seconds between keepalives when idle, for the side behind NAT; 0 or absent is off (WireGuard's PersistentKeepalive). */
  persistentKeepalive: z.number().int('expected whole seconds').min(0).max(65535).optional(),
});

/** The `peers:` list (empty or absent only with a `registry:` section: config.ts checks that). */
export const peersSchema = z.array(peerSchema).max(MAX_PEERS, `at most ${MAX_PEERS} peers per edge`).default([]);

export type PeerConfig = z.output<typeof peerSchema>;

export interface CheckPeersContext {
  /** The file, for messages (`config FILE: field: ...`). */
  readonly source: string;
  /** This site's link names (links[].name), in config order. */
  readonly linkNames: readonly string[];
  /** Every peer needs a publicKey (false only with insecurePlaintext). Default true. */
  readonly requirePublicKeys?: boolean;
}

function configError(source: string, field: string, problem: string, fix: string): BraidError {
  return new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: ${problem}`, { field, fix });
}

const who = (peers: readonly PeerConfig[], i: number): string => `peers[${i}] ("${peers[i]!.name}")`;

/**
 * The rules across peers and links, on schema-valid peers: unique names, keys and prefixes, link
 * names that exist, endpoints only on the peer's links, the routing table's cap. Throws the first
 * problem as BraidError CONFIG_INVALID with `field` set.
 */
export function checkPeers(peers: readonly PeerConfig[], ctx: CheckPeersContext): void {
  const { source, linkNames } = ctx;
  const links = new Set(linkNames);
  const linkList = linkNames.join(', ') || '(none)';
  const names = new Map<string, number>();
  const keys = new Map<string, number>();
  const prefixes = new Map<string, number>();
  let totalPrefixes = 0;
  peers.forEach((p, i) => {
    const dupName = names.get(p.name);
    if (dupName !== undefined) {
      throw configError(source, `peers[${i}].name`, `duplicate peer name "${p.name}" (also peers[${dupName}])`, 'give every peer a unique name');
    }
    names.set(p.name, i);

    if (p.publicKey === undefined) {
      if (ctx.requirePublicKeys !== false) {
        throw configError(source, `peers[${i}].publicKey`, 'missing (the overlay is encrypted)', "set it to the peer's `braid pubkey` output");
      }
    } else {
      const dupKey = keys.get(p.publicKey);
      if (dupKey !== undefined) {
        throw configError(
          source,
          `peers[${i}].publicKey`,
          `the same key as ${who(peers, dupKey)}`,
          'each site has its own key: run `braid pubkey` on each site and copy its own output',
        );
      }
      keys.set(p.publicKey, i);
    }

    p.prefixes.forEach((prefix, k) => {
      const owner = prefixes.get(prefix);
      if (owner === i) {
        throw configError(source, `peers[${i}].prefixes[${k}]`, `${prefix} is listed twice`, 'remove the second one');
      }
      if (owner !== undefined) {
        throw configError(
          source,
          `peers[${i}].prefixes[${k}]`,
          `${prefix} is also a prefix of ${who(peers, owner)}`,
          'keep it on one peer (a more specific prefix may go to the other: the longest match wins)',
        );
      }
      prefixes.set(prefix, i);
    });
    totalPrefixes += p.prefixes.length;
    if (totalPrefixes > MAX_ROUTE_PREFIXES) {
      throw configError(source, `peers[${i}].prefixes`, `more than ${MAX_ROUTE_PREFIXES} prefixes across all peers`, 'summarise prefixes (one /16 instead of many /24s) or serve fewer peers from this edge');
    }

    const seenLinks = new Set<string>();
    (p.links ?? []).forEach((l, k) => {
      if (!links.has(l)) throw configError(source, `peers[${i}].links[${k}]`, `no link named "${l}"`, `use one of the link names: ${linkList}`);
      if (seenLinks.has(l)) throw configError(source, `peers[${i}].links[${k}]`, `link "${l}" is listed twice`, 'remove the second one');
      seenLinks.add(l);
    });
    for (const l of Object.keys(p.endpoints ?? {})) {
      if (!links.has(l)) throw configError(source, `peers[${i}].endpoints.${l}`, `no link named "${l}"`, `use one of the link names: ${linkList}`);
      if (p.links !== undefined && !seenLinks.has(l)) {
        throw configError(
          source,
          `peers[${i}].endpoints.${l}`,
          `link "${l}" is not in peers[${i}].links (${p.links.join(', ')})`,
          `add ${l} to peers[${i}].links, or remove this endpoint`,
        );
      }
    }
  });
}

/** The links that may reach `peer`, in the site's link order (its `links`, or all of them). */
export function peerLinks(peer: PeerConfig, linkNames: readonly string[]): string[] {
  return peer.links === undefined ? [...linkNames] : linkNames.filter((l) => peer.links!.includes(l));
}

/**
 * Schema plus cross-checks for a `peers:` value alone (tests, and a reload that only changes
 * peers): the first problem as BraidError CONFIG_INVALID, `config FILE: peers[1].field: problem`.
 * In the full config, configSchema's own error path reports schema problems instead.
 */
export function validatePeers(raw: unknown, ctx: CheckPeersContext): PeerConfig[] {
  const res = peersSchema.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    let field = 'peers';
    for (const p of issue.path) field += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
    if (issue.code === 'unrecognized_keys') {
      throw configError(ctx.source, `${field}.${issue.keys[0]}`, `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`, `remove or rename ${issue.keys.join(', ')} (a peer has name, publicKey, prefixes, endpoints, links, persistentKeepalive)`);
    }
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    throw configError(ctx.source, field, missing ? `missing (${issue.message.replace(/^Invalid input: /, '')})` : issue.message, missing ? `add ${field}` : `correct ${field} in ${ctx.source}`);
  }
  checkPeers(res.data, ctx);
  return res.data;
}
