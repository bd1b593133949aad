/**
 * Issue 14 finding 11: health probes take only replies to their own echoes (identifier, sequence
 * and the echo's random data must all come back), and identifiers do not come from Math.random.
 * A fake raw-socket module stands in for the kernel: no root needed.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HealthTarget, type RawSocketModule } from '../../src/io/health.ts';

class FakeRaw extends EventEmitter {
  readonly sent: Buffer[] = [];
  send(buf: Buffer, offset: number, length: number, _address: string, cb: (err: Error | null, bytes: number) => void): void {
    this.sent.push(Buffer.from(buf.subarray(offset, offset + length)));
    cb(null, length);
  }
  setOption(): void {}
  close(): void {}
}

function fakeModule(sock: FakeRaw): RawSocketModule {
  return {
    createSocket: () => sock as unknown as ReturnType<RawSocketModule['createSocket']>,
    Protocol: { ICMP: 1 },
    SocketLevel: { SOL_SOCKET: 1 },
    SocketOption: { SO_BINDTODEVICE: 25 },
    createChecksum: () => 0,
    writeChecksum: (buf: Buffer) => buf,
  };
}

/** An IPv4 header (20 bytes) + ICMP echo reply carrying `icmpBody` (bytes 4.. of the ICMP message). */
function reply(icmpBody: Buffer): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  const icmp = Buffer.concat([Buffer.from([0, 0, 0, 0]), icmpBody]);
  return Buffer.concat([ip, icmp]);
}

let target: HealthTarget | undefined;
afterEach(() => {
  target?.close();
  target = undefined;
  vi.restoreAllMocks();
});

describe('health probe replies (issue 14, finding 11)', () => {
  it('ignores a spoofed reply that guessed the identifier and sequence but not the echo data', () => {
    const sock = new FakeRaw();
    const changes: boolean[] = [];
    target = new HealthTarget({ interface: 'lo', target: '192.0.2.1', intervalMs: 60_000, rawSocket: fakeModule(sock), onChange: (r) => changes.push(r) });
    target.start();
    expect(sock.sent).toHaveLength(1);
    const request = sock.sent[0]!;
    // An attacker who learnt id and sequence (on-path, or guessed) but not the echoed data.
    const spoof = Buffer.from(request.subarray(4));
    spoof.fill(0, 4);
    sock.emit('message', reply(spoof), '192.0.2.1');
    expect(changes).toEqual([]);
    // Wrong source, or a truncated reply: ignored too.
    sock.emit('message', reply(Buffer.from(request.subarray(4))), '198.51.100.1');
    sock.emit('message', reply(Buffer.from(request.subarray(4, 8))), '192.0.2.1');
    expect(changes).toEqual([]);
    // The genuine reply echoes everything back.
    sock.emit('message', reply(Buffer.from(request.subarray(4))), '192.0.2.1');
    expect(changes).toEqual([true]);
  });

  it('draws the ICMP identifier from crypto randomness, never Math.random', () => {
    const random = vi.spyOn(Math, 'random');
    const sock = new FakeRaw();
    target = new HealthTarget({ interface: 'lo', target: '192.0.2.1', intervalMs: 60_000, rawSocket: fakeModule(sock), onChange: () => undefined });
    target.start();
    expect(random).not.toHaveBeenCalled();
    expect(sock.sent[0]!.length).toBeGreaterThanOrEqual(8 + 16); // the echo carries a 16-byte token
  });
});
