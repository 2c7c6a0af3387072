// The peer-to-peer part with a stubbed libp2p node: what it asks of the node, and which failed
// calls make the admission check with the relay.
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import type { NostrEvent } from "../protocol/mod.ts";
import { identityOf } from "./node-identity.ts";
import type { MeshNode, MeshNodeInit } from "./p2p-node.ts";
import { createPeerPart, type PeerPartInit } from "./role-peer.ts";
import { ServiceError } from "./service.ts";

const identity = identityOf(generateSecretKey());
const TICKET = { id: "t1", kind: 24625 } as NostrEvent;
const init: PeerPartInit = {
  identity,
  rendezvous: ["/ip4/127.0.0.1/tcp/7778/p2p/16Uiu2HAmExample"],
  relayPubkey: "ab".repeat(32),
  meshId: "m1",
  serving: true,
};
const REQ = { model: "stories260K", prompt: "Once", params: { max_tokens: 2 } };
const target = { peerId: identityOf(generateSecretKey()).peerId, addrs: [] };

function stubbed() {
  const seen: { init?: MeshNodeInit; stops: number; rechecks: number } = { stops: 0, rechecks: 0 };
  const node = {
    dialProtocol: () => Promise.reject(new Error("connection refused")),
    stop: () => (seen.stops++, Promise.resolve()),
  } as unknown as MeshNode;
  const part = createPeerPart(init, {
    admission: { ticket: () => TICKET, recheck: () => void seen.rechecks++ },
    startMeshNode: (i) => (seen.init = i, Promise.resolve(node)),
  });
  return { seen, node, part };
}

async function drain(events: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of events) { /* only how it ends matters */ }
}

Deno.test("peer part: the node shows the admission's ticket and serves as told; stop stops it", async () => {
  const { seen, node, part } = stubbed();
  assert.equal(part.node(), undefined);
  await part.start();
  assert.equal(part.node(), node);
  assert.equal(seen.init?.ticket(), TICKET);
  assert.equal(seen.init?.serving, true);
  assert.equal(seen.init?.meshId, "m1");
  await part.stop();
  assert.equal(seen.stops, 1);
  assert.equal(part.node(), undefined);
});

Deno.test("peer part: a call before start is unavailable and asks the relay nothing", async () => {
  const { seen, part } = stubbed();
  await assert.rejects(drain(part.call(target, REQ, new AbortController().signal)), (err) => {
    assert.ok(err instanceof ServiceError && err.code === "unavailable");
    assert.match(err.message, /not running/);
    return true;
  });
  assert.equal(seen.rechecks, 0);
});

Deno.test("peer part: a failed call asks the admission to recheck; a cancelled one does not", async () => {
  const { seen, part } = stubbed();
  await part.start();
  await assert.rejects(
    drain(part.call(target, REQ, new AbortController().signal)),
    /could not open a stream to serving node/,
  );
  assert.equal(seen.rechecks, 1);
  const cancelled = new AbortController();
  cancelled.abort();
  await drain(part.call(target, REQ, cancelled.signal));
  assert.equal(seen.rechecks, 1, "a call the client cancelled says nothing about admission");
  await part.stop();
});
