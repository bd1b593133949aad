/**
 * Where the flows are: flows per link, totals, drops by reason and the session, then the top
 * flows by bytes sent (the snapshot carries the 10 largest; the flow table can hold thousands),
 * each with its class and, when an application rule chose it, the rule in brackets.
 */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import { DROP_REASONS, type EdgeSnapshot, type LinkState } from '../../core/types.ts';
import type { EdgeStatus } from '../../control/control-socket.ts';
import { bondClassText, cell, fmtBpsShort, fmtBytes, fmtCount, flowLinksText, sessionText } from '../format.ts';
import { stateColor, tint, type Theme } from '../theme.ts';
import { pathKey, pathLabel } from '../peers.ts';

export interface FlowRow {
  key: string;
  label: string;
  flows: number;
  state: LinkState;
}

/**
 * One row per path; on a hub (paths name their peer) one per local link with its paths' flows
 * added up, coloured up while any of its paths is up: a thousand peers do not make a thousand rows.
 */
export function flowRows(s: EdgeSnapshot): FlowRow[] {
  if (!s.links.some((l) => l.peer !== undefined)) return s.links.map((l) => ({ key: pathKey(l), label: pathLabel(l), flows: l.flows, state: l.state }));
  const byLink = new Map<string, FlowRow>();
  for (const l of s.links) {
    const r = byLink.get(l.name);
    if (!r) byLink.set(l.name, { key: l.name, label: `${l.name} (all peers)`, flows: l.flows, state: l.state });
    else {
      r.flows += l.flows;
      if (l.state === 'up') r.state = 'up';
    }
  }
  return [...byLink.values()];
}

export function FlowsPanel(props: { snapshot: EdgeSnapshot; columns: number; theme: Theme; topRows?: number }): ReactElement {
  const { snapshot: s, columns, theme } = props;
  const top = (s.topFlows ?? []).slice(0, Math.max(0, props.topRows ?? 0));
  const rows = flowRows(s);
  const nameWidth = Math.min(24, Math.max(6, ...rows.map((r) => r.label.length + 2)));
  const barWidth = Math.max(4, Math.min(50, columns - nameWidth - 16));
  const maxFlows = Math.max(1, ...rows.map((r) => r.flows));
  const drops = DROP_REASONS.filter((r) => (s.drops[r] ?? 0) > 0).map((r) => `${r} ${fmtCount(s.drops[r])}`);
  // The TUN device's kernel drops (braid up adds them): the queue before Braid reads, and after it writes.
  const dev = (s as EdgeStatus).tunDevice;
  const devDrops = dev ? dev.txDropped + dev.rxDropped : 0;
  const devText = dev ? `; tun ${dev.name}: ${fmtCount(dev.txDropped)} queue drops, ${fmtCount(dev.rxDropped)} rx drops` : '';
  // The link sockets' receive-buffer drops (braid up adds them): shown once any socket has some.
  const sockDrops = ((s as EdgeStatus).linkSockets ?? []).filter((l) => l.rxDropped > 0);
  const sockText = sockDrops.length ? `; sockets: ${sockDrops.map((l) => `${l.link} ${fmtCount(l.rxDropped)}`).join(', ')} rcvbuf drops` : '';
  return (
    <Box flexDirection="column">
      {rows.map((r) => (
        <Text key={r.key} wrap="truncate">
          <Text>{'  ' + cell(r.label, nameWidth)}</Text>
          <Text {...tint(theme, stateColor(r.state))}>{'█'.repeat(Math.round((r.flows / maxFlows) * barWidth)).padEnd(barWidth, r.flows > 0 ? ' ' : '·')}</Text>
          <Text>{` ${cell(String(r.flows), 6, true)} flows`}</Text>
        </Text>
      ))}
      <Text wrap="truncate">{`  total ${fmtCount(s.flows)} flows, ${fmtCount(s.flowMoves)} moves; tun in ${fmtCount(s.tunPacketsIn)}, delivered ${fmtCount(s.deliveredPackets)}, duplicates suppressed ${fmtCount(s.duplicatesSuppressed)}`}</Text>
      <Text wrap="truncate" {...tint(theme, drops.length || devDrops || sockDrops.length ? 'yellow' : undefined)}>{`  drops: ${drops.length ? drops.join(', ') : 'none'}${devText}${sockText}`}</Text>
      <Text wrap="truncate" {...tint(theme, s.session?.encrypted && !s.session.established ? 'red' : undefined)}>{`  session: ${sessionText(s.session)}`}</Text>
      {top.length > 0 ? <Text wrap="truncate" {...tint(theme, 'gray')}>{`  ${cell('sent', 11, true)} ${cell('rate', 6, true)}  ${cell('class', 9)} ${cell('links', 10)} flow [rule that chose the class] (top ${top.length} by bytes sent)`}</Text> : null}
      {top.map((f) => (
        <Text key={f.flow} wrap="truncate">{`  ${cell(fmtBytes(f.bytes), 11, true)} ${cell(fmtBpsShort(f.rateBps), 6, true)}  ${cell(f.class, 9)} ${f.bond ? flowLinksText(f) + ' ' : cell(f.links, 10)} ${f.flow}${f.rule !== undefined ? ` [${f.rule}]` : ''}`}</Text>
      ))}
      {(s.bond ?? []).map((b) => (
        <Text key={`bond ${b.peer ?? ''} ${b.class}`} wrap="truncate">{`  bond ${bondClassText(b)}`}</Text>
      ))}
    </Box>
  );
}
