import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectNetemBackend,
  formatNetemTokens,
  parseNetemSpec,
  runCommand,
  tcCommandLines,
  type CommandResult,
  type CommandRunner,
} from '../../../sim/netem/spec.ts';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';
import { loadLinkProfiles } from '../../../sim/netem/profiles.ts';

describe('tcCommandLines', () => {
  it('gives the exact argv for tc qdisc replace ... root netem', () => {
    const spec = parseNetemSpec('delay 30ms 5ms distribution normal loss gemodel 1% 20% rate 20mbit');
    expect(tcCommandLines('eth1', spec)).toEqual([
      ['tc', 'qdisc', 'replace', 'dev', 'eth1', 'root', 'netem', 'delay', '30ms', '5ms', 'distribution', 'normal', 'loss', 'gemodel', '1%', '20%', '100%', '0%', 'rate', '20mbit'],
    ]);
    expect(tcCommandLines('veth-a0', parseNetemSpec('loss 0.5% 25% duplicate 1%'), { namespace: 'brt-site-a', handle: '1:' })).toEqual([
      ['tc', '-n', 'brt-site-a', 'qdisc', 'replace', 'dev', 'veth-a0', 'root', 'handle', '1:', 'netem', 'loss', '0.5%', '25%', 'duplicate', '1%'],
    ]);
    expect(tcCommandLines('wan0', parseNetemSpec(''))).toEqual([['tc', 'qdisc', 'replace', 'dev', 'wan0', 'root', 'netem']]);
    expect(tcCommandLines('wan0', parseNetemSpec('limit 20 delay 10ms reorder 25% 50% gap 5 corrupt 0.1% rate 1mbit 40 48 5 slot 1ms 3ms packets 8 ecn loss 1%'))[0]).toEqual(
      ['tc', 'qdisc', 'replace', 'dev', 'wan0', 'root', 'netem', 'limit', '20', 'delay', '10ms', 'loss', '1%', 'ecn', 'reorder', '25%', '50%', 'gap', '5', 'corrupt', '0.1%', 'rate', '1mbit', '40', '48', '5', 'slot', '1ms', '3ms', 'packets', '8'],
    );
  });

  it('leaves out "distribution uniform", which tc cannot load (there is no uniform.dist)', () => {
    expect(tcCommandLines('eth0', parseNetemSpec('delay 10ms 2ms distribution uniform'))[0]).toEqual(['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', '10ms', '2ms']);
  });

  it('refuses names tc or the kernel would refuse', () => {
    const spec = parseNetemSpec('delay 1ms');
    for (const [dev, options] of [
      ['', {}],
      ['much-too-long-name0', {}],
      ['eth 0', {}],
      ['a/b', {}],
      ['eth0', { namespace: 'bad ns' }],
      ['eth0', { handle: 'root' }],
    ] as const) {
      let error: unknown;
      try {
        tcCommandLines(dev, spec, options);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BraidError);
      expect((error as BraidError).code).toBe(ErrorCode.USAGE);
    }
  });
});

const isRoot = process.getuid?.() === 0;
const hasTc = isRoot && (await runCommand('tc', ['-V'])).code === 0 && (await runCommand('ip', ['-V'])).code === 0;

describe.skipIf(!hasTc)('the real tc accepts what we generate (throwaway namespace, root only)', () => {
  const ns = `brt-tcsyntax-${process.pid}`;
  beforeAll(async () => {
    await runCommand('ip', ['netns', 'del', ns]);
    expect((await runCommand('ip', ['netns', 'add', ns])).code).toBe(0);
  });
  afterAll(async () => {
    await runCommand('ip', ['netns', 'del', ns]);
  });

  // tc parses the options before the kernel sees them: a kernel without sch_netem answers
  // "qdisc kind is unknown", a syntax problem gives tc's own complaints.
  const specs = [
    'delay 30ms 5ms 25% distribution normal loss gemodel 1% 20% 100% 0% rate 20mbit',
    'limit 20 delay 10ms reorder 25% 50% gap 5 corrupt 0.1% 5% duplicate 1% 10% rate 1mbit 40 48 5 slot 1ms 3ms packets 8 bytes 64kb',
    'delay 100ms 20ms distribution paretonormal loss state 1% 30% 5% 20% 0.5% ecn',
    'delay 1.5s 250us distribution pareto loss 0.05% 25% rate 1.5gbit -4',
    'slot distribution normal 2ms 1ms packets 4 rate 123456789bit',
  ];
  for (const text of specs) {
    it(text, async () => {
      const argv = tcCommandLines('lo', parseNetemSpec(text), { namespace: ns })[0]!;
      const r: CommandResult = await runCommand(argv[0]!, argv.slice(1));
      const parseComplaint = /What is|Illegal|Usage|Unknown|No distribution data|too large/.test(r.stderr);
      expect(parseComplaint, `${argv.join(' ')}\n${r.stderr}`).toBe(false);
      expect(r.code === 0 || /qdisc kind is unknown/.test(r.stderr), r.stderr).toBe(true);
    });
  }

  it('every shipped profile, both directions', async () => {
    for (const p of loadLinkProfiles()) {
      for (const spec of [p.up, p.down]) {
        const argv = tcCommandLines('lo', spec, { namespace: ns })[0]!;
        const r = await runCommand(argv[0]!, argv.slice(1));
        expect(r.code === 0 || /qdisc kind is unknown/.test(r.stderr), `${p.name}: ${argv.join(' ')}\n${r.stderr}`).toBe(true);
      }
    }
  });
});

describe('detectNetemBackend', () => {
  function fakeRunner(answers: Record<string, number>, netnsList = ''): { run: CommandRunner; calls: string[] } {
    const calls: string[] = [];
    const run: CommandRunner = async (file, args) => {
      const line = [file, ...args].join(' ');
      calls.push(line);
      const key = Object.keys(answers).find((k) => line.startsWith(k));
      return { code: key === undefined ? 0 : answers[key]!, stdout: line === 'ip netns list' ? netnsList : '', stderr: '' };
    };
    return { run, calls };
  }

  it('says tc when netem can be put on the loopback of a throwaway namespace, which it then deletes', async () => {
    const { run, calls } = fakeRunner({});
    expect(await detectNetemBackend({ run, pid: 42, privileged: true })).toBe('tc');
    expect(calls).toEqual([
      'ip netns list',
      'ip netns add brt-probe-42',
      'tc -n brt-probe-42 qdisc add dev lo root netem delay 1ms',
      'ip netns del brt-probe-42',
    ]);
  });

  it('says userspace when the kernel refuses netem, and still deletes the namespace', async () => {
    const { run, calls } = fakeRunner({ 'tc ': 2 });
    expect(await detectNetemBackend({ run, pid: 42, privileged: true })).toBe('userspace');
    expect(calls[calls.length - 1]).toBe('ip netns del brt-probe-42');
  });

  it('removes a stale namespace of the same name once, then gives up on userspace', async () => {
    const { run, calls } = fakeRunner({ 'ip netns add': 1 });
    expect(await detectNetemBackend({ run, pid: 7, privileged: true })).toBe('userspace');
    expect(calls).toEqual(['ip netns list', 'ip netns add brt-probe-7', 'ip netns del brt-probe-7', 'ip netns add brt-probe-7']);
  });

  it('first removes probe namespaces left by processes that are gone, and only those', async () => {
    const list = 'brt-probe-100 (id: 3)\nbrt-probe-200 (id: 4)\nbrt-site-a (id: 1)\nbrt-probe-7\nbrt-probe-x\n';
    const { run, calls } = fakeRunner({ 'tc ': 2 }, list);
    await detectNetemBackend({ run, pid: 7, privileged: true, isAlive: (pid) => pid === 200 });
    expect(calls.slice(0, 3)).toEqual(['ip netns list', 'ip netns del brt-probe-100', 'ip netns add brt-probe-7']);
  });

  it('says userspace without root, running nothing', async () => {
    const { run, calls } = fakeRunner({});
    expect(await detectNetemBackend({ run, privileged: false })).toBe('userspace');
    expect(calls).toEqual([]);
  });

  it.skipIf(!hasTc)('on this machine: agrees with a direct try and leaves no namespace behind', async () => {
    const backend = await detectNetemBackend();
    // An independent try, written differently (ip netns exec, a veth pair) on purpose.
    const ns = `brt-netemchk-${process.pid}`;
    await runCommand('ip', ['netns', 'add', ns]);
    let direct: string;
    try {
      await runCommand('ip', ['-n', ns, 'link', 'add', 'chk0', 'type', 'veth', 'peer', 'name', 'chk1']);
      const r = await runCommand('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', 'chk0', 'root', 'netem', 'loss', '1%']);
      direct = r.code === 0 ? 'tc' : 'userspace';
    } finally {
      await runCommand('ip', ['netns', 'del', ns]);
    }
    console.log(`[netem] detectNetemBackend() on this kernel: ${backend}`);
    expect(backend).toBe(direct);
    const list = await runCommand('ip', ['netns', 'list']);
    expect(list.stdout).not.toContain(`brt-probe-${process.pid}`);
  });

  it('formatNetemTokens feeds tc the same tokens formatNetemSpec prints', () => {
    const spec = parseNetemSpec('delay 30ms 5ms distribution normal loss 1%');
    expect(tcCommandLines('eth0', spec)[0]!.slice(7)).toEqual(formatNetemTokens(spec));
  });
});
