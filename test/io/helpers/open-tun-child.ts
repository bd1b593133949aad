// Child process for tun.test.ts and tun-queues.test.ts: tries openTun (argv: name, queues) and
// prints the outcome as one JSON line. Run without CAP_NET_ADMIN to check the permission error a
// non-root operator would see, without CAP_BPF to check the TUN queues' fallback.
import { openTun } from '../../../src/io/tun.ts';

const name = process.argv[2] ?? 'brt-perm0';
const queues = Number(process.argv[3] ?? 1);
try {
  const tun = await openTun({ name, mtuBytes: 1400, queues });
  const { queuesError } = tun;
  const got = tun.queues;
  tun.close();
  process.stdout.write(`${JSON.stringify({ ok: true, queues: got, ...(queuesError ? { queuesError } : {}) })}\n`);
} catch (error) {
  const { code, osCode, message } = error as { code?: string; osCode?: string; message: string };
  process.stdout.write(`${JSON.stringify({ ok: false, code, osCode, message })}\n`);
}
