/**
 * Where the flows are: flows per link, totals, drops by reason and the session, then the top
 * flows by bytes sent (the snapshot carries the 10 largest; the flow table can hold thousands).
 */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import { DROP_REASONS, type EdgeSnapshot } from '../../core/types.ts';
import { cell, fmtBpsShort, fmtBytes, fmtCount, sessionText } from '../format.ts';
import { stateColor, tint, type Theme } from '../theme.ts';
import { pathKey, pathLabel } from '../peers.ts';

export function FlowsPanel(props: { snapshot: EdgeSnapshot; columns: number; theme: Theme; topRows?: number }): ReactElement {
  const { snapshot: s, columns, theme } = props;
  const top = (s.topFlows ?? []).slice(0, Math.max(0, props.topRows ?? 0));
  const nameWidth = Math.min(24, Math.max(6, ...s.links.map((l) => pathLabel(l).length + 2)));
  const barWidth = Math.max(4, Math.min(50, columns - nameWidth - 16));
  const maxFlows = Math.max(1, ...s.links.map((l) => l.flows));
  const drops = DROP_REASONS.filter((r) => (s.drops[r] ?? 0) > 0).map((r) => `${r} ${fmtCount(s.drops[r])}`);
  return (
    <Box flexDirection="column">
      {s.links.map((l) => (
        <Text key={pathKey(l)} wrap="truncate">
          <Text>{'  ' + cell(pathLabel(l), nameWidth)}</Text>
          <Text {...tint(theme, stateColor(l.state))}>{'█'.repeat(Math.round((l.flows / maxFlows) * barWidth)).padEnd(barWidth, l.flows > 0 ? ' ' : '·')}</Text>
          <Text>{` ${cell(String(l.flows), 6, true)} flows`}</Text>
        </Text>
      ))}
      <Text wrap="truncate">{`  total ${fmtCount(s.flows)} flows, ${fmtCount(s.flowMoves)} moves; tun in ${fmtCount(s.tunPacketsIn)}, delivered ${fmtCount(s.deliveredPackets)}, duplicates suppressed ${fmtCount(s.duplicatesSuppressed)}`}</Text>
      <Text wrap="truncate" {...tint(theme, drops.length ? 'yellow' : undefined)}>{`  drops: ${drops.length ? drops.join(', ') : 'none'}`}</Text>
      <Text wrap="truncate" {...tint(theme, s.session?.encrypted && !s.session.established ? 'red' : undefined)}>{`  session: ${sessionText(s.session)}`}</Text>
      {top.length > 0 ? <Text wrap="truncate" {...tint(theme, 'gray')}>{`  ${cell('sent', 11, true)} ${cell('rate', 6, true)}  ${cell('class', 9)} ${cell('links', 10)} flow (top ${top.length} by bytes sent)`}</Text> : null}
      {top.map((f) => (
        <Text key={f.flow} wrap="truncate">{`  ${cell(fmtBytes(f.bytes), 11, true)} ${cell(fmtBpsShort(f.rateBps), 6, true)}  ${cell(f.class, 9)} ${cell(f.links, 10)} ${f.flow}`}</Text>
      ))}
    </Box>
  );
}
