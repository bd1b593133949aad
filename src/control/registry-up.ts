/**
 * `braid up` and the fleet registry (issue 12): this site's record from its config, the Registry
 * started, and each change of the sites turned into the registry's share of the peer set, handed
 * to `apply` (up.ts: Endpoint.setPeers through the driver + kernel routes, the reload's path).
 * Changes are applied one at a time, in order; a set the core refuses is one error line and the
 * previous peers stay.
 */
import { encodeKey, publicFromPrivate } from '../core/crypto/keys.ts';
import { BraidError } from '../core/errors.ts';
import type { BraidConfig } from './config.ts';
import type { PeerConfig } from './config-peers.ts';
import type { RegistryConfig } from './config-registry.ts';
import { fleetPeers, type LocalSite, type RegistryStatus, type SiteRecord } from './registry-record.ts';
import { Registry, type RegistryLog } from './registry.ts';

export interface FleetRegistry {
  /** The registry's peers next to these YAML peers (YAML wins on a name, key or prefix). */
  peersFor(yamlPeers: readonly PeerConfig[]): PeerConfig[];
  status(): RegistryStatus;
  close(): Promise<void>;
}

export interface FleetRegistryOptions {
  cfg: BraidConfig;
  registry: RegistryConfig;
  privateKey: Uint8Array;
  log: RegistryLog;
  /** The YAML peers running now (reloads change them). */
  yamlPeers(): readonly PeerConfig[];
  /** Applies the registry's peers (with the YAML's): what was added, removed, changed. */
  apply(peers: PeerConfig[]): Promise<{ added: string[]; removed: string[]; changed: string[] }>;
}

/** This site as the registry sees it (its record) and as the peer choice sees it. */
export function localSiteOf(cfg: BraidConfig, registry: RegistryConfig, privateKey: Uint8Array): { local: LocalSite; record: Omit<SiteRecord, 'name'> } {
  const publicKey = encodeKey(publicFromPrivate(privateKey));
  const links: SiteRecord['links'] = {};
  for (const l of cfg.links) {
    const e = registry.endpoints?.[l.name];
    links[l.name] = e ? { endpoint: e } : {};
  }
  return {
    local: {
      name: cfg.site,
      role: registry.role,
      mesh: registry.mesh,
      publicKey,
      linkNames: cfg.links.map((l) => l.name),
      ...(registry.persistentKeepalive ? { persistentKeepalive: registry.persistentKeepalive } : {}),
    },
    record: { role: registry.role, mesh: registry.mesh, publicKey, prefixes: [...registry.prefixes], links },
  };
}

export function startFleetRegistry(opts: FleetRegistryOptions): FleetRegistry {
  const { local, record } = localSiteOf(opts.cfg, opts.registry, opts.privateKey);
  let sites: readonly SiteRecord[] = [];
  let appliedJson = '[]';
  let skippedSeen = new Set<string>();
  let chain: Promise<void> = Promise.resolve();
  const peersFor = (yamlPeers: readonly PeerConfig[]): PeerConfig[] => fleetPeers(local, sites, yamlPeers).peers;

  const onSites = (map: ReadonlyMap<string, SiteRecord>): void => {
    sites = [...map.values()];
    chain = chain.then(async () => {
      const { peers, skipped } = fleetPeers(local, sites, opts.yamlPeers());
      const nowSkipped = new Set<string>();
      for (const s of skipped) {
        const line = `${s.name}: ${s.reason}`;
        nowSkipped.add(line);
        if (!skippedSeen.has(line)) opts.log.warn({ registry: 'skipped', peer: s.name }, `registry: site ${line}; not a peer`);
      }
      skippedSeen = nowSkipped;
      const json = JSON.stringify(peers);
      if (json === appliedJson) return;
      try {
        const r = await opts.apply(peers);
        appliedJson = json;
        registry.peers = peers.length;
        const parts = [...r.added.map((n) => `+${n}`), ...r.removed.map((n) => `-${n}`), ...r.changed.map((n) => `~${n}`)];
        opts.log.info({ registry: 'peers', added: r.added, removed: r.removed, changed: r.changed }, `registry: ${peers.length} peers from ${sites.length} sites${parts.length ? ` (${parts.join(' ')})` : ''}`);
      } catch (e) {
        const line = e instanceof BraidError ? e.oneLine() : String(e);
        opts.log.error({ registry: 'refused' }, `registry: peer set refused, keeping the previous peers: ${line}`);
      }
    });
  };

  const registry = new Registry({
    config: opts.registry,
    site: opts.cfg.site,
    ...(opts.registry.publish ? { record } : {}),
    log: opts.log,
    onSites,
  });
  registry.peers = 0;
  registry.start();
  return {
    peersFor,
    status: () => registry.status(),
    close: async () => {
      await registry.close();
      await chain;
    },
  };
}
