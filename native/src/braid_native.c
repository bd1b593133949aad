// Braid native addon: the few things Node cannot do (or cannot do fast) for an overlay edge.
//
// Stages, in the order a packet meets them:
//   1. setup     tunOpen (TUNSETIFF + MTU + IFF_UP), udpOpen (bind IPv4 or IPv6/dual stack,
//                device, buffers, TOS, DF with the kernel's PMTU ignored)
//   2. receive   startReader: a uv_poll_t on the fd, drained on the JS thread into one
//                preallocated slab (BATCH_MAX slots of SLOT_BYTES), then ONE JS call per batch
//   3. transmit  tunWrite, udpSend (sendmsg, TOS as a cmsg), udpSendBatch (sendmmsg)
//   4. teardown  stopReader, closeFd
//   5. aead      aeadCreate / aeadSeal / aeadOpen / aeadDestroy: ChaCha20-Poly1305 and
//                AES-256-GCM on OpenSSL EVP contexts kept per key (section 5 says why)
//
// Why a uv_poll_t and not the libuv threadpool: a threadpool read costs a thread hop and a
// callback per packet; polling the nonblocking fd on the loop thread and draining it in a
// loop costs one epoll wakeup and one JS call per batch of up to 64 packets.
//
// Error policy (DESIGN.md section 2): setup calls throw a JS Error whose .code is the errno
// name ('EPERM', 'ENOENT', ...) and whose message names the syscall. Per-packet calls
// (tunWrite, udpSend, udpSendBatch) never throw for OS errors: they return a negative errno,
// so the caller can count a drop. Wrong argument types are programmer errors and throw.

#include <node_api.h>
#include <uv.h>

// OpenSSL from Node itself: node-gyp puts Node's include/node first on the include path, and
// Node ships the headers of the OpenSSL it links (include/node/openssl) and exports its EVP_*
// symbols to addons. No libssl-dev, no -lcrypto: the addon uses the copy already in the process.
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "offload.h"
#include "tun-queues.h"

// Packets per batch: recvmmsg/sendmmsg vector size and the number of TUN reads per drain.
// 64 amortises the epoll wakeup and the JS call well; larger batches add latency for the
// first packet of the batch without measurable gain.
#define BATCH_MAX 64
// One slot holds any UDP datagram (max 65535 payload) and any TUN packet (TUN MTU max is 65535).
#define SLOT_BYTES 65536
// Batches drained per readable event before yielding to the event loop. One: while a callback
// runs, every other fd waits for it, so a ping on one link socket (or in the TUN) waits behind
// the bulk batch another fd is being drained of. Level-triggered polling brings a still-readable
// fd back in the next loop turn, after the others; split work left over (a super-segment or a
// GRO train not yet in the slab) goes on from an idle handle, also after the others.
// Measured (issue 13, 3 veth links, one iperf3 stream, 80 pings at 0.1 s, tcpdump at each hop,
// same build with 1 vs 4, alternated): ping under load 4.1 / 6.3 / 5.3 / 4.1 / 6.0 ms against
// 6.8 / 6.9 / 5.2 / 7.0 / 6.0 / 6.4, at the same throughput (1,669-2,513 vs 1,915-2,335 Mbit/s);
// the sender's wait for the reply's socket went from 2.0-3.1 ms mean to 1.5-1.9. Most of the
// rest was split work drained in one go (the old loop ran on while `pending`: 8 GRO trains are
// ~360 datagrams, ~1-2 ms of JS): yielding it through the idle handle took the same runs to
// 2.1 / 2.4 / 3.4 ms at 1,777-2,013 Mbit/s (docs/BENCHMARKS.md "RTT under load, session 9").
#define ROUNDS_PER_WAKE 1

#define KIND_TUN 1
#define KIND_UDP 2

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
// Messages per recvmmsg on a GRO socket: each may hold a train of up to 64 datagrams, so 8 fill
// a batch of BATCH_MAX several times over.
#define GRO_VLEN 8

// ---------------------------------------------------------------------------------------
// Errors and argument helpers

#define NAPI_CALL(env, call)                                                     \
  do {                                                                           \
    napi_status status_ = (call);                                                \
    if (status_ != napi_ok) {                                                    \
      throw_napi_failure((env), #call, status_);                                 \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

static void throw_napi_failure(napi_env env, const char *what, napi_status status) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;  // keep the first, more specific exception
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "braid_native: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown N-API error");
  napi_throw_error(env, "ERR_BRAID_NATIVE", msg);
}

static const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

// Throws Error{code: 'EPERM', errno: -1, syscall: 'ioctl(TUNSETIFF)', message:
// 'ioctl(TUNSETIFF) brt0: Operation not permitted'}; shaped like Node's own system errors.
static napi_value throw_errno(napi_env env, const char *syscall, const char *subject, int err) {
  char buf[128];
  const char *text = strerror_r(err, buf, sizeof buf);
  char msg[384];
  if (subject && subject[0])
    snprintf(msg, sizeof msg, "%s %s: %s (%s)", syscall, subject, text, errno_name(err));
  else
    snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, text, errno_name(err));
  napi_value code, message, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return NULL;
  }
  if (napi_create_int32(env, -err, &errno_value) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

// Reads an integer argument that must be a finite whole number in [min, max].
static bool get_int(napi_env env, napi_value v, const char *fn, const char *name, int64_t min,
                    int64_t max, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char what[128];
    snprintf(what, sizeof what, "%s must be a number", name);
    throw_type(env, fn, what);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    char what[160];
    snprintf(what, sizeof what, "%s must be an integer in [%lld, %lld], got %g", name,
             (long long)min, (long long)max, d);
    throw_range(env, fn, what);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

// Fast path for the per-packet functions: int32 without the double round trip.
static bool get_i32(napi_env env, napi_value v, const char *fn, const char *name, int32_t min,
                    int32_t max, int32_t *out) {
  int64_t x;
  if (!get_int(env, v, fn, name, min, max, &x)) return false;
  *out = (int32_t)x;
  return true;
}

// Any TypedArray or DataView (Buffer is a Uint8Array) as raw bytes.
static bool get_bytes(napi_env env, napi_value v, const char *fn, const char *name,
                      uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t length;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) == napi_ok) {
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *data = ptr;
    *len = length * elem;
    return true;
  }
  bool is_dv = false;
  if (napi_is_dataview(env, v, &is_dv) == napi_ok && is_dv &&
      napi_get_dataview_info(env, v, len, &ptr, NULL, NULL) == napi_ok) {
    *data = ptr;
    return true;
  }
  char what[128];
  snprintf(what, sizeof what, "%s must be a Buffer, TypedArray or DataView", name);
  throw_type(env, fn, what);
  return false;
}

// Typed array of an exact element type, e.g. the Uint32Array of lengths for udpSendBatch.
static bool get_typed(napi_env env, napi_value v, const char *fn, const char *name,
                      napi_typedarray_type want, void **data, size_t *count) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, count, data, NULL, NULL) != napi_ok ||
      type != want) {
    char what[128];
    const char *want_name = want == napi_uint32_array   ? "Uint32Array"
                            : want == napi_uint16_array ? "Uint16Array"
                                                        : "Uint8Array";
    snprintf(what, sizeof what, "%s must be a %s", name, want_name);
    throw_type(env, fn, what);
    return false;
  }
  return true;
}

// Buffer slice argument triple (buf, offset, length), bounds checked.
static bool get_slice(napi_env env, napi_value *argv, const char *fn, uint8_t **data,
                      size_t *len) {
  uint8_t *base;
  size_t total;
  int64_t offset, length;
  if (!get_bytes(env, argv[0], fn, "buf", &base, &total)) return false;
  if (!get_int(env, argv[1], fn, "offset", 0, (int64_t)total, &offset)) return false;
  if (!get_int(env, argv[2], fn, "length", 0, (int64_t)total - offset, &length)) return false;
  *data = base + offset;
  *len = (size_t)length;
  return true;
}

static bool get_string(napi_env env, napi_value v, const char *fn, const char *name, char *out,
                       size_t cap) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    char what[128];
    snprintf(what, sizeof what, "%s must be a string", name);
    throw_type(env, fn, what);
    return false;
  }
  size_t n = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  if (n >= cap) {
    char what[128];
    snprintf(what, sizeof what, "%s is too long (%zu bytes, max %zu)", name, n, cap - 1);
    throw_range(env, fn, what);
    return false;
  }
  napi_get_value_string_utf8(env, v, out, cap, &n);
  return true;
}

// IPv4 destination as a host-order uint32 (0x7f000001 for 127.0.0.1) or a dotted string.
static bool get_ipv4(napi_env env, napi_value v, const char *fn, struct in_addr *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_number) {
    int64_t x;
    if (!get_int(env, v, fn, "address", 0, 0xffffffffLL, &x)) return false;
    out->s_addr = htonl((uint32_t)x);
    return true;
  }
  char text[64];
  if (t != napi_string) {
    throw_type(env, fn, "address must be an IPv4 string or a uint32");
    return false;
  }
  if (!get_string(env, v, fn, "address", text, sizeof text)) return false;
  if (inet_pton(AF_INET, text, out) != 1) {
    char what[128];
    snprintf(what, sizeof what, "address '%s' is not an IPv4 address", text);
    napi_throw_error(env, "ERR_INVALID_IP_ADDRESS", what);
    return false;
  }
  return true;
}

// A UDP destination or source of either family. IPv4 peers of a dual-stack (AF_INET6) socket
// appear as v4-mapped IPv6 addresses (::ffff:a.b.c.d).
typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} sockaddr_any_t;

static bool is_v4_mapped(const uint8_t a[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a, prefix, 12) == 0;
}

// Destination for udpSend: a host-order uint32 or dotted string (IPv4: sockaddr_in), IPv6 text,
// or 16 bytes (sockaddr_in6; an IPv4 peer of a dual-stack socket is passed v4-mapped).
static bool get_dest(napi_env env, napi_value v, const char *fn, sockaddr_any_t *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  napi_valuetype t;
  napi_typeof(env, v, &t);
  bool typed = false;
  if (t == napi_object) napi_is_typedarray(env, v, &typed);
  if (typed) {
    uint8_t *bytes;
    size_t n;
    if (!get_bytes(env, v, fn, "address", &bytes, &n)) return false;
    if (n != 16) {
      throw_range(env, fn, "a binary address must be 16 bytes (IPv6)");
      return false;
    }
    out->in6.sin6_family = AF_INET6;
    memcpy(&out->in6.sin6_addr, bytes, 16);
    *len = sizeof out->in6;
    return true;
  }
  if (t == napi_string) {
    char text[64];
    if (!get_string(env, v, fn, "address", text, sizeof text)) return false;
    if (strchr(text, ':')) {
      if (inet_pton(AF_INET6, text, &out->in6.sin6_addr) != 1) {
        char what[128];
        snprintf(what, sizeof what, "address '%s' is not an IPv6 address", text);
        napi_throw_error(env, "ERR_INVALID_IP_ADDRESS", what);
        return false;
      }
      out->in6.sin6_family = AF_INET6;
      *len = sizeof out->in6;
      return true;
    }
  }
  out->in4.sin_family = AF_INET;
  *len = sizeof out->in4;
  return get_ipv4(env, v, fn, &out->in4.sin_addr);
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// ---------------------------------------------------------------------------------------
// 1. Setup: TUN

// Offloads asked of the TUN with TUNSETOFFLOAD: checksums and TCP segmentation (TSO) for both
// families, so the kernel hands over TCP super-segments of up to 64 KB and takes them back. Not
// TSO_ECN (a CWR super-segment is segmented by the kernel first) nor USO (UDP, Linux 6.2+).
#define TUN_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)

// TUNSETIFF on a fresh /dev/net/tun fd; with vnet, also IFF_VNET_HDR and TUNSETOFFLOAD; with multi,
// IFF_MULTI_QUEUE (a second attach with the same name adds a queue). Returns the fd, or -errno with
// *failed naming the call.
static int tun_attach(const char *name, bool vnet, bool multi, struct ifreq *ifr, const char **failed) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *failed = "open";
    return -errno;
  }
  memset(ifr, 0, sizeof *ifr);
  // IFF_NO_PI: no 4-byte packet-info header, so the slab holds bare IP packets.
  ifr->ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (multi ? IFF_MULTI_QUEUE : 0);
  memcpy(ifr->ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, ifr) < 0) {
    int err = errno;
    close(fd);
    *failed = "ioctl(TUNSETIFF)";
    return -err;
  }
  if (vnet && ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_OFFLOADS) < 0) {
    int err = errno;
    close(fd);  // the device goes with its only fd; the caller opens it again without
    *failed = "ioctl(TUNSETOFFLOAD)";
    return -err;
  }
  return fd;
}

// tun_attach with offload when wanted, else (or when the kernel refuses it: an old or restricted
// kernel) the plain device; *offload says which one took.
static int tun_attach_best(const char *name, bool want_offload, bool multi, struct ifreq *ifr, const char **failed, bool *offload) {
  *offload = want_offload;
  int fd = tun_attach(name, want_offload, multi, ifr, failed);
  if (fd < 0 && want_offload) {
    *offload = false;
    fd = tun_attach(name, false, multi, ifr, failed);
  }
  return fd;
}

// Queues 1..n-1 of a multi-queue TUN whose queue 0 is open (fds[0]), and the steering program.
// Returns how many queues the device has then: n, or 1 with *why naming what failed (the extra
// fds closed again: queue 0 alone works as a single-queue device).
static int tun_add_queues(const char *name, bool vnet, int n, int *fds, const char **why, int *why_errno) {
  struct ifreq ifr;
  int opened = 1;
  for (; opened < n; opened++) {
    int fd = tun_attach(name, vnet, true, &ifr, why);
    if (fd < 0) {
      *why_errno = -fd;
      break;
    }
    fds[opened] = fd;
  }
  if (opened == n) {
    int rc = tun_steering_attach(fds[0], n, why);
    if (rc == 0) return n;
    *why_errno = -rc;
  }
  for (int i = 1; i < opened; i++) close(fds[i]);
  return 1;
}

// tunOpen(name: string, mtuBytes: number, offload?: boolean, queues?: number):
//   { fd, fds, name, offload, queues, queuesError? }
// With offload, IFF_VNET_HDR + TUNSETOFFLOAD when the kernel takes them, else the plain device
// (offload: false in the result): every read then starts with a virtio_net_hdr, and every write
// must (tunWrite's vnet argument, tunWriteBatch). With queues > 1 (at most TUN_QUEUES_MAX), a
// multi-queue device steered by tun-queues.c's program: fds holds one fd per queue (fd is fds[0]),
// each to be read; writes may go to any of them. When the kernel refuses that (no eBPF, an old
// kernel), the device has one queue (queues: 1) and queuesError says why.
static napi_value tun_open(napi_env env, napi_callback_info info) {
  static const char *fn = "tunOpen";
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, fn, "expected (name: string, mtuBytes: number, offload?: boolean, queues?: number)");
  char name[IFNAMSIZ];
  if (!get_string(env, argv[0], fn, "name", name, sizeof name)) return NULL;
  int64_t mtu;
  // 68 is the IPv4 minimum MTU; 65535 is the largest a TUN device accepts.
  if (!get_int(env, argv[1], fn, "mtuBytes", 68, 65535, &mtu)) return NULL;
  bool want_offload = false;
  if (argc >= 3) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t == napi_boolean) napi_get_value_bool(env, argv[2], &want_offload);
    else if (t != napi_undefined) return throw_type(env, fn, "offload must be a boolean");
  }
  int64_t queues = 1;
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t != napi_undefined && !get_int(env, argv[3], fn, "queues", 1, TUN_QUEUES_MAX, &queues)) return NULL;
  }

  struct ifreq ifr;
  const char *failed_call = NULL;
  bool offload;
  bool multi = queues > 1;
  int fd = tun_attach_best(name, want_offload, multi, &ifr, &failed_call, &offload);
  const char *queues_why = NULL;
  int queues_errno = 0;
  if (fd < 0 && multi) {
    // A kernel without multi-queue TUN: one queue, as before.
    queues_why = failed_call;
    queues_errno = -fd;
    multi = false;
    fd = tun_attach_best(name, want_offload, false, &ifr, &failed_call, &offload);
  }
  if (fd < 0) return throw_errno(env, failed_call, strcmp(failed_call, "open") == 0 ? "/dev/net/tun" : name, -fd);
  // The kernel may have chosen the name (empty name or a 'brt%d' pattern).
  char actual[IFNAMSIZ];
  memcpy(actual, ifr.ifr_name, IFNAMSIZ);
  actual[IFNAMSIZ - 1] = 0;

  // The other queues and the steering program before the device comes up: a packet the kernel
  // sends at once (an IPv6 router solicitation) is steered like every later one.
  int fds[TUN_QUEUES_MAX];
  fds[0] = fd;
  int nq = multi ? tun_add_queues(actual, offload, (int)queues, fds, &queues_why, &queues_errno) : 1;
  // Interface ioctls go through any socket; a throwaway AF_INET datagram socket is the usual one.
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    int err = errno;
    for (int i = 0; i < nq; i++) close(fds[i]);
    return throw_errno(env, "socket", "AF_INET", err);
  }
  struct ifreq req;
  memset(&req, 0, sizeof req);
  memcpy(req.ifr_name, actual, IFNAMSIZ);
  req.ifr_mtu = (int)mtu;
  const char *failed = NULL;
  if (ioctl(sock, SIOCSIFMTU, &req) < 0) {
    failed = "ioctl(SIOCSIFMTU)";
  } else if (ioctl(sock, SIOCGIFFLAGS, &req) < 0) {
    failed = "ioctl(SIOCGIFFLAGS)";
  } else {
    req.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &req) < 0) failed = "ioctl(SIOCSIFFLAGS)";
  }
  int err = errno;
  close(sock);
  if (failed) {
    for (int i = 0; i < nq; i++) close(fds[i]);
    return throw_errno(env, failed, actual, err);
  }

  napi_value out, name_value, fds_value;
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_set_named_property(env, out, "fd", make_int(env, fd)));
  NAPI_CALL(env, napi_create_array_with_length(env, (size_t)nq, &fds_value));
  for (int i = 0; i < nq; i++) NAPI_CALL(env, napi_set_element(env, fds_value, (uint32_t)i, make_int(env, fds[i])));
  NAPI_CALL(env, napi_set_named_property(env, out, "fds", fds_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "queues", make_int(env, nq)));
  if (queues > 1 && nq == 1 && queues_why) {
    char text[160];
    snprintf(text, sizeof text, "%s: %s", queues_why, strerror(queues_errno));
    napi_value why_value;
    NAPI_CALL(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &why_value));
    NAPI_CALL(env, napi_set_named_property(env, out, "queuesError", why_value));
  }
  NAPI_CALL(env, napi_create_string_utf8(env, actual, NAPI_AUTO_LENGTH, &name_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "name", name_value));
  napi_value offload_value;
  NAPI_CALL(env, napi_get_boolean(env, offload, &offload_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "offload", offload_value));
  return out;
}

// ---------------------------------------------------------------------------------------
// 1. Setup: UDP

static bool get_opt_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return false;
  napi_get_named_property(env, obj, key, out);
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

// Tries the FORCE variant first (root / CAP_NET_ADMIN may exceed net.core.*mem_max, which the
// design wants: 4 MiB buffers), then the capped one.
static int set_buffer(int fd, int force_opt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) == 0) return 0;
  return -1;
}

static int get_int_opt(int fd, int level, int opt) {
  int v = 0;
  socklen_t n = sizeof v;
  if (getsockopt(fd, level, opt, &v, &n) < 0) return -1;
  return v;
}

// udpOpen({ bindAddress, port, device?, rcvbufBytes?, sndbufBytes?, tos?, recvTos?, dontFragment?, v6Only? })
//   -> { fd, port, rcvbufBytes, sndbufBytes }
// The returned buffer sizes are what getsockopt reports (Linux doubles the request to
// account for its bookkeeping), so they show whether the request was capped.
static napi_value udp_open(napi_env env, napi_callback_info info) {
  static const char *fn = "udpOpen";
  size_t argc = 1;
  napi_value opts;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, &opts, NULL, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, opts, &t);
  if (t != napi_object)
    return throw_type(env, fn, "expected an options object {bindAddress, port, ...}");

  napi_value v;
  char bind_text[64];
  struct in_addr bind_addr;
  struct in6_addr bind_addr6;
  if (!get_opt_prop(env, opts, "bindAddress", &v))
    return throw_type(env, fn, "bindAddress must be an IPv4 or IPv6 address string");
  if (!get_string(env, v, fn, "bindAddress", bind_text, sizeof bind_text)) return NULL;
  // An IPv6 bind address makes an AF_INET6 socket; '::' also takes IPv4 (dual stack, IPv4
  // peers as v4-mapped addresses) unless v6Only is set.
  bool v6 = strchr(bind_text, ':') != NULL;
  if (v6 ? inet_pton(AF_INET6, bind_text, &bind_addr6) != 1 : inet_pton(AF_INET, bind_text, &bind_addr) != 1) {
    char what[128];
    snprintf(what, sizeof what, "%s: bindAddress '%s' is not an IPv4 or IPv6 address", fn, bind_text);
    napi_throw_error(env, "ERR_INVALID_IP_ADDRESS", what);
    return NULL;
  }
  bool dual_stack = v6 && memcmp(&bind_addr6, &in6addr_any, sizeof bind_addr6) == 0;
  if (v6 && get_opt_prop(env, opts, "v6Only", &v)) {
    bool v6_only = false;
    napi_get_value_bool(env, v, &v6_only);
    if (v6_only) dual_stack = false;
  }
  int64_t port = 0;
  if (!get_opt_prop(env, opts, "port", &v)) return throw_type(env, fn, "port must be a number");
  if (!get_int(env, v, fn, "port", 0, 65535, &port)) return NULL;

  char device[IFNAMSIZ] = {0};
  bool has_device = get_opt_prop(env, opts, "device", &v);
  if (has_device && !get_string(env, v, fn, "device", device, sizeof device)) return NULL;
  int64_t rcvbuf = -1, sndbuf = -1, tos = -1;
  if (get_opt_prop(env, opts, "rcvbufBytes", &v) &&
      !get_int(env, v, fn, "rcvbufBytes", 1024, INT32_MAX / 2, &rcvbuf))
    return NULL;
  if (get_opt_prop(env, opts, "sndbufBytes", &v) &&
      !get_int(env, v, fn, "sndbufBytes", 1024, INT32_MAX / 2, &sndbuf))
    return NULL;
  if (get_opt_prop(env, opts, "tos", &v) && !get_int(env, v, fn, "tos", 0, 255, &tos))
    return NULL;
  bool recv_tos = false;
  if (get_opt_prop(env, opts, "recvTos", &v)) napi_get_value_bool(env, v, &recv_tos);
  bool dont_fragment = false;
  if (get_opt_prop(env, opts, "dontFragment", &v)) napi_get_value_bool(env, v, &dont_fragment);
  bool want_gro = false;
  if (get_opt_prop(env, opts, "gro", &v)) napi_get_value_bool(env, v, &want_gro);

  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", v6 ? "AF_INET6/SOCK_DGRAM" : "AF_INET/SOCK_DGRAM", errno);

  const char *failed = NULL;
  const char *subject = NULL;
  int one = 1;
  int zero = 0;
  // IPv4 options apply to a v4 socket and to the IPv4 traffic of a dual-stack one.
  bool ip4 = !v6 || dual_stack;
  // dontFragment: DF on every datagram, never fragmented by this host, and the kernel's cached
  // path MTU ignored. IP_PMTUDISC_PROBE (not _DO) because Braid discovers each path's MTU
  // itself with padded probes (RFC 8899): with _DO, one ICMP Frag Needed (or a forged one)
  // lowers the route's cached PMTU and the kernel then refuses (EMSGSIZE) every larger send for
  // ten minutes, including the probes that would find the path grew back; with _PROBE the
  // probes go out as asked and a datagram larger than the interface MTU still fails locally with
  // EMSGSIZE. IPv6 routers never fragment; IPV6_DONTFRAG stops this host from fragmenting too
  // (an oversized send fails with EMSGSIZE instead of going out as fragments), and
  // IPV6_PMTUDISC_PROBE ignores the cached PMTU as on IPv4.
  int pmtu_probe = IP_PMTUDISC_PROBE;
  int pmtu6_probe = IPV6_PMTUDISC_PROBE;
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one) < 0) {
    failed = "setsockopt(IPV6_V6ONLY)";
  } else if (has_device && device[0] &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)strlen(device)) < 0) {
    failed = "setsockopt(SO_BINDTODEVICE)";
    subject = device;
  } else if (rcvbuf > 0 && set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf) < 0) {
    failed = "setsockopt(SO_RCVBUF)";
  } else if (sndbuf > 0 && set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf) < 0) {
    failed = "setsockopt(SO_SNDBUF)";
  } else if (tos >= 0 && ip4 && setsockopt(fd, IPPROTO_IP, IP_TOS, &(int){(int)tos}, sizeof(int)) < 0) {
    failed = "setsockopt(IP_TOS)";
  } else if (tos >= 0 && v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &(int){(int)tos}, sizeof(int)) < 0) {
    failed = "setsockopt(IPV6_TCLASS)";
  } else if (recv_tos && ip4 && setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) < 0) {
    failed = "setsockopt(IP_RECVTOS)";
  } else if (recv_tos && v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) < 0) {
    failed = "setsockopt(IPV6_RECVTCLASS)";
  } else if (dont_fragment && ip4 && setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu_probe, sizeof pmtu_probe) < 0) {
    failed = "setsockopt(IP_MTU_DISCOVER)";
  } else if (dont_fragment && v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu6_probe, sizeof pmtu6_probe) < 0) {
    failed = "setsockopt(IPV6_MTU_DISCOVER)";
  } else if (dont_fragment && v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof one) < 0) {
    failed = "setsockopt(IPV6_DONTFRAG)";
  } else {
    sockaddr_any_t sa;
    memset(&sa, 0, sizeof sa);
    socklen_t sa_len;
    if (v6) {
      sa.in6.sin6_family = AF_INET6;
      sa.in6.sin6_addr = bind_addr6;
      sa.in6.sin6_port = htons((uint16_t)port);
      sa_len = sizeof sa.in6;
    } else {
      sa.in4.sin_family = AF_INET;
      sa.in4.sin_addr = bind_addr;
      sa.in4.sin_port = htons((uint16_t)port);
      sa_len = sizeof sa.in4;
    }
    if (bind(fd, &sa.sa, sa_len) < 0) {
      failed = "bind";
      subject = bind_text;
    }
  }
  if (failed) {
    int err = errno;
    close(fd);
    char where[96];
    if (failed[0] == 'b' && subject) {
      snprintf(where, sizeof where, v6 ? "[%s]:%lld" : "%s:%lld", subject, (long long)port);
      subject = where;
    }
    return throw_errno(env, failed, subject, err);
  }
  sockaddr_any_t bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, &bound.sa, &bound_len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "getsockname", NULL, err);
  }
  // UDP GRO (Linux 5.0+): the kernel may hand over runs of same-sized datagrams from one source as
  // one buffer with a UDP_GRO cmsg giving the size (a UDP GSO sender's train arrives whole); the
  // reader splits them. Not fatal when refused: the reader then gets datagrams one by one.
  bool gro = want_gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;

  napi_value out;
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_set_named_property(env, out, "fd", make_int(env, fd)));
  NAPI_CALL(env, napi_set_named_property(env, out, "port",
                                         make_int(env, ntohs(v6 ? bound.in6.sin6_port : bound.in4.sin_port))));
  NAPI_CALL(env, napi_set_named_property(env, out, "family", make_int(env, v6 ? 6 : 4)));
  napi_value dual_value;
  NAPI_CALL(env, napi_get_boolean(env, dual_stack, &dual_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "dualStack", dual_value));
  napi_value gro_value;
  NAPI_CALL(env, napi_get_boolean(env, gro, &gro_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "gro", gro_value));
  NAPI_CALL(env, napi_set_named_property(env, out, "rcvbufBytes",
                                         make_int(env, get_int_opt(fd, SOL_SOCKET, SO_RCVBUF))));
  NAPI_CALL(env, napi_set_named_property(env, out, "sndbufBytes",
                                         make_int(env, get_int_opt(fd, SOL_SOCKET, SO_SNDBUF))));
  return out;
}

// ---------------------------------------------------------------------------------------
// 2. Receive: poll-driven batch reader

typedef struct reader {
  struct reader *next;  // the env's list of live readers, so closeFd can stop a forgotten one
  napi_env env;
  uv_poll_t poll;
  // Runs the drain on after a yield while split work is pending (see ROUNDS_PER_WAKE): an
  // active idle handle makes the loop poll without blocking, so other fds go first.
  uv_idle_t idle;
  int handles_open;     // poll and idle: the struct is freed after both have closed
  int fd;
  int kind;
  bool stopped;         // no more reads or callbacks; set by stopReader or a fatal error
  bool handle_closed;   // uv_close finished for every handle
  bool external_alive;  // the JS handle still references this struct
  bool teardown;        // env is going away: do not touch JS in close paths
  napi_async_cleanup_hook_handle cleanup_hook;
  napi_async_context async_context;
  napi_ref on_batch;
  napi_ref on_error;  // may be NULL
  napi_ref slab_ref, lengths_ref, addrs_ref, ports_ref, tos_ref, addrs6_ref, families_ref;
  uint8_t *slab;
  uint32_t *lengths;
  uint32_t *addrs;     // host-order IPv4 source address per packet (UDP only; 0 for IPv6)
  uint16_t *ports;     // source port per packet (UDP only)
  uint8_t *tos;        // received TOS / traffic class per packet (UDP with recvTos only, else 0)
  uint8_t *addrs6;     // 16 bytes per packet: the IPv6 source, or the v4-mapped IPv4 one
  uint8_t *families;   // 4 or 6 per packet (an IPv4 peer of a dual-stack socket is 4)
  // recvmmsg vectors, wired to the slab once at start.
  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iov[BATCH_MAX];
  sockaddr_any_t from[BATCH_MAX];
  // Room for an IP_TOS cmsg (and IP_TTL / others the kernel might add) per message.
  uint8_t control[BATCH_MAX][64];
  // TUN with IFF_VNET_HDR (offload): each read lands in scratch (vnet header + up to 64 KB) and
  // is split into the slab; a super-segment that does not fit the rest of a batch stays here
  // (pending, next_segment) and opens the next batch.
  bool vnet;
  bool pending;
  uint32_t next_segment;
  offload_plan_t plan;
  uint8_t *scratch;
  // Offload counters (readerOffloadStats): super-segments read and the packets they became;
  // reads dropped for a bad vnet header, headers that do not match, a GSO type not asked for.
  // For a UDP reader with GRO: coalesced buffers received and the datagrams they held.
  double super_segments, segments, dropped_header, dropped_packet, dropped_unsupported;
  struct gro_area *gro;  // UDP socket with UDP_GRO on: its own receive area (else NULL)
} reader_t;

// A GRO socket's receive area: recvmmsg lands here, drain_udp_gro splits into the slab; what
// does not fit the batch (msg, offset) opens the next one.
typedef struct gro_area {
  struct mmsghdr msgs[GRO_VLEN];
  struct iovec iov[GRO_VLEN];
  sockaddr_any_t from[GRO_VLEN];
  uint8_t control[GRO_VLEN][64];
  uint32_t seg_bytes[GRO_VLEN];  // datagram size of a coalesced buffer (0: one datagram)
  uint8_t tos[GRO_VLEN];
  int count;                     // messages of the last recvmmsg
  int msg;                       // the next one to split
  uint32_t offset;               // within it
  uint8_t data[GRO_VLEN][SLOT_BYTES];
} gro_area_t;

// A vnet read: the header, a 64 KB super-segment and room to tell a truncated read (a read that
// fills the buffer) from a whole one.
#define TUN_SCRATCH_BYTES (VNET_HDR_BYTES + 65536 + 64)

static void reader_free(reader_t *r) {
  free(r->gro);
  free(r->scratch);
  free(r);
}

// Per-env (per worker) state: the readers whose poll handle is not yet closed.
typedef struct {
  reader_t *readers;
} instance_t;

static instance_t *instance_of(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static void unlink_reader(reader_t *r) {
  instance_t *inst = instance_of(r->env);
  if (!inst) return;
  for (reader_t **p = &inst->readers; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      return;
    }
  }
}

static void reader_maybe_free(reader_t *r) {
  if (r->handle_closed && !r->external_alive) reader_free(r);
}

static void reader_on_closed(uv_handle_t *h) {
  reader_t *r = h->data;
  if (--r->handles_open > 0) return;
  if (r->cleanup_hook) {
    napi_remove_async_cleanup_hook(r->cleanup_hook);
    r->cleanup_hook = NULL;
  }
  r->handle_closed = true;
  // At env teardown the instance data may already be gone; the list dies with it anyway.
  if (!r->teardown) unlink_reader(r);
  reader_maybe_free(r);
}

// Drops the JS references; only on the JS thread while the env is alive.
static void reader_release_js(reader_t *r) {
  napi_env env = r->env;
  napi_ref *refs[] = {&r->on_batch, &r->on_error, &r->slab_ref, &r->lengths_ref,
                      &r->addrs_ref, &r->ports_ref, &r->tos_ref, &r->addrs6_ref, &r->families_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) {
      napi_delete_reference(env, *refs[i]);
      *refs[i] = NULL;
    }
  }
  if (r->async_context) {
    napi_async_destroy(env, r->async_context);
    r->async_context = NULL;
  }
}

static void reader_close_handles(reader_t *r) {
  uv_poll_stop(&r->poll);
  uv_idle_stop(&r->idle);
  uv_close((uv_handle_t *)&r->poll, reader_on_closed);
  uv_close((uv_handle_t *)&r->idle, reader_on_closed);
}

static void reader_stop(reader_t *r) {
  if (r->stopped) return;
  r->stopped = true;
  if (!r->teardown) reader_release_js(r);
  reader_close_handles(r);
}

// Worker or env shutdown: close the poll handle so the loop can finish (N-API 8 async hook).
static void reader_on_env_cleanup(napi_async_cleanup_hook_handle handle, void *data) {
  reader_t *r = data;
  r->teardown = true;
  if (r->stopped) return;  // close already in flight; reader_on_closed removes the hook
  r->stopped = true;
  reader_close_handles(r);
}

static void reader_on_external_finalize(napi_env env, void *data, void *hint) {
  reader_t *r = data;
  r->external_alive = false;
  reader_maybe_free(r);
}

// Calls into JS from a libuv callback: napi_make_callback gives the call an async context
// and runs microtasks afterwards; an exception goes to 'uncaughtException', as it would from
// any Node event emitter.
static void reader_call(reader_t *r, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = r->env;
  napi_value fn, recv, result;
  if (!fn_ref || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  // napi_make_callback wants an object receiver (undefined fails with napi_object_expected).
  napi_get_global(env, &recv);
  napi_status status = napi_make_callback(env, r->async_context, recv, fn, argc, argv, &result);
  if (status == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

static void reader_fail(reader_t *r, const char *syscall, int err) {
  napi_env env = r->env;
  napi_ref on_error = r->on_error;
  r->on_error = NULL;  // reader_stop must not delete it before we call it
  napi_value fn = NULL;
  if (on_error) napi_get_reference_value(env, on_error, &fn);
  if (on_error) napi_delete_reference(env, on_error);
  reader_stop(r);
  if (!fn) return;
  // Build the same error shape the setup calls throw, without throwing it.
  throw_errno(env, syscall, r->kind == KIND_TUN ? "tun" : "udp", err);
  napi_value exc;
  if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) return;
  napi_value recv, result, resource;
  napi_get_global(env, &recv);
  // The reader's async context was destroyed by reader_stop; a fresh one for this last call.
  napi_async_context ctx = NULL;
  napi_value name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "BraidReaderError", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, resource, name, &ctx) != napi_ok) return;
  if (napi_make_callback(env, ctx, recv, fn, 1, &exc, &result) == napi_pending_exception) {
    napi_value e2;
    if (napi_get_and_clear_last_exception(env, &e2) == napi_ok) napi_fatal_exception(env, e2);
  }
  napi_async_destroy(env, ctx);
}

static bool is_transient_udp_error(int err) {
  // Errors that belong to one earlier datagram or a momentary shortage, not to the socket:
  // report nothing, the next wakeup reads on.
  switch (err) {
    case ECONNREFUSED: case EHOSTUNREACH: case ENETUNREACH: case EHOSTDOWN: case ENETDOWN:
    case ENOBUFS: case ENOMEM: case EMSGSIZE: case EPROTO: case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

// Returns packets read (0..BATCH_MAX), or -errno on a fatal error.
static int drain_tun(reader_t *r) {
  int n = 0;
  while (n < BATCH_MAX) {
    ssize_t k = read(r->fd, r->slab + (size_t)n * SLOT_BYTES, SLOT_BYTES);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return n > 0 ? n : -errno;  // deliver what we have; the error comes back next wakeup
    }
    r->lengths[n++] = (uint32_t)k;
  }
  return n;
}

// drain_tun for a TUN with IFF_VNET_HDR: pending segments first, then reads, each split into as
// many slots as it has segments. A read the offload code refuses is a counted drop.
static int drain_tun_vnet(reader_t *r) {
  int n = 0;
  uint8_t *pkt = r->scratch + VNET_HDR_BYTES;
  while (n < BATCH_MAX) {
    if (r->pending) {
      while (n < BATCH_MAX && r->next_segment < r->plan.segments) {
        r->lengths[n] = (uint32_t)offload_segment(pkt, &r->plan, r->next_segment++, r->slab + (size_t)n * SLOT_BYTES);
        n++;
      }
      if (r->next_segment < r->plan.segments) break;
      r->pending = false;
      continue;
    }
    ssize_t k = read(r->fd, r->scratch, TUN_SCRATCH_BYTES);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return n > 0 ? n : -errno;
    }
    if (k <= VNET_HDR_BYTES || k == TUN_SCRATCH_BYTES) {
      r->dropped_packet++;
      continue;
    }
    int rc = offload_plan_read(r->scratch, pkt, (size_t)k - VNET_HDR_BYTES, &r->plan);
    if (rc < 0) {
      if (rc == OFFLOAD_BAD_HEADER) r->dropped_header++;
      else if (rc == OFFLOAD_UNSUPPORTED) r->dropped_unsupported++;
      else r->dropped_packet++;
      continue;
    }
    if (!r->plan.gso) {
      memcpy(r->slab + (size_t)n * SLOT_BYTES, pkt, r->plan.len);
      r->lengths[n++] = r->plan.len;
      continue;
    }
    r->super_segments++;
    r->segments += r->plan.segments;
    r->pending = true;
    r->next_segment = 0;
  }
  return n;
}

// Slot i's source: host-order IPv4 (0 for IPv6), port, the 16-byte form (IPv4 v4-mapped), family.
static void set_source(reader_t *r, int i, const sockaddr_any_t *from) {
  static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  uint8_t *a6 = r->addrs6 + (size_t)i * 16;
  if (from->sa.sa_family == AF_INET6) {
    memcpy(a6, &from->in6.sin6_addr, 16);
    r->ports[i] = ntohs(from->in6.sin6_port);
    if (is_v4_mapped(a6)) {
      r->families[i] = 4;
      r->addrs[i] = ((uint32_t)a6[12] << 24) | ((uint32_t)a6[13] << 16) | ((uint32_t)a6[14] << 8) | a6[15];
    } else {
      r->families[i] = 6;
      r->addrs[i] = 0;
    }
  } else {
    uint32_t a = ntohl(from->in4.sin_addr.s_addr);
    r->families[i] = 4;
    r->addrs[i] = a;
    r->ports[i] = ntohs(from->in4.sin_port);
    memcpy(a6, mapped_prefix, 12);
    a6[12] = (uint8_t)(a >> 24);
    a6[13] = (uint8_t)(a >> 16);
    a6[14] = (uint8_t)(a >> 8);
    a6[15] = (uint8_t)a;
  }
}

// The received TOS / traffic class (0 without IP_RECVTOS), and with gro_bytes the UDP_GRO size.
static uint8_t cmsg_tos(struct msghdr *h, uint32_t *gro_bytes) {
  uint8_t tos = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
      tos = *(uint8_t *)CMSG_DATA(c);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      int tclass;
      memcpy(&tclass, CMSG_DATA(c), sizeof tclass);
      tos = (uint8_t)tclass;
    } else if (gro_bytes && c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      *gro_bytes = size > 0 ? (uint32_t)size : 0;
    }
  }
  return tos;
}

static int drain_udp(reader_t *r) {
  for (int i = 0; i < BATCH_MAX; i++) {
    // In/out fields: reset before every call.
    r->msgs[i].msg_hdr.msg_namelen = sizeof r->from[i];
    r->msgs[i].msg_hdr.msg_controllen = sizeof r->control[i];
    r->msgs[i].msg_hdr.msg_flags = 0;
  }
  int k;
  do {
    k = recvmmsg(r->fd, r->msgs, BATCH_MAX, MSG_DONTWAIT, NULL);
  } while (k < 0 && errno == EINTR);
  if (k < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || is_transient_udp_error(errno)) return 0;
    return -errno;
  }
  for (int i = 0; i < k; i++) {
    r->lengths[i] = r->msgs[i].msg_len;
    set_source(r, i, &r->from[i]);
    r->tos[i] = cmsg_tos(&r->msgs[i].msg_hdr, NULL);
  }
  return k;
}

// drain_udp for a socket with UDP_GRO: one buffer may hold a train of datagrams from one source
// (all seg_bytes long but the last), split here into one slot each with the source repeated.
static int drain_udp_gro(reader_t *r) {
  gro_area_t *g = r->gro;
  int n = 0;
  bool more = true;  // the socket may have more: the last recvmmsg filled its vector
  while (n < BATCH_MAX) {
    if (g->msg < g->count) {
      int m = g->msg;
      uint32_t len = g->msgs[m].msg_len;
      uint32_t seg = g->seg_bytes[m] ? g->seg_bytes[m] : len;
      if (len == 0) {  // an empty datagram is still one
        r->lengths[n] = 0;
        set_source(r, n, &g->from[m]);
        r->tos[n++] = g->tos[m];
      }
      while (n < BATCH_MAX && g->offset < len) {
        uint32_t k = len - g->offset < seg ? len - g->offset : seg;
        memcpy(r->slab + (size_t)n * SLOT_BYTES, g->data[m] + g->offset, k);
        r->lengths[n] = k;
        set_source(r, n, &g->from[m]);
        r->tos[n++] = g->tos[m];
        g->offset += k;
      }
      if (g->offset >= len) {
        g->msg++;
        g->offset = 0;
      }
      continue;
    }
    if (!more) break;
    for (int i = 0; i < GRO_VLEN; i++) {
      g->msgs[i].msg_hdr.msg_namelen = sizeof g->from[i];
      g->msgs[i].msg_hdr.msg_controllen = sizeof g->control[i];
      g->msgs[i].msg_hdr.msg_flags = 0;
    }
    int k;
    do {
      k = recvmmsg(r->fd, g->msgs, GRO_VLEN, MSG_DONTWAIT, NULL);
    } while (k < 0 && errno == EINTR);
    if (k <= 0) {
      if (k == 0 || errno == EAGAIN || errno == EWOULDBLOCK || is_transient_udp_error(errno)) break;
      if (n > 0) break;  // deliver what we have; the error comes back next wakeup
      return -errno;
    }
    more = k == GRO_VLEN;
    g->count = k;
    g->msg = 0;
    g->offset = 0;
    for (int i = 0; i < k; i++) {
      uint32_t seg = 0;
      g->tos[i] = cmsg_tos(&g->msgs[i].msg_hdr, &seg);
      g->seg_bytes[i] = seg;
      if (seg > 0 && g->msgs[i].msg_len > seg) {
        r->super_segments++;
        r->segments += (g->msgs[i].msg_len + seg - 1) / seg;
      }
    }
  }
  r->pending = g->msg < g->count;
  return n;
}

static void reader_deliver(reader_t *r, int count) {
  napi_env env = r->env;
  napi_value argv[8];
  size_t argc = r->kind == KIND_UDP ? 8 : 3;
  napi_get_reference_value(env, r->slab_ref, &argv[0]);
  napi_create_int32(env, count, &argv[1]);
  napi_get_reference_value(env, r->lengths_ref, &argv[2]);
  if (r->kind == KIND_UDP) {
    napi_get_reference_value(env, r->addrs_ref, &argv[3]);
    napi_get_reference_value(env, r->ports_ref, &argv[4]);
    napi_get_reference_value(env, r->tos_ref, &argv[5]);
    napi_get_reference_value(env, r->addrs6_ref, &argv[6]);
    napi_get_reference_value(env, r->families_ref, &argv[7]);
  }
  reader_call(r, r->on_batch, argc, argv);
}

static void reader_on_idle(uv_idle_t *h);

// Up to `rounds` batches; then, if split work is pending, the idle handle carries on with it
// (level-triggered polling would not come back for it when the fd itself is drained).
static void reader_run(reader_t *r, int rounds) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  for (int round = 0; round < rounds && !r->stopped; round++) {
    int n = r->kind == KIND_UDP ? (r->gro ? drain_udp_gro(r) : drain_udp(r)) : r->vnet ? drain_tun_vnet(r) : drain_tun(r);
    if (n < 0) {
      reader_fail(r, r->kind == KIND_TUN ? "read" : "recvmmsg", -n);
      break;
    }
    if (n > 0) reader_deliver(r, n);  // may call stopReader: the loop re-checks r->stopped
    if (n < BATCH_MAX && !r->pending) break;
  }
  if (!r->stopped) {
    if (r->pending) uv_idle_start(&r->idle, reader_on_idle);
    else uv_idle_stop(&r->idle);
  }
  napi_close_handle_scope(env, scope);
}

static void reader_on_idle(uv_idle_t *h) {
  reader_t *r = h->data;
  if (r->stopped || r->teardown) return;
  reader_run(r, 1);
}

static void reader_on_poll(uv_poll_t *h, int status, int events) {
  reader_t *r = h->data;
  if (r->stopped || r->teardown) return;
  if (status < 0) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
    reader_fail(r, "uv_poll", -status);
    napi_close_handle_scope(r->env, scope);
    return;
  }
  reader_run(r, ROUNDS_PER_WAKE);
}

static bool make_typed(napi_env env, napi_typedarray_type type, size_t count, size_t elem,
                       void **data, napi_ref *ref) {
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, count * elem, data, &ab) != napi_ok) return false;
  if (napi_create_typedarray(env, type, count, ab, 0, &ta) != napi_ok) return false;
  return napi_create_reference(env, ta, 1, ref) == napi_ok;
}

// startReader(fd, kind: 'tun'|'udp', onBatch, onError?) -> handle
//   TUN: onBatch(slab: Buffer, count, lengths: Uint32Array)
//   UDP: onBatch(slab, count, lengths, addrs: Uint32Array, ports: Uint16Array, tos: Uint8Array,
//                addrs6: Uint8Array (16 bytes per packet), families: Uint8Array (4 or 6))
// Packet i is slab[i*SLOT_BYTES, i*SLOT_BYTES + lengths[i]). Everything is reused by the next
// batch: valid only during the callback. onError(err) is called once on a fatal read error,
// after which the reader is stopped (the fd is left open: the owner closes it).
static napi_value start_reader(napi_env env, napi_callback_info info) {
  static const char *fn = "startReader";
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, fn, "expected (fd, kind: 'tun'|'udp', onBatch, onError?)");
  int32_t fd;
  if (!get_i32(env, argv[0], fn, "fd", 0, INT32_MAX, &fd)) return NULL;
  char kind_text[8];
  if (!get_string(env, argv[1], fn, "kind", kind_text, sizeof kind_text)) return NULL;
  int kind = strcmp(kind_text, "tun") == 0 ? KIND_TUN : strcmp(kind_text, "udp") == 0 ? KIND_UDP : 0;
  if (!kind) return throw_range(env, fn, "kind must be 'tun' or 'udp'");
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t != napi_function) return throw_type(env, fn, "onBatch must be a function");
  bool has_on_error = false;
  if (argc >= 4) {
    napi_typeof(env, argv[3], &t);
    if (t == napi_function) has_on_error = true;
    else if (t != napi_undefined && t != napi_null)
      return throw_type(env, fn, "onError must be a function");
  }
  if (fcntl(fd, F_GETFD) < 0) return throw_errno(env, "fcntl(F_GETFD)", NULL, errno);

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  reader_t *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", "reader", ENOMEM);
  r->env = env;
  r->fd = fd;
  r->kind = kind;
  r->external_alive = true;
  int gro_on = 0;
  socklen_t gro_len = sizeof gro_on;
  if (kind == KIND_UDP && getsockopt(fd, SOL_UDP, UDP_GRO, &gro_on, &gro_len) == 0 && gro_on) {
    // udpOpen's gro took: coalesced trains arrive, drain_udp_gro splits them.
    r->gro = malloc(sizeof *r->gro);
    if (!r->gro) {
      free(r);
      return throw_errno(env, "malloc", "udp gro buffer", ENOMEM);
    }
    memset(r->gro, 0, offsetof(gro_area_t, data));
    for (int i = 0; i < GRO_VLEN; i++) {
      r->gro->iov[i].iov_base = r->gro->data[i];
      r->gro->iov[i].iov_len = SLOT_BYTES;
      r->gro->msgs[i].msg_hdr.msg_name = &r->gro->from[i];
      r->gro->msgs[i].msg_hdr.msg_iov = &r->gro->iov[i];
      r->gro->msgs[i].msg_hdr.msg_iovlen = 1;
      r->gro->msgs[i].msg_hdr.msg_control = r->gro->control[i];
    }
  }
  if (kind == KIND_TUN) {
    // A TUN opened with IFF_VNET_HDR (tunOpen's offload) prefixes every read with a vnet header.
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_VNET_HDR)) {
      r->vnet = true;
      r->scratch = malloc(TUN_SCRATCH_BYTES);
      if (!r->scratch) {
        free(r);
        return throw_errno(env, "malloc", "tun offload buffer", ENOMEM);
      }
    }
  }

  // The slab is one Buffer made once (64 x 64 KiB = 4 MiB per reader), reused for every batch.
  napi_value slab;
  void *slab_data;
  bool ok = napi_create_buffer(env, (size_t)BATCH_MAX * SLOT_BYTES, &slab_data, &slab) == napi_ok &&
            napi_create_reference(env, slab, 1, &r->slab_ref) == napi_ok;
  r->slab = slab_data;
  void *p;
  ok = ok && make_typed(env, napi_uint32_array, BATCH_MAX, 4, &p, &r->lengths_ref);
  r->lengths = p;
  if (ok && kind == KIND_UDP) {
    ok = make_typed(env, napi_uint32_array, BATCH_MAX, 4, &p, &r->addrs_ref);
    r->addrs = p;
    ok = ok && make_typed(env, napi_uint16_array, BATCH_MAX, 2, &p, &r->ports_ref);
    r->ports = p;
    ok = ok && make_typed(env, napi_uint8_array, BATCH_MAX, 1, &p, &r->tos_ref);
    r->tos = p;
    ok = ok && make_typed(env, napi_uint8_array, BATCH_MAX * 16, 1, &p, &r->addrs6_ref);
    r->addrs6 = p;
    ok = ok && make_typed(env, napi_uint8_array, BATCH_MAX, 1, &p, &r->families_ref);
    r->families = p;
  }
  ok = ok && napi_create_reference(env, argv[2], 1, &r->on_batch) == napi_ok;
  if (ok && has_on_error) ok = napi_create_reference(env, argv[3], 1, &r->on_error) == napi_ok;
  napi_value resource, resource_name;
  ok = ok && napi_create_object(env, &resource) == napi_ok &&
       napi_create_string_utf8(env, "BraidReader", NAPI_AUTO_LENGTH, &resource_name) == napi_ok &&
       napi_async_init(env, resource, resource_name, &r->async_context) == napi_ok;
  if (!ok) {
    reader_release_js(r);
    reader_free(r);
    throw_napi_failure(env, "startReader allocation", napi_generic_failure);
    return NULL;
  }
  for (int i = 0; i < BATCH_MAX; i++) {
    r->iov[i].iov_base = r->slab + (size_t)i * SLOT_BYTES;
    r->iov[i].iov_len = SLOT_BYTES;
    r->msgs[i].msg_hdr.msg_name = &r->from[i];
    r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
    r->msgs[i].msg_hdr.msg_control = r->control[i];
  }

  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc < 0) {
    reader_release_js(r);
    reader_free(r);
    return throw_errno(env, "uv_poll_init", NULL, -rc);
  }
  r->poll.data = r;
  uv_idle_init(loop, &r->idle);  // cannot fail (libuv: returns 0)
  r->idle.data = r;
  r->handles_open = 2;
  rc = uv_poll_start(&r->poll, UV_READABLE, reader_on_poll);
  if (rc < 0) {
    reader_release_js(r);
    r->stopped = true;
    r->external_alive = false;  // no JS handle will exist: free on close
    reader_close_handles(r);
    return throw_errno(env, "uv_poll_start", NULL, -rc);
  }
  napi_add_async_cleanup_hook(env, reader_on_env_cleanup, r, &r->cleanup_hook);
  instance_t *inst = instance_of(env);
  if (inst) {
    r->next = inst->readers;
    inst->readers = r;
  }

  napi_value handle;
  if (napi_create_external(env, r, reader_on_external_finalize, NULL, &handle) != napi_ok) {
    r->external_alive = false;
    reader_stop(r);
    throw_napi_failure(env, "napi_create_external", napi_generic_failure);
    return NULL;
  }
  return handle;
}

// stopReader(handle): idempotent. Safe inside the reader's own onBatch callback.
// The reader behind a call's first argument (a startReader handle), or NULL with a TypeError thrown.
static reader_t *get_reader(napi_env env, napi_callback_info info, const char *fn) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t = napi_undefined;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    throw_type(env, fn, "handle must be a startReader handle");
    return NULL;
  }
  return data;
}

static napi_value stop_reader(napi_env env, napi_callback_info info) {
  reader_t *r = get_reader(env, info, "stopReader");
  if (!r) return NULL;
  reader_stop(r);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------
// 3. Transmit

static const uint8_t zero_vnet_hdr[VNET_HDR_BYTES];

// tunWrite(fd, buf, offset, length, vnet?) -> bytes written, or -errno (EAGAIN when the TUN queue
// is full, EIO when the interface is down). Never throws for OS errors. vnet: the TUN was opened
// with offload, so the packet goes behind a zero virtio_net_hdr (the count excludes it).
static napi_value tun_write(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWrite";
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, fn, "expected (fd, buf, offset, length, vnet?)");
  int32_t fd;
  uint8_t *data;
  size_t len;
  if (!get_i32(env, argv[0], fn, "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!get_slice(env, argv + 1, fn, &data, &len)) return NULL;
  bool vnet = false;
  if (argc >= 5) {
    napi_valuetype t;
    napi_typeof(env, argv[4], &t);
    if (t == napi_boolean) napi_get_value_bool(env, argv[4], &vnet);
    else if (t != napi_undefined) return throw_type(env, fn, "vnet must be a boolean");
  }
  struct iovec iov[2] = {{(void *)zero_vnet_hdr, VNET_HDR_BYTES}, {data, len}};
  ssize_t k;
  do {
    k = vnet ? writev(fd, iov, 2) : write(fd, data, len);
  } while (k < 0 && errno == EINTR);
  if (k >= VNET_HDR_BYTES && vnet) k -= VNET_HDR_BYTES;
  return make_int(env, k < 0 ? -errno : k);
}

// Packets of a batch as (pointer, length) pairs from slab/offsets/lengths, bounds checked.
static bool get_packet_batch(napi_env env, napi_value *argv, const char *fn, int *count,
                             const uint8_t **pkts, uint32_t *lens) {
  uint8_t *slab;
  size_t slab_len, n_off, n_len;
  int64_t n;
  uint32_t *offsets, *lengths;
  if (!get_bytes(env, argv[0], fn, "slab", &slab, &slab_len)) return false;
  if (!get_int(env, argv[1], fn, "count", 0, OFFLOAD_MAX_BATCH, &n)) return false;
  if (!get_typed(env, argv[2], fn, "offsets", napi_uint32_array, (void **)&offsets, &n_off)) return false;
  if (!get_typed(env, argv[3], fn, "lengths", napi_uint32_array, (void **)&lengths, &n_len)) return false;
  if (n_off < (size_t)n || n_len < (size_t)n) {
    throw_range(env, fn, "offsets and lengths must have count entries");
    return false;
  }
  for (int64_t i = 0; i < n; i++) {
    if (lengths[i] == 0 || lengths[i] > OFFLOAD_MAX_PACKET_BYTES || offsets[i] > slab_len ||
        lengths[i] > slab_len - offsets[i]) {
      throw_range(env, fn, "a packet (offsets[i], lengths[i]) is empty, too big or outside the slab");
      return false;
    }
    pkts[i] = slab + offsets[i];
    lens[i] = lengths[i];
  }
  *count = (int)n;
  return true;
}

// One unit of a coalesce plan as an iovec vector (see offload.h); returns the vector's length.
static int unit_iov(const offload_plan_write_t *plan, const offload_unit_t *u, const uint8_t *const *pkts,
                    const uint32_t *lens, struct iovec *iov) {
  if (u->count == 1) {
    iov[0] = (struct iovec){(void *)zero_vnet_hdr, VNET_HDR_BYTES};
    iov[1] = (struct iovec){(void *)pkts[u->first], lens[u->first]};
    return 2;
  }
  int k = 0;
  iov[k++] = (struct iovec){(void *)u->head, VNET_HDR_BYTES + (size_t)u->hdr_len};
  for (uint16_t i = u->first; i != UINT16_MAX; i = plan->next[i]) {
    iov[k++] = (struct iovec){(void *)(pkts[i] + u->hdr_len), lens[i] - u->hdr_len};
  }
  return k;
}

// The write plan and the packet vectors are big (units carry their rewritten headers): one per
// thread (each Node worker is a thread with its own env), not one per call on the stack.
static __thread offload_plan_write_t write_plan;
static __thread const uint8_t *batch_pkts[OFFLOAD_MAX_BATCH];
static __thread uint32_t batch_lens[OFFLOAD_MAX_BATCH];

// tunWriteBatch(fd, slab, count, offsets, lengths, result: Int32Array(3)) -> packets written.
// For a TUN opened with offload: packet i is slab[offsets[i], +lengths[i]); in-order TCP segments
// of one flow are written as one super-segment (offload.h), the rest one by one behind a zero
// vnet header. result: [super-segments written, packets inside them, errno of the last refused
// write or 0].
// Never throws for OS errors: refused packets are count - return value.
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatch";
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, fn, "expected (fd, slab, count, offsets, lengths, result)");
  int32_t fd;
  if (!get_i32(env, argv[0], fn, "fd", 0, INT32_MAX, &fd)) return NULL;
  const uint8_t **pkts = batch_pkts;
  uint32_t *lens = batch_lens;
  int n;
  if (!get_packet_batch(env, argv + 1, fn, &n, pkts, lens)) return NULL;
  int32_t *result;
  size_t result_len;
  napi_typedarray_type rt;
  if (napi_get_typedarray_info(env, argv[5], &rt, &result_len, (void **)&result, NULL, NULL) != napi_ok ||
      rt != napi_int32_array || result_len < 3) {
    return throw_type(env, fn, "result must be an Int32Array of 3");
  }
  int units = offload_coalesce(pkts, lens, n, &write_plan);
  int written = 0, super_segments = 0, joined = 0, last_err = 0;
  struct iovec iov[2 + OFFLOAD_MAX_UNIT_PACKETS];
  for (int u = 0; u < units; u++) {
    const offload_unit_t *unit = &write_plan.units[u];
    int k = unit_iov(&write_plan, unit, pkts, lens, iov);
    ssize_t w;
    do {
      w = writev(fd, iov, k);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      last_err = errno;
      continue;
    }
    written += unit->count;
    if (unit->count > 1) {
      super_segments++;
      joined += unit->count;
    }
  }
  result[0] = super_segments;
  result[1] = joined;
  result[2] = last_err;
  return make_int(env, written);
}

// tunQueueOfForTest(packet: Uint8Array, queues: number) -> the queue tun-queues.c's rule picks (the
// steering program's reference), for tests without a TUN.
static napi_value tun_queue_of_for_test(napi_env env, napi_callback_info info) {
  static const char *fn = "tunQueueOfForTest";
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, fn, "expected (packet, queues)");
  uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[0], fn, "packet", &data, &len)) return NULL;
  int64_t queues;
  if (!get_int(env, argv[1], fn, "queues", 1, TUN_QUEUES_MAX, &queues)) return NULL;
  return make_int(env, tun_queue_of(data, len, (int)queues));
}

// tunCoalesceForTest(slab, count, offsets, lengths) -> Buffer[]: what tunWriteBatch would write,
// one Buffer per write (vnet header included). For tests of the coalescing without a TUN.
static napi_value tun_coalesce_for_test(napi_env env, napi_callback_info info) {
  static const char *fn = "tunCoalesceForTest";
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, fn, "expected (slab, count, offsets, lengths)");
  const uint8_t **pkts = batch_pkts;
  uint32_t *lens = batch_lens;
  int n;
  if (!get_packet_batch(env, argv, fn, &n, pkts, lens)) return NULL;
  int units = offload_coalesce(pkts, lens, n, &write_plan);
  napi_value out;
  NAPI_CALL(env, napi_create_array_with_length(env, (size_t)units, &out));
  struct iovec iov[2 + OFFLOAD_MAX_UNIT_PACKETS];
  for (int u = 0; u < units; u++) {
    int k = unit_iov(&write_plan, &write_plan.units[u], pkts, lens, iov);
    size_t total = 0;
    for (int j = 0; j < k; j++) total += iov[j].iov_len;
    void *data;
    napi_value buf;
    NAPI_CALL(env, napi_create_buffer(env, total, &data, &buf));
    size_t at = 0;
    for (int j = 0; j < k; j++) {
      memcpy((uint8_t *)data + at, iov[j].iov_base, iov[j].iov_len);
      at += iov[j].iov_len;
    }
    NAPI_CALL(env, napi_set_element(env, out, (uint32_t)u, buf));
  }
  return out;
}

// tunSplitForTest(read: Uint8Array) -> Buffer[] | number: what the offload reader makes of one
// TUN read (vnet header + packet): its packets, or the negative OFFLOAD_* reason it is dropped.
static napi_value tun_split_for_test(napi_env env, napi_callback_info info) {
  static const char *fn = "tunSplitForTest";
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t len;
  if (argc < 1 || !get_bytes(env, argv[0], fn, "read", &data, &len)) return argc < 1 ? throw_type(env, fn, "expected (read)") : NULL;
  if (len <= VNET_HDR_BYTES || len > TUN_SCRATCH_BYTES) return make_int(env, OFFLOAD_BAD_PACKET);
  // The reader works on its own copy (the scratch buffer): so does this.
  uint8_t *copy = malloc(len);
  if (!copy) return throw_errno(env, "malloc", fn, ENOMEM);
  memcpy(copy, data, len);
  offload_plan_t plan;
  int rc = offload_plan_read(copy, copy + VNET_HDR_BYTES, len - VNET_HDR_BYTES, &plan);
  if (rc < 0) {
    free(copy);
    return make_int(env, rc);
  }
  napi_value out;
  if (napi_create_array_with_length(env, plan.segments, &out) != napi_ok) {
    free(copy);
    return NULL;
  }
  for (uint32_t i = 0; i < plan.segments; i++) {
    void *seg;
    napi_value buf;
    size_t seg_len = plan.len;
    if (plan.gso) {
      size_t rest = plan.len - plan.hdr_len - (size_t)i * plan.gso_size;
      seg_len = plan.hdr_len + (rest < plan.gso_size ? rest : plan.gso_size);
    }
    if (napi_create_buffer(env, seg_len, &seg, &buf) != napi_ok) break;
    if (plan.gso) offload_segment(copy + VNET_HDR_BYTES, &plan, i, seg);
    else memcpy(seg, copy + VNET_HDR_BYTES, plan.len);
    napi_set_element(env, out, i, buf);
  }
  free(copy);
  return out;
}

// readerOffloadStats(handle) -> { vnet, gro, superSegments, segments, droppedHeader, droppedPacket,
// droppedUnsupported }: what a TUN reader's offload (vnet) or a UDP reader's GRO did: super-segments
// (GRO trains) and the packets (datagrams) they held; all 0 without either.
static napi_value reader_offload_stats(napi_env env, napi_callback_info info) {
  reader_t *r = get_reader(env, info, "readerOffloadStats");
  if (!r) return NULL;
  napi_value out, v;
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_get_boolean(env, r->vnet, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "vnet", v));
  NAPI_CALL(env, napi_get_boolean(env, r->gro != NULL, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "gro", v));
  const struct { const char *name; double value; } fields[] = {
      {"superSegments", r->super_segments}, {"segments", r->segments}, {"droppedHeader", r->dropped_header},
      {"droppedPacket", r->dropped_packet}, {"droppedUnsupported", r->dropped_unsupported}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    NAPI_CALL(env, napi_create_double(env, fields[i].value, &v));
    NAPI_CALL(env, napi_set_named_property(env, out, fields[i].name, v));
  }
  return out;
}

// IP_TOS as ancillary data: per-packet DSCP with no setsockopt syscall and no per-fd state,
// so flows of different classes can share one socket. Accepted by Linux UDP sendmsg since 4.x.
typedef union {
  struct cmsghdr align;
  uint8_t buf[CMSG_SPACE(sizeof(int))];
} tos_cmsg_t;

// IPv6 destinations take the traffic class (IPV6_TCLASS) instead; IPv4 ones, v4-mapped or not,
// the IP_TOS byte (the kernel sends a v4-mapped destination through its IPv4 path).
static bool dest_is_ipv6(const sockaddr_any_t *to) {
  return to->sa.sa_family == AF_INET6 && !is_v4_mapped(to->in6.sin6_addr.s6_addr);
}

static void fill_tos_cmsg(struct msghdr *h, tos_cmsg_t *c, int tos, bool ipv6) {
  memset(c, 0, sizeof *c);
  h->msg_control = c->buf;
  h->msg_controllen = sizeof c->buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(h);
  cm->cmsg_level = ipv6 ? IPPROTO_IPV6 : IPPROTO_IP;
  cm->cmsg_type = ipv6 ? IPV6_TCLASS : IP_TOS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &tos, sizeof tos);
}

// udpSend(fd, buf, offset, length, address: uint32|string|Uint8Array(16), port, tos)
//   -> bytes or -errno. A uint32 or dotted string is an IPv4 destination (AF_INET socket);
// IPv6 text or 16 bytes an IPv6 one (AF_INET6 socket; IPv4 peers of a dual-stack socket as
// v4-mapped bytes). tos < 0 sends with the socket's default TOS (plain sendto).
static napi_value udp_send(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSend";
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return throw_type(env, fn, "expected (fd, buf, offset, length, address, port, tos)");
  int32_t fd, port, tos;
  uint8_t *data;
  size_t len;
  sockaddr_any_t to;
  socklen_t to_len;
  if (!get_i32(env, argv[0], fn, "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!get_slice(env, argv + 1, fn, &data, &len)) return NULL;
  if (!get_dest(env, argv[4], fn, &to, &to_len)) return NULL;
  if (!get_i32(env, argv[5], fn, "port", 1, 65535, &port)) return NULL;
  if (!get_i32(env, argv[6], fn, "tos", -1, 255, &tos)) return NULL;
  if (to.sa.sa_family == AF_INET6) to.in6.sin6_port = htons((uint16_t)port);
  else to.in4.sin_port = htons((uint16_t)port);

  ssize_t k;
  if (tos < 0) {
    do {
      k = sendto(fd, data, len, 0, &to.sa, to_len);
    } while (k < 0 && errno == EINTR);
  } else {
    struct iovec iov = {.iov_base = data, .iov_len = len};
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_name = &to;
    h.msg_namelen = to_len;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    tos_cmsg_t c;
    fill_tos_cmsg(&h, &c, tos, dest_is_ipv6(&to));
    do {
      k = sendmsg(fd, &h, 0);
    } while (k < 0 && errno == EINTR);
  }
  return make_int(env, k < 0 ? -errno : k);
}

// UDP generic segmentation offload (Linux 4.18+): one sendmsg carrying several equal-sized
// datagrams and a UDP_SEGMENT cmsg naming their size goes down the stack as ONE packet (one
// route lookup, one pass through netfilter, qdisc and a veth pair) and is cut into datagrams
// as late as possible (by the NIC, or in software just before the device or the receiving
// socket). Measured on loopback here: ~1.5 us of CPU per 1416-byte datagram against ~7 us with
// sendmmsg and ~8.4 us with one sendmsg each (sender and receiver threads together). Each
// datagram still arrives on its own: receivers need no change.
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
// The largest UDP payload in one IPv4 packet (65535 - 20 - 8).
#define UDP_MAX_PAYLOAD 65507
// Segments per GSO send: the kernel's UDP_MAX_SEGMENTS was 64 before Linux 6.2 (128 since).
#define GSO_MAX_SEGMENTS 64

typedef union {
  struct cmsghdr align;
  uint8_t buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t))];
} send_cmsg_t;

// Fills the message's control data: IP_TOS (IPV6_TCLASS for an IPv6 destination) when
// tos >= 0, UDP_SEGMENT when gso_size > 0.
static void fill_send_cmsgs(struct msghdr *h, send_cmsg_t *c, int tos, bool ipv6, uint16_t gso_size) {
  if (tos < 0 && gso_size == 0) return;
  memset(c, 0, sizeof *c);
  h->msg_control = c->buf;
  h->msg_controllen = (tos >= 0 ? CMSG_SPACE(sizeof(int)) : 0) +
                      (gso_size > 0 ? CMSG_SPACE(sizeof(uint16_t)) : 0);
  struct cmsghdr *cm = CMSG_FIRSTHDR(h);
  if (tos >= 0) {
    cm->cmsg_level = ipv6 ? IPPROTO_IPV6 : IPPROTO_IP;
    cm->cmsg_type = ipv6 ? IPV6_TCLASS : IP_TOS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &tos, sizeof tos);
    cm = CMSG_NXTHDR(h, cm);
  }
  if (gso_size > 0) {
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(cm), &gso_size, sizeof gso_size);
  }
}

// udpSendBatch(fd, slab, count, offsets: Uint32Array, lengths: Uint32Array,
//              addrs: Uint32Array, ports: Uint16Array, tos: Uint8Array | null, first = 0,
//              gso = false, addrs6: Uint8Array | null = null) -> datagrams sent, or -errno
// With addrs6 (16 bytes per datagram: an AF_INET6 socket's destinations, IPv4 peers as
// v4-mapped addresses), destinations come from it and addrs is not read.
// Datagram i is slab[offsets[i], offsets[i] + lengths[i]) to addrs[i]:ports[i] (host-order
// IPv4) with TOS tos[i] (or the socket default when tos is null). Sends datagrams
// [first, count) (count at most BATCH_MAX) in one sendmmsg. Returns how many datagrams were
// sent, counting from `first` (the rest were not: the caller retries from first + sent, or
// counts them as dropped), or -errno if the one at `first` could not be.
// gso: consecutive datagrams to the same address, port and TOS, all of one size (the last may
// be shorter), go as one UDP_SEGMENT message (at most GSO_MAX_SEGMENTS and UDP_MAX_PAYLOAD
// bytes each). A failure then covers the whole run: the caller may retry without gso (EIO is
// what a device without checksum offload, which GSO needs, answers).
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendBatch";
  size_t argc = 11;
  napi_value argv[11];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8)
    return throw_type(env, fn,
                      "expected (fd, slab, count, offsets, lengths, addrs, ports, tos|null, first?, gso?, addrs6?)");
  int32_t fd, count, first = 0;
  bool gso = false;
  uint8_t *slab;
  size_t slab_len, n_off, n_len, n_addr, n_port, n_tos = 0;
  uint32_t *offsets, *lengths, *addrs;
  uint16_t *ports;
  uint8_t *toss = NULL;
  void *p;
  if (!get_i32(env, argv[0], fn, "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!get_bytes(env, argv[1], fn, "slab", &slab, &slab_len)) return NULL;
  if (!get_i32(env, argv[2], fn, "count", 0, BATCH_MAX, &count)) return NULL;
  if (!get_typed(env, argv[3], fn, "offsets", napi_uint32_array, &p, &n_off)) return NULL;
  offsets = p;
  if (!get_typed(env, argv[4], fn, "lengths", napi_uint32_array, &p, &n_len)) return NULL;
  lengths = p;
  if (!get_typed(env, argv[5], fn, "addrs", napi_uint32_array, &p, &n_addr)) return NULL;
  addrs = p;
  if (!get_typed(env, argv[6], fn, "ports", napi_uint16_array, &p, &n_port)) return NULL;
  ports = p;
  napi_valuetype t;
  napi_typeof(env, argv[7], &t);
  if (t != napi_null && t != napi_undefined) {
    if (!get_typed(env, argv[7], fn, "tos", napi_uint8_array, &p, &n_tos)) return NULL;
    toss = p;
  }
  if (argc >= 9) {
    napi_typeof(env, argv[8], &t);
    if (t != napi_undefined && !get_i32(env, argv[8], fn, "first", 0, count, &first)) return NULL;
  }
  if (argc >= 10) {
    napi_typeof(env, argv[9], &t);
    if (t == napi_boolean) napi_get_value_bool(env, argv[9], &gso);
    else if (t != napi_undefined) return throw_type(env, fn, "gso must be a boolean");
  }
  uint8_t *addrs6 = NULL;
  size_t n_addr6 = 0;
  if (argc >= 11) {
    napi_typeof(env, argv[10], &t);
    if (t != napi_null && t != napi_undefined) {
      if (!get_typed(env, argv[10], fn, "addrs6", napi_uint8_array, &p, &n_addr6)) return NULL;
      addrs6 = p;
    }
  }
  size_t c = (size_t)count;
  if (n_off < c || n_len < c || n_addr < c || n_port < c || (toss && n_tos < c) ||
      (addrs6 && n_addr6 < c * 16))
    return throw_range(env, fn, "offsets/lengths/addrs/ports/tos/addrs6 are shorter than count");
  if (count == first) return make_int(env, 0);
  for (size_t i = (size_t)first; i < c; i++) {
    if ((uint64_t)offsets[i] + lengths[i] > slab_len)
      return throw_range(env, fn, "offsets[i] + lengths[i] is past the end of slab");
  }

  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iov[BATCH_MAX];
  sockaddr_any_t to[BATCH_MAX];
  send_cmsg_t ctrl[BATCH_MAX];
  uint8_t run_length[BATCH_MAX];  // datagrams carried by message m
  size_t n_msgs = 0;
  for (size_t i = (size_t)first; i < c;) {
    // The run starting at i: same destination and TOS, every datagram but the last exactly as
    // long as the first, the last no longer.
    size_t size = lengths[i], j = i + 1, bytes = size;
    if (gso && size > 0) {
      while (j < c && j - i < GSO_MAX_SEGMENTS && ports[j] == ports[i] &&
             (addrs6 ? memcmp(addrs6 + j * 16, addrs6 + i * 16, 16) == 0 : addrs[j] == addrs[i]) &&
             (!toss || toss[j] == toss[i]) && lengths[j] > 0 && lengths[j] <= size &&
             lengths[j - 1] == size && bytes + lengths[j] <= UDP_MAX_PAYLOAD) {
        bytes += lengths[j];
        j++;
      }
    }
    size_t m = n_msgs++;
    memset(&msgs[m], 0, sizeof msgs[m]);
    for (size_t k = i; k < j; k++) {
      iov[k - (size_t)first].iov_base = slab + offsets[k];
      iov[k - (size_t)first].iov_len = lengths[k];
    }
    memset(&to[m], 0, sizeof to[m]);
    socklen_t to_len;
    if (addrs6) {
      to[m].in6.sin6_family = AF_INET6;
      memcpy(&to[m].in6.sin6_addr, addrs6 + i * 16, 16);
      to[m].in6.sin6_port = htons(ports[i]);
      to_len = sizeof to[m].in6;
    } else {
      to[m].in4.sin_family = AF_INET;
      to[m].in4.sin_addr.s_addr = htonl(addrs[i]);
      to[m].in4.sin_port = htons(ports[i]);
      to_len = sizeof to[m].in4;
    }
    struct msghdr *h = &msgs[m].msg_hdr;
    h->msg_name = &to[m];
    h->msg_namelen = to_len;
    h->msg_iov = &iov[i - (size_t)first];
    h->msg_iovlen = j - i;
    fill_send_cmsgs(h, &ctrl[m], toss ? toss[i] : -1, dest_is_ipv6(&to[m]), j - i > 1 ? (uint16_t)size : 0);
    run_length[m] = (uint8_t)(j - i);
    i = j;
  }
  int k;
  do {
    k = sendmmsg(fd, msgs, (unsigned)n_msgs, 0);
  } while (k < 0 && errno == EINTR);
  if (k < 0) return make_int(env, -errno);
  int64_t sent = 0;
  for (int m = 0; m < k; m++) sent += run_length[m];
  return make_int(env, sent);
}

// ---------------------------------------------------------------------------------------
// 4. Teardown

// closeFd(fd). Stops any reader still polling the fd first: libuv must not keep a watcher on
// a closed fd number, which the next open() may reuse.
static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "closeFd", "expected (fd)");
  int32_t fd;
  if (!get_i32(env, argv[0], "closeFd", "fd", 0, INT32_MAX, &fd)) return NULL;
  instance_t *inst = instance_of(env);
  for (reader_t *r = inst ? inst->readers : NULL; r; r = r->next) {
    if (r->fd == fd && !r->stopped) reader_stop(r);
  }
  // close() must not be retried on EINTR on Linux: the fd is already gone.
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", NULL, errno);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------
// 5. AEAD: per-key OpenSSL contexts
//
// node:crypto cannot re-nonce a cipher object, so sealing there costs a new object per packet
// (~4 us of the ~6 us a 1400-byte ChaCha20-Poly1305 seal takes on a 2-core EPYC VM). Here each
// key gets one EVP_CIPHER_CTX per direction, keyed once; a packet only sets its nonce
// (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce)), runs AAD and body, and takes or checks
// the 16-byte tag. Output is byte-identical to node:crypto's (same OpenSSL, same construction:
// ciphertext || tag, nonce = 4 zero bytes || 64-bit little-endian counter).
//
// Handle lifetime: aeadCreate returns an external; its finalizer frees both contexts
// (EVP_CIPHER_CTX_free cleanses the key schedule). aeadDestroy frees them earlier.
// Error policy: wrong arguments throw (programmer errors); a failed tag is a return value.

#define AEAD_KEY_BYTES 32
#define AEAD_TAG_BYTES 16
#define AEAD_NONCE_BYTES 12
// EVP_*Update take int lengths; datagrams are far below this.
#define AEAD_MAX_BYTES (1 << 30)

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
} aead_t;

// Set once at module init (aead_symbols_present); the same for every env in the process.
static bool aead_ok = false;

// Whether the process exports the EVP symbols we call (Node's own OpenSSL). Checked once at
// init with dlsym, so a Node built without them gets aeadAvailable = false instead of a
// "symbol lookup error" abort on first use (process.dlopen binds lazily).
static bool aead_symbols_present(void) {
  static const char *names[] = {"EVP_CIPHER_CTX_new",   "EVP_CIPHER_CTX_free", "EVP_CIPHER_CTX_ctrl",
                                "EVP_EncryptInit_ex",   "EVP_EncryptUpdate",   "EVP_EncryptFinal_ex",
                                "EVP_DecryptInit_ex",   "EVP_DecryptUpdate",   "EVP_DecryptFinal_ex",
                                "EVP_chacha20_poly1305", "EVP_aes_256_gcm",    "OPENSSL_cleanse",
                                "OpenSSL_version"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (dlsym(RTLD_DEFAULT, names[i]) == NULL) return false;
  }
  return true;
}

static void aead_free_contexts(aead_t *a) {
  if (a->enc) EVP_CIPHER_CTX_free(a->enc);
  if (a->dec) EVP_CIPHER_CTX_free(a->dec);
  a->enc = a->dec = NULL;
}

// What two contexts hold outside the JS heap (OpenSSL's context, cipher and key schedule
// structs), told to V8 so the garbage collector weighs a forgotten handle by more than the
// few bytes of its JS object. An estimate: it only steers when GC runs.
#define AEAD_EXTERNAL_BYTES 4096

static void aead_finalize(napi_env env, void *data, void *hint) {
  aead_t *a = data;
  aead_free_contexts(a);
  free(a);
  int64_t ignored;
  napi_adjust_external_memory(env, -AEAD_EXTERNAL_BYTES, &ignored);
}

// One context: cipher and IV length first, then the key (OpenSSL's documented AEAD order).
static EVP_CIPHER_CTX *aead_context(const EVP_CIPHER *cipher, const uint8_t *key, bool encrypt) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return NULL;
  int ok = encrypt ? EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL)
                   : EVP_DecryptInit_ex(ctx, cipher, NULL, NULL, NULL);
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, AEAD_NONCE_BYTES, NULL) == 1;
  ok = ok && (encrypt ? EVP_EncryptInit_ex(ctx, NULL, NULL, key, NULL)
                      : EVP_DecryptInit_ex(ctx, NULL, NULL, key, NULL));
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

// aeadCreate(key: 32 bytes, cipher: 'chacha20-poly1305' | 'aes-256-gcm') -> handle.
// The key bytes are not kept (OpenSSL holds the schedule); the caller wipes its copy.
static napi_value aead_create(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadCreate";
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!aead_ok) {
    napi_throw_error(env, "ERR_BRAID_AEAD_UNAVAILABLE",
                     "aeadCreate: this Node does not export OpenSSL's EVP functions to addons");
    return NULL;
  }
  if (argc < 2) return throw_type(env, fn, "expected (key, cipher)");
  uint8_t *key;
  size_t key_len;
  if (!get_bytes(env, argv[0], fn, "key", &key, &key_len)) return NULL;
  if (key_len != AEAD_KEY_BYTES) return throw_range(env, fn, "key must be 32 bytes");
  char name[24];
  if (!get_string(env, argv[1], fn, "cipher", name, sizeof name)) return NULL;
  const EVP_CIPHER *cipher = strcmp(name, "chacha20-poly1305") == 0 ? EVP_chacha20_poly1305()
                             : strcmp(name, "aes-256-gcm") == 0     ? EVP_aes_256_gcm()
                                                                    : NULL;
  if (!cipher) return throw_range(env, fn, "cipher must be 'chacha20-poly1305' or 'aes-256-gcm'");
  aead_t *a = calloc(1, sizeof *a);
  if (!a) return throw_errno(env, "calloc", "aead", ENOMEM);
  a->enc = aead_context(cipher, key, true);
  a->dec = a->enc ? aead_context(cipher, key, false) : NULL;
  if (!a->enc || !a->dec) {
    aead_free_contexts(a);
    free(a);
    napi_throw_error(env, "ERR_BRAID_AEAD", "aeadCreate: OpenSSL could not set up the cipher context");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, a, aead_finalize, NULL, &handle) != napi_ok) {
    aead_free_contexts(a);
    free(a);
    throw_napi_failure(env, "napi_create_external", napi_generic_failure);
    return NULL;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, AEAD_EXTERNAL_BYTES, &ignored);
  return handle;
}

static aead_t *get_aead(napi_env env, napi_value v, const char *fn) {
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    throw_type(env, fn, "handle must be an aeadCreate handle");
    return NULL;
  }
  aead_t *a = data;
  if (!a->enc) {
    napi_throw_error(env, "ERR_BRAID_AEAD_DESTROYED", "aead handle used after aeadDestroy");
    return NULL;
  }
  return a;
}

// The Noise / WireGuard nonce: 4 zero bytes, then the counter as 64-bit little-endian. The
// counter is a number (any integer in [0, 2^64) that a double holds exactly; the JS side is
// stricter for sending, see isValidSendCounter in src/core/crypto/transport.ts) or a bigint
// (every counter, e.g. the RFC 8439 A.5 vector's 0x0807060504030201).
static bool get_nonce(napi_env env, napi_value v, const char *fn, uint8_t nonce[AEAD_NONCE_BYTES]) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  uint64_t c;
  if (t == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, v, &c, &lossless) != napi_ok || !lossless) {
      throw_range(env, fn, "counter must be an integer in [0, 2^64)");
      return false;
    }
  } else {
    double d;
    if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) {
      throw_type(env, fn, "counter must be a number or a bigint");
      return false;
    }
    if (!(d >= 0 && d < 18446744073709551616.0) || d != (double)(uint64_t)d) {
      throw_range(env, fn, "counter must be an integer in [0, 2^64)");
      return false;
    }
    c = (uint64_t)d;
  }
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(c >> (8 * i));
  return true;
}

// In-place is fine for OpenSSL (out == in); any other overlap is not.
static bool overlaps_badly(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  if (a == b || a_len == 0 || b_len == 0) return false;
  return a < b + b_len && b < a + a_len;
}

// The EVP steps of one seal: nonce, AAD, body, tag. out may be pt (in place).
static bool aead_seal_raw(aead_t *a, const uint8_t nonce[AEAD_NONCE_BYTES], const uint8_t *pt, size_t pt_len,
                          const uint8_t *aad, size_t aad_len, uint8_t *out) {
  EVP_CIPHER_CTX *ctx = a->enc;
  int n = 0, m = 0;
  int ok = EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce);
  if (ok && aad_len > 0) ok = EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len);
  n = 0;
  if (ok && pt_len > 0) ok = EVP_EncryptUpdate(ctx, out, &n, pt, (int)pt_len);
  ok = ok && EVP_EncryptFinal_ex(ctx, out + n, &m);
  ok = ok && (size_t)(n + m) == pt_len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_BYTES, out + pt_len) == 1;
  return ok;
}

// aeadSeal(handle, counter, plaintext, aad, out) -> plaintext.length + 16.
// Writes ciphertext || tag into out[0, plaintext.length + 16); out may be plaintext itself
// (in place) if it has room for the tag. Throws on bad arguments; -1 if OpenSSL fails.
static napi_value aead_seal(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadSeal";
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, fn, "expected (handle, counter, plaintext, aad, out)");
  aead_t *a = get_aead(env, argv[0], fn);
  if (!a) return NULL;
  uint8_t nonce[AEAD_NONCE_BYTES];
  uint8_t *pt, *aad, *out;
  size_t pt_len, aad_len, out_len;
  if (!get_nonce(env, argv[1], fn, nonce)) return NULL;
  if (!get_bytes(env, argv[2], fn, "plaintext", &pt, &pt_len)) return NULL;
  if (!get_bytes(env, argv[3], fn, "aad", &aad, &aad_len)) return NULL;
  if (!get_bytes(env, argv[4], fn, "out", &out, &out_len)) return NULL;
  if (pt_len > AEAD_MAX_BYTES || aad_len > AEAD_MAX_BYTES)
    return throw_range(env, fn, "plaintext and aad must be at most 2^30 bytes");
  if (out_len < pt_len + AEAD_TAG_BYTES)
    return throw_range(env, fn, "out must hold plaintext.length + 16 bytes");
  if (overlaps_badly(pt, pt_len, out, pt_len + AEAD_TAG_BYTES))
    return throw_range(env, fn, "out overlaps plaintext without being the same memory");
  return make_int(env, aead_seal_raw(a, nonce, pt, pt_len, aad, aad_len, out) ? (int64_t)(pt_len + AEAD_TAG_BYTES) : -1);
}

// aeadSealAt(handle, counter, buf, offset, length, aad) -> length + 16.
// Seals buf[offset, offset + length) in place and writes the tag after it: the data path's
// datagram buffer is passed whole with two integers, not as two subarray views (each view and
// each napi_get_typedarray_info was ~1% of the sending edge under one TCP stream: perf, session
// 10). Throws on bad arguments; -1 if OpenSSL fails.
static napi_value aead_seal_at(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadSealAt";
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, fn, "expected (handle, counter, buf, offset, length, aad)");
  aead_t *a = get_aead(env, argv[0], fn);
  if (!a) return NULL;
  uint8_t nonce[AEAD_NONCE_BYTES];
  uint8_t *buf, *aad;
  size_t buf_len, aad_len;
  int32_t offset, length;
  if (!get_nonce(env, argv[1], fn, nonce)) return NULL;
  if (!get_bytes(env, argv[2], fn, "buf", &buf, &buf_len)) return NULL;
  if (!get_i32(env, argv[3], fn, "offset", 0, INT32_MAX, &offset)) return NULL;
  if (!get_i32(env, argv[4], fn, "length", 0, AEAD_MAX_BYTES, &length)) return NULL;
  if (!get_bytes(env, argv[5], fn, "aad", &aad, &aad_len)) return NULL;
  if (aad_len > AEAD_MAX_BYTES) return throw_range(env, fn, "aad must be at most 2^30 bytes");
  if ((size_t)offset + (size_t)length + AEAD_TAG_BYTES > buf_len)
    return throw_range(env, fn, "buf must hold offset + length + 16 bytes");
  uint8_t *pt = buf + offset;
  return make_int(env, aead_seal_raw(a, nonce, pt, (size_t)length, aad, aad_len, pt) ? (int64_t)length + AEAD_TAG_BYTES : -1);
}

// aeadOpen(handle, counter, ciphertext, aad, out) -> plaintext length, or -1 when the tag does
// not verify (or ciphertext is shorter than the tag). Writes the plaintext into
// out[0, ciphertext.length - 16); out may be ciphertext itself (in place). On failure the
// bytes written to out are zeroed: nothing unauthenticated is left behind.
static napi_value aead_open(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadOpen";
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, fn, "expected (handle, counter, ciphertext, aad, out)");
  aead_t *a = get_aead(env, argv[0], fn);
  if (!a) return NULL;
  uint8_t nonce[AEAD_NONCE_BYTES];
  uint8_t *ct, *aad, *out;
  size_t ct_len, aad_len, out_len;
  if (!get_nonce(env, argv[1], fn, nonce)) return NULL;
  if (!get_bytes(env, argv[2], fn, "ciphertext", &ct, &ct_len)) return NULL;
  if (!get_bytes(env, argv[3], fn, "aad", &aad, &aad_len)) return NULL;
  if (!get_bytes(env, argv[4], fn, "out", &out, &out_len)) return NULL;
  if (ct_len > AEAD_MAX_BYTES || aad_len > AEAD_MAX_BYTES)
    return throw_range(env, fn, "ciphertext and aad must be at most 2^30 bytes");
  if (ct_len < AEAD_TAG_BYTES) return make_int(env, -1);
  size_t body_len = ct_len - AEAD_TAG_BYTES;
  if (out_len < body_len) return throw_range(env, fn, "out must hold ciphertext.length - 16 bytes");
  if (overlaps_badly(ct, ct_len, out, body_len))
    return throw_range(env, fn, "out overlaps ciphertext without being the same memory");
  // The tag is copied first: an in-place open overwrites only the body, but keep it simple.
  uint8_t tag[AEAD_TAG_BYTES];
  memcpy(tag, ct + body_len, AEAD_TAG_BYTES);
  EVP_CIPHER_CTX *ctx = a->dec;
  int n = 0, m = 0;
  int ok = EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce);
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_BYTES, tag) == 1;
  if (ok && aad_len > 0) ok = EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len);
  n = 0;
  if (ok && body_len > 0) ok = EVP_DecryptUpdate(ctx, out, &n, ct, (int)body_len);
  // DecryptFinal is where the tag is checked: > 0 only when it verified.
  ok = ok && EVP_DecryptFinal_ex(ctx, out + n, &m) > 0;
  ok = ok && (size_t)(n + m) == body_len;
  if (!ok) {
    if (body_len > 0) OPENSSL_cleanse(out, body_len);
    return make_int(env, -1);
  }
  return make_int(env, (int64_t)body_len);
}

// aeadDestroy(handle): frees the contexts now rather than at garbage collection. Idempotent;
// the handle throws on any later use.
static napi_value aead_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_external) return throw_type(env, "aeadDestroy", "handle must be an aeadCreate handle");
  void *data = NULL;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], &data));
  if (data) aead_free_contexts((aead_t *)data);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------

static void instance_finalize(napi_env env, void *data, void *hint) {
  // Readers are closed by their async cleanup hooks; only the list head is ours to free.
  free(data);
}

static napi_value init(napi_env env, napi_value exports) {
  instance_t *inst = calloc(1, sizeof *inst);
  if (!inst || napi_set_instance_data(env, inst, instance_finalize, NULL) != napi_ok) {
    free(inst);
    napi_throw_error(env, "ERR_BRAID_NATIVE", "braid_native: cannot allocate instance data");
    return NULL;
  }
  bool aead = aead_ok = aead_symbols_present();
  napi_value openssl_version = NULL;
  if (aead) napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &openssl_version);
  else napi_get_undefined(env, &openssl_version);
  napi_value aead_available;
  napi_get_boolean(env, aead, &aead_available);
  napi_property_descriptor props[] = {
      {"tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunQueueOfForTest", NULL, tun_queue_of_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startReader", NULL, start_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopReader", NULL, stop_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunWrite", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunWriteBatch", NULL, tun_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunCoalesceForTest", NULL, tun_coalesce_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunSplitForTest", NULL, tun_split_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readerOffloadStats", NULL, reader_offload_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSend", NULL, udp_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSendBatch", NULL, udp_send_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadCreate", NULL, aead_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSeal", NULL, aead_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSealAt", NULL, aead_seal_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadOpen", NULL, aead_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadDestroy", NULL, aead_destroy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadAvailable", NULL, NULL, NULL, NULL, aead_available, napi_enumerable, NULL},
      {"opensslVersion", NULL, NULL, NULL, NULL, openssl_version, napi_enumerable, NULL},
      {"BATCH_MAX", NULL, NULL, NULL, NULL, make_int(env, BATCH_MAX), napi_enumerable, NULL},
      {"SLOT_BYTES", NULL, NULL, NULL, NULL, make_int(env, SLOT_BYTES), napi_enumerable, NULL},
      {"TUN_QUEUES_MAX", NULL, NULL, NULL, NULL, make_int(env, TUN_QUEUES_MAX), napi_enumerable, NULL},
      {"TUN_WRITE_BATCH_MAX", NULL, NULL, NULL, NULL, make_int(env, OFFLOAD_MAX_BATCH), napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
