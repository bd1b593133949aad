/**
 * FEC cost per group and per packet: Reed-Solomon k+m over 1400-byte shards, for the wasm build
 * of reed-solomon-erasure (DESIGN.md's codec) and the pure TypeScript codec beside it.
 *
 * Stages measured, in pipeline order:
 *   codec-encode    ErasureCodec.encode alone (the Reed-Solomon arithmetic + wasm copies)
 *   encode          FecEncoder: push k packets (copy each), close (pad, checksum, encode), poll m parity
 *   decode-clean    FecDecoder, nothing lost: k onData copies + m onParity (no reconstruction)
 *   decode-recover  FecDecoder, m data packets lost: k-m onData + m onParity + reconstruct + verify
 *   checksum        the group checksum alone (part of encode, and of decode-recover)
 *
 * Each figure is the median of REPS runs (this box is shared; the median resists neighbours), and
 * the load average is recorded with the figures because it moves them by 2x here.
 * Run: node bin/run-ts.js bench/fec.ts [--quick], or `npm run bench -- fec` (bench/run.ts), which
 * also copies the notes this writes to $BENCH_NOTES_FILE into docs/BENCHMARKS.md.
 * Last stdout lines: one JSON object per figure.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import type { ErasureCodec } from '../src/core/fec/codec.ts';
import { createRsCodec } from '../src/core/fec/rs-wasm.ts';
import { createGf256Codec } from '../src/core/fec/gf256.ts';
import { FecEncoder, type FecParityShard } from '../src/core/fec/encoder.ts';
import { FecDecoder, type FecParityFrame } from '../src/core/fec/decoder.ts';
import { newShardBuffer, shardBuffersChecksum } from '../src/core/fec/buffers.ts';

const SHARD_BYTES = 1400;
const SHAPES: ReadonlyArray<readonly [number, number]> = [
  [4, 2],
  [8, 2],
  [16, 4],
];
const quick = process.argv.includes('--quick');
const REPS = quick ? 3 : 9;
const WARMUP_RUNS = 3;
/** Groups per timed run; enough for ~10-50 ms per run. */
const GROUPS = quick ? 100 : 400;

interface Figure {
  bench: string;
  value: number;
  unit: string;
}
const figures: Figure[] = [];
/** Markdown table rows for $BENCH_NOTES_FILE. */
const noteRows: string[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median over REPS of (time of run() / units), in microseconds. `setup` runs untimed before each rep. */
function measure(units: number, run: () => void, setup: () => void = () => {}): number {
  for (let w = 0; w < WARMUP_RUNS; w++) {
    setup();
    run(); // JIT tiers and buffer pools settle before anything is timed
  }
  const samples: number[] = [];
  for (let r = 0; r < REPS; r++) {
    setup();
    const t0 = process.hrtime.bigint();
    run();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / units);
  }
  return median(samples);
}

function packetsFor(k: number): Uint8Array[] {
  return Array.from({ length: k }, (_, i) => {
    const p = new Uint8Array(SHARD_BYTES);
    for (let j = 0; j < p.length; j++) p[j] = (i * 131 + j * 7) & 0xff;
    return p;
  });
}

function copyParity(p: FecParityShard): FecParityFrame {
  return { groupId: p.groupId, index: p.index, k: p.k, m: p.m, lengths: [...p.lengths], checksum: p.checksum, shard: p.shard.slice() };
}

interface GroupFrames {
  data: Array<{ groupId: number; index: number; packet: Uint8Array }>;
  parity: FecParityFrame[];
}

function makeStream(codec: ErasureCodec, k: number, m: number, groups: number): GroupFrames[] {
  const enc = new FecEncoder(codec, { k, m, flushMs: 10 });
  const packets = packetsFor(k);
  const out: GroupFrames[] = [];
  for (let g = 0; g < groups; g++) {
    const gf: GroupFrames = { data: [], parity: [] };
    for (let i = 0; i < k; i++) {
      const s = enc.push(0, packets[i]!, 0)!;
      gf.data.push({ groupId: s.groupId, index: s.index, packet: packets[i]! });
    }
    for (let p = enc.pollParity(); p !== undefined; p = enc.pollParity()) gf.parity.push(copyParity(p));
    out.push(gf);
  }
  return out;
}

function benchCodec(label: string, codec: ErasureCodec, k: number, m: number): void {
  const shape = `${k}+${m}`;
  const prefix = label === 'rs-wasm' ? 'fec' : `fec-${label}`;

  // codec-encode
  const shards = Array.from({ length: k + m }, () => new Uint8Array(2048));
  packetsFor(k).forEach((p, i) => shards[i]!.set(p));
  const codecUs = measure(GROUPS, () => {
    for (let g = 0; g < GROUPS; g++) codec.encode(shards, k, m, SHARD_BYTES);
  });

  // encode: the whole FecEncoder path
  const packets = packetsFor(k);
  const enc = new FecEncoder(codec, { k, m, flushMs: 10 });
  let sink = 0;
  const encodeUs = measure(GROUPS, () => {
    for (let g = 0; g < GROUPS; g++) {
      for (let i = 0; i < k; i++) sink += enc.push(0, packets[i]!, 0)!.index;
      for (let p = enc.pollParity(); p !== undefined; p = enc.pollParity()) sink += p.shard.length;
    }
  });

  // decode, clean and with m data packets lost per group
  const stream = makeStream(codec, k, m, GROUPS);
  const dec = new FecDecoder(codec, { maxGroups: 64 });
  const cleanUs = measure(
    GROUPS,
    () => {
      for (const gf of stream) {
        for (const d of gf.data) sink += dec.onData(0, d.groupId, d.index, undefined, d.packet).length;
        for (const p of gf.parity) sink += dec.onParity(0, p).length;
      }
    },
    () => dec.reset(),
  );
  let recovered = 0;
  const recoverUs = measure(
    GROUPS,
    () => {
      for (const gf of stream) {
        for (let i = m; i < k; i++) {
          const d = gf.data[i]!;
          sink += dec.onData(0, d.groupId, d.index, undefined, d.packet).length;
        }
        for (const p of gf.parity) recovered += dec.onParity(0, p).length;
      }
    },
    () => dec.reset(),
  );
  if (recovered !== (REPS + WARMUP_RUNS) * GROUPS * m) throw new Error(`${label} ${shape}: recovered ${recovered}`);
  if (dec.counters.malformed !== 0) throw new Error(`${label} ${shape}: malformed frames in a clean stream`);

  console.log(
    `${label.padEnd(9)} ${shape.padEnd(5)} codec-encode ${codecUs.toFixed(1).padStart(7)} us/group | ` +
      `encode ${encodeUs.toFixed(1).padStart(7)} us/group ${(encodeUs / k).toFixed(2).padStart(6)} us/pkt | ` +
      `decode-clean ${cleanUs.toFixed(1).padStart(6)} us/group ${(cleanUs / k).toFixed(2).padStart(6)} us/pkt | ` +
      `decode-recover ${recoverUs.toFixed(1).padStart(7)} us/group` + (sink < 0 ? '!' : ''),
  );
  noteRows.push(
    `| ${label} | ${shape} | ${codecUs.toFixed(1)} | ${encodeUs.toFixed(1)} (${(encodeUs / k).toFixed(2)}/pkt) | ` +
      `${cleanUs.toFixed(1)} (${(cleanUs / k).toFixed(2)}/pkt) | ${recoverUs.toFixed(1)} |`,
  );
  figures.push(
    { bench: `${prefix}-${shape}-codec-encode`, value: round(codecUs), unit: 'us/group' },
    { bench: `${prefix}-${shape}-encode`, value: round(encodeUs), unit: 'us/group' },
    { bench: `${prefix}-${shape}-encode-per-packet`, value: round(encodeUs / k), unit: 'us/packet' },
    { bench: `${prefix}-${shape}-decode-clean`, value: round(cleanUs), unit: 'us/group' },
    { bench: `${prefix}-${shape}-decode-clean-per-packet`, value: round(cleanUs / k), unit: 'us/packet' },
    { bench: `${prefix}-${shape}-decode-recover`, value: round(recoverUs), unit: 'us/group' },
  );
}

function benchChecksum(k: number): void {
  const bufs = packetsFor(k).map((p) => {
    const b = newShardBuffer(SHARD_BYTES);
    b.bytes.set(p);
    return b;
  });
  const lengths = new Array<number>(k).fill(SHARD_BYTES);
  let sink = 0;
  const us = measure(GROUPS, () => {
    for (let g = 0; g < GROUPS; g++) sink ^= shardBuffersChecksum(g + 1, lengths, bufs, k, SHARD_BYTES);
  });
  console.log(`checksum  k=${k}  ${us.toFixed(2)} us/group` + (sink === 0.5 ? '!' : ''));
  figures.push({ bench: `fec-checksum-k${k}`, value: round(us), unit: 'us/group' });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const require = createRequire(import.meta.url);
const wasmBytes = readFileSync(require.resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm'));
const cpu = cpus()[0]?.model ?? 'unknown cpu';
const loadBefore = loadavg()[0]!;
console.log(
  `FEC benchmark: ${SHARD_BYTES}-byte shards, median of ${REPS} runs x ${GROUPS} groups; ` +
    `${cpu} x${cpus().length}, node ${process.version}, load average ${loadBefore.toFixed(2)}`,
);
const wasm = createRsCodec(wasmBytes);
const ts = createGf256Codec();
for (const [k, m] of SHAPES) {
  benchCodec('rs-wasm', wasm, k, m);
  benchCodec('gf256-ts', ts, k, m);
}
for (const [k] of SHAPES) benchChecksum(k);

const notesFile = process.env['BENCH_NOTES_FILE'];
if (notesFile !== undefined && notesFile !== '') {
  writeFileSync(
    notesFile,
    [
      `Microseconds, ${SHARD_BYTES}-byte shards, median of ${REPS} runs of ${GROUPS} groups; load average ` +
        `${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after on ${cpus().length} CPUs (figures move ~2x with load). ` +
        '`fec-*` is the wasm build of reed-solomon-erasure (DESIGN.md), `fec-gf256-ts-*` the TypeScript codec; ' +
        'their parity is byte-identical. encode = FecEncoder push x k + parity; decode-recover = m of k data lost.',
      '',
      '| codec | k+m | codec encode /group | FecEncoder /group | decode, nothing lost /group | decode, m lost /group |',
      '| --- | --- | --- | --- | --- | --- |',
      ...noteRows,
      '',
    ].join('\n'),
  );
}
for (const f of figures) console.log(JSON.stringify(f));
