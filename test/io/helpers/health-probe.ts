// Runs one HealthTarget (ICMP echo bound to an interface) and prints its changes as JSON lines.
// usage: health-probe.ts INTERFACE TARGET DURATION_MS
import { HealthTarget } from '../../../src/io/health.ts';

const [ifname, target, durS] = process.argv.slice(2);
const h = new HealthTarget({
  interface: ifname!,
  target: target!,
  intervalMs: 200,
  timeoutMs: 400,
  failuresToDown: 3,
  onChange: (reachable, detail) => console.log(JSON.stringify({ atMs: Date.now(), reachable, detail })),
});
h.start();
setTimeout(() => {
  h.close();
}, Math.min(Number(durS), 60_000));
