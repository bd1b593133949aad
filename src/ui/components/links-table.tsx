/** The links table: one row per WAN path with state, RTT, jitter, loss per direction, rates and 60 s sparklines. */
import type { ReactElement } from 'react';
import { Box } from 'ink';
import type { EdgeSnapshot, LinkSnapshot } from '../../core/types.ts';
import { cell, fmtBpsShort, fmtMs, fmtRatio, rttScale, sparkline } from '../format.ts';
import type { HistoryStore } from '../hooks/use-history.ts';
import { LINK_COLS as C, planLinkTable } from '../layout.ts';
import { stateColor, type Theme } from '../theme.ts';
import { pathKey, pathLabel } from '../peers.ts';
import { Row, type Cell } from './row.tsx';

/** Loss sparklines share this floor as their full scale, so 0.2% reads as "low", not "full". */
const LOSS_SCALE_FLOOR_RATIO = 0.05;

function pair(a: string, b: string): string {
  return `${a}/${b}`;
}

export function linkCells(l: LinkSnapshot, selected: boolean, plan: ReturnType<typeof planLinkTable>, history: HistoryStore, nowMs: number, label: string = pathLabel(l)): Cell[] {
  const key = pathKey(l);
  const cells: Cell[] = [
    { text: selected ? '> ' : '  ', bold: true },
    { text: cell(label, plan.nameWidth - 1) + ' ', bold: selected, inverse: selected },
    { text: cell(l.state.toUpperCase() + (l.suppressed ? '*' : ''), C.state - 1) + ' ', color: stateColor(l.state), bold: l.state !== 'up' },
  ];
  if (plan.wide) cells.push({ text: cell(l.tier, C.tier - 1) + ' ' });
  // A down path's RTT and jitter are its last measurements: greyed, not hidden, since they say what it was.
  const stale = l.state === 'down' ? 'gray' : undefined;
  cells.push({ text: cell(fmtMs(l.rttMs), C.rtt - 1, true) + ' ', color: stale });
  if (plan.wide) cells.push({ text: cell(fmtMs(l.rttP99Ms), C.p99 - 1, true) + ' ', color: stale });
  cells.push({ text: cell(fmtMs(l.jitterMs), C.jitter - 1, true) + ' ', color: stale });
  const lossBad = Math.max(l.txLossRatio ?? 0, l.rxLossRatio ?? 0) >= 0.01;
  cells.push({ text: cell(pair(fmtRatio(l.txLossRatio), fmtRatio(l.rxLossRatio)), C.loss - 1, true) + ' ', color: lossBad ? 'yellow' : undefined });
  if (plan.wide) cells.push({ text: cell(pair(fmtRatio(l.txLossLongRatio), fmtRatio(l.rxLossLongRatio)), C.lossLong - 1, true) + ' ' });
  cells.push({ text: cell(pair(fmtBpsShort(l.txRateBps), fmtBpsShort(history.rxRateBps(key))), C.rate - 1, true) + ' ' });
  cells.push({ text: cell(String(l.flows), C.flows - 1, true) + ' ' });
  if (plan.sparkWidth > 0) {
    const s = history.series(key, plan.sparkWidth, nowMs);
    const rtt = rttScale(s.rttMs);
    const lossMax = Math.max(LOSS_SCALE_FLOOR_RATIO, ...s.lossRatio.filter((x): x is number => x !== undefined));
    cells.push({ text: sparkline(s.rttMs, rtt.maxValue, rtt.minValue) + ' ', color: 'cyan' });
    cells.push({ text: sparkline(s.lossRatio, lossMax), color: lossMax > LOSS_SCALE_FLOOR_RATIO ? 'red' : 'yellow' });
  }
  return cells;
}

export function linkHeaderCells(plan: ReturnType<typeof planLinkTable>): Cell[] {
  const h = (t: string, w: number, right = false): Cell => ({ text: cell(t, w - 1, right) + ' ', bold: true });
  const cells: Cell[] = [{ text: '  ' }, h('link', plan.nameWidth), h('state', C.state)];
  if (plan.wide) cells.push(h('tier', C.tier));
  cells.push(h('rtt', C.rtt, true));
  if (plan.wide) cells.push(h('p99', C.p99, true));
  cells.push(h('jitter', C.jitter, true), h('loss tx/rx', C.loss, true));
  if (plan.wide) cells.push(h('30s tx/rx', C.lossLong, true));
  cells.push(h('rate tx/rx', C.rate, true), h('flows', C.flows, true));
  if (plan.sparkWidth > 0) cells.push(h('rtt 1m', plan.sparkWidth + 1), h('loss 1m', plan.sparkWidth + 1));
  return cells;
}

/**
 * `label` names a row (default: the link, "peer/link" on edges with several peers); `maxRows`
 * shows that many paths around the selected one (a hub has a path per peer and link).
 */
export function LinksTable(props: { snapshot: EdgeSnapshot; history: HistoryStore; selected: number; columns: number; theme: Theme; label?: (l: LinkSnapshot) => string; maxRows?: number }): ReactElement {
  const { snapshot, history, selected, columns, theme } = props;
  const label = props.label ?? pathLabel;
  const all = snapshot.links;
  const fit = props.maxRows === undefined ? all.length : Math.max(1, props.maxRows);
  const first = Math.max(0, Math.min(selected - fit + 1, all.length - fit));
  const shown = all.slice(first, first + fit);
  const plan = planLinkTable(columns, shown.map(label));
  return (
    <Box flexDirection="column">
      <Row cells={linkHeaderCells(plan)} theme={theme} />
      {shown.map((l, i) => (
        <Row key={pathKey(l)} cells={linkCells(l, first + i === selected, plan, history, snapshot.nowMs, label(l))} theme={theme} />
      ))}
    </Box>
  );
}
