// NIP-11: the relay's self-description, with Grove's `mesh` object (docs/protocol.md#nip-11) that
// nodes read to find the rendezvous and the admission endpoint. Pure: built from plain data.
import { KIND, type RelayInformation } from "../protocol/mod.ts";
import type { RelayLimits } from "./config.ts";
import { MAX_FUTURE_SECONDS } from "./connection.ts";

const SOFTWARE = "https://github.com/grove/grove";
const VERSION = "0.1.0";
const SUPPORTED_NIPS = [1, 9, 11, 40, 42, 43, 70, 86, 98];

export interface Nip11Init {
  name: string;
  description?: string;
  relayPubkey: string;
  limits: RelayLimits;
  /** --open: writes need no membership. */
  open: boolean;
  meshId: string;
  /** Multiaddrs of the rendezvous node, each ending in /p2p/PEER_ID. */
  rendezvous: string[];
  /** The relay's public http(s) URL, no trailing slash. */
  httpUrl: string;
}

export function relayInformation(init: Nip11Init): RelayInformation {
  const l = init.limits;
  return {
    name: init.name,
    description: init.description ??
      "A Grove relay: members share LLM compute over a peer-to-peer mesh.",
    pubkey: init.relayPubkey,
    supported_nips: [...SUPPORTED_NIPS],
    software: SOFTWARE,
    version: VERSION,
    limitation: {
      max_message_length: l.maxMessageLength,
      max_subscriptions: l.maxSubscriptions,
      max_filters: l.maxFilters,
      max_limit: l.maxLimit,
      max_subid_length: l.maxSubidLength,
      max_event_tags: l.maxEventTags,
      max_content_length: l.maxContentLength,
      created_at_upper_limit: MAX_FUTURE_SECONDS,
      // Anonymous REQs for ordinary kinds are answered; only member-only kinds need AUTH.
      auth_required: false,
      restricted_writes: !init.open,
      payment_required: false,
      // Grove's own, beyond NIP-11's standard fields (config.ts says what each bounds).
      max_filter_bytes: l.maxFilterBytes,
      events_per_minute: l.eventsPerMinute,
      reqs_per_minute: l.reqsPerMinute,
      auths_per_minute: l.authsPerMinute,
      max_connections: l.maxConnections,
      max_unauthenticated_connections_per_ip: l.maxConnectionsPerIp,
      idle_timeout_seconds: l.idleTimeoutSeconds,
      ping_interval_seconds: l.pingIntervalSeconds,
      max_send_buffer_bytes: l.maxSendBuffer,
      http_header_timeout_seconds: l.headerTimeoutSeconds,
      max_http_body_bytes: l.maxHttpBodyBytes,
      nip98_refusals_per_minute_per_ip: l.nip98StrangerPerMinute,
      admissions_per_minute_per_key: l.admissionsPerMinutePerKey,
      management_calls_per_minute_per_key: l.managementPerMinutePerKey,
    },
    mesh: {
      id: init.meshId,
      rendezvous: [...init.rendezvous],
      admission_url: `${init.httpUrl.replace(/\/+$/, "")}/admission`,
      status_kind: KIND.MESH_STATUS,
    },
  };
}

/** The http(s) URL of a ws(s) relay URL: same host, port and path, no trailing slash. */
export function httpUrlOf(wsUrl: string): string {
  const u = new URL(wsUrl);
  const scheme = { "ws:": "http:", "wss:": "https:" }[u.protocol] ?? u.protocol;
  return `${scheme}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
}
