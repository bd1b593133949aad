// UDP GRO on receive: a UDP GSO train sent over loopback reaches a socket with UDP_GRO as one
// buffer per train, and the addon's reader splits it back into datagrams, in order, each with the
// sender's address, across batch boundaries (a train longer than what is left of a batch opens the
// next one). The same traffic to a socket without GRO must read the same.
import { describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative, type ReaderHandle } from '../../src/io/native.ts';

const native = tryLoadNative();
const skipReason = !native ? `native addon missing: ${nativeLoadError()?.message}` : native.readerOffloadStats === undefined ? 'addon built before offloads' : undefined;
if (skipReason) console.warn(`skipping UDP GRO tests: ${skipReason}`);
const LOOPBACK = 0x7f000001;

/** Datagram seq: its number, then bytes (seq + k) & 255. */
function datagram(seq: number, lengthBytes: number): Buffer {
  const out = Buffer.alloc(lengthBytes);
  out.writeUInt32BE(seq, 0);
  for (let k = 4; k < lengthBytes; k++) out[k] = (seq + k) & 255;
  return out;
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.skipIf(skipReason !== undefined)('UDP GRO (loopback)', () => {
  for (const gro of [true, false]) {
    it(`${gro ? 'with' : 'without'} GRO: GSO trains arrive as their datagrams, in order and intact`, async () => {
      const addon = native!;
      const sender = addon.udpOpen({ bindAddress: '127.0.0.1', port: 0 });
      const receiver = addon.udpOpen({ bindAddress: '127.0.0.1', port: 0, gro, rcvbufBytes: 8 << 20 });
      expect(receiver.gro).toBe(gro);
      const got: { seq: number; length: number; intact: boolean; port: number; family: number }[] = [];
      let batches = 0;
      let reader: ReaderHandle | undefined;
      try {
        reader = addon.startReader(receiver.fd, 'udp', (slab, count, lengths, _addrs, ports, _tos, _addrs6, families) => {
          batches++;
          for (let i = 0; i < count; i++) {
            const d = slab.subarray(i * addon.SLOT_BYTES, i * addon.SLOT_BYTES + lengths[i]!);
            const seq = d.readUInt32BE(0);
            got.push({ seq, length: d.length, intact: d.equals(datagram(seq, d.length)), port: ports[i]!, family: families![i]! });
          }
        });
        // Three sends of 64 datagrams: 63 of 1200 bytes and a 700-byte tail, each one GSO message
        // (a train: a short datagram ends it).
        const perSend = 64;
        let seq = 0;
        for (let send = 0; send < 3; send++) {
          const sizes = Array.from({ length: perSend }, (_, i) => (i === perSend - 1 ? 700 : 1200));
          const parts = sizes.map((n) => datagram(seq++, n));
          const slab = Buffer.concat(parts);
          const offsets = new Uint32Array(perSend);
          let at = 0;
          sizes.forEach((n, i) => {
            offsets[i] = at;
            at += n;
          });
          const sent = addon.udpSendBatch(sender.fd, slab, perSend, offsets, Uint32Array.from(sizes), new Uint32Array(perSend).fill(LOOPBACK), new Uint16Array(perSend).fill(receiver.port), null, 0, true);
          expect(sent).toBe(perSend);
        }
        await until(() => got.length >= 3 * perSend, `${3 * perSend} datagrams`);
        expect(got.length).toBe(3 * perSend);
        expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 3 * perSend }, (_, i) => i));
        expect(got.every((g) => g.intact && g.port === sender.port && g.family === 4)).toBe(true);
        expect(got.map((g) => g.length)).toEqual(got.map((g) => (g.seq % perSend === perSend - 1 ? 700 : 1200)));
        const stats = addon.readerOffloadStats!(reader);
        expect(stats.gro).toBe(gro);
        if (gro) {
          // Trains came whole: fewer buffers than datagrams, and batches stayed full.
          expect(stats.superSegments).toBeGreaterThan(0);
          expect(stats.segments).toBeGreaterThan(stats.superSegments);
        } else {
          expect(stats.superSegments).toBe(0);
        }
        expect(batches).toBeGreaterThanOrEqual(3);
      } finally {
        if (reader) addon.stopReader(reader);
        addon.closeFd(sender.fd);
        addon.closeFd(receiver.fd);
      }
    });
  }

  // Issue 13, RTT under load: while one fd holds a backlog (here 12 GRO trains, 768 datagrams), a
  // datagram on another fd must not wait for all of it. The reader delivers one batch per wake and
  // carries split work on from an idle handle, so the loop serves the other fd between batches.
  // The addon before that (4 rounds a wake, and on without limit while a train was half split)
  // failed this: 4 bulk batches went before the other socket's datagram.
  it('a backlog on one socket does not hold back a datagram on another', async () => {
    const addon = native!;
    const sender = addon.udpOpen({ bindAddress: '127.0.0.1', port: 0 });
    const bulk = addon.udpOpen({ bindAddress: '127.0.0.1', port: 0, gro: true, rcvbufBytes: 8 << 20 });
    const quiet = addon.udpOpen({ bindAddress: '127.0.0.1', port: 0 });
    const readers: ReaderHandle[] = [];
    const order: string[] = [];
    let bulkDatagrams = 0;
    try {
      const perSend = 64;
      const trains = 12;
      const sizes = Array.from({ length: perSend }, () => 1200);
      const slab = Buffer.concat(sizes.map((n, i) => datagram(i, n)));
      const offsets = Uint32Array.from(sizes, (_, i) => i * 1200);
      for (let t = 0; t < trains; t++) {
        const sent = addon.udpSendBatch(sender.fd, slab, perSend, offsets, Uint32Array.from(sizes), new Uint32Array(perSend).fill(LOOPBACK), new Uint16Array(perSend).fill(bulk.port), null, 0, true);
        expect(sent).toBe(perSend);
      }
      const one = datagram(9, 100);
      expect(addon.udpSendBatch(sender.fd, one, 1, Uint32Array.of(0), Uint32Array.of(100), Uint32Array.of(LOOPBACK), Uint16Array.of(quiet.port), null, 0, false)).toBe(1);
      // Both sockets are readable before either reader starts; the bulk one is registered first,
      // so the loop's first turn serves it first.
      readers.push(
        addon.startReader(bulk.fd, 'udp', (_slab, count) => {
          bulkDatagrams += count;
          order.push('bulk');
        }),
      );
      readers.push(addon.startReader(quiet.fd, 'udp', () => order.push('quiet')));
      await until(() => bulkDatagrams >= trains * perSend && order.includes('quiet'), 'every datagram');
      expect(bulkDatagrams).toBe(trains * perSend);
      const before = order.indexOf('quiet');
      expect(before, `bulk batches before the quiet socket's datagram: ${order.join(' ')}`).toBeLessThanOrEqual(2);
      expect(addon.readerOffloadStats!(readers[0]!).superSegments).toBeGreaterThan(0);
    } finally {
      for (const r of readers) addon.stopReader(r);
      for (const fd of [sender.fd, bulk.fd, quiet.fd]) addon.closeFd(fd);
    }
  });
});
