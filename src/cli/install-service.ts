/**
 * `braid install-service [--config FILE] [--path FILE]`: writes a systemd unit that runs
 * `braid up -c FILE` (default /etc/braid/braid.yaml) to /etc/systemd/system/braid.service, then
 * prints the next steps. The unit validates the config before starting, restarts on failure,
 * keeps only the capabilities a tunnel needs and sandboxes the rest.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BraidError, ErrorCode } from '../core/errors.ts';
import type { Output } from './status.ts';

export const DEFAULT_UNIT_PATH = '/etc/systemd/system/braid.service';
export const DEFAULT_SERVICE_CONFIG = '/etc/braid/braid.yaml';

export interface UnitOptions {
  /** Absolute path of the node binary that runs braid. */
  nodePath: string;
  /** Absolute path of bin/braid.js. */
  braidPath: string;
  /** Absolute path of the site configuration. */
  configPath: string;
}

/**
 * One argument of ExecStart, quoted for systemd: `%` starts a specifier and `$` a variable, so
 * both are doubled; quotes and backslashes are escaped; anything with a space is quoted.
 */
export function systemdQuote(arg: string): string {
  const escaped = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(arg) ? `"${escaped}"` : escaped;
}

/**
 * A path for a unit file line outside ExecStart (Description, Documentation): `%` doubled, since
 * systemd expands specifiers there too. Control characters are refused by serviceUnit.
 */
function unitText(s: string): string {
  return s.replace(/%/g, '%%');
}

/**
 * A newline in a path would end the unit line and start a directive of the caller's choosing
 * (a config path "x\nExecStartPre=/bin/sh -c ..."): no quoting helps, so such paths are refused.
 */
function refuseControlChars(what: string, path: string): void {
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    throw new BraidError(ErrorCode.USAGE, `install-service: the ${what} path ${JSON.stringify(path)} contains a control character (newline, tab, ...)`, {
      fix: `rename it to a path without control characters`,
    });
  }
}

/**
 * The unit text. One source: the Debian package ships serviceUnit() for /usr/bin/node and
 * /usr/lib/braid/bin/braid.js (scripts/package/build.ts), which is what `braid install-service`
 * writes from the package.
 */
export function serviceUnit(o: UnitOptions): string {
  refuseControlChars('node', o.nodePath);
  refuseControlChars('braid', o.braidPath);
  refuseControlChars('config', o.configPath);
  const cmd = (...args: string[]): string => [o.nodePath, o.braidPath, ...args].map(systemdQuote).join(' ');
  // ProtectHome=yes would hide a checkout under /home (a common place to `npm install`).
  const protectHome = o.braidPath.startsWith('/home/') || o.braidPath.startsWith('/root/') ? 'read-only' : 'yes';
  const readme = pathToFileURL(resolve(dirname(o.braidPath), '..', 'README.md')).href;
  return `# Braid edge service, from \`braid install-service\` or the braid package. Customise it with
# \`systemctl edit braid\` (a drop-in survives reinstalls).
[Unit]
Description=Braid SD-WAN edge overlay (${unitText(o.configPath)})
Documentation=${unitText(readme)}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# A bad config fails here with one line naming the field, instead of a restart loop.
ExecStartPre=${cmd('check', '-c', o.configPath)}
ExecStart=${cmd('up', '-c', o.configPath)}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
# Logs are pino JSON on stdout: journald keeps them (journalctl -u braid -o cat | jq).
StandardOutput=journal
StandardError=journal
# The control socket for braid status/dash lives here; root-only, like the socket itself.
RuntimeDirectory=braid
RuntimeDirectoryMode=0750

# Privileges: the TUN device, routes and SO_BINDTODEVICE need CAP_NET_ADMIN; SO_BINDTODEVICE on
# kernels before 5.7 and the ICMP health probes need CAP_NET_RAW; the TUN queues' steering program
# (tun.queues, a socket-filter eBPF program, no maps, no helpers) needs CAP_BPF. Nothing else is kept.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF
NoNewPrivileges=yes

# Sandbox. Not MemoryDenyWriteExecute: V8's JIT needs writable+executable memory.
ProtectSystem=strict
ProtectHome=${protectHome}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# AF_NETLINK for \`ip route\`, AF_UNIX for the control socket, AF_PACKET never.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
DevicePolicy=closed
DeviceAllow=/dev/net/tun rw
UMask=0077

[Install]
WantedBy=multi-user.target
`;
}

/** bin/braid.js of this installation. */
export function braidBinPath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'braid.js');
}

export function runInstallService(v: Record<string, string | boolean | undefined>, out: Output = process.stdout): number {
  const unitPath = resolve(typeof v.path === 'string' && v.path !== '' ? v.path : DEFAULT_UNIT_PATH);
  const configPath = resolve(typeof v.config === 'string' && v.config !== '' ? v.config : DEFAULT_SERVICE_CONFIG);
  const unit = serviceUnit({ nodePath: process.execPath, braidPath: braidBinPath(), configPath });
  const existed = existsSync(unitPath);
  const same = existed && readFileSync(unitPath, 'utf8') === unit;
  try {
    mkdirSync(dirname(unitPath), { recursive: true });
    writeFileSync(unitPath, unit, { mode: 0o644 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new BraidError(ErrorCode.PERMISSION, `install-service: cannot write ${unitPath} (${code})`, { fix: 'run it with sudo, or write elsewhere with --path FILE', cause: e });
    }
    throw new BraidError(ErrorCode.PERMISSION, `install-service: cannot write ${unitPath}: ${(e as Error).message}`, { fix: 'check the directory exists and is writable, or use --path FILE', cause: e });
  }
  const name = unitPath.endsWith('.service') ? unitPath.slice(unitPath.lastIndexOf('/') + 1, -'.service'.length) : 'braid';
  const lines = [`${same ? 'unchanged' : existed ? 'replaced' : 'wrote'} ${unitPath} (runs: braid up -c ${configPath})`];
  if (!existsSync(configPath)) {
    lines.push(`note: ${configPath} does not exist yet: write it (see profiles/examples/site-a.yaml and README "Configuration"), then \`braid check -c ${configPath}\``);
  }
  if (unitPath !== DEFAULT_UNIT_PATH) lines.push(`note: systemd reads units from /etc/systemd/system; copy or link ${unitPath} there to use it`);
  const steps: Array<[string, string]> = [
    ['sudo systemctl daemon-reload', ''],
    [`sudo systemctl enable --now ${name}`, ''],
    ['sudo braid status', 'or braid dash'],
    [`journalctl -u ${name} -f -o cat`, 'the JSON logs'],
    [`sudo systemctl reload ${name}`, 're-read the config after editing it'],
  ];
  const width = Math.max(...steps.map(([c]) => c.length));
  lines.push('next:', ...steps.map(([c, why]) => (why ? `  ${c.padEnd(width)}  # ${why}` : `  ${c}`)));
  out.write(lines.join('\n') + '\n');
  return 0;
}
