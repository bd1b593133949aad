/**
 * Control socket: a unix socket (mode 0600, root-only) speaking JSON lines, protocol version 1.
 * Requests are one JSON object per line; each gets one JSON line back.
 * The status object is an EdgeSnapshot, documented for scripts in docs/status-schema.json.
 *
 *   {"cmd":"status"}                       -> {"ok":true,"version":1,"status":EdgeSnapshot}
 *   {"cmd":"drain","link":"mpls"}          -> {"ok":true}        take a link out of service
 *   {"cmd":"undrain","link":"mpls"}        -> {"ok":true}
 *   {"cmd":"subscribe","intervalMs":1000}  -> {"ok":true,"version":1,"status":...} at once, then
 *                                             {"status":EdgeSnapshot} every interval (100..60000 ms)
 *                                             and {"event":EdgeEvent} lines, until the client closes
 *   {"cmd":"reload"}                       -> {"ok":true} or {"ok":false,"error":"field: ..."}
 *   anything else                          -> {"ok":false,"error":"..."}
 * Lines are capped at 64 KiB; a client that sends more is disconnected, and so is a subscriber
 * that stops reading (more than 1 MiB waiting), so a stuck `braid dash` cannot grow our memory.
 *
 * Clients: controlRequest (one request, one reply: `braid status`, drain) and subscribeControl
 * (`braid dash`). Both turn "socket missing / nobody listening / not root" into one BraidError line.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { BraidError, ErrorCode } from '../core/errors.ts';
import type { ClassSnapshot, EdgeEvent, EdgeSnapshot, LinkSnapshot } from '../core/types.ts';

export const CONTROL_PROTOCOL_VERSION = 1;
export const DEFAULT_CONTROL_SOCKET = '/run/braid/braid.sock';
const MAX_LINE_BYTES = 64 * 1024;
const MAX_CLIENTS = 32;
/** A subscriber with this much unsent output is not reading: drop it rather than buffer forever. */
const MAX_SUBSCRIBER_BACKLOG_BYTES = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Optional figures the core adds to the snapshot when FEC or QoS is on (declared here too, with
 * the core's names, so the dashboard, `braid status` and the metrics compile and render whether or
 * not a given core reports them). Everything reading them treats "absent" as "not reported".
 */
export interface ClassExtraFields {
  /** Outer DSCP put on this class's underlay packets. */
  outerDscp?: number;
  /** Data packets per FEC group and parity packets per group now (0: FEC idle on clean paths). */
  fecK?: number;
  fecM?: number;
  /** What we send: data packets in FEC groups, parity datagrams and their bytes, parity per data packet. */
  fecProtectedPackets?: number;
  fecParitySent?: number;
  fecParityBytes?: number;
  fecOverheadRatio?: number;
  /** The loss the adaptive controller worked from, and whether it suspects congestion (m capped). */
  fecLossRatio?: number;
  fecCongested?: boolean;
  /** What we receive: data packets rebuilt from parity, known lost with too little parity, bad FEC fields. */
  fecRecovered?: number;
  fecUnrecoverable?: number;
  fecMalformed?: number;
  /** Loss after FEC over the last ~30 s. */
  residualLossRatio?: number;
  /** Shaped links: tail drops of this class, and its mean and largest queueing delay. */
  queueDrops?: number;
  queueDelayAvgMs?: number;
  queueDelayMaxMs?: number;
}
export type ClassStatus = ClassSnapshot & ClassExtraFields;

export interface LinkExtraFields {
  /** Token-bucket rate when the link is shaped. */
  shaperRateBps?: number;
  /** Datagrams waiting in the link's queues now, and tail drops so far (shaped links). */
  queuedPackets?: number;
  queueDrops?: number;
  /** FEC parity datagrams sent on this link. */
  fecParitySent?: number;
}
export type LinkStatus = LinkSnapshot & LinkExtraFields;

export interface ControlHandlers {
  status(): EdgeSnapshot;
  drain(link: string, drained: boolean): string | undefined; // error text, or undefined when done
  reload?(): Promise<string | undefined>;
}

export class ControlServer {
  private readonly server: Server;
  private readonly subscribers = new Set<Socket>();
  private clients = 0;

  private constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
  ) {
    this.server = createServer((sock) => this.onClient(sock));
  }

  static async listen(path: string, handlers: ControlHandlers): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) unlinkSync(path); // a stale socket from a crashed run
    const s = new ControlServer(path, handlers);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    return s;
  }

  /** Pushes an event to subscribers. */
  publishEvent(event: EdgeEvent): void {
    if (this.subscribers.size === 0) return;
    const line = JSON.stringify({ event }) + '\n';
    for (const s of this.subscribers) writeOrDrop(s, line);
  }

  close(): void {
    for (const s of this.subscribers) s.destroy();
    this.server.close();
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  private onClient(sock: Socket): void {
    if (this.clients >= MAX_CLIENTS) {
      sock.end(JSON.stringify({ ok: false, error: 'too many control clients' }) + '\n');
      return;
    }
    this.clients++;
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE_BYTES) {
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line)
          void this.onLine(sock, line, (t) => {
            // A second subscribe on one connection replaces the first instead of leaking its timer.
            if (timer) clearInterval(timer);
            timer = t;
          });
      }
    });
    const done = (): void => {
      this.clients--;
      this.subscribers.delete(sock);
      if (timer) clearInterval(timer);
    };
    sock.once('close', done);
    sock.on('error', () => undefined);
  }

  private async onLine(sock: Socket, line: string, setTimer: (t: NodeJS.Timeout) => void): Promise<void> {
    const reply = (o: object): void => {
      if (!sock.destroyed) sock.write(JSON.stringify(o) + '\n');
    };
    let req: { cmd?: unknown; link?: unknown; intervalMs?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return reply({ ok: false, error: 'not JSON: send one JSON object per line, e.g. {"cmd":"status"}' });
    }
    switch (req.cmd) {
      case 'status':
        return reply({ ok: true, version: CONTROL_PROTOCOL_VERSION, status: this.handlers.status() });
      case 'drain':
      case 'undrain': {
        if (typeof req.link !== 'string') return reply({ ok: false, error: 'link: expected a link name' });
        const err = this.handlers.drain(req.link, req.cmd === 'drain');
        return reply(err ? { ok: false, error: err } : { ok: true });
      }
      case 'reload': {
        if (!this.handlers.reload) return reply({ ok: false, error: 'reload is not supported by this edge' });
        const err = await this.handlers.reload();
        return reply(err ? { ok: false, error: err } : { ok: true });
      }
      case 'subscribe': {
        const interval = typeof req.intervalMs === 'number' ? Math.min(Math.max(req.intervalMs, 100), 60_000) : 1000;
        this.subscribers.add(sock);
        reply({ ok: true, version: CONTROL_PROTOCOL_VERSION, status: this.handlers.status() });
        setTimer(setInterval(() => writeOrDrop(sock, JSON.stringify({ status: this.handlers.status() }) + '\n'), interval));
        return;
      }
      default:
        return reply({ ok: false, error: `unknown cmd ${JSON.stringify(req.cmd)}: expected status, drain, undrain, subscribe or reload` });
    }
  }
}

function writeOrDrop(sock: Socket, line: string): void {
  if (sock.destroyed) return;
  if (sock.writableLength > MAX_SUBSCRIBER_BACKLOG_BYTES) {
    sock.destroy();
    return;
  }
  sock.write(line);
}

// ---- clients ----------------------------------------------------------------------------------

/** One line from the server: a reply ({ok,...}), a subscription snapshot ({status}) or an event. */
export interface ControlMessage {
  ok?: boolean;
  error?: string;
  version?: number;
  status?: EdgeSnapshot;
  event?: EdgeEvent;
}

function unavailable(path: string, e: unknown): BraidError {
  const code = (e as NodeJS.ErrnoException).code;
  const fix = `start the edge with \`braid up -c FILE\`, or point at its socket with --socket PATH or -c FILE`;
  switch (code) {
    case 'ENOENT':
      return new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: not found (is braid up running?)`, { fix, cause: e });
    case 'ECONNREFUSED':
      return new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: nobody is listening (is braid up running?)`, { fix, cause: e });
    case 'EACCES':
    case 'EPERM':
      return new BraidError(ErrorCode.PERMISSION, `control socket ${path}: permission denied (the socket is root-only)`, { fix: 'run it as root, e.g. with sudo', cause: e });
    default:
      return new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: ${(e as Error).message}`, { fix, cause: e });
  }
}

function connectSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const onError = (e: Error): void => reject(unavailable(path, e));
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** Splits a stream into parsed JSON lines; a line that is not JSON ends the stream with an error. */
function onLines(sock: Socket, path: string, onMessage: (m: ControlMessage) => void, onFail: (e: Error) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        onFail(new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: the other end does not speak braid's protocol`, { fix: 'check --socket points at a braid control socket' }));
        sock.destroy();
        return;
      }
      if (msg !== null && typeof msg === 'object') onMessage(msg as ControlMessage);
    }
  });
}

/** Sends one request and returns the first reply line. Throws BraidError when the edge is not there. */
export async function controlRequest(path: string, request: Record<string, unknown>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ControlMessage> {
  const sock = await connectSocket(path);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<ControlMessage>((resolve, reject) => {
      const unhealthy = (what: string): BraidError => new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: ${what}`, { fix: 'check that braid up is healthy (journalctl -u braid)' });
      timer = setTimeout(() => reject(unhealthy(`no reply in ${timeoutMs} ms`)), timeoutMs);
      onLines(sock, path, resolve, reject);
      sock.once('error', (e) => reject(unavailable(path, e)));
      sock.once('close', () => reject(unhealthy('closed before replying')));
      sock.write(JSON.stringify(request) + '\n');
    });
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

export interface Subscription {
  close(): void;
}

export interface SubscribeHandlers {
  onStatus(snapshot: EdgeSnapshot): void;
  onEvent?(event: EdgeEvent): void;
  /** The edge went away (or the stream broke); not called after close(). */
  onClose(error: Error | undefined): void;
}

/**
 * Subscribes to snapshots and events. Resolves once the first snapshot arrived (so a caller can
 * tell "not running" from "running"), with that snapshot already passed to onStatus.
 */
export async function subscribeControl(path: string, intervalMs: number, handlers: SubscribeHandlers): Promise<Subscription> {
  const sock = await connectSocket(path);
  let closedByUs = false;
  let first = true;
  let ended = false;
  return new Promise<Subscription>((resolve, reject) => {
    // 'error' is followed by 'close': report the end of the stream once, with the better reason.
    const end = (e: Error | undefined): void => {
      if (ended) return;
      ended = true;
      sock.destroy();
      if (first) reject(e ?? new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: closed before the first snapshot`, { fix: 'check that braid up is healthy (journalctl -u braid)' }));
      else if (!closedByUs) handlers.onClose(e);
    };
    onLines(
      sock,
      path,
      (m) => {
        if (ended) return;
        if (first) {
          if (m.ok !== true || !m.status) {
            end(new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: subscribe refused: ${m.error ?? 'no status in the reply'}`, { fix: 'run the same braid version for braid up and braid dash' }));
            return;
          }
          first = false;
          handlers.onStatus(m.status);
          resolve({
            close: () => {
              closedByUs = true;
              sock.destroy();
            },
          });
          return;
        }
        if (m.status) handlers.onStatus(m.status);
        else if (m.event) handlers.onEvent?.(m.event);
      },
      end,
    );
    sock.on('error', (e) => end(unavailable(path, e)));
    sock.once('close', () => end(undefined));
    sock.write(JSON.stringify({ cmd: 'subscribe', intervalMs }) + '\n');
  });
}
