// TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD): the pure part, no syscalls and no N-API, so that
// braid_native.c's reader/writer and the test hooks run the same code.
//
// Read side: the kernel hands over one virtio_net_hdr + one packet per read; with TSO that packet is
// a TCP super-segment of up to 64 KB whose headers say nothing true about lengths or checksums.
// offload_plan_read checks it and says how many MSS-sized packets it holds; offload_segment writes
// packet i as a complete IP/TCP packet (lengths, IPv4 ID and header checksum, sequence number,
// FIN/PSH/CWR only where the kernel's own segmentation puts them, TCP checksum). A non-GSO packet
// with NEEDS_CSUM gets its partial checksum completed in place.
//
// Write side: offload_coalesce groups the in-order TCP segments of one flow in a batch (the tests of
// the kernel's tcp_gro_receive: same addresses, ports, ack, window, options, IP TOS/TTL/DF, every
// segment full-size but the last, no PSH before the last, valid checksum) into units; a unit of more
// than one packet is written as one super-segment with a GSO virtio_net_hdr, so the receiving
// kernel does one TCP receive for up to 64 KB. Everything else is a unit of one packet, written as
// is behind a zero header. Units are in the order of their first packet and a flow's packets are
// never reordered (a packet that cannot join its flow's open unit closes it).
#ifndef BRAID_OFFLOAD_H
#define BRAID_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// sizeof(struct virtio_net_hdr): the TUN's default vnet header size (TUNSETVNETHDRSZ unchanged).
#define VNET_HDR_BYTES 10
// Largest IP packet a coalesced unit may become (the IPv4 total length / IPv6 payload length field).
#define OFFLOAD_MAX_PACKET_BYTES 65535
// Packets per coalesced unit: bounds the writev vector (2 + this) and matches the kernel's GRO
// limit of 64 segments per super-segment (MAX_GRO_SKBS / gro_max_size at 1500-byte MTU).
#define OFFLOAD_MAX_UNIT_PACKETS 64
// Packets per offload_coalesce call (tunWriteBatch's limit).
#define OFFLOAD_MAX_BATCH 256
// Flows with an open unit at once; a further flow closes the oldest (correct, only less coalesced).
#define OFFLOAD_OPEN_FLOWS 16

// Why a read was dropped (offload_plan_read's negative returns), counted by the reader.
enum {
  OFFLOAD_BAD_HEADER = -1,   // inconsistent vnet header (offsets outside the packet, bad sizes)
  OFFLOAD_BAD_PACKET = -2,   // the IP/TCP headers do not match what the vnet header claims
  OFFLOAD_UNSUPPORTED = -3,  // a GSO type we did not ask for (UDP, unknown)
};

typedef struct {
  uint32_t len;        // bytes of the packet (after the vnet header)
  uint32_t segments;   // packets it becomes (1 for a non-GSO packet)
  uint16_t l4_off;     // TCP header offset (the IP header length)
  uint16_t hdr_len;    // IP + TCP header bytes, copied into every segment
  uint16_t gso_size;   // payload bytes per segment (the last may be shorter)
  bool gso;            // a super-segment to split (else: one packet, delivered as is)
  bool v6;
} offload_plan_t;

// Parses vnet header `hdr` (VNET_HDR_BYTES, native endian) for packet pkt[0, len). A non-GSO
// packet is finished in place (partial checksum completed). Returns 0 or an OFFLOAD_* reason.
int offload_plan_read(const uint8_t *hdr, uint8_t *pkt, size_t len, offload_plan_t *plan);

// Writes segment i (< plan->segments) of a GSO plan into out (room for hdr_len + gso_size
// bytes); returns its length.
size_t offload_segment(const uint8_t *pkt, const offload_plan_t *plan, uint32_t i, uint8_t *out);

typedef struct {
  uint16_t first;              // index of the unit's first packet
  uint16_t count;              // packets in the unit (1: write the packet as is)
  uint16_t hdr_len;            // header bytes in head after the vnet header (count > 1)
  uint8_t head[VNET_HDR_BYTES + 120];  // vnet header, then the rewritten IP + TCP headers
} offload_unit_t;

typedef struct {
  uint16_t unit_count;
  uint16_t next[OFFLOAD_MAX_BATCH];  // next packet of the same unit, or UINT16_MAX
  offload_unit_t units[OFFLOAD_MAX_BATCH];
} offload_plan_write_t;

// Groups packets pkts[i][0, lens[i]) (n <= OFFLOAD_MAX_BATCH) into units. A unit of count > 1 is
// written as: head[0, VNET_HDR_BYTES + hdr_len), then each member's bytes from its own hdr_len on
// (the members' headers equal the first's but for lengths, seq and checksums). A unit of one
// packet: VNET_HDR_BYTES zero bytes, then the packet. Returns the number of units.
int offload_coalesce(const uint8_t *const *pkts, const uint32_t *lens, int n, offload_plan_write_t *out);

#endif
