/**
 * The live dashboard: a snapshot feed (control socket, or the demo's simulator) drives the
 * Dashboard. runDashboard owns the terminal: alternate screen, ~10 redraws per second at most,
 * and the terminal restored however the process ends.
 */
import { useEffect, useState, type ReactElement } from 'react';
import { render } from 'ink';
import type { EdgeSnapshot } from '../core/types.ts';
import { Dashboard, type DashboardProps, type StatusLine } from './dashboard.tsx';

/** Redraw cap: a dashboard people read, not a video; keeps a 2-core box's CPU for the tunnel. */
export const MAX_FPS = 10;

export interface FeedListener {
  snapshot(snapshot: EdgeSnapshot): void;
  status(status: StatusLine | undefined): void;
}

/** Where snapshots come from. start() begins delivering to the listener; the result stops it. */
export interface SnapshotFeed {
  start(listener: FeedListener): () => void;
}

export type LiveDashboardProps = Omit<DashboardProps, 'snapshot' | 'status'> & { feed: SnapshotFeed };

export function LiveDashboard(props: LiveDashboardProps): ReactElement {
  const { feed, ...rest } = props;
  const [snapshot, setSnapshot] = useState<EdgeSnapshot | undefined>(undefined);
  const [status, setStatus] = useState<StatusLine | undefined>(undefined);
  useEffect(() => feed.start({ snapshot: setSnapshot, status: setStatus }), [feed]);
  return <Dashboard {...rest} snapshot={snapshot} status={status} />;
}

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[H';
const ALT_SCREEN_OFF = '\x1b[?1049l';

/** Runs the dashboard on the terminal until the user quits (q, ctrl-c). */
export async function runDashboard(props: LiveDashboardProps, stdout: NodeJS.WriteStream = process.stdout): Promise<void> {
  // The alternate screen keeps the operator's scrollback intact, like top and htop.
  const alt = stdout.isTTY === true;
  const restore = (): void => {
    if (alt) stdout.write(ALT_SCREEN_OFF);
  };
  if (alt) stdout.write(ALT_SCREEN_ON);
  process.once('exit', restore);
  try {
    const app = render(<LiveDashboard {...props} />, { stdout, maxFps: MAX_FPS, exitOnCtrlC: true, patchConsole: true });
    await app.waitUntilExit();
  } finally {
    process.off('exit', restore);
    restore();
  }
}
