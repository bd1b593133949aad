/**
 * Self-time summary of a V8 `.cpuprofile` (what `node --cpu-prof` writes), parsed here rather than
 * with a library: the format is a node tree plus a sample list.
 *
 *   nodes[]      { id, callFrame: { functionName, url, lineNumber (0-based) }, children? }
 *   samples[]    node id on top of the stack at each sample
 *   timeDeltas[] microseconds between consecutive samples (the first is from startTime)
 *   startTime, endTime: microseconds on CLOCK_MONOTONIC, the same clock as process.hrtime(), so a
 *   window measured in another process (the benchmark around an iperf3 run) selects samples.
 *
 * A sample's duration is the gap to the next sample (how Chrome DevTools attributes self time).
 */
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeRow {
  /** Function name, `(anonymous):LINE` for anonymous functions, or V8's `(idle)`, `(program)`, `(garbage collector)`. */
  functionName: string;
  /**
   * Where it lives: a repo-relative path, `node_modules/PKG/...`, `node:internal/...`, '' for V8
   * pseudo-frames, or `generated, via FILE` for code made by `new Function` (protobufjs codecs),
   * which has no URL: FILE is the nearest caller that has one.
   */
  location: string;
  selfUs: number;
  /** Of all sampled time in the window (idle included). */
  shareOfWindow: number;
  /** Of the non-idle time in the window. */
  shareOfBusy: number;
}

export interface ProfileSummary {
  /** Sampled time in the window, microseconds. */
  windowUs: number;
  busyUs: number;
  /** busyUs / windowUs: how much of one core this thread used. */
  busyRatio: number;
  samples: number;
  /** True when samples were limited to the requested window. */
  windowed: boolean;
  /** A window was requested but did not overlap the profile, so the whole profile was used. */
  windowMissed: boolean;
  top: SelfTimeRow[];
  /** Self time grouped by file (or package), top entries. */
  byFile: { location: string; selfUs: number; shareOfBusy: number }[];
}

const IDLE = '(idle)';
const GENERATED = 'generated, via ';

/** Makes a profile URL readable: repo-relative, or node_modules/<pkg>/..., or node:... */
export function shortLocation(url: string, repoRoot: string): string {
  if (url === '') return '';
  let u = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const q = u.indexOf('?');
  if (q >= 0) u = u.slice(0, q);
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + 1);
  const root = repoRoot.endsWith('/') ? repoRoot : `${repoRoot}/`;
  if (u.startsWith(root)) return u.slice(root.length);
  return u;
}

function fileGroup(location: string): string {
  if (location === '') return '(V8: program, GC)';
  if (location.startsWith(GENERATED)) return 'generated code (new Function: protobufjs codecs)';
  if (location.startsWith('node_modules/')) {
    const parts = location.split('/');
    const pkg = parts[1]!.startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1]!;
    return `node_modules/${pkg}`;
  }
  // node:internal/crypto/cipher -> node:internal/crypto; node:buffer stays.
  if (location.startsWith('node:internal/')) return location.split('/').slice(0, 2).join('/');
  if (location.startsWith('node:')) return location;
  return location;
}

/** Busy (non-idle) microseconds of a profile inside [fromUs, toUs], to pick the thread that did the work. */
export function busyMicros(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): number {
  const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === IDLE).map((n) => n.id));
  let t = profile.startTime;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const dur = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0;
    if (t < fromUs || t > toUs) continue;
    if (!idleIds.has(profile.samples[i]!)) busy += dur;
  }
  return busy;
}

export function readCpuProfile(path: string): CpuProfile {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) {
    throw new Error(`${path}: not a V8 .cpuprofile (nodes/samples/timeDeltas missing)`);
  }
  return p;
}

/**
 * Aggregates self time by function name + location over the samples taken in [fromUs, toUs]
 * (CLOCK_MONOTONIC microseconds; omit for the whole profile).
 */
export function summarizeProfile(profile: CpuProfile, opts: { repoRoot: string; fromUs?: number; toUs?: number; top?: number }): ProfileSummary {
  let from = opts.fromUs ?? -Infinity;
  let to = opts.toUs ?? Infinity;
  let windowed = opts.fromUs !== undefined || opts.toUs !== undefined;
  let windowMissed = false;
  if (from > profile.endTime || to < profile.startTime) {
    from = -Infinity;
    to = Infinity;
    windowMissed = windowed;
    windowed = false;
  }
  const byId = new Map<number, CpuProfileNode>();
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parentOf.set(c, n.id);
  }
  const labels = new Map<number, { name: string; location: string }>();
  const labelOf = (node: CpuProfileNode): { name: string; location: string } => {
    let label = labels.get(node.id);
    if (label) return label;
    const cf = node.callFrame;
    if (cf.url === '' && !cf.functionName.startsWith('(')) {
      // Code without a script URL (new Function): name it after its nearest caller that has one.
      let up = parentOf.get(node.id);
      let via = '';
      while (up !== undefined) {
        const u = byId.get(up)!;
        if (u.callFrame.url !== '') {
          via = `${u.callFrame.functionName || '(anonymous)'} in ${shortLocation(u.callFrame.url, opts.repoRoot)}`;
          break;
        }
        up = parentOf.get(up);
      }
      label = { name: cf.functionName || '(anonymous)', location: `${GENERATED}${via || '?'}` };
    } else {
      label = { name: cf.functionName !== '' ? cf.functionName : `(anonymous):${cf.lineNumber + 1}`, location: shortLocation(cf.url, opts.repoRoot) };
    }
    labels.set(node.id, label);
    return label;
  };
  const rows = new Map<string, { functionName: string; location: string; selfUs: number }>();
  let windowUs = 0;
  let idleUs = 0;
  let samples = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    if (t < from || t > to) continue;
    const dur = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0;
    if (dur <= 0) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    samples++;
    windowUs += dur;
    if (node.callFrame.functionName === IDLE) idleUs += dur;
    const { name, location } = labelOf(node);
    const key = `${name}\u0000${location}`;
    let row = rows.get(key);
    if (!row) {
      row = { functionName: name, location, selfUs: 0 };
      rows.set(key, row);
    }
    row.selfUs += dur;
  }
  const busyUs = windowUs - idleUs;
  const top = [...rows.values()]
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, opts.top ?? 15)
    .map((r) => ({
      ...r,
      shareOfWindow: windowUs > 0 ? r.selfUs / windowUs : 0,
      shareOfBusy: busyUs > 0 && r.functionName !== IDLE ? r.selfUs / busyUs : 0,
    }));
  const files = new Map<string, number>();
  for (const r of rows.values()) {
    if (r.functionName === IDLE) continue;
    const g = fileGroup(r.location);
    files.set(g, (files.get(g) ?? 0) + r.selfUs);
  }
  const byFile = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([location, selfUs]) => ({ location, selfUs, shareOfBusy: busyUs > 0 ? selfUs / busyUs : 0 }));
  return { windowUs, busyUs, busyRatio: windowUs > 0 ? busyUs / windowUs : 0, samples, windowed, windowMissed, top, byFile };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** The summary as markdown tables (for docs/BENCHMARKS.md and the console). */
export function profileMarkdown(s: ProfileSummary): string {
  const lines: string[] = [];
  lines.push(
    `${s.samples} samples over ${(s.windowUs / 1e6).toFixed(2)} s${s.windowMissed ? ' (the whole profile: the measured window did not overlap it)' : s.windowed ? '' : ' (the whole profile)'}; ` +
      `the thread was busy ${pct(s.busyRatio)} of the time.`,
  );
  lines.push('');
  lines.push('| # | self ms | % of window | % of busy | function | where |');
  lines.push('| ---: | ---: | ---: | ---: | --- | --- |');
  s.top.forEach((r, i) => {
    const busy = r.functionName === IDLE ? '' : pct(r.shareOfBusy);
    lines.push(`| ${i + 1} | ${(r.selfUs / 1000).toFixed(0)} | ${pct(r.shareOfWindow)} | ${busy} | \`${r.functionName}\` | ${r.location === '' ? '(V8)' : `\`${r.location}\``} |`);
  });
  lines.push('');
  lines.push('Busy time by file or package:');
  lines.push('');
  lines.push('| self ms | % of busy | file |');
  lines.push('| ---: | ---: | --- |');
  for (const f of s.byFile) lines.push(`| ${(f.selfUs / 1000).toFixed(0)} | ${pct(f.shareOfBusy)} | \`${f.location}\` |`);
  return lines.join('\n');
}
