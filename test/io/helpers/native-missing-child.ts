// Child process for native.test.ts: run with BRAID_NATIVE_ADDON pointing at nothing; prints what
// a user without a built addon would see, as one JSON line.
import { loadNative, tryLoadNative } from '../../../src/io/native.ts';
import { openUdpLink } from '../../../src/io/udp.ts';

let thrown: { code?: string; message?: string } = {};
try {
  loadNative();
} catch (error) {
  thrown = { code: (error as { code?: string }).code, message: (error as Error).message };
}
const { link, kind } = await openUdpLink({ bindAddress: '127.0.0.1', port: 0 });
link.close();
process.stdout.write(`${JSON.stringify({ thrown, tryLoad: tryLoadNative() === undefined ? 'undefined' : 'addon', kind })}\n`);
