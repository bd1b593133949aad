/**
 * The `braid` command. Exit codes (DESIGN.md section 6): 0 ok, 1 runtime failure or failed
 * expectation, 2 usage or configuration error. Errors are one line: `braid: <what>; fix: <how>`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BraidError, ErrorCode, isBraidError } from '../core/errors.ts';

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  up: {
    summary: 'run the edge: TUN device, one UDP socket per WAN link, the overlay to the peer',
    usage: 'braid up -c FILE [--log-level LEVEL]',
    options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' } },
    async run(v) {
      const { runUp } = await import('./up.ts');
      return runUp(requireConfigPath(v), typeof v['log-level'] === 'string' ? v['log-level'] : undefined);
    },
  },
  check: {
    summary: 'validate a configuration file (schema and interfaces) and exit',
    usage: 'braid check -c FILE',
    options: { config: { type: 'string', short: 'c' }, 'skip-interfaces': { type: 'boolean' } },
    async run(v) {
      const { loadConfig, checkInterfaces } = await import('../control/config.ts');
      const path = requireConfigPath(v);
      const cfg = loadConfig(path);
      if (!v['skip-interfaces']) checkInterfaces(cfg, path);
      if (!cfg.insecurePlaintext) {
        const { readPrivateKeyFile } = await import('./keys.ts');
        const { decodeKey } = await import('../core/crypto/keys.ts');
        readPrivateKeyFile(cfg.privateKeyFile!);
        cfg.peers.forEach((p, i) => {
          if (!decodeKey(p.publicKey!)) throw new BraidError(ErrorCode.KEY_INVALID, `config ${path}: peers[${i}].publicKey: not a valid X25519 public key`, { field: `peers[${i}].publicKey`, fix: "paste the peer's `braid pubkey` output" });
        });
      }
      if (!v['skip-interfaces']) {
        // tun.mtu against each link's real MTU: a warning (the config is valid; the underlay would
        // drop or refuse the largest inner packets), one line each with the fix.
        const { checkTunMtu } = await import('../control/mtu-check.ts');
        const links = cfg.links.map((l, index) => ({ index, name: l.name, interface: l.interface, family: (l.bind.includes(':') ? 6 : 4) as 4 | 6 }));
        for (const w of checkTunMtu(cfg.tun.mtu, links)) process.stderr.write(`braid: warning: ${path}: ${w.field}: ${w.message}; fix: ${w.fix}\n`);
      }
      const peers = cfg.peers.length === 1 ? `peer ${cfg.peers[0]!.name}` : `${cfg.peers.length} peers`;
      process.stdout.write(`${path}: ok (site ${cfg.site}, ${cfg.links.length} links: ${cfg.links.map((l) => `${l.name}@${l.interface}`).join(', ')}; ${peers})\n`);
      return 0;
    },
  },
  keygen: {
    summary: 'generate a private key (base64, like wg genkey); --out writes a 0600 file',
    usage: 'braid keygen [--out FILE] [--force]',
    options: { out: { type: 'string', short: 'o' }, force: { type: 'boolean' } },
    async run(v) {
      const { runKeygen } = await import('./keys.ts');
      return runKeygen(typeof v.out === 'string' ? v.out : undefined, v.force === true);
    },
  },
  pubkey: {
    summary: 'print the public key of a private key (from FILE or stdin)',
    usage: 'braid pubkey [FILE]   |   braid keygen | braid pubkey',
    options: {},
    async run(_v, positionals) {
      const { runPubkey } = await import('./keys.ts');
      return runPubkey(positionals[0]);
    },
  },
  demo: {
    summary: 'the built-in two-site demo in the simulator: three WAN links, a blackout and a recovery',
    usage: 'braid demo [--seconds N] [--speed X] [--seed N]',
    options: { seconds: { type: 'string' }, speed: { type: 'string' }, seed: { type: 'string' } },
    async run(v) {
      const { runDemo } = await import('./demo.ts');
      return runDemo({
        seconds: numberOption(v, 'seconds', 30, 1, 3600),
        speed: numberOption(v, 'speed', 1, 0.1, 1000),
        seed: numberOption(v, 'seed', 1, 0, 2 ** 32 - 1),
      });
    },
  },
  sim: {
    summary: 'rehearse failures: run an impairment scenario (virtual or real time) with a report, or the VOPR',
    usage: 'braid sim run SCENARIO [--virtual|--real] [--seed N] [--json] [--tag T] [--backend tc|userspace] | braid sim vopr [--seed N] [--runs N] [--long] [--json] | braid sim list',
    options: {
      virtual: { type: 'boolean' },
      real: { type: 'boolean' },
      seed: { type: 'string' },
      runs: { type: 'string' },
      long: { type: 'boolean' },
      json: { type: 'boolean' },
      tag: { type: 'string' },
      backend: { type: 'string' },
    },
    async run(v, positionals) {
      const { runSim } = await import('./sim.ts');
      return runSim(v, positionals);
    },
  },
  status: {
    summary: 'show the running edge like wg show: per peer its paths, handshake, transfer, prefixes; links, classes, drops, events (past 20 peers a summary and the 10 worst: --all for every peer, --peer NAME for one in full, --json for scripts)',
    usage: 'braid status [--peer NAME] [--all] [--json] [--socket PATH | -c FILE]',
    options: { json: { type: 'boolean' }, peer: { type: 'string', short: 'p' }, all: { type: 'boolean', short: 'a' }, socket: { type: 'string', short: 's' }, config: { type: 'string', short: 'c' } },
    async run(v) {
      const { runStatus } = await import('./status.ts');
      return runStatus(v);
    },
  },
  dash: {
    summary: 'the terminal dashboard of the running edge (q quits, d drains a link, ? help)',
    usage: 'braid dash [--socket PATH | -c FILE] [--interval MS]',
    options: { socket: { type: 'string', short: 's' }, config: { type: 'string', short: 'c' }, interval: { type: 'string' } },
    async run(v) {
      const { runDash } = await import('./dash.ts');
      return runDash(v);
    },
  },
  fleet: {
    summary: 'the fleet registry in etcd: list the sites, show one, add a static one, remove one',
    usage: 'braid fleet list [--json] | show NAME | add NAME --key PUB --link L[=ADDR:PORT],... [--role hub|spoke] [--prefix P,...] [--mesh] | remove NAME   (-c FILE, or --etcd URL[,URL] [--key-prefix /braid/])',
    options: {
      config: { type: 'string', short: 'c' },
      etcd: { type: 'string' },
      'key-prefix': { type: 'string' },
      json: { type: 'boolean' },
      role: { type: 'string' },
      key: { type: 'string' },
      prefix: { type: 'string' },
      link: { type: 'string' },
      mesh: { type: 'boolean' },
    },
    async run(v, positionals) {
      const { runFleet } = await import('./fleet.ts');
      return runFleet(v, positionals);
    },
  },
  'install-service': {
    summary: 'write the systemd unit (default /etc/systemd/system/braid.service) and print the next steps',
    usage: 'braid install-service [--config FILE] [--path FILE]',
    options: { config: { type: 'string', short: 'c' }, path: { type: 'string' } },
    async run(v) {
      const { runInstallService } = await import('./install-service.ts');
      return runInstallService(v);
    },
  },
};

function requireConfigPath(v: Record<string, string | boolean | undefined>): string {
  const c = v.config;
  if (typeof c !== 'string' || c === '') throw new BraidError(ErrorCode.USAGE, 'missing -c FILE', { fix: 'pass the configuration file, e.g. braid up -c /etc/braid/braid.yaml' });
  return c;
}

function numberOption(v: Record<string, string | boolean | undefined>, name: string, dflt: number, min: number, max: number): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(n) || n < min || n > max) {
    throw new BraidError(ErrorCode.USAGE, `--${name} ${String(raw)}: expected a number from ${min} to ${max}`, { fix: `e.g. --${name} ${dflt}` });
  }
  return n;
}

/** package.json's version: ../../package.json from src/cli in a clone and in the package alike. */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'braid: SD-WAN edge overlay (multipath, encrypted, FEC-protected IP tunnel over every WAN link)',
    '',
    'usage: braid COMMAND [options]      braid COMMAND --help for its options',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`braid ${version()}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`braid: unknown command "${name}"; fix: run \`braid --help\` for the list\n`);
    return 2;
  }
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      const opts = Object.entries(cmd.options)
        .map(([k, o]) => `  ${o.short ? `-${o.short}, ` : '    '}--${k}${o.type === 'string' ? ' VALUE' : ''}`)
        .join('\n');
      process.stdout.write(`${cmd.usage}\n\n${cmd.summary}\n\noptions:\n${opts}\n`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
    } catch (e) {
      throw new BraidError(ErrorCode.USAGE, `${name}: ${(e as Error).message}`, { fix: `usage: ${cmd.usage}` });
    }
    return await cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
  } catch (e) {
    if (isBraidError(e)) {
      process.stderr.write(`braid: ${e.oneLine()}\n`);
      return e.exitCode;
    }
    process.stderr.write(`braid: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
