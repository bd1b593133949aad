// Child of native-aead.test.ts: makes 300k AEAD handles and drops them without aeadDestroy, so
// only the finalizers can free their OpenSSL contexts; prints the RSS growth. Run with --expose-gc.
import { loadNative } from '../../../src/io/native.ts';

const native = loadNative();
const key = new Uint8Array(32).fill(7);
const gc = (globalThis as { gc?: () => void }).gc;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r)); // napi finalizers run after the GC pass
  }
};
await settle();
const rss0 = process.memoryUsage().rss;
let created = 0;
for (let round = 0; round < 30; round++) {
  for (let i = 0; i < 10_000; i++) {
    native.aeadCreate(key, i % 2 === 0 ? 'chacha20-poly1305' : 'aes-256-gcm');
    created++;
  }
  await new Promise((r) => setImmediate(r));
}
await settle();
const rssGrowthMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
process.stdout.write(`${JSON.stringify({ created, rssGrowthMiB: Math.round(rssGrowthMiB) })}\n`);
