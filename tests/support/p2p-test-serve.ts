// Test helper process: a serving node with a never-ending stub model, so a test can SIGKILL it
// mid-generation. Env: GROVE_TEST_RELAY_SECRET (hex), GROVE_TEST_RENDEZVOUS (comma-separated).
// Prints one JSON line {peerId, addrs} once it serves.
import { hexToBytes } from "nostr-tools/utils";
import { getPublicKey } from "nostr-tools/pure";
import { makeTicket } from "../../protocol/mod.ts";
import { type InferenceService, serveInfer, startMeshNode } from "../../mesh/mod.ts";
import { MESH_ID, newIdentity } from "./p2p-test-kit.ts";

const relaySecret = hexToBytes(Deno.env.get("GROVE_TEST_RELAY_SECRET") ?? "");
const rendezvous = (Deno.env.get("GROVE_TEST_RENDEZVOUS") ?? "").split(",");
const id = newIdentity();
const now = Math.floor(Date.now() / 1000);
const ticket = makeTicket(relaySecret, {
  member: id.pubkey,
  peerId: id.peerId,
  meshId: MESH_ID,
  now,
  expiresAt: now + 300,
});
const endless: InferenceService = {
  models: () => Promise.resolve([]),
  async *infer(_req, signal) {
    for (let i = 0; !signal.aborted; i++) {
      // A model's pace, so the test can kill this process mid-generation.
      await new Promise((r) => setTimeout(r, 10));
      yield { type: "token", text: ` t${i}`, id: i };
    }
  },
};
const node = await startMeshNode({
  identity: id,
  rendezvous,
  relayPubkey: getPublicKey(relaySecret),
  meshId: MESH_ID,
  ticket: () => ticket,
  serving: false,
});
await serveInfer(node, endless);
console.log(JSON.stringify({ peerId: node.peerId, addrs: node.directAddrs() }));
