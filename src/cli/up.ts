/**
 * `braid up -c FILE`: config -> TUN -> one UDP socket per WAN link -> Edge + Driver -> control
 * socket. Runs until SIGINT/SIGTERM, then logs the final counters and removes what it created.
 */
import { Endpoint, type EndpointConfig } from '../core/endpoint.ts';
import type { PathRtt, PeerConfig } from '../core/types.ts';
import { buildPathRtts, snapshotSteps } from '../core/snapshot.ts';
import { DEFAULT_DSCP_TRUST, type DscpTrustPolicy } from '../core/steer/dscp-trust.ts';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { SOCKET_BUFFER_BYTES } from '../core/constants.ts';
import { checkInterfaces, classOverrides, classPolicies, loadConfig, ruleSpecs, type BraidConfig } from '../control/config.ts';
import { ControlServer, type EdgeStatus, type LinkSocketStatus, type TunOffloadStatus } from '../control/control-socket.ts';
import { DEFAULT_METRICS_LISTEN, startMetricsServer } from '../control/metrics.ts';
import { createLogger, eventLogFields, type LogLevel } from '../control/logger.ts';
import { drainHandler } from '../control/drain.ts';
import { SystemRng, monotonicNowMs } from '../io/clock.ts';
import { Driver } from '../io/driver.ts';
import { DataPathRewarm, warmUpDataPath, type DataPathWarmer } from '../io/jit-warmup.ts';
import { KeepWarm } from '../io/keep-warm.ts';
import { openTun, type TunDevice } from '../io/tun.ts';
import { DeviceCounterReader } from '../io/tun-stats.ts';
import { droppedDatagramsEstimate, readUdpTables, type UdpSocketRow } from '../io/socket-stats.ts';
import { linkRcvbufBytes, openUdpLink, type UdpLink } from '../io/udp.ts';
import { readInterfaceMtu } from '../control/mtu-check.ts';
import { hasAesInstructions } from '../io/cpu-features.ts';
import { linkTooBig } from '../core/peer-pmtu.ts';
import { decodeKey } from '../core/crypto/keys.ts';
import { HealthTarget } from '../io/health.ts';
import type { AeadFactory } from '../core/crypto/transport.ts';
import { nativeAeadFactory } from '../io/native-aead.ts';
import { readPrivateKeyFile } from './keys.ts';
import { listRoutes, syncRoutes } from '../io/routes.ts';
import type { FleetRegistry } from '../control/registry-up.ts';


function ioToBraid(e: unknown, code: ErrorCode, what: string, fix: string): BraidError {
  const msg = e instanceof Error ? e.message : String(e);
  return new BraidError(code, `${what}: ${msg}`, { fix, cause: e });
}

/** The core's view of the config's peers (keys decoded, keepalive in ms). */
export function peerConfigsFrom(cfg: BraidConfig): PeerConfig[] {
  // One peer without prefixes is the point-to-point setup of earlier versions: it gets every
  // destination. With several peers, each must list its prefixes (WireGuard's AllowedIPs).
  const onlyPeerTakesAll = cfg.peers.length === 1 && cfg.peers[0]!.prefixes.length === 0;
  return cfg.peers.map((p) => ({
    name: p.name,
    prefixes: onlyPeerTakesAll ? ['0.0.0.0/0', '::/0'] : p.prefixes,
    ...(p.publicKey ? { publicKey: decodeKey(p.publicKey)! } : {}),
    ...(p.endpoints ? { endpoints: Object.fromEntries(Object.entries(p.endpoints).map(([k, e]) => [k, { address: e.address, port: e.port }])) } : {}),
    ...(p.links ? { links: p.links } : {}),
    ...(p.persistentKeepalive ? { persistentKeepaliveMs: p.persistentKeepalive * 1000 } : {}),
  }));
}

/** Kernel routes into the TUN: every peer prefix (a lone peer without prefixes routes only the TUN subnet, as before). */
function routedPrefixes(cfg: BraidConfig): string[] {
  return cfg.peers.flatMap((p) => p.prefixes);
}

export function edgeConfigFrom(cfg: BraidConfig, privateKey: Uint8Array | undefined, aead?: AeadFactory, aesAccelerated = false): EndpointConfig {
  const crypto =
    cfg.insecurePlaintext || !privateKey
      ? undefined
      : {
          privateKey,
          // Handshake timestamps are wall clock (anti-replay across restarts); the core sees only monotonic time.
          wallClockEpochMs: Date.now() - monotonicNowMs(),
          cipher: cfg.cipher,
          aesAccelerated,
          ...(aead ? { aead } : {}),
          // The Driver's datagrams are views into the link's receive slab, reused only by the next
          // batch: data packets are opened over their own ciphertext, no allocation per packet.
          openInPlace: true,
        };
  // FEC codec: the core's default, the pure TypeScript one, is faster here than the wasm build of
  // reed-solomon-erasure (bench/fec.ts: 8+2 ~33 vs ~51 us per group), so no wasm is loaded.
  return {
    site: cfg.site,
    // The fleet role (registry.role): a hub probes its spokes' idle paths on its own even schedule.
    ...(cfg.registry ? { role: cfg.registry.role } : {}),
    ...(crypto ? { crypto } : {}),
    // Queue policies always: CoDel is on for the WFQ classes' queues by default (classOverrides).
    ...(cfg.classes ? { policies: classPolicies(cfg), ...classOverrides(cfg) } : { queues: classOverrides(cfg).queues }),
    links: cfg.links.map((l) => ({
      name: l.name,
      costTier: l.costTier,
      // Path MTU discovery starts at, and searches up to, the interface's MTU (default 1500).
      ...linkMtu(l.interface),
      ...(l.bandwidthUp ? { bandwidthBps: l.bandwidthUp } : {}),
    })),
    peers: peerConfigsFrom(cfg),
    rules: ruleSpecs(cfg),
    dscpTrust: dscpTrustFrom(cfg),
  };
}

/** The link's interface MTU, when it can be read (the interface may not exist in tests). */
function linkMtu(ifname: string): { mtuBytes?: number } {
  const mtu = readInterfaceMtu(ifname);
  return mtu === undefined ? {} : { mtuBytes: mtu };
}

/** The LAN trust boundary from the config (defaults: control 2 Mbit/s, voice 20 Mbit/s). */
export function dscpTrustFrom(cfg: BraidConfig): DscpTrustPolicy {
  const t = cfg.dscpTrust;
  return {
    remarkUntrusted: t?.remarkUntrusted ?? false,
    classRateCapsBps: [t?.controlCap ?? DEFAULT_DSCP_TRUST.classRateCapsBps[0], t?.voiceCap ?? DEFAULT_DSCP_TRUST.classRateCapsBps[1]],
  };
}

export async function runUp(configPath: string, logLevel: string | undefined): Promise<number> {
  const cfg = loadConfig(configPath);
  checkInterfaces(cfg, configPath);
  const level = (logLevel ?? cfg.log.level) as LogLevel;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) {
    throw new BraidError(ErrorCode.USAGE, `--log-level ${level}: unknown level`, { fix: 'use trace, debug, info, warn or error' });
  }
  const log = createLogger(level, cfg.site);
  const privateKey = cfg.insecurePlaintext ? undefined : readPrivateKeyFile(cfg.privateKeyFile!);
  cfg.peers.forEach((p, i) => {
    if (p.publicKey && !decodeKey(p.publicKey)) {
      throw new BraidError(ErrorCode.KEY_INVALID, `config ${configPath}: peers[${i}].publicKey: not a valid X25519 public key`, { field: `peers[${i}].publicKey`, fix: "paste the peer's `braid pubkey` output" });
    }
  });
  if (cfg.insecurePlaintext) log.warn('insecurePlaintext: the overlay is NOT encrypted or authenticated (benchmarks only)');
  const opened: { tun?: TunDevice; links: UdpLink[]; control?: ControlServer } = { links: [] };
  let routesInstalled = new Set<string>();
  const cleanup = (): void => {
    opened.control?.close();
    for (const l of opened.links) l.close();
    opened.tun?.close();
  };
  try {
    try {
      opened.tun = await openTun({ name: cfg.tun.name, mtuBytes: cfg.tun.mtu, addressCidr: cfg.tun.address, txQueueLen: cfg.tun.txQueueLen, offload: cfg.tun.offload === 'auto', queues: cfg.tun.queues, ...(cfg.tun.address6 ? { address6Cidr: cfg.tun.address6 } : {}) });
    } catch (e) {
      throw ioToBraid(e, ErrorCode.TUN_OPEN_FAILED, `tun ${cfg.tun.name}`, 'run as root (or with CAP_NET_ADMIN) and check tun.name/tun.address');
    }
    // A route into the TUN for every peer prefix (ours are tagged, so a crash leaves nothing we cannot find).
    routesInstalled = await listRoutes(opened.tun.name).catch(() => new Set<string>());
    await syncRoutes(opened.tun.name, routedPrefixes(cfg), routesInstalled);
    for (const [i, l] of cfg.links.entries()) {
      try {
        const { link, kind } = await openUdpLink({
          bindAddress: l.bind,
          port: l.port,
          device: l.interface,
          // Smaller with TUN offloads: the socket is otherwise the standing queue (udp.ts linkRcvbufBytes).
          rcvbufBytes: linkRcvbufBytes(opened.tun?.offload === true, SOCKET_BUFFER_BYTES),
          sndbufBytes: SOCKET_BUFFER_BYTES,
          // Never fragment the underlay: DF on every datagram, the kernel's PMTU ignored; the
          // core's path MTU discovery decides what fits (EMSGSIZE is a counted drop, see below).
          dontFragment: true,
        });
        opened.links.push(link);
        log.info({ link: l.name, interface: l.interface, port: link.port, io: kind }, `link ${l.name} bound ${l.bind.includes(':') ? `[${l.bind}]` : l.bind}:${link.port} on ${l.interface}`);
      } catch (e) {
        throw ioToBraid(e, ErrorCode.SOCKET_FAILED, `links[${i}] (${l.name})`, `check links[${i}].bind/port (is another process using port ${l.port}?)`);
      }
    }
  } catch (e) {
    cleanup();
    throw e;
  }
  const tun = opened.tun;
  // Data AEAD: OpenSSL contexts kept per key in the addon when it loads (~4x cheaper per packet
  // than node:crypto's object per packet), else node:crypto; handed to the Edge in its config.
  const aead = cfg.insecurePlaintext ? undefined : nativeAeadFactory();
  if (!cfg.insecurePlaintext) log.info({ aead: aead ? 'native' : 'node:crypto' }, `data AEAD: ${aead ? `native (${aead.openssl})` : 'node:crypto (native addon unavailable)'}`);
  // cipher: auto needs this machine's answer (the peer announces its own in the handshake).
  // BRAID_CPUINFO: read the CPU flags from another file (tests of a peer without AES).
  const aesAccelerated = hasAesInstructions(process.env.BRAID_CPUINFO);
  if (!cfg.insecurePlaintext) {
    log.info({ cipher: cfg.cipher, aesAccelerated }, `data cipher: ${cfg.cipher}${cfg.cipher === 'auto' ? (aesAccelerated ? ' (AES instructions here: AES-256-GCM with peers that have them too, else ChaCha20-Poly1305)' : ' (no AES instructions here: ChaCha20-Poly1305 unless the peer sets aes-256-gcm)') : ''}`);
  }
  const edgeConfig = edgeConfigFrom(cfg, privateKey, aead?.factory, aesAccelerated);
  // Compile the data path before the first packet: an idle tunnel would otherwise run it in V8's
  // interpreter for minutes, 4 times per echo (src/io/jit-warmup.ts; BRAID_JIT_WARMUP=0 skips it).
  let warmer: DataPathWarmer | undefined;
  if (process.env.BRAID_JIT_WARMUP !== '0') {
    try {
      const { warmer: pair, ...w } = warmUpDataPath(edgeConfig, { tunMtuBytes: tun.mtuBytes, tunOffload: tun.offload === true });
      warmer = pair;
      log.debug({ warmup: w }, `data path warmed up: ${w.roundTrips} round trips in ${w.elapsedMs.toFixed(0)} ms`);
    } catch (e) {
      log.debug({ err: String(e) }, 'data path warm-up skipped');
    }
  }
  const edge = new Endpoint(edgeConfig, monotonicNowMs(), new SystemRng());
  const driver = new Driver({
    edge,
    tun,
    links: opened.links,
    onEvent: (ev) => {
      log.info(eventLogFields(ev), ev.message);
      opened.control?.publishEvent(ev);
    },
  });
  driver.start();
  // The same pair again once the real session and paths are up, and once real data went both ways
  // (the real objects deoptimise part of what the warm-up compiled); BRAID_JIT_REWARM=0 skips it.
  const rewarm =
    warmer && process.env.BRAID_JIT_REWARM !== '0'
      ? new DataPathRewarm(warmer, () => ({ fewestLinkDatagrams: Math.min(...opened.links.map((l) => l.counters.rxDatagrams)), tunReads: tun.counters.rxPackets, tunWrites: tun.counters.txPackets }), (r) => log.debug({ rewarm: r }, `data path re-warmed (${r.index}): ${r.roundTrips} round trips in ${r.slices} slices, ${r.busyMs.toFixed(0)} ms`))
      : undefined;
  // Between sparse packets (a ping, a voice call), one packet through the same pair each ms keeps
  // the data path in the CPU's caches (src/io/keep-warm.ts); latency.keepWarm: off skips it.
  const keepWarm = warmer && cfg.latency.keepWarm === 'auto' ? new KeepWarm(warmer, () => tun.counters.rxPackets + tun.counters.txPackets) : undefined;
  warmer = undefined;
  rewarm?.start();
  keepWarm?.start();

  // Datagrams a link socket dropped because its buffer was full (this box fell behind, e.g. under
  // a bulk load that saturates its CPU) are this box's loss, not the path's: the core counts them
  // as received, so the path is not degraded and voice not steered away for it
  // (Endpoint.noteLinkRxDropped). The kernel's per-socket counter, read every 100 ms (~0.2 ms), in
  // socket buffers: with UDP GRO scaled to datagrams (socket-stats.ts droppedDatagramsEstimate).
  const socketSeen = opened.links.map(() => ({ drops: -1, rx: 0, trains: 0, gro: 0 }));
  const socketDropWatch = setInterval(() => {
    const table = readUdpTables();
    driver.command((e, nowMs) => {
      opened.links.forEach((l, id) => {
        const st = l.socketStats?.(table);
        const seen = socketSeen[id]!;
        if (st === undefined) return;
        const rx = l.counters.rxDatagrams;
        const dropped = seen.drops < 0 ? 0 : droppedDatagramsEstimate(st.rxDropped - seen.drops, rx - seen.rx, st.groTrains - seen.trains, st.groDatagrams - seen.gro);
        seen.drops = st.rxDropped;
        seen.rx = rx;
        seen.trains = st.groTrains;
        seen.gro = st.groDatagrams;
        e.noteLinkRxDropped(nowMs, id, dropped);
      });
    });
  }, SOCKET_DROP_POLL_MS);
  socketDropWatch.unref();

  // EMSGSIZE (a datagram over the interface MTU with DF: the interface's MTU was lowered while we
  // run): the interface's MTU goes to path MTU discovery as a trusted too-big hint, once a second.
  const tooBigSeen = opened.links.map((l) => l.counters.txTooBig ?? 0);
  const tooBigWatch = setInterval(() => {
    opened.links.forEach((l, id) => {
      const n = l.counters.txTooBig ?? 0;
      if (n === tooBigSeen[id]) return;
      tooBigSeen[id] = n;
      const mtu = readInterfaceMtu(cfg.links[id]!.interface);
      if (mtu === undefined) return;
      log.warn({ link: cfg.links[id]!.name, mtu }, `${cfg.links[id]!.name}: datagrams over ${cfg.links[id]!.interface}'s MTU ${mtu} refused (EMSGSIZE); path MTU lowered to it`);
      driver.command((e, now) => linkTooBig(e.links, e.peersByName.values(), id, mtu, now));
    });
  }, 1000);
  tooBigWatch.unref();

  // External health targets: "ISP down" vs "peer down", one ICMP echo per second per link.
  const healthTargets: HealthTarget[] = [];
  for (const l of cfg.links) {
    if (!l.healthTarget) continue;
    try {
      const h = new HealthTarget({
        interface: l.interface,
        target: l.healthTarget,
        onChange: (reachable, detail) => {
          const message = reachable
            ? `${l.name}: external target ${detail}: the ISP path works`
            : `${l.name}: external target ${detail}: the ISP or the link is down, not (only) the peer`;
          log[reachable ? 'info' : 'warn']({ event: 'health', link: l.name, reachable }, message);
          // Into the core: an unreachable target takes the link's paths DOWN at once (ISP down).
          const linkId = cfg.links.indexOf(l);
          driver.command((e, now) => e.setLinkHealth(now, linkId, reachable, l.healthTarget!));
          opened.control?.publishEvent({ atMs: monotonicNowMs(), kind: 'pathState', link: l.name, message });
        },
      });
      h.start();
      healthTargets.push(h);
    } catch (e) {
      log.warn({ link: l.name }, e instanceof BraidError ? e.oneLine() : String(e));
    }
  }

  /**
   * Config reload (SIGHUP or the control socket): validate the new file completely first; a bad
   * one is one error line and the running config stays. What can change live is applied without
   * touching flows or the session; anything else is named as needing a restart.
   */
  let running = cfg;
  // Fleet registry (issue 12): sites in etcd become peers next to the YAML's (which win), through
  // the same setPeers path as a reload; set by startFleetRegistry below when registry: is configured.
  let fleet: FleetRegistry | undefined;
  const withRegistry = (c: BraidConfig): BraidConfig => (fleet ? { ...c, peers: [...c.peers, ...fleet.peersFor(c.peers)] } : c);
  const startedQueues = classOverrides(cfg).queues;
  const reload = async (trigger: string): Promise<string | undefined> => {
    let next: BraidConfig;
    try {
      next = loadConfig(configPath);
      checkInterfaces(next, configPath);
      if (!next.insecurePlaintext) readPrivateKeyFile(next.privateKeyFile!);
    } catch (e) {
      const line = e instanceof BraidError ? e.oneLine() : String(e);
      log.error({ trigger }, `reload rejected, keeping the running config: ${line}`);
      return line;
    }
    const applied: string[] = [];
    if (next.log.level !== running.log.level && !logLevel) {
      log.level = next.log.level;
      applied.push(`log.level=${next.log.level}`);
    }
    // Classes: SLA, strategy, outer DSCP and FEC apply live; queue policies shape the per-link
    // schedulers built at start, so they wait for a restart.
    let classesNow = running.classes;
    if (JSON.stringify(next.classes) !== JSON.stringify(running.classes)) {
      try {
        const changed = edge.setClassPolicies(monotonicNowMs(), classPolicies(next), classOverrides(next).fec);
        applied.push(...changed.map((c) => `classes.${c.replace(': ', '.')}`));
        classesNow = next.classes;
      } catch (e) {
        const line = `classes: ${(e as Error).message}`;
        log.error({ trigger }, `reload rejected, keeping the running config: ${line}`);
        return line;
      }
    }
    // Application rules and the DSCP trust boundary: live (rule counters carry over by name).
    if (JSON.stringify(next.rules) !== JSON.stringify(running.rules) || JSON.stringify(next.dscpTrust) !== JSON.stringify(running.dscpTrust)) {
      const rules = ruleSpecs(next);
      const trust = dscpTrustFrom(next);
      driver.command((e) => {
        e.setRules(rules);
        e.dscpTrust.setPolicy(trust);
      });
      applied.push('rules', 'dscpTrust');
    }
    // Peers: added, removed and edited live; the others keep their sessions, flows and counters.
    let peersNow = running.peers;
    if (JSON.stringify(next.peers) !== JSON.stringify(running.peers) && JSON.stringify(next.links) === JSON.stringify(running.links)) {
      try {
        let result: { added: string[]; removed: string[]; changed: string[] } = { added: [], removed: [], changed: [] };
        driver.command((e, now) => {
          result = e.setPeers(now, peerConfigsFrom(withRegistry(next)));
        });
        await syncRoutes(tun.name, routedPrefixes(withRegistry(next)), routesInstalled);
        applied.push(...result.added.map((n) => `peers+${n}`), ...result.removed.map((n) => `peers-${n}`), ...result.changed.map((n) => `peers~${n}`));
        peersNow = next.peers;
      } catch (e) {
        const line = e instanceof BraidError ? e.oneLine() : `peers: ${(e as Error).message}`;
        log.error({ trigger }, `reload rejected, keeping the running config: ${line}`);
        return line;
      }
    }
    const queueChanged = JSON.stringify(classOverrides(next).queues) !== JSON.stringify(startedQueues);
    const restartNeeded = [
      ...(['site', 'tun', 'links', 'privateKeyFile', 'insecurePlaintext', 'cipher', 'latency', 'control', 'metrics'] as const).filter(
        (k) => JSON.stringify(next[k]) !== JSON.stringify(running[k]),
      ),
      ...(queueChanged ? ['classes.*.queue'] : []),
    ];
    // Only what was applied becomes the running config: the rest still runs as started.
    running = { ...running, log: next.log, classes: classesNow, peers: peersNow, rules: next.rules, dscpTrust: next.dscpTrust };
    if (JSON.stringify(next.peers) !== JSON.stringify(peersNow)) restartNeeded.push('peers (with links changed)');
    log.info({ trigger, applied, restartNeeded }, `config reloaded${applied.length ? `: applied ${applied.join(', ')}` : ': nothing to apply live'}${restartNeeded.length ? `; changes to ${restartNeeded.join(', ')} take effect at the next restart` : ''}`);
    return undefined;
  };
  // The TUN's kernel counters (drops before Braid reads, after it writes) next to the core's.
  const tunCounters = new DeviceCounterReader(tun.name);
  /** A core snapshot with the shell's additions: the TUN's kernel counters, the link sockets', the fleet registry. */
  const withShellStatus = (snap: EdgeStatus): EdgeStatus => {
    const c = tunCounters.read();
    if (c) snap.tunDevice = { name: tun.name, ...c, writeRefused: tun.counters.txDropped, queues: tun.queues ?? 1, offload: tunOffloadStatus(tun) };
    const sockets = linkSocketStatus(opened.links, cfg.links);
    if (sockets.length > 0) snap.linkSockets = sockets;
    if (fleet) snap.registry = fleet.status();
    const kw = keepWarm?.stats();
    snap.keepWarm = { enabled: kw !== undefined, active: kw?.active ?? false, pulses: kw?.pulses ?? 0, busyMs: Math.round((kw?.busyMs ?? 0) * 10) / 10 };
    return snap;
  };
  const status = (): EdgeStatus => withShellStatus(edge.snapshot(monotonicNowMs()));
  /** The /metrics scrape's snapshot one peer per step, each at its own time (a whole one held a 1,000-spoke hub's loop 20-40 ms). */
  function* statusSteps(): Generator<void, EdgeStatus, undefined> {
    const steps = snapshotSteps(edge, monotonicNowMs());
    for (let r = steps.next(); ; r = steps.next(monotonicNowMs())) {
      if (r.done) return withShellStatus(r.value);
      yield;
    }
  }
  try {
    opened.control = await ControlServer.listen(cfg.control.socket, {
      status,
      reload: async () => reload('control socket'),
      // By link for every peer, or by (peer, link); peers are read per request (reloads change them).
      drain: drainHandler(
        cfg.links.map((l) => l.name),
        { has: (n) => edge.peersByName.has(n), names: () => [...edge.peersByName.keys()] },
        (id, drained, peer) => driver.command((e, now) => e.setLinkAdmin(now, id, drained, peer)),
      ),
    });
  } catch (e) {
    log.warn({ socket: cfg.control.socket }, `control socket unavailable (${(e as Error).message}); braid status/dash will not work`);
  }
  // Metrics are optional: a busy port is one warning, not a failed edge.
  const metricsListen = cfg.metrics?.listen ?? DEFAULT_METRICS_LISTEN;
  // The per-second RTT sample reads each path's srtt (buildPathRtts), not a whole snapshot: at a
  // 1,000-spoke hub a snapshot held the loop 20-40 ms every second. A scrape takes its snapshot in steps.
  const rttSource = (): { nowMs: number; paths: PathRtt[] } => ({ nowMs: monotonicNowMs(), paths: buildPathRtts(edge) });
  const metricsOpts = { rttSource, snapshotSteps: statusSteps, ...(cfg.metrics?.pathSeries === undefined ? {} : { pathSeries: cfg.metrics.pathSeries }) };
  const metrics = cfg.metrics?.enabled === false ? undefined : await startMetricsServer(metricsListen, status, metricsOpts).catch((e: Error) => void log.warn({ listen: metricsListen }, `metrics unavailable (${e.message})`));
  if (cfg.registry) {
    // Loaded only with a registry: the etcd client (gRPC) costs every other start time.
    const { startFleetRegistry } = await import('../control/registry-up.ts');
    fleet = startFleetRegistry({
      cfg,
      registry: cfg.registry,
      privateKey: privateKey!,
      log,
      yamlPeers: () => running.peers,
      apply: async (peers) => {
        const all = { ...running, peers: [...running.peers, ...peers] };
        let result: { added: string[]; removed: string[]; changed: string[] } = { added: [], removed: [], changed: [] };
        driver.command((e, now) => {
          result = e.setPeers(now, peerConfigsFrom(all));
        });
        await syncRoutes(tun.name, routedPrefixes(all), routesInstalled);
        return result;
      },
    });
  }
  process.on('SIGHUP', () => void reload('SIGHUP'));
  if (tun.queuesError !== undefined) log.warn({ tun: tun.name, asked: cfg.tun.queues, queues: tun.queues ?? 1, error: tun.queuesError }, `tun ${tun.name}: ${tun.queues ?? 1} queue instead of ${cfg.tun.queues} (${tun.queuesError}); packets of every flow share one queue (set tun.queues: 1 to silence this)`);
  log.info({ tun: tun.name, offload: tun.offload === true, queues: tun.queues ?? 1, links: cfg.links.map((l) => l.name), peers: cfg.peers.length }, `braid up: site ${cfg.site}, tun ${tun.name} ${cfg.tun.address}${cfg.tun.address6 ? ` ${cfg.tun.address6}` : ''} (offload ${tun.offload === true ? 'on' : cfg.tun.offload === 'off' ? 'off' : 'off: the kernel refused it'}, ${tun.queues ?? 1} queue${(tun.queues ?? 1) === 1 ? '' : 's'}), ${cfg.links.length} links, ${cfg.peers.length} peer${cfg.peers.length === 1 ? '' : 's'}`);

  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  clearInterval(tooBigWatch);
  clearInterval(socketDropWatch);
  rewarm?.stop();
  keepWarm?.stop();
  driver.stop();
  await fleet?.close();
  await metrics?.close();
  for (const h of healthTargets) h.close();
  tunCounters.close();
  const snap = edge.snapshot(monotonicNowMs());
  log.info({ final: snap }, 'final counters');
  await syncRoutes(tun.name, [], routesInstalled).catch(() => undefined);
  cleanup();
  // Give pino's async destination a moment to flush.
  await new Promise((r) => setTimeout(r, 50));
  return 0;
}

/** How often the link sockets' kernel drop counters go to the core (its loss windows: ~1 s short). */
const SOCKET_DROP_POLL_MS = 100;

/** linkSockets of the status: each link socket's kernel counters (one proc read for all of them). */
export function linkSocketStatus(links: readonly UdpLink[], names: readonly { name: string }[], table: ReadonlyMap<number, UdpSocketRow> = readUdpTables()): LinkSocketStatus[] {
  const out: LinkSocketStatus[] = [];
  links.forEach((link, id) => {
    const st = link.socketStats?.(table);
    if (st !== undefined) out.push({ link: names[id]?.name ?? `link${id}`, port: link.port, ...st });
  });
  return out;
}

/** tunDevice.offload of the status: whether TUN offloads run and what they did. */
function tunOffloadStatus(tun: TunDevice): TunOffloadStatus {
  const r = tun.offloadStats?.();
  return {
    enabled: tun.offload === true,
    readSuperSegments: r?.superSegments ?? 0,
    readSegments: r?.segments ?? 0,
    readDropped: r ? r.droppedHeader + r.droppedPacket + r.droppedUnsupported : 0,
    writeSuperSegments: tun.counters.txSuperSegments ?? 0,
    writeCoalescedPackets: tun.counters.txCoalescedPackets ?? 0,
  };
}
