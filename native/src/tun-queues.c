// TUN queue steering: the rule (tun_queue_of) and the same rule as an eBPF socket-filter program
// for TUNSETSTEERINGEBPF. See tun-queues.h for why.
#include "tun-queues.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// DSCPs of the realtime classes (src/core/steer/classes.ts classOfDscp: control, voice, video,
// signaling).
static const uint8_t realtime_dscps[] = {48, 56, 46, 44, 40, 34, 36, 38, 32, 24};
#define REALTIME_COUNT (sizeof realtime_dscps / sizeof realtime_dscps[0])
// Knuth's multiplicative hash constant (2^32 / golden ratio): spreads the xor-folded key.
#define HASH_MULTIPLIER 2654435761u

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int is_realtime(unsigned dscp) {
  for (size_t i = 0; i < REALTIME_COUNT; i++)
    if (realtime_dscps[i] == dscp) return 1;
  return 0;
}

static int has_ports(unsigned proto) { return proto == 6 || proto == 17 || proto == 132 || proto == 136; }

// Where the program would read past the packet, the kernel ends it with 0: so does this.
int tun_queue_of(const uint8_t *p, size_t len, int queues) {
  if (queues <= 1 || len < 1) return 0;
  uint32_t key;
  unsigned version = p[0] >> 4;
  if (version == 4) {
    if (len < 2 || is_realtime(p[1] >> 2)) return 0;
    if (len < 20) return 0;
    unsigned proto = p[9];
    key = be32(p + 12) ^ be32(p + 16) ^ (proto << 16);
    // Fragments (MF set or an offset) hash without ports, the first one too: all of a datagram's
    // fragments share a queue, as the later ones carry no ports to hash.
    if (has_ports(proto) && (be16(p + 6) & 0x3fff) == 0) {
      size_t ihl = (size_t)(p[0] & 15) * 4;
      if (len < ihl + 4) return 0;
      key ^= be16(p + ihl) ^ be16(p + ihl + 2);
    }
  } else if (version == 6) {
    if (len < 2 || is_realtime((be16(p) >> 6) & 63)) return 0;
    if (len < 40) return 0;
    key = 0;
    for (int i = 0; i < 8; i++) key ^= be32(p + 8 + 4 * i);
    unsigned proto = p[6];
    key ^= proto << 16;
    if (has_ports(proto)) {
      if (len < 44) return 0;
      key ^= be16(p + 40) ^ be16(p + 42);
    }
  } else {
    return 0;
  }
  uint32_t h = (uint32_t)(key * HASH_MULTIPLIER) >> 16;
  return 1 + (int)(h % (uint32_t)(queues - 1));
}

// ---------------------------------------------------------------------------------------
// The program. A tiny assembler: instructions into an array, jumps to labels patched at the end.

enum { L_V6, L_RT, L_HASH, L_P4, L_P6, L_COUNT };
#define PROG_MAX 160
#define FIX_MAX 48

typedef struct {
  struct bpf_insn insn[PROG_MAX];
  int n;
  int label[L_COUNT];
  int fix_at[FIX_MAX], fix_label[FIX_MAX], nfix;
  int overflow;
} prog_t;

static void emit(prog_t *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  if (p->n >= PROG_MAX) {
    p->overflow = 1;
    return;
  }
  struct bpf_insn *i = &p->insn[p->n++];
  memset(i, 0, sizeof *i);
  i->code = code;
  i->dst_reg = dst;
  i->src_reg = src;
  i->off = off;
  i->imm = imm;
}

static void jump(prog_t *p, uint8_t op, uint8_t dst, int32_t imm, int label) {
  if (p->nfix >= FIX_MAX) {
    p->overflow = 1;
    return;
  }
  p->fix_at[p->nfix] = p->n;
  p->fix_label[p->nfix++] = label;
  emit(p, BPF_JMP | op | BPF_K, dst, 0, 0, imm);
}

static void goto_label(prog_t *p, int label) { jump(p, BPF_JA, 0, 0, label); }
static void place(prog_t *p, int label) { p->label[label] = p->n; }
// r0 = packet[offset] (B, H or W, network order made host order by the kernel); ends the program
// with 0 when out of bounds. Needs the context in r6; clobbers r1-r5.
static void load_abs(prog_t *p, uint8_t size, int32_t offset) { emit(p, BPF_LD | size | BPF_ABS, 0, 0, 0, offset); }
static void load_ind(prog_t *p, uint8_t size, uint8_t reg, int32_t offset) { emit(p, BPF_LD | size | BPF_IND, 0, reg, 0, offset); }
static void mov_reg(prog_t *p, uint8_t dst, uint8_t src) { emit(p, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
static void alu_imm(prog_t *p, uint8_t op, uint8_t dst, int32_t imm) { emit(p, BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
static void alu32_imm(prog_t *p, uint8_t op, uint8_t dst, int32_t imm) { emit(p, BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
static void xor_reg(prog_t *p, uint8_t dst, uint8_t src) { emit(p, BPF_ALU64 | BPF_XOR | BPF_X, dst, src, 0, 0); }

// r8 holds the DSCP: realtime ones jump to L_RT.
static void realtime_jumps(prog_t *p) {
  for (size_t i = 0; i < REALTIME_COUNT; i++) jump(p, BPF_JEQ, BPF_REG_8, realtime_dscps[i], L_RT);
}

// r8 holds the protocol: the ones with ports jump to `label`, the rest go to L_HASH.
static void port_jumps(prog_t *p, int label) {
  static const int32_t protos[] = {6, 17, 132, 136};
  for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) jump(p, BPF_JEQ, BPF_REG_8, protos[i], label);
  goto_label(p, L_HASH);
}

// key ^= protocol << 16 (the byte at `offset`, kept in r8); then to `label` for the protocols
// with ports, to L_HASH for the rest. `label` is placed right after.
static void fold_protocol(prog_t *p, int32_t offset, int label) {
  load_abs(p, BPF_B, offset);
  mov_reg(p, BPF_REG_8, BPF_REG_0);
  alu_imm(p, BPF_LSH, BPF_REG_0, 16);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  port_jumps(p, label);
  place(p, label);
}

static int build(prog_t *p, int queues) {
  memset(p, 0, sizeof *p);
  mov_reg(p, BPF_REG_6, BPF_REG_1);  // LD_ABS wants the skb in r6
  load_abs(p, BPF_B, 0);
  alu_imm(p, BPF_RSH, BPF_REG_0, 4);
  jump(p, BPF_JEQ, BPF_REG_0, 6, L_V6);
  jump(p, BPF_JNE, BPF_REG_0, 4, L_RT);  // not IP: queue 0, as tun_queue_of
  // IPv4: DSCP, then key = src ^ dst ^ proto << 16 (r7), ports for first fragments.
  load_abs(p, BPF_B, 1);
  alu_imm(p, BPF_RSH, BPF_REG_0, 2);
  mov_reg(p, BPF_REG_8, BPF_REG_0);
  realtime_jumps(p);
  load_abs(p, BPF_W, 12);
  mov_reg(p, BPF_REG_7, BPF_REG_0);
  load_abs(p, BPF_W, 16);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  fold_protocol(p, 9, L_P4);
  load_abs(p, BPF_H, 6);
  alu_imm(p, BPF_AND, BPF_REG_0, 0x3fff);
  jump(p, BPF_JNE, BPF_REG_0, 0, L_HASH);  // a fragment (MF or offset): no ports, as in tun_queue_of
  load_abs(p, BPF_B, 0);
  alu_imm(p, BPF_AND, BPF_REG_0, 15);
  alu_imm(p, BPF_LSH, BPF_REG_0, 2);
  mov_reg(p, BPF_REG_9, BPF_REG_0);
  load_ind(p, BPF_H, BPF_REG_9, 0);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  load_ind(p, BPF_H, BPF_REG_9, 2);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  goto_label(p, L_HASH);
  // IPv6: DSCP from the first 16 bits, key = xor of the 8 address words ^ next header << 16.
  place(p, L_V6);
  load_abs(p, BPF_H, 0);
  alu_imm(p, BPF_RSH, BPF_REG_0, 6);
  alu_imm(p, BPF_AND, BPF_REG_0, 63);
  mov_reg(p, BPF_REG_8, BPF_REG_0);
  realtime_jumps(p);
  alu_imm(p, BPF_MOV, BPF_REG_7, 0);
  for (int off = 8; off < 40; off += 4) {
    load_abs(p, BPF_W, off);
    xor_reg(p, BPF_REG_7, BPF_REG_0);
  }
  fold_protocol(p, 6, L_P6);
  load_abs(p, BPF_H, 40);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  load_abs(p, BPF_H, 42);
  xor_reg(p, BPF_REG_7, BPF_REG_0);
  // key -> 1 + ((key * K mod 2^32) >> 16) % (queues - 1)
  place(p, L_HASH);
  alu32_imm(p, BPF_MUL, BPF_REG_7, (int32_t)HASH_MULTIPLIER);
  alu32_imm(p, BPF_RSH, BPF_REG_7, 16);
  alu32_imm(p, BPF_MOD, BPF_REG_7, queues - 1);
  alu32_imm(p, BPF_ADD, BPF_REG_7, 1);
  mov_reg(p, BPF_REG_0, BPF_REG_7);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  place(p, L_RT);
  alu_imm(p, BPF_MOV, BPF_REG_0, 0);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  if (p->overflow) return -1;
  for (int i = 0; i < p->nfix; i++) p->insn[p->fix_at[i]].off = (int16_t)(p->label[p->fix_label[i]] - p->fix_at[i] - 1);
  return p->n;
}

int tun_steering_attach(int fd, int queues, const char **failed) {
  if (queues < 2 || queues > TUN_QUEUES_MAX) {
    *failed = "tun queues";
    return -EINVAL;
  }
  prog_t prog;
  int n = build(&prog, queues);
  if (n < 0) {
    *failed = "bpf program build";
    return -E2BIG;
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insn_cnt = (uint32_t)n;
  attr.insns = (uint64_t)(uintptr_t)prog.insn;
  attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
  int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (prog_fd < 0) {
    *failed = "bpf(BPF_PROG_LOAD)";
    return -errno;
  }
  int rc = ioctl(fd, TUNSETSTEERINGEBPF, &prog_fd);
  int err = errno;
  close(prog_fd);  // the device holds its own reference
  if (rc < 0) {
    *failed = "ioctl(TUNSETSTEERINGEBPF)";
    return -err;
  }
  return 0;
}
