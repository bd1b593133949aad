// The fleet benches' World (bench/fleet.ts figures, bench/fleet-heap.ts attribution): one hub and
// `spokes` spokes with 2 paths each (mpls 10-16 ms, inet 18-28 ms one way), every site a real core
// Endpoint, encrypted with the native AEAD when the addon loads and with the cipher `braid up` picks
// on this box (`cipher: auto`: AES-256-GCM when the CPU has AES instructions, as it tells the World).
import { World, type WorldConnectionConfig, type WorldSiteConfig } from '../../sim/world.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';
import { hasAesInstructions } from '../../src/io/cpu-features.ts';

/** Spoke i (1-based): prefix 10.(1 + i/256).(i%256).0/24; `host` picks the address in it (.5: the LAN host). */
export const spokeAddr = (i: number, host: number): [number, number, number, number] => [10, 1 + (i >> 8), i & 255, host];
export const spokeName = (i: number): string => `s${i}`;

export function buildFleetWorld(spokes: number, seed: number): World {
  const sites: WorldSiteConfig[] = [{ name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/8'], coversSpokes: true }];
  const connections: WorldConnectionConfig[] = [];
  for (let i = 1; i <= spokes; i++) {
    const a = spokeAddr(i, 0);
    sites.push({ name: spokeName(i), role: 'spoke', links: ['mpls', 'inet'], prefixes: [`${a.join('.')}/24`], coversSpokes: false });
    connections.push({ a: `${spokeName(i)}.mpls`, b: 'hub.mpls', delayMs: 10 + (i % 7) }, { a: `${spokeName(i)}.inet`, b: 'hub.inet', delayMs: 18 + (i % 11) });
  }
  const aead = nativeAeadFactory();
  return new World({ seed, recordDeliveries: false, sites, connections, ...(aead ? { aead: aead.factory } : {}), aesAccelerated: hasAesInstructions(process.env.BRAID_CPUINFO) });
}
