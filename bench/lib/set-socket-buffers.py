#!/usr/bin/env python3
"""Raise the UDP socket buffers of a running process (the overlay benchmark's wireguard-go).

wireguard-go before its 2023 releases leaves its sockets at net.core.rmem_default (208 KiB), which
is global, not per network namespace. Rather than change a machine-wide sysctl, this takes a copy
of each of the process's UDP sockets with pidfd_getfd(2) (Linux 5.6+, root) and sets
SO_RCVBUFFORCE / SO_SNDBUFFORCE on it: the same socket, so the process sees the new sizes.

usage: set-socket-buffers.py PID BYTES   prints one line per socket, exits 1 if none was changed
"""
import ctypes
import os
import socket
import sys

SYS_PIDFD_OPEN = 434  # same number on every architecture
SYS_PIDFD_GETFD = 438
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33


def main() -> int:
    pid, size = int(sys.argv[1]), int(sys.argv[2])
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        print(f"pidfd_open({pid}): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    changed = 0
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                print(f"pidfd_getfd({pid}, {name}): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_DGRAM and s.family in (socket.AF_INET, socket.AF_INET6):
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
                    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)
                    rcv = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                    snd = s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                    print(f"fd {name} {s.getsockname()[:2]}: SO_RCVBUF {rcv} SO_SNDBUF {snd}")
                    changed += 1
            finally:
                s.close()  # our copy only
    finally:
        os.close(pidfd)
    return 0 if changed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
