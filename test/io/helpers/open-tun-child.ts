// Child process for tun.test.ts: tries openTun and prints the outcome as one JSON line. Run
// without CAP_NET_ADMIN to check the permission error a non-root operator would see.
import { openTun } from '../../../src/io/tun.ts';

const name = process.argv[2] ?? 'brt-perm0';
try {
  const tun = await openTun({ name, mtuBytes: 1400 });
  tun.close();
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
} catch (error) {
  const { code, osCode, message } = error as { code?: string; osCode?: string; message: string };
  process.stdout.write(`${JSON.stringify({ ok: false, code, osCode, message })}\n`);
}
