// Child of udp-ipv6.test.ts, run inside its namespace: opens a native link (bind address, DF or
// not), sends one datagram of the given size to ADDRESS:9, waits for the kernel to hand it to
// the device, and prints {sent, error, txPackets} (packets the device sent meanwhile) as JSON.
import { readFileSync } from 'node:fs';
import { NativeUdpLink } from '../../../src/io/udp.ts';

const [bind = '0.0.0.0', to = '127.0.0.1', bytesText = '100', df = 'df'] = process.argv.slice(2);
const txPackets = (): number => Number(readFileSync('/sys/class/net/brt-a/statistics/tx_packets', 'utf8'));
const link = NativeUdpLink.open({ bindAddress: bind, port: 0, dontFragment: df === 'df', gso: false });
const before = txPackets();
const sent = link.send(Buffer.alloc(Number(bytesText)), { address: to, port: 9 }, 0);
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(`${JSON.stringify({ sent, error: link.counters.lastTxError, txPackets: txPackets() - before })}\n`);
link.close();
