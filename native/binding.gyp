# Braid's N-API addon: TUN open/read/write, UDP sockets with batching (recvmmsg/sendmmsg),
# socket options. Linux only (TUN, SO_BINDTODEVICE, recvmmsg); plain C against node_api.h.
{
  "targets": [
    {
      "target_name": "braid_native",
      "sources": ["src/braid_native.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"]
    }
  ]
}
