# Braid's N-API addon: TUN open/read/write, UDP sockets with batching (recvmmsg/sendmmsg),
# socket options, and the data-plane AEAD on per-key OpenSSL contexts. Linux only (TUN,
# SO_BINDTODEVICE, recvmmsg); plain C against node_api.h.
#
# OpenSSL: the AEAD calls the EVP_* functions of the OpenSSL inside Node (the node binary exports
# them to addons) and compiles against the headers Node ships in include/node/openssl, which
# node-gyp already puts on the include path. So there is no -lcrypto and no libssl-dev: a
# separately linked libcrypto would be a second OpenSSL in the process.
{
  "targets": [
    {
      "target_name": "braid_native",
      "sources": ["src/braid_native.c", "src/offload.c", "src/tun-queues.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"]
    }
  ]
}
