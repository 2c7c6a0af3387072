// The relay's HTTP app with its handlers wired to the relay's parts: NIP-01 connections (their
// write policy hands serve reports to the mesh status), NIP-11, NIP-86 and /admission, each
// NIP-98 endpoint with its own replay cache and rates. Nothing runs here: the edge part hands it
// requests and sockets once it listens, which is also when the URLs the handlers name are known.
import { getPublicKey } from "nostr-tools/pure";
import { createReplayCache, type Logger } from "../protocol/mod.ts";
import { handleAdmission } from "./admission-endpoint.ts";
import type { RelayLimits } from "./config.ts";
import { createConnection } from "./connection.ts";
import type { EventStore } from "./event-store.ts";
import type { MemberStore } from "./members.ts";
import type { MeshStatusService } from "./mesh-status-publisher.ts";
import { relayInformation } from "./nip11-document.ts";
import { handleNip86 } from "./nip86.ts";
import { handleMetrics } from "./relay-metrics.ts";
import type { RendezvousMetrics } from "./rendezvous.ts";
import { createNip98Rates, createStrangerBuckets } from "./nip98-rates.ts";
import type { LateUrls } from "./relay-urls.ts";
import { createRelayServer, type RelayServer } from "./server.ts";
import type { SubscriptionHub } from "./subscriptions.ts";
import type { TicketRegistry } from "./ticket-registry.ts";
import { createWritePolicy } from "./write-policy.ts";

export interface RelayAppInit {
  /** NIP-11 name (default "grove relay"). */
  name?: string;
  relaySecret: Uint8Array;
  meshId: string;
  /** `--open`: anyone may write; restricted kinds still need an authenticated pubkey. */
  open: boolean;
  limits: RelayLimits;
  log: Logger;
}

export interface RelayAppComponents {
  store: EventStore;
  subscriptions: SubscriptionHub;
  members: MemberStore;
  registry: TicketRegistry;
  mesh: Pick<MeshStatusService, "report">;
  /** Read per request: set by the edge part once it listens. */
  urls: Pick<LateUrls, "get">;
  /** The rendezvous' addresses for NIP-11 (none without one). */
  rendezvousAddrs(): string[];
  /** The rendezvous' traffic for the owner-only /metrics (undefined while none runs). */
  rendezvousMetrics?(): RendezvousMetrics | undefined;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
}

export function createRelayApp(init: RelayAppInit, c: RelayAppComponents): RelayServer {
  const { limits, log } = init;
  const { members, now } = c;
  const relayPubkey = getPublicKey(init.relaySecret);
  const isMember = (pk: string) => init.open || members.isMember(pk);
  // One replay cache per endpoint: a flood at one never refuses a fresh id at the other.
  const strangers = createStrangerBuckets(limits.nip98StrangerPerMinute, now);
  const admissionReplay = createReplayCache(120, limits.replayCacheEntries);
  const admissionRates = createNip98Rates(strangers, limits.admissionsPerMinutePerKey, now);
  const nip86Replay = createReplayCache(120, limits.replayCacheEntries);
  const nip86Rates = createNip98Rates(strangers, limits.managementPerMinutePerKey, now);
  const metricsReplay = createReplayCache(120, limits.replayCacheEntries);
  const metricsRates = createNip98Rates(strangers, limits.managementPerMinutePerKey, now);
  const policy = createWritePolicy({
    relayPubkey,
    open: init.open,
    isMember: members.isMember,
    meshReport: (ev) => c.mesh.report(ev),
  });
  return createRelayServer({
    info: () =>
      relayInformation({
        name: init.name ?? "grove relay",
        relayPubkey,
        limits,
        open: init.open,
        meshId: init.meshId,
        rendezvous: c.rendezvousAddrs(),
        httpUrl: c.urls.get().http,
      }),
    connect: (send) =>
      createConnection(send, {
        store: c.store,
        subscriptions: c.subscriptions,
        policy,
        isMember,
        relayUrls: c.urls.get().accepted,
        limits,
        now,
        log,
      }),
    nip86: (req, ip) =>
      handleNip86(req, {
        members,
        url: c.urls.get().http,
        replay: nip86Replay,
        rates: nip86Rates,
        now,
        log,
      }, ip),
    admission: (req, ip) =>
      handleAdmission(req, {
        members,
        relaySecret: init.relaySecret,
        meshId: init.meshId,
        admissionUrl: `${c.urls.get().http}/admission`,
        registry: c.registry,
        replay: admissionReplay,
        rates: admissionRates,
        now,
        open: init.open,
        log,
      }, ip),
    metrics: (req, ip) =>
      handleMetrics(req, {
        members,
        url: `${c.urls.get().http}/metrics`,
        rendezvous: () => c.rendezvousMetrics?.(),
        replay: metricsReplay,
        rates: metricsRates,
        now,
        log,
      }, ip),
    maxSendBuffer: limits.maxSendBuffer,
    idleTimeoutSeconds: limits.idleTimeoutSeconds,
    pingIntervalSeconds: limits.pingIntervalSeconds,
    // Real membership, also with --open: a fresh key must not lift its IP's stranger cap.
    isMember: members.isMember,
    log,
  });
}
