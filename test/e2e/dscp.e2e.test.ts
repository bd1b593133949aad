/**
 * End-to-end (root), issue 5: the outer DSCP of the underlay packets follows the class map. Two
 * `braid up` processes in network namespaces over two veth WAN links; pings with EF, AF41 and
 * best-effort TOS go into site a's TUN, and tcpdump on a's WAN veths reads the TOS byte of the
 * UDP datagrams that carry them. Site configs override one class (video -> CS4) to show the map
 * is configurable. Skipped with a printed reason when not root or tcpdump is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';

function hasTool(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const ROOT = isRoot();
const TCPDUMP = hasTool('tcpdump');
const SKIP = !ROOT ? 'needs root (network namespaces, TUN)' : !TCPDUMP ? 'needs tcpdump' : undefined;
if (SKIP) console.warn(`SKIP test/e2e/dscp.e2e.test.ts: ${SKIP}; CI runs it as root with tcpdump`);

/** Inner TOS byte given to ping -Q, and the outer DSCP the class map must put on the underlay. */
const CASES = [
  { label: 'EF (voice)', innerTos: 0xb8, outerDscp: 46 },
  { label: 'AF41 (video, overridden to CS4)', innerTos: 0x88, outerDscp: 32 },
  { label: 'best effort (default)', innerTos: 0x00, outerDscp: 0 },
] as const;
const PING_PAYLOAD_BYTES = 600;

describe.skipIf(SKIP !== undefined)('end-to-end: outer DSCP per class on the underlay', () => {
  let h: TwoSites;
  beforeAll(async () => {
    h = await startTwoSites({ tag: 'dscp', links: ['mpls', 'inet'], extraConfig: { classes: { video: { outerDscp: 32 } } } });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  for (const c of CASES) {
    it(`${c.label}: inner TOS 0x${c.innerTos.toString(16)} -> outer DSCP ${c.outerDscp}`, async () => {
      // Only datagrams from site a's WAN addresses, and only ones big enough to carry a ping of
      // PING_PAYLOAD_BYTES (probes, hellos and keepalives are under 200 bytes).
      const srcs = h.topo.a.links.map((l) => `src host ${l.address}`).join(' or ');
      const filter = `udp and (${srcs}) and greater ${PING_PAYLOAD_BYTES}`;
      const dump = h.topo.spawnIn('a', ['tcpdump', '-nn', '-v', '-l', '-i', 'any', '-c', '5', filter]);
      let out = '';
      let err = '';
      dump.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      const listening = new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
        dump.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          if (/listening on/.test(err)) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const exited = new Promise<void>((resolve) => dump.once('exit', () => resolve()));
      try {
        await listening;
        const ping = await h.topo.execIn('a', ['ping', '-c', '5', '-i', '0.2', '-W', '2', '-Q', `0x${c.innerTos.toString(16)}`, '-s', String(PING_PAYLOAD_BYTES), h.b.tunAddress], { timeoutMs: 20_000 });
        expect(ping.stdout).toMatch(/5 packets transmitted, 5 received/);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      } finally {
        dump.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      }
      const toss = [...out.matchAll(/\(tos (0x[0-9a-f]+)/g)].map((m) => Number(m[1]));
      const dscps = toss.map((t) => t >> 2);
      console.log(`e2e DSCP ${c.label}: inner TOS 0x${c.innerTos.toString(16)}, outer TOS on the wire ${toss.map((t) => '0x' + t.toString(16)).join(' ')} -> DSCP ${[...new Set(dscps)].join(',')} (expected ${c.outerDscp})`);
      expect(toss.length).toBeGreaterThanOrEqual(5);
      for (const d of dscps) expect(d).toBe(c.outerDscp);
    }, 40_000);
  }

  it('the snapshot reports the class map it applies', async () => {
    const s = await h.status('a');
    const map = Object.fromEntries(s.classes.map((c) => [c.name, c.outerDscp]));
    console.log(`e2e class map in braid status: ${JSON.stringify(map)}`);
    expect(map).toEqual({ control: 48, voice: 46, video: 32, signaling: 24, business: 18, default: 0, bulk: 8 });
  });
});
