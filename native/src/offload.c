// TUN offloads, the pure part: see offload.h. Modelled on wireguard-go's tun/offload_linux.go
// (gsoSplit, handleGRO, tcpPacketsCanCoalesce) and the kernel's tcp_gso_segment / tcp_gro_receive.
#include "offload.h"

#include <linux/virtio_net.h>
#include <string.h>

#define PROTO_TCP 6
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80
#define TCP_CSUM_OFFSET 16

_Static_assert(sizeof(struct virtio_net_hdr) == VNET_HDR_BYTES, "virtio_net_hdr is 10 bytes");

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

// Internet checksum over native-endian 64-bit words with end-around carry (as the kernel's
// csum_partial): one's complement addition does not care about byte order, so the folded result,
// stored back with memcpy, has the right bytes. A region must start at an even offset of the
// checksummed data; only the last region may have odd length.
static uint64_t sum_bytes(uint64_t acc, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    acc += w;
    acc += acc < w;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    acc += acc < w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    acc += acc < w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint8_t b[2] = {p[0], 0};
    uint16_t w;
    memcpy(&w, b, 2);
    acc += w;
    acc += acc < w;
  }
  return acc;
}

static uint16_t fold(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  return (uint16_t)acc;
}

// TCP pseudo-header sum for the IP header at ip: addresses, protocol and the TCP length.
static uint64_t pseudo_sum(const uint8_t *ip, bool v6, uint32_t l4_len) {
  uint64_t acc = v6 ? sum_bytes(0, ip + 8, 32) : sum_bytes(0, ip + 12, 8);
  const uint8_t tail[4] = {0, PROTO_TCP, (uint8_t)(l4_len >> 8), (uint8_t)l4_len};
  return sum_bytes(acc, tail, 4);
}

static void store_sum(uint8_t *at, uint16_t v) { memcpy(at, &v, 2); }

static void ipv4_fix_csum(uint8_t *ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  store_sum(ip + 10, (uint16_t)~fold(sum_bytes(0, ip, ihl)));
}

int offload_plan_read(const uint8_t *hdr_bytes, uint8_t *pkt, size_t len, offload_plan_t *plan) {
  struct virtio_net_hdr h;
  memcpy(&h, hdr_bytes, sizeof h);
  memset(plan, 0, sizeof *plan);
  if (len == 0 || len > OFFLOAD_MAX_PACKET_BYTES) return OFFLOAD_BAD_PACKET;
  plan->len = (uint32_t)len;
  uint8_t gso_type = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; add the rest and complement.
      size_t start = h.csum_start, at = start + h.csum_offset;
      if (start >= len || at + 2 > len) return OFFLOAD_BAD_HEADER;
      uint16_t initial;
      memcpy(&initial, pkt + at, 2);
      pkt[at] = pkt[at + 1] = 0;
      uint16_t c = (uint16_t)~fold(sum_bytes(initial, pkt + start, len - start));
      // As the kernel's skb_checksum_help: a computed 0 goes out as 0xffff (0 means "none" in UDP).
      store_sum(pkt + at, c == 0 ? 0xffff : c);
    }
    plan->segments = 1;
    return 0;
  }
  bool v6;
  if (gso_type == VIRTIO_NET_HDR_GSO_TCPV4) v6 = false;
  else if (gso_type == VIRTIO_NET_HDR_GSO_TCPV6) v6 = true;
  else return OFFLOAD_UNSUPPORTED;
  if (h.gso_size == 0) return OFFLOAD_BAD_HEADER;
  size_t l4;
  if (!v6) {
    if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != PROTO_TCP) return OFFLOAD_BAD_PACKET;
    l4 = (size_t)(pkt[0] & 0x0f) * 4;
    if (l4 < 20) return OFFLOAD_BAD_PACKET;
  } else {
    // Extension headers are not split here (the kernel hands them over only in odd setups).
    if (len < 40 || pkt[0] >> 4 != 6 || pkt[6] != PROTO_TCP) return OFFLOAD_BAD_PACKET;
    l4 = 40;
  }
  if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (h.csum_start != l4 || h.csum_offset != TCP_CSUM_OFFSET)) {
    return OFFLOAD_BAD_HEADER;
  }
  if (l4 + 20 > len) return OFFLOAD_BAD_PACKET;
  // The TCP header's own length, not hdr.hdr_len: on a forwarding path the kernel may put the
  // whole first packet's length there (wireguard-go found the same).
  size_t thl = (size_t)(pkt[l4 + 12] >> 4) * 4;
  if (thl < 20 || l4 + thl >= len) return OFFLOAD_BAD_PACKET;
  size_t hdr_len = l4 + thl;
  if (hdr_len + h.gso_size > OFFLOAD_MAX_PACKET_BYTES) return OFFLOAD_BAD_HEADER;
  size_t payload = len - hdr_len;
  plan->segments = (uint32_t)((payload + h.gso_size - 1) / h.gso_size);
  plan->l4_off = (uint16_t)l4;
  plan->hdr_len = (uint16_t)hdr_len;
  plan->gso_size = h.gso_size;
  plan->gso = true;
  plan->v6 = v6;
  return 0;
}

size_t offload_segment(const uint8_t *pkt, const offload_plan_t *p, uint32_t i, uint8_t *out) {
  size_t data_at = p->hdr_len + (size_t)i * p->gso_size;
  size_t seg = p->len - data_at;
  if (seg > p->gso_size) seg = p->gso_size;
  size_t total = p->hdr_len + seg;
  memcpy(out, pkt, p->hdr_len);
  memcpy(out + p->hdr_len, pkt + data_at, seg);
  if (p->v6) {
    put16(out + 4, (uint32_t)(total - 40));
  } else {
    put16(out + 2, (uint32_t)total);
    put16(out + 4, (uint32_t)get16(pkt + 4) + i);  // each segment its own IP ID, as the kernel's TSO
    ipv4_fix_csum(out, p->l4_off);
  }
  uint8_t *th = out + p->l4_off;
  put32(th + 4, get32(pkt + p->l4_off + 4) + i * (uint32_t)p->gso_size);
  // tcp_gso_segment: FIN and PSH only on the last segment, CWR only on the first.
  if (i + 1 < p->segments) th[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
  if (i > 0) th[13] &= (uint8_t)~TCP_CWR;
  th[16] = th[17] = 0;
  uint32_t l4_len = (uint32_t)(total - p->l4_off);
  store_sum(th + 16, (uint16_t)~fold(sum_bytes(pseudo_sum(out, p->v6, l4_len), th, l4_len)));
  return total;
}

// ---------------------------------------------------------------------------------------
// Write side

typedef struct {
  bool v6;
  uint16_t l4;        // IP header length
  uint16_t thl;       // TCP header length
  uint32_t payload;   // TCP payload bytes
  bool psh;
} tcp_info_t;

// 0: not TCP we can read; 1: TCP (ports readable), not a coalescing candidate; 2: a data segment
// that may join a unit (plain IP header, not a fragment, lengths consistent, flags ACK or ACK|PSH).
static int tcp_parse(const uint8_t *p, uint32_t len, tcp_info_t *t) {
  if (len < 20) return 0;
  uint8_t version = p[0] >> 4;
  bool plain_ip;
  if (version == 4) {
    t->v6 = false;
    t->l4 = (uint16_t)((p[0] & 0x0f) * 4);
    if (p[9] != PROTO_TCP || t->l4 < 20 || (get16(p + 6) & 0x1fff) != 0) return 0;  // not first fragment
    plain_ip = t->l4 == 20 && get16(p + 2) == len && !(p[6] & 0x20);                 // no options, no MF
  } else if (version == 6) {
    t->v6 = true;
    t->l4 = 40;
    if (len < 40 || p[6] != PROTO_TCP) return 0;
    plain_ip = get16(p + 4) == len - 40;
  } else {
    return 0;
  }
  if ((uint32_t)t->l4 + 20 > len) return 0;
  t->thl = (uint16_t)((p[t->l4 + 12] >> 4) * 4);
  if (!plain_ip || t->thl < 20 || (uint32_t)t->l4 + t->thl >= len) return 1;
  uint8_t flags = p[t->l4 + 13];
  if (flags != TCP_ACK && flags != (TCP_ACK | TCP_PSH)) return 1;
  t->payload = len - t->l4 - t->thl;
  t->psh = flags & TCP_PSH;
  return 2;
}

static bool tcp_csum_ok(const uint8_t *p, uint32_t len, const tcp_info_t *t) {
  uint32_t l4_len = len - t->l4;
  if (fold(sum_bytes(pseudo_sum(p, t->v6, l4_len), p + t->l4, l4_len)) != 0xffff) return false;
  return t->v6 || fold(sum_bytes(0, p, t->l4)) == 0xffff;
}

typedef struct {
  const uint8_t *first;  // the unit's first packet: its headers are the unit's
  tcp_info_t info;       // of the first packet
  uint32_t next_seq;     // sequence number the next member must have
  uint32_t bytes;        // the coalesced packet's length so far
  uint32_t last_payload; // payload of the newest member
  uint16_t unit;
  uint16_t tail;         // newest member's index
  bool psh;              // the newest member has PSH: nothing may follow it
  bool checked;          // the first packet's checksums were verified
} open_flow_t;

static bool same_flow(const uint8_t *a, const tcp_info_t *ta, const uint8_t *b, const tcp_info_t *tb) {
  if (ta->v6 != tb->v6) return false;
  bool addrs = ta->v6 ? memcmp(a + 8, b + 8, 32) == 0 : memcmp(a + 12, b + 12, 8) == 0;
  return addrs && memcmp(a + ta->l4, b + tb->l4, 4) == 0;  // ports
}

// tcp_gro_receive's tests (and wireguard-go's tcpPacketsCanCoalesce), in-order appends only.
static bool can_append(const open_flow_t *f, uint16_t members, const uint8_t *p, const tcp_info_t *t) {
  const uint8_t *q = f->first;
  const tcp_info_t *u = &f->info;
  if (f->psh || f->last_payload != u->payload || t->payload > u->payload) return false;
  if (members >= OFFLOAD_MAX_UNIT_PACKETS) return false;
  if (get32(p + t->l4 + 4) != f->next_seq) return false;
  if (t->thl != u->thl || memcmp(p + t->l4 + 8, q + u->l4 + 8, 4) != 0) return false;   // ack
  if (memcmp(p + t->l4 + 14, q + u->l4 + 14, 2) != 0) return false;                       // window
  if (memcmp(p + t->l4 + 20, q + u->l4 + 20, t->thl - 20) != 0) return false;             // options
  if (f->bytes + t->payload > OFFLOAD_MAX_PACKET_BYTES) return false;
  if (t->v6) return memcmp(p, q, 4) == 0 && p[7] == q[7];  // version, traffic class, flow label; hop limit
  return p[1] == q[1] && (p[6] & 0xe0) == (q[6] & 0xe0) && p[8] == q[8];  // TOS, DF, TTL
}

// Writes the head of a unit of more than one packet: the first packet's headers with the
// coalesced lengths, PSH if the last member had it, the pseudo-header sum in the TCP checksum
// field (VIRTIO_NET_HDR_F_NEEDS_CSUM: the kernel, or nobody for local delivery, adds the rest),
// and the GSO vnet header.
static void finish_unit(offload_unit_t *u, const open_flow_t *f) {
  const tcp_info_t *t = &f->info;
  uint16_t hdr_len = (uint16_t)(t->l4 + t->thl);
  uint8_t *ip = u->head + VNET_HDR_BYTES;
  memcpy(ip, f->first, hdr_len);
  if (t->v6) {
    put16(ip + 4, f->bytes - 40);
  } else {
    put16(ip + 2, f->bytes);
    ipv4_fix_csum(ip, t->l4);
  }
  uint8_t *th = ip + t->l4;
  if (f->psh) th[13] |= TCP_PSH;
  th[16] = th[17] = 0;
  store_sum(th + 16, fold(pseudo_sum(ip, t->v6, f->bytes - t->l4)));
  struct virtio_net_hdr h;
  memset(&h, 0, sizeof h);
  h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h.gso_type = t->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  h.hdr_len = hdr_len;
  h.gso_size = (uint16_t)t->payload;
  h.csum_start = t->l4;
  h.csum_offset = TCP_CSUM_OFFSET;
  memcpy(u->head, &h, sizeof h);
  u->hdr_len = hdr_len;
}

static void close_flow(open_flow_t *flows, int *open, int k, offload_plan_write_t *out) {
  if (out->units[flows[k].unit].count > 1) finish_unit(&out->units[flows[k].unit], &flows[k]);
  flows[k] = flows[--*open];
}

static uint16_t new_unit(offload_plan_write_t *out, int i) {
  offload_unit_t *u = &out->units[out->unit_count];
  u->first = (uint16_t)i;
  u->count = 1;
  u->hdr_len = 0;
  memset(u->head, 0, VNET_HDR_BYTES);
  out->next[i] = UINT16_MAX;
  return out->unit_count++;
}

int offload_coalesce(const uint8_t *const *pkts, const uint32_t *lens, int n, offload_plan_write_t *out) {
  open_flow_t flows[OFFLOAD_OPEN_FLOWS];
  int open = 0;
  out->unit_count = 0;
  if (n > OFFLOAD_MAX_BATCH) n = OFFLOAD_MAX_BATCH;
  for (int i = 0; i < n; i++) {
    const uint8_t *p = pkts[i];
    uint32_t len = lens[i];
    tcp_info_t t;
    int kind = tcp_parse(p, len, &t);
    int k = -1;
    if (kind > 0) {
      for (int j = 0; j < open; j++) {
        if (same_flow(flows[j].first, &flows[j].info, p, &t)) {
          k = j;
          break;
        }
      }
    }
    if (kind == 2 && k >= 0) {
      open_flow_t *f = &flows[k];
      offload_unit_t *u = &out->units[f->unit];
      // Checksums are verified only where packets are joined: the kernel computes the joined
      // packet's checksum afresh, which would hide a corrupt member.
      if (can_append(f, u->count, p, &t)) {
        if (!f->checked) f->checked = tcp_csum_ok(f->first, lens[u->first], &f->info);
        if (f->checked && tcp_csum_ok(p, len, &t)) {
          out->next[f->tail] = (uint16_t)i;
          out->next[i] = UINT16_MAX;
          f->tail = (uint16_t)i;
          u->count++;
          f->bytes += t.payload;
          f->next_seq += t.payload;
          f->last_payload = t.payload;
          f->psh = t.psh;
          continue;
        }
      }
    }
    // A packet that does not join its flow's unit closes it: the flow's order is kept.
    if (k >= 0) close_flow(flows, &open, k, out);
    uint16_t unit = new_unit(out, i);
    if (kind != 2) continue;
    if (open == OFFLOAD_OPEN_FLOWS) close_flow(flows, &open, 0, out);
    open_flow_t *f = &flows[open++];
    f->first = p;
    f->info = t;
    f->next_seq = get32(p + t.l4 + 4) + t.payload;
    f->bytes = len;
    f->last_payload = t.payload;
    f->unit = unit;
    f->tail = (uint16_t)i;
    f->psh = t.psh;
    f->checked = false;
  }
  while (open > 0) close_flow(flows, &open, open - 1, out);
  return out->unit_count;
}
