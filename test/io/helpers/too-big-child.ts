// Child of too-big-kernel.test.ts, run inside its namespace: opens a TUN there and a UDP socket
// on the TUN's address. Mode 'icmp' (default): writes into the TUN the ICMP Frag Needed / Packet
// Too Big that src/core/inner/icmp-too-big.ts builds for a packet that socket "sent", first with
// its checksum broken, then intact, and prints what the kernel made of each: the route's PMTU to
// the destination and the ICMP checksum-error counter. Mode 'frag' (IPv4): writes the fragments
// src/core/inner/fragment.ts makes of a 3000-byte datagram to that socket, last first, and prints
// what the socket received after the kernel reassembled them. Mode 'mss': writes a TCP SYN to a
// listening socket with its MSS clamped by src/core/inner/mss.ts and prints whether the kernel
// answered with a SYN-ACK (it drops a segment whose checksum is wrong).
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { openTun } from '../../../src/io/tun.ts';
import net from 'node:net';
import { buildTooBig } from '../../../src/core/inner/icmp-too-big.ts';
import { fragmentIpv4 } from '../../../src/core/inner/fragment.ts';
import { clampTcpMss } from '../../../src/core/inner/mss.ts';
import { newInnerInfo, parseInner } from '../../../src/core/inner.ts';
import { foldChecksum, onesSum } from '../../../src/core/inner/checksum.ts';

const [name = 'brt-tb0', family = '4', mode = 'icmp'] = process.argv.slice(2);
const v6 = family === '6';
const local = v6 ? 'fd00:199:81::1' : '10.199.81.1';
const remote = v6 ? 'fd00:199:81::2' : '10.199.81.2';
const announcedMtu = v6 ? 1350 : 1300;

const tun = await openTun({ name, mtuBytes: 1500, addressCidr: v6 ? undefined : '10.199.81.1/30' });
if (v6) execFileSync('ip', ['addr', 'add', `${local}/64`, 'dev', name, 'nodad']);
const socket = dgram.createSocket(v6 ? 'udp6' : 'udp4');
await new Promise<void>((resolve) => socket.bind(5000, local, resolve));

/** The 1400-byte UDP packet local:5000 -> remote:6000 (DF on IPv4) the error will quote. */
function original(): Uint8Array {
  const p = new Uint8Array(1400);
  const ip = (t: string): number[] => (v6 ? [0xfd, 0, 0x01, 0x99, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, Number(t.slice(-1))] : t.split('.').map(Number));
  if (v6) {
    p.set([0x60, 0, 0, 0, (1400 - 40) >> 8, (1400 - 40) & 255, 17, 64]);
    p.set(ip(local), 8);
    p.set(ip(remote), 24);
  } else {
    p.set([0x45, 0, 1400 >> 8, 1400 & 255, 0, 1, 0x40, 0, 64, 17]);
    p.set(ip(local), 12);
    p.set(ip(remote), 16);
  }
  const udp = v6 ? 40 : 20;
  p.set([5000 >> 8, 5000 & 255, 6000 >> 8, 6000 & 255, (1400 - udp) >> 8, (1400 - udp) & 255], udp);
  return p;
}

function csumErrors(): number {
  if (v6) {
    const line = readFileSync('/proc/net/snmp6', 'utf8').split('\n').find((l) => l.startsWith('Icmp6InCsumErrors'));
    return Number(line?.trim().split(/\s+/)[1] ?? -1);
  }
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Icmp:'));
  const keys = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[keys.indexOf('InCsumErrors')]);
}

const routeMtu = (): string => {
  const out = execFileSync('ip', [v6 ? '-6' : '-4', 'route', 'get', remote], { encoding: 'utf8' });
  return /mtu (\d+)/.exec(out)?.[1] ?? 'none';
};
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

if (mode === 'frag') {
  // remote:6000 -> local:5000, 3000 bytes, no DF, valid UDP checksum (the kernel checks it after reassembly).
  const total = 3000;
  const p = new Uint8Array(total);
  p.set([0x45, 0, total >> 8, total & 255, 0x77, 0x77, 0, 0, 64, 17]);
  p.set([10, 199, 81, 2, 10, 199, 81, 1], 12);
  const udpLen = total - 20;
  p.set([6000 >> 8, 6000 & 255, 5000 >> 8, 5000 & 255, udpLen >> 8, udpLen & 255], 20);
  for (let i = 28; i < total; i++) p[i] = (i * 13) & 255;
  const ipSum = foldChecksum(onesSum(p, 0, 20));
  p[10] = ipSum >> 8;
  p[11] = ipSum & 255;
  const pseudo = onesSum(p, 12, 20) + 17 + udpLen;
  const udpSum = foldChecksum(onesSum(p, 20, total, pseudo)) || 0xffff;
  p[26] = udpSum >> 8;
  p[27] = udpSum & 255;
  const frags = fragmentIpv4(p, 1300)!;
  const got = new Promise<Buffer>((resolve) => socket.once('message', (m) => resolve(m)));
  for (const f of frags.slice().reverse()) tun.write(f);
  const message = await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
  const intact = message !== undefined && message.length === udpLen - 8 && message.every((b, i) => b === ((i + 28) * 13) % 256);
  process.stdout.write(`${JSON.stringify({ fragments: frags.length, received: message?.length ?? 0, intact })}\n`);
  socket.close();
  tun.close();
  process.exit(0);
}

if (mode === 'mss') {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(7000, local, resolve));
  const synAck = new Promise<Uint8Array>((resolve) =>
    tun.onPackets((batch) => {
      for (let i = 0; i < batch.count; i++) {
        const q = batch.packet(i);
        const tcp = v6 ? 40 : 20;
        if ((v6 ? q[6] : q[9]) === 6 && (q[tcp + 13]! & 0x12) === 0x12) resolve(Uint8Array.from(q));
      }
    }),
  );
  // remote:6001 -> local:7000 SYN with MSS 1460, then clamped to 1200.
  const tcpLen = 24;
  const hdr = v6 ? 40 : 20;
  const p = new Uint8Array(hdr + tcpLen);
  const addr = (t: string): number[] => (v6 ? [0xfd, 0, 0x01, 0x99, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, Number(t.slice(-1))] : t.split('.').map(Number));
  if (v6) {
    p.set([0x60, 0, 0, 0, 0, tcpLen, 6, 64]);
    p.set(addr(remote), 8);
    p.set(addr(local), 24);
  } else {
    p.set([0x45, 0, 0, hdr + tcpLen, 0, 2, 0x40, 0, 64, 6]);
    p.set(addr(remote), 12);
    p.set(addr(local), 16);
    const s4 = foldChecksum(onesSum(p, 0, 20));
    p[10] = s4 >> 8;
    p[11] = s4 & 255;
  }
  p.set([6001 >> 8, 6001 & 255, 7000 >> 8, 7000 & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 1460 >> 8, 1460 & 255], hdr);
  const pseudo = v6 ? onesSum(p, 8, 40) + 6 + tcpLen : onesSum(p, 12, 20) + 6 + tcpLen;
  const tSum = foldChecksum(onesSum(p, hdr, hdr + tcpLen, pseudo));
  p[hdr + 16] = tSum >> 8;
  p[hdr + 17] = tSum & 255;
  const clamped = clampTcpMss(p, parseInner(p, newInnerInfo())!, 1200);
  tun.write(p);
  const answer = await Promise.race([synAck, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
  process.stdout.write(`${JSON.stringify({ clamped, mss: (p[hdr + 22]! << 8) | p[hdr + 23]!, synAck: answer !== undefined })}\n`);
  server.close();
  socket.close();
  tun.close();
  process.exit(0);
}

const icmp = buildTooBig(original(), announcedMtu)!;
const broken = icmp.slice();
broken[broken.length - 1] ^= 0xff; // a quoted byte changed: the ICMP checksum no longer matches
const before = { mtu: routeMtu(), csumErrors: csumErrors() };
tun.write(broken);
await settle();
const afterBroken = { mtu: routeMtu(), csumErrors: csumErrors() };
tun.write(icmp);
await settle();
const afterGood = { mtu: routeMtu(), csumErrors: csumErrors() };
process.stdout.write(`${JSON.stringify({ before, afterBroken, afterGood, announcedMtu })}\n`);
socket.close();
tun.close();
