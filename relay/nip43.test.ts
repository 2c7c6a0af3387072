import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey, verifyEvent } from "nostr-tools/pure";
import type { NostrEvent } from "../protocol/mod.ts";
import { makeMembershipList } from "./nip43.ts";

const T0 = 1_700_000_000;

Deno.test("the NIP-43 list is relay-signed, protected, and names every member", () => {
  const relaySecret = generateSecretKey();
  const [a, b] = [getPublicKey(generateSecretKey()), getPublicKey(generateSecretKey())];
  const ev: NostrEvent = makeMembershipList(relaySecret, [
    { pubkey: b },
    { pubkey: a },
    { pubkey: a },
  ], T0 + 0.5);
  assert.equal(ev.kind, 13534);
  assert.equal(ev.pubkey, getPublicKey(relaySecret));
  assert.equal(ev.created_at, T0);
  assert.equal(ev.content, "");
  assert.deepEqual(ev.tags, [["-"], ...[a, b].sort().map((p) => ["member", p])]);
  assert.equal(verifyEvent(ev), true);
});
