/**
 * Real-time two-site harness (root): the namespace topology plus a real `braid up` process in
 * each site namespace, with real TUN devices. Used by the end-to-end tests and the overlay
 * benchmark. Everything is torn down by stop(), also after failures.
 *
 *   const h = await startTwoSites({ tag: 'e2e' });
 *   try { await h.topo.execIn('a', ['ping', '-c', '3', h.b.tunAddress]) } finally { await h.stop() }
 */
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
  /** Links in the backup cost tier (default: every link primary). */
  backupLinks?: string[];
  /** Extra settings merged into both site configs. */
  extraConfig?: Record<string, unknown>;
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

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startTwoSites(opts: TwoSitesOptions): Promise<TwoSites> {
  const links = opts.links ?? ['mpls', 'inet', 'lte'];
  const topo = await createTopology({ tag: opts.tag, links });
  const dir = mkdtempSync(join(tmpdir(), `braid-${opts.tag}-`));
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null) return r();
            const t = setTimeout(() => {
              p.kill('SIGKILL');
              r();
            }, 3000);
            p.once('exit', () => {
              clearTimeout(t);
              r();
            });
          }),
      ),
    );
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const mk = (site: 'a' | 'b'): RunningSite => {
      const me = site === 'a' ? topo.a : topo.b;
      const peer = site === 'a' ? topo.b : topo.a;
      const tunAddress = site === 'a' ? '10.99.0.1' : '10.99.0.2';
      const controlSocket = join(dir, `${site}.sock`);
      const config = {
        site: `site-${site}`,
        tun: { name: `brt${opts.tag}${site}`.slice(0, 15), address: `${tunAddress}/24`, mtu: opts.mtu ?? 1420 },
        links: links.map((name, i) => ({ name, interface: me.links[i]!.ifname, bind: me.links[i]!.address, port: 51900, ...(opts.backupLinks?.includes(name) ? { costTier: 'backup' } : {}) })),
        peers: [{ name: `site-${site === 'a' ? 'b' : 'a'}`, endpoints: Object.fromEntries(links.map((name, i) => [name, `${peer.links[i]!.address}:51900`])) }],
        control: { socket: controlSocket },
        log: { level: opts.logLevel ?? 'info' },
        ...opts.extraConfig,
      };
      const configPath = join(dir, `${site}.yaml`);
      writeFileSync(configPath, stringify(config));
      const proc = topo.spawnIn(site, [process.execPath, BRAID_BIN, 'up', '-c', configPath]);
      procs.push(proc);
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      return { name: site, tunAddress, configPath, controlSocket, proc, output: () => out };
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
        15_000,
        `site ${s.name} to come up with every link measured\n${s.output()}`,
      );
    }
    return { topo, a, b, status, control: (site, req) => controlRequest((site === 'a' ? a : b).controlSocket, req), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
