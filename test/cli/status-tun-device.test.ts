// The TUN device's kernel counters in `braid status` (text and JSON) and /metrics (issue 13:
// "Visible drops"). braid up adds them to every snapshot it serves (src/cli/up.ts); the e2e
// test test/e2e/ipv6.e2e.test.ts reads them from a real TUN.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatStatusText } from '../../src/cli/status.ts';
import type { EdgeStatus } from '../../src/control/control-socket.ts';
import { BraidMetrics } from '../../src/control/metrics.ts';
import { failoverSnapshot } from '../ui/fixtures.ts';
import { parseExposition } from '../control/prom-text.ts';
import { checkSchema } from './json-schema.ts';

const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

function withDevice(): EdgeStatus {
  return { ...failoverSnapshot(), tunDevice: { name: 'braid0', txPackets: 12_000_000, txDropped: 762_041, rxPackets: 11_000_000, rxDropped: 3, txErrors: 0, rxErrors: 0, writeRefused: 2 } };
}

describe('TUN device counters in status and metrics', () => {
  it('the text names the queue drops before braid read them, and the writes after', () => {
    const t = formatStatusText(withDevice());
    expect(t).toMatch(/\n {2}tun device braid0: 12,000,000 read by braid, 762,041 dropped before braid read them \(queue full\); 11,000,000 written, 3 dropped after, 2 writes refused\n/);
    expect(formatStatusText(failoverSnapshot())).not.toMatch(/tun device/);
  });

  it('the text says whether TUN offloads run and what they did', () => {
    const on = { ...withDevice() };
    on.tunDevice = { ...on.tunDevice!, offload: { enabled: true, readSuperSegments: 1_000, readSegments: 45_000, readDropped: 0, writeSuperSegments: 900, writeCoalescedPackets: 40_000 } };
    expect(formatStatusText(on)).toMatch(/\n {2}tun offload: on: 1,000 super-segments read \(45,000 packets\), 900 written \(40,000 packets\)\n/);
    on.tunDevice.offload!.enabled = false;
    expect(formatStatusText(on)).toMatch(/\n {2}tun offload: off\n/);
    expect(checkSchema(schema, { version: 1, status: on }).errors).toEqual([]);
    expect(formatStatusText(withDevice())).not.toMatch(/tun offload/);
  });

  it('the JSON validates against docs/status-schema.json; a wrong one does not', () => {
    const ok = checkSchema(schema, { version: 1, status: withDevice() });
    expect(ok.errors).toEqual([]);
    expect(ok.undocumented).toEqual([]);
    const bad = JSON.parse(JSON.stringify({ version: 1, status: withDevice() })) as { status: { tunDevice: Record<string, unknown> } };
    bad.status.tunDevice.txDropped = -1;
    delete bad.status.tunDevice.rxDropped;
    expect(checkSchema(schema, bad).errors.length).toBe(2);
  });

  it('/metrics exports them as counters by direction, and nothing when the snapshot has none', async () => {
    const m = parseExposition(await new BraidMetrics(withDevice).registry.metrics());
    expect(m.value('braid_tun_device_dropped_total', { site: 'branch-1', direction: 'tx' })).toBe(762_041);
    expect(m.value('braid_tun_device_dropped_total', { site: 'branch-1', direction: 'rx' })).toBe(3);
    expect(m.value('braid_tun_device_packets_total', { site: 'branch-1', direction: 'tx' })).toBe(12_000_000);
    expect(m.value('braid_tun_device_packets_total', { site: 'branch-1', direction: 'rx' })).toBe(11_000_000);
    expect(m.value('braid_tun_write_refused_total', { site: 'branch-1' })).toBe(2);
    expect(m.types.get('braid_tun_device_dropped_total')).toBe('counter');
    const none = parseExposition(await new BraidMetrics(failoverSnapshot).registry.metrics());
    expect(none.find('braid_tun_device_dropped_total', { site: 'branch-1' })).toHaveLength(0);
  });
});
