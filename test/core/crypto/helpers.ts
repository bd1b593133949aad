/** Test helpers: deterministic Rngs and hex. */
import { Buffer } from 'node:buffer';
import type { Rng } from '../../../src/core/crypto/types.ts';

export { SeededRng } from '../../../src/core/rng.ts';

/** An Rng that hands out fixed byte strings in order (to inject a test vector's ephemeral keys). */
export class ScriptedRng implements Rng {
  private readonly queue: Uint8Array[];

  constructor(...chunks: Uint8Array[]) {
    this.queue = chunks;
  }

  nextU32(): number {
    throw new Error('ScriptedRng only serves fillBytes');
  }

  fillBytes(out: Uint8Array): void {
    const chunk = this.queue.shift();
    if (chunk === undefined || chunk.length !== out.length) throw new Error('ScriptedRng: unexpected request');
    out.set(chunk);
  }
}

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
