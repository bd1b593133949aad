/**
 * Real-time hub-and-spokes harness (root, issue 11): five network namespaces, four real `braid up`
 * processes with their own TUN devices. Used by test/e2e/hub.e2e.test.ts and bench/hub.ts.
 * Every namespace is named `brt-<tag>-*` and deleted by stop(), also after failures; every
 * process it started is killed first (deleting a namespace does not kill what runs inside).
 *
 *   WAN side ("carriers": one bridge per link type in the hub namespace, the hub's uplinks)
 *
 *     s1 --mpls-- [hub bridge wmpls 172.21.0.1]
 *     s1 --inet-- [hub bridge winet 172.22.0.1] --inet-- s2
 *     s1 --lte--- [hub bridge wlte  172.23.0.1] --lte--- s2
 *     s3 --inet-- nat (nftables masquerade, ports 20000-20999) --> winet as 172.22.0.13
 *
 *   spoke i's address on link k: 172.(20+k).0.(10+i); spoke 3 is 192.168.3.2 behind the NAT.
 *
 *   Overlay: hub TUN 10.0.0.1/24 and a hub LAN address 10.0.1.1 (a veth in the hub namespace, behind the
 *   hub's TUN); spoke i TUN 10.i.0.1/24 with prefix 10.i.0.0/16. The hub lists the spokes (keys,
 *   prefixes; endpoints for spokes 1 and 2 only, spoke 3's is learned); every spoke lists the hub
 *   with 10.0.0.0/8, so branch-to-branch goes through the hub, forwarded inside its core (the hub
 *   namespace has IP forwarding off: the kernel cannot do it for it).
 *
 * Keys come from `braid keygen --out` and `braid pubkey`; configs are YAML in a temp dir.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { controlRequest } from './e2e.ts';
import { cleanupStale, NAME_PREFIX, sh } from './netns.ts';
import type { EdgeSnapshot } from '../src/core/types.ts';

const execFileP = promisify(execFile);
const BRAID_BIN = fileURLToPath(new URL('../bin/braid.js', import.meta.url));

export const SITES = ['hub', 's1', 's2', 's3'] as const;
export type SiteName = (typeof SITES)[number];
export type NsName = SiteName | 'nat';

/** Link types (carriers) and which spokes have them. */
const CARRIERS = [
  { name: 'mpls', octet: 21 },
  { name: 'inet', octet: 22 },
  { name: 'lte', octet: 23 },
] as const;
const SPOKE_LINKS: Record<Exclude<SiteName, 'hub'>, string[]> = { s1: ['mpls', 'inet', 'lte'], s2: ['inet', 'lte'], s3: ['inet'] };
const PORT = 51900;
/** Masquerade source ports before and after natRebind(). */
export const NAT_PORTS = ['20000-20999', '30000-30999'] as const;

export interface FabricLink {
  name: string;
  ifname: string;
  address: string;
}

export interface FabricSite {
  name: SiteName;
  ns: string;
  /** Overlay address on the site's TUN. */
  tunAddress: string;
  /** The site's prefix as the others route it. */
  prefix: string;
  links: FabricLink[];
  configPath: string;
  controlSocket: string;
  publicKey: string;
  proc: ChildProcess;
  output(): string;
}

export interface HubAndSpokes {
  tag: string;
  sites: Record<SiteName, FabricSite>;
  /** An address on the hub's LAN (a veth in the hub namespace, behind its TUN). */
  hubLanAddress: string;
  ns: Record<NsName, string>;
  execIn(where: NsName, argv: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  spawnIn(where: NsName, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** Snapshot over the control socket (fast; for counters). */
  status(site: SiteName): Promise<EdgeSnapshot>;
  /** Snapshot as an operator gets it: `braid status --json -c CONFIG`. */
  statusCli(site: SiteName): Promise<EdgeSnapshot>;
  /**
   * Waits until every site has its sessions and every path up: the hub 3 + 2 + 1 paths to the
   * spokes, each spoke one per link to the hub. Polls `braid status --json -c`.
   */
  waitReady(timeoutMs: number): Promise<void>;
  /**
   * Spoke 3's NAT mapping changes: the masquerade port range is switched to the other one and the
   * conntrack entries of spoke 3's overlay socket are deleted, so its next packet leaves from a new
   * public port. Returns the public port before and after (from conntrack; after may be
   * undefined if no packet left yet).
   */
  natRebind(): Promise<{ before: number | undefined; after: number | undefined }>;
  /** Spoke 3's current public (translated) source port, from the NAT's conntrack table. */
  natPublicPort(): Promise<number | undefined>;
  /** Stops a site's `braid up` (SIGTERM, waits for the exit) and starts it again with the same config. */
  restartSite(site: SiteName): Promise<void>;
  stop(): Promise<void>;
}

export interface HubAndSpokesOptions {
  /** 1-6 lowercase letters/digits: namespaces brt-<tag>-hub, -s1, -s2, -s3, -nat. */
  tag: string;
  logLevel?: string;
  mtu?: number;
  /** Spoke 3's persistentKeepalive in seconds (default 5). */
  keepaliveS?: number;
  /** Extra node arguments per site, before the braid script (e.g. --cpu-prof). */
  nodeArgs?: Partial<Record<SiteName, string[]>>;
  /** Extra settings merged into every site config. */
  extraConfig?: Record<string, unknown>;
  stopTimeoutMs?: number;
}

/** Tools the harness runs, with the Debian package of each (.ci/run installs them). */
export const REQUIRED_TOOLS: [tool: string, aptPackage: string][] = [
  ['ip', 'iproute2'],
  ['ping', 'iputils-ping'],
  ['iperf3', 'iperf3'],
  ['nft', 'nftables'],
  ['conntrack', 'conntrack'],
];

/** The required tools that are not on the PATH, as "tool (package)". */
export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const [tool, pkg] of REQUIRED_TOOLS) {
    const found = await execFileP('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
    if (!found) missing.push(`${tool} (${pkg})`);
  }
  return missing;
}

async function braidCli(args: string[], timeoutMs = 20_000): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [BRAID_BIN, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: () => string, pollMs = 200): Promise<void> {
  const until = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      if (await cond()) return;
    } catch (e) {
      lastError = (e as Error).message;
      if (/exited/.test(lastError)) throw e;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}${lastError ? `\nlast error: ${lastError}` : ''}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function startHubAndSpokes(opts: HubAndSpokesOptions): Promise<HubAndSpokes> {
  if (!/^[a-z0-9]{1,6}$/.test(opts.tag)) throw new Error('hub harness tag: 1-6 lowercase letters/digits (interface names are at most 15 chars)');
  const tag = opts.tag;
  await cleanupStale(tag);
  const ns: Record<NsName, string> = {
    hub: `${NAME_PREFIX}${tag}-hub`,
    s1: `${NAME_PREFIX}${tag}-s1`,
    s2: `${NAME_PREFIX}${tag}-s2`,
    s3: `${NAME_PREFIX}${tag}-s3`,
    nat: `${NAME_PREFIX}${tag}-nat`,
  };
  const dir = mkdtempSync(join(tmpdir(), `braid-hub-${tag}-`));
  const procs: ChildProcess[] = [];
  const stopTimeoutMs = opts.stopTimeoutMs ?? 3000;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
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
    for (const n of Object.values(ns)) await sh(['ip', 'netns', 'del', n]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const ipn = (where: NsName, args: string[]): Promise<unknown> => sh(['ip', '-n', ns[where], ...args]);
  const execIn = (where: NsName, argv: string[], o?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }> =>
    sh(['ip', 'netns', 'exec', ns[where], ...argv], o?.timeoutMs);
  const spawnIn = (where: NsName, argv: string[], o?: SpawnOptions): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', ns[where], ...argv], { stdio: 'pipe', ...o });
    return p;
  };

  try {
    // ---- namespaces and the WAN -----------------------------------------------------------
    for (const n of Object.keys(ns) as NsName[]) {
      await sh(['ip', 'netns', 'add', ns[n]]);
      await ipn(n, ['link', 'set', 'lo', 'up']);
    }
    // The hub must not forward between spokes in its kernel: the core does it.
    await execIn('hub', ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    for (const c of CARRIERS) {
      const br = `w${c.name}`;
      await ipn('hub', ['link', 'add', br, 'type', 'bridge']);
      await ipn('hub', ['addr', 'add', `172.${c.octet}.0.1/24`, 'dev', br]);
      await ipn('hub', ['link', 'set', br, 'up']);
    }
    const carrier = (name: string): (typeof CARRIERS)[number] => CARRIERS.find((c) => c.name === name)!;
    /** A veth pair from namespace `from` (named `ifname` there) to a port of the hub's bridge for `link`. */
    const plug = async (from: NsName, ifname: string, address: string, link: string, portName: string): Promise<void> => {
      const tmpA = `${NAME_PREFIX}${tag}${portName}`.slice(0, 15);
      const tmpB = `${NAME_PREFIX}${tag}${portName}h`.slice(0, 15);
      await sh(['ip', 'link', 'add', tmpA, 'netns', ns[from], 'type', 'veth', 'peer', 'name', tmpB, 'netns', ns.hub]);
      await ipn(from, ['link', 'set', tmpA, 'name', ifname]);
      await ipn(from, ['addr', 'add', address, 'dev', ifname]);
      await ipn(from, ['link', 'set', ifname, 'up']);
      await ipn('hub', ['link', 'set', tmpB, 'name', portName]);
      await ipn('hub', ['link', 'set', portName, 'master', `w${link}`]);
      await ipn('hub', ['link', 'set', portName, 'up']);
    };
    const links: Record<SiteName, FabricLink[]> = {
      hub: CARRIERS.map((c) => ({ name: c.name, ifname: `w${c.name}`, address: `172.${c.octet}.0.1` })),
      s1: [],
      s2: [],
      s3: [],
    };
    for (const [i, s] of (['s1', 's2'] as const).entries()) {
      for (const l of SPOKE_LINKS[s]) {
        const address = `172.${carrier(l).octet}.0.${11 + i}`;
        await plug(s, l, `${address}/24`, l, `${s}${l.slice(0, 2)}`);
        links[s].push({ name: l, ifname: l, address });
      }
    }
    // Spoke 3 behind the NAT namespace: 192.168.3.2 -> nat (192.168.3.1 | 172.22.0.13) -> winet.
    {
      const tmpA = `${NAME_PREFIX}${tag}s3n`;
      const tmpB = `${NAME_PREFIX}${tag}s3m`;
      await sh(['ip', 'link', 'add', tmpA, 'netns', ns.s3, 'type', 'veth', 'peer', 'name', tmpB, 'netns', ns.nat]);
      await ipn('s3', ['link', 'set', tmpA, 'name', 'inet']);
      await ipn('s3', ['addr', 'add', '192.168.3.2/24', 'dev', 'inet']);
      await ipn('s3', ['link', 'set', 'inet', 'up']);
      await ipn('s3', ['route', 'add', '172.22.0.0/24', 'via', '192.168.3.1', 'dev', 'inet']);
      await ipn('nat', ['link', 'set', tmpB, 'name', 'lan']);
      await ipn('nat', ['addr', 'add', '192.168.3.1/24', 'dev', 'lan']);
      await ipn('nat', ['link', 'set', 'lan', 'up']);
      await plug('nat', 'wan', '172.22.0.13/24', 'inet', 'nat');
      await execIn('nat', ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await execIn('nat', ['nft', 'add', 'table', 'ip', 'brtnat']);
      await execIn('nat', ['nft', 'add', 'chain', 'ip', 'brtnat', 'post', '{ type nat hook postrouting priority srcnat; policy accept; }']);
      await execIn('nat', ['nft', 'add', 'rule', 'ip', 'brtnat', 'post', 'oifname', 'wan', 'meta', 'l4proto', 'udp', 'masquerade', 'to', `:${NAT_PORTS[0]}`]);
      links.s3.push({ name: 'inet', ifname: 'inet', address: '192.168.3.2' });
    }
    // The hub's LAN: an address behind the hub's TUN.
    // (a veth pair inside the hub namespace: containers often lack the dummy module).
    await ipn('hub', ['link', 'add', `brt${tag}l`, 'type', 'veth', 'peer', 'name', `brt${tag}k`]);
    await ipn('hub', ['addr', 'add', '10.0.1.1/24', 'dev', `brt${tag}l`]);
    await ipn('hub', ['link', 'set', `brt${tag}l`, 'up']);
    await ipn('hub', ['link', 'set', `brt${tag}k`, 'up']);

    // ---- keys (braid keygen / braid pubkey) ------------------------------------------------
    const keyFile = (s: SiteName): string => join(dir, `${s}.key`);
    await Promise.all(SITES.map((s) => braidCli(['keygen', '--out', keyFile(s)])));
    const pubs = await Promise.all(SITES.map(async (s) => (await braidCli(['pubkey', keyFile(s)])).trim()));
    const pub = Object.fromEntries(SITES.map((s, i) => [s, pubs[i]!])) as Record<SiteName, string>;

    // ---- configs ---------------------------------------------------------------------------
    const tunAddress: Record<SiteName, string> = { hub: '10.0.0.1', s1: '10.1.0.1', s2: '10.2.0.1', s3: '10.3.0.1' };
    const prefix: Record<SiteName, string> = { hub: '10.0.0.0/8', s1: '10.1.0.0/16', s2: '10.2.0.0/16', s3: '10.3.0.0/16' };
    const keepaliveS = opts.keepaliveS ?? 5;
    const configOf = (s: SiteName): Record<string, unknown> => {
      const base = {
        site: s === 'hub' ? 'hub' : `branch-${s.slice(1)}`,
        privateKeyFile: keyFile(s),
        tun: { name: `brt${tag}${s === 'hub' ? 'h' : s.slice(1)}`, address: `${tunAddress[s]}/24`, mtu: opts.mtu ?? 1420 },
        links: links[s].map((l) => ({ name: l.name, interface: l.ifname, bind: l.address, port: PORT })),
        control: { socket: join(dir, `${s}.sock`) },
        log: { level: opts.logLevel ?? 'info' },
        ...opts.extraConfig,
      };
      if (s === 'hub') {
        return {
          ...base,
          peers: [
            { name: 'branch-1', publicKey: pub.s1, prefixes: [prefix.s1], endpoints: Object.fromEntries(links.s1.map((l) => [l.name, `${l.address}:${PORT}`])) },
            { name: 'branch-2', publicKey: pub.s2, prefixes: [prefix.s2], links: SPOKE_LINKS.s2, endpoints: Object.fromEntries(links.s2.map((l) => [l.name, `${l.address}:${PORT}`])) },
            // Behind NAT: no endpoint, learned from its first authenticated packet.
            { name: 'branch-3', publicKey: pub.s3, prefixes: [prefix.s3], links: SPOKE_LINKS.s3 },
          ],
        };
      }
      return {
        ...base,
        peers: [
          {
            name: 'hub',
            publicKey: pub.hub,
            prefixes: [prefix.hub],
            endpoints: Object.fromEntries(links[s].map((l) => [l.name, `172.${carrier(l.name).octet}.0.1:${PORT}`])),
            ...(s === 's3' ? { persistentKeepalive: keepaliveS } : {}),
          },
        ],
      };
    };

    // ---- braid up ----------------------------------------------------------------------------
    const sites = {} as Record<SiteName, FabricSite>;
    const launch = (s: SiteName, configPath: string): { proc: ChildProcess; output: () => string } => {
      const proc = spawnIn(s, [process.execPath, ...(opts.nodeArgs?.[s] ?? []), BRAID_BIN, 'up', '-c', configPath]);
      procs.push(proc);
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
      return { proc, output: () => out };
    };
    for (const s of SITES) {
      const configPath = join(dir, `${s}.yaml`);
      writeFileSync(configPath, stringify(configOf(s)));
      const { proc, output } = launch(s, configPath);
      sites[s] = {
        name: s,
        ns: ns[s],
        tunAddress: tunAddress[s],
        prefix: prefix[s],
        links: links[s],
        configPath,
        controlSocket: join(dir, `${s}.sock`),
        publicKey: pub[s],
        proc,
        output,
      };
    }
    const restartSite = async (s: SiteName): Promise<void> => {
      const old = sites[s].proc;
      if (old.exitCode === null && old.signalCode === null) {
        const gone = new Promise<void>((r) => old.once('exit', () => r()));
        old.kill('SIGTERM');
        const t = setTimeout(() => old.kill('SIGKILL'), stopTimeoutMs);
        await gone;
        clearTimeout(t);
      }
      const { proc, output } = launch(s, sites[s].configPath);
      sites[s].proc = proc;
      sites[s].output = output;
    };

    const checkAlive = (s: SiteName): void => {
      const p = sites[s].proc;
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`braid up (${s}) exited ${p.exitCode ?? p.signalCode}:\n${sites[s].output().slice(-4000)}`);
    };
    const status = async (s: SiteName): Promise<EdgeSnapshot> => {
      checkAlive(s);
      const r = await controlRequest(sites[s].controlSocket, { cmd: 'status' });
      if (r.ok !== true) throw new Error(`status ${s}: ${JSON.stringify(r)}`);
      return r.status as EdgeSnapshot;
    };
    const statusCli = async (s: SiteName): Promise<EdgeSnapshot> => {
      checkAlive(s);
      const out = await braidCli(['status', '--json', '-c', sites[s].configPath], 15_000);
      return (JSON.parse(out) as { status: EdgeSnapshot }).status;
    };
    /** Paths up per peer name, from a snapshot. */
    const pathsUp = (snap: EdgeSnapshot): Record<string, number> =>
      Object.fromEntries((snap.peers ?? []).map((p) => [p.name, p.session.established ? p.pathsUp : 0]));
    const want: Record<SiteName, Record<string, number>> = {
      hub: { 'branch-1': 3, 'branch-2': 2, 'branch-3': 1 },
      s1: { hub: 3 },
      s2: { hub: 2 },
      s3: { hub: 1 },
    };
    let lastSeen: Partial<Record<SiteName, Record<string, number>>> = {};
    const waitReady = async (timeoutMs: number): Promise<void> => {
      lastSeen = {};
      const until = Date.now() + timeoutMs;
      // One site at a time (the hub first: it sees every spoke), so that the polls, each a node
      // process, do not crowd out the edges on a small box; a site once ready is not asked again.
      for (const s of SITES) {
        await waitFor(
          async () => {
            const got = pathsUp(await statusCli(s));
            lastSeen[s] = got;
            return Object.entries(want[s]).every(([peer, n]) => (got[peer] ?? 0) >= n);
          },
          Math.max(1000, until - Date.now()),
          () => `every session and path up (want ${JSON.stringify(want)}, have ${JSON.stringify(lastSeen)})\n${SITES.map((x) => `--- ${x}:\n${sites[x].output().slice(-2000)}`).join('\n')}`,
          300,
        );
      }
    };
    const natPublicPort = async (): Promise<number | undefined> => {
      const { stdout } = await execIn('nat', ['conntrack', '-L', '-p', 'udp', '--orig-src', '192.168.3.2', '--orig-port-src', String(PORT)]).catch(() => ({ stdout: '' }));
      // "udp 17 ... src=192.168.3.2 dst=172.22.0.1 sport=51900 dport=51900 ... src=172.22.0.1 dst=172.22.0.13 sport=51900 dport=PUBLIC"
      const m = /src=172\.22\.0\.1 dst=172\.22\.0\.13 sport=\d+ dport=(\d+)/.exec(stdout);
      return m ? Number(m[1]) : undefined;
    };
    let natRange = 0;
    const natRebind = async (): Promise<{ before: number | undefined; after: number | undefined }> => {
      const before = await natPublicPort();
      natRange = 1 - natRange;
      await execIn('nat', ['nft', 'flush', 'chain', 'ip', 'brtnat', 'post']);
      await execIn('nat', ['nft', 'add', 'rule', 'ip', 'brtnat', 'post', 'oifname', 'wan', 'meta', 'l4proto', 'udp', 'masquerade', 'to', `:${NAT_PORTS[natRange]}`]);
      // Entries in both directions: spoke 3's own and any the hub's packets to the old port made.
      await execIn('nat', ['conntrack', '-D', '-p', 'udp', '--orig-src', '192.168.3.2']).catch(() => undefined);
      await execIn('nat', ['conntrack', '-D', '-p', 'udp', '--orig-src', '172.22.0.1']).catch(() => undefined);
      let after: number | undefined;
      const until = Date.now() + 2000;
      while (after === undefined && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        after = await natPublicPort();
      }
      return { before, after };
    };
    return { tag, sites, hubLanAddress: '10.0.1.1', ns, execIn, spawnIn, status, statusCli, waitReady, natRebind, natPublicPort, restartSite, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Longest silence between received echo replies, from `ping -D` output (seconds timestamps), and how many came back. */
export function longestReplyGapMs(pingOut: string): { gapMs: number; received: number } {
  const times = [...pingOut.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=\d+/gm)].map((m) => Number(m[1]) * 1000);
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return { gapMs: gap, received: times.length };
}

/** Reads a site's config back (tests that edit it for reloads). */
export function readConfig(site: FabricSite): string {
  return readFileSync(site.configPath, 'utf8');
}
