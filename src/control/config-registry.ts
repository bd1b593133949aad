/**
 * The optional `registry:` section (issue 12): the fleet's sites in etcd. Without it everything
 * works from the YAML `peers:` as before; with it, this site publishes its public facts under
 * `PREFIX/sites/SITE` (a lease, so that a dead site ages out) and watches `PREFIX/sites/` for the
 * others, which become peers through the same path as a config reload (src/control/registry.ts).
 *
 *   registry:
 *     etcd:
 *       endpoints: [http://10.9.0.5:2379, http://10.9.0.6:2379]
 *       prefix: /braid/                   # keys PREFIX/sites/NAME (default /braid/)
 *       tls: { ca: /etc/braid/etcd-ca.pem, cert: /etc/braid/etcd.pem, key: /etc/braid/etcd.key }   # optional
 *       leaseTtl: 15                      # seconds a dead site stays listed (default 15)
 *     role: spoke                         # hub or spoke (default spoke): a spoke peers with the hubs, a hub with every site
 *     mesh: false                         # spokes that both say mesh: true also peer directly
 *     prefixes: [10.1.0.0/16]             # this site's LAN prefixes, as the others route them
 *     endpoints: { mpls: 203.0.113.7:51900 }   # this site's public endpoint per link; absent: learned (behind NAT)
 *     persistentKeepalive: 25             # seconds, on every peer from the registry (a site behind NAT)
 *     publish: true                       # false: an operator registers this site (`braid fleet add`)
 *
 * What is published: name, role, mesh, public key (derived from privateKeyFile: the private key
 * never leaves the box), prefixes and every link name with its endpoint when given. A peer joins
 * on the links both sites name alike (link names are the fleet's carrier names: mpls, inet, lte).
 */
import { z } from 'zod';
import { MAX_PEER_PREFIXES } from '../core/constants.ts';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { parsePrefix } from '../core/routing/prefix.ts';
import { endpointSchema } from './config-peers.ts';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** `http://HOST:PORT`, `https://HOST:PORT` or `HOST:PORT` (http). */
export const ETCD_ENDPOINT_RE = /^(https?:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

const prefixSchema = z.string().transform((s, ctx): string => {
  try {
    return parsePrefix(s).text;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof BraidError ? `${e.message}; ${e.fix ?? ''}`.replace(/; $/, '') : String(e) });
    return z.NEVER;
  }
});

export const registrySchema = z.strictObject({
  etcd: z.strictObject({
    endpoints: z
      .array(z.string().regex(ETCD_ENDPOINT_RE, 'expected an etcd client URL like http://10.9.0.5:2379 (or https:// with tls)'))
      .min(1, 'list at least one etcd endpoint, like http://10.9.0.5:2379')
      .max(16, 'at most 16 etcd endpoints'),
    prefix: z
      .string()
      .regex(/^\/(?:[A-Za-z0-9._-]+\/)*$/, 'expected a key prefix that starts and ends with "/", like "/braid/"')
      .default('/braid/'),
    tls: z
      .strictObject({
        /** CA certificate (PEM) that signed the etcd servers' certificates. */
        ca: z.string().min(1),
        /** Client certificate and key (PEM), when etcd requires client certificates. */
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .optional(),
    leaseTtl: z.number().int('expected whole seconds').min(5).max(3600).default(15),
  }),
  role: z.enum(['hub', 'spoke']).default('spoke'),
  mesh: z.boolean().default(false),
  prefixes: z.array(prefixSchema).max(MAX_PEER_PREFIXES, `at most ${MAX_PEER_PREFIXES} prefixes (summarise them)`).default([]),
  endpoints: z.record(z.string(), endpointSchema).optional(),
  persistentKeepalive: z.number().int('expected whole seconds').min(0).max(65535).optional(),
  publish: z.boolean().default(true),
});

export type RegistryConfig = z.output<typeof registrySchema>;

/**
 * The checks across fields and against the links: endpoints only on links this site has, TLS
 * cert and key together, https endpoints with TLS (and not without), keys (not insecurePlaintext). Throws CONFIG_INVALID in the
 * config's format (`config FILE: registry.endpoints.lte: problem`).
 */
export function checkRegistry(reg: RegistryConfig, source: string, linkNames: readonly string[], encrypted = true): void {
  const err = (field: string, problem: string, fix: string): BraidError => new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: ${problem}`, { field, fix });
  if (!encrypted) throw err('registry', 'needs the public keys of the sites, and insecurePlaintext has none', 'remove insecurePlaintext (and set privateKeyFile), or list the peers in the YAML');
  for (const l of Object.keys(reg.endpoints ?? {})) {
    if (!linkNames.includes(l)) throw err(`registry.endpoints.${l}`, `no link named "${l}"`, `use one of the link names: ${linkNames.join(', ')}`);
  }
  const tls = reg.etcd.tls;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    throw err(`registry.etcd.tls.${tls.cert === undefined ? 'cert' : 'key'}`, 'missing (a client certificate needs its key, and the key its certificate)', 'give both cert and key, or neither');
  }
  reg.etcd.endpoints.forEach((e, i) => {
    const https = e.startsWith('https://');
    if (https && !tls) throw err(`registry.etcd.endpoints[${i}]`, `${e} is https but registry.etcd.tls is not set`, 'add registry.etcd.tls.ca (the CA of the etcd servers), or use http://');
    if (!https && tls) throw err(`registry.etcd.endpoints[${i}]`, `${e} is not https but registry.etcd.tls is set`, `write https://${e.replace(/^http:\/\//, '')}`);
  });
}

/** The key prefix under which sites publish: `PREFIX/sites/`. */
export function sitesPrefix(reg: Pick<RegistryConfig, 'etcd'>): string {
  return `${reg.etcd.prefix}sites/`;
}

export function isSiteName(s: string): boolean {
  return NAME_RE.test(s);
}
