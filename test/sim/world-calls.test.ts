// World.at / World.every with enginesViaWorld: the World skips re-reading every site's deadline
// after such a call (the call reached engines only through sendTun, which re-reads its site), so
// a run must be exactly the run without the option: same datagrams, same times, same deliveries.
import { describe, expect, it } from 'vitest';
import { World, type WorldConnectionConfig, type WorldSiteConfig } from '../../sim/world.ts';
import { makePacket } from '../../sim/packets.ts';

function run(enginesViaWorld: boolean): string[] {
  const sites: WorldSiteConfig[] = [{ name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/8'], coversSpokes: true }];
  const connections: WorldConnectionConfig[] = [];
  for (let i = 1; i <= 6; i++) {
    sites.push({ name: `s${i}`, links: ['mpls', 'inet'], prefixes: [`10.1.${i}.0/24`] });
    connections.push({ a: `s${i}.mpls`, b: 'hub.mpls', delayMs: 10 + i, jitterMs: 2, lossRatio: 0.01 }, { a: `s${i}.inet`, b: 'hub.inet', delayMs: 20 + i });
  }
  const w = new World({ seed: 5, sites, connections, insecurePlaintext: true });
  const log: string[] = [];
  w.tap = (site, linkId, bytes, atMs) => log.push(`${atMs} ${site} ${linkId} ${bytes.length}`);
  w.runFor(2000);
  w.every(7, { count: 400, enginesViaWorld }, (k) => {
    const i = 1 + (k % 6);
    w.site(`s${i}`).sendTun(makePacket({ src: [10, 1, i, 5], dst: [10, 0, 0, 5], srcPort: 1000, dstPort: 2000, sizeBytes: 300, dscp: 46, flowId: i, seq: k }));
  });
  w.at(2500, () => w.site('hub').sendTun(makePacket({ src: [10, 0, 0, 5], dst: [10, 1, 3, 5], srcPort: 1, dstPort: 2, sizeBytes: 900, flowId: 99, seq: 1 })), { enginesViaWorld });
  w.runFor(5000);
  for (const s of w.sites) log.push(`${s.name} delivered ${s.deliveredCount}: ${s.delivered.map((d) => d.atMs).join(',')}`);
  return log;
}

describe('World scheduled calls with enginesViaWorld', () => {
  it('run exactly as without the option when they reach engines through sendTun', () => {
    const plain = run(false);
    const via = run(true);
    const hubDelivered = Number(/hub delivered (\d+)/.exec(plain.join('\n'))![1]);
    expect(hubDelivered).toBeGreaterThan(380); // 400 sent, 1% loss on one of two paths
    expect(/s3 delivered 1:/.test(plain.join('\n'))).toBe(true);
    expect(via).toEqual(plain);
  });
});
