// The relay part with a stubbed relay connection: the member list reaches the node, "removed" is
// said only after the list named this node, and an open relay's list is not followed.
import assert from "node:assert/strict";
import { generateSecretKey } from "nostr-tools/pure";
import type { MeshStatus } from "../protocol/mod.ts";
import { identityOf } from "./node-identity.ts";
import type { MeshNode } from "./p2p-node.ts";
import type { RelayClient } from "./relay-client.ts";
import { createRelayPart } from "./role-relay.ts";

const identity = identityOf(generateSecretKey());
const other = identityOf(generateSecretKey());
const STATUS = { serveTargets: [], models: [] } as unknown as MeshStatus;

function stubbed(membersOnly = true) {
  const listeners = {
    members: [] as ((m: Set<string>) => void)[],
    status: [] as ((s: MeshStatus) => void)[],
  };
  const seen = { cuts: [] as [string[], number | undefined][], closed: 0, published: 0 };
  let denial: string | undefined;
  const client = {
    onMembers: (fn: (m: Set<string>) => void) => (listeners.members.push(fn), () => {}),
    onMeshStatus: (fn: (s: MeshStatus) => void) => (listeners.status.push(fn), () => {}),
    membersListedAt: () => 1700,
    denied: () => denial,
    publish: () => (seen.published++, Promise.resolve()),
    close: () => (seen.closed++, Promise.resolve()),
  } as unknown as RelayClient;
  const node = {
    setMembers: (m: Set<string>, at?: number) => void seen.cuts.push([[...m], at]),
  } as unknown as MeshNode;
  const warnings: string[] = [];
  const part = createRelayPart({
    url: "ws://127.0.0.1:1",
    identity,
    relayPubkey: "ab".repeat(32),
    membersOnly,
    log: { info() {}, error() {}, warn: (m) => void warnings.push(m) },
  }, { peer: { node: () => node }, connectRelay: () => Promise.resolve(client) });
  const members = (...keys: string[]) => listeners.members.forEach((fn) => fn(new Set(keys)));
  const deny = (reason: string) => denial = reason;
  return { part, listeners, seen, warnings, members, deny };
}

Deno.test("relay part: the member list reaches the node; removed only after the list named us", async () => {
  const r = stubbed();
  await r.part.start();
  r.members(other.pubkey);
  assert.deepEqual(r.seen.cuts, [[[other.pubkey], 1700]], "the node gets the list and its time");
  assert.deepEqual(r.part.view, { status: undefined, listed: false, removed: false });
  assert.equal(r.part.refusal(), undefined, "a list that lags the member table is no removal");
  r.members(other.pubkey, identity.pubkey);
  assert.equal(r.part.view.listed, true);
  assert.equal(r.part.refusal(), undefined);
  r.members(other.pubkey);
  assert.equal(r.part.view.removed, true);
  assert.equal(r.part.refusal(), "this key was removed from the relay's members");
  assert.deepEqual(r.warnings, ["this node's key was removed from the relay's members"]);
  await r.part.stop();
  assert.equal(r.seen.closed, 1);
});

Deno.test("relay part: the mesh status is kept; a refused subscription is a refusal", async () => {
  const r = stubbed();
  await assert.rejects(r.part.publish({} as never), /not open/);
  await r.part.start();
  r.listeners.status.forEach((fn) => fn(STATUS));
  assert.equal(r.part.view.status, STATUS);
  r.deny("restricted: not a member");
  assert.equal(r.part.refusal(), "restricted: not a member");
  await r.part.publish({} as never);
  assert.equal(r.seen.published, 1);
  await r.part.stop();
});

Deno.test("relay part: on an open relay the member list is not followed", async () => {
  const r = stubbed(false);
  await r.part.start();
  assert.equal(r.listeners.members.length, 0);
  assert.equal(r.listeners.status.length, 1);
  await r.part.stop();
});
