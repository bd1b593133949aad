/**
 * External health target per WAN link: ICMP echo through raw-socket, bound to the link's interface
 * (SO_BINDTODEVICE), so "the ISP is down" can be told apart from "the peer is down". When Braid
 * hears nothing from the peer on a link but the target still answers, the problem is the peer
 * (or the path to it); when the target is silent too, it is the link itself.
 *
 * Contract: start() sends one echo every intervalMs; a target is `unreachable` after
 * failuresToDown echoes in a row went unanswered within timeoutMs, `reachable` again at the first
 * answer. onChange fires only on changes. close() is idempotent. Needs root or CAP_NET_RAW:
 * creating the monitor throws a one-line BraidError otherwise.
 */
import { createRequire } from 'node:module';
import { BraidError, ErrorCode } from '../core/errors.ts';

interface RawSocket {
  on(event: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, address: string, cb: (err: Error | null, bytes: number) => void): void;
  setOption(level: number, option: number, value: Buffer, length: number): void;
  close(): void;
}

interface RawSocketModule {
  createSocket(options: { protocol: number }): RawSocket;
  Protocol: { ICMP: number };
  SocketLevel: { SOL_SOCKET: number };
  SocketOption: { SO_BINDTODEVICE: number };
  createChecksum(...buffers: (Buffer | { buffer: Buffer; offset: number; length: number })[]): number;
  writeChecksum(buf: Buffer, offset: number, checksum: number): Buffer;
}

export interface HealthTargetOptions {
  /** The link's interface: echoes leave through it only. */
  interface: string;
  /** IPv4 address to ping (an ISP gateway or a public anycast resolver on a real box). */
  target: string;
  intervalMs?: number;
  timeoutMs?: number;
  failuresToDown?: number;
  onChange: (reachable: boolean, detail: string) => void;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;

export class HealthTarget {
  private readonly sock: RawSocket;
  private readonly raw: RawSocketModule;
  private readonly id: number;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private outstanding = new Map<number, number>();
  private failures = 0;
  reachable: boolean | undefined;
  lastRttMs: number | undefined;
  private closed = false;

  constructor(private readonly opts: HealthTargetOptions) {
    const require = createRequire(import.meta.url);
    this.raw = require('raw-socket') as RawSocketModule;
    try {
      this.sock = this.raw.createSocket({ protocol: this.raw.Protocol.ICMP });
      const dev = Buffer.from(opts.interface + '\0');
      this.sock.setOption(this.raw.SocketLevel.SOL_SOCKET, this.raw.SocketOption.SO_BINDTODEVICE, dev, dev.length);
    } catch (e) {
      throw new BraidError(ErrorCode.PERMISSION, `health target ${opts.target} on ${opts.interface}: ${(e as Error).message}`, {
        fix: 'run as root or with CAP_NET_RAW, or remove healthTarget from the link',
        cause: e,
      });
    }
    // The ICMP identifier ties replies to this monitor: several links may ping the same target.
    this.id = (process.pid ^ (Math.random() * 0xffff)) & 0xffff;
    this.sock.on('message', (buf, source) => this.onMessage(buf, source));
    this.sock.on('error', () => undefined); // per-packet errors show up as missed replies
  }

  start(): void {
    const interval = this.opts.intervalMs ?? 1000;
    this.timer = setInterval(() => this.tick(), interval);
    this.tick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.sock.close();
  }

  private tick(): void {
    const now = Date.now();
    const timeout = this.opts.timeoutMs ?? 1000;
    for (const [seq, sentAt] of this.outstanding) {
      if (now - sentAt >= timeout) {
        this.outstanding.delete(seq);
        this.failures++;
        if (this.failures >= (this.opts.failuresToDown ?? 3) && this.reachable !== false) {
          this.reachable = false;
          this.opts.onChange(false, `${this.opts.target} via ${this.opts.interface}: ${this.failures} echoes unanswered`);
        }
      }
    }
    if (this.outstanding.size > 16) this.outstanding.clear(); // limit on everything
    this.seq = (this.seq + 1) & 0xffff;
    const pkt = Buffer.alloc(16);
    pkt[0] = ICMP_ECHO_REQUEST;
    pkt.writeUInt16BE(this.id, 4);
    pkt.writeUInt16BE(this.seq, 6);
    pkt.writeDoubleBE(now, 8);
    this.raw.writeChecksum(pkt, 2, this.raw.createChecksum(pkt));
    this.outstanding.set(this.seq, now);
    this.sock.send(pkt, 0, pkt.length, this.opts.target, () => undefined);
  }

  private onMessage(buf: Buffer, source: string): void {
    // Raw ICMP sockets deliver the IP header too.
    const ihl = (buf[0]! & 0x0f) * 4;
    if (buf.length < ihl + 8 || source !== this.opts.target) return;
    if (buf[ihl] !== ICMP_ECHO_REPLY || buf.readUInt16BE(ihl + 4) !== this.id) return;
    const seq = buf.readUInt16BE(ihl + 6);
    const sentAt = this.outstanding.get(seq);
    if (sentAt === undefined) return;
    this.outstanding.delete(seq);
    this.lastRttMs = Date.now() - sentAt;
    this.failures = 0;
    if (this.reachable !== true) {
      this.reachable = true;
      this.opts.onChange(true, `${this.opts.target} via ${this.opts.interface}: answering (${this.lastRttMs} ms)`);
    }
  }
}
