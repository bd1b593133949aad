// Child of tun-stats.test.ts, run with `ip netns exec` so that /sys shows the namespace's
// devices. `DEV` prints the device's counters as one JSON line; `DEV send N ADDRESS` first sends
// N UDP datagrams to ADDRESS:9 (inside the namespace) and waits until they are handed over.
import dgram from 'node:dgram';
import { DeviceCounterReader } from '../../../src/io/tun-stats.ts';

const [device = 'lo', verb, count, address] = process.argv.slice(2);
if (verb === 'send') {
  const socket = dgram.createSocket('udp4');
  for (let i = 0; i < Number(count); i++) {
    await new Promise<void>((resolve, reject) => socket.send(Buffer.alloc(100), 9, address, (e) => (e ? reject(e) : resolve())));
  }
  socket.close();
}
const reader = new DeviceCounterReader(device);
process.stdout.write(`${JSON.stringify(reader.read() ?? null)}\n`);
reader.close();
