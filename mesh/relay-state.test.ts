// The relay client's state alone, fed signed events as the connection loop would: what it keeps,
// what it ignores, and what its listeners hear.
import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  KIND,
  type Logger,
  makeMeshStatusEvent,
  makeMeshStatusPageEvent,
  type MeshStatus,
  type NostrEvent,
} from "../protocol/mod.ts";
import { createRelayState } from "./relay-state.ts";

const RELAY_SK = generateSecretKey();
const RELAY_PK = getPublicKey(RELAY_SK);
const A = "a".repeat(64), B = "b".repeat(64);

function status(updatedAt: number, peerCount = 0): NostrEvent {
  const s: MeshStatus = {
    v: 1,
    type: "mesh-status",
    updatedAt,
    meshId: "m1",
    serveTargets: [],
    models: [],
    peerCount,
  };
  return makeMeshStatusEvent(RELAY_SK, s);
}

function memberList(createdAt: number, keys: string[], sk = RELAY_SK): NostrEvent {
  return finalizeEvent({
    kind: KIND.MEMBERSHIP_LIST,
    created_at: createdAt,
    tags: [["-"], ...keys.map((k) => ["member", k]), ["member", "not-a-key"]],
    content: "",
  }, sk);
}

function logged() {
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
  };
  return { lines, log };
}

Deno.test("relay state: a newer mesh status is kept and told; an older copy changes nothing", () => {
  const state = createRelayState({ relayPubkey: RELAY_PK });
  const heard: number[] = [];
  state.onMeshStatus((s) => heard.push(s.peerCount));
  state.receive(status(100, 1));
  state.receive(status(90, 2)); // the stored copy after a reconnect, older than the live one
  state.receive(status(110, 3));
  assert.deepEqual(heard, [1, 3]);
  assert.equal(state.meshStatus()?.peerCount, 3);
  const late: number[] = [];
  state.onMeshStatus((s) => late.push(s.peerCount));
  assert.deepEqual(late, [3], "a new listener hears the latest at once");
});

Deno.test("relay state: member lists keep their time; foreign or bad events are logged and ignored", () => {
  const { lines, log } = logged();
  const state = createRelayState({ relayPubkey: RELAY_PK, log });
  assert.equal(state.members(), undefined);
  assert.equal(state.membersListedAt(), -1);
  const heard: string[][] = [];
  const unlisten = state.onMembers((m) => heard.push([...m].sort()));
  state.receive(memberList(200, [A, B]));
  assert.deepEqual(heard, [[A, B]], "only 64-hex member tags count");
  assert.equal(state.membersListedAt(), 200);
  state.members()!.clear();
  assert.equal(state.members()?.size, 2, "callers get a copy");

  state.receive(memberList(300, [A], generateSecretKey()));
  state.receive({ ...status(400), pubkey: A });
  state.receive(memberList(150, [A]));
  assert.deepEqual(heard, [[A, B]]);
  assert.equal(state.membersListedAt(), 200);
  assert.deepEqual(lines, [
    "warn ignoring a kind 13534 event from the relay: membership list not from the relay",
    "warn ignoring a kind 30621 event from the relay: mesh status: is not signed by the relay",
  ]);
  unlisten();
  state.receive(memberList(250, [B]));
  assert.deepEqual(heard, [[A, B]], "a removed listener hears nothing more");
  assert.deepEqual(state.members(), new Set([B]));
});

Deno.test("relay state: a refusal is kept and told until the relay accepts the node again", () => {
  const { lines, log } = logged();
  const state = createRelayState({ relayPubkey: RELAY_PK, log });
  const heard: string[] = [];
  state.onDenied((r) => heard.push(r));
  state.accepted();
  state.refused("restricted: not a member");
  assert.equal(state.denied(), "restricted: not a member");
  assert.deepEqual(heard, ["restricted: not a member"]);
  const late: string[] = [];
  state.onDenied((r) => late.push(r));
  assert.deepEqual(late, ["restricted: not a member"]);
  state.accepted();
  assert.equal(state.denied(), undefined);
  assert.deepEqual(lines, [
    "warn the relay refused the mesh subscription: restricted: not a member",
    "info the relay accepts this node's subscription again",
  ]);
});

Deno.test("relay state: a listener that throws is logged; the others still hear", () => {
  const { lines, log } = logged();
  const state = createRelayState({ relayPubkey: RELAY_PK, log });
  const heard: number[] = [];
  state.onMeshStatus(() => {
    throw new Error("broken listener");
  });
  state.onMeshStatus((s) => heard.push(s.updatedAt));
  state.receive(status(100));
  assert.deepEqual(heard, [100]);
  assert.deepEqual(lines, ["error a relay listener failed: broken listener"]);
});

Deno.test("relay state: a paged status is told only whole, pages before or after their index", () => {
  const { lines, log } = logged();
  const state = createRelayState({ relayPubkey: RELAY_PK, log });
  const heard: string[][] = [];
  state.onMeshStatus((s) => heard.push(s.serveTargets.map((t) => t.nodeName)));
  const target = (nodeName: string) => ({
    modelId: "m",
    modelName: "m",
    peerId: `16Uiu2${nodeName}`,
    nodeName,
    addrs: [],
    stages: null,
    capacity: { memoryBytes: 1 },
    load: { active: 0, queued: 0 },
    pubkey: A,
  });
  const page = (n: number, at: number, names: string[]) =>
    makeMeshStatusPageEvent(RELAY_SK, {
      v: 1,
      type: "mesh-status-page",
      meshId: "m1",
      page: n,
      serveTargets: names.map(target),
    }, at);
  const index = (at: number, names: string[], pages: NostrEvent[]) =>
    makeMeshStatusEvent(RELAY_SK, {
      v: 1,
      type: "mesh-status",
      updatedAt: at,
      meshId: "m1",
      serveTargets: names.map(target),
      models: [{ id: "m", name: "m" }],
      peerCount: 3,
      targetCount: 3,
      pages: pages.map((ev, i) => ({ d: `relay-mesh:${i + 1}`, id: ev.id })),
    });

  // The relay sends pages first: nothing is told until their index.
  const p1 = page(1, 100, ["b"]), p2 = page(2, 100, ["c"]);
  state.receive(p1);
  state.receive(p2);
  assert.deepEqual(heard, []);
  state.receive(index(100, ["a"], [p1, p2]));
  assert.deepEqual(heard, [["a", "b", "c"]]);

  // A new page 2 ahead of its index: the old whole list stands until the index names it.
  const p2b = page(2, 101, ["d"]);
  state.receive(p2b);
  assert.deepEqual(heard, [["a", "b", "c"]]);
  assert.deepEqual(state.meshStatus()?.serveTargets.map((t) => t.nodeName), ["a", "b", "c"]);
  // The index arrives first after a reconnect: told once its page is here.
  const p1c = page(1, 102, ["e"]);
  state.receive(index(102, ["a"], [p1c, p2b]));
  assert.equal(heard.length, 1);
  state.receive(page(1, 90, ["old"])); // an older stored copy changes nothing
  state.receive(p1c);
  assert.deepEqual(heard, [["a", "b", "c"], ["a", "e", "d"]]);

  // A forged page is ignored with a warning.
  state.receive({ ...page(1, 103, ["x"]), pubkey: B });
  assert.deepEqual(lines, [
    "warn ignoring a kind 30621 event from the relay: mesh status page: is not signed by the relay",
  ]);
  assert.equal(heard.length, 2);
});
