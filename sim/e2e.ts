/**
 * Real-time two-site harness (root): the namespace topology plus a real `braid up` process in
 * each site namespace, with real TUN devices. Used by the end-to-end tests and the overlay
 * benchmark. Everything is torn down by stop(), also after failures.
 *
 *   const h = await startTwoSites({ tag: 'e2e' });
 *   try { await h.topo.execIn('a', ['ping', '-c', '3', h.b.tunAddress]) } finally { await h.stop() }
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { stringify } from 'yaml';
import { createTopology, type Topology } from './netns.ts';
import type { EdgeSnapshot } from '../src/core/types.ts';

const BRAID_BIN = fileURLToPath(new URL('../bin/braid.js', import.meta.url));

export interface RunningSite {
  name: 'a' | 'b';
  tunAddress: string;
  /** The TUN's IPv6 address (fd99::1 or ::2) when started with innerIpv6. */
  tunAddress6?: string;
  configPath: string;
  controlSocket: string;
  proc: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
}

export interface TwoSites {
  topo: Topology;
  a: RunningSite;
  b: RunningSite;
  status(site: 'a' | 'b'): Promise<EdgeSnapshot>;
  control(site: 'a' | 'b', request: object): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface TwoSitesOptions {
  tag: string;
  links?: string[];
  logLevel?: string;
  mtu?: number;
  /** IPv6-only underlay: the links have IPv6 addresses only, bound and reached over IPv6 (createTopology family 6). */
  underlayIpv6?: boolean;
  /**
   * Dual-stack underlay: the links have both families, every link is bound to '::' (one socket for
   * both), site a reaches b over IPv6 and site b reaches a over IPv4 (createTopology family 'dual').
   */
  underlayDual?: boolean;
  /** Give each TUN an IPv6 address too (fd99::1/64, fd99::2/64) for IPv6 inner traffic. */
  innerIpv6?: boolean;
  /** Links in the backup cost tier (default: every link primary). */
  backupLinks?: string[];
  /** Extra settings merged into both site configs. */
  extraConfig?: Record<string, unknown>;
  /** Extra settings merged into every link of both sites (e.g. `{ bandwidthUp: '95mbit' }`). */
  linkConfig?: Record<string, unknown>;
  /** Extra settings merged into both sites' `tun` section (e.g. `{ txQueueLen: 1000 }`). */
  tunConfig?: Record<string, unknown>;
  /**
   * Extra node arguments per site, placed before the braid script (e.g. the overlay benchmark's
   * `['--cpu-prof', '--cpu-prof-dir', DIR]`; node writes the profile when `braid up` exits on SIGTERM).
   */
  nodeArgs?: Partial<Record<'a' | 'b', string[]>>;
  /** Extra environment variables per site for the braid process. */
  env?: Partial<Record<'a' | 'b', Record<string, string>>>;
  /**
   * Run in this existing topology instead of creating one (its link count must match `links`,
   * which defaults to its link names). stop() then leaves it alone: its creator destroys it.
   */
  topo?: Topology;
  /** How long stop() waits for each braid process to exit after SIGTERM before SIGKILL (default 3000). */
  stopTimeoutMs?: number;
  /** How long each site gets to come up with every link measured (default 15000). */
  startTimeoutMs?: number;
}

export function controlRequest(socketPath: string, request: object, timeoutMs = 3000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`control ${socketPath}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(request) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (e) {
          reject(e as Error);
        }
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An X25519 key pair in `wg`'s text form (base64 of the 32 raw bytes), as `braid keygen` / `braid pubkey` print. */
function x25519KeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = privateKey.export({ format: 'jwk' }).d;
  const x = publicKey.export({ format: 'jwk' }).x;
  if (!d || !x) throw new Error('x25519 key export returned no key material');
  return { privateKey: Buffer.from(d, 'base64url').toString('base64'), publicKey: Buffer.from(x, 'base64url').toString('base64') };
}

export async function startTwoSites(opts: TwoSitesOptions): Promise<TwoSites> {
  const links = opts.links ?? opts.topo?.a.links.map((l) => l.name) ?? ['mpls', 'inet', 'lte'];
  if (opts.topo && opts.topo.a.links.length !== links.length) {
    throw new Error(`startTwoSites: the given topology has ${opts.topo.a.links.length} links, links has ${links.length}`);
  }
  const ownTopo = opts.topo === undefined;
  const topo = opts.topo ?? (await createTopology({ tag: opts.tag, links, ...(opts.underlayIpv6 ? { family: 6 as const } : opts.underlayDual ? { family: 'dual' as const } : {}) }));
  const stopTimeoutMs = opts.stopTimeoutMs ?? 3000;
  const dir = mkdtempSync(join(tmpdir(), `braid-${opts.tag}-`));
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    const exited = (p: ChildProcess): boolean => p.exitCode !== null || p.signalCode !== null;
    for (const p of procs) if (!exited(p)) p.kill('SIGTERM');
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (exited(p)) return r();
            const t = setTimeout(() => {
              p.kill('SIGKILL');
              r();
            }, stopTimeoutMs);
            p.once('exit', () => {
              clearTimeout(t);
              r();
            });
          }),
      ),
    );
    if (ownTopo) await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Each site gets its own key and the other's public key (the overlay is encrypted).
    const keys = { a: x25519KeyPair(), b: x25519KeyPair() };
    const mk = (site: 'a' | 'b'): RunningSite => {
      const me = site === 'a' ? topo.a : topo.b;
      const peer = site === 'a' ? topo.b : topo.a;
      const tunAddress = site === 'a' ? '10.99.0.1' : '10.99.0.2';
      const tunAddress6 = opts.innerIpv6 ? (site === 'a' ? 'fd99::1' : 'fd99::2') : undefined;
      const hostPort = (address: string): string => (address.includes(':') ? `[${address}]:51900` : `${address}:51900`);
      const controlSocket = join(dir, `${site}.sock`);
      const privateKeyFile = join(dir, `${site}.key`);
      writeFileSync(privateKeyFile, `${keys[site].privateKey}\n`, { mode: 0o600 });
      const config = {
        site: `site-${site}`,
        privateKeyFile,
        tun: { name: `brt${opts.tag}${site}`.slice(0, 15), address: `${tunAddress}/24`, ...(tunAddress6 ? { address6: `${tunAddress6}/64` } : {}), mtu: opts.mtu ?? 1420, ...opts.tunConfig },
        links: links.map((name, i) => ({ name, interface: me.links[i]!.ifname, bind: opts.underlayDual ? '::' : me.links[i]!.address, port: 51900, ...(opts.backupLinks?.includes(name) ? { costTier: 'backup' } : {}), ...opts.linkConfig })),
        peers: [{ name: `site-${site === 'a' ? 'b' : 'a'}`, publicKey: keys[site === 'a' ? 'b' : 'a'].publicKey, endpoints: Object.fromEntries(links.map((name, i) => [name, hostPort(opts.underlayDual && site === 'a' ? peer.links[i]!.address6! : peer.links[i]!.address)])) }],
        control: { socket: controlSocket },
        log: { level: opts.logLevel ?? 'info' },
        ...opts.extraConfig,
      };
      const configPath = join(dir, `${site}.yaml`);
      writeFileSync(configPath, stringify(config));
      const proc = topo.spawnIn(site, [process.execPath, ...(opts.nodeArgs?.[site] ?? []), BRAID_BIN, 'up', '-c', configPath], {
        env: { ...process.env, ...opts.env?.[site] },
      });
      procs.push(proc);
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      return { name: site, tunAddress, ...(tunAddress6 ? { tunAddress6 } : {}), configPath, controlSocket, proc, output: () => out };
    };
    const a = mk('a');
    const b = mk('b');
    const status = async (site: 'a' | 'b'): Promise<EdgeSnapshot> => {
      const r = await controlRequest((site === 'a' ? a : b).controlSocket, { cmd: 'status' });
      if (r.ok !== true) throw new Error(`status failed: ${JSON.stringify(r)}`);
      return r.status as EdgeSnapshot;
    };
    for (const s of [a, b]) {
      await waitFor(
        async () => {
          if (s.proc.exitCode !== null) throw new Error(`braid up (${s.name}) exited ${s.proc.exitCode}: ${s.output()}`);
          const st = await status(s.name);
          return st.links.every((l) => l.rttMs !== undefined);
        },
        opts.startTimeoutMs ?? 15_000,
        () => `site ${s.name} to come up with every link measured\n${s.output()}`,
      );
    }
    return { topo, a, b, status, control: (site, req) => controlRequest((site === 'a' ? a : b).controlSocket, req), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
