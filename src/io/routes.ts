// Kernel routes into the TUN, one per peer prefix: what sends the site's traffic for a peer's LAN
// into the overlay (issue 11). `braid up` installs them once the TUN is up and keeps them in step
// with the peers on reload; a peer that goes takes its routes with it.
//
// Stages: canonicalise (core/routing/prefix.ts: the same text the routing table prints) -> diff
// against what we installed -> one `ip -force -batch -` process for the whole diff (a hub with
// 16,000 prefixes must not spawn 16,000 processes) -> read which lines failed from ip's stderr
// ("Command failed -:N") -> update `installed` for what succeeded -> throw for the first failure.
//
// Contract:
// - Every route is `PREFIX dev TUN proto 211`: the protocol number marks it as Braid's, so
//   listRoutes finds ours after a crash and routes someone else put on the device are never touched.
// - `replace` for adds and "already gone" for deletes make every step idempotent: syncing twice is
//   the same as once, and a route deleted by hand does not fail the next sync.
// - `installed` is the caller's record of what is in the kernel; syncRoutes updates it in place for
//   every step that took effect, also when it then throws, so a retry does only what is left.
// - Errors are BraidError: PREFIX_INVALID (a wanted prefix is not one, before anything runs),
//   PERMISSION (not root / no CAP_NET_ADMIN), ROUTE_FAILED (anything else), one line naming the
//   route and the fix.

import { execFile, spawn } from 'node:child_process';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { parsePrefix } from '../core/routing/prefix.ts';

/** The rtnetlink protocol number on Braid's routes (`ip route show proto 211`); unassigned in iproute2's rt_protos. */
export const ROUTE_PROTO = 211;

export interface RouteOptions {
  /** Run in this network namespace (`ip -n NS`): tests and the namespace harness. */
  readonly netns?: string;
  /** Bound for each `ip` process (default 10 s). */
  readonly timeoutMs?: number;
}

export interface RouteSync {
  /** Prefixes (canonical text) that were not installed and now are. */
  added: string[];
  /** Prefixes that were installed and now are not (including ones someone had already deleted). */
  removed: string[];
}

const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;
const DEFAULT_TIMEOUT_MS = 10_000;

interface IpResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** spawn failure (ENOENT when ip is missing) or timeout. */
  error?: NodeJS.ErrnoException;
  timedOut: boolean;
}

function runIp(args: readonly string[], stdin: string | undefined, timeoutMs: number): Promise<IpResult> {
  return new Promise((resolve) => {
    if (stdin === undefined) {
      execFile('ip', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        const e = error as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
          ...(e && typeof e.code === 'string' ? { error: e } : {}),
          timedOut: e?.killed === true,
        });
      });
      return;
    }
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => (spawnError = e));
    child.stdin.on('error', () => undefined); // ip exited early: its exit code says why
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ...(spawnError ? { error: spawnError } : {}), timedOut });
    });
    child.stdin.end(stdin);
  });
}

/** ip's complaint per failed batch line (1-based): the stderr lines before each "Command failed -:N". */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^Command failed -:(\d+)$/.exec(line);
    if (m) {
      out.set(Number(m[1]), pending.join('; ') || 'failed');
      pending = [];
    } else {
      pending.push(line.replace(/^(Error|RTNETLINK answers): /, '').replace(/\.$/, ''));
    }
  }
  return out;
}

function checkTunName(tunName: string): void {
  if (!IFNAME_RE.test(tunName)) {
    throw new BraidError(ErrorCode.ROUTE_FAILED, `routes: "${tunName}" is not an interface name`, { fix: 'pass the TUN name, e.g. braid0 (at most 15 characters)' });
  }
}

function spawnFailure(r: IpResult, what: string, timeoutMs: number): BraidError | undefined {
  if (r.error?.code === 'ENOENT') {
    return new BraidError(ErrorCode.ROUTE_FAILED, `${what}: the ip command is missing`, { fix: 'install iproute2 (apt-get install iproute2)', osCode: 'ENOENT' });
  }
  if (r.timedOut) {
    return new BraidError(ErrorCode.ROUTE_FAILED, `${what}: ip did not answer within ${timeoutMs} ms`, { fix: 'check the system load and retry (systemctl reload braid)' });
  }
  if (r.error) return new BraidError(ErrorCode.ROUTE_FAILED, `${what}: cannot run ip (${r.error.message})`, { osCode: r.error.code });
  return undefined;
}

/** The BraidError for one failed route line, with the fix for what ip said. */
function routeError(op: 'add' | 'remove', prefix: string, tunName: string, why: string, more: number): BraidError {
  const tail = more > 0 ? ` (and ${more} more route${more > 1 ? 's' : ''})` : '';
  const message = `route ${op === 'add' ? 'replace' : 'del'} ${prefix} dev ${tunName}: ${why}${tail}`;
  if (/Operation not permitted/i.test(why)) {
    return new BraidError(ErrorCode.PERMISSION, message, { fix: 'run braid as root or with CAP_NET_ADMIN' });
  }
  let fix = 'check `ip route` and the TUN with `ip link show ' + tunName + '`';
  if (/Cannot find device/i.test(why)) fix = `open the TUN first (braid up creates ${tunName}), or check tun.name in the config`;
  else if (/not up|Network is down/i.test(why)) fix = `bring the TUN up first: ip link set ${tunName} up`;
  else if (/IPv6 is disabled/i.test(why)) fix = `enable IPv6 on the TUN (sysctl net.ipv6.conf.${tunName}.disable_ipv6=0) or drop the IPv6 prefixes`;
  return new BraidError(ErrorCode.ROUTE_FAILED, message, { fix });
}

/**
 * Makes the kernel's Braid routes on `tunName` what `wanted` says: adds what is missing from
 * `installed`, removes what is installed but no longer wanted. `installed` is updated in place
 * (see the file contract); returns what changed. Throws BraidError (PREFIX_INVALID, PERMISSION,
 * ROUTE_FAILED) after applying everything that could be applied.
 */
export async function syncRoutes(tunName: string, wanted: readonly string[], installed: Set<string>, options: RouteOptions = {}): Promise<RouteSync> {
  checkTunName(tunName);
  const want = new Set(wanted.map((p) => parsePrefix(p).text));
  const have = new Map<string, string>(); // canonical -> the caller's spelling in `installed`
  for (const p of installed) have.set(parsePrefix(p, { normalise: true }).text, p);
  const toAdd = [...want].filter((p) => !have.has(p)).sort();
  const toRemove = [...have.keys()].filter((p) => !want.has(p)).sort();
  const result: RouteSync = { added: [], removed: [] };
  if (toAdd.length === 0 && toRemove.length === 0) return result;

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const lines: Array<{ op: 'add' | 'remove'; prefix: string }> = [
    ...toRemove.map((prefix) => ({ op: 'remove' as const, prefix })),
    ...toAdd.map((prefix) => ({ op: 'add' as const, prefix })),
  ];
  const batch = lines.map((l) => `route ${l.op === 'add' ? 'replace' : 'del'} ${l.prefix} dev ${tunName} proto ${ROUTE_PROTO}\n`).join('');
  const args = [...(options.netns !== undefined ? ['-n', options.netns] : []), '-force', '-batch', '-'];
  const r = await runIp(args, batch, timeoutMs);
  const failure = spawnFailure(r, `routes on ${tunName}`, timeoutMs);
  if (failure) throw failure;
  const errors = parseBatchErrors(r.stderr);
  if (r.code !== 0 && errors.size === 0) {
    throw new BraidError(ErrorCode.ROUTE_FAILED, `routes on ${tunName}: ip exited with ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`, {
      fix: `check the TUN with \`ip link show ${tunName}\``,
    });
  }
  const failed: Array<{ op: 'add' | 'remove'; prefix: string; why: string }> = [];
  lines.forEach((l, i) => {
    const why = errors.get(i + 1);
    if (l.op === 'remove') {
      // "No such process": the route was already gone, which is what we wanted.
      if (why === undefined || /No such process/i.test(why)) {
        installed.delete(have.get(l.prefix)!);
        result.removed.push(l.prefix);
      } else {
        failed.push({ ...l, why });
      }
    } else if (why === undefined) {
      installed.add(l.prefix);
      result.added.push(l.prefix);
    } else {
      failed.push({ ...l, why });
    }
  });
  if (failed.length > 0) {
    const first = failed[0]!;
    throw routeError(first.op, first.prefix, tunName, first.why, failed.length - 1);
  }
  return result;
}

/**
 * Braid's routes on `tunName` as the kernel has them (canonical prefixes, both families): the
 * `installed` set to start from after a restart or crash. A device that does not exist has none.
 */
export async function listRoutes(tunName: string, options: RouteOptions = {}): Promise<Set<string>> {
  checkTunName(tunName);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ns = options.netns !== undefined ? ['-n', options.netns] : [];
  const out = new Set<string>();
  for (const family of ['-4', '-6'] as const) {
    const r = await runIp([...ns, family, '-j', 'route', 'show', 'dev', tunName, 'proto', String(ROUTE_PROTO)], undefined, timeoutMs);
    const failure = spawnFailure(r, `routes on ${tunName}`, timeoutMs);
    if (failure) throw failure;
    if (r.code !== 0) {
      if (/Cannot find device/i.test(r.stderr)) return new Set();
      throw new BraidError(ErrorCode.ROUTE_FAILED, `routes on ${tunName}: ip route show failed: ${r.stderr.trim().split('\n')[0] ?? ''}`, {
        fix: `check the TUN with \`ip link show ${tunName}\``,
      });
    }
    const text = r.stdout.trim();
    const rows = text === '' ? [] : (JSON.parse(text) as Array<{ dst?: string }>);
    for (const row of rows) {
      if (typeof row.dst !== 'string') continue;
      const dst = row.dst === 'default' ? (family === '-4' ? '0.0.0.0/0' : '::/0') : row.dst;
      out.add(parsePrefix(dst, { normalise: true }).text);
    }
  }
  return out;
}
