import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { npubEncode } from "nostr-tools/nip19";
import { createReplayCache, nip98Header } from "../protocol/mod.ts";
import { openDatabaseFile } from "./db.ts";
import { createMemberStore } from "./members.ts";
import { handleNip86, NIP86_CONTENT_TYPE, type Nip86Components } from "./nip86.ts";

const URL_ = "http://127.0.0.1:7777/";
const T0 = 1_700_000_000;

function setup() {
  const members = createMemberStore(openDatabaseFile(":memory:"));
  const [owner, admin, member] = [generateSecretKey(), generateSecretKey(), generateSecretKey()];
  members.add(getPublicKey(owner), "owner", T0);
  members.add(getPublicKey(admin), "admin", T0);
  members.add(getPublicKey(member), "member", T0);
  const c: Nip86Components = { members, replay: createReplayCache(), now: () => T0 };
  return { c, members, owner, admin, member };
}

async function call(
  c: Nip86Components,
  secret: Uint8Array | null,
  method: string,
  params: unknown[] = [],
  opts: { authBody?: string; contentType?: string } = {},
) {
  const body = JSON.stringify({ method, params });
  const headers: Record<string, string> = {
    "content-type": opts.contentType ?? NIP86_CONTENT_TYPE,
  };
  if (secret !== null) {
    const signed = new TextEncoder().encode(opts.authBody ?? body);
    headers.authorization = nip98Header(secret, { url: URL_, method: "POST", body: signed }, T0);
  }
  const res = await handleNip86(new Request(URL_, { method: "POST", headers, body }), c);
  return { status: res.status, json: await res.json() };
}

Deno.test("the owner and an admin add members; the change reaches onChange listeners", async () => {
  const { c, members, owner, admin } = setup();
  let changes = 0;
  members.onChange(() => changes++);
  const [a, b] = [getPublicKey(generateSecretKey()), getPublicKey(generateSecretKey())];
  assert.deepEqual(await call(c, owner, "allowpubkey", [a, "friend"]), {
    status: 200,
    json: { result: true },
  });
  assert.equal((await call(c, admin, "allowpubkey", [npubEncode(b)])).status, 200);
  assert.equal(members.role(a), "member");
  assert.equal(members.role(b), "member");
  assert.equal(changes, 2);
  // allowpubkey never demotes: the admin stays an admin.
  await call(c, owner, "allowpubkey", [getPublicKey(admin)]);
  assert.equal(members.role(getPublicKey(admin)), "admin");
});

Deno.test("a plain member or a stranger is refused with 403", async () => {
  const { c, members, member } = setup();
  const target = getPublicKey(generateSecretKey());
  for (const who of [member, generateSecretKey()]) {
    const { status, json } = await call(c, who, "allowpubkey", [target]);
    assert.equal(status, 403);
    assert.equal(json.result, null);
    assert.match(json.error, /owner or an admin/);
  }
  assert.equal(members.isMember(target), false);
});

Deno.test("missing or mismatched NIP-98 auth is refused with 401", async () => {
  const { c, members, owner } = setup();
  const target = getPublicKey(generateSecretKey());
  const missing = await call(c, null, "allowpubkey", [target]);
  assert.equal(missing.status, 401);
  assert.match(missing.json.error, /unauthorized: missing/);
  const payload = await call(c, owner, "allowpubkey", [target], { authBody: "{}" });
  assert.equal(payload.status, 401);
  assert.match(payload.json.error, /payload/);
  assert.equal(members.isMember(target), false);
});

Deno.test("listallowedpubkeys lists every member with its role", async () => {
  const { c, admin, owner, member } = setup();
  const { status, json } = await call(c, admin, "listallowedpubkeys");
  assert.equal(status, 200);
  assert.deepEqual(
    new Set(json.result.map((m: { pubkey: string; role: string }) => `${m.role} ${m.pubkey}`)),
    new Set([
      `owner ${getPublicKey(owner)}`,
      `admin ${getPublicKey(admin)}`,
      `member ${getPublicKey(member)}`,
    ]),
  );
});

Deno.test("removal: admins remove members only; nobody removes the owner", async () => {
  const { c, members, owner, admin, member } = setup();
  const otherAdmin = getPublicKey(generateSecretKey());
  members.add(otherAdmin, "admin", T0);

  const ownerGone = await call(c, admin, "disallowpubkey", [getPublicKey(owner)]);
  assert.equal(ownerGone.status, 403);
  assert.equal((await call(c, owner, "disallowpubkey", [getPublicKey(owner)])).status, 403);
  assert.equal((await call(c, admin, "disallowpubkey", [otherAdmin])).status, 403);
  assert.equal(members.role(otherAdmin), "admin");

  assert.equal(
    (await call(c, admin, "disallowpubkey", [getPublicKey(member), "spam"])).status,
    200,
  );
  assert.equal(members.isMember(getPublicKey(member)), false);
  assert.equal((await call(c, owner, "disallowpubkey", [otherAdmin])).status, 200);
  assert.equal(members.isMember(otherAdmin), false);
  assert.equal(members.role(getPublicKey(owner)), "owner");
});

Deno.test("grantadmin / revokeadmin are the owner's alone", async () => {
  const { c, members, owner, admin, member } = setup();
  const m = getPublicKey(member);
  assert.equal((await call(c, admin, "grantadmin", [m])).status, 403);
  assert.equal(members.role(m), "member");
  assert.equal((await call(c, owner, "grantadmin", [m])).status, 200);
  assert.equal(members.role(m), "admin");
  assert.equal((await call(c, owner, "revokeadmin", [getPublicKey(admin)])).status, 200);
  assert.equal(members.role(getPublicKey(admin)), "member");
});

Deno.test("malformed calls get 400/415 with NIP-86's error shape", async () => {
  const { c, owner } = setup();
  const unknown = await call(c, owner, "banevent", ["x"]);
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error, /unknown method "banevent"/);
  const badKey = await call(c, owner, "allowpubkey", ["npub1nope"]);
  assert.equal(badKey.status, 400);
  assert.match(badKey.json.error, /not a valid npub/);
  const type = await call(c, owner, "supportedmethods", [], { contentType: "application/json" });
  assert.equal(type.status, 415);
  const methods = await call(c, owner, "supportedmethods");
  assert.ok(methods.json.result.includes("disallowpubkey"));
});
