/**
 * `braid dash [--socket PATH | -c FILE] [--interval MS]`: the ink dashboard on a running edge.
 * Connects to the control socket first (a missing socket is one line: "is braid up running?"),
 * then subscribes to snapshots; `d` sends drain/undrain on its own short connection. If the edge
 * goes away the dashboard stays, says so in the footer and reconnects.
 */
import { BraidError, ErrorCode } from '../core/errors.ts';
import type { EdgeSnapshot } from '../core/types.ts';
import { controlRequest, subscribeControl, type SubscribeHandlers, type Subscription } from '../control/control-socket.ts';
import type { FeedListener, SnapshotFeed } from '../ui/app.tsx';
import type { DrainHandler } from '../ui/dashboard.tsx';
import { isInteractive, preferReactProductionBuild } from './demo.ts';
import { resolveSocketPath } from './status.ts';

export const DEFAULT_DASH_INTERVAL_MS = 500;
/** Between reconnect attempts after the edge went away (a restart takes a few seconds). */
const RECONNECT_MS = 2000;

/** Snapshots from the control socket; after the first connection it reconnects when the edge restarts. */
export class ControlSocketFeed implements SnapshotFeed {
  private listener: FeedListener | undefined;
  private latest: EdgeSnapshot | undefined;
  private sub: Subscription | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly intervalMs: number,
  ) {}

  /** The first connection; throws the one-line BraidError when the edge is not there. */
  async connect(): Promise<void> {
    this.sub = await subscribeControl(this.path, this.intervalMs, this.handlers());
  }

  start(listener: FeedListener): () => void {
    this.listener = listener;
    this.stopped = false;
    if (this.latest) listener.snapshot(this.latest);
    if (!this.sub) void this.reconnect();
    return () => this.stop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.sub?.close();
    this.sub = undefined;
  }

  private handlers(): SubscribeHandlers {
    return {
      onStatus: (s) => {
        this.latest = s;
        this.listener?.snapshot(s);
      },
      onClose: (e) => {
        this.sub = undefined;
        this.retry(`lost ${this.path}${e ? `: ${e.message}` : ''}`);
      },
    };
  }

  private retry(why: string): void {
    if (this.stopped) return;
    this.listener?.status({ text: `${why}; reconnecting`, level: 'error' });
    this.timer = setTimeout(() => void this.reconnect(), RECONNECT_MS);
  }

  private async reconnect(): Promise<void> {
    try {
      const s = await subscribeControl(this.path, this.intervalMs, this.handlers());
      if (this.stopped) return s.close();
      this.sub = s;
      this.listener?.status(undefined);
    } catch (e) {
      this.retry(e instanceof Error ? e.message : String(e));
    }
  }
}

/**
 * `d` in the dashboard: drain/undrain over its own short connection, so replies never mix with the
 * stream; a path of a hub's peer is drained for that peer only.
 */
export function socketDrainHandler(socketPath: string): DrainHandler {
  return async (link, drained, peer) => {
    const reply = await controlRequest(socketPath, { cmd: drained ? 'drain' : 'undrain', link, ...(peer === undefined ? {} : { peer }) });
    return reply.ok === true ? undefined : (reply.error ?? 'refused');
  };
}

export async function runDash(v: Record<string, string | boolean | undefined>): Promise<number> {
  const socketPath = await resolveSocketPath(v);
  const raw = v.interval;
  const intervalMs = raw === undefined ? DEFAULT_DASH_INTERVAL_MS : Number(raw);
  if (!Number.isFinite(intervalMs) || intervalMs < 100 || intervalMs > 60_000) {
    throw new BraidError(ErrorCode.USAGE, `--interval ${String(raw)}: expected milliseconds from 100 to 60000`, { fix: `e.g. --interval ${DEFAULT_DASH_INTERVAL_MS}` });
  }
  const feed = new ControlSocketFeed(socketPath, intervalMs);
  // Connect before drawing anything: "is braid up running?" belongs on the normal screen.
  await feed.connect();
  try {
    if (!isInteractive()) {
      throw new BraidError(ErrorCode.USAGE, 'braid dash needs an interactive terminal (stdin and stdout a TTY, not CI)', { fix: 'use `braid status` or `braid status --json` in scripts and pipes' });
    }
    preferReactProductionBuild();
    const { runDashboard, colorEnabled } = await import('../ui/index.ts');
    await runDashboard({
      color: colorEnabled(process.env, process.stdout.isTTY),
      feed,
      onDrain: socketDrainHandler(socketPath),
    });
  } finally {
    feed.stop();
  }
  return 0;
}
