/**
 * Prefix-affinity routing: a client node sends a conversation's next turn to the serving node that
 * answered its last one (which holds the prompt's cache) while that node's load allows, and
 * otherwise routes as before (two choices, failed nodes last).
 */
import assert from "node:assert/strict";
import type { MeshStatus, ServeTarget } from "../protocol/mod.ts";
import { createBatchedCpuEngine } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { affinityKey } from "./affinity-key.ts";
import { createLocalService } from "./local-service.ts";
import { createRemoteService } from "./remote-service.ts";
import { AFFINITY_SLACK, createRouter, pickTarget } from "./router.ts";
import type { ChatMessage, InferEvent, InferRequest } from "./service.ts";

function target(peerId: string, active = 0, queued = 0): ServeTarget {
  return {
    modelId: "m",
    modelName: "m",
    peerId,
    pubkey: "0".repeat(64),
    nodeName: peerId,
    addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`],
    stages: null,
    capacity: { memoryBytes: 1 },
    load: { active, queued },
  };
}

const DONE: InferEvent = {
  type: "done",
  finish_reason: "stop",
  usage: { prompt_tokens: 3, completion_tokens: 1 },
  timings: {
    queued_ms: 0,
    prompt_n: 3,
    cached_n: 0,
    prompt_ms: 1,
    prompt_per_second: 1,
    predicted_n: 1,
    predicted_ms: 1,
    predicted_per_second: 1,
  },
};

const turn = (messages: ChatMessage[]): InferRequest => ({ model: "m", messages, params: {} });

Deno.test("affinity key: every turn of a conversation shares it; another conversation has its own", () => {
  const opening: ChatMessage[] = [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Name a colour." },
  ];
  const next = [...opening, { role: "assistant", content: "Blue." }, {
    role: "user",
    content: "Another.",
  }];
  assert.equal(affinityKey(turn(next)), affinityKey(turn(opening)));
  assert.notEqual(
    affinityKey(turn([opening[0], { role: "user", content: "Name a fruit." }])),
    affinityKey(turn(opening)),
  );
  assert.notEqual(affinityKey({ ...turn(opening), model: "other" }), affinityKey(turn(opening)));
  const prompt = (p: string): InferRequest => ({ model: "m", prompt: p, params: {} });
  const long = "x".repeat(2000);
  assert.equal(affinityKey(prompt(long + " more")), affinityKey(prompt(long)));
  assert.equal(affinityKey(turn([{ role: "system", content: "only" }])), undefined);
});

Deno.test("pickTarget: the preferred node wins while within the slack and unqueued", () => {
  const view = {
    active: new Map<string, number>(),
    latencyMs: new Map<string, number>(),
    failedUntil: new Map<string, number>(),
    now: 0,
    choices: 2,
    random: () => 0,
    preferred: "b",
  };
  assert.equal(pickTarget([target("a"), target("b", AFFINITY_SLACK)], view)?.peerId, "b");
  assert.equal(pickTarget([target("a"), target("b", AFFINITY_SLACK + 1)], view)?.peerId, "a");
  assert.equal(pickTarget([target("a"), target("b", 0, 1)], view)?.peerId, "a", "queued");
  const failed = { ...view, failedUntil: new Map([["b", 10]]) };
  assert.equal(pickTarget([target("a"), target("b")], failed)?.peerId, "a");
  const tried = { ...view, exclude: new Set(["b"]) };
  assert.equal(pickTarget([target("a"), target("b")], tried)?.peerId, "a");
});

Deno.test("two serving nodes: each conversation's later turns go to the node that served its first", async () => {
  const targets = [target("a"), target("b")];
  // A new status for each look: the mesh indexes each one's targets once.
  const status = (): MeshStatus => ({
    v: 1,
    type: "mesh-status",
    updatedAt: 1,
    meshId: "x",
    serveTargets: [...targets],
    models: [{ id: "m", name: "m" }],
    peerCount: 2,
  });
  let dice = 0;
  const router = createRouter({ random: () => (dice = (dice + 0.37) % 1) });
  const served: string[] = [];
  const service = createRemoteService({
    router,
    status,
    admitted: () => true,
    call: async function* (t) {
      served.push(t.peerId);
      yield { type: "token", text: "ok", id: 1 };
      yield DONE;
    },
  });
  const ask = async (req: InferRequest) => {
    for await (const _ of service.infer(req, new AbortController().signal)) { /* drain */ }
    return served.at(-1)!;
  };
  const firsts = new Set<string>();
  for (let c = 0; c < 8; c++) {
    const messages: ChatMessage[] = [{ role: "user", content: `conversation ${c}` }];
    const first = await ask(turn(messages));
    firsts.add(first);
    for (let t = 1; t <= 2; t++) {
      messages.push({ role: "assistant", content: `answer ${t}` }, {
        role: "user",
        content: `q${t}`,
      });
      assert.equal(await ask(turn(messages)), first, `conversation ${c}, turn ${t + 1}`);
    }
  }
  assert.equal(firsts.size, 2, "first turns still spread over both nodes");

  // The node holding it is loaded past the slack: the turn goes to the other.
  const messages: ChatMessage[] = [{ role: "user", content: "busy one" }];
  const first = await ask(turn(messages));
  const other = first === "a" ? "b" : "a";
  const i = targets.findIndex((t) => t.peerId === first);
  targets[i] = target(first, AFFINITY_SLACK + 1);
  messages.push({ role: "assistant", content: "x" }, { role: "user", content: "y" });
  assert.equal(await ask(turn(messages)), other);
});

Deno.test("two serving nodes with models: the second turn finds its prefix cached where it went", async () => {
  const nodes = await Promise.all(["a", "b"].map(async (peerId) => {
    const { engine, batch } = await createBatchedCpuEngine({ path: STORIES, ctxSize: 256 });
    return { peerId, service: createLocalService({ engine, batch, id: "m" }) };
  }));
  const status = (): MeshStatus => ({
    v: 1,
    type: "mesh-status",
    updatedAt: 1,
    meshId: "x",
    serveTargets: [target("a"), target("b")],
    models: [{ id: "m", name: "m" }],
    peerCount: 2,
  });
  const served: string[] = [];
  const service = createRemoteService({
    router: createRouter(),
    status,
    admitted: () => true,
    // As serveInfer does: the serving node learns the asking member's pubkey.
    call: (t, req, signal) => {
      served.push(t.peerId);
      return nodes.find((n) => n.peerId === t.peerId)!.service.infer(req, signal, "member-x");
    },
  });
  const ask = async (req: InferRequest) => {
    let text = "";
    for await (const e of service.infer(req, new AbortController().signal)) {
      if (e.type === "token") text += e.text;
      if (e.type === "done") return { text, cached: e.timings.cached_n, node: served.at(-1)! };
    }
    throw new Error("no done");
  };
  const chat = (messages: ChatMessage[]): InferRequest => ({
    model: "m",
    messages,
    params: { temperature: 0, max_tokens: 12 },
  });
  const messages: ChatMessage[] = [{ role: "user", content: "Once upon a time, a cat" }];
  const one = await ask(chat(messages));
  assert.equal(one.cached, 0);
  messages.push({ role: "assistant", content: one.text }, { role: "user", content: "And then?" });
  const two = await ask(chat(messages));
  assert.equal(two.node, one.node);
  assert.ok((two.cached ?? 0) > 0, `turn 2 had ${two.cached} tokens cached`);
  for (const n of nodes) n.service.close();
});
