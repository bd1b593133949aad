/**
 * FEC limits and defaults. They live here rather than in core/constants.ts only because this
 * folder was written while constants.ts was being edited elsewhere; move them there when
 * integrating. Protocol constants must match on both edges; implementation constants are local.
 */

// ---- Protocol ----------------------------------------------------------------------------

/** Largest k (data shards per group) a receiver accepts. 32 also lets a group's data fit a uint32 bitmask. */
export const FEC_MAX_K = 32;
/** Largest m (parity shards per group) a receiver accepts. */
export const FEC_MAX_M = 32;
/** Largest shard: an inner packet's length fits 16 bits (MAX_INNER_PACKET_BYTES). */
export const FEC_MAX_SHARD_BYTES = 65535;
/** Group id 0 means "not protected" on the wire (Data.fec_group = 0), so the counter skips it. */
export const FEC_UNPROTECTED_GROUP_ID = 0;
/**
 * The Edge tags group ids with the sender's class: id = class << FEC_GROUP_TAG_SHIFT | counter, so
 * the receiver keeps one decoder (and one set of counters) per class without a wire field.
 */
export const FEC_GROUP_TAG_SHIFT = 28;
/** Largest tag (4 bits). */
export const FEC_MAX_GROUP_TAG = 0xf;
/** Counter part of a tagged group id (28 bits; 0 is skipped so no tagged id is 0). */
export const FEC_GROUP_COUNTER_MASK = 0x0fffffff;

// ---- Implementation ----------------------------------------------------------------------

/** Longest a class may ask a group to wait for k packets before flushing with fewer. */
export const FEC_MAX_FLUSH_MS = 1000;
/**
 * Groups whose parity the encoder holds for pollParity. Past this, the oldest unpolled group's
 * parity is dropped (counted): the shell drains after every input, so 4 is already generous.
 */
export const FEC_PARITY_RING_GROUPS = 4;
/** Default cap on groups the decoder holds shards for; the oldest is evicted past it. */
export const FEC_DEFAULT_MAX_GROUPS = 64;
/** Hard cap on the configurable maxGroups. */
export const FEC_MAX_GROUPS_LIMIT = 4096;
/** Default time a decoder group waits for enough shards before it is given up. */
export const FEC_DEFAULT_EXPIRE_MS = 1000;
/**
 * Default byte budget for the shard copies one decoder holds (live and pooled). 64 groups of 8+2
 * 1400-byte shards need ~1.3 MiB; 8 MiB leaves room for jumbo shards without letting a peer make
 * us hold 64 x 64 x 64 KiB = 256 MiB.
 */
export const FEC_DEFAULT_DECODER_BUDGET_BYTES = 8 * 1024 * 1024;
/**
 * Finished groups remembered (id and which data indices were delivered) so a straggler of a
 * recovered packet is recognised as a duplicate and late parity cannot resurrect the group.
 */
export const FEC_DEFAULT_TOMBSTONES = 1024;
/** Hard cap on the configurable tombstone count. */
export const FEC_MAX_TOMBSTONES_LIMIT = 65536;
/** Smallest pooled shard buffer: one MTU-sized packet plus room, a power of two. */
export const FEC_MIN_BUFFER_BYTES = 2048;
