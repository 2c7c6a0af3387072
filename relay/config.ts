// What a relay is started with, and the limits it advertises in NIP-11 and enforces: per
// connection, per stranger address, per member key and in all. Every default is here, sized for
// hundreds of members; `--limit NAME=VALUE` changes one (cli/relay-command.ts). Plain data only:
// startRelay (relay.ts) turns it into running parts.

import type { Logger } from "../protocol/mod.ts";

export interface RelayLimits {
  /** Largest WebSocket text frame accepted, in bytes (NIP-11 max_message_length). */
  maxMessageLength: number;
  /** Open subscriptions per connection. */
  maxSubscriptions: number;
  /** Filters in one REQ. */
  maxFilters: number;
  /** Largest `limit` honoured; larger ones are clamped. */
  maxLimit: number;
  maxSubidLength: number;
  maxEventTags: number;
  /** Length of an event's content, in characters. */
  maxContentLength: number;
  /** Token buckets per connection; the burst is a tenth of a minute's worth (at least 5). */
  eventsPerMinute: number;
  reqsPerMinute: number;
  /** How far an AUTH event's created_at may be from the relay's clock. */
  authTimeoutSeconds: number;
  /** Bytes queued on a socket before the relay gives up on a slow reader and closes it. */
  maxSendBuffer: number;
  /** AUTH messages per connection (each costs a signature check); burst a tenth, at least 5. */
  authsPerMinute: number;
  /**
   * Total size of one connection's open subscriptions' filters (their JSON): what its REQs
   * make the relay hold and test on every broadcast. Two full-size REQs fit.
   */
  maxFilterBytes: number;
  /** Sockets held in all, members' included (memory, file descriptors). */
  maxConnections: number;
  /** Sockets per address (IPv6: per /64) not authenticated as a member (members share NATs). */
  maxConnectionsPerIp: number;
  /** Seconds a socket has for a request's headers, and an HTTP socket may sit between requests. */
  headerTimeoutSeconds: number;
  /** Seconds an unauthenticated WebSocket without a subscription may stay silent. */
  idleTimeoutSeconds: number;
  /** Seconds between pings; a socket that left the previous one unanswered is dropped. */
  pingIntervalSeconds: number;
  /** Largest HTTP request body read (NIP-86's 64 KiB is the largest a route takes). */
  maxHttpBodyBytes: number;
  /**
   * Requests per address and minute at /admission and NIP-86 that are not a member's success
   * (checked before the signature); burst a third of a minute's worth.
   */
  nip98StrangerPerMinute: number;
  /** Tickets a member key may ask for per minute (nodes renew every few minutes). */
  admissionsPerMinutePerKey: number;
  /** NIP-86 calls an owner or admin key may make per minute (bulk adds by script). */
  managementPerMinutePerKey: number;
  /** NIP-98 ids held per endpoint: ~700 members each at the admission limit (140 ids) at once. */
  replayCacheEntries: number;
}

export const DEFAULT_LIMITS: RelayLimits = {
  maxMessageLength: 128 * 1024,
  maxSubscriptions: 32,
  maxFilters: 16,
  maxLimit: 1000,
  maxSubidLength: 64,
  maxEventTags: 2000,
  maxContentLength: 64 * 1024,
  eventsPerMinute: 600,
  reqsPerMinute: 600,
  authTimeoutSeconds: 600,
  maxSendBuffer: 8 * 1024 * 1024,
  authsPerMinute: 60,
  maxFilterBytes: 256 * 1024,
  maxConnections: 4096,
  maxConnectionsPerIp: 16,
  headerTimeoutSeconds: 10,
  idleTimeoutSeconds: 60,
  pingIntervalSeconds: 30,
  maxHttpBodyBytes: 64 * 1024,
  nip98StrangerPerMinute: 60,
  admissionsPerMinutePerKey: 60,
  managementPerMinutePerKey: 600,
  replayCacheEntries: 100_000,
};

export interface RelayInit {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The ws(s):// URL clients use, when it is not ws://host:port/ (a proxy, a domain). */
  publicUrl?: string;
  /** npub or hex; made an owner at start. */
  owner?: string;
  /** Folder of this relay's state (relay.sqlite). */
  dataDir: string;
  /** libp2p rendezvous port; 0 picks a free one, -1 runs no rendezvous (tests). */
  meshPort: number;
  /** Also listen for QUIC on the rendezvous (default true). */
  quic?: boolean;
  /** Anyone may write; restricted kinds still need an authenticated pubkey. */
  open: boolean;
  /**
   * Behind a TLS proxy (with publicUrl): the client's address is the proxy's X-Real-IP or the
   * last hop of X-Forwarded-For. Off, those headers are ignored (anyone could write them).
   */
  trustProxy?: boolean;
  name?: string;
  limits?: Partial<RelayLimits>;
  log?: Logger;
  /** UNIX seconds; tests pass a fake clock. */
  now?: () => number;
}

export function resolveLimits(partial: Partial<RelayLimits> = {}): RelayLimits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`relay limit ${key} must be a positive number, got ${value}`);
    }
  }
  return limits;
}

/** UNIX seconds, fractional: the token buckets need sub-second resolution. */
export function systemNow(): number {
  return Date.now() / 1000;
}
