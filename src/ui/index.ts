/** The ink dashboard (DESIGN.md "Operator surface"): fed only by EdgeSnapshots. */
export { Dashboard, VIEWS, type DashboardProps, type DrainHandler, type StatusLine, type View } from './dashboard.tsx';
export { LiveDashboard, MAX_FPS, runDashboard, type FeedListener, type SnapshotFeed } from './app.tsx';
export { colorEnabled } from './theme.ts';
export { HistoryStore } from './hooks/use-history.ts';
