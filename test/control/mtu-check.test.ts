import { describe, expect, it } from 'vitest';
import { checkTunMtu, readInterfaceMtu, type MtuCheckLink } from '../../src/control/mtu-check.ts';

const links: MtuCheckLink[] = [
  { index: 0, name: 'mpls', interface: 'eth1', family: 4 },
  { index: 1, name: 'lte', interface: 'wwan0', family: 4 },
  { index: 2, name: 'v6', interface: 'eth3', family: 6 },
];
const mtus: Record<string, number> = { eth1: 1500, wwan0: 1428, eth3: 1500 };
const read = (n: string): number | undefined => mtus[n];

describe('braid check: tun.mtu against the links', () => {
  it('1440 on 1500-byte links (issue 13: 7 Mbit/s) warns for every link, with the overhead and the fix', () => {
    const w = checkTunMtu(1440, links, read);
    expect(w.map((x) => x.maxTunMtuBytes)).toEqual([1413, 1341, 1393]);
    expect(w[0]!.field).toBe('tun.mtu');
    expect(w[0]!.message).toBe(
      'tun.mtu 1440 + 87 bytes of overlay overhead = 1527 exceeds links[0] mpls (eth1, MTU 1500, IPv4 underlay): inner packets above 1413 bytes cannot cross it in one datagram',
    );
    expect(w[0]!.fix).toBe("set tun.mtu to 1413 or less, or raise eth1's MTU to 1527");
  });

  it('a tun.mtu that fits every link gives no warning; an unreadable interface is skipped', () => {
    expect(checkTunMtu(1300, links, read)).toEqual([]);
    expect(checkTunMtu(1500, [{ index: 0, name: 'x', interface: 'nope0', family: 4 }], read)).toEqual([]);
  });

  it('with FEC, a tun.mtu that fits data but not parity warns about parity', () => {
    const w = checkTunMtu(1400, [links[0]!], read, 16);
    expect(w).toHaveLength(1);
    expect(w[0]!.maxTunMtuBytes).toBe(1372);
    expect(w[0]!.message).toContain('FEC parity');
  });

  it('reads the loopback MTU from sysfs', () => {
    expect(readInterfaceMtu('lo')).toBeGreaterThanOrEqual(1500);
    expect(readInterfaceMtu('brt-none-such')).toBeUndefined();
  });
});
