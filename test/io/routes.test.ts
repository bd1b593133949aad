// Kernel routes into the TUN (src/io/routes.ts), inside a network namespace this test creates
// (needs root): a persistent TUN device brt-rt0 there stands for braid's TUN. The namespace (and
// with it every device and route) is deleted in afterAll, also on failure.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { listRoutes, parseBatchErrors, ROUTE_PROTO, syncRoutes } from '../../src/io/routes.ts';

const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root (creates a network namespace with a TUN device)' : !existsSync('/dev/net/tun') ? 'no /dev/net/tun on this kernel' : undefined;
if (skipReason) console.warn(`skipping route tests: ${skipReason}`);

const NETNS = `brt-rt-${process.pid}`;
const TUN = 'brt-rt0';
const TUN_DOWN = 'brt-rt1';
const opts = { netns: NETNS };

function run(args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(args[0]!, args.slice(1), { timeout: 10_000 }, (error, stdout, stderr) => resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }));
  });
}

async function must(args: readonly string[]): Promise<string> {
  const r = await run(args);
  if (!r.ok) throw new Error(`${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Every route on the device as `ip` prints it (both families), one per line. */
async function kernelRoutes(dev: string, proto?: number): Promise<string[]> {
  const filter = proto === undefined ? [] : ['proto', String(proto)];
  const v4 = await must(['ip', '-n', NETNS, '-4', 'route', 'show', 'dev', dev, ...filter]);
  const v6 = await must(['ip', '-n', NETNS, '-6', 'route', 'show', 'dev', dev, ...filter]);
  return (v4 + v6)
    .split('\n')
    .map((l) => l.trim().split(' ')[0]!)
    .filter((l) => l !== '' && !l.startsWith('fe80:'));
}

async function errorOf(p: Promise<unknown>): Promise<BraidError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

describe('parseBatchErrors', () => {
  it("maps ip's complaints to the batch lines that failed", () => {
    const stderr = 'RTNETLINK answers: No such process\nCommand failed -:3\nCannot find device "nope"\nCommand failed -:4\nError: Invalid prefix for given prefix length.\nCommand failed -:5\n';
    expect([...parseBatchErrors(stderr)]).toEqual([
      [3, 'No such process'],
      [4, 'Cannot find device "nope"'],
      [5, 'Invalid prefix for given prefix length'],
    ]);
    expect(parseBatchErrors('').size).toBe(0);
  });
});

describe.skipIf(skipReason !== undefined)('syncRoutes in a namespace (root)', () => {
  beforeAll(async () => {
    await run(['ip', 'netns', 'del', NETNS]); // a leftover of a killed run
    await must(['ip', 'netns', 'add', NETNS]);
    await must(['ip', '-n', NETNS, 'tuntap', 'add', 'dev', TUN, 'mode', 'tun']);
    await must(['ip', '-n', NETNS, 'link', 'set', TUN, 'up']);
    await must(['ip', '-n', NETNS, 'tuntap', 'add', 'dev', TUN_DOWN, 'mode', 'tun']);
  });
  afterAll(async () => {
    await run(['ip', 'netns', 'del', NETNS]);
    expect((await run(['ip', 'netns', 'list'])).stdout).not.toContain(NETNS);
  });

  it('installs every prefix (both families), then a second sync does nothing', async () => {
    const installed = new Set<string>();
    const res = await syncRoutes(TUN, ['10.1.0.0/16', '10.2.0.0/24', '192.0.2.7/32', '2001:db8:1::/48', '2001:DB8:2::/48'], installed, opts);
    expect(res.added).toEqual(['10.1.0.0/16', '10.2.0.0/24', '192.0.2.7/32', '2001:db8:1::/48', '2001:db8:2::/48']);
    expect(res.removed).toEqual([]);
    expect([...installed].sort()).toEqual(res.added);
    expect((await kernelRoutes(TUN, ROUTE_PROTO)).sort()).toEqual(['10.1.0.0/16', '10.2.0.0/24', '192.0.2.7', '2001:db8:1::/48', '2001:db8:2::/48']);
    const again = await syncRoutes(TUN, ['10.1.0.0/16', '10.2.0.0/24', '192.0.2.7/32', '2001:db8:1::/48', '2001:db8:2::/48'], installed, opts);
    expect(again).toEqual({ added: [], removed: [] });
    expect(await listRoutes(TUN, opts)).toEqual(new Set(installed));
  });

  it('applies a diff: a peer goes (its prefixes leave), another comes', async () => {
    const installed = await listRoutes(TUN, opts);
    const res = await syncRoutes(TUN, ['10.1.0.0/16', '2001:db8:1::/48', '10.3.0.0/16', '0.0.0.0/0'], installed, opts);
    expect(res.added).toEqual(['0.0.0.0/0', '10.3.0.0/16']);
    expect(res.removed).toEqual(['10.2.0.0/24', '192.0.2.7/32', '2001:db8:2::/48']);
    expect((await kernelRoutes(TUN, ROUTE_PROTO)).sort()).toEqual(['10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48', 'default']);
    expect(await listRoutes(TUN, opts)).toEqual(new Set(['10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48', '0.0.0.0/0']));
  });

  it('leaves routes that are not Braid\'s alone, and a route deleted by hand does not fail the removal', async () => {
    await must(['ip', '-n', NETNS, 'route', 'replace', '198.51.100.0/24', 'dev', TUN]); // the operator's own
    await must(['ip', '-n', NETNS, 'route', 'del', '10.3.0.0/16', 'dev', TUN]);
    const installed = new Set(['10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48', '0.0.0.0/0']);
    const res = await syncRoutes(TUN, [], installed, opts);
    expect(res.removed).toEqual(['0.0.0.0/0', '10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48']);
    expect(installed.size).toBe(0);
    expect(await kernelRoutes(TUN, ROUTE_PROTO)).toEqual([]);
    expect(await kernelRoutes(TUN)).toEqual(['198.51.100.0/24']);
    expect(await listRoutes(TUN, opts)).toEqual(new Set());
  });

  it('refuses a bad prefix before touching the kernel, naming it', async () => {
    const installed = new Set<string>();
    const e = await errorOf(syncRoutes(TUN, ['10.4.0.0/16', '10.5.1.0/16'], installed, opts));
    expect(e.code).toBe(ErrorCode.PREFIX_INVALID);
    expect(e.message).toContain('10.5.1.0/16');
    expect(installed.size).toBe(0);
    expect(await kernelRoutes(TUN, ROUTE_PROTO)).toEqual([]);
  });

  it('a missing device is ROUTE_FAILED naming the route and the fix, and nothing is recorded', async () => {
    const installed = new Set<string>();
    const e = await errorOf(syncRoutes('brt-nodev', ['10.6.0.0/16', '10.7.0.0/16'], installed, opts));
    expect(e.code).toBe(ErrorCode.ROUTE_FAILED);
    expect(e.oneLine()).toMatch(/^route replace 10\.6\.0\.0\/16 dev brt-nodev: Cannot find device "brt-nodev" \(and 1 more route\); fix: open the TUN first/);
    expect(installed.size).toBe(0);
    expect(await listRoutes('brt-nodev', opts)).toEqual(new Set());
  });

  it('a device that is down says to bring it up', async () => {
    const e = await errorOf(syncRoutes(TUN_DOWN, ['10.8.0.0/16'], new Set(), opts));
    expect(e.code).toBe(ErrorCode.ROUTE_FAILED);
    expect(e.fix).toBe(`bring the TUN up first: ip link set ${TUN_DOWN} up`);
  });

  it('a partial failure records what took effect, so a retry does only the rest', async () => {
    await must(['ip', 'netns', 'exec', NETNS, 'sysctl', '-qw', `net.ipv6.conf.${TUN}.disable_ipv6=1`]);
    const installed = new Set<string>();
    const e = await errorOf(syncRoutes(TUN, ['10.9.0.0/16', '2001:db8:9::/48'], installed, opts));
    expect(e.code).toBe(ErrorCode.ROUTE_FAILED);
    expect(e.message).toContain('2001:db8:9::/48');
    expect(e.fix).toContain('disable_ipv6=0');
    expect([...installed]).toEqual(['10.9.0.0/16']);
    await must(['ip', 'netns', 'exec', NETNS, 'sysctl', '-qw', `net.ipv6.conf.${TUN}.disable_ipv6=0`]);
    const retry = await syncRoutes(TUN, ['10.9.0.0/16', '2001:db8:9::/48'], installed, opts);
    expect(retry).toEqual({ added: ['2001:db8:9::/48'], removed: [] });
    expect((await kernelRoutes(TUN, ROUTE_PROTO)).sort()).toEqual(['10.9.0.0/16', '2001:db8:9::/48']);
  });

  it('refuses a TUN name that could smuggle a command into the batch', async () => {
    const e = await errorOf(syncRoutes('x\nroute flush all', ['10.1.0.0/16'], new Set(), opts));
    expect(e.code).toBe(ErrorCode.ROUTE_FAILED);
  });
});
