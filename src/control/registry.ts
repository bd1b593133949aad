/**
 * The fleet registry in etcd (issue 12), the shell's side: publish this site, list and watch the
 * others, say how reachable etcd is. The etcd3 client (gRPC) does the talking; this module turns
 * its events into a map of valid SiteRecords and calls `onSites` with it (coalesced), which
 * `braid up` turns into peers through the same path as a config reload (Endpoint.setPeers).
 *
 * Failure behaviour:
 * - etcd unreachable (at start or later): the edge keeps running on the last known sites; one
 *   warning line when it goes, one info line when it is back; `status()` says since when.
 * - start: the first listing is retried with backoff (0.5 s doubling to 10 s, jittered).
 * - the watch: etcd3 re-establishes the stream with backoff (here 0.2 s to 5 s) and resumes from
 *   the last revision it delivered; a watch that ends for good (compacted revision) is replaced by
 *   a fresh listing + watch.
 * - publishing: a lease of registry.etcd.leaseTtl seconds kept alive by etcd3; a lost lease (etcd
 *   away for more than twice the TTL) is granted again and the record put again, with backoff.
 * - a value that does not parse (garbage written by hand, a newer version): counted in
 *   `invalidValues`, one log line naming the key and the problem; that site is not a peer.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type IOptions, type Lease, type Watcher } from 'etcd3';
import { ExponentialBackoff, noop } from 'cockatiel';
import { encodeSiteRecord, parseSiteRecord, type RegistryStatus, type SiteRecord } from './registry-record.ts';
export type { RegistryStatus };
import { sitesPrefix, type RegistryConfig } from './config-registry.ts';

export interface RegistryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RegistryOptions {
  config: RegistryConfig;
  site: string;
  /** This site's record; undefined when registry.publish is false. */
  record?: Omit<SiteRecord, 'name'>;
  log: RegistryLog;
  /** Called with every valid site (coalesced over `coalesceMs`) after the listing and each change. */
  onSites(sites: ReadonlyMap<string, SiteRecord>): void;
  /** Monotonic ms (tests). */
  nowMs?: () => number;
  /** Health check period while running (default 1000 ms). */
  healthIntervalMs?: number;
  coalesceMs?: number;
}

/** etcd3 client options from the config (TLS files read here: a missing file is a setup error). */
export function etcdClientOptions(config: RegistryConfig): IOptions {
  const tls = config.etcd.tls;
  return {
    hosts: config.etcd.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`)),
    dialTimeout: 2000,
    ...(tls
      ? {
          credentials: {
            rootCertificate: readFileSync(tls.ca),
            ...(tls.key ? { privateKey: readFileSync(tls.key) } : {}),
            ...(tls.cert ? { certChain: readFileSync(tls.cert) } : {}),
          },
        }
      : {}),
    // Failures surface at once (our loops back off); the watch stream reconnects within 5 s.
    faultHandling: { host: () => noop, global: noop, watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 5000 }).next() },
  };
}

const oneLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
const CALL_DEADLINE_MS = 3000;

export class Registry {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly sites = new Map<string, SiteRecord>();
  private state: RegistryStatus['state'] = 'connecting';
  private downSinceMs: number | undefined;
  private lastError: string | undefined;
  private invalid = 0;
  private published = false;
  private closed = false;
  private watcher: Watcher | undefined;
  private lease: Lease | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private coalesceTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Last invalid reason per key: the same garbage is logged once, not at every relisting. */
  private readonly invalidSeen = new Map<string, string>();
  peers: number | undefined;

  constructor(private readonly opts: RegistryOptions) {
    this.client = new Etcd3(etcdClientOptions(opts.config));
    this.prefix = sitesPrefix(opts.config);
    this.now = opts.nowMs ?? (() => performance.now());
  }

  start(): void {
    void this.listAndWatch(0);
    if (this.opts.record) void this.publish(0);
    this.healthTimer = setInterval(() => void this.checkHealth(), this.opts.healthIntervalMs ?? 1000);
    this.healthTimer.unref();
  }

  status(): RegistryStatus {
    return {
      endpoints: [...this.opts.config.etcd.endpoints],
      prefix: this.opts.config.etcd.prefix,
      state: this.state,
      ...(this.state === 'unreachable' && this.downSinceMs !== undefined ? { unreachableForMs: Math.round(this.now() - this.downSinceMs) } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      sites: this.sites.size,
      ...(this.peers !== undefined ? { peers: this.peers } : {}),
      invalidValues: this.invalid,
      published: this.published,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    for (const t of this.timers) clearTimeout(t);
    await this.watcher?.cancel().catch(() => undefined);
    // The lease is not revoked: a site restarted within the TTL stays listed (its peers keep their
    // sessions); a site that stays down ages out when the lease expires.
    this.lease?.release();
    this.client.close();
  }

  // ---- reachability --------------------------------------------------------------------------

  private markUp(): void {
    if (this.state === 'connected') return;
    if (this.state === 'unreachable' && this.downSinceMs !== undefined) {
      this.opts.log.info({ registry: 'reachable', downMs: Math.round(this.now() - this.downSinceMs) }, `registry: etcd reachable again after ${((this.now() - this.downSinceMs) / 1000).toFixed(1)} s`);
    }
    this.state = 'connected';
    this.downSinceMs = undefined;
  }

  private markDown(e: unknown): void {
    this.lastError = oneLine(e);
    if (this.state === 'unreachable') return;
    this.state = 'unreachable';
    this.downSinceMs = this.now();
    this.opts.log.warn(
      { registry: 'unreachable', error: this.lastError },
      `registry: etcd unreachable (${this.lastError}); keeping the last known ${this.sites.size} sites, retrying with backoff`,
    );
  }

  private async checkHealth(): Promise<void> {
    if (this.closed) return;
    try {
      await this.client.maintenance.status({ deadline: Date.now() + CALL_DEADLINE_MS });
      // Reachable; "connected" once the watch is attached again (its id is null while detached).
      if (this.watcher !== undefined && this.watcher.id !== null) this.markUp();
    } catch (e) {
      if (!this.closed) this.markDown(e);
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private static backoffMs(attempt: number): number {
    const base = Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));
    return base * (0.75 + Math.random() * 0.5);
  }

  // ---- the sites -----------------------------------------------------------------------------

  /** Applies one key's value; returns whether the site set changed. */
  private apply(kv: IKeyValue): boolean {
    const key = kv.key.toString();
    const name = key.slice(this.prefix.length);
    const parsed = parseSiteRecord(name, kv.value.toString());
    if (typeof parsed === 'string') {
      this.invalid++;
      if (this.invalidSeen.get(key) !== parsed) {
        this.invalidSeen.set(key, parsed);
        this.opts.log.warn({ registry: 'invalid', key }, `registry: ${key}: ${parsed}; ignored (not a peer)`);
      }
      return this.sites.delete(name);
    }
    this.invalidSeen.delete(key);
    const before = this.sites.get(name);
    this.sites.set(name, parsed);
    return before === undefined || JSON.stringify(before) !== JSON.stringify(parsed);
  }

  private changed(): void {
    if (this.coalesceTimer) return;
    this.coalesceTimer = setTimeout(() => {
      this.coalesceTimer = undefined;
      if (!this.closed) this.opts.onSites(this.sites);
    }, this.opts.coalesceMs ?? 50);
  }

  private async listAndWatch(attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      const res = await this.client.getAll().prefix(this.prefix).options({ deadline: Date.now() + CALL_DEADLINE_MS }).exec();
      const seen = new Set<string>();
      this.sites.clear();
      for (const kv of res.kvs) {
        this.apply(kv);
        seen.add(kv.key.toString().slice(this.prefix.length));
      }
      this.changed();
      const next = (BigInt(res.header.revision) + 1n).toString();
      const w = await this.client.watch().prefix(this.prefix).startRevision(next).create();
      if (this.closed) {
        await w.cancel();
        return;
      }
      this.watcher = w;
      w.on('put', (kv) => {
        if (this.apply(kv)) this.changed();
      });
      w.on('delete', (kv) => {
        if (this.sites.delete(kv.key.toString().slice(this.prefix.length))) this.changed();
      });
      w.on('connected', () => this.markUp());
      w.on('disconnected', (err) => this.markDown(err));
      w.on('error', (err) => {
        // Cancelled by etcd (a compacted revision): list again and watch from there.
        this.markDown(err);
        if (this.watcher === w) this.watcher = undefined;
        void w.cancel().catch(() => undefined);
        this.later(Registry.backoffMs(0), () => void this.listAndWatch(0));
      });
      this.markUp();
      this.opts.log.info({ registry: 'watching', sites: this.sites.size }, `registry: ${this.sites.size} sites under ${this.prefix}, watching`);
    } catch (e) {
      this.markDown(e);
      this.later(Registry.backoffMs(attempt), () => void this.listAndWatch(attempt + 1));
    }
  }

  // ---- this site -----------------------------------------------------------------------------

  private async publish(attempt: number): Promise<void> {
    if (this.closed || !this.opts.record) return;
    const key = `${this.prefix}${this.opts.site}`;
    const lease = this.client.lease(this.opts.config.etcd.leaseTtl);
    lease.on('lost', (err) => {
      this.published = false;
      if (this.closed || this.lease !== lease) return;
      this.opts.log.warn({ registry: 'leaseLost' }, `registry: lease of ${key} lost (${oneLine(err)}); publishing again`);
      this.later(Registry.backoffMs(0), () => void this.publish(0));
    });
    try {
      await lease.put(key).value(encodeSiteRecord(this.opts.record)).exec();
      this.lease = lease;
      this.published = true;
      if (attempt > 0 || this.state === 'unreachable') this.markUp();
      this.opts.log.info({ registry: 'published', key }, `registry: published ${key} (lease ${this.opts.config.etcd.leaseTtl} s)`);
    } catch (e) {
      void lease.revoke().catch(() => undefined);
      if (this.closed) return;
      this.markDown(e);
      this.later(Registry.backoffMs(attempt), () => void this.publish(attempt + 1));
    }
  }
}

/** One-shot access for `braid fleet`: list, get, put (no lease), delete. */
export async function withEtcd<T>(config: RegistryConfig, fn: (client: Etcd3, prefix: string) => Promise<T>): Promise<T> {
  const client = new Etcd3(etcdClientOptions(config));
  try {
    return await fn(client, sitesPrefix(config));
  } finally {
    client.close();
  }
}
