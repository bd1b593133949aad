/**
 * Crypto constants. "Protocol" values must match on both ends or change behaviour visible on the wire;
 * "implementation" values are local limits we may tune. Timer values are WireGuard's (whitepaper
 * section 6.1 and wireguard-go device/constants.go) because its rekey schedule is well studied and
 * operators know it.
 */

// ---- protocol ----

/** The initiator of a session starts a new handshake once the session is this old. */
export const REKEY_AFTER_TIME_MS = 120_000;
/** No packet is sent or accepted on a session older than this. */
export const REJECT_AFTER_TIME_MS = 180_000;
/** How long to keep retrying a handshake before giving up and dropping what was waiting. */
export const REKEY_ATTEMPT_TIME_MS = 90_000;
/** Wait for a handshake response this long before sending a fresh initiation. */
export const REKEY_TIMEOUT_MS = 5_000;
/** Random extra delay on every retransmit so two peers that lost the same packet do not retry in lockstep. */
export const REKEY_TIMEOUT_JITTER_MAX_MS = 333;
/** Send an empty authenticated packet when we received data but sent nothing for this long. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** Responder cookie secrets rotate, and initiators forget cookies, after this long. */
export const COOKIE_REFRESH_TIME_MS = 120_000;
/**
 * Implementation choice, not WireGuard's: the retry spacing while no session can carry traffic
 * (never made, expired, or a restarted edge). At REKEY_TIMEOUT a site whose two initiations fell
 * into an outage waited up to 5.3 s past the heal for the next (VOPR seeds 96000889, 97000092);
 * at 2 s it waits at most 2.33 s. A rekey while the current session still works keeps
 * REKEY_TIMEOUT: nothing waits on it. The cost is one ~148-byte initiation per link every 2 s
 * instead of every 5 s towards a peer that is down.
 */
export const NO_SESSION_RETRY_MS = 2_000;
/**
 * A responder with data and no session of its own waits this long for the initiator to confirm the
 * session it answered (a round trip) before starting its own handshake (its response may be lost).
 */
export const AWAIT_CONFIRMATION_MS = 1_000;
/** Times a responder resends its response while the session waits for confirmation (peer-session.ts). */
export const MAX_RESPONSE_RESENDS = 3;
/** A peer may not make us run more than this many handshakes per second (WireGuard's limit). */
export const INITIATIONS_PER_SECOND = 50;
export const MIN_INITIATION_INTERVAL_MS = 1000 / INITIATIONS_PER_SECOND;

/**
 * Receivers reject counters at or above this. Counters are JS numbers, which are exact only up to
 * 2^53, so senders additionally stop at Number.MAX_SAFE_INTEGER; neither is reachable in practice
 * because REJECT_AFTER_TIME caps a session at 180 s (< 2^31 packets at 10 Mpps).
 */
export const REJECT_AFTER_MESSAGES = 2 ** 60;
/** The initiator rekeys after this many packets on one session, long before any limit bites. */
export const REKEY_AFTER_MESSAGES = 2 ** 48;

// ---- implementation ----

/**
 * Replay ring size in 32-bit words (power of two). The usable window is (words - 1) * 32 = 16352
 * packets: the design asks for at least 8192 because multipath reorders a lot (100 ms of delay
 * difference at 90 kpps is ~9000 packets).
 */
export const REPLAY_RING_WORDS = 512;
/**
 * Words a session's replay ring starts with (replay.ts): it doubles up to REPLAY_RING_WORDS only while
 * a hole (a lost or late packet) inside the window needs it; an in-order session keeps 16 bytes.
 */
export const REPLAY_FIRST_WORDS = 4;

/**
 * The global budget of initiations that reach Diffie-Hellman without a cookie (handshake-load.ts):
 * a token bucket refilled at this rate; past it we are "under load" and every source needs a cookie.
 */
export const UNDER_LOAD_INITIATIONS_PER_SECOND = 64;
/**
 * The budget's burst on top of that rate, per configured peer: after a restart every peer
 * handshakes at once, on each of its links (one per link, up to four links), and they all go
 * straight through; the burst refills at the rate above (1,000 peers: 31 s to refill half of it).
 */
export const HANDSHAKE_BURST_PER_PEER = 4;
/** Once the budget is spent, stay under load this long (WireGuard's UnderLoadAfterTime). */
export const UNDER_LOAD_HOLD_MS = 1_000;
/**
 * Initiations one source IP (IPv6: /64) may send without a cookie: a token bucket, so a flood
 * from one address needs cookies after its first few while every other source goes straight
 * through. Anyone can spend a forged address's allowance; its owner then pays one round trip (the
 * cookie reply) and is judged by the cookie-checked limiter below, which forgers cannot reach.
 */
export const COOKIE_FREE_PER_SOURCE_PER_SECOND = 2;
export const COOKIE_FREE_PER_SOURCE_BURST = 8;
/** Per-source-IP (IPv6: /64) token bucket for initiations that needed and showed a cookie (WireGuard ratelimiter: 20/s, burst 5). */
export const RATE_LIMIT_INITIATIONS_PER_SECOND = 20;
export const RATE_LIMIT_BURST = 5;
/** Cap on sources tracked by each per-source bucket table; beyond it the least recently used source is forgotten. */
export const RATE_LIMIT_MAX_SOURCES = 4_096;
/** Cap on configured peers per session manager. */
export const MAX_PEERS = 4_096;
/** Cap on queued crypto events and transmits; the oldest are dropped (and counted) beyond it. */
export const MAX_QUEUED_OUTPUTS = 1_024;
