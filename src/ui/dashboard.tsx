/**
 * The dashboard: renders EdgeSnapshots, nothing else. All UI state (view, selected link, help,
 * a pending drain confirmation, the last notice) lives here at the top; components below are
 * small functions of their props. Five views: overview (links, classes, events), links (one block
 * per link), classes (classes, flows per link, top flows, drops), events, peers (every remote site,
 * filtered and paged, with the links table of the selected peer's paths). On a hub every path is a
 * row "peer/link" and `d` drains that one path (peer, link).
 *
 * It fits 80x24 (every row truncates, sections shrink by priority) and uses a bigger terminal for
 * more columns, longer sparklines and more events. Height is rows-1: ink redraws the whole screen
 * (flicker) when the output is as tall as the terminal.
 */
import { useEffect, useMemo, useRef, useState, type ReactElement } from 'react';
import { Box, Text, useApp, useInput } from 'ink';
import type { ClassStatus } from '../control/control-socket.ts';
import type { EdgeSnapshot } from '../core/types.ts';
import { ClassesTable } from './components/classes-table.tsx';
import { EventLog } from './components/event-log.tsx';
import { FlowsPanel, flowRows } from './components/flows-panel.tsx';
import { Help } from './components/help.tsx';
import { LinkDetails } from './components/link-details.tsx';
import { LinksTable } from './components/links-table.tsx';
import { Title } from './components/row.tsx';
import { fmtCount, fmtUptime } from './format.ts';
import { useLinkHistory } from './hooks/use-history.ts';
import { useTerminalSize } from './hooks/use-terminal-size.ts';
import { tint, type Theme } from './theme.ts';
import { sanitizeStrings } from '../core/sanitize.ts';
import { PeersView } from './components/peers-view.tsx';
import { filterPeers, peerListRows, peerPaths } from './peers.ts';
import type { LinkSnapshot } from '../core/types.ts';

/** Past this many paths the history records only the selected peer's (sparklines cost memory per path). */
export const HISTORY_ALL_PATHS_MAX = 64;
/** Longest peer filter typed. */
const MAX_FILTER_CHARS = 64;

export const VIEWS = ['overview', 'links', 'classes', 'events', 'peers'] as const;
export type View = (typeof VIEWS)[number];

export interface StatusLine {
  text: string;
  level: 'info' | 'warn' | 'error';
}

/**
 * Drains (true) or undrains a link, for every peer or (with `peer`) only the path to that peer;
 * resolves to an error text, or undefined when done.
 */
export type DrainHandler = (link: string, drained: boolean, peer?: string) => Promise<string | undefined> | string | undefined;

/** What `d` acts on: a link, or one peer's path on it. */
interface DrainTarget {
  link: string;
  peer?: string | undefined;
}

function targetText(t: DrainTarget): string {
  return t.peer === undefined ? t.link : `${t.link} to ${t.peer}`;
}

function targetOf(l: LinkSnapshot): DrainTarget {
  return l.peer === undefined ? { link: l.name } : { link: l.name, peer: l.peer };
}

export interface DashboardProps {
  snapshot: EdgeSnapshot | undefined;
  /** The feed's state ("connecting", "disconnected, retrying"); shown in the footer. */
  status?: StatusLine | undefined;
  /** Shown in the header after "braid", e.g. "demo (simulated, 5x)". */
  title?: string | undefined;
  onDrain?: DrainHandler | undefined;
  onQuit?: (() => void) | undefined;
  color?: boolean | undefined;
  /** Fixed size (tests); otherwise the terminal's, following resizes. */
  columns?: number | undefined;
  rows?: number | undefined;
  initialView?: View | undefined;
}

/** Notices (drain results) disappear after this long. */
const NOTICE_MS = 6000;

function levelColor(level: StatusLine['level']): 'green' | 'yellow' | 'red' {
  return level === 'error' ? 'red' : level === 'warn' ? 'yellow' : 'green';
}

function Header(props: { snapshot: EdgeSnapshot | undefined; title: string | undefined; view: View; columns: number; theme: Theme }): ReactElement {
  const s = props.snapshot;
  const drops = s ? Object.values(s.drops).reduce((a, b) => a + b, 0) : 0;
  // No session means no traffic at all: say so where it cannot be missed.
  const noSession = s?.session?.encrypted === true && !s.session.established;
  const left = ['braid', props.title, s ? `site ${s.site}` : undefined, noSession ? 'NO SESSION' : undefined, s ? `t ${fmtUptime(s.nowMs)}` : undefined, s ? `flows ${fmtCount(s.flows)}` : undefined, s ? `moves ${fmtCount(s.flowMoves)}` : undefined, s ? `drops ${fmtCount(drops)}` : undefined]
    .filter((x): x is string => x !== undefined)
    .join('  ');
  const tabs = VIEWS.map((v, i) => ({ v, label: `${i + 1} ${v}` }));
  const wideTabs = tabs.map((t) => (t.v === props.view ? `[${t.label}]` : ` ${t.label} `)).join('');
  const useWide = left.length + 2 + wideTabs.length <= props.columns - 1;
  return (
    <Box width={props.columns - 1} justifyContent="space-between">
      <Text wrap="truncate" bold {...tint(props.theme, noSession ? 'red' : undefined)}>
        {left}
      </Text>
      {useWide ? (
        <Text wrap="truncate">
          {tabs.map((t) =>
            t.v === props.view ? (
              <Text key={t.v} bold inverse={props.theme.color}>{`[${t.label}]`}</Text>
            ) : (
              <Text key={t.v} dimColor={props.theme.color}>{` ${t.label} `}</Text>
            ),
          )}
        </Text>
      ) : (
        <Text wrap="truncate">{`  [${props.view}] tab`}</Text>
      )}
    </Box>
  );
}

function Footer(props: { confirm: DrainTarget | undefined; notice: StatusLine | undefined; status: StatusLine | undefined; theme: Theme }): ReactElement {
  const { theme } = props;
  if (props.confirm) {
    return (
      <Text wrap="truncate" bold {...tint(theme, 'yellow')}>
        {`drain ${targetText(props.confirm)}? its flows move to the other links. y to confirm, any other key cancels`}
      </Text>
    );
  }
  const parts: StatusLine[] = [];
  if (props.status) parts.push(props.status);
  if (props.notice) parts.push(props.notice);
  return (
    <Text wrap="truncate">
      {parts.map((p, i) => (
        <Text key={i} {...tint(theme, levelColor(p.level))}>{`${p.text}  `}</Text>
      ))}
      <Text dimColor={theme.color}>{'up/down select  d drain  tab view  ? help  q quit'}</Text>
    </Text>
  );
}

/** Rows of the overview: links first, then classes (all, or only busy ones), events get the rest. */
export function overviewBudget(bodyRows: number, linkCount: number, classes: readonly ClassStatus[]): { classes: readonly ClassStatus[]; eventRows: number } {
  const fixed = 1 + linkCount + 1 /* blank */ + 1 /* blank */ + 1; /* events title */
  const remaining = bodyRows - fixed;
  if (remaining - (1 + classes.length) >= 3) return { classes, eventRows: remaining - 1 - classes.length };
  const busy = classes.filter((c) => c.flows > 0 || c.activeLinks.length > 0);
  if (busy.length > 0 && remaining - (1 + busy.length) >= 2) return { classes: busy, eventRows: remaining - 1 - busy.length };
  return { classes: [], eventRows: Math.max(1, remaining + 1) };
}

export function Dashboard(props: DashboardProps): ReactElement {
  const { exit } = useApp();
  const { columns, rows } = useTerminalSize({ columns: props.columns, rows: props.rows });
  const theme: Theme = { color: props.color === true };
  // Peer-supplied text (hello site and link names, events quoting them) is escaped before display.
  const snapshot = useMemo(() => (props.snapshot === undefined ? undefined : sanitizeStrings(props.snapshot)), [props.snapshot]);
  const [view, setView] = useState<View>(props.initialView ?? 'overview');
  const [selected, setSelected] = useState(0);
  const [help, setHelp] = useState(false);
  const [confirm, setConfirm] = useState<DrainTarget | undefined>(undefined);
  // Peers view: the name filter (typed after /), the selected peer, and whether keys move in the
  // peer list or in the selected peer's paths.
  const [peerFilter, setPeerFilter] = useState('');
  const [filtering, setFiltering] = useState(false);
  const [peerSel, setPeerSel] = useState(0);
  const [focus, setFocus] = useState<'peers' | 'paths'>('peers');
  const [pathSel, setPathSel] = useState(0);
  const allPeers = snapshot?.peers ?? [];
  const peers = useMemo(() => filterPeers(allPeers, peerFilter), [allPeers, peerFilter]);
  const curPeer = peers[Math.min(peerSel, Math.max(0, peers.length - 1))];
  const curPaths = snapshot ? peerPaths(snapshot, curPeer?.name) : [];
  const pSel = Math.min(pathSel, Math.max(0, curPaths.length - 1));
  // A hub's thousands of paths: sparklines only for the selected peer's.
  const keepAll = (snapshot?.links.length ?? 0) <= HISTORY_ALL_PATHS_MAX;
  const history = useLinkHistory(snapshot, keepAll ? undefined : (l) => curPeer !== undefined && l.peer === curPeer.name);
  const [notice, setNotice] = useState<StatusLine | undefined>(undefined);

  useEffect(() => {
    if (!notice) return;
    const t = setTimeout(() => setNotice(undefined), NOTICE_MS);
    return () => clearTimeout(t);
  }, [notice]);

  const links = snapshot?.links ?? [];
  const sel = Math.min(selected, Math.max(0, links.length - 1));

  const drain = (target: DrainTarget, drained: boolean): void => {
    const verb = drained ? 'drain' : 'undrain';
    const what = targetText(target);
    if (!props.onDrain) {
      setNotice({ text: `${verb} is not available here`, level: 'warn' });
      return;
    }
    setNotice({ text: `${verb} ${what}...`, level: 'info' });
    Promise.resolve()
      .then(() => (target.peer === undefined ? props.onDrain!(target.link, drained) : props.onDrain!(target.link, drained, target.peer)))
      .then(
        (err) => setNotice(err ? { text: `${verb} ${what} failed: ${err}`, level: 'error' } : { text: `${what} ${drained ? 'drained' : 'back in service'}`, level: 'info' }),
        (e: unknown) => setNotice({ text: `${verb} ${what} failed: ${e instanceof Error ? e.message : String(e)}`, level: 'error' }),
      );
  };
  /** d on a path: undraining restores service, so it needs no confirmation; draining can cut traffic. */
  const drainKey = (l: LinkSnapshot | undefined): void => {
    if (!l) return;
    if (l.state === 'drained') drain(targetOf(l), false);
    else setConfirm(targetOf(l));
  };

  // ink re-subscribes the input handler in an effect after each render; keys that arrive before
  // that effect runs would see the previous render's state. Reading it through a ref that every
  // render updates makes each key act on what is on the screen.
  const bodyRowsNow = Math.max(3, rows - 1) - 2;
  const live = useRef({ confirm, help, sel, links, view, filtering, peerFilter, peers, peerSel, focus, pSel, curPaths, bodyRowsNow });
  live.current = { confirm, help, sel, links, view, filtering, peerFilter, peers, peerSel, focus, pSel, curPaths, bodyRowsNow };

  useInput((input, key) => {
    const { confirm, help, sel, links, view, filtering, peerFilter, peers, peerSel, focus, pSel, curPaths, bodyRowsNow } = live.current;
    if (confirm !== undefined) {
      if (input === 'y' || input === 'Y') drain(confirm, true);
      setConfirm(undefined);
      return;
    }
    // Typing a peer filter: every printable key is text; enter keeps the filter, esc clears it.
    if (filtering) {
      if (key.return) setFiltering(false);
      else if (key.escape) {
        setFiltering(false);
        setPeerFilter('');
        setPeerSel(0);
      } else if (key.backspace || key.delete) {
        setPeerFilter(peerFilter.slice(0, -1));
        setPeerSel(0);
      } else if (input && !key.ctrl && !key.meta && !key.tab && !key.upArrow && !key.downArrow && !key.pageUp && !key.pageDown && peerFilter.length < MAX_FILTER_CHARS) {
        setPeerFilter(peerFilter + input.replace(/[^\x20-\x7e\u00a0-\uffff]/gu, ''));
        setPeerSel(0);
      }
      if (!(key.upArrow || key.downArrow || key.pageUp || key.pageDown)) return;
    }
    if (view === 'peers' && !help && input !== 'q') {
      const page = peerListRows(bodyRowsNow, curPaths.length);
      const lastPeer = Math.max(0, peers.length - 1);
      const lastPath = Math.max(0, curPaths.length - 1);
      if (input === '/') {
        setFiltering(true);
        setFocus('peers');
        return;
      }
      if (key.escape && focus === 'paths') return setFocus('peers');
      if (key.escape && peerFilter) {
        setPeerFilter('');
        setPeerSel(0);
        return;
      }
      if (key.return || key.rightArrow) {
        if (curPaths.length > 0) setFocus('paths');
        return;
      }
      if (key.leftArrow) return setFocus('peers');
      if (key.pageDown) return void (setPeerSel(Math.min(lastPeer, peerSel + page)), setFocus('peers'));
      if (key.pageUp) return void (setPeerSel(Math.max(0, peerSel - page)), setFocus('peers'));
      if (key.upArrow || input === 'k') {
        if (focus === 'paths') setPathSel(Math.max(0, pSel - 1));
        else setPeerSel(Math.max(0, Math.min(peerSel, lastPeer) - 1));
        return;
      }
      if (key.downArrow || input === 'j') {
        if (focus === 'paths') setPathSel(Math.min(lastPath, pSel + 1));
        else setPeerSel(Math.min(lastPeer, peerSel + 1));
        return;
      }
      if (input === 'd') {
        if (focus === 'paths') drainKey(curPaths[pSel]);
        else setNotice({ text: 'enter selects a path of this peer; d drains it', level: 'info' });
        return;
      }
    }
    if (input === 'q') {
      props.onQuit?.();
      exit();
      return;
    }
    if (help) {
      setHelp(false);
      return;
    }
    if (input === '?') setHelp(true);
    else if (key.tab) setView((v) => VIEWS[(VIEWS.indexOf(v) + (key.shift ? VIEWS.length - 1 : 1)) % VIEWS.length]!);
    else if (input >= '1' && input <= String(VIEWS.length)) setView(VIEWS[Number(input) - 1]!);
    else if (key.upArrow || input === 'k') setSelected(Math.max(0, sel - 1));
    else if (key.downArrow || input === 'j') setSelected(Math.min(Math.max(0, links.length - 1), sel + 1));
    else if (input === 'd') drainKey(links[sel]);
  });

  const height = Math.max(3, rows - 1);
  const bodyRows = height - 2;
  return (
    <Box flexDirection="column" width={columns} height={height} overflow="hidden">
      <Header snapshot={snapshot} title={props.title} view={view} columns={columns} theme={theme} />
      <Box flexDirection="column" flexGrow={1} overflow="hidden">
        {help ? (
          <Help maxRows={bodyRows} />
        ) : !snapshot ? (
          <Text>waiting for the first snapshot...</Text>
        ) : (
          <Body
            view={view}
            snapshot={snapshot}
            history={history}
            selected={sel}
            columns={columns}
            bodyRows={bodyRows}
            theme={theme}
            peers={{ peers, total: allPeers.length, filter: peerFilter, filtering, selected: peerSel, focus, pathSelected: pSel }}
          />
        )}
      </Box>
      <Footer confirm={confirm} notice={notice} status={props.status} theme={theme} />
    </Box>
  );
}

type PeersState = Pick<Parameters<typeof PeersView>[0], 'peers' | 'total' | 'filter' | 'filtering' | 'selected' | 'focus' | 'pathSelected'>;

function Body(props: { view: View; snapshot: EdgeSnapshot; history: ReturnType<typeof useLinkHistory>; selected: number; columns: number; bodyRows: number; theme: Theme; peers: PeersState }): ReactElement {
  const { view, snapshot, history, selected, columns, bodyRows, theme } = props;
  const classes: readonly ClassStatus[] = snapshot.classes;
  switch (view) {
    case 'overview': {
      // A hub's paths (one per peer and link) get at most half the rows, scrolled to the selection.
      const linkRows = snapshot.links.length <= 16 ? snapshot.links.length : Math.max(3, Math.floor(bodyRows / 2));
      const budget = overviewBudget(bodyRows, linkRows, classes);
      return (
        <Box flexDirection="column">
          <LinksTable snapshot={snapshot} history={history} selected={selected} columns={columns} theme={theme} maxRows={linkRows} />
          <Text> </Text>
          {budget.classes.length > 0 ? <ClassesTable classes={budget.classes} columns={columns} theme={theme} /> : null}
          {budget.classes.length > 0 ? <Text> </Text> : null}
          <Title text="events" note="newest first" theme={theme} />
          <EventLog events={snapshot.recentEvents} maxRows={budget.eventRows} theme={theme} />
        </Box>
      );
    }
    case 'links':
      return <LinkDetails snapshot={snapshot} history={history} selected={selected} columns={columns} maxRows={bodyRows} theme={theme} />;
    case 'classes':
      return (
        <Box flexDirection="column">
          <ClassesTable classes={classes} columns={columns} theme={theme} preferDscp />
          <Text> </Text>
          <Title text="flows" note="per link, then the top flows this site sends" theme={theme} />
          {/* classes (+ header), blank, title, one row per link, 3 summary lines, the top-flows header */}
          <FlowsPanel snapshot={snapshot} columns={columns} theme={theme} topRows={bodyRows - (classes.length + 1) - 2 - flowRows(snapshot).length - 3 - 1} />
        </Box>
      );
    case 'peers':
      return <PeersView snapshot={snapshot} history={history} columns={columns} bodyRows={bodyRows} theme={theme} {...props.peers} />;
    case 'events':
      return (
        <Box flexDirection="column">
          <Title text="events" note={`newest first, the edge keeps the last ${snapshot.recentEvents.length}`} theme={theme} />
          <EventLog events={snapshot.recentEvents} maxRows={bodyRows - 1} theme={theme} />
        </Box>
      );
  }
}
