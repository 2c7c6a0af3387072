import assert from "node:assert/strict";
import { bytesToHex } from "nostr-tools/utils";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { type NostrEvent, parseMeshStatus, peerIdFromNostrSecret } from "../protocol/mod.ts";
import { openDatabaseFile } from "./db.ts";
import { createMemberStore } from "./members.ts";
import { createMeshStatus, type MeshStatusInit } from "./mesh-status-publisher.ts";
import { eventually } from "../tests/support/poll.ts";

const T0 = 1_700_000_000;

function setup(extra: Partial<MeshStatusInit> = {}, started = true) {
  const relaySecret = generateSecretKey();
  const members = createMemberStore(openDatabaseFile(":memory:"));
  const node = generateSecretKey();
  members.add(getPublicKey(node), "member", T0);
  const published: NostrEvent[] = [];
  let now = T0;
  const mesh = createMeshStatus({
    relaySecret,
    meshId: "mesh-test",
    members,
    publish: (ev) => published.push(ev),
    now: () => now,
    republishDelayMs: 10,
    minIntervalMs: 0,
    pruneIntervalMs: 60_000, // tests call prune() themselves
    ...extra,
  });
  if (started) mesh.start();
  const status = (i = published.length - 1) =>
    parseMeshStatus(published[i], { relayPubkey: getPublicKey(relaySecret) });
  return {
    mesh,
    members,
    node,
    published,
    status,
    relaySecret,
    clock: (t: number) => (now = t),
  };
}

function report(secret: Uint8Array, over: Record<string, unknown> = {}, createdAt = T0) {
  const content = {
    modelId: "stories260K",
    modelName: "Stories 260K",
    peerId: peerIdFromNostrSecret(secret),
    nodeName: "garage-box",
    addrs: ["/ip4/192.168.1.5/tcp/4001"],
    stages: null,
    capacity: { memoryBytes: 1_000_000 },
    load: { active: 0, queued: 0 },
    state: "running",
    ...over,
  };
  return finalizeEvent(
    { kind: 24620, created_at: createdAt, tags: [], content: JSON.stringify(content) },
    secret,
  );
}

/** Until the `n`th status is out (the republish runs on a real timer, republishDelayMs 10). */
const untilPublished = (list: NostrEvent[], n: number) =>
  eventually(() => list.length >= n, { timeoutMs: 2000, what: `status ${n} never went out` });

/**
 * A negative check, so a fixed wait: a stray republish would go out 10 ms after the change;
 * 40 ms gives it four times that.
 */
const quiet = () => new Promise((r) => setTimeout(r, 40));

Deno.test("nothing goes out before start, the empty status at start", () => {
  const { mesh, published, status } = setup({}, false);
  try {
    assert.equal(published.length, 0);
    mesh.start();
    assert.equal(published.length, 1);
    assert.deepEqual(status(0).serveTargets, []);
  } finally {
    mesh.stop();
  }
});

Deno.test("an empty status goes out at start; a member's report is folded in", async () => {
  const { mesh, node, published, status } = setup();
  try {
    assert.equal(published.length, 1);
    assert.deepEqual(status(0).serveTargets, []);
    assert.equal(mesh.report(report(node)), undefined);
    await untilPublished(published, 2);
    assert.equal(published.length, 2);
    const s = status();
    assert.equal(s.meshId, "mesh-test");
    assert.equal(s.peerCount, 1);
    assert.deepEqual(s.models, [{ id: "stories260K", name: "Stories 260K" }]);
    assert.equal(s.serveTargets[0].pubkey, getPublicKey(node));
    assert.equal(s.serveTargets[0].peerId, peerIdFromNostrSecret(node));
    assert.equal("state" in s.serveTargets[0], false);
    assert.ok(published[1].created_at > published[0].created_at, "newer than the last status");
    assert.deepEqual(published[1].tags, [["-"], ["d", "relay-mesh"], ["k", "mesh-status"]]);
  } finally {
    mesh.stop();
  }
});

Deno.test("a burst of changes makes one republish; an unchanged report makes none", async () => {
  const { mesh, node, published, status } = setup();
  try {
    for (let active = 0; active < 5; active++) {
      mesh.report(report(node, { load: { active, queued: 0 } }));
    }
    await untilPublished(published, 2);
    await quiet();
    assert.equal(published.length, 2);
    assert.equal(status().serveTargets[0].load.active, 4);
    mesh.report(report(node, { load: { active: 4, queued: 0 } }, T0 + 1));
    await quiet();
    assert.equal(published.length, 2);
  } finally {
    mesh.stop();
  }
});

Deno.test("with default timing a change is republished within 2 s", async () => {
  const { mesh, node, published } = setup({
    republishDelayMs: undefined,
    minIntervalMs: undefined,
  });
  try {
    const start = performance.now();
    mesh.report(report(node));
    await eventually(() => published.length >= 2, {
      timeoutMs: 2500,
      intervalMs: 10,
      what: "no republish within 2.5 s",
    });
    assert.equal(published.length, 2);
    assert.ok(performance.now() - start <= 2000, `took ${performance.now() - start} ms`);
  } finally {
    mesh.stop();
  }
});

Deno.test("a target silent for 30 s is pruned and the status republished", async () => {
  const { mesh, node, published, status, clock } = setup();
  try {
    mesh.report(report(node));
    mesh.report(report(node, { modelId: "other", modelName: "Other" }));
    await untilPublished(published, 2);
    assert.equal(status().serveTargets.length, 2);
    assert.equal(status().peerCount, 1);
    clock(T0 + 20);
    mesh.report(report(node, {}, T0 + 20)); // keeps stories260K alive, not "other"
    clock(T0 + 29);
    assert.equal(mesh.prune(), 0);
    clock(T0 + 30);
    assert.equal(mesh.prune(), 1);
    await untilPublished(published, 3);
    assert.equal(published.length, 3);
    assert.deepEqual(status().serveTargets.map((t) => t.modelId), ["stories260K"]);
    assert.deepEqual(status().models.map((m) => m.id), ["stories260K"]);
  } finally {
    mesh.stop();
  }
});

Deno.test("reports are refused: non-member, another key's peerId, stale, unsafe strings", () => {
  const { mesh, node, published } = setup();
  try {
    const stranger = generateSecretKey();
    assert.match(mesh.report(report(stranger))!, /^restricted: /);
    const other = peerIdFromNostrSecret(generateSecretKey());
    assert.equal(
      mesh.report(report(node, { peerId: other })),
      "invalid: peerId is not the author's key",
    );
    assert.match(mesh.report(report(node, {}, T0 - 31))!, /^invalid: serve report is 31 s old/);
    assert.match(mesh.report(report(node, { modelId: "./x.gguf" }))!, /^invalid: .*modelId/);
    assert.match(mesh.report(report(node, { nodeName: "/home/alice/box" }))!, /local path/);
    assert.match(mesh.report(report(node, { modelName: "C:\\models\\a" }))!, /local path/);
    assert.match(mesh.report(report(node, { addrs: ["/unix/tmp/sock"] }))!, /addrs\[0\]/);
    const nsec = "nsec1" + "q".repeat(58);
    assert.match(mesh.report(report(node, { nodeName: nsec }))!, /secret/);
    assert.match(mesh.report(report(node, { modelName: bytesToHex(node) }))!, /secret/);
    assert.match(mesh.report(report(node, { load: { active: -1 } }))!, /^invalid: serve report:/);
    assert.equal(mesh.current().serveTargets.length, 0);
    assert.equal(published.length, 1);
  } finally {
    mesh.stop();
  }
});

Deno.test("removing a member drops their targets; a stopping node withdraws its own", async () => {
  const { mesh, members, node, published, status } = setup();
  const second = generateSecretKey();
  members.add(getPublicKey(second), "member", T0);
  try {
    mesh.report(report(node));
    mesh.report(report(second));
    await untilPublished(published, 2);
    assert.equal(status().peerCount, 2);
    members.remove(getPublicKey(node));
    await untilPublished(published, 3);
    assert.deepEqual(status().serveTargets.map((t) => t.pubkey), [getPublicKey(second)]);
    mesh.report(report(second, { state: "stopping" }, T0 + 1));
    await untilPublished(published, 4);
    assert.deepEqual(status().serveTargets, []);
    assert.equal(status().peerCount, 0);
    assert.equal(published.length, 4);
  } finally {
    mesh.stop();
  }
});

Deno.test("no published status carries a secret key", async () => {
  const { mesh, node, published, relaySecret } = setup();
  try {
    mesh.report(report(node));
    await untilPublished(published, 2);
    const text = JSON.stringify(published);
    for (const secret of [relaySecret, node]) {
      assert.equal(text.includes(bytesToHex(secret)), false);
    }
    assert.equal(/nsec1/.test(text), false);
  } finally {
    mesh.stop();
  }
});

Deno.test("addresses no member may dial are stripped before the relay signs the status", async () => {
  const warnings: string[] = [];
  const log = { info() {}, warn: (m: string) => void warnings.push(m), error() {} };
  const { mesh, node, published, status, relaySecret } = setup({ log });
  try {
    const own = peerIdFromNostrSecret(node);
    const foreign = peerIdFromNostrSecret(generateSecretKey());
    const relayPeer = peerIdFromNostrSecret(relaySecret);
    const addrs = [
      "/ip4/169.254.169.254/tcp/80",
      `/ip4/127.0.0.1/tcp/4002/p2p/${foreign}`,
      "/dns4/metadata.google.internal/tcp/80",
      "/ip6/fe80::1/tcp/4001",
      "/ip4/0.0.0.0/tcp/4001",
      `/ip4/127.0.0.1/tcp/9/p2p/${foreign}/p2p-circuit`,
      "/ip4/127.0.0.1/tcp/4001",
      `/ip4/127.0.0.1/tcp/9/p2p/${relayPeer}/p2p-circuit`,
    ];
    assert.equal(mesh.report(report(node, { addrs })), undefined, "the report itself counts");
    assert.equal(mesh.report(report(node, { addrs }, T0 + 1)), undefined);
    await untilPublished(published, 2);
    assert.deepEqual(status().serveTargets[0].addrs, [
      `/ip4/127.0.0.1/tcp/4001/p2p/${own}`,
      `/ip4/127.0.0.1/tcp/9/p2p/${relayPeer}/p2p-circuit/p2p/${own}`,
    ]);
    assert.equal(warnings.length, 1, `one warning until the report changes: ${warnings}`);
    assert.match(warnings[0], /169\.254\.169\.254.*link-local/);
    assert.match(warnings[0], new RegExp(`names another peer \\(${foreign}\\)`));
  } finally {
    mesh.stop();
  }
});

const SHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";
const PLAN = "ab".repeat(32);

Deno.test("a split report's sha256, features and planId reach the status, not taken for secrets", async () => {
  const { mesh, node, published, status } = setup();
  try {
    const split = { stages: [[0, 3]], sha256: SHA, features: ["tools"], planId: PLAN };
    assert.equal(mesh.report(report(node, split)), undefined);
    await untilPublished(published, 2);
    const t = status().serveTargets[0];
    assert.deepEqual(
      { stages: t.stages, sha256: t.sha256, features: t.features, planId: t.planId },
      split,
    );
    assert.equal(mesh.report(report(node, { ...split, planId: null }, T0 + 1)), undefined);
    await untilPublished(published, 3);
    assert.equal(status().serveTargets[0].planId, null);
    assert.match(mesh.report(report(node, { sha256: "ABC" }, T0 + 2))!, /^invalid: .*sha256/);
  } finally {
    mesh.stop();
  }
});

Deno.test("models lists a model only once an entry target offers it; waiting and loading are targets", async () => {
  const { mesh, members, node, published, status } = setup();
  const [second, third] = [generateSecretKey(), generateSecretKey()];
  for (const k of [second, third]) members.add(getPublicKey(k), "member", T0);
  try {
    const candidate = { sha256: SHA, planId: null };
    mesh.report(report(node, { ...candidate, stages: [], state: "waiting" }));
    mesh.report(report(second, { ...candidate, stages: [[2, 4]], planId: PLAN, state: "ready" }));
    await untilPublished(published, 2);
    assert.equal(status().serveTargets.length, 2, "a waiting candidate and a later stage listed");
    assert.deepEqual(status().models, [], "but nobody can answer a request yet");

    mesh.report(report(third, { ...candidate, stages: [[0, 2]], planId: PLAN, state: "loading" }));
    await untilPublished(published, 3);
    assert.equal(status().serveTargets.length, 3);
    assert.deepEqual(status().models, [{ id: "stories260K", name: "Stories 260K" }]);

    mesh.report(report(third, { ...candidate, stages: [] }, T0 + 1));
    await untilPublished(published, 4);
    assert.deepEqual(status().models, [], "stage 0 gone back to waiting");

    mesh.report(report(third, { modelName: "Whole", stages: null }, T0 + 2));
    await untilPublished(published, 5);
    assert.deepEqual(status().models, [{ id: "stories260K", name: "Whole" }]);
  } finally {
    mesh.stop();
  }
});
