/**
 * `braid status [--json] [--socket PATH | -c FILE]`: one snapshot from the running edge over the
 * control socket. Text in the manner of `wg show` (a block for the site, one per link, one per
 * busy class, the last events); `--json` prints {"version":1,"status":EdgeSnapshot}, the format
 * docs/status-schema.json documents for scripts.
 */
import { BraidError, ErrorCode } from '../core/errors.ts';
import { DROP_REASONS, type EdgeSnapshot, type LinkState } from '../core/types.ts';
import { CONTROL_PROTOCOL_VERSION, DEFAULT_CONTROL_SOCKET, controlRequest, type ClassStatus, type EdgeStatus, type LinkSocketStatus, type LinkStatus } from '../control/control-socket.ts';
import { bondClassText, flowLinksText, fmtAgo, fmtBpsLong, fmtBytes, fmtCount, fmtMs, fmtRatio, fmtUptime, sessionText } from '../ui/format.ts';
import { colorEnabled } from '../ui/theme.ts';
import type { RegistryStatus } from '../control/registry-record.ts';
import { escapeJsonForTerminal, sanitizeStrings } from '../core/sanitize.ts';
import { PEER_SUMMARY_THRESHOLD, WORST_PEERS_SHOWN, linkTotalsLines, peerBlock, peerCountsText, countPeers, peerSummaryLines, peersOf, selectPeer, worstPeers } from './status-peers.ts';

/** How many recent events the text output ends with (the JSON has all the edge keeps). */
const TEXT_EVENTS = 8;

/** --socket wins, then the config file's control.socket, then the default. */
export async function resolveSocketPath(v: Record<string, string | boolean | undefined>): Promise<string> {
  if (typeof v.socket === 'string' && v.socket !== '') return v.socket;
  if (typeof v.config === 'string' && v.config !== '') {
    const { loadConfig } = await import('../control/config.ts');
    return loadConfig(v.config).control.socket;
  }
  return DEFAULT_CONTROL_SOCKET;
}

export async function fetchStatus(socketPath: string): Promise<EdgeSnapshot> {
  const reply = await controlRequest(socketPath, { cmd: 'status' });
  if (reply.ok !== true || !reply.status) {
    throw new BraidError(ErrorCode.CONTROL_UNAVAILABLE, `control socket ${socketPath}: status refused: ${reply.error ?? 'no status in the reply'}`, {
      fix: 'run the same braid version for braid up and braid status',
    });
  }
  return reply.status;
}

interface Paint {
  heading(s: string): string;
  label(s: string): string;
  state(s: LinkState): string;
}

const ANSI = { bold: '\x1b[1m', green: '\x1b[32m', yellow: '\x1b[33m', red: '\x1b[31m', magenta: '\x1b[35m', reset: '\x1b[0m' } as const;

function paint(color: boolean): Paint {
  if (!color) return { heading: (s) => s, label: (s) => s, state: (s) => s };
  const c = { up: ANSI.green, degraded: ANSI.yellow, down: ANSI.red, drained: ANSI.magenta } as const;
  return {
    heading: (s) => `${ANSI.bold}${ANSI.green}${s}${ANSI.reset}`,
    label: (s) => `${ANSI.bold}${s}${ANSI.reset}`,
    state: (s) => `${c[s]}${s}${ANSI.reset}`,
  };
}

/** What the text shows of the peers: all of them (`--all`) or, past 20, the worst 10 after a summary. */
export interface StatusTextOptions {
  all?: boolean;
}

/**
 * The text form: what `wg show` would print for an SD-WAN edge. One peer: the site, the peer, one
 * block per link. Many peers: the site, totals per local link, one block per peer with its paths
 * on one line each (a summary and only the worst peers' blocks past PEER_SUMMARY_THRESHOLD,
 * unless `all`); `braid status --peer NAME` gives one peer with its links in full.
 */
export function formatStatusText(raw: EdgeSnapshot, color = false, opts: StatusTextOptions = {}): string {
  // Peer-supplied text (hello site and link names, events quoting them) is escaped before printing.
  const snap = sanitizeStrings(raw);
  const p = paint(color);
  const out: string[] = [];
  const kv = (k: string, v: string): void => {
    out.push(`  ${p.label(k + ':')} ${v}`);
  };
  const drops = DROP_REASONS.filter((r) => (snap.drops[r] ?? 0) > 0).map((r) => `${r} ${fmtCount(snap.drops[r])}`);

  out.push(`${p.heading('site:')} ${snap.site}`);
  kv('time', `${fmtUptime(snap.nowMs)} since the edge started`);
  kv('flows', `${fmtCount(snap.flows)} (${fmtCount(snap.flowMoves)} moves)`);
  kv('tun', `${fmtCount(snap.tunPacketsIn)} packets in, ${fmtCount(snap.deliveredPackets)} delivered, ${fmtCount(snap.duplicatesSuppressed)} duplicates suppressed`);
  // A hub's snapshot.session speaks for one peer only: say how many peers have one instead.
  const hubPeers = peersOf(snap);
  if (hubPeers.length > 1) {
    const up = hubPeers.filter((x) => x.session.established).length;
    kv('sessions', snap.session?.encrypted === false ? 'plaintext (no keys configured)' : `${fmtCount(up)} of ${fmtCount(hubPeers.length)} peers established${snap.session?.underLoad ? ', under load (cookies required)' : ''}`);
  } else kv('session', sessionText(snap.session));
  const hsDrops = Object.entries(snap.session?.handshakeDrops ?? {}).filter(([, n]) => n > 0);
  if (hsDrops.length) kv('handshake drops', hsDrops.map(([r, n]) => `${r} ${fmtCount(n)}`).join(', '));
  kv('drops', drops.length ? drops.join(', ') : 'none');
  const reg = (snap as EdgeStatus).registry;
  if (reg) kv('registry', registryText(reg));
  const dev = (snap as EdgeStatus).tunDevice;
  if (dev) {
    // The kernel's side of the TUN: drops here happen before Braid reads or after it writes.
    kv(
      `tun device ${dev.name}${dev.queues !== undefined && dev.queues > 1 ? ` (${dev.queues} queues)` : ''}`,
      `${fmtCount(dev.txPackets)} read by braid, ${fmtCount(dev.txDropped)} dropped before braid read them (queue full); ${fmtCount(dev.rxPackets)} written, ${fmtCount(dev.rxDropped)} dropped after${dev.writeRefused ? `, ${fmtCount(dev.writeRefused)} writes refused` : ''}${dev.txErrors + dev.rxErrors ? `, ${fmtCount(dev.txErrors + dev.rxErrors)} errors` : ''}`,
    );
    const off = dev.offload;
    if (off) {
      kv(
        'tun offload',
        off.enabled
          ? `on: ${fmtCount(off.readSuperSegments)} super-segments read (${fmtCount(off.readSegments)} packets), ${fmtCount(off.writeSuperSegments)} written (${fmtCount(off.writeCoalescedPackets)} packets)${off.readDropped ? `, ${fmtCount(off.readDropped)} malformed reads dropped` : ''}`
          : 'off',
      );
    }
  }

  const kw = (snap as EdgeStatus).keepWarm;
  if (kw) kv('keep-warm', kw.enabled ? `${kw.active ? 'active' : 'waiting for traffic'}: ${fmtCount(kw.pulses)} pulses, ${(kw.busyMs / 1000).toFixed(1)} s of CPU so far` : 'off');

  // The link sockets' kernel side: datagrams dropped because a receive buffer was full (the
  // loss under load with TUN offloads, or an edge that stalled), and what UDP GRO coalesced.
  for (const ls of (snap as EdgeStatus).linkSockets ?? []) kv(`link socket ${ls.link}`, linkSocketText(ls));

  const peers = peersOf(snap);
  const manyPeers = peers.length > 1;
  if (manyPeers) {
    kv('peers', peerCountsText(countPeers(snap)));
    out.push('', p.heading('links (paths to all peers):'));
    for (const line of linkTotalsLines(snap)) out.push(`  ${line}`);
    const summarise = peers.length > PEER_SUMMARY_THRESHOLD && opts.all !== true;
    const shown = summarise ? worstPeers(snap, WORST_PEERS_SHOWN) : peers;
    if (summarise) out.push('', ...peerSummaryLines(snap, shown, p));
    for (const peer of shown) out.push('', ...peerBlock(snap, peer, p));
    if (summarise) out.push('', `(${WORST_PEERS_SHOWN} of ${fmtCount(peers.length)} peers shown: --all for every peer, --peer NAME for one in full)`);
  } else if (peers.length === 1) {
    out.push('', ...peerBlock(snap, peers[0]!, p));
  }

  for (const l of manyPeers ? [] : snap.links) {
    out.push('', `${p.heading('link:')} ${l.name}`);
    kv('state', `${p.state(l.state)}${l.suppressed ? ' (flap damping)' : ''}, ${l.flaps} flaps`);
    kv('tier', l.tier);
    kv('remote', `${l.remote}${l.peerLinkName ? ` (peer's ${l.peerLinkName})` : ''}`);
    kv('latest heard', fmtAgo(l.lastHeardAgoMs));
    kv('rtt', `${fmtMs(l.rttMs)} (p50 ${fmtMs(l.rttP50Ms)}, p99 ${fmtMs(l.rttP99Ms)}), jitter ${fmtMs(l.jitterMs)}`);
    kv('loss sent', `${fmtRatio(l.txLossRatio)} (30 s ${fmtRatio(l.txLossLongRatio)}, total ${fmtRatio(l.txLossTotalRatio)})`);
    kv('loss received', `${fmtRatio(l.rxLossRatio)} (30 s ${fmtRatio(l.rxLossLongRatio)}, total ${fmtRatio(l.rxLossTotalRatio)})`);
    kv('transfer', `${fmtBytes(l.rxBytes)} received, ${fmtBytes(l.txBytes)} sent (${fmtCount(l.rxPackets)} / ${fmtCount(l.txPackets)} packets, data ${fmtCount(l.rxDataPackets)} / ${fmtCount(l.txDataPackets)})`);
    kv('send rate', fmtBpsLong(l.txRateBps));
    kv('flows', fmtCount(l.flows));
    const ls: LinkStatus = l;
    if (ls.shaperRateBps !== undefined) kv('shaper', `${fmtBpsLong(ls.shaperRateBps)}, ${fmtCount(ls.queuedPackets ?? 0)} queued, ${fmtCount(ls.queueDrops ?? 0)} tail drops`);
    if (ls.fecParitySent) kv('fec parity sent', fmtCount(ls.fecParitySent));
    if (l.pathMtuBytes !== undefined) {
      const search = l.pmtuPhase === 'complete' ? '' : `, ${l.pmtuPhase ?? '?'}`;
      kv('path mtu', `${l.pathMtuBytes} (inner ${l.usableMtuBytes ?? '?'}${search}; ${fmtCount(l.pmtuProbes ?? 0)} probes, ${fmtCount(l.pmtuBlackHoles ?? 0)} black holes)`);
    }
  }

  const classes: readonly ClassStatus[] = snap.classes;
  const idle: string[] = [];
  for (const c of classes) {
    if (c.flows === 0 && c.txPackets === 0 && c.moves === 0) {
      idle.push(c.name);
      continue;
    }
    out.push('', `${p.heading('class:')} ${c.name}`);
    kv('strategy', c.strategy);
    kv('flows', `${fmtCount(c.flows)}${c.activeLinks.length ? ` on ${c.activeLinks.join(', ')}` : ''}`);
    kv('moves', fmtCount(c.moves));
    kv('sent', `${fmtCount(c.txPackets)} packets, ${fmtBytes(c.txBytes)}`);
    if (c.fecK !== undefined || c.fecRecovered !== undefined || c.residualLossRatio !== undefined) {
      const parts: string[] = [];
      if (c.fecK !== undefined && c.fecM !== undefined) parts.push(c.fecM > 0 ? `${c.fecK}+${c.fecM}` : 'idle (clean paths)');
      if (c.fecOverheadRatio !== undefined) parts.push(`overhead ${fmtRatio(c.fecOverheadRatio)}`);
      if (c.fecCongested) parts.push('congested (parity capped)');
      if (c.fecRecovered !== undefined) parts.push(`recovered ${fmtCount(c.fecRecovered)}`);
      if (c.fecUnrecoverable !== undefined) parts.push(`unrecoverable ${fmtCount(c.fecUnrecoverable)}`);
      if (c.residualLossRatio !== undefined) parts.push(`residual loss ${fmtRatio(c.residualLossRatio)}`);
      kv('fec', parts.join(', '));
    }
    if (c.queueDrops !== undefined || c.queueDelayAvgMs !== undefined) {
      kv('queue', `delay ${fmtMs(c.queueDelayAvgMs)} avg, ${fmtMs(c.queueDelayMaxMs)} max, ${fmtCount(c.queueDrops ?? 0)} tail drops`);
    }
  }
  if (idle.length) out.push('', `${p.heading('idle classes:')} ${idle.join(', ')}`);

  const top = snap.topFlows ?? [];
  if (top.length) {
    out.push('', p.heading(`top flows sent (${top.length} largest of ${fmtCount(snap.flows)}):`));
    for (const f of top) out.push(`  ${fmtBytes(f.bytes).padStart(11)}  ${fmtBpsLong(f.rateBps).padStart(13)}  ${f.class.padEnd(9)} ${flowLinksText(f).padEnd(10)} ${f.flow}${f.rule !== undefined ? `  (rule ${f.rule})` : ''}`);
  }
  out.push(...rulesLines(snap, p.heading));
  if (snap.bond?.length) {
    out.push('', p.heading('bonded classes (links: what we send; reseq: what the peer bonds to us):'));
    for (const b of snap.bond) out.push(`  ${bondClassText(b)}`);
  }

  if (snap.recentEvents.length) {
    out.push('', p.heading(`recent events (${Math.min(TEXT_EVENTS, snap.recentEvents.length)} of ${snap.recentEvents.length}):`));
    for (const e of snap.recentEvents.slice(-TEXT_EVENTS)) out.push(`  ${fmtUptime(e.atMs).padStart(8)}  ${e.message}`);
  }
  return out.join('\n') + '\n';
}

/** Matched rules listed by the text status. */
const RULES_SHOWN = 20;

/** Rules that matched anything, in match order (at most RULES_SHOWN), and how many matched nothing. */
export function rulesLines(snap: EdgeSnapshot, heading: (s: string) => string = (s) => s): string[] {
  const rules = snap.rules;
  if (rules === undefined || rules.length === 0) return [];
  const hit = rules.filter((r) => r.packets > 0);
  const idle = rules.length - hit.length;
  const out = ['', heading(`application rules (${fmtCount(rules.length)}, first match wins${idle ? `; ${fmtCount(idle)} matched nothing yet` : ''}):`)];
  const width = Math.min(24, Math.max(4, ...hit.map((r) => r.name.length)));
  for (const r of hit.slice(0, RULES_SHOWN)) {
    out.push(`  ${r.name.padEnd(width)}  ${(r.class ?? 'by dscp').padEnd(9)} ${fmtCount(r.packets)} packets, ${fmtBytes(r.bytes)}, ${fmtCount(r.flows)} ${r.flows === 1 ? 'flow' : 'flows'}`);
  }
  if (hit.length > RULES_SHOWN) out.push(`  ... ${fmtCount(hit.length - RULES_SHOWN)} more (braid status --json)`);
  return out;
}

/** The fleet registry in one line: reachable or for how long not, sites and peers, bad values. */
export function registryText(r: RegistryStatus): string {
  const where = `etcd ${r.endpoints.join(',')}${r.prefix}`;
  const counts = `${fmtCount(r.sites)} sites, ${fmtCount(r.peers ?? 0)} peers from it${r.invalidValues ? `, ${fmtCount(r.invalidValues)} invalid values ignored` : ''}${r.published ? '' : ', this site not published'}`;
  if (r.state === 'unreachable') {
    return `UNREACHABLE for ${fmtUptime(r.unreachableForMs ?? 0)} (${where}: ${r.lastError ?? 'no answer'}); running on the last known ${counts}`;
  }
  return `${r.state === 'connected' ? 'connected' : 'connecting'} (${where}), ${counts}`;
}

export function statusJson(snap: EdgeSnapshot): string {
  // Same JSON value; C1 controls and bidi characters that JSON leaves raw are written as \u escapes.
  return escapeJsonForTerminal(JSON.stringify({ version: CONTROL_PROTOCOL_VERSION, status: snap }, null, 2)) + '\n';
}

/** Where the CLI writes; tests pass a collector. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
}

/**
 * The snapshot narrowed to `--peer NAME` (its summary, paths, flows and events; edge-wide figures
 * stay); a usage error naming some peers when there is no such peer.
 */
export function snapshotForPeer(snap: EdgeSnapshot, name: string): EdgeSnapshot {
  const one = selectPeer(snap, name);
  if (one) return one;
  const names = peersOf(snap).map((p) => p.name);
  const have = names.length === 0 ? 'the edge has no peers' : `have: ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, ... (${names.length})` : ''}`;
  throw new BraidError(ErrorCode.USAGE, `--peer ${name}: no such peer (${have})`, { fix: 'pass a peer name as `braid status` lists it' });
}

export async function runStatus(v: Record<string, string | boolean | undefined>, stdout: Output = process.stdout): Promise<number> {
  const socketPath = await resolveSocketPath(v);
  const full = await fetchStatus(socketPath);
  const snap = typeof v.peer === 'string' ? snapshotForPeer(full, v.peer) : full;
  stdout.write(v.json === true ? statusJson(snap) : formatStatusText(snap, colorEnabled(process.env, stdout.isTTY), { all: v.all === true }));
  return 0;
}

/** One link socket's kernel counters: "udp 51900: 0 dropped (receive buffer full), 0 B queued of 512 KiB; GRO ..." */
export function linkSocketText(ls: LinkSocketStatus): string {
  const gro = ls.groTrains > 0 ? `; GRO ${fmtCount(ls.groTrains)} trains (${fmtCount(ls.groDatagrams)} datagrams)` : '';
  return `udp ${ls.port}: ${fmtCount(ls.rxDropped)} dropped (receive buffer full), ${fmtBytes(ls.rxQueuedBytes)} queued of ${fmtBytes(ls.rcvbufBytes)}${gro}`;
}
