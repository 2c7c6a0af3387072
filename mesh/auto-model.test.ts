import assert from "node:assert/strict";
import type { MeshStatus, ServeTarget } from "../protocol/mod.ts";
import { type AutoCandidate, embedNeeds, inferNeeds, pickAutoModel } from "./auto-model.ts";
import { createRemoteService } from "./remote-service.ts";
import { createRouter } from "./router.ts";
import { type InferenceService, ServiceError } from "./service.ts";

const cand = (id: string, more: Partial<AutoCandidate> = {}): AutoCandidate => ({
  id,
  features: ["constraint", "tools", "embeddings"],
  local: false,
  load: 0,
  ...more,
});
const plain = { features: [], tokens: 10 } as const;
const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

Deno.test("auto: the node's own model first, then the least loaded, then ids in order", () => {
  assert.equal(
    pickAutoModel([cand("b"), cand("a"), cand("own", { local: true, load: 9 })], plain),
    "own",
  );
  assert.equal(
    pickAutoModel([cand("b", { load: 2 }), cand("c", { load: 1 }), cand("a", { load: 3 })], plain),
    "c",
  );
  assert.equal(pickAutoModel([cand("b"), cand("a")], plain), "a");
  // Among equals, the larger known context.
  assert.equal(
    pickAutoModel([cand("a", { contextLength: 512 }), cand("b", { contextLength: 4096 })], plain),
    "b",
  );
});

Deno.test("auto: only models with the features the request needs; none is a 400 naming them", () => {
  const tools = { features: ["tools"], tokens: 10 } as const;
  const own = cand("own", { local: true, features: [] });
  assert.equal(pickAutoModel([own, cand("mesh", { load: 5 })], tools), "mesh");
  assert.throws(
    () => pickAutoModel([own, cand("split", { features: ["penalties"] })], tools),
    isCode("invalid_request", /no served model that supports tools \(offered: own, split\)/),
  );
  assert.throws(() => pickAutoModel([], plain), isCode("unavailable"));
  assert.throws(
    () => pickAutoModel([own], embedNeeds(["a"])),
    isCode("invalid_request", /supports embeddings/),
  );
});

Deno.test("auto: a prompt too big for the own model's context goes to one that holds it", () => {
  const needs = { features: [], tokens: 3000 } as const;
  const own = cand("own", { local: true, contextLength: 2048 });
  assert.equal(pickAutoModel([own, cand("big", { contextLength: 8192, load: 4 })], needs), "big");
  // An unknown context (a mesh model: serve reports carry none) counts as holding it.
  assert.equal(pickAutoModel([own, cand("mesh", { load: 4 })], needs), "mesh");
  // None holds it: the largest context answers (its node then says exactly how far over).
  assert.equal(
    pickAutoModel([own, cand("mid", { contextLength: 2500 })], { features: [], tokens: 9000 }),
    "mid",
  );
});

Deno.test("auto: a request's needs are its features, its prompt's rough size and max_tokens", () => {
  const needs = inferNeeds({
    model: "auto",
    prompt: "x".repeat(400),
    params: { max_tokens: 50, logit_bias: { "5": 1 } },
  });
  assert.deepEqual(needs, { features: ["logit_bias"], tokens: 150 });
  assert.deepEqual(embedNeeds(["x".repeat(40), [1, 2, 3]]), {
    features: ["embeddings"],
    tokens: 10,
  });
});

Deno.test("auto through a RemoteService: its own model, then the mesh's least loaded able node", async () => {
  const target = (peerId: string, modelId: string, features: string[], active: number) => ({
    modelId,
    modelName: modelId,
    peerId,
    pubkey: "0".repeat(64),
    nodeName: peerId,
    addrs: [],
    stages: null,
    capacity: { memoryBytes: 1 },
    load: { active, queued: 0 },
    features,
  } as ServeTarget);
  const status: MeshStatus = {
    v: 1,
    type: "mesh-status",
    updatedAt: 1,
    meshId: "m",
    serveTargets: [
      target("p1", "small", ["tools"], 0),
      target("p2", "big", ["tools", "constraint"], 3),
      target("p3", "big", ["tools", "constraint"], 1),
      target("self", "own", [], 0),
    ],
    models: [],
    peerCount: 3,
  };
  const local: InferenceService & { features(): string[] } = {
    models: () => Promise.resolve([{ id: "own", name: "Own", contextLength: 256 }]),
    infer: () => {
      throw new Error("unused");
    },
    load: () => ({ active: 5, queued: 0 }),
    features: () => ["penalties"],
  };
  const service = createRemoteService({
    call: () => {
      throw new Error("unused");
    },
    router: createRouter(),
    status: () => status,
    admitted: () => true,
    selfPeerId: "self",
    local: { modelId: "own", service: local },
  });
  assert.equal(await service.chooseModel({ features: [], tokens: 10 }), "own");
  assert.equal(await service.chooseModel({ features: ["tools"], tokens: 10 }), "small");
  assert.equal(await service.chooseModel({ features: ["constraint"], tokens: 10 }), "big");
  assert.equal(await service.chooseModel({ features: [], tokens: 1000 }), "small");
  await assert.rejects(
    service.chooseModel({ features: ["embeddings"], tokens: 1 }),
    isCode("invalid_request", /embeddings/),
  );
});
