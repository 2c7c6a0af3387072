import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  libp2pKeyFromNostrSecret,
  peerIdFromNostrSecret,
  pubkeyFromPeerId,
} from "./nostr-libp2p-key.ts";

Deno.test("identity: the peer id of a Nostr secret names its Nostr pubkey (random keys)", () => {
  for (let i = 0; i < 20; i++) {
    const sk = generateSecretKey();
    const peerId = peerIdFromNostrSecret(sk);
    assert.match(peerId, /^16Uiu2/);
    assert.equal(pubkeyFromPeerId(peerId), getPublicKey(sk));
  }
});

Deno.test("identity: the libp2p key is secp256k1 over the same secret", () => {
  const sk = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const key = libp2pKeyFromNostrSecret(sk);
  assert.equal(key.type, "secp256k1");
  assert.deepEqual(key.raw, sk);
  assert.equal(peerIdFromNostrSecret(sk), peerIdFromNostrSecret(sk.slice()));
  assert.throws(() => libp2pKeyFromNostrSecret(new Uint8Array(31)), /32 bytes, got 31/);
});

Deno.test("identity: pubkeyFromPeerId is undefined for Ed25519 ids and garbage", () => {
  // An Ed25519 peer id (identity multihash of an Ed25519 protobuf key).
  assert.equal(pubkeyFromPeerId("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"), undefined);
  assert.equal(pubkeyFromPeerId("not a peer id"), undefined);
  assert.equal(pubkeyFromPeerId(""), undefined);
});
