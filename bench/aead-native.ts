/**
 * Data-plane AEAD per 1400-byte packet: node:crypto (AeadSession, a cipher object per packet)
 * against the native addon's per-key OpenSSL contexts (NativeAead), both ciphers.
 *
 * Stages measured, per cipher and implementation, variants interleaved round by round (so load
 * from other processes on this shared box hits all alike):
 *   seal+open  seal a 1400-byte packet, open it again: the two ends' work for one packet
 *   seal       alone, as the sending edge does it (fresh output per packet, as the core uses it)
 *   open       alone, as the receiving edge does it
 * plus the raw addon call with a caller-owned output buffer (the floor: no output allocation).
 * Best (minimum) of ROUNDS, median printed alongside; figures are us per packet.
 *
 * Run: node bin/run-ts.js bench/aead-native.ts (or npm run bench -- aead-native). Needs the addon.
 */
import { randomFillSync } from 'node:crypto';
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { AeadSession, DATA_AAD_LENGTH, writeDataAad, type Aead } from '../src/core/crypto/transport.ts';
import type { DataCipher } from '../src/core/crypto/types.ts';
import { NativeAead } from '../src/io/native-aead.ts';
import { loadNative } from '../src/io/native.ts';

const PACKET_BYTES = 1400;
const ROUNDS = 15;
const ITERATIONS = 4000;

const native = loadNative();
if (!native.aeadAvailable) throw new Error('this Node exports no OpenSSL EVP symbols to addons: nothing to measure');

const key = randomFillSync(new Uint8Array(32));
const plaintext = randomFillSync(new Uint8Array(PACKET_BYTES));
const aad = writeDataAad(new Uint8Array(DATA_AAD_LENGTH), 1, 0x12345678, 0);

interface Variant {
  name: string;
  body: (i: number) => void;
}
const variants: Variant[] = [];
const CIPHERS: [DataCipher, string][] = [
  ['chacha20-poly1305', 'chacha'],
  ['aes-256-gcm', 'aesgcm'],
];
for (const [cipher, short] of CIPHERS) {
  for (const [impl, make] of [
    ['node', () => new AeadSession(key, cipher)],
    ['native', () => new NativeAead(native, key, cipher)],
  ] as [string, () => Aead][]) {
    const sender = make();
    const receiver = make();
    const sealed = Array.from({ length: 1000 }, (_, i) => sender.seal(i, plaintext, aad));
    let counter = 1000;
    variants.push({
      name: `aead-seal-open-${short}-${impl}`,
      body: () => {
        const c = counter++;
        if (receiver.open(c, sender.seal(c, plaintext, aad), aad) === null) throw new Error('open failed');
      },
    });
    variants.push({ name: `aead-seal-${short}-${impl}`, body: () => void sender.seal(counter++, plaintext, aad) });
    variants.push({ name: `aead-open-${short}-${impl}`, body: (i) => void receiver.open(i % 1000, sealed[i % 1000]!, aad) });
  }
  const handle = native.aeadCreate(key, cipher);
  const out = new Uint8Array(PACKET_BYTES + 16);
  const back = new Uint8Array(PACKET_BYTES);
  let counter = 0;
  variants.push({
    name: `aead-seal-open-${short}-native-raw`,
    body: () => {
      const c = counter++;
      native.aeadSeal(handle, c, plaintext, aad, out);
      if (native.aeadOpen(handle, c, out, aad, back) !== PACKET_BYTES) throw new Error('open failed');
    },
  });
}

for (const v of variants) for (let i = 0; i < 2000; i++) v.body(i);
const samples = variants.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  variants.forEach((v, k) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) v.body(i);
    samples[k]!.push(Number(process.hrtime.bigint() - start) / 1000 / ITERATIONS);
  });
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
process.stdout.write(`node ${process.version}, ${native.opensslVersion}, ${cpus()[0]?.model ?? 'unknown cpu'} x${cpus().length}, ${PACKET_BYTES}-byte packets, best of ${ROUNDS} rounds of ${ITERATIONS}\n\n`);
const best = new Map<string, { best: number; median: number }>();
variants.forEach((v, k) => {
  const sorted = samples[k]!.sort((a, b) => a - b);
  best.set(v.name, { best: sorted[0]!, median: sorted[sorted.length >> 1]! });
  process.stdout.write(`${v.name.padEnd(36)} ${r3(sorted[0]!).toString().padStart(8)} us/pkt   median ${r3(sorted[sorted.length >> 1]!)}\n`);
});

const notes: string[] = [
  `One process, ${PACKET_BYTES}-byte packets, 16-byte AAD; best of ${ROUNDS} interleaved rounds (median in brackets), us per packet. ` +
    `\`node\`: AeadSession (node:crypto, a cipher object per packet); \`native\`: NativeAead (src/io/native-aead.ts, OpenSSL contexts kept per key, ` +
    `outputs carved from a shared pool); \`native-raw\`: the addon call with caller-owned output buffers (the floor). ${native.opensslVersion}.`,
  '',
  '| cipher | op | node:crypto | native | speed-up |',
  '| --- | --- | ---: | ---: | ---: |',
];
for (const [, short] of CIPHERS) {
  for (const op of ['seal-open', 'seal', 'open']) {
    const n = best.get(`aead-${op}-${short}-node`)!;
    const f = best.get(`aead-${op}-${short}-native`)!;
    notes.push(`| ${short} | ${op} | ${r3(n.best)} (${r3(n.median)}) | ${r3(f.best)} (${r3(f.median)}) | ${(n.best / f.best).toFixed(1)}x |`);
  }
  const raw = best.get(`aead-seal-open-${short}-native-raw`)!;
  notes.push(`| ${short} | seal-open, raw addon | | ${r3(raw.best)} (${r3(raw.median)}) | |`);
}
const notesFile = process.env.BENCH_NOTES_FILE;
if (notesFile) writeFileSync(notesFile, `${notes.join('\n')}\n`);
process.stdout.write(`\n${notes.join('\n')}\n\n`);
for (const [name, b] of best) {
  if (!name.includes('seal-open')) continue;
  process.stdout.write(`${JSON.stringify({ bench: name, value: r3(b.best), unit: 'us/pkt' })}\n`);
}
