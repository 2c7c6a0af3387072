// The relay's app in process, without an edge: its handlers name the URLs and rendezvous they are
// given, read at request time.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { parseRelayInformation, silentLogger } from "../protocol/mod.ts";
import { DEFAULT_LIMITS } from "./config.ts";
import { openDatabaseFile } from "./db.ts";
import { createEventStore } from "./event-store.ts";
import { createMemberStore } from "./members.ts";
import { createRelayApp } from "./relay-app.ts";
import { lateUrls, relayUrls } from "./relay-urls.ts";
import { createSubscriptionHub } from "./subscriptions.ts";
import { createTicketRegistry } from "./ticket-registry.ts";

Deno.test("relay app: NIP-11 names the URLs and rendezvous as they are when asked", async () => {
  const db = openDatabaseFile(":memory:");
  const members = createMemberStore(db);
  const relaySecret = generateSecretKey();
  const urls = lateUrls();
  let rendezvous: string[] = [];
  const app = createRelayApp({
    relaySecret,
    meshId: "mesh-test",
    open: false,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
  }, {
    store: createEventStore(db),
    subscriptions: createSubscriptionHub(),
    members,
    registry: createTicketRegistry(members),
    mesh: { report: () => undefined },
    urls,
    rendezvousAddrs: () => rendezvous,
    now: () => 1_700_000_000,
  });
  try {
    urls.set(relayUrls("127.0.0.1", 4444, "wss://relay.example.org"));
    rendezvous = ["/ip4/127.0.0.1/tcp/4445/p2p/16Uiu2HAm"];
    const res = await app.fetch(
      new Request("http://127.0.0.1:4444/", { headers: { accept: "application/nostr+json" } }),
    );
    const info = parseRelayInformation(await res.json());
    assert.equal(info.name, "grove relay");
    assert.equal(info.pubkey, getPublicKey(relaySecret));
    assert.deepEqual(info.mesh, {
      id: "mesh-test",
      rendezvous,
      admission_url: "https://relay.example.org/admission",
      status_kind: 30621,
    });
  } finally {
    app.closeAll();
    db.close();
  }
});
