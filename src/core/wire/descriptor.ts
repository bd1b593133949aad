// GENERATED from overlay.proto by `npm run gen:proto`. Do not edit by hand.
export const overlayDescriptor = {
  "nested": {
    "braid": {
      "nested": {
        "v1": {
          "nested": {
            "Envelope": {
              "fields": {
                "version": {
                  "type": "uint32",
                  "id": 1
                },
                "receiver": {
                  "type": "fixed32",
                  "id": 2
                },
                "counter": {
                  "type": "fixed64",
                  "id": 3
                },
                "sealed": {
                  "type": "bytes",
                  "id": 4
                },
                "handshake": {
                  "type": "bytes",
                  "id": 5
                }
              },
              "reserved": [
                [
                  6,
                  6
                ],
                [
                  7,
                  7
                ]
              ]
            },
            "Frame": {
              "oneofs": {
                "body": {
                  "oneof": [
                    "data",
                    "probe",
                    "probeReply",
                    "control",
                    "fecParity"
                  ]
                }
              },
              "fields": {
                "data": {
                  "type": "Data",
                  "id": 1
                },
                "probe": {
                  "type": "Probe",
                  "id": 2
                },
                "probeReply": {
                  "type": "ProbeReply",
                  "id": 3,
                  "protoName": "probe_reply"
                },
                "control": {
                  "type": "Control",
                  "id": 4
                },
                "fecParity": {
                  "type": "FecParity",
                  "id": 5,
                  "protoName": "fec_parity"
                },
                "padding": {
                  "type": "bytes",
                  "id": 15
                }
              }
            },
            "Data": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "pathSeq": {
                  "type": "uint32",
                  "id": 2,
                  "protoName": "path_seq"
                },
                "packet": {
                  "type": "bytes",
                  "id": 3
                },
                "fecGroup": {
                  "type": "uint32",
                  "id": 4,
                  "protoName": "fec_group"
                },
                "fecIndex": {
                  "type": "uint32",
                  "id": 5,
                  "protoName": "fec_index"
                },
                "dupSeq": {
                  "type": "uint32",
                  "id": 6,
                  "protoName": "dup_seq"
                },
                "fecK": {
                  "type": "uint32",
                  "id": 7,
                  "protoName": "fec_k"
                },
                "bondSeq": {
                  "type": "fixed32",
                  "id": 8,
                  "protoName": "bond_seq"
                }
              }
            },
            "Probe": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "seq": {
                  "type": "uint32",
                  "id": 2
                },
                "txUs": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "tx_us"
                },
                "dscp": {
                  "type": "uint32",
                  "id": 4
                },
                "report": {
                  "type": "PathReport",
                  "id": 5
                },
                "epoch": {
                  "type": "uint32",
                  "id": 6
                },
                "echoSeq": {
                  "type": "uint32",
                  "id": 7,
                  "protoName": "echo_seq"
                },
                "echoTxUs": {
                  "type": "uint64",
                  "id": 8,
                  "protoName": "echo_tx_us"
                },
                "echoHoldUs": {
                  "type": "uint32",
                  "id": 9,
                  "protoName": "echo_hold_us"
                },
                "echoOk": {
                  "type": "bool",
                  "id": 10,
                  "protoName": "echo_ok"
                }
              }
            },
            "ProbeReply": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "seq": {
                  "type": "uint32",
                  "id": 2
                },
                "txUs": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "tx_us"
                },
                "holdUs": {
                  "type": "uint32",
                  "id": 4,
                  "protoName": "hold_us"
                },
                "report": {
                  "type": "PathReport",
                  "id": 5
                }
              }
            },
            "PathReport": {
              "fields": {
                "received": {
                  "type": "uint32",
                  "id": 1
                },
                "highestSeq": {
                  "type": "uint32",
                  "id": 2,
                  "protoName": "highest_seq"
                },
                "jitterUs": {
                  "type": "uint32",
                  "id": 3,
                  "protoName": "jitter_us"
                }
              }
            },
            "Control": {
              "oneofs": {
                "body": {
                  "oneof": [
                    "drain",
                    "hello"
                  ]
                }
              },
              "fields": {
                "drain": {
                  "type": "Drain",
                  "id": 1
                },
                "hello": {
                  "type": "Hello",
                  "id": 2
                }
              }
            },
            "Drain": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "drained": {
                  "type": "bool",
                  "id": 2
                }
              }
            },
            "Hello": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "linkName": {
                  "type": "string",
                  "id": 2,
                  "protoName": "link_name"
                },
                "site": {
                  "type": "string",
                  "id": 3
                },
                "tier": {
                  "type": "uint32",
                  "id": 4
                }
              }
            },
            "FecParity": {
              "fields": {
                "link": {
                  "type": "uint32",
                  "id": 1
                },
                "pathSeq": {
                  "type": "uint32",
                  "id": 2,
                  "protoName": "path_seq"
                },
                "group": {
                  "type": "uint32",
                  "id": 3
                },
                "index": {
                  "type": "uint32",
                  "id": 4
                },
                "k": {
                  "type": "uint32",
                  "id": 5
                },
                "m": {
                  "type": "uint32",
                  "id": 6
                },
                "lengths": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 7,
                  "options": {
                    "packed": true
                  }
                },
                "shard": {
                  "type": "bytes",
                  "id": 8
                },
                "checksum": {
                  "type": "fixed32",
                  "id": 9
                }
              }
            }
          }
        }
      }
    }
  }
} as const;
