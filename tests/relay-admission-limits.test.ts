// Strangers against the NIP-98 endpoints (issue 9, finding 5), on a `main.ts relay` process
// whose replay caches hold only 16 ids each (--limit replayCacheEntries=16): strangers' signed
// requests never take room in them, so however many a stranger sends, a fresh member still gets
// a ticket and the owner's NIP-86 still works; and an address that keeps being refused gets 429
// before its signatures are even checked, while a member elsewhere is admitted.
import assert from "node:assert/strict";
import { peerIdFromNostrSecret } from "../protocol/mod.ts";
import {
  admit,
  authHeader,
  type Key,
  newKey,
  nip86,
  type RelayHarness,
  relayTest,
  sharedRelay,
} from "./relay-harness.ts";
import { fetchFrom } from "./stranger-clients.ts";

const CACHE = 16;
const relay = sharedRelay({
  members: 3,
  prefix: "grove-relay-admission-limits-",
  args: ["--limit", `replayCacheEntries=${CACHE}`],
});

/** A signed admission request by `key`, sent from `from`. */
async function admitFrom(h: RelayHarness, key: Key, from: string) {
  const url = h.info.mesh.admission_url;
  const body = JSON.stringify({ peerId: peerIdFromNostrSecret(key.sk) });
  const authorization = authHeader(key.sk, {
    url,
    method: "POST",
    body: new TextEncoder().encode(body),
  });
  const res = await fetchFrom(from, url, {
    method: "POST",
    headers: { authorization, "content-type": "application/json" },
    body,
  });
  return { status: res.status, headers: res.headers, json: await res.json(), authorization };
}

/** A signed NIP-86 call by `key`, sent from `from`. */
async function manageFrom(h: RelayHarness, key: Key, from: string) {
  const body = JSON.stringify({ method: "listallowedpubkeys", params: [] });
  const authorization = authHeader(key.sk, {
    url: h.httpUrl,
    method: "POST",
    body: new TextEncoder().encode(body),
  });
  const res = await fetchFrom(from, h.httpUrl, {
    method: "POST",
    headers: { authorization, "content-type": "application/nostr+json+rpc" },
    body,
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

relayTest(
  "replay cache: strangers' signed requests never fill it; a fresh member is admitted",
  async () => {
    const h = await relay.get();
    // Four times the cache's size of validly signed, fresh requests from strangers, spread over
    // addresses so no address's budget runs out: all refused as non-members, none recorded.
    for (let i = 0; i < 4 * CACHE; i++) {
      const from = `127.0.0.${2 + (i % 8)}`;
      const r = i % 2 === 0
        ? await admitFrom(h, newKey(), from)
        : await manageFrom(h, newKey(), from);
      assert.equal(r.status, 403, JSON.stringify(r.json));
    }
    // A member that never asked before gets a ticket; the owner manages the relay.
    const fresh = await admit(h, h.members[0]);
    assert.equal(fresh.status, 200, JSON.stringify(fresh.json));
    const owner = await nip86(h, h.owner, "listallowedpubkeys");
    assert.equal(owner.status, 200, JSON.stringify(owner.json));
    // And a member's id is still recorded: the same header again is a replay.
    const again = await admit(h, h.members[0], { authorization: fresh.authorization });
    assert.equal(again.status, 401);
    assert.match((again.json.error as { message: string }).message, /replay/);
  },
);

relayTest("admission: an address that keeps being refused gets 429 with Retry-After", async () => {
  const h = await relay.get();
  const from = "127.0.0.20";
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof admitFrom>> | undefined;
  for (let i = 0; i < 40 && limited === undefined; i++) {
    const r = await admitFrom(h, newKey(), from);
    statuses.push(r.status);
    if (r.status === 429) limited = r;
  }
  assert.ok(limited, `no 429 in ${statuses.length} refused requests: ${statuses}`);
  assert.ok(statuses.length > 5, "the first refusals are plain 403s");
  assert.ok(statuses.slice(0, -1).every((s) => s === 403));
  const error = limited.json.error as { code: string; message: string };
  assert.equal(error.code, "rate_limited");
  assert.match(error.message, /127\.0\.0\.20.*retry in \d+ s/);
  assert.ok(Number(limited.headers.get("retry-after")) >= 1, "Retry-After in seconds");
  // NIP-86 from that address is limited too, in NIP-86's shape.
  const managed = await manageFrom(h, h.owner, from);
  assert.equal(managed.status, 429);
  assert.match(managed.json.error as string, /^rate-limited: /);
  // A member from another address is admitted meanwhile; the owner's NIP-86 works from there.
  const member = await admitFrom(h, h.members[1], "127.0.0.21");
  assert.equal(member.status, 200, JSON.stringify(member.json));
  assert.equal((await manageFrom(h, h.owner, "127.0.0.21")).status, 200);
});

relayTest("admission: a member's successes do not spend its address's budget", async () => {
  const h = await relay.get();
  const from = "127.0.0.30";
  for (let i = 0; i < 5; i++) {
    const r = await admitFrom(h, h.members[2], from);
    assert.equal(r.status, 200, `request ${i + 1}: ${JSON.stringify(r.json)}`);
  }
  // The address still has its whole budget of refusals (a burst of 20) for strangers.
  let refused = 0;
  for (let i = 0; i < 40; i++) {
    const r = await admitFrom(h, newKey(), from);
    if (r.status === 429) break;
    assert.equal(r.status, 403);
    refused++;
  }
  assert.ok(refused >= 20 && refused < 40, `${refused} refusals before the first 429`);
});

relayTest("admission limits: the relay stops cleanly", async () => {
  const h = await relay.get();
  const out = await h.stop();
  assert.equal(out.code, 0, out.stderr.slice(-2000));
});
