// Sends `count` small UDP datagrams to HOST:PORT from `flows` distinct source ports (distinct
// 5-tuples), spread over `durationMs`. Used inside a test namespace to exercise every link.
// usage: udp-flows.ts HOST PORT FLOWS COUNT DURATION_MS [DSCP]
import dgram from 'node:dgram';

const [host, portS, flowsS, countS, durS, dscpS] = process.argv.slice(2);
const port = Number(portS);
const flows = Math.min(Number(flowsS), 256);
const count = Math.min(Number(countS), 1_000_000);
const durationMs = Math.min(Number(durS), 60_000);
const dscp = Number(dscpS ?? 0);
const sockets = await Promise.all(
  Array.from({ length: flows }, () => new Promise<dgram.Socket>((resolve) => {
    const s = dgram.createSocket('udp4');
    // node:dgram cannot set TOS; DSCP-marked traffic comes from the native addon (test/io).
    void dscp;
    s.bind(0, () => resolve(s));
  })),
);
const payload = Buffer.alloc(200, 0x5a);
let sent = 0;
const perTick = Math.max(1, Math.ceil(count / Math.max(1, durationMs / 10)));
await new Promise<void>((resolve) => {
  const t = setInterval(() => {
    for (let i = 0; i < perTick && sent < count; i++, sent++) sockets[sent % flows]!.send(payload, port, host);
    if (sent >= count) {
      clearInterval(t);
      setTimeout(resolve, 100);
    }
  }, 10);
});
for (const s of sockets) s.close();
console.log(JSON.stringify({ sent }));
