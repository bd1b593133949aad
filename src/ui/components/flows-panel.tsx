/**
 * Where the flows are. The snapshot has no per-flow list (the flow table can hold thousands),
 * so this shows flows per link and per class, plus totals, drops by reason and the session.
 */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import { DROP_REASONS, type EdgeSnapshot } from '../../core/types.ts';
import { cell, fmtCount, sessionText } from '../format.ts';
import { stateColor, tint, type Theme } from '../theme.ts';

export function FlowsPanel(props: { snapshot: EdgeSnapshot; columns: number; theme: Theme }): ReactElement {
  const { snapshot: s, columns, theme } = props;
  const nameWidth = Math.max(6, ...s.links.map((l) => l.name.length + 2));
  const barWidth = Math.max(4, Math.min(50, columns - nameWidth - 16));
  const maxFlows = Math.max(1, ...s.links.map((l) => l.flows));
  const drops = DROP_REASONS.filter((r) => (s.drops[r] ?? 0) > 0).map((r) => `${r} ${fmtCount(s.drops[r])}`);
  return (
    <Box flexDirection="column">
      {s.links.map((l) => (
        <Text key={l.name} wrap="truncate">
          <Text>{'  ' + cell(l.name, nameWidth)}</Text>
          <Text {...tint(theme, stateColor(l.state))}>{'█'.repeat(Math.round((l.flows / maxFlows) * barWidth)).padEnd(barWidth, l.flows > 0 ? ' ' : '·')}</Text>
          <Text>{` ${cell(String(l.flows), 6, true)} flows`}</Text>
        </Text>
      ))}
      <Text wrap="truncate">{`  total ${fmtCount(s.flows)} flows, ${fmtCount(s.flowMoves)} moves; tun in ${fmtCount(s.tunPacketsIn)}, delivered ${fmtCount(s.deliveredPackets)}, duplicates suppressed ${fmtCount(s.duplicatesSuppressed)}`}</Text>
      <Text wrap="truncate" {...tint(theme, drops.length ? 'yellow' : undefined)}>{`  drops: ${drops.length ? drops.join(', ') : 'none'}`}</Text>
      <Text wrap="truncate" {...tint(theme, s.session?.encrypted && !s.session.established ? 'red' : undefined)}>{`  session: ${sessionText(s.session)}`}</Text>
    </Box>
  );
}
