/**
 * Two-site topology in Linux network namespaces (root): site namespaces joined by N veth pairs,
 * one per WAN link. Every name starts with a prefix (default `brt-`) so that a crashed run's
 * leftovers are recognisable and `cleanupStale()` can remove them. Traffic stays inside the
 * namespaces this module created.
 *
 *   const topo = await createTopology({ tag: 'e2e', links: ['mpls', 'inet', 'lte'] });
 *   try { await topo.execIn('a', ['ping', '-c1', topo.b.links[0].address]) } finally { await topo.destroy() }
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const NAME_PREFIX = 'brt-';

export interface SiteLink {
  name: string;
  /** veth interface name inside the site namespace. */
  ifname: string;
  /** Address of this end: IPv4, or IPv6 (no brackets) in a `family: 6` topology. */
  address: string;
  /** The IPv6 address too, in a `family: 'dual'` topology (address is the IPv4 one). */
  address6?: string;
}

export interface TopoSite {
  ns: string;
  links: SiteLink[];
}

export interface Topology {
  tag: string;
  a: TopoSite;
  b: TopoSite;
  /** Runs a command inside a site's namespace; rejects with stderr on failure. */
  execIn(site: 'a' | 'b', argv: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running process inside a site's namespace. */
  spawnIn(site: 'a' | 'b', argv: string[], opts?: SpawnOptions): ChildProcess;
  /** Deletes both namespaces (and with them every veth and TUN inside). Safe to call twice. */
  destroy(): Promise<void>;
}

export async function sh(argv: string[], timeoutMs = 20_000): Promise<{ stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  try {
    return await execFileP(cmd!, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as Error & { stderr?: string; code?: number | string };
    throw new Error(`${argv.join(' ')} failed (${err.code ?? 'error'}): ${(err.stderr ?? err.message).trim()}`);
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Removes namespaces left by earlier runs with this tag (a crashed test must not break the next). */
export async function cleanupStale(tag: string): Promise<void> {
  const { stdout } = await sh(['ip', '-o', 'netns', 'list']).catch(() => ({ stdout: '' }));
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name && name.startsWith(`${NAME_PREFIX}${tag}-`)) await sh(['ip', 'netns', 'del', name]).catch(() => undefined);
  }
}

/**
 * Creates namespaces `brt-<tag>-a` and `brt-<tag>-b` and one veth pair per link; link i gets
 * 10.<200+i>.<subnet>.1 (site a) and .2 (site b) on a /24, where subnet is derived from the tag.
 * With `family: 6` the links are IPv6 only: fd00:<200+i>:<subnet>::1 and ::2 on a /64 (no DAD, so
 * usable at once), no IPv4 address at all; with `family: 'dual'` both.
 */
export async function createTopology(opts: { tag: string; links: string[]; subnet?: number; family?: 4 | 6 | 'dual' }): Promise<Topology> {
  if (!/^[a-z0-9]{1,6}$/.test(opts.tag)) throw new Error('topology tag: 1-6 lowercase letters/digits (interface names are at most 15 chars)');
  if (opts.links.length > 8) throw new Error('topology: at most 8 links');
  const tag = opts.tag;
  const subnet = opts.subnet ?? 1;
  await cleanupStale(tag);
  const nsA = `${NAME_PREFIX}${tag}-a`;
  const nsB = `${NAME_PREFIX}${tag}-b`;
  const a: TopoSite = { ns: nsA, links: [] };
  const b: TopoSite = { ns: nsB, links: [] };
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    await sh(['ip', 'netns', 'del', nsA]).catch(() => undefined);
    await sh(['ip', 'netns', 'del', nsB]).catch(() => undefined);
  };
  try {
    await sh(['ip', 'netns', 'add', nsA]);
    await sh(['ip', 'netns', 'add', nsB]);
    for (const ns of [nsA, nsB]) await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i < opts.links.length; i++) {
      const name = opts.links[i]!;
      // Created in the root namespace with temporary names, then moved: never left there.
      const tmpA = `${NAME_PREFIX}${tag}${i}x`;
      const tmpB = `${NAME_PREFIX}${tag}${i}y`;
      const ifname = `wan${i}`;
      await sh(['ip', 'link', 'add', tmpA, 'netns', nsA, 'type', 'veth', 'peer', 'name', tmpB, 'netns', nsB]);
      const v6 = opts.family === 6;
      const dual = opts.family === 'dual';
      const addrA = v6 ? `fd00:${200 + i}:${subnet}::1` : `10.${200 + i}.${subnet}.1`;
      const addrB = v6 ? `fd00:${200 + i}:${subnet}::2` : `10.${200 + i}.${subnet}.2`;
      for (const [ns, tmp, addr] of [
        [nsA, tmpA, addrA],
        [nsB, tmpB, addrB],
      ] as const) {
        await sh(['ip', '-n', ns, 'link', 'set', tmp, 'name', ifname]);
        await sh(['ip', '-n', ns, 'addr', 'add', ...(v6 ? [`${addr}/64`, 'dev', ifname, 'nodad'] : [`${addr}/24`, 'dev', ifname])]);
        if (dual) await sh(['ip', '-n', ns, 'addr', 'add', `fd00:${200 + i}:${subnet}::${ns === nsA ? 1 : 2}/64`, 'dev', ifname, 'nodad']);
        await sh(['ip', '-n', ns, 'link', 'set', ifname, 'up']);
      }
      a.links.push({ name, ifname, address: addrA, ...(dual ? { address6: `fd00:${200 + i}:${subnet}::1` } : {}) });
      b.links.push({ name, ifname, address: addrB, ...(dual ? { address6: `fd00:${200 + i}:${subnet}::2` } : {}) });
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    tag,
    a,
    b,
    execIn: (site, argv, o) => sh(['ip', 'netns', 'exec', site === 'a' ? nsA : nsB, ...argv], o?.timeoutMs),
    spawnIn: (site, argv, o) => spawn('ip', ['netns', 'exec', site === 'a' ? nsA : nsB, ...argv], { stdio: 'pipe', ...o }),
    destroy,
  };
}
