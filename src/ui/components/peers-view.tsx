/**
 * The peers view: every remote site as a row (state, paths up, worst loss and RTT, transfer, latest
 * handshake, flows, forwarded), filtered by name and paged, and under it the links table of the
 * selected peer's paths (where `d` drains one path: that peer, that link).
 */
import type { ReactElement } from 'react';
import { Box, Text } from 'ink';
import type { EdgeSnapshot, PeerSnapshot } from '../../core/types.ts';
import { cell, fmtBytes, fmtCount, fmtMs, fmtRatio, fmtUptime } from '../format.ts';
import type { HistoryStore } from '../hooks/use-history.ts';
import { WIDE_COLUMNS } from '../layout.ts';
import { pageStart, peerListRows, peerPaths } from '../peers.ts';
import type { Color, Theme } from '../theme.ts';
import { LinksTable } from './links-table.tsx';
import { Row, Title, type Cell } from './row.tsx';

const PEER_COLS = { marker: 2, state: 6, paths: 6, loss: 7, rtt: 8, rx: 11, tx: 11, hs: 9, flows: 7, fwd: 9 } as const;

function peerStateColor(s: PeerSnapshot['state']): Color {
  return s === 'up' ? 'green' : s === 'down' ? 'red' : 'gray';
}

function nameWidth(columns: number, wide: boolean): number {
  const c = PEER_COLS;
  const fixed = c.marker + c.state + c.paths + c.loss + c.rtt + c.rx + c.tx + c.hs + (wide ? c.flows + c.fwd : 0);
  return Math.max(8, Math.min(40, columns - fixed - 1));
}

function peerCells(p: PeerSnapshot, selected: boolean, focused: boolean, width: number, wide: boolean): Cell[] {
  const c = PEER_COLS;
  const hs = p.session.established ? (p.session.ageMs === undefined ? 'yes' : fmtUptime(p.session.ageMs)) : 'none';
  const cells: Cell[] = [
    { text: selected ? (focused ? '> ' : '* ') : '  ', bold: true },
    { text: cell(p.name, width - 1) + ' ', bold: selected, inverse: selected && focused },
    { text: cell(p.state.toUpperCase(), c.state - 1) + ' ', color: peerStateColor(p.state), bold: p.state !== 'up' },
    { text: cell(`${p.pathsUp}/${p.paths}`, c.paths - 1, true) + ' ', color: p.pathsUp < p.paths ? 'yellow' : undefined },
    { text: cell(fmtRatio(p.worstTxLossRatio), c.loss - 1, true) + ' ', color: (p.worstTxLossRatio ?? 0) >= 0.01 ? 'yellow' : undefined },
    { text: cell(fmtMs(p.worstRttMs), c.rtt - 1, true) + ' ' },
    { text: cell(fmtBytes(p.rxBytes), c.rx - 1, true) + ' ' },
    { text: cell(fmtBytes(p.txBytes), c.tx - 1, true) + ' ' },
    { text: cell(hs, c.hs - 1, true) + ' ', color: p.session.established ? undefined : 'red' },
  ];
  if (wide) cells.push({ text: cell(fmtCount(p.flows), c.flows - 1, true) + ' ' }, { text: cell(fmtCount(p.forwardedPackets), c.fwd - 1, true) + ' ' });
  return cells;
}

function headerCells(width: number, wide: boolean): Cell[] {
  const c = PEER_COLS;
  const h = (t: string, w: number, right = false): Cell => ({ text: cell(t, w - 1, right) + ' ', bold: true });
  const cells = [{ text: '  ' }, h('peer', width), h('state', c.state), h('paths', c.paths, true), h('loss', c.loss, true), h('rtt', c.rtt, true), h('received', c.rx, true), h('sent', c.tx, true), h('handshk', c.hs, true)];
  if (wide) cells.push(h('flows', c.flows, true), h('forwarded', c.fwd, true));
  return cells;
}

export interface PeersViewProps {
  snapshot: EdgeSnapshot;
  /** The peers after the filter, in snapshot order. */
  peers: readonly PeerSnapshot[];
  total: number;
  filter: string;
  /** Typing into the filter now (a cursor is shown). */
  filtering: boolean;
  selected: number;
  /** 'paths': up/down and d act on the selected peer's paths. */
  focus: 'peers' | 'paths';
  pathSelected: number;
  history: HistoryStore;
  columns: number;
  bodyRows: number;
  theme: Theme;
}

export function PeersView(props: PeersViewProps): ReactElement {
  const { snapshot, peers, columns, bodyRows, theme } = props;
  const wide = columns >= WIDE_COLUMNS;
  const width = nameWidth(columns, wide);
  const sel = Math.min(props.selected, Math.max(0, peers.length - 1));
  const current = peers[sel];
  const paths = peerPaths(snapshot, current?.name);
  const rows = peerListRows(bodyRows, paths.length);
  const first = pageStart(sel, peers.length, rows);
  const shown = peers.slice(first, first + rows);
  const pages = Math.max(1, Math.ceil(peers.length / rows));
  const filterText = props.filtering ? `filter: ${props.filter}_` : props.filter ? `filter: ${props.filter}` : '/ filters';
  const note = `${fmtCount(peers.length)} of ${fmtCount(props.total)}, page ${Math.floor(first / rows) + 1}/${pages}   ${filterText}   pgup/pgdn page, enter paths`;
  return (
    <Box flexDirection="column">
      <Title text="peers" note={note} theme={theme} />
      <Row cells={headerCells(width, wide)} theme={theme} />
      {shown.length === 0 ? <Text wrap="truncate">{props.filter ? `  no peer matches "${props.filter}" (esc clears the filter)` : '  no peers'}</Text> : null}
      {shown.map((p, i) => (
        <Row key={p.name} cells={peerCells(p, first + i === sel, props.focus === 'peers', width, wide)} theme={theme} />
      ))}
      <Text> </Text>
      <Title text={current ? `paths of ${current.name}` : 'paths'} note={props.focus === 'paths' ? 'up/down select, d drains the path to this peer, esc back to the peers' : 'enter selects a path'} theme={theme} />
      {current && paths.length > 0 ? (
        <LinksTable snapshot={{ ...snapshot, links: paths }} history={props.history} selected={props.focus === 'paths' ? props.pathSelected : -1} columns={columns} theme={theme} label={(l) => l.name} />
      ) : (
        <Text wrap="truncate">{current ? '  no endpoint known yet (learned from its first authenticated packet)' : ''}</Text>
      )}
    </Box>
  );
}
