/** External health target (ICMP echo bound to the WAN interface), in namespaces (root). */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { createTopology, isRoot } from '../../sim/netns.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/health.e2e.test.ts: needs root (raw sockets, namespaces); CI runs it as root');
const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const PROBE = fileURLToPath(new URL('../io/helpers/health-probe.ts', import.meta.url));

describe.skipIf(!ROOT)('external health target per WAN link', () => {
  it('tells reachable from unreachable through the bound interface only', async () => {
    const topo = await createTopology({ tag: `h${process.pid % 100000}`, links: ['mpls', 'inet'] });
    try {
      const run = async (ifname: string, durationMs: number, during?: () => Promise<void>): Promise<Array<{ reachable: boolean; detail: string }>> => {
        const proc = topo.spawnIn('a', [process.execPath, RUN_TS, PROBE, ifname, topo.b.links[0]!.address, String(durationMs)]);
        let out = '';
        proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        await during?.();
        await new Promise<void>((r) => proc.once('exit', () => r()));
        return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reachable: boolean; detail: string });
      };
      // Bound to wan1 while wan1 is down: unreachable, although the routing table would reach the
      // target through wan0. The echo really leaves through the bound interface only.
      await topo.execIn('a', ['ip', 'link', 'set', 'wan1', 'down']);
      const viaDownLink = await run('wan1', 2500);
      await topo.execIn('a', ['ip', 'link', 'set', 'wan1', 'up']);
      const changes = await run('wan0', 6000, async () => {
        await new Promise((r) => setTimeout(r, 2500));
        await topo.execIn('b', ['ip', 'link', 'set', 'wan0', 'down']);
      });
      console.log(`health target changes: ${changes.map((c) => `${c.reachable ? 'up' : 'down'} (${c.detail})`).join('; ')}; bound to a down link: ${JSON.stringify(viaDownLink)}`);
      expect(changes[0]?.reachable).toBe(true);
      expect(changes.at(-1)?.reachable).toBe(false);
      expect(viaDownLink.some((c) => c.reachable)).toBe(false);
    } finally {
      await topo.destroy();
    }
  }, 30_000);
});
