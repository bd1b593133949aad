// The link sockets' kernel counters (issue 13, visible drops): /proc/net/udp parsing, and a real
// socket that overflows on loopback reporting its own drops in `braid status`'s linkSockets.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linkSocketStatus } from '../../src/cli/up.ts';
import { formatStatusText } from '../../src/cli/status.ts';
import type { EdgeStatus } from '../../src/control/control-socket.ts';
import { droppedDatagramsEstimate, parseUdpTable, readUdpTables } from '../../src/io/socket-stats.ts';
import { openUdpLink } from '../../src/io/udp.ts';
import { failoverSnapshot } from '../ui/fixtures.ts';
import { checkSchema } from '../cli/json-schema.ts';
import { readFileSync } from 'node:fs';

// As Linux 6.x prints them (header, one IPv4 row; the drops column is the last).
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  113: 0100007F:CA6C 00000000:0000 07 00000000:0007E400 00:00000000 00000000     0        0 424242 2 0000000000000000 1234      
  200: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17 2 0000000000000000 0         
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   55: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000A00 00:00000000 00000000     0        0 99 2 0000000000000000 7
garbage line
   56: short
`;

describe('parseUdpTable', () => {
  it('reads rx_queue (hex bytes) and drops by inode, from the header not fixed positions', () => {
    const m = parseUdpTable(UDP);
    expect(m.get(424242)).toEqual({ rxQueuedBytes: 0x7e400, drops: 1234 });
    expect(m.get(17)).toEqual({ rxQueuedBytes: 0, drops: 0 });
    parseUdpTable(UDP6, m);
    expect(m.get(99)).toEqual({ rxQueuedBytes: 0xa00, drops: 7 });
    expect(m.size).toBe(3);
  });

  it('skips what does not parse and returns nothing for an unknown header', () => {
    expect(parseUdpTable('').size).toBe(0);
    expect(parseUdpTable('a b c\n1 2 3\n').size).toBe(0);
    expect(parseUdpTable(UDP.replace('424242', 'x')).has(424242)).toBe(false);
  });

  it('reads both tables from a proc directory, and an empty map when there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'brt-procnet-'));
    try {
      writeFileSync(join(dir, 'udp'), UDP);
      expect([...readUdpTables(dir).keys()].sort()).toEqual([17, 424242]);
      writeFileSync(join(dir, 'udp6'), UDP6);
      expect(readUdpTables(dir).get(99)?.drops).toBe(7);
      expect(readUdpTables(join(dir, 'missing')).size).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a link socket that overflows reports its own drops', () => {
  it('linkSocketStatus: drops and queued bytes of the real socket, GRO counters, schema-valid', async () => {
    const { link, kind } = await openUdpLink({ bindAddress: '127.0.0.1', port: 0, rcvbufBytes: 64 * 1024 });
    const sender = dgram.createSocket('udp4');
    try {
      if (kind !== 'native') {
        console.log('socket-stats: the addon is not built here (node:dgram fallback has no socketStats); skipped');
        expect(link.socketStats).toBeUndefined();
        return;
      }
      // Nobody reads (no onDatagrams): 2,000 x 1,200 B into a 128 KiB (granted) buffer must overflow.
      const payload = Buffer.alloc(1200, 7);
      for (let i = 0; i < 2000; i++) {
        await new Promise<void>((resolve) => sender.send(payload, link.port, '127.0.0.1', () => resolve()));
      }
      const [st] = linkSocketStatus([link], [{ name: 'mpls' }]);
      expect(st).toBeDefined();
      expect(st!.link).toBe('mpls');
      expect(st!.port).toBe(link.port);
      expect(st!.rcvbufBytes).toBe(128 * 1024);
      expect(st!.rxDropped).toBeGreaterThan(1000);
      expect(st!.rxQueuedBytes).toBeGreaterThan(64 * 1024);
      expect(st!.groTrains).toBe(0);
      // Another socket's row does not leak in: a fresh table without ours reads 0.
      expect(linkSocketStatus([link], [{ name: 'mpls' }], new Map())[0]!.rxDropped).toBe(0);
      const status: EdgeStatus = { ...failoverSnapshot(), linkSockets: [st!] };
      const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
      const checked = checkSchema(schema, { version: 1, status });
      expect(checked.errors).toEqual([]);
      expect(checked.undocumented).toEqual([]);
      expect(formatStatusText(status)).toMatch(new RegExp(`\\n {2}link socket mpls: udp ${link.port}: [\\d,]+ dropped \\(receive buffer full\\), [^\\n]+ queued of 128(\\.00)? KiB\\n`));
    } finally {
      sender.close();
      link.close();
    }
  });

  it('the text shows GRO trains when there were some, and no line without linkSockets', () => {
    const status: EdgeStatus = { ...failoverSnapshot(), linkSockets: [{ link: 'inet', port: 51900, rcvbufBytes: 524288, rxQueuedBytes: 0, rxDropped: 3, groTrains: 10, groDatagrams: 420 }] };
    expect(formatStatusText(status)).toMatch(/\n {2}link socket inet: udp 51900: 3 dropped \(receive buffer full\), [^,;]+ queued of 512(\.00)? KiB; GRO 10 trains \(420 datagrams\)\n/);
    expect(formatStatusText(failoverSnapshot())).not.toMatch(/link socket/);
  });
});

describe('link sockets in /metrics', () => {
  it('exports drops and queued bytes per link, and nothing without linkSockets', async () => {
    const { BraidMetrics } = await import('../../src/control/metrics.ts');
    const { parseExposition } = await import('../control/prom-text.ts');
    const status = (): EdgeStatus => ({ ...failoverSnapshot(), linkSockets: [{ link: 'mpls', port: 51900, rcvbufBytes: 524288, rxQueuedBytes: 4096, rxDropped: 17, groTrains: 0, groDatagrams: 0 }] });
    const m = parseExposition(await new BraidMetrics(status).render());
    expect(m.value('braid_link_socket_dropped_total', { site: 'branch-1', link: 'mpls' })).toBe(17);
    expect(m.value('braid_link_socket_queued_bytes', { site: 'branch-1', link: 'mpls' })).toBe(4096);
    expect(m.types.get('braid_link_socket_dropped_total')).toBe('counter');
    const none = parseExposition(await new BraidMetrics(failoverSnapshot).render());
    expect(none.find('braid_link_socket_dropped_total', { site: 'branch-1' })).toHaveLength(0);
  });
});

describe('droppedDatagramsEstimate (the kernel counts socket buffers: with UDP GRO, whole trains)', () => {
  it('scales drops by datagrams per buffer received in the same interval', () => {
    // 100 trains of 30 datagrams and 50 single datagrams received: 3,050 datagrams in 150 buffers.
    expect(droppedDatagramsEstimate(10, 3050, 100, 3000)).toBe(203);
    // Without GRO every buffer is one datagram.
    expect(droppedDatagramsEstimate(7, 500, 0, 0)).toBe(7);
    // Nothing received in the interval: the drops as counted.
    expect(droppedDatagramsEstimate(4, 0, 0, 0)).toBe(4);
    expect(droppedDatagramsEstimate(0, 3050, 100, 3000)).toBe(0);
    expect(droppedDatagramsEstimate(-3, 10, 0, 0)).toBe(0);
  });
});
