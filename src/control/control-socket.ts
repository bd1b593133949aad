/**
 * Control socket: a unix socket (mode 0600, root-only) speaking JSON lines, protocol version 1.
 * Requests are one JSON object per line; each gets one JSON line back.
 * The status object is an EdgeSnapshot, documented for scripts in docs/status-schema.json.
 *
 *   {"cmd":"status"}                       -> {"ok":true,"version":1,"status":EdgeSnapshot}
 *   {"cmd":"drain","link":"mpls"}          -> {"ok":true}        take a link out of service (all peers)
 *   {"cmd":"drain","link":"mpls","peer":"branch-1"}                 only the path to that peer
 *   {"cmd":"undrain","link":"mpls"}        -> {"ok":true}        ("peer" likewise)
 *   {"cmd":"subscribe","intervalMs":1000}  -> {"ok":true,"version":1,"status":...} at once, then
 *                                             {"status":EdgeSnapshot} every interval (100..60000 ms)
 *                                             and {"event":EdgeEvent} lines, until the client closes
 *   {"cmd":"reload"}                       -> {"ok":true} or {"ok":false,"error":"field: ..."}
 *   anything else                          -> {"ok":false,"error":"..."}
 * Lines are capped at 64 KiB; a client that sends more is disconnected. A client's requests are
 * read only as fast as it reads the replies; one with more than 1 MiB of output waiting (a stuck
 * subscriber) is disconnected, so nobody can grow our memory or hold the event loop. A client
 * silent for 10 s is closed (subscribers excepted), and when all 32 slots are taken the least
 * recently active non-subscriber makes room. Snapshots are built once per 100 ms for all readers.
 * Refuses to replace anything at the socket path but a stale socket.
 *
 * Clients: controlRequest (one request, one reply: `braid status`, drain) and subscribeControl
 * (`braid dash`). Both turn "socket missing / nobody listening / not root" into one BraidError line.
 */
import type { RegistryStatus } from './registry-record.ts';
import type { LinkSocketStats } from '../io/udp.ts';
import { chmodSync, lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { BraidError, ErrorCode } from '../core/errors.ts';
import type { ClassSnapshot, EdgeEvent, EdgeSnapshot, LinkSnapshot } from '../core/types.ts';

export const CONTROL_PROTOCOL_VERSION = 1;
export const DEFAULT_CONTROL_SOCKET = '/run/braid/braid.sock';
const MAX_LINE_BYTES = 64 * 1024;
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

/**
 * The TUN device's own kernel counters (`ip -s link show DEV`, src/io/tun-stats.ts), which the
 * shell adds to the snapshot: where packets die before Braid ever sees them (docs/MTU.md says
 * what each means). tx is the site-to-overlay direction (packets Braid reads), rx the other.
 */
export interface TunDeviceStatus {
  name: string;
  /** Packets Braid read from the TUN; packets the kernel dropped because its queue was full (Braid read too slowly). */
  txPackets: number;
  txDropped: number;
  /** Packets Braid wrote into the TUN; packets the kernel dropped after taking them. */
  rxPackets: number;
  rxDropped: number;
  txErrors: number;
  rxErrors: number;
  /** Braid's writes the kernel refused (EAGAIN, EIO while down, EINVAL). */
  writeRefused: number;
  /** Queues the device runs (tun.queues; 1 when the kernel refused more). */
  queues?: number;
  /** TUN offloads (tun.offload): whether they run and what they did. With them the kernel's
   * tx/rx packet counters above count a super-segment as one packet. */
  offload?: TunOffloadStatus;
}

export interface TunOffloadStatus {
  enabled: boolean;
  /** TCP super-segments read from the TUN, and the packets Braid split them into. */
  readSuperSegments: number;
  readSegments: number;
  /** Reads dropped: a malformed vnet header, or headers that contradict it. */
  readDropped: number;
  /** Coalesced super-segments written into the TUN, and the packets inside them. */
  writeSuperSegments: number;
  writeCoalescedPackets: number;
}

/**
 * One link socket as the kernel sees it (braid up; docs/status-schema.json `linkSockets`): drops
 * because its receive buffer was full, the bytes queued now, and what UDP GRO did.
 */
export type LinkSocketStatus = { link: string; port: number } & LinkSocketStats;

/** Fields the shell adds to the core's snapshot. */
export interface StatusExtraFields {
  tunDevice?: TunDeviceStatus;
  /** The link sockets' kernel counters, one per configured link. */
  linkSockets?: LinkSocketStatus[];
  /** The fleet registry (etcd), when `registry:` is configured. */
  registry?: RegistryStatus;
  /** latency.keepWarm (src/io/keep-warm.ts): whether it runs and what it cost. */
  keepWarm?: KeepWarmStatus;
}

export interface KeepWarmStatus {
  /** latency.keepWarm is auto and the start warm-up's pair exists. */
  enabled: boolean;
  /** Pulsing now: inner traffic within the last 3 s. */
  active: boolean;
  /** Pulses so far (one packet through the in-process pair each). */
  pulses: number;
  /** CPU ms spent in them (wall time inside the pulses). */
  busyMs: number;
}
export type EdgeStatus = EdgeSnapshot & StatusExtraFields;

export interface ControlHandlers {
  status(): EdgeSnapshot;
  /** Drains (undrains) `link` for every peer, or only its path to `peer`; error text, or undefined when done. */
  drain(link: string, drained: boolean, peer?: string): string | undefined;
  reload?(): Promise<string | undefined>;
}

/** Limits of one control server; tests shrink them. */
export interface ControlServerOptions {
  /** Clients at once; past it the least recently active non-subscriber is closed to make room. */
  maxClients?: number;
  /** Subscribers at once (fewer than maxClients, so one-shot requests always find room). */
  maxSubscribers?: number;
  /** A client's replies waiting unsent: past it the client is dropped. */
  maxClientBacklogBytes?: number;
  /** A client (not a subscriber) that sends nothing for this long is closed. */
  idleTimeoutMs?: number;
  /** Clock for the shared snapshot (monotonic ms); tests freeze it. */
  nowMs?: () => number;
}

const DEFAULT_MAX_CLIENTS = 32;
const DEFAULT_MAX_SUBSCRIBERS = 16;
/** A client with this much unsent output is not reading: drop it rather than buffer forever. */
const DEFAULT_MAX_CLIENT_BACKLOG_BYTES = 1024 * 1024;
/** `braid status` answers in milliseconds; a client silent this long is holding a slot for nothing. */
const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
/** All readers within one tick share one snapshot (and one JSON.stringify of it). */
const SNAPSHOT_TICK_MS = 100;
/** Input kept from a client whose replies we are waiting to send (reading is paused meanwhile). */
const MAX_PENDING_INPUT_BYTES = 2 * MAX_LINE_BYTES;

interface Client {
  readonly sock: Socket;
  buf: string;
  lastActiveMs: number;
  subscribed: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Lines are handled one at a time, in order (reload is async). */
  busy: boolean;
}

/**
 * Serves the protocol above. Defences (issue 14): each client's replies are written only as fast
 * as it reads them (we stop reading its requests while its replies wait: socket backpressure),
 * a client over its output budget is dropped, silent clients time out and are the first closed
 * when the table is full, and every reader in one tick shares one snapshot.
 */
export class ControlServer {
  private readonly server: Server;
  private readonly clients = new Set<Client>();
  private readonly maxClients: number;
  private readonly maxSubscribers: number;
  private readonly maxBacklogBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly nowMs: () => number;
  private snapshotJson: string | undefined;
  private snapshotAtMs = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
    options: ControlServerOptions,
  ) {
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.maxSubscribers = Math.min(options.maxSubscribers ?? DEFAULT_MAX_SUBSCRIBERS, this.maxClients - 1);
    this.maxBacklogBytes = options.maxClientBacklogBytes ?? DEFAULT_MAX_CLIENT_BACKLOG_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.server = createServer((sock) => this.onClient(sock));
  }

  /**
   * Listens on `path`. A stale socket left by a crashed run is replaced; anything else at the path
   * (a regular file, a symlink, a directory, a socket someone is listening on) is refused, never
   * deleted. The socket is created under a 077 umask, so it is never reachable by others, not even
   * for the moment between listen() and a chmod.
   */
  static async listen(path: string, handlers: ControlHandlers, options: ControlServerOptions = {}): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    await removeStaleSocket(path);
    const s = new ControlServer(path, handlers, options);
    const oldUmask = process.umask(0o077);
    try {
      await new Promise<void>((resolve, reject) => {
        s.server.once('error', reject);
        s.server.listen(path, () => {
          s.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldUmask);
    }
    s.server.on('error', () => undefined);
    chmodSync(path, 0o600); // already 0700 or tighter: drops the meaningless x bit
    return s;
  }

  /** Pushes an event to subscribers. */
  publishEvent(event: EdgeEvent): void {
    let line: string | undefined;
    for (const c of this.clients) {
      if (!c.subscribed) continue;
      line ??= JSON.stringify({ event }) + '\n';
      this.send(c, line);
    }
  }

  /** Forget the shared snapshot (the edge changed in a way the next reader must see). */
  invalidateSnapshot(): void {
    this.snapshotJson = undefined;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  close(): void {
    for (const c of this.clients) c.sock.destroy();
    this.server.close();
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  /** The snapshot as JSON, built at most once per tick for every reader. */
  private statusJson(): string {
    const nowMs = this.nowMs();
    if (this.snapshotJson === undefined || nowMs - this.snapshotAtMs >= SNAPSHOT_TICK_MS || nowMs < this.snapshotAtMs) {
      this.snapshotJson = JSON.stringify(this.handlers.status());
      this.snapshotAtMs = nowMs;
    }
    return this.snapshotJson;
  }

  private onClient(sock: Socket): void {
    sock.on('error', () => undefined);
    if (this.clients.size >= this.maxClients && !this.evictIdlest()) {
      sock.end(JSON.stringify({ ok: false, error: 'too many control clients' }) + '\n');
      return;
    }
    const client: Client = { sock, buf: '', lastActiveMs: this.nowMs(), subscribed: false, timer: undefined, busy: false };
    this.clients.add(client);
    sock.setEncoding('utf8');
    if (this.idleTimeoutMs > 0) {
      sock.setTimeout(this.idleTimeoutMs, () => {
        if (!client.subscribed) sock.destroy();
      });
    }
    sock.on('data', (chunk: string) => {
      client.buf += chunk;
      client.lastActiveMs = this.nowMs();
      void this.pump(client);
    });
    // Replies went out: take the requests we held back.
    sock.on('drain', () => void this.pump(client));
    sock.once('close', () => {
      this.clients.delete(client);
      if (client.timer) clearInterval(client.timer);
    });
  }

  /** Closes the least recently active client that is not a subscriber; false if there is none. */
  private evictIdlest(): boolean {
    let idlest: Client | undefined;
    for (const c of this.clients) {
      if (!c.subscribed && (idlest === undefined || c.lastActiveMs < idlest.lastActiveMs)) idlest = c;
    }
    if (idlest === undefined) return false;
    this.clients.delete(idlest);
    idlest.sock.destroy();
    return true;
  }

  /** Handles buffered request lines while the client keeps up with the replies. */
  private async pump(client: Client): Promise<void> {
    if (client.busy) return;
    client.busy = true;
    try {
      const sock = client.sock;
      while (!sock.destroyed) {
        if (sock.writableNeedDrain) {
          sock.pause(); // backpressure: resumed on 'drain'
          break;
        }
        const nl = client.buf.indexOf('\n');
        if (nl < 0) {
          if (client.buf.length > MAX_LINE_BYTES) sock.destroy();
          else sock.resume();
          break;
        }
        const line = client.buf.slice(0, nl).trim();
        client.buf = client.buf.slice(nl + 1);
        if (line) await this.onLine(client, line);
      }
      if (client.buf.length > MAX_PENDING_INPUT_BYTES + MAX_LINE_BYTES) sock.destroy();
    } finally {
      client.busy = false;
    }
  }

  /** Writes to a client within its output budget; a client over budget is dropped. */
  private send(client: Client, line: string): void {
    const sock = client.sock;
    if (sock.destroyed) return;
    if (sock.writableLength + line.length > this.maxBacklogBytes && sock.writableLength > 0) {
      sock.destroy();
      return;
    }
    sock.write(line);
  }

  private async onLine(client: Client, line: string): Promise<void> {
    const reply = (o: object): void => this.send(client, JSON.stringify(o) + '\n');
    const replyStatus = (): void =>
      this.send(client, `{"ok":true,"version":${CONTROL_PROTOCOL_VERSION},"status":${this.statusJson()}}\n`);
    let req: { cmd?: unknown; link?: unknown; peer?: unknown; intervalMs?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return reply({ ok: false, error: 'not JSON: send one JSON object per line, e.g. {"cmd":"status"}' });
    }
    if (req === null || typeof req !== 'object') return reply({ ok: false, error: 'expected a JSON object, e.g. {"cmd":"status"}' });
    switch (req.cmd) {
      case 'status':
        return replyStatus();
      case 'drain':
      case 'undrain': {
        if (typeof req.link !== 'string') return reply({ ok: false, error: 'link: expected a link name' });
        if (req.peer !== undefined && typeof req.peer !== 'string') return reply({ ok: false, error: 'peer: expected a peer name (or no peer: every peer)' });
        const err = req.peer === undefined ? this.handlers.drain(req.link, req.cmd === 'drain') : this.handlers.drain(req.link, req.cmd === 'drain', req.peer);
        if (!err) this.invalidateSnapshot();
        return reply(err ? { ok: false, error: err } : { ok: true });
      }
      case 'reload': {
        if (!this.handlers.reload) return reply({ ok: false, error: 'reload is not supported by this edge' });
        const err = await this.handlers.reload();
        this.invalidateSnapshot();
        return reply(err ? { ok: false, error: err } : { ok: true });
      }
      case 'subscribe': {
        if (!client.subscribed) {
          let subscribers = 0;
          for (const c of this.clients) if (c.subscribed) subscribers++;
          if (subscribers >= this.maxSubscribers) return reply({ ok: false, error: `too many subscribers (${this.maxSubscribers})` });
        }
        const interval = typeof req.intervalMs === 'number' ? Math.min(Math.max(req.intervalMs, 100), 60_000) : 1000;
        client.subscribed = true;
        client.sock.setTimeout(0); // a subscriber only listens; the output budget polices it instead
        replyStatus();
        // A second subscribe on one connection replaces the first instead of leaking its timer.
        if (client.timer) clearInterval(client.timer);
        client.timer = setInterval(() => this.send(client, `{"status":${this.statusJson()}}\n`), interval);
        return;
      }
      default:
        return reply({ ok: false, error: `unknown cmd ${JSON.stringify(req.cmd)}: expected status, drain, undrain, subscribe or reload` });
    }
  }
}

/**
 * Makes way for our socket at `path`: nothing there, or a socket nobody listens on (a crashed
 * run's leftover, removed). Refuses everything else with a BraidError, deleting nothing.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new BraidError(ErrorCode.CONFIG_INVALID, `control socket ${path}: ${(e as Error).message}`, { field: 'control.socket', cause: e });
  }
  if (!st.isSocket()) {
    const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket';
    throw new BraidError(ErrorCode.CONFIG_INVALID, `control socket ${path}: is ${what}, not a socket; refusing to delete it`, {
      field: 'control.socket',
      fix: 'point control.socket at another path, or move that file away',
    });
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    throw new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${path}: another process is already listening on it`, {
      fix: 'stop the other braid up first, or give this one its own control.socket',
    });
  }
  unlinkSync(path);
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
