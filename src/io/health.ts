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
import { randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { BraidError, ErrorCode } from '../core/errors.ts';

interface RawSocket {
  on(event: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, address: string, cb: (err: Error | null, bytes: number) => void): void;
  setOption(level: number, option: number, value: Buffer, length: number): void;
  close(): void;
}

export interface RawSocketModule {
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
  /** The raw-socket module (tests pass a fake; default: the raw-socket package). */
  rawSocket?: RawSocketModule;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
/** Random bytes each echo carries; a reply must return them (RFC 792: the data is echoed). */
const ECHO_TOKEN_BYTES = 16;
/** Echoes awaiting a reply (limit on everything). */
const MAX_OUTSTANDING = 16;

interface Outstanding {
  sentAtMs: number;
  token: Buffer;
}

export class HealthTarget {
  private readonly sock: RawSocket;
  private readonly raw: RawSocketModule;
  private readonly id: number;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private outstanding = new Map<number, Outstanding>();
  private failures = 0;
  reachable: boolean | undefined;
  lastRttMs: number | undefined;
  private closed = false;

  constructor(private readonly opts: HealthTargetOptions) {
    this.raw = opts.rawSocket ?? (createRequire(import.meta.url)('raw-socket') as RawSocketModule);
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
    // The ICMP identifier ties replies to this monitor (several links may ping the same target).
    // It, the sequence and a per-echo random token must all come back: anyone off-path who could
    // guess them could fake "the ISP answers" (Math.random is predictable; crypto randomness is not).
    this.id = randomInt(0x10000);
    this.seq = randomInt(0x10000);
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
    for (const [seq, echo] of this.outstanding) {
      if (now - echo.sentAtMs >= timeout) {
        this.outstanding.delete(seq);
        this.failures++;
        if (this.failures >= (this.opts.failuresToDown ?? 3) && this.reachable !== false) {
          this.reachable = false;
          this.opts.onChange(false, `${this.opts.target} via ${this.opts.interface}: ${this.failures} echoes unanswered`);
        }
      }
    }
    if (this.outstanding.size >= MAX_OUTSTANDING) this.outstanding.clear();
    this.seq = (this.seq + 1) & 0xffff;
    const token = randomBytes(ECHO_TOKEN_BYTES);
    const pkt = Buffer.alloc(8 + ECHO_TOKEN_BYTES);
    pkt[0] = ICMP_ECHO_REQUEST;
    pkt.writeUInt16BE(this.id, 4);
    pkt.writeUInt16BE(this.seq, 6);
    token.copy(pkt, 8);
    this.raw.writeChecksum(pkt, 2, this.raw.createChecksum(pkt));
    this.outstanding.set(this.seq, { sentAtMs: now, token });
    this.sock.send(pkt, 0, pkt.length, this.opts.target, () => undefined);
  }

  private onMessage(buf: Buffer, source: string): void {
    // Raw ICMP sockets deliver the IP header too.
    if (buf.length < 20) return;
    const ihl = (buf[0]! & 0x0f) * 4;
    if (ihl < 20 || buf.length < ihl + 8 + ECHO_TOKEN_BYTES || source !== this.opts.target) return;
    if (buf[ihl] !== ICMP_ECHO_REPLY || buf[ihl + 1] !== 0 || buf.readUInt16BE(ihl + 4) !== this.id) return;
    const seq = buf.readUInt16BE(ihl + 6);
    const echo = this.outstanding.get(seq);
    if (echo === undefined) return;
    if (!buf.subarray(ihl + 8, ihl + 8 + ECHO_TOKEN_BYTES).equals(echo.token)) return; // not our echo's data
    this.outstanding.delete(seq);
    this.lastRttMs = Date.now() - echo.sentAtMs;
    this.failures = 0;
    if (this.reachable !== true) {
      this.reachable = true;
      this.opts.onChange(true, `${this.opts.target} via ${this.opts.interface}: answering (${this.lastRttMs} ms)`);
    }
  }
}
