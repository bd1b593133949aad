// TUN queues (issue 13, RTT under load): a multi-queue TUN whose queue for each packet the kernel
// picks with a small eBPF program (TUNSETSTEERINGEBPF), so that the site's packets do not all wait
// in one ring behind a bulk flow's 64 KB super-segments.
//
// The rule, by the packet alone (no state, so a flow never changes queue and is never reordered):
// - realtime DSCPs (the classes control, voice, video and signaling: CS6, CS7, EF, VOICE-ADMIT,
//   CS5, AF41-43, CS4, CS3) go to queue 0;
// - every other packet goes to queue 1 + hash % (queues - 1), the hash of its addresses, protocol
//   and ports taken so that both directions of a flow hash alike (xor), like sfq's flow buckets;
//   IPv4 fragments hash without ports, so all of a datagram's fragments share a queue.
// A flow changes queue only if its DSCP changes (then its packets may pass each other once).
// The shell reads every queue, one batch per queue per loop turn, so a sparse flow waits for at most
// one batch of each busy queue instead of a whole ring.
//
// tun_queue_of is the rule in C: the reference the tests hold the eBPF program to.
#ifndef BRAID_TUN_QUEUES_H
#define BRAID_TUN_QUEUES_H

#include <stddef.h>
#include <stdint.h>

// Most queues a Braid TUN opens (the kernel allows 256; each queue is an fd and a reader).
#define TUN_QUEUES_MAX 16

// The queue (0..queues-1) the steering program picks for this IP packet (bare, no vnet header).
int tun_queue_of(const uint8_t *pkt, size_t len, int queues);

// Loads the steering program for `queues` and attaches it to the TUN behind `fd` (any of its
// queues' fds: the program is the device's). Returns 0, or -errno with *failed naming the call
// ("bpf(BPF_PROG_LOAD)" or "ioctl(TUNSETSTEERINGEBPF)").
int tun_steering_attach(int fd, int queues, const char **failed);

#endif
