/** The ? screen: keys and what the columns mean. */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';

const LINES = [
  'keys',
  '  up/down, k/j   select a link',
  '  d              drain the selected link (asks y to confirm); on a drained link, undrain it',
  '  tab, shift-tab next/previous view: 1 overview, 2 links, 3 classes, 4 events, 5 peers',
  '  1-5            jump to a view',
  '  peers view     / filter by name (enter keeps, esc clears), pgup/pgdn page, enter the',
  '                 peer\'s paths (esc back), d drains the selected path (that peer only)',
  '                 (on a hub the other views name paths peer/link; d drains that path)',
  '  ?              this help (any key closes it)',
  '  q, ctrl-c      quit the dashboard (the edge keeps running)',
  '',
  'link states',
  '  UP        every class within its SLA on this path',
  "  DEGRADED  some class's SLA (loss, rtt, jitter) broken; its flows moved off",
  '  DOWN      nothing heard for 3 probe intervals; comes back after 10 good probes',
  '  DRAINED   taken out of service by an operator (d)',
  '  *         flap damping keeps the path out for now',
  '',
  'columns',
  '  loss tx/rx  what we send (as the peer reports it) / what we receive, over 1 s',
  '  rate tx/rx  send rate (smoothed) / receive rate from the last 2 s of snapshots',
  '  rtt 60s, loss 60s  the last minute; a gap in rtt is time the path was down',
  '  fec k+m     data + parity packets per FEC group; resid = loss left after FEC',
];

export function Help(props: { maxRows: number }): ReactElement {
  return (
    <Box flexDirection="column">
      {LINES.slice(0, Math.max(1, props.maxRows)).map((l, i) => (
        <Text key={i} wrap="truncate" bold={l !== '' && !l.startsWith(' ')}>
          {l || ' '}
        </Text>
      ))}
    </Box>
  );
}
