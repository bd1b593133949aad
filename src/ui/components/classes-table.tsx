/**
 * The classes table: per traffic class its DSCPs, strategy, flows, the paths carrying it now,
 * moves, and FEC (k+m, recovered, residual loss) when the core reports FEC for the class.
 */
import type { ReactElement } from 'react';
import { Box } from 'ink';
import type { ClassStatus } from '../../control/control-socket.ts';
import { cell, fmtCount, fmtRatio, fmtBytes } from '../format.ts';
import { CLASS_COLS as C, CLASS_DSCP_LABELS, planClassTable, type ClassTablePlan } from '../layout.ts';
import type { Theme } from '../theme.ts';
import { Row, type Cell } from './row.tsx';

export function classCells(c: ClassStatus, plan: ClassTablePlan): Cell[] {
  const idle = c.flows === 0;
  const fec = c.fecK !== undefined && c.fecM !== undefined ? (c.fecM > 0 ? `${c.fecK}+${c.fecM}` : 'idle') : '-';
  const cells: Cell[] = [{ text: '  ' }, { text: cell(c.name, C.name - 1) + ' ', bold: !idle }];
  if (plan.showDscp) cells.push({ text: cell(CLASS_DSCP_LABELS[c.name] ?? '', C.dscp - 1) + ' ' });
  cells.push(
    { text: cell(c.strategy, C.strategy - 1) + ' ' },
    { text: cell(String(c.flows), C.flows - 1, true) + ' ' },
    { text: ' ' + cell(c.activeLinks.length ? c.activeLinks.join(',') : '-', plan.pathsWidth - 2) + ' ', color: c.activeLinks.length ? 'cyan' : undefined },
    { text: cell(String(c.moves), C.moves - 1, true) + ' ', color: c.moves > 0 ? 'yellow' : undefined },
    { text: cell(fmtCount(c.txPackets), C.txPackets - 1, true) + ' ' },
  );
  if (plan.wide) cells.push({ text: cell(fmtBytes(c.txBytes), C.txBytes - 1, true) + ' ' });
  cells.push(
    { text: cell(fec, C.fec - 1, true) + ' ' },
    { text: cell(c.fecRecovered === undefined ? '-' : fmtCount(c.fecRecovered), C.recovered - 1, true) + ' ', color: (c.fecRecovered ?? 0) > 0 ? 'green' : undefined },
    { text: cell(fmtRatio(c.residualLossRatio), C.residual - 1, true), color: (c.residualLossRatio ?? 0) > 0.01 ? 'red' : undefined },
  );
  return cells;
}

export function classHeaderCells(plan: ClassTablePlan): Cell[] {
  const h = (t: string, w: number, right = false): Cell => ({ text: cell(t, w - 1, right) + ' ', bold: true });
  const cells: Cell[] = [{ text: '  ' }, h('class', C.name)];
  if (plan.showDscp) cells.push(h('dscp', C.dscp));
  cells.push(h('strategy', C.strategy), h('flows', C.flows, true), { text: ' ' + cell('paths', plan.pathsWidth - 2) + ' ', bold: true }, h('moves', C.moves, true), h('tx pkts', C.txPackets, true));
  if (plan.wide) cells.push(h('tx bytes', C.txBytes, true));
  cells.push(h('fec', C.fec, true), h('recovered', C.recovered, true), { text: cell('resid', C.residual - 1, true), bold: true });
  return cells;
}

export function ClassesTable(props: { classes: readonly ClassStatus[]; columns: number; theme: Theme; preferDscp?: boolean }): ReactElement {
  const plan = planClassTable(props.columns, props.preferDscp === true);
  return (
    <Box flexDirection="column">
      <Row cells={classHeaderCells(plan)} theme={props.theme} />
      {props.classes.map((c) => (
        <Row key={c.name} cells={classCells(c, plan)} theme={props.theme} dim={c.flows === 0 && c.txPackets === 0} />
      ))}
    </Box>
  );
}
