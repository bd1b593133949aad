// The live-edge datagram fuzzer for the ASan run (scripts/asan/run.sh): two real `braid up`
// processes in network namespaces (sim/e2e.ts, names prefixed brt-), 100,000 random and mutated
// datagrams (sim/tools/udp-fuzz.ts) at site b's link sockets, then checks that both edges are
// still running, counted the junk as drops, and still carry a ping. No speed or memory bounds
// here: the sanitized addon is several times slower, and the e2e test judges those unsanitized.
// Root only. Prints one JSON line and "N passed, N failed".
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startTwoSites } from '../../sim/e2e.ts';

const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const FUZZ = fileURLToPath(new URL('../../sim/tools/udp-fuzz.ts', import.meta.url));
const COUNT = Number(process.argv[2] ?? 100_000);
/** Paced so the sanitized edge reads every datagram (the kernel would drop most of a burst). */
const PER_SECOND = Number(process.argv[3] ?? 5_000);

const h = await startTwoSites({ tag: `az${process.pid % 10000}` });
let failed = 0;
const check = (ok: boolean, what: string): void => {
  if (!ok) {
    failed++;
    console.error(`asan fuzz: FAILED: ${what}`);
  }
};
try {
  // The overlay must carry traffic before the flood (the sanitized edges start slower): up to 30 tries.
  let up = false;
  for (let i = 0; i < 30 && !up; i++) {
    up = await h.topo.execIn('a', ['ping', '-c', '1', '-W', '1', h.b.tunAddress], { timeoutMs: 10_000 }).then(
      () => true,
      () => false,
    );
  }
  check(up, 'no ping through the overlay before the flood');
  // The edge under test must run the sanitized addon (inherited LD_PRELOAD and BRAID_NATIVE_ADDON).
  const maps = readFileSync(`/proc/${h.b.proc.pid}/maps`, 'utf8');
  const sanitized = process.env.BRAID_NATIVE_ADDON !== undefined && maps.includes(process.env.BRAID_NATIVE_ADDON) && /libasan|clang_rt\.asan/.test(maps);
  check(sanitized, `edge b does not have the sanitized addon mapped (${process.env.BRAID_NATIVE_ADDON})`);
  const before = await h.status('b');
  const targets = h.topo.b.links.map((l) => `${l.address}:51900`).join(',');
  const fuzz = await h.topo.execIn('a', [process.execPath, RUN_TS, FUZZ, targets, String(COUNT), String(Math.ceil((COUNT / PER_SECOND) * 1000) + 30_000), '7', String(PER_SECOND)], { timeoutMs: Math.ceil((COUNT / PER_SECOND) * 1000) + 60_000 });
  await new Promise((r) => setTimeout(r, 500));
  const after = await h.status('b');
  const drops = Object.entries(after.drops).reduce((n, [k, v]) => n + v - ((before.drops as Record<string, number>)[k] ?? 0), 0);
  const ping = await h.topo.execIn('a', ['ping', '-c', '5', '-i', '0.2', '-W', '2', h.b.tunAddress], { timeoutMs: 30_000 }).catch((e: Error) => ({ stdout: e.message, stderr: '' }));
  const sent = (JSON.parse(fuzz.stdout.trim().split('\n').at(-1) ?? '{}') as { sent?: number }).sent ?? 0;
  check(sent === COUNT, `fuzzer sent ${sent} of ${COUNT}`);
  check(h.a.proc.exitCode === null && h.b.proc.exitCode === null, `an edge exited (a ${h.a.proc.exitCode}, b ${h.b.proc.exitCode})\n${h.b.output().slice(-2000)}`);
  // Every junk datagram the edge reads is a counted drop (by reason); fewer means the kernel
  // dropped them before the edge read them, and the fuzzer must be paced slower.
  check(drops >= COUNT * 0.95, `edge b counted only ${drops} drops for ${COUNT} junk datagrams (kernel drops: pace the fuzzer slower)`);
  check(/[1-5] received/.test(ping.stdout), `no ping through the overlay after the flood: ${ping.stdout}`);
  console.log(JSON.stringify({ sent, dropsCounted: drops, pingAfter: /(\d+) received/.exec(ping.stdout)?.[1] ?? '0', edgeRunsSanitizedAddon: sanitized, nativeUdp: h.b.output().includes('"io":"native"') }));
} finally {
  await h.stop();
}
console.log(`${failed === 0 ? 1 : 0} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
