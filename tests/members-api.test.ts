// /api/members on a node, signed with the node's key over NIP-86 against a real relay process
// (and, for the counting test, the relay's NIP-86 handler in process). Spans web, cli and relay.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { npubEncode } from "nostr-tools/nip19";
import { createReplayCache } from "../protocol/mod.ts";
import { identityOf } from "../mesh/mod.ts";
import { openDatabaseFile } from "../relay/db.ts";
import { createMemberStore } from "../relay/members.ts";
import { handleNip86 } from "../relay/nip86.ts";
import { memberHooks, REFUSAL_KEPT_MS } from "../cli/member-hooks.ts";
import { createNodeApp } from "../web/mod.ts";
import { fakeService } from "./support/fake-service.ts";
import { type Key, newKey, nip86, relayTest, sharedRelay } from "./relay-harness.ts";
import { newKey as newNodeKey, startMesh } from "./mesh-harness.ts";

const relay = sharedRelay({ prefix: "grove-members-api-" });

const call = (
  app: { fetch(r: Request): Promise<Response> },
  method: string,
  path: string,
  body?: unknown,
) =>
  app.fetch(
    new Request(`http://localhost${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );

function nodeOf(relayUrl: string, key: Key) {
  return createNodeApp({
    service: fakeService(),
    node: memberHooks({ relayUrl }, identityOf(key.sk)),
  });
}

/** The relay's own list, asked with the owner's key outside the node's code. */
async function relayRoles(owner: Key): Promise<Map<string, string>> {
  const r = await relay.get();
  const answer = await nip86(r, owner, "listallowedpubkeys");
  assert.equal(answer.status, 200);
  const list = answer.json.result as { pubkey: string; role: string }[];
  return new Map(list.map((m) => [m.pubkey, m.role]));
}

relayTest(
  "members API: the owner's node lists, adds and removes members on the relay",
  async () => {
    const r = await relay.get();
    const app = nodeOf(r.url, r.owner);
    const bob = newKey();
    const carol = newKey();

    const first = await call(app, "GET", "/api/members");
    assert.equal(first.status, 200);
    const listed = await first.json();
    assert.equal(listed.canManage, true);
    assert.equal(listed.reason, null);
    assert.deepEqual(
      listed.members.find((m: { pubkey: string }) => m.pubkey === r.owner.pk),
      { pubkey: r.owner.pk, npub: npubEncode(r.owner.pk), role: "owner" },
    );

    const added = await call(app, "POST", "/api/members", { npub: npubEncode(bob.pk) });
    assert.equal(added.status, 200);
    assert.deepEqual(await added.json(), {
      pubkey: bob.pk,
      npub: npubEncode(bob.pk),
      role: "member",
    });
    assert.equal((await relayRoles(r.owner)).get(bob.pk), "member");

    const admin = await call(app, "POST", "/api/members", { npub: carol.pk, role: "admin" });
    assert.equal((await admin.json()).role, "admin");
    assert.equal((await relayRoles(r.owner)).get(carol.pk), "admin");

    const after = await (await call(app, "GET", "/api/members")).json();
    assert.ok(after.members.some((m: { npub: string }) => m.npub === npubEncode(bob.pk)));

    const removed = await call(app, "DELETE", `/api/members/${npubEncode(bob.pk)}`);
    assert.equal(removed.status, 200);
    assert.deepEqual(await removed.json(), { removed: npubEncode(bob.pk) });
    assert.equal((await relayRoles(r.owner)).has(bob.pk), false);

    // The owner cannot be removed over NIP-86: the relay's words, as a 403.
    const owner = await call(app, "DELETE", `/api/members/${npubEncode(r.owner.pk)}`);
    assert.equal(owner.status, 403);
    const refusal = (await owner.json()).error;
    assert.equal(refusal.code, "relay_refused");
    assert.match(refusal.message, /restricted: the owner cannot be removed over NIP-86/);

    const bad = await call(app, "POST", "/api/members", { npub: "npub1notakey" });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.param, "npub");
    const unknownField = await call(app, "POST", "/api/members", { npub: bob.pk, rank: "x" });
    assert.equal((await unknownField.json()).error.param, "rank");
    const badRole = await call(app, "POST", "/api/members", { npub: bob.pk, role: "owner" });
    assert.equal((await badRole.json()).error.param, "role");
  },
);

relayTest(
  "members API: a node that is no admin gets canManage false with the relay's reason, and 403 on a change",
  async () => {
    const r = await relay.get();
    const stranger = newKey();
    const app = nodeOf(r.url, stranger);
    const res = await call(app, "GET", "/api/members");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      canManage: false,
      reason: "restricted: only the relay's owner or an admin",
      members: [],
    });
    const dave = newKey();
    const add = await call(app, "POST", "/api/members", { npub: npubEncode(dave.pk) });
    assert.equal(add.status, 403);
    assert.match((await add.json()).error.message, /refused allowpubkey \(HTTP 403\): restricted/);
    assert.equal((await relayRoles(r.owner)).has(dave.pk), false);
  },
);

relayTest("members API: stop the shared relay", async () => {
  await relay.stop();
});

Deno.test("members API: an unreachable relay is 502; without hooks 501", async () => {
  const app = nodeOf("ws://127.0.0.1:1", newKey());
  const res = await call(app, "GET", "/api/members");
  assert.equal(res.status, 502);
  assert.equal((await res.json()).error.code, "relay_unreachable");
  const bare = createNodeApp({ service: fakeService() });
  assert.equal((await call(bare, "GET", "/api/members")).status, 501);
});

Deno.test("members API: a refusal is kept 30 s, so a polling page does not spend the relay's budget", async () => {
  const members = createMemberStore(openDatabaseFile(":memory:"));
  const owner = generateSecretKey();
  members.add(getPublicKey(owner), "owner", 0);
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    calls++;
    return handleNip86(req, { members, replay: createReplayCache(), now: () => Date.now() / 1000 });
  });
  try {
    let now = 1_000_000;
    const stranger = identityOf(generateSecretKey());
    const hooks = memberHooks(
      { relayUrl: `ws://127.0.0.1:${server.addr.port}`, now: () => now },
      stranger,
    );
    const app = createNodeApp({ service: fakeService(), node: hooks });
    for (let i = 0; i < 3; i++) {
      assert.equal((await (await call(app, "GET", "/api/members")).json()).canManage, false);
    }
    assert.equal(calls, 1);
    now += REFUSAL_KEPT_MS;
    // Made an admin meanwhile: the next ask after the pause sees it.
    members.add(stranger.pubkey, "admin", 0);
    const body = await (await call(app, "GET", "/api/members")).json();
    assert.equal(calls, 2);
    assert.equal(body.canManage, true);
    assert.equal(body.members.length, 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test({
  name:
    "members API: a consume process of the relay's owner manages members; a plain member's node cannot",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const mesh = await startMesh();
  try {
    const memberKey = newNodeKey();
    await mesh.addMember(memberKey.pubkey);
    const [owner, member] = await Promise.all([mesh.consume(), mesh.consume(memberKey)]);
    const get = async (url: string) => await (await fetch(`${url}/api/members`)).json();

    const listed = await get(owner.url);
    assert.equal(listed.canManage, true);
    assert.deepEqual(
      listed.members.map((m: { pubkey: string; role: string }) => [m.pubkey, m.role]).sort(),
      [[mesh.owner.pubkey, "owner"], [memberKey.pubkey, "member"]].sort(),
    );
    const erin = newKey();
    const added = await fetch(`${owner.url}/api/members`, {
      method: "POST",
      body: JSON.stringify({ npub: npubEncode(erin.pk) }),
    });
    assert.equal(added.status, 200, await added.clone().text());
    assert.equal((await added.json()).role, "member");
    assert.ok((await get(owner.url)).members.some((m: { pubkey: string }) => m.pubkey === erin.pk));

    const refused = await get(member.url);
    assert.deepEqual(
      [refused.canManage, refused.reason],
      [false, "restricted: only the relay's owner or an admin"],
    );
  } finally {
    await mesh.close();
  }
});
