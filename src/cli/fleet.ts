/**
 * `braid fleet list|show|add|remove` (issue 12): the operator's view of the fleet registry in etcd.
 * Which etcd: the `registry:` section of `-c FILE`, or `--etcd URL[,URL] [--key-prefix /braid/]`.
 *
 *   braid fleet list -c /etc/braid/braid.yaml [--json]
 *   braid fleet show branch-7 -c ...
 *   braid fleet add branch-7 --role spoke --key PUB --prefix 10.7.0.0/16 --link mpls=203.0.113.7:51900,lte -c ...
 *   braid fleet remove branch-7 -c ...
 *
 * `add` writes a static record (no lease: it stays until removed), for a site that an operator
 * registers instead of the site itself (its config says `registry.publish: false`). A site that
 * publishes itself puts its record again when it restarts or loses its lease: `remove` takes it
 * out of the fleet until then (stop it, or remove its registry: section, to keep it out).
 */
import { BraidError, ErrorCode } from '../core/errors.ts';
import { decodeKey } from '../core/crypto/keys.ts';
import { parseEndpoint, type PeerEndpoint } from '../control/config-peers.ts';
import { ETCD_ENDPOINT_RE, isSiteName, registrySchema, type RegistryConfig } from '../control/config-registry.ts';
import { encodeSiteRecord, parseSiteRecord, type SiteRecord } from '../control/registry-record.ts';
import { parsePrefix } from '../core/routing/prefix.ts';
import type { Output } from './status.ts';

type Values = Record<string, string | boolean | undefined>;

const usage = (msg: string, fix: string): BraidError => new BraidError(ErrorCode.USAGE, msg, { fix });

async function registryOf(v: Values): Promise<RegistryConfig> {
  if (typeof v.etcd === 'string' && v.etcd !== '') {
    const endpoints = v.etcd.split(',').map((s) => s.trim());
    for (const e of endpoints) if (!ETCD_ENDPOINT_RE.test(e)) throw usage(`--etcd ${e}: expected an etcd client URL like http://10.9.0.5:2379`, 'pass --etcd http://HOST:2379 (comma-separated for several)');
    const prefix = typeof v['key-prefix'] === 'string' ? v['key-prefix'] : '/braid/';
    const r = registrySchema.safeParse({ etcd: { endpoints, prefix } });
    if (!r.success) throw usage(`--key-prefix ${prefix}: ${r.error.issues[0]!.message}`, 'e.g. --key-prefix /braid/');
    return r.data;
  }
  if (typeof v.config === 'string' && v.config !== '') {
    const { loadConfig } = await import('../control/config.ts');
    const cfg = loadConfig(v.config);
    if (!cfg.registry) throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${v.config}: registry: missing (no etcd to ask)`, { field: 'registry', fix: 'add a registry: section, or pass --etcd URL' });
    return cfg.registry;
  }
  throw usage('fleet: which etcd? pass -c FILE (its registry: section) or --etcd URL', 'e.g. braid fleet list -c /etc/braid/braid.yaml');
}

async function etcdCall<T>(reg: RegistryConfig, fn: Parameters<typeof import('../control/registry.ts').withEtcd<T>>[1]): Promise<T> {
  const { withEtcd } = await import('../control/registry.ts');
  try {
    return await withEtcd(reg, fn);
  } catch (e) {
    if (e instanceof BraidError) throw e;
    throw new BraidError(ErrorCode.REGISTRY_UNAVAILABLE, `etcd ${reg.etcd.endpoints.join(',')}: ${(e as Error).message.split('\n')[0]}`, {
      fix: 'check that etcd runs and registry.etcd.endpoints (or --etcd) points at it',
      cause: e,
    });
  }
}

interface Listed {
  name: string;
  key: string;
  record?: SiteRecord;
  invalid?: string;
  /** Seconds left on its lease; undefined: static (no lease). */
  leaseTtlS?: number;
}

async function listSites(reg: RegistryConfig): Promise<Listed[]> {
  return etcdCall(reg, async (client, prefix) => {
    const deadline = Date.now() + 5000;
    const res = await client.getAll().prefix(prefix).options({ deadline }).exec();
    const out: Listed[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const name = key.slice(prefix.length);
      const parsed = parseSiteRecord(name, kv.value.toString());
      const item: Listed = { name, key, ...(typeof parsed === 'string' ? { invalid: parsed } : { record: parsed }) };
      if (kv.lease !== '0') {
        const ttl = await client.leaseClient.leaseTimeToLive({ ID: kv.lease }, { deadline }).catch(() => undefined);
        if (ttl) item.leaseTtlS = Number(ttl.TTL);
      }
      out.push(item);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
}

const endpointText = (e: PeerEndpoint): string => (e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
const linksText = (r: SiteRecord): string => Object.entries(r.links).map(([l, v]) => (v.endpoint ? `${l}=${endpointText(v.endpoint)}` : `${l}(learned)`)).join(' ');

function row(s: Listed): string[] {
  if (!s.record) return [s.name, 'INVALID', '-', '-', s.invalid ?? '', ''];
  const r = s.record;
  return [s.name, `${r.role}${r.mesh ? '+mesh' : ''}`, `${r.publicKey.slice(0, 8)}...`, r.prefixes.join(',') || '-', linksText(r), s.leaseTtlS === undefined ? 'static' : `lease ${s.leaseTtlS}s`];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function recordJson(s: Listed): object {
  if (!s.record) return { name: s.name, key: s.key, invalid: s.invalid };
  const r = s.record;
  return {
    name: r.name,
    key: s.key,
    role: r.role,
    mesh: r.mesh,
    publicKey: r.publicKey,
    prefixes: r.prefixes,
    links: Object.fromEntries(Object.entries(r.links).map(([l, v]) => [l, v.endpoint ? { endpoint: endpointText(v.endpoint) } : {}])),
    ...(s.leaseTtlS === undefined ? { static: true } : { leaseTtlS: s.leaseTtlS }),
  };
}

function siteName(positionals: string[], verb: string): string {
  const name = positionals[1];
  if (!name) throw usage(`fleet ${verb}: missing the site name`, `braid fleet ${verb} NAME -c FILE`);
  if (!isSiteName(name)) throw usage(`fleet ${verb} ${name}: not a site name (a-z, 0-9, - and _, at most 32)`, 'use the site: name of that site');
  return name;
}

/** `--link mpls=203.0.113.7:51900,lte` -> links with optional endpoints. */
function parseLinks(text: string): SiteRecord['links'] {
  const links: SiteRecord['links'] = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name)) throw usage(`--link ${part}: "${name}" is not a link name`, 'e.g. --link mpls=203.0.113.7:51900,lte');
    if (eq < 0) {
      links[name] = {};
      continue;
    }
    const e = parseEndpoint(part.slice(eq + 1));
    if (typeof e === 'string') throw usage(`--link ${part}: ${e}`, 'e.g. --link mpls=203.0.113.7:51900');
    links[name] = { endpoint: e };
  }
  if (Object.keys(links).length === 0) throw usage('fleet add: --link is missing', 'name the links the site has, e.g. --link mpls=203.0.113.7:51900,lte');
  return links;
}

export async function runFleet(v: Values, positionals: string[], stdout: Output = process.stdout): Promise<number> {
  const verb = positionals[0];
  switch (verb) {
    case 'list': {
      const sites = await listSites(await registryOf(v));
      if (v.json === true) {
        stdout.write(JSON.stringify({ sites: sites.map(recordJson) }, null, 2) + '\n');
        return 0;
      }
      if (sites.length === 0) {
        stdout.write('no sites registered\n');
        return 0;
      }
      stdout.write(table([['NAME', 'ROLE', 'KEY', 'PREFIXES', 'LINKS', 'LISTED'], ...sites.map(row)]));
      const bad = sites.filter((s) => !s.record).length;
      stdout.write(`${sites.length} sites${bad ? `, ${bad} invalid (braid up ignores them: fix or remove them)` : ''}\n`);
      return 0;
    }
    case 'show': {
      const name = siteName(positionals, 'show');
      const s = (await listSites(await registryOf(v))).find((x) => x.name === name);
      if (!s) throw new BraidError(ErrorCode.USAGE, `fleet show ${name}: no such site in the registry`, { fix: 'braid fleet list shows the registered sites' });
      stdout.write(JSON.stringify(recordJson(s), null, 2) + '\n');
      return 0;
    }
    case 'add': {
      const name = siteName(positionals, 'add');
      const role = v.role ?? 'spoke';
      if (role !== 'hub' && role !== 'spoke') throw usage(`--role ${String(role)}: expected hub or spoke`, '--role spoke');
      const key = typeof v.key === 'string' ? v.key : '';
      if (!decodeKey(key)) throw usage(`--key ${key || '(missing)'}: not an X25519 public key`, "pass the site's `braid pubkey` output");
      const prefixes: string[] = [];
      for (const p of typeof v.prefix === 'string' ? v.prefix.split(',').map((s) => s.trim()).filter(Boolean) : []) {
        try {
          prefixes.push(parsePrefix(p).text);
        } catch (e) {
          throw usage(`--prefix ${p}: ${(e as Error).message}`, 'e.g. --prefix 10.7.0.0/16');
        }
      }
      const links = parseLinks(typeof v.link === 'string' ? v.link : '');
      const reg = await registryOf(v);
      const value = encodeSiteRecord({ role, mesh: v.mesh === true, publicKey: key, prefixes, links });
      await etcdCall(reg, (client, prefix) => client.put(`${prefix}${name}`).value(value).options({ deadline: Date.now() + 5000 }).exec());
      stdout.write(`${reg.etcd.prefix}sites/${name}: ${role}, ${prefixes.join(',') || 'no prefixes'}, links ${Object.keys(links).join(',')} (static: no lease)\n`);
      return 0;
    }
    case 'remove': {
      const name = siteName(positionals, 'remove');
      const reg = await registryOf(v);
      const res = await etcdCall(reg, (client, prefix) => client.delete().key(`${prefix}${name}`).options({ deadline: Date.now() + 5000 }).exec());
      if (Number(res.deleted) === 0) throw new BraidError(ErrorCode.USAGE, `fleet remove ${name}: no such site in the registry`, { fix: 'braid fleet list shows the registered sites' });
      stdout.write(`${reg.etcd.prefix}sites/${name} removed (a site that publishes itself comes back when it restarts)\n`);
      return 0;
    }
    default:
      throw usage(`fleet: ${verb === undefined ? 'missing the verb' : `unknown verb "${verb}"`}`, 'braid fleet list|show NAME|add NAME ...|remove NAME (-c FILE or --etcd URL)');
  }
}
