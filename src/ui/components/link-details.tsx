/** The links view: one block per link with everything the snapshot knows and wide 60 s sparklines. */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import type { LinkStatus } from '../../control/control-socket.ts';
import type { EdgeSnapshot, LinkSnapshot } from '../../core/types.ts';
import { fmtAgo, fmtBpsLong, fmtBytes, fmtCount, fmtMs, fmtRatio, rttScale, sparkline } from '../format.ts';
import type { HistoryStore } from '../hooks/use-history.ts';
import { stateColor, tint, type Theme } from '../theme.ts';
import { pathKey, pathLabel } from '../peers.ts';

/** Lines one link's block takes; the view shows as many blocks as fit, keeping the selected one. */
export const LINK_BLOCK_ROWS = 6;

/** "  shaped 50.0 Mbit/s, 3 queued, 0 drops" when the core shapes the link. */
function shaper(l: LinkStatus): string {
  if (l.shaperRateBps === undefined) return '';
  return `   shaped ${fmtBpsLong(l.shaperRateBps)}, ${fmtCount(l.queuedPackets ?? 0)} queued, ${fmtCount(l.queueDrops ?? 0)} drops`;
}

function LinkBlock(props: { link: LinkSnapshot; selected: boolean; history: HistoryStore; nowMs: number; columns: number; theme: Theme }): ReactElement {
  const { link: l, selected, history, nowMs, columns, theme } = props;
  const sparkWidth = Math.max(10, Math.min(60, columns - 32));
  const s = history.series(pathKey(l), sparkWidth, nowMs);
  const rtt = rttScale(s.rttMs);
  const lossMax = Math.max(0.05, ...s.lossRatio.filter((x): x is number => x !== undefined));
  const loss = (a: number | undefined, b: number | undefined, c: number | undefined): string => `${fmtRatio(a)} / ${fmtRatio(b)} / ${fmtRatio(c)}`;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate">
        <Text bold>{(selected ? '> ' : '  ') + pathLabel(l)}</Text>
        <Text>{'  '}</Text>
        <Text {...tint(theme, stateColor(l.state))} bold>
          {l.state.toUpperCase()}
        </Text>
        <Text>{`  ${l.tier}  remote ${l.remote}${l.peerLinkName ? ` (peer's ${l.peerLinkName})` : ''}  heard ${fmtAgo(l.lastHeardAgoMs)}  flaps ${l.flaps}${l.suppressed ? ' (damped)' : ''}  flows ${l.flows}`}</Text>
      </Text>
      <Text wrap="truncate">{`    rtt ${fmtMs(l.rttMs)} (p50 ${fmtMs(l.rttP50Ms)}, p99 ${fmtMs(l.rttP99Ms)})  jitter ${fmtMs(l.jitterMs)}`}</Text>
      <Text wrap="truncate">{`    loss 1s/30s/total  tx ${loss(l.txLossRatio, l.txLossLongRatio, l.txLossTotalRatio)}   rx ${loss(l.rxLossRatio, l.rxLossLongRatio, l.rxLossTotalRatio)}`}</Text>
      <Text wrap="truncate">{`    tx ${fmtBpsLong(l.txRateBps)}  ${fmtCount(l.txPackets)} pkts ${fmtBytes(l.txBytes)}   rx ${fmtBpsLong(history.rxRateBps(pathKey(l)))}  ${fmtCount(l.rxPackets)} pkts ${fmtBytes(l.rxBytes)}${shaper(l)}`}</Text>
      <Text wrap="truncate">
        <Text>{'    rtt 60s  '}</Text>
        <Text {...tint(theme, 'cyan')}>{sparkline(s.rttMs, rtt.maxValue, rtt.minValue)}</Text>
        <Text dimColor={theme.color}>{`  ${fmtMs(rtt.minValue || undefined)}..${fmtMs(rtt.maxValue || undefined)}`}</Text>
      </Text>
      <Text wrap="truncate">
        <Text>{'    loss 60s '}</Text>
        <Text {...tint(theme, lossMax > 0.05 ? 'red' : 'yellow')}>{sparkline(s.lossRatio, lossMax)}</Text>
        <Text dimColor={theme.color}>{`  0..${fmtRatio(lossMax)}`}</Text>
      </Text>
    </Box>
  );
}

export function LinkDetails(props: { snapshot: EdgeSnapshot; history: HistoryStore; selected: number; columns: number; maxRows: number; theme: Theme }): ReactElement {
  const { snapshot, selected, maxRows } = props;
  const fit = Math.max(1, Math.floor(maxRows / LINK_BLOCK_ROWS));
  // Scroll so the selected link is always on screen.
  const first = Math.max(0, Math.min(selected - fit + 1, snapshot.links.length - fit));
  const shown = snapshot.links.slice(first, first + fit);
  return (
    <Box flexDirection="column">
      {shown.map((l) => (
        <LinkBlock key={pathKey(l)} link={l} selected={l === snapshot.links[selected]} history={props.history} nowMs={snapshot.nowMs} columns={props.columns} theme={props.theme} />
      ))}
    </Box>
  );
}
