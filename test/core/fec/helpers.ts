// Shared by the FEC tests: loading the wasm build the way the I/O shell will, and running a
// stream of packets through encoder -> lossy, reordering network -> decoder.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErasureCodec } from '../../../src/core/fec/codec.ts';
import { createRsCodec } from '../../../src/core/fec/rs-wasm.ts';
import { createGf256Codec } from '../../../src/core/fec/gf256.ts';
import { FecEncoder, type FecParityShard } from '../../../src/core/fec/encoder.ts';
import { FecDecoder, type FecDecoderConfig, type FecParityFrame } from '../../../src/core/fec/decoder.ts';

export function rsWasmBytes(): Uint8Array {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm'));
}

let wasmCodec: ErasureCodec | undefined;
export function codecs(): Array<[string, ErasureCodec]> {
  wasmCodec ??= createRsCodec(rsWasmBytes());
  return [
    ['rs-wasm', wasmCodec],
    ['gf256-ts', createGf256Codec()],
  ];
}

export interface DataFrame {
  kind: 'data';
  groupId: number;
  index: number;
  packet: Uint8Array;
  /** Position in the original stream. */
  seq: number;
  /** The encoder's nominal k (FecStamp.k), for decoders fed with kHint. */
  k?: number;
}
export interface ParityFrameCopy extends FecParityFrame {
  kind: 'parity';
  lengths: number[];
}
export type Frame = DataFrame | ParityFrameCopy;

/** A parity shard copied out of the encoder's ring (its buffers are reused). */
export function copyParity(p: FecParityShard): ParityFrameCopy {
  return {
    kind: 'parity',
    groupId: p.groupId,
    index: p.index,
    k: p.k,
    m: p.m,
    lengths: [...p.lengths],
    checksum: p.checksum,
    shard: p.shard.slice(),
  };
}

/** Encodes `packets` with (k, m), all at time 0, flushing the tail group at its deadline. */
export function encodeStream(codec: ErasureCodec, k: number, m: number, packets: Uint8Array[]): Frame[] {
  const enc = new FecEncoder(codec, { k, m, flushMs: 5 });
  const frames: Frame[] = [];
  const drain = (): void => {
    for (let p = enc.pollParity(); p !== undefined; p = enc.pollParity()) frames.push(copyParity(p));
  };
  packets.forEach((packet, seq) => {
    const stamp = enc.push(0, packet, seq % 3);
    if (stamp === undefined) throw new Error('unprotected');
    frames.push({ kind: 'data', groupId: stamp.groupId, index: stamp.index, packet: packet.slice(), seq, k: stamp.k });
    drain();
  });
  // Flush as the Edge does: on each deadline nextDeadlineMs reports (a group on pace to fill k
  // may move its deadline once, FecEncoderConfig.maxFlushMs).
  for (let deadline = enc.nextDeadlineMs(); deadline !== undefined; deadline = enc.nextDeadlineMs()) enc.onTimeout(deadline);
  drain();
  return frames;
}

export interface Delivery {
  groupId: number;
  index: number;
  packet: Uint8Array;
  recovered: boolean;
  /** Position in `frames` of the frame whose processing delivered it. */
  at: number;
}

/** Feeds frames to a decoder the way the Edge will (isDelivered check, data first, then recoveries). */
export function decodeFrames(
  codec: ErasureCodec,
  frames: readonly Frame[],
  config: FecDecoderConfig = {},
  nowMs = 0,
  useKHint = false,
): { dec: FecDecoder; delivered: Delivery[] } {
  const dec = new FecDecoder(codec, config);
  const delivered: Delivery[] = [];
  frames.forEach((f, at) => {
    if (f.kind === 'data') {
      if (dec.isDelivered(f.groupId, f.index)) return;
      delivered.push({ groupId: f.groupId, index: f.index, packet: f.packet, recovered: false, at });
      for (const r of dec.onData(nowMs, f.groupId, f.index, useKHint ? f.k : undefined, f.packet)) {
        delivered.push({ ...r, recovered: true, at });
      }
    } else {
      for (const r of dec.onParity(nowMs, f)) delivered.push({ ...r, recovered: true, at });
    }
  });
  return { dec, delivered };
}

export function key(groupId: number, index: number): string {
  return `${groupId}/${index}`;
}
