/**
 * Issue 14 finding 8: the peer's hello strings (site, link names) and event texts built from them
 * reach `braid status` (text and JSON), the dashboard and the logs without escape sequences.
 */
import { Writable } from 'node:stream';
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { formatStatusText, statusJson } from '../../src/cli/status.ts';
import { createLogger } from '../../src/control/logger.ts';
import { Dashboard } from '../../src/ui/dashboard.tsx';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { failoverSnapshot, link } from './fixtures.ts';

afterEach(() => cleanup());

const EVIL_LINK = 'inet\x1b]0;pwned\x07\x1b[2J';
const EVIL_SITE = 'hq\u009b31m\u202e';
/** Sequences that would act on a terminal (ink's own colours are off in these renders). */
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function evilSnapshot(): EdgeSnapshot {
  const snap = failoverSnapshot();
  return {
    ...snap,
    links: [link(0, 'mpls', { peerLinkName: EVIL_LINK }), ...snap.links.slice(1)],
    peers: [{ name: 'hq', site: EVIL_SITE, prefixes: [], pathsUp: 1, paths: 1, state: 'up', session: { established: true, handshakeAttempts: 1 }, txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, forwardedPackets: 0, sourceNotAllowed: 0, duplicatesSuppressed: 0, flows: 0, flowMoves: 0 }],
    recentEvents: [{ atMs: 1000, kind: 'peerHello', link: 'mpls', message: `mpls: peer ${EVIL_SITE} link ${EVIL_LINK}` } as EdgeSnapshot['recentEvents'][number]],
  };
}

describe('peer strings on the operator surface (issue 14, finding 8)', () => {
  it('braid status text shows them escaped', () => {
    const text = formatStatusText(evilSnapshot(), false);
    expect(text).toContain('\\x1b]0;pwned\\x07');
    expect(ACTIVE.test(text)).toBe(false);
  });

  it('braid status --json keeps the value but escapes what JSON leaves raw', () => {
    const json = statusJson(evilSnapshot());
    expect(ACTIVE.test(json)).toBe(false);
    const back = JSON.parse(json) as { status: EdgeSnapshot };
    expect(back.status.links[0]!.peerLinkName).toBe(EVIL_LINK); // scripts get the real value
  });

  it('the dashboard renders them escaped', () => {
    for (const view of ['overview', 'links', 'events'] as const) {
      const r = render(<Dashboard snapshot={evilSnapshot()} columns={120} rows={40} initialView={view} />);
      const frame = r.lastFrame() ?? '';
      expect(frame).not.toContain('\x07');
      expect(ACTIVE.test(frame.replace(/\x1b\[[0-9;]*m/g, ''))).toBe(false);
      r.unmount();
    }
  });

  it('log lines carry them escaped (still valid JSON)', async () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString('utf8'));
        cb();
      },
    });
    const log = createLogger('info', EVIL_SITE, sink);
    log.info({ link: EVIL_LINK }, `mpls: peer ${EVIL_SITE} link ${EVIL_LINK}`);
    await new Promise((r) => setTimeout(r, 20));
    const line = chunks.join('');
    expect(line.length).toBeGreaterThan(0);
    expect(ACTIVE.test(line.replace(/\n$/, ''))).toBe(false);
    expect((JSON.parse(line) as { link: string }).link).toBe(EVIL_LINK);
  });
});
