// Admission against a real in-process relay (no rendezvous), and the keeper's retry paths with an
// injected fetch that plays a relay signing short-lived tickets.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { makeTicket, type NostrEvent, verifyTicket } from "../protocol/mod.ts";
import { type RunningRelay, startRelay } from "../relay/mod.ts";
import { nip86 as ownerCall } from "./relay-harness.ts";
import {
  identityOf,
  keepTicket,
  MESH_DENIED_MESSAGE,
  requestTicket,
  ServiceError,
} from "../mesh/mod.ts";

const owner = identityOf(generateSecretKey());

async function withRelay(fn: (relay: RunningRelay) => Promise<void>) {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-admission-test-" });
  const relay = await startRelay({
    host: "127.0.0.1",
    port: 0,
    meshPort: -1,
    dataDir,
    owner: owner.pubkey,
    open: false,
  });
  try {
    await fn(relay);
  } finally {
    await relay.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** NIP-86 as the owner: allowpubkey / disallowpubkey. */
async function nip86(relay: RunningRelay, method: string, pubkey: string) {
  const owned = await ownerCall(relay, { sk: owner.secretKey, pk: owner.pubkey }, method, [pubkey]);
  assert.equal(owned.status, 200, JSON.stringify(owned.json));
}

const admissionOf = (relay: RunningRelay) => ({
  admissionUrl: `${relay.httpUrl}/admission`,
  relayPubkey: relay.pubkey,
  meshId: relay.meshId,
});

Deno.test("admission: a member gets a verified ticket; a stranger gets mesh_denied", async () => {
  await withRelay(async (relay) => {
    const ticket = await requestTicket({ ...admissionOf(relay), identity: owner });
    const check = verifyTicket(ticket, {
      relayPubkey: relay.pubkey,
      meshId: relay.meshId,
      peerId: owner.peerId,
      now: Date.now() / 1000,
    });
    assert.ok(check.ok && check.member === owner.pubkey, JSON.stringify(check));

    const warnings: string[] = [];
    const log = { info() {}, error() {}, warn: (m: string) => void warnings.push(m) };
    const stranger = identityOf(generateSecretKey());
    const err = await requestTicket({ ...admissionOf(relay), identity: stranger, log }).then(
      () => assert.fail("a stranger got a ticket"),
      (e) => e,
    );
    assert.ok(err instanceof ServiceError);
    assert.equal(err.code, "mesh_denied");
    assert.equal(err.message, MESH_DENIED_MESSAGE);
    assert.deepEqual((err.cause as { status: number; code: string }).code, "not_member");
    assert.match(warnings.join("\n"), /not_member/);
  });
});

Deno.test("admission: a kept ticket renews; a removed member's keeper reports denial", async () => {
  await withRelay(async (relay) => {
    const member = identityOf(generateSecretKey());
    await nip86(relay, "allowpubkey", member.pubkey);
    // The relay's tickets live 300 s: renew after 0.3 % of that, about 1 s.
    const keeper = await keepTicket({
      ...admissionOf(relay),
      identity: member,
      renewAtFraction: 0.003,
    });
    try {
      const first = keeper.current()!;
      assert.ok(first);
      const renewed = await nextChange(keeper, 4000);
      assert.ok(renewed && renewed !== first, "no new ticket");
      assert.equal(keeper.current(), renewed);
      assert.equal(keeper.denied(), undefined);

      await nip86(relay, "disallowpubkey", member.pubkey);
      assert.equal(await nextChange(keeper, 4000), undefined);
      assert.equal(keeper.current(), undefined);
      assert.match(keeper.denied() ?? "", /^not_member: /);
    } finally {
      keeper.stop();
    }
  });
});

function nextChange(
  keeper: { onChange(fn: (t: NostrEvent | undefined) => void): () => void },
  ms: number,
): Promise<NostrEvent | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ticket change within ${ms} ms`)), ms);
    const off = keeper.onChange((t) => {
      clearTimeout(timer);
      off();
      resolve(t);
    });
  });
}

// A stand-in relay: signs 2-second tickets, or answers with the status `plan` says next.
function fakeAdmission(relaySecret: Uint8Array, meshId: string) {
  const plan: (number | "ticket")[] = [];
  const calls: string[] = [];
  const answer = (input: string | URL | Request, init?: RequestInit): Response => {
    calls.push(String(input));
    const body = JSON.parse(new TextDecoder().decode(init!.body as Uint8Array));
    const step = plan.shift() ?? "ticket";
    if (step !== "ticket") {
      return Response.json({ error: { code: "oops", message: `status ${step}` } }, {
        status: step,
      });
    }
    const now = Math.floor(Date.now() / 1000);
    const ticket = makeTicket(relaySecret, {
      member: pubkeyOfAuth(init!.headers!),
      peerId: body.peerId,
      meshId,
      expiresAt: now + 2,
      now,
    });
    return Response.json({ ticket });
  };
  const fetchFn =
    ((input: string | URL | Request, init?: RequestInit) =>
      Promise.resolve(answer(input, init))) as typeof fetch;
  return { fetch: fetchFn, plan, calls };
}

function pubkeyOfAuth(headers: HeadersInit): string {
  const auth = new Headers(headers).get("authorization")!;
  return JSON.parse(atob(auth.slice("Nostr ".length))).pubkey;
}

Deno.test("admission: renewal failures are retried; 401 and network errors are named", async () => {
  const relaySecret = generateSecretKey();
  const meshId = "0123456789abcdef0123456789abcdef";
  const fake = fakeAdmission(relaySecret, meshId);
  const member = identityOf(generateSecretKey());
  const opts = {
    admissionUrl: "http://relay.test/admission",
    identity: member,
    relayPubkey: getPublicKey(relaySecret),
    meshId,
    fetch: fake.fetch,
  };
  fake.plan.push("ticket", 500, 502);
  const keeper = await keepTicket({ ...opts, renewAtFraction: 0.1, retryMs: [50] });
  try {
    const first = keeper.current()!;
    const renewed = await nextChange(keeper, 3000);
    assert.ok(renewed && renewed !== first); // same second, same tags: possibly the same id
    assert.equal(fake.calls.length, 4, "first, two failures, then success");
  } finally {
    keeper.stop();
  }

  fake.plan.push(401);
  await assert.rejects(
    requestTicket(opts),
    /mesh admission at http:\/\/relay\.test\/admission refused this node's NIP-98 auth \(HTTP 401 oops\): status 401/,
  );
  // A ticket for another mesh is not accepted, even when signed by the relay.
  await assert.rejects(
    requestTicket({ ...opts, meshId: "f".repeat(32) }),
    /holds no valid ticket: ticket is for mesh/,
  );
  const port = freePort();
  await assert.rejects(
    requestTicket({
      ...opts,
      fetch: undefined,
      admissionUrl: `http://127.0.0.1:${port}/admission`,
    }),
    new RegExp(`cannot reach the mesh admission endpoint http://127\\.0\\.0\\.1:${port}/admission`),
  );
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
