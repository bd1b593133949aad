/**
 * Control socket: a unix socket (mode 0600, root-only) speaking JSON lines, protocol version 1.
 * Requests are one JSON object per line; each gets one JSON line back.
 *
 *   {"cmd":"status"}                       -> {"ok":true,"version":1,"status":EdgeSnapshot}
 *   {"cmd":"drain","link":"mpls"}          -> {"ok":true}        take a link out of service
 *   {"cmd":"undrain","link":"mpls"}        -> {"ok":true}
 *   {"cmd":"subscribe","intervalMs":1000}  -> a snapshot line every interval, and events as
 *                                             {"event":EdgeEvent} lines, until the client closes
 *   anything else                          -> {"ok":false,"error":"..."}
 * Lines are capped at 64 KiB; a client that sends more is disconnected.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { EdgeEvent, EdgeSnapshot } from '../core/types.ts';

export const CONTROL_PROTOCOL_VERSION = 1;
const MAX_LINE_BYTES = 64 * 1024;
const MAX_CLIENTS = 32;

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
    for (const s of this.subscribers) s.write(line);
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
        if (line) void this.onLine(sock, line, (t) => (timer = t));
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
        setTimer(setInterval(() => reply({ status: this.handlers.status() }), interval));
        return;
      }
      default:
        return reply({ ok: false, error: `unknown cmd ${JSON.stringify(req.cmd)}: expected status, drain, undrain, subscribe or reload` });
    }
  }
}
