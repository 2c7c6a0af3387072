import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { createReplayCache, nip98Header } from "../protocol/mod.ts";
import { handleMetrics, renderMetrics } from "./relay-metrics.ts";
import type { RendezvousMetrics } from "./rendezvous.ts";

const URL_ = "http://relay.test/metrics";
const traffic: RendezvousMetrics = {
  fromDialers: 1200,
  fromListeners: 3400,
  circuitsOpened: 2,
  circuitsOpen: 1,
  reservations: 3,
  connections: 5,
};

function setup() {
  const owner = generateSecretKey();
  const member = generateSecretKey();
  const roles = new Map([[getPublicKey(owner), "owner"], [getPublicKey(member), "member"]]);
  const c = {
    members: { role: (pk: string) => roles.get(pk) as "owner" | "member" | undefined },
    url: URL_,
    rendezvous: () => traffic,
    replay: createReplayCache(120, 100),
    now: () => Date.now() / 1000,
  };
  const get = (key?: Uint8Array) =>
    handleMetrics(
      new Request(URL_, {
        headers: key ? { authorization: nip98Header(key, { url: URL_, method: "GET" }) } : {},
      }),
      c,
    );
  return { owner, member, get };
}

Deno.test("metrics: only the owner (or an admin) reads the relayed-byte counters", async () => {
  const { owner, member, get } = setup();
  assert.equal((await get()).status, 401);
  assert.equal((await get(member)).status, 403);
  assert.equal((await get(generateSecretKey())).status, 403);
  const res = await get(owner);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const body = await res.text();
  assert.match(body, /^grove_relay_relayed_bytes_total\{from="dialer"\} 1200$/m);
  assert.match(body, /^grove_relay_relayed_bytes_total\{from="listener"\} 3400$/m);
  assert.match(body, /^grove_relay_reservations 3$/m);
  assert.match(body, /^grove_relay_circuits_open 1$/m);
});

Deno.test("metrics: a used auth event is refused the second time", async () => {
  const { owner } = setup();
  const c = {
    members: { role: () => "owner" as const },
    url: URL_,
    rendezvous: () => traffic,
    replay: createReplayCache(120, 100),
    now: () => Date.now() / 1000,
  };
  const header = nip98Header(owner, { url: URL_, method: "GET" });
  const req = () => new Request(URL_, { headers: { authorization: header } });
  assert.equal((await handleMetrics(req(), c)).status, 200);
  assert.equal((await handleMetrics(req(), c)).status, 401);
});

Deno.test("metrics: without a rendezvous every counter is 0 and up is 0", () => {
  const body = renderMetrics(undefined);
  assert.match(body, /^grove_rendezvous_up 0$/m);
  assert.match(body, /^# TYPE grove_relay_relayed_bytes_total counter$/m);
  assert.match(body, /^grove_relay_relayed_bytes_total\{from="dialer"\} 0$/m);
});
