// Fires random and mutated datagrams at HOST:PORT[,HOST:PORT...] from many source ports, bounded
// in count and time. The mutated ones start from valid Braid envelopes, so they get past the
// first bytes and exercise the deeper decoder.
// usage: udp-fuzz.ts TARGETS COUNT MAX_DURATION_MS SEED [MAX_PER_SECOND]
// (MAX_PER_SECOND paces the flood so a slow receiver, e.g. an edge on the sanitized addon, reads
// every datagram instead of the kernel dropping most of them; default: as fast as it goes.)
import dgram from 'node:dgram';
import { SeededRng } from '../../src/core/rng.ts';
import { encodeDataDatagram, encodeEnvelope, encodeFrame } from '../../src/core/wire/codec.ts';

const [targetsS, countS, durS, seedS, rateS] = process.argv.slice(2);
const maxPerSecond = rateS === undefined ? Infinity : Math.max(1, Number(rateS));
const targets = targetsS!.split(',').map((t) => ({ host: t.split(':')[0]!, port: Number(t.split(':')[1]) }));
const count = Math.min(Number(countS), 1_000_000);
const maxMs = Math.min(Number(durS), 120_000);
const rng = new SeededRng(Number(seedS ?? 1));
const seeds: Uint8Array[] = [
  encodeDataDatagram(0, 0, 1, 77, new Uint8Array(300).fill(0x45)),
  encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: encodeFrame({ kind: 'probe', probe: { link: 0, seq: 5, txUs: 1234, dscp: 46 } }) }),
  encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: encodeFrame({ kind: 'control', control: { hello: { link: 2, linkName: 'x', site: 'y' } } }) }),
];
const socks = Array.from({ length: 16 }, () => dgram.createSocket('udp4'));
const start = Date.now();
let sent = 0;
function make(): Uint8Array {
  const r = rng.nextU32() % 4;
  if (r === 0) {
    const b = new Uint8Array(rng.nextU32() % 1500);
    rng.fillBytes(b);
    return b;
  }
  const base = seeds[rng.nextU32() % seeds.length]!;
  const b = base.slice(0, rng.nextU32() % 4 === 0 ? rng.nextU32() % (base.length + 1) : base.length);
  const flips = 1 + (rng.nextU32() % 6);
  for (let i = 0; i < flips && b.length > 0; i++) b[rng.nextU32() % b.length] = rng.nextU32() & 0xff;
  return b;
}
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const allowed = Math.min(500, Math.floor(((Date.now() - start + 2) * maxPerSecond) / 1000) - sent);
    for (let i = 0; i < allowed && sent < count; i++, sent++) {
      const t = targets[sent % targets.length]!;
      socks[sent % socks.length]!.send(make(), t.port, t.host);
    }
    if (sent >= count || Date.now() - start > maxMs) return resolve();
    setTimeout(tick, 2);
  };
  tick();
});
await new Promise((r) => setTimeout(r, 200));
for (const s of socks) s.close();
console.log(JSON.stringify({ sent, ms: Date.now() - start }));
