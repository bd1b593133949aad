// The link sockets' receive buffer with TUN offloads (issue 13): small enough that the receiving
// edge's socket stops being the standing queue under a bulk TCP flow, and only with offloads.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SOCKET_BUFFER_BYTES, OFFLOAD_RCVBUF_BYTES, linkRcvbufBytes, openUdpLink } from '../../src/io/udp.ts';

describe('linkRcvbufBytes', () => {
  it('keeps the default without TUN offloads', () => {
    expect(linkRcvbufBytes(false)).toBe(DEFAULT_SOCKET_BUFFER_BYTES);
    expect(linkRcvbufBytes(false, 1 << 20)).toBe(1 << 20);
  });

  it('caps the buffer with TUN offloads, never above what was asked', () => {
    expect(OFFLOAD_RCVBUF_BYTES).toBeLessThan(DEFAULT_SOCKET_BUFFER_BYTES);
    expect(linkRcvbufBytes(true)).toBe(OFFLOAD_RCVBUF_BYTES);
    expect(linkRcvbufBytes(true, DEFAULT_SOCKET_BUFFER_BYTES)).toBe(OFFLOAD_RCVBUF_BYTES);
    expect(linkRcvbufBytes(true, 64 * 1024)).toBe(64 * 1024);
  });

  it('the socket gets that buffer (the kernel reports twice the size asked)', async () => {
    const { link, kind } = await openUdpLink({ bindAddress: '127.0.0.1', port: 0, rcvbufBytes: linkRcvbufBytes(true) });
    try {
      if (kind !== 'native') return; // the node:dgram fallback (no addon built) does not report it
      const native = link as unknown as { rcvbufBytes: number };
      expect(native.rcvbufBytes).toBe(2 * OFFLOAD_RCVBUF_BYTES);
    } finally {
      link.close();
    }
  });
});
