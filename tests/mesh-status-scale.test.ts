// The mesh status with 1,000 simulated serving nodes: every 30621 event stays under its bound, a
// node assembles the whole list from the index and its pages, churn republishes at a bounded
// rate (and only the pages that changed), past the pages' room each model keeps a fair share,
// and a client still routes to live targets of its own model.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  MESH_STATUS_EVENT_MAX_BYTES,
  meshStatusPageOf,
  type NostrEvent,
  parseMeshStatus,
  peerIdFromNostrSecret,
  targetsOfModel,
} from "../protocol/mod.ts";
import { createRelayState } from "../mesh/relay-state.ts";
import { createRouter } from "../mesh/router.ts";
import { createMeshStatus, type MeshStatusInit } from "../relay/mesh-status-publisher.ts";
import { eventually } from "./support/poll.ts";

const T0 = 1_700_000_000;
const MODELS = ["stories260K", "qwen2.5-0.5b", "llama-3.2-1b", "phi-3-mini", "gemma-2-2b"];
const SHA = "ab".repeat(32);

type Node = { pubkey: string; peerId: string; model: string; index: number };

function nodes(n: number): Node[] {
  return Array.from({ length: n }, (_, index) => {
    const sk = generateSecretKey();
    return {
      pubkey: getPublicKey(sk),
      peerId: peerIdFromNostrSecret(sk),
      model: MODELS[index % MODELS.length],
      index,
    };
  });
}

/** A serve report as the relay sees it after the signature check (which report() trusts). */
function report(node: Node, over: Record<string, unknown> = {}, createdAt = T0): NostrEvent {
  const content = {
    modelId: node.model,
    modelName: node.model,
    peerId: node.peerId,
    nodeName: `node-${node.index}`,
    addrs: [
      `/ip4/198.18.${node.index >> 8}.${node.index & 255}/tcp/4001/p2p/${node.peerId}`,
      `/ip4/198.18.${node.index >> 8}.${node.index & 255}/udp/4001/quic-v1/p2p/${node.peerId}`,
    ],
    stages: null,
    capacity: { memoryBytes: 8_000_000_000 },
    load: { active: 0, queued: 0 },
    state: "ready",
    sha256: SHA,
    features: ["tools", "json_schema"],
    ...over,
  };
  return {
    id: "0".repeat(64),
    pubkey: node.pubkey,
    created_at: createdAt,
    kind: 24620,
    tags: [["-"]],
    content: JSON.stringify(content),
    sig: "0".repeat(128),
  };
}

function setup(extra: Partial<MeshStatusInit> = {}) {
  const relaySecret = generateSecretKey();
  const published: NostrEvent[] = [];
  const warnings: string[] = [];
  let now = T0;
  const mesh = createMeshStatus({
    relaySecret,
    meshId: "mesh-scale",
    members: { isMember: () => true, onChange: () => () => {} },
    open: true,
    publish: (ev) => published.push(ev),
    now: () => now,
    republishDelayMs: 10,
    minIntervalMs: 200,
    pruneIntervalMs: 60_000,
    log: { info: () => {}, warn: (m) => void warnings.push(m), error: (m) => warnings.push(m) },
    ...extra,
  });
  const state = createRelayState({ relayPubkey: getPublicKey(relaySecret) });
  const indexes = () => published.filter((ev) => meshStatusPageOf(ev) === 0);
  return {
    mesh,
    published,
    warnings,
    state,
    indexes,
    /** Hands every event published since the last call to the node's relay state. */
    deliver: (() => {
      let sent = 0;
      return () => {
        for (; sent < published.length; sent++) state.receive(published[sent]);
      };
    })(),
    clock: (t: number) => (now = t),
  };
}

const bytes = (ev: NostrEvent) => new TextEncoder().encode(JSON.stringify(ev)).length;

Deno.test("1,000 serving nodes: every 30621 event under 64 KiB, the node assembles all of them", async () => {
  const all = nodes(1000);
  const { mesh, published, state, indexes, deliver } = setup();
  mesh.start();
  try {
    for (const n of all) assert.equal(mesh.report(report(n)), undefined);
    await eventually(() => parseMeshStatus(indexes().at(-1)!).pages !== undefined, {
      what: "the status with 1,000 targets never went out",
    });
    for (const ev of published) {
      assert.ok(bytes(ev) <= MESH_STATUS_EVENT_MAX_BYTES, `a ${bytes(ev)}-byte event`);
    }
    const index = parseMeshStatus(indexes().at(-1)!);
    assert.ok(index.pages!.length >= 5, `${index.pages!.length} pages for ~600 KB of targets`);
    assert.equal(index.targetCount, 1000);
    assert.deepEqual(
      index.models.map((m) => [m.id, m.targets]),
      [...MODELS].sort().map((id) => [id, 200]),
      "each model's summary counts all its targets",
    );
    deliver();
    const whole = state.meshStatus()!;
    assert.equal(whole.serveTargets.length, 1000);
    assert.deepEqual(
      new Set(whole.serveTargets.map((t) => t.peerId)),
      new Set(all.map((n) => n.peerId)),
    );
    assert.equal(targetsOfModel(whole, "stories260K").length, 200);
  } finally {
    mesh.stop();
  }
});

Deno.test("1,000 serving nodes under churn: at most one publication per interval, only changed pages re-sent", async () => {
  const all = nodes(1000);
  const { mesh, published, indexes } = setup();
  mesh.start();
  try {
    for (const n of all) mesh.report(report(n));
    await eventually(() => parseMeshStatus(indexes().at(-1)!).pages !== undefined, {
      what: "the first full status never went out",
    });
    const pages = parseMeshStatus(indexes().at(-1)!).pages!.length;

    // One node's load changes: its page and the index go out again, no other page.
    const before = published.length;
    mesh.report(report(all[0], { load: { active: 3, queued: 1 } }, T0 + 1));
    await eventually(() => published.length > before, { what: "the load change never went out" });
    await eventually(() => meshStatusPageOf(published.at(-1)!) === 0, { what: "no index" });
    assert.equal(published.length - before, 2, "one page and the index");

    // Every node's load changes, round after round for 1.2 s and at least 5 rounds (a loaded
    // machine may take longer per round): 5,000 reports coalesce into publications per interval.
    const start = performance.now();
    const firstIndex = indexes().length;
    let round = 0;
    while (round < 5 || performance.now() - start < 1200) {
      round++;
      for (const n of all) {
        mesh.report(report(n, { load: { active: (round + n.index) % 7, queued: 0 } }, T0 + 2));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = performance.now() - start;
    const batches = indexes().length - firstIndex;
    // minIntervalMs is 200: one publication per 200 ms at most, plus the one pending at the start.
    assert.ok(batches <= Math.ceil(elapsed / 200) + 1, `${batches} publications in ${elapsed} ms`);
    assert.ok(published.length - before <= (batches + 2) * (pages + 1), "pages per publication");
  } finally {
    mesh.stop();
  }
});

Deno.test("past the pages' room, each model keeps a fair share of the listed targets", async () => {
  const all = nodes(1000);
  // One model with 800 targets, four with 50: the big one must not crowd out the others.
  for (const n of all) n.model = n.index < 800 ? "stories260K" : MODELS[1 + (n.index % 4)];
  const { mesh, indexes, warnings, state, deliver } = setup({ maxPages: 2 });
  mesh.start();
  try {
    for (const n of all) {
      mesh.report(report(n, { load: { active: n.index % 3, queued: 0 } }));
    }
    await eventually(() => parseMeshStatus(indexes().at(-1)!).targetCount === 1000, {
      what: "the status never listed its 1,000 targets' count",
    });
    deliver();
    const whole = state.meshStatus()!;
    const listed = whole.serveTargets.length;
    assert.ok(listed < 1000 && listed > 100, `${listed} listed`);
    for (const m of MODELS.slice(1)) {
      assert.equal(targetsOfModel(whole, m).length, 50, `${m}'s 50 targets all fit their share`);
    }
    const big = targetsOfModel(whole, "stories260K");
    assert.equal(big.length, listed - 200, "the big model gets the rest");
    assert.ok(big.every((t) => t.load.active === 0), "its least loaded targets first");
    const summary = whole.models.find((m) => m.id === "stories260K")!;
    assert.equal(summary.targets, 800, "the summary still counts every target");
    assert.match(warnings.join("\n"), new RegExp(`lists ${listed} of 1000 serving targets`));
  } finally {
    mesh.stop();
  }
});

Deno.test("1,000 serving nodes, 300 gone: a client routes only to live targets of its model, evenly", async () => {
  const all = nodes(1000);
  const { mesh, state, indexes, deliver, clock } = setup();
  mesh.start();
  try {
    // Each report must be taken, so that a refusal names itself instead of skewing the counts.
    const send = (ev: NostrEvent, n: Node) => {
      const refused = mesh.report(ev);
      assert.equal(refused, undefined, `node ${n.index}'s report was refused: ${refused}`);
    };
    for (const n of all) send(report(n), n);
    // 100 withdraw, 200 go silent and are pruned; the rest report again before the prune.
    const gone = new Set(all.filter((n) => n.index % 10 < 3).map((n) => n.peerId));
    for (const n of all.filter((n) => n.index % 10 === 0)) {
      send(report(n, { state: "stopping" }, T0 + 1), n);
    }
    clock(T0 + 20);
    for (const n of all.filter((n) => !gone.has(n.peerId))) send(report(n, {}, T0 + 20), n);
    clock(T0 + 31);
    assert.equal(mesh.prune(), 200);
    await eventually(() => parseMeshStatus(indexes().at(-1)!).targetCount === 700, {
      what: "the status never dropped to 700 targets",
    });
    deliver();
    const status = state.meshStatus()!;
    assert.equal(status.serveTargets.length, 700);

    // Every choice weighs all targets (not two drawn at random), so one router's picks are exact.
    const router = createRouter({ now: () => 0, choices: Infinity });
    const targets = targetsOfModel(status, "llama-3.2-1b");
    const live = all.filter((n) => n.model === "llama-3.2-1b" && !gone.has(n.peerId));
    assert.equal(targets.length, live.length);
    const picks = new Map<string, number>();
    for (let i = 0; i < live.length * 10; i++) {
      const t = router.pick(targets)!;
      assert.equal(t.modelId, "llama-3.2-1b");
      assert.ok(!gone.has(t.peerId), "a gone target was picked");
      router.begin(t.peerId); // held: the next pick weighs it
      picks.set(t.peerId, (picks.get(t.peerId) ?? 0) + 1);
    }
    assert.equal(picks.size, live.length, "every live target of the model gets requests");
    assert.deepEqual(new Set(picks.values()), new Set([10]), "ten each");
  } finally {
    mesh.stop();
  }
});

Deno.test("an unchanged status is republished as a heartbeat", async () => {
  const { mesh, indexes } = setup({ heartbeatMs: 100, pruneIntervalMs: 20, minIntervalMs: 0 });
  mesh.start();
  try {
    await eventually(() => indexes().length >= 3, { what: "no heartbeat" });
    const [a, b] = indexes().slice(-2).map((ev) => parseMeshStatus(ev));
    assert.ok(b.updatedAt > a.updatedAt, "each heartbeat is newer");
  } finally {
    mesh.stop();
  }
});
