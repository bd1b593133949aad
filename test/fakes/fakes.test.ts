// Two "edges" talk through the fakes with no OS involved: a trivial forwarder (TUN -> UDP,
// UDP -> TUN) stands in for core/Edge, which the driver will plug in the same way.
import { describe, expect, it } from 'vitest';
import type { TunDevice, PacketBatch } from '../../src/io/tun.ts';
import type { DatagramBatch, UdpEndpoint, UdpLink } from '../../src/io/udp.ts';
import { FakeTun } from './fake-tun.ts';
import { FakeUdpNetwork } from './fake-udp.ts';

const DSCP_EF = 46;

function forward(tun: TunDevice, link: UdpLink, peer: UdpEndpoint): void {
  tun.onPackets((batch: PacketBatch) => {
    for (let i = 0; i < batch.count; i++) link.send(batch.packet(i), peer, DSCP_EF);
  });
  link.onDatagrams((batch: DatagramBatch) => {
    for (let i = 0; i < batch.count; i++) tun.write(batch.datagram(i));
  });
}

function until(predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error('timed out'));
      else setImmediate(check);
    };
    check();
  });
}

describe('fakes: FakeTun + FakeUdpNetwork', () => {
  it('carry packets between two edges in both directions, batched', async () => {
    const network = new FakeUdpNetwork();
    const tunA = new FakeTun({ name: 'a0' });
    const tunB = new FakeTun({ name: 'b0' });
    const linkA = network.createLink('192.0.2.1', 51820);
    const linkB = network.createLink('198.51.100.7');
    forward(tunA, linkA, linkB.endpoint);
    forward(tunB, linkB, linkA.endpoint);

    for (let i = 0; i < 100; i++) tunA.fromLan(Buffer.from(`a->b ${i}`));
    tunB.fromLan(Buffer.from('b->a'));
    await until(() => tunB.toLan.length === 100 && tunA.toLan.length === 1);

    expect(tunB.toLan.map(String)).toEqual(Array.from({ length: 100 }, (_, i) => `a->b ${i}`));
    expect(String(tunA.toLan[0])).toBe('b->a');
    // 100 packets arrive as two batches of at most 64, as from the native reader.
    expect(tunA.counters.rxBatches).toBe(2);
    expect(linkB.counters.rxDatagrams).toBe(100);
  });

  it('report source endpoint and DSCP-as-TOS, and a filter drops datagrams', async () => {
    const network = new FakeUdpNetwork();
    const a = network.createLink('10.0.0.1');
    const b = network.createLink('10.0.0.2', 9000);
    const seen: { from: string; port: number; tos: number; text: string }[] = [];
    b.onDatagrams((batch) => {
      for (let i = 0; i < batch.count; i++) {
        seen.push({
          from: batch.fromAddress(i),
          port: batch.fromPort(i),
          tos: batch.tos(i),
          text: String(batch.datagram(i)),
        });
      }
    });
    network.setFilter(({ bytes }) => String(bytes) !== 'drop me');
    a.send(Buffer.from('keep'), b.endpoint, DSCP_EF);
    a.send(Buffer.from('drop me'), b.endpoint, 0);
    await until(() => seen.length === 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([{ from: '10.0.0.1', port: a.port, tos: DSCP_EF << 2, text: 'keep' }]);
    expect(network.counters.filtered).toBe(1);
  });

  it('poison borrowed views after the callback, so retaining one shows up in tests', async () => {
    const tun = new FakeTun();
    let kept: Uint8Array | undefined;
    let copied: Uint8Array | undefined;
    tun.onPackets((batch) => {
      kept = batch.packet(0);
      copied = Buffer.from(batch.packet(0));
    });
    tun.fromLan(Buffer.from([1, 2, 3]));
    await until(() => kept !== undefined);
    expect([...(copied ?? [])]).toEqual([1, 2, 3]);
    expect([...(kept ?? [])]).toEqual([0xdd, 0xdd, 0xdd]);
  });
});
