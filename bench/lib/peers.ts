/**
 * The tunnels Braid is compared against (DESIGN.md "Testing"), set up between the two namespaces
 * of a topology over its first veth link:
 *   wireguard-go  userspace WireGuard (foreground process per side, keys set with `wg`); its UDP
 *                 sockets are raised to the same 4 MiB Braid uses (set-socket-buffers.py), since
 *                 the Debian 12 build (0.0.20220316) leaves them at the 208 KiB default and then
 *                 nearly all of its TCP retransmits are receive-buffer overflows
 *   openvpn       OpenVPN 2.6, UDP, peer-to-peer TLS with self-signed certificates pinned by
 *                 SHA-256 fingerprint (--peer-fingerprint), data channel AES-256-GCM, no DCO
 *                 (userspace, like Braid and wireguard-go)
 * Keys and certificates are generated at run time in a temp dir that stop() removes. Interface
 * names start with `brt`.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from '../../sim/netns.ts';
import { sh } from '../../sim/netns.ts';
import { captureOutput, stopProcess, track, trackDir, waitUntil } from './netbench.ts';

export interface PeerTunnel {
  name: string;
  /** Site b's address inside the tunnel (iperf3 server, ping target). */
  remoteAddress: string;
  pids: { a: number | undefined; b: number | undefined };
  /** What the tunnel said about itself (cipher, versions), for the notes. */
  describe: string;
  stop(): Promise<void>;
}

const WG_PORT = 51820;
const SET_SOCKET_BUFFERS = fileURLToPath(new URL('./set-socket-buffers.py', import.meta.url));
const OVPN_PORT = 1194;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

async function sysctlBytes(key: string): Promise<string> {
  const { stdout } = await sh(['sysctl', '-n', key]).catch(() => ({ stdout: '' }));
  const n = Number(stdout.trim());
  return Number.isFinite(n) && n > 0 ? `${Math.round(n / 1024)} KiB` : 'unknown';
}

/** Removes stale UAPI sockets of a crashed earlier run (wireguard-go deletes its own on exit). */
export async function cleanupStaleWireguard(prefix: string): Promise<void> {
  await sh(['sh', '-c', `rm -f /var/run/wireguard/${prefix}*.sock`]).catch(() => undefined);
}

export async function startWireguardGo(topo: Topology, opts: { ifPrefix: string; net: string }): Promise<PeerTunnel> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), 'brt-wg-')));
  chmodSync(dir, 0o700);
  const ifname = { a: `${opts.ifPrefix}wga`, b: `${opts.ifPrefix}wgb` };
  const addr = { a: `${opts.net}.1`, b: `${opts.net}.2` };
  const under = { a: topo.a.links[0]!.address, b: topo.b.links[0]!.address };
  await cleanupStaleWireguard(opts.ifPrefix);
  const procs: ReturnType<typeof track>[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopProcess(p, 2000)));
    for (const site of ['a', 'b'] as const) await topo.execIn(site, ['ip', 'link', 'del', ifname[site]]).catch(() => undefined);
    await cleanupStaleWireguard(opts.ifPrefix);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const keys: Record<'a' | 'b', { priv: string; pub: string }> = { a: { priv: '', pub: '' }, b: { priv: '', pub: '' } };
    for (const site of ['a', 'b'] as const) {
      const priv = (await sh(['wg', 'genkey'])).stdout.trim();
      const privPath = join(dir, `${site}.key`);
      writeFileSync(privPath, `${priv}\n`, { mode: 0o600 });
      const pub = (await sh(['sh', '-c', `wg pubkey < '${privPath}'`])).stdout.trim();
      keys[site] = { priv: privPath, pub };
    }
    for (const site of ['a', 'b'] as const) {
      const p = track(topo.spawnIn(site, ['wireguard-go', ifname[site]], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' } }));
      procs.push(p);
      const out = captureOutput(p);
      await waitUntil(
        async () => {
          if (p.exitCode !== null) throw new Error(`wireguard-go ${ifname[site]} exited ${p.exitCode}: ${out.text()}`);
          await topo.execIn(site, ['wg', 'show', ifname[site]], { timeoutMs: 2000 });
          return true;
        },
        10_000,
        `wireguard-go ${ifname[site]} (site ${site}) to start: ${out.text()}`,
      );
    }
    for (const site of ['a', 'b'] as const) {
      const peer = site === 'a' ? 'b' : 'a';
      const dev = ifname[site];
      await topo.execIn(site, [
        'wg', 'set', dev, 'private-key', keys[site].priv, 'listen-port', String(WG_PORT),
        'peer', keys[peer].pub, 'endpoint', `${under[peer]}:${WG_PORT}`, 'allowed-ips', `${addr[peer]}/32`,
      ]);
      await topo.execIn(site, ['ip', 'addr', 'add', `${addr[site]}/24`, 'dev', dev]);
      await topo.execIn(site, ['ip', 'link', 'set', dev, 'mtu', '1420', 'up']);
    }
    // Same socket buffers as Braid and OpenVPN (see the header): set from outside, on the process's own sockets.
    const granted: string[] = [];
    for (const site of ['a', 'b'] as const) {
      const pid = procs[site === 'a' ? 0 : 1]!.pid;
      const { stdout } = await sh(['python3', SET_SOCKET_BUFFERS, String(pid), String(SOCKET_BUFFER_BYTES)]);
      const m = /SO_RCVBUF (\d+) SO_SNDBUF (\d+)/.exec(stdout);
      if (m) granted.push(`${site} R=${m[1]} S=${m[2]}`);
    }
    const version = (await sh(['wireguard-go', '--version']).catch(() => ({ stdout: 'wireguard-go (version unknown)' }))).stdout.split('\n')[0]!.trim();
    return {
      name: 'wireguard-go',
      remoteAddress: addr.b,
      pids: { a: procs[0]!.pid, b: procs[1]!.pid },
      describe:
        `${version}, MTU 1420, ChaCha20-Poly1305; UDP socket buffers raised from the kernel default (${await sysctlBytes('net.core.rmem_default')}, ` +
        `which this version keeps; releases from 2023 on ask for 7 MiB themselves) to ${SOCKET_BUFFER_BYTES} by bench/lib/set-socket-buffers.py (${granted.join(', ')})`,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export async function startOpenvpn(topo: Topology, opts: { ifPrefix: string; net: string }): Promise<PeerTunnel> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), 'brt-ovpn-')));
  chmodSync(dir, 0o700);
  const ifname = { a: `${opts.ifPrefix}ova`, b: `${opts.ifPrefix}ovb` };
  const addr = { a: `${opts.net}.1`, b: `${opts.net}.2` };
  const under = { a: topo.a.links[0]!.address, b: topo.b.links[0]!.address };
  const procs: ReturnType<typeof track>[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopProcess(p, 2000)));
    for (const site of ['a', 'b'] as const) await topo.execIn(site, ['ip', 'link', 'del', ifname[site]]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const fp: Record<'a' | 'b', string> = { a: '', b: '' };
    for (const site of ['a', 'b'] as const) {
      await sh([
        'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, `${site}.key`), '-out', join(dir, `${site}.crt`), '-days', '2', '-subj', `/CN=brt-bench-${site}`,
      ]);
      const { stdout } = await sh(['openssl', 'x509', '-in', join(dir, `${site}.crt`), '-noout', '-fingerprint', '-sha256']);
      const m = /Fingerprint=([0-9A-F:]+)/i.exec(stdout);
      if (!m) throw new Error(`openssl: no SHA-256 fingerprint in: ${stdout}`);
      fp[site] = m[1]!;
    }
    const outs: ReturnType<typeof captureOutput>[] = [];
    for (const site of ['a', 'b'] as const) {
      const peer = site === 'a' ? 'b' : 'a';
      const argv = [
        'openvpn',
        '--dev', ifname[site], '--dev-type', 'tun',
        '--proto', 'udp', '--local', under[site], '--lport', String(OVPN_PORT), '--remote', under[peer], String(OVPN_PORT),
        '--ifconfig', addr[site], addr[peer],
        site === 'a' ? '--tls-server' : '--tls-client',
        ...(site === 'a' ? ['--dh', 'none'] : []),
        '--cert', join(dir, `${site}.crt`), '--key', join(dir, `${site}.key`),
        '--peer-fingerprint', fp[peer],
        '--tls-version-min', '1.2',
        '--data-ciphers', 'AES-256-GCM', '--data-ciphers-fallback', 'AES-256-GCM',
        '--disable-dco',
        // The same 4 MiB socket buffers Braid asks for (DESIGN.md "Hot path"); the kernel caps them
        // at net.core.{r,w}mem_max, and the log line "Socket Buffers: R=[..->..]" says what was granted.
        '--sndbuf', String(SOCKET_BUFFER_BYTES), '--rcvbuf', String(SOCKET_BUFFER_BYTES),
        '--verb', '3',
      ];
      const p = track(topo.spawnIn(site, argv));
      procs.push(p);
      outs.push(captureOutput(p));
    }
    for (const [i, site] of (['a', 'b'] as const).entries()) {
      await outs[i]!.waitFor(/Initialization Sequence Completed/, 30_000, `openvpn (site ${site}) to connect`);
    }
    const log = outs[0]!.text();
    const cipher = /Data Channel: cipher '([^']+)'/.exec(log)?.[1] ?? /Outgoing Data Channel: Cipher '([^']+)'/.exec(log)?.[1];
    if (cipher !== undefined && cipher !== 'AES-256-GCM') throw new Error(`openvpn negotiated ${cipher}, expected AES-256-GCM`);
    const version = /OpenVPN (\d+\.\d+\.\d+)/.exec(log)?.[1] ?? '?';
    const buffers = /Socket Buffers: (R=\[[^\]]*\] S=\[[^\]]*\])/.exec(log)?.[1];
    return {
      name: 'openvpn',
      remoteAddress: addr.b,
      pids: { a: procs[0]!.pid, b: procs[1]!.pid },
      describe:
        `OpenVPN ${version}, UDP, ${cipher ?? 'AES-256-GCM (cipher line not seen in the log)'}, DCO off, default tun-mtu 1500 / mssfix, ` +
        `--sndbuf/--rcvbuf ${SOCKET_BUFFER_BYTES} (socket buffers ${buffers ?? 'not reported'})`,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
