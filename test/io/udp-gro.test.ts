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
});
