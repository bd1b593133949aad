/** The event log: state changes with their reasons, newest first (limited rows show the latest). */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import type { EdgeEvent } from '../../core/types.ts';
import { paint } from '../ansi.ts';
import { cell, fmtUptime } from '../format.ts';
import { eventColor, type Theme } from '../theme.ts';

export function EventLog(props: { events: readonly EdgeEvent[]; maxRows: number; theme: Theme }): ReactElement {
  const { events, maxRows, theme } = props;
  const shown = events.slice(-Math.max(0, maxRows)).reverse();
  if (shown.length === 0 && maxRows > 0) return <Text>{paint(theme, '  no events yet', { dim: true })}</Text>;
  return (
    <Box flexDirection="column">
      {shown.map((e, i) => (
        <Text key={i} wrap="truncate">
          {paint(theme, '  ' + cell(fmtUptime(e.atMs), 8, true) + '  ', { dim: true }) + paint(theme, e.message, { color: eventColor(e.kind, e.message) })}
        </Text>
      ))}
    </Box>
  );
}
