/**
 * End-to-end (root), issue 16 acceptance: unmarked UDP on Teams' media ports from a LAN host is
 * classified as voice by the shipped catalogue, shown by `braid status --json`. Two real
 * `braid up` processes in network namespaces, both configured with `rules: [{ catalogue: teams }]`.
 * From site a's namespace a small node program sends unmarked (TOS 0) UDP from port 50004 to
 * site b's TUN address on port 3479 (a Teams client to a transport relay), and the same number to
 * port 443 (not in the catalogue). `braid status --json` on site a must show the voice class's
 * txPackets risen by the Teams packets and the top flow on 50004 in class voice; the port-443
 * flow in class default. Skipped with a printed reason when not root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';

const ROOT = isRoot();
const SKIP = !ROOT ? 'needs root (network namespaces, TUN)' : undefined;
if (SKIP) console.warn(`SKIP test/e2e/teams-rules.e2e.test.ts: ${SKIP}; CI runs it as root`);

const BRAID_BIN = fileURLToPath(new URL('../../bin/braid.js', import.meta.url));
const PACKETS = 100;

/** Sends `count` unmarked 160-byte UDP datagrams from src:srcPort to dst:dstPort, 10 ms apart. */
function senderScript(src: string, srcPort: number, dst: string, dstPort: number, count: number): string {
  return `const s=require('node:dgram').createSocket('udp4');s.bind(${srcPort},'${src}',()=>{let i=0;const t=setInterval(()=>{s.send(Buffer.alloc(160,i),${dstPort},'${dst}');if(++i>=${count}){clearInterval(t);setTimeout(()=>s.close(),200);}},10);});`;
}

describe.skipIf(SKIP !== undefined)('end-to-end: the shipped teams catalogue classifies unmarked Teams media as voice', () => {
  let h: TwoSites;
  beforeAll(async () => {
    h = await startTwoSites({ tag: 'teams', links: ['mpls', 'inet'], extraConfig: { rules: [{ catalogue: 'teams' }] } });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  it(`braid status --json at site a: voice txPackets rise by the ${PACKETS} Teams datagrams, the 50004 flow is voice, the 443 flow default`, async () => {
    const statusJson = async (): Promise<EdgeSnapshot> => {
      const out = await h.topo.execIn('a', [process.execPath, BRAID_BIN, 'status', '--json', '--socket', h.a.controlSocket], { timeoutMs: 20_000 });
      return (JSON.parse(out.stdout) as { version: number; status: EdgeSnapshot }).status;
    };
    const cls = (s: EdgeSnapshot, name: string): number => s.classes.find((c) => c.name === name)?.txPackets ?? 0;
    const before = await statusJson();
    await h.topo.execIn('a', [process.execPath, '-e', senderScript(h.a.tunAddress, 50004, h.b.tunAddress, 3479, PACKETS)], { timeoutMs: 20_000 });
    await h.topo.execIn('a', [process.execPath, '-e', senderScript(h.a.tunAddress, 40000, h.b.tunAddress, 443, PACKETS)], { timeoutMs: 20_000 });
    const after = await statusJson();
    const voice = cls(after, 'voice') - cls(before, 'voice');
    const dflt = cls(after, 'default') - cls(before, 'default');
    const teamsFlow = after.topFlows.find((f) => f.flow.includes(':50004 '));
    const webFlow = after.topFlows.find((f) => f.flow.includes(':40000 '));
    console.log(`e2e teams: braid status --json at a: voice txPackets +${voice}, default +${dflt}; flows: ${teamsFlow?.flow} ${teamsFlow?.class} (${teamsFlow?.packets} pkts); ${webFlow?.flow} ${webFlow?.class} (${webFlow?.packets} pkts)`);
    expect(voice).toBe(PACKETS);
    expect(teamsFlow?.class).toBe('voice');
    expect(teamsFlow?.packets).toBe(PACKETS);
    expect(webFlow?.class).toBe('default');
    // The 443 flow's packets went to default (other background traffic may add to it).
    expect(dflt).toBeGreaterThanOrEqual(PACKETS);
  }, 60_000);
});
